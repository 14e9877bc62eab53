"""Generation in a separate Python process, driven over JSON lines on stdin/stdout. Never imports bpy.

Blender starts it as ``<python> -m temos_blender.worker`` (see ``blender/worker_client.py``) when the add-on's
"Python Environment" preference names a Python with torch (e.g. a venv or conda env with a CUDA build), so torch is
never imported into Blender itself. The worker stays up between generations and keeps the model loaded.

Requests, one JSON object per line on stdin::

    {"op": "check"}
    {"op": "generate", "id": 1, "prompt": "a person waves", "duration_s": 5.0, "seeds": [7, 8], "diversity": 1.0,
     "model_dir": "", "text_model_dir": "", "device": "auto", "threads": 0}
    {"op": "cancel", "id": 1}
    {"op": "shutdown"}                       (end of input works too)

Replies, one JSON object per line on stdout (anything else the libraries print goes to stderr)::

    {"type": "hello", "protocol": 1, "pid": 123, "python": "3.11.7"}              once, at start
    {"type": "check", "torch": "2.13.0+cpu", "cuda": false, "mps": false, ...}
    {"type": "progress", "id": 1, "step": 0, "total": 5, "label": "load model"}
    {"type": "result", "id": 1, "dir": "/tmp/temos-worker-…", "rotations": "…/rotations.npy",
     "root_translation": "…/root_translation.npy", "takes": [{"seed": 7, "prompt": …, "fps": …, …}, …]}
    {"type": "error", "id": 1, "message": "…", "hint": "…", "kind": "PromptError", "cancelled": false,
     "details": "traceback, for bugs only"}

``rotations.npy`` is (n, T, 22, 4) float32 wxyz and ``root_translation.npy`` (n, T, 3) float32, one row per take in
the order of ``seeds``; the client deletes ``dir`` once it has read them. A cancel arrives while a generation runs
(stdin is read on its own thread); the generation then ends with an error reply with ``cancelled: true``.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import sys
import tempfile
import threading
import traceback
from pathlib import Path

PROTOCOL_VERSION = 1


class Channel:
    """The protocol's output: JSON lines on the process's original stdout, which nothing else may write to."""

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def claim_stdout() -> Channel:
    """Keep the real stdout for the protocol and point file descriptor 1 (and ``sys.stdout``) at stderr, so a
    library that prints (Python or C) cannot break a reply."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return Channel(protocol)


