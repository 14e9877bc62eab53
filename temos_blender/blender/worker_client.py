"""Generation in a worker process (``temos_blender/worker.py``) instead of a thread: torch never enters Blender.

Used when the add-on's "Python Environment" preference names a Python that has torch (e.g. a venv or conda env with
a CUDA build). :class:`ProcessJob` has the interface of :class:`~.jobs.Job` (start, poll, cancel, run_blocking…):
its thread sends the request to the worker, relays the worker's progress, reads the takes back from ``.npy`` files,
and retargets them (numpy) here, so the operator bakes exactly what the thread job would give it.

One worker process is kept per Python and reused, so the model stays loaded between generations; it is stopped by
:func:`shutdown` (the add-on is disabled) or when another Python is chosen. Imports neither bpy nor torch.
"""

from __future__ import annotations

import collections
import importlib.util
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import Cancelled, TemosError
from ..take import Take
from . import jobs

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The add-on's package folder; the worker imports it by its folder name from the folder above."""

STARTUP_TIMEOUT_S = 60.0
"""How long a new worker may take to say hello (Python starting; torch is imported later, on the first request)."""
CANCEL_GRACE_S = 10.0
"""After a cancel, how long the worker may take to stop before it is killed (the model is then loaded again)."""
STDERR_LINES_KEPT = 40

RUNTIME_MODULES = ("torch", "transformers", "safetensors", "tokenizers", "huggingface_hub")


class WorkerError(TemosError):
    """The worker process could not be started, or it died."""


class WorkerProcess:
    """A running ``python -m <package>.worker``: send requests, read replies. Its stderr goes to the console."""

    def __init__(self, python: str, extra_paths: tuple[str, ...] = (), startup_timeout_s: float = STARTUP_TIMEOUT_S):
        self.python = str(python)
        self.extra_paths = tuple(str(p) for p in extra_paths)
        self.loaded_key: tuple | None = None
        """The model settings of the last generation that succeeded (the worker keeps that model loaded)."""
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._send_lock = threading.Lock()
        if not Path(self.python).is_file():
            raise WorkerError(
                f"The Python environment '{self.python}' does not exist.",
                "Set Python Environment in the add-on's preferences to a python executable, or clear it.",
            )
        started = time.perf_counter()
        try:
            self._process = subprocess.Popen(
                worker_command(self.python),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=worker_environment(self.extra_paths),
                cwd=str(PACKAGE_DIR.parent),
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as e:
            raise WorkerError(
                f"Cannot start '{self.python}': {e}.", "Choose a python executable in the add-on's preferences."
            ) from None
        threading.Thread(target=self._read_stdout, name="temos-worker-stdout", daemon=True).start()
        threading.Thread(target=self._read_stderr, name="temos-worker-stderr", daemon=True).start()
        hello = self.next_reply(startup_timeout_s)
        if hello is None or hello.get("type") != "hello":
            self.kill()
            raise WorkerError(
                f"The worker in '{self.python}' did not start ({self.describe_exit()}).",
                "It must be Python 3.10 or later; see the system console for its output.",
            )
        self.hello = hello
        self.startup_s = time.perf_counter() - started

    # I/O -----------------------------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        for line in self._process.stdout:
            try:
                self._replies.put(json.loads(line))
            except json.JSONDecodeError:
                self._stderr_tail.append(line.rstrip())
        self._replies.put(None)  # end of output: the process has ended

    def _read_stderr(self) -> None:
        for line in self._process.stderr:
            self._stderr_tail.append(line.rstrip())
            print(f"[temos worker] {line.rstrip()}", file=sys.stderr)

    def send(self, message: dict) -> None:
        line = json.dumps(message) + "\n"
        with self._send_lock:
            try:
                self._process.stdin.write(line)
                self._process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise WorkerError(f"The worker process has ended ({self.describe_exit()}).") from None

    def next_reply(self, timeout_s: float | None) -> dict | None:
        """The next reply; None on timeout or when the process has ended (then :attr:`alive` is False)."""
        try:
            reply = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if reply is None:
            self._replies.put(None)  # keep saying "ended" to later calls
        return reply

    # life ----------------------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    @property
    def pid(self) -> int:
        return self._process.pid

    def describe_exit(self) -> str:
        code = self._process.poll()
        state = "still running" if code is None else f"exit code {code}"
        tail = " | ".join(line for line in list(self._stderr_tail)[-5:] if line)
        return f"{state}; last output: {tail}" if tail else state

    def kill(self) -> None:
        if self.alive:
            self._process.kill()
        self._process.wait()

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to end; kill it if it does not within ``timeout_s``."""
        if self.alive:
            try:
                self.send({"op": "shutdown"})
                self._process.stdin.close()
                self._process.wait(timeout_s)
            except (WorkerError, OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def worker_command(python: str) -> list[str]:
    return [str(python), "-u", "-m", f"{PACKAGE_DIR.name}.worker"]


def worker_environment(extra_paths: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a worker: this one, with only the add-on's folder (and ``extra_paths``) on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_DIR.parent), *extra_paths])
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def bundled_runtime_paths() -> tuple[str, ...]:
    """The folders this Python would import torch and the other runtime modules from (found without importing
    them), for running the worker with Blender's own Python on the extension's bundled wheels."""
    paths = []
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            folder = str(Path(spec.origin).resolve().parent.parent)
            if folder not in paths:
                paths.append(folder)
    return tuple(paths)


# One worker per Python, reused ---------------------------------------------------------------------------------

_worker_lock = threading.Lock()
_worker: WorkerProcess | None = None
_request_ids = itertools.count(1)


def get_worker(python: str, extra_paths: tuple[str, ...] = ()) -> WorkerProcess:
    """The running worker for ``python``, started (or restarted, if it died or another Python was chosen) as needed."""
    global _worker
    with _worker_lock:
        worker = _worker
        if (
            worker is not None
            and worker.alive
            and (worker.python, worker.extra_paths)
            == (
                str(python),
                tuple(map(str, extra_paths)),
            )
        ):
            return worker
        _worker = None
        if worker is not None:
            worker.close()
        _worker = WorkerProcess(python, extra_paths)
        return _worker


def shutdown() -> None:
    """Stop the worker process (the add-on is being disabled or Blender is quitting)."""
    global _worker
    with _worker_lock:
        worker, _worker = _worker, None
    if worker is not None:
        worker.close()


def check_python(python: str, extra_paths: tuple[str, ...] = (), timeout_s: float = 120.0) -> dict:
    """Start a worker in ``python`` and ask what it can run: ``{"torch": "2.13.0", "cuda": True, "torch_file": …}``.

    Raises a :class:`~..errors.TemosError` (with what to do) when it cannot run generation."""
    worker = WorkerProcess(python, extra_paths)
    try:
        worker.send({"op": "check"})
        reply = worker.next_reply(timeout_s)
        if reply is None:
            raise WorkerError(f"The worker in '{python}' gave no answer ({worker.describe_exit()}).")
        if reply.get("type") == "error":
            raise error_from_reply(reply)
        return reply
    finally:
        worker.close()


# The work of one generation, run on the job's thread ------------------------------------------------------------


def model_key(settings: jobs.ModelSettings) -> tuple:
    return (settings.model_dir or "", settings.text_model_dir or "", settings.device or "auto", int(settings.threads))


def stage_count(plan: jobs.GenerationPlan, python: str) -> int:
    """Stages of :func:`generate_and_retarget`: "load model" only when the worker does not hold this model yet."""
    worker = _worker
    loaded = worker is not None and worker.alive and worker.python == str(python)
    loaded = loaded and worker.loaded_key == model_key(plan.model)
    return (0 if loaded else 1) + 4 + len(jobs.STAGES_AFTER_CORE)


def error_from_reply(reply: dict) -> TemosError:
    """A worker's error reply as the exception the job turns into ``Failed``."""
    if reply.get("details"):
        print(f"[temos worker] {reply['details']}", file=sys.stderr)
    cls = Cancelled if reply.get("cancelled") else TemosError
    return cls(reply.get("message") or "The worker failed without a message.", reply.get("hint") or "")


def takes_from_reply(reply: dict) -> list[Take]:
    """Read the result's arrays, delete its folder, and return the takes."""
    try:
        rotations = np.load(reply["rotations"])
        translations = np.load(reply["root_translation"])
    finally:
        shutil.rmtree(reply["dir"], ignore_errors=True)
    return [
        Take(
            prompt=meta["prompt"],
            seed=int(meta["seed"]),
            fps=float(meta["fps"]),
            rotations=rotations[i],
            root_translation=translations[i],
            diversity=float(meta["diversity"]),
            model_id=meta["model_id"],
        )
        for i, meta in enumerate(reply["takes"])
    ]


def generate_and_retarget(
    plan: jobs.GenerationPlan,
    report: jobs.ReportFn,
    should_stop: jobs.StopFn,
    python: str,
    extra_paths: tuple[str, ...] = (),
) -> list[tuple[Take, object]]:
    """The worker generates, this thread retargets: ``[(take, curves)]`` as ``jobs.generate_and_retarget`` gives."""
    after = len(jobs.STAGES_AFTER_CORE)
    worker = get_worker(python, extra_paths)
    request_id = next(_request_ids)
    settings = plan.model
    worker.send(
        {
            "op": "generate",
            "id": request_id,
            "prompt": plan.prompt,
            "duration_s": plan.duration_s,
            "seeds": list(plan.seeds),
            "diversity": plan.diversity,
            "model_dir": settings.model_dir,
            "text_model_dir": settings.text_model_dir,
            "device": settings.device,
            "threads": settings.threads,
        }
    )
    total = 4 + after
    cancelled_at = None
    while True:
        if should_stop() and cancelled_at is None:
            worker.send({"op": "cancel", "id": request_id})
            cancelled_at = time.perf_counter()
        if cancelled_at is not None and time.perf_counter() - cancelled_at > CANCEL_GRACE_S:
            worker.kill()  # stuck inside one long stage: the next generation starts a new worker
            raise Cancelled("Generation was cancelled.")
        reply = worker.next_reply(0.1)
        if reply is None:
            if not worker.alive:
                raise WorkerError(
                    f"The worker process ended during generation ({worker.describe_exit()}).",
                    "See the system console for its output; the next generation starts a new worker.",
                )
            continue
        if reply.get("id") != request_id:
            continue  # a late reply to an earlier, abandoned request
        kind = reply.get("type")
        if kind == "progress":
            total = int(reply["total"]) + after
            report(int(reply["step"]), total, str(reply["label"]))
        elif kind == "error":
            raise error_from_reply(reply)
        elif kind == "result":
            worker.loaded_key = model_key(settings)
            takes = takes_from_reply(reply)
            break
    report(total - 2, total, "retarget")
    out = []
    for take in takes:
        if should_stop():
            raise Cancelled("Generation was cancelled.")
        out.append((take, plan.retarget(take)))
    return out


def make_job(plan: jobs.GenerationPlan, python_env: str = "", isolate: bool = False) -> jobs.Job:
    """The job for ``plan``: in the worker of ``python_env`` when it is set; else in a worker of Blender's own Python
    on the bundled wheels when ``isolate``; else on a thread inside Blender."""
    if python_env:
        return ProcessJob(plan, python_env)
    if isolate:
        return ProcessJob(plan, sys.executable, bundled_runtime_paths())
    return jobs.Job(partial(jobs.generate_and_retarget, plan))


def job_stage_count(plan: jobs.GenerationPlan, python_env: str = "", isolate: bool = False) -> int:
    """The number of stages the job of :func:`make_job` reports."""
    if python_env or isolate:
        return stage_count(plan, python_env or sys.executable)
    return jobs.stage_count(plan)


class ProcessJob(jobs.Job):
    """A :class:`~.jobs.Job` whose work runs generation in the worker process of ``python``."""

    def __init__(
        self, plan: jobs.GenerationPlan, python: str, extra_paths: tuple[str, ...] = (), name: str = "temos-worker"
    ):
        super().__init__(partial(generate_and_retarget, plan, python=python, extra_paths=extra_paths), name)
        self.plan = plan
        self.python = python