class Worker:
    """Serves requests one at a time; the loaded generator is kept while the model settings stay the same."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self._generator = None
        self._generator_key: tuple | None = None
        self._cancelled: set = set()
        self._cancel_lock = threading.Lock()

    # requests ------------------------------------------------------------------------------------------------

    def handle(self, request: dict) -> None:
        op = request.get("op")
        if op == "check":
            self.channel.send(self.check())
        elif op == "generate":
            self.generate(request)
        else:
            self.channel.send(
                {"type": "error", "id": request.get("id"), "message": f"Unknown request {op!r}.", "kind": "Protocol"}
            )

    def cancel(self, request_id) -> None:
        with self._cancel_lock:
            self._cancelled.add(request_id)

    def _is_cancelled(self, request_id) -> bool:
        with self._cancel_lock:
            return request_id in self._cancelled

    def check(self) -> dict:
        """What this Python can run: torch's version and devices (imports torch)."""
        import torch

        mps = getattr(torch.backends, "mps", None)
        return {
            "type": "check",
            "python": platform.python_version(),
            "executable": sys.executable,
            "torch": torch.__version__,
            "torch_file": torch.__file__,
            "cuda": bool(torch.cuda.is_available()),
            "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "mps": bool(mps is not None and mps.is_available()),
        }

    def generate(self, request: dict) -> None:
        request_id = request.get("id")
        try:
            reply = self._generate(request_id, request)
        except ModuleNotFoundError as e:
            reply = error_reply(request_id, missing_module_error(e))
        except Exception as e:  # every failure becomes a reply; the worker keeps serving
            reply = error_reply(request_id, e)
        finally:
            with self._cancel_lock:
                self._cancelled.discard(request_id)
        self.channel.send(reply)

    def _generate(self, request_id, request: dict) -> dict:
        import numpy as np

        from .errors import Cancelled, PromptError

        try:
            prompt = str(request["prompt"])
            duration_s = float(request["duration_s"])
            seeds = [int(s) for s in request["seeds"]]
            diversity = float(request.get("diversity", 1.0))
        except (KeyError, TypeError, ValueError) as e:
            raise PromptError(f"Malformed generate request: {type(e).__name__}: {e}.") from None
        if not seeds:
            raise PromptError("The request asks for no takes.", "Ask for at least one take.")

        def should_stop() -> bool:
            return self._is_cancelled(request_id)

        key = (
            request.get("model_dir") or "",
            request.get("text_model_dir") or "",
            request.get("device") or "auto",
            int(request.get("threads") or 0),
        )
        offset = 0 if key == self._generator_key else 1
        total = offset + 4  # load model?, then core.generate.STAGES
        if offset:
            self._progress(request_id, 0, total, "load model")
            self._generator = self._generator_key = None  # let the old model go before the new one takes memory
            from .core.generate import TemosGenerator

            self._generator = TemosGenerator.load(key[0] or None, key[1] or None, key[2], key[3] or None)
            self._generator_key = key
        if should_stop():
            raise Cancelled("Generation was cancelled.")
        from .core.generate import GenerateRequest

        takes = self._generator.generate(
            GenerateRequest(prompt, duration_s, len(seeds), seeds[0], diversity),
            on_progress=lambda i, _n, label: self._progress(request_id, offset + i, total, label),
            should_stop=should_stop,
            seeds=seeds,
        )
        if should_stop():
            raise Cancelled("Generation was cancelled.")
        folder = Path(request.get("out_dir") or tempfile.mkdtemp(prefix="temos-worker-"))
        folder.mkdir(parents=True, exist_ok=True)
        rotations, translations = folder / "rotations.npy", folder / "root_translation.npy"
        np.save(rotations, np.stack([t.rotations for t in takes]).astype(np.float32))
        np.save(translations, np.stack([t.root_translation for t in takes]).astype(np.float32))
        return {
            "type": "result",
            "id": request_id,
            "dir": str(folder),
            "rotations": str(rotations),
            "root_translation": str(translations),
            "takes": [
                {"prompt": t.prompt, "seed": t.seed, "fps": t.fps, "diversity": t.diversity, "model_id": t.model_id}
                for t in takes
            ],
        }

    def _progress(self, request_id, step: int, total: int, label: str) -> None:
        self.channel.send({"type": "progress", "id": request_id, "step": step, "total": total, "label": label})


def missing_module_error(error: ModuleNotFoundError):
    from .errors import TemosError

    return TemosError(
        f"The Python at {sys.executable} cannot import {error.name!r}.",
        "Install torch, transformers and safetensors into that environment "
        "(e.g. `python -m pip install torch transformers safetensors`), or clear the Python Environment preference.",
    )


def error_reply(request_id, error: BaseException) -> dict:
    """An exception as an error reply: a project error keeps its message and hint, anything else is a bug."""
    from .errors import Cancelled, TemosError

    if isinstance(error, TemosError):
        return {
            "type": "error",
            "id": request_id,
            "message": error.message,
            "hint": error.hint,
            "kind": type(error).__name__,
            "cancelled": isinstance(error, Cancelled),
        }
    return {
        "type": "error",
        "id": request_id,
        "message": f"Generation failed in the worker: {type(error).__name__}: {error}",
        "hint": "The full traceback is in the system console; please report it.",
        "kind": type(error).__name__,
        "cancelled": False,
        "details": traceback.format_exc(),
    }


def read_requests(stream, requests: queue.SimpleQueue, worker: Worker) -> None:
    """Reader thread: cancels take effect at once, everything else is queued for the main loop; None at the end."""
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as e:
            worker.channel.send({"type": "error", "id": None, "message": f"Not JSON: {e}.", "kind": "Protocol"})
            continue
        if request.get("op") == "cancel":
            worker.cancel(request.get("id"))
        elif request.get("op") == "shutdown":
            break
        else:
            requests.put(request)
    requests.put(None)


def main() -> int:
    channel = claim_stdout()
    worker = Worker(channel)
    requests: queue.SimpleQueue = queue.SimpleQueue()
    reader = threading.Thread(target=read_requests, args=(sys.stdin, requests, worker), daemon=True)
    reader.start()
    channel.send(
        {"type": "hello", "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "python": platform.python_version()}
    )
    while (request := requests.get()) is not None:
        try:
            worker.handle(request)
        except ModuleNotFoundError as e:  # a check in a Python without torch
            channel.send(error_reply(request.get("id"), missing_module_error(e)))
        except Exception as e:
            channel.send(error_reply(request.get("id"), e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
