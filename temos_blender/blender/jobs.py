"""Generation off Blender's main thread: a :class:`Job` runs the work and talks back through a queue.

The worker never touches bpy. It loads the model (once, cached), samples the takes with ``core.generate`` and
retargets them with numpy; the main thread drains :meth:`Job.poll` from a modal timer and bakes the result.
Messages: :class:`Progress` (step, total, label), then exactly one :class:`Done` (result) or :class:`Failed`
(message, hint). Cancelling sets a flag the work checks between stages; the job then ends with
``Failed(cancelled=True)`` and nothing was produced.

Thread, not process: torch's kernels and the tokenizer run without the GIL, the model stays loaded between
generations in the same process, and takes come back as numpy arrays without pickling. ``benchmarks/bench_ui.py``
measures what the main thread feels while a job runs (the longest gap between its timer ticks).
"""

from __future__ import annotations

import queue
import threading
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Cancelled, TemosError

ReportFn = Callable[[int, int, str], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True)
class Progress:
    """Stage ``step`` of ``total`` (0-based) has started."""

    step: int
    total: int
    label: str


@dataclass(frozen=True)
class Done:
    """The work finished; ``result`` is what it returned."""

    result: object


@dataclass(frozen=True)
class Failed:
    """The work raised. ``cancelled`` when the user stopped it; ``details`` holds the traceback of a bug."""

    message: str
    hint: str = ""
    cancelled: bool = False
    details: str = ""


Message = Progress | Done | Failed

_running_jobs: weakref.WeakSet = weakref.WeakSet()


class Job:
    """``work(report, should_stop)`` run on a worker thread (:meth:`start`) or in the caller's (:meth:`run_blocking`)."""

    def __init__(self, work: Callable[[ReportFn, StopFn], object], name: str = "temos-generate"):
        self._work = work
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished: Done | Failed | None = None
        """The final message, once :meth:`poll` (or :meth:`run_blocking`) has seen it."""

    def start(self) -> Job:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        _running_jobs.add(self)
        self._thread.start()
        return self

    def run_blocking(self) -> Done | Failed:
        """Run the work here and now (background mode, scripts); returns the final message."""
        self._run()
        return [m for m in self.poll() if isinstance(m, Done | Failed)][-1]

    def cancel(self) -> None:
        """Ask the work to stop at its next check; the job then ends with ``Failed(cancelled=True)``."""
        self._stop.set()

    @property
    def cancel_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ends; returns False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def poll(self) -> list[Message]:
        """Every message sent since the last call, oldest first (never blocks)."""
        out = []
        while True:
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                return out
            if isinstance(message, Done | Failed):
                self.finished = message
            out.append(message)

    def _report(self, step: int, total: int, label: str) -> None:
        self._queue.put(Progress(step, total, label))

    def _run(self) -> None:
        try:
            result = self._work(self._report, self._stop.is_set)
            if self._stop.is_set():
                raise Cancelled("Generation was cancelled.")
        except Cancelled as e:
            self._queue.put(Failed(e.message, e.hint, cancelled=True))
        except TemosError as e:
            self._queue.put(Failed(e.message, e.hint))
        except Exception as e:  # a bug: keep the traceback for the console, show one line to the user
            self._queue.put(
                Failed(
                    f"Generation failed: {type(e).__name__}: {e}",
                    "The full traceback is in the system console; please report it.",
                    details=traceback.format_exc(),
                )
            )
        else:
            self._queue.put(Done(result))
        finally:
            _running_jobs.discard(self)


def cancel_all(timeout_s: float = 5.0) -> None:
    """Stop every running job and wait for its thread (the add-on is being disabled or Blender is quitting)."""
    jobs = list(_running_jobs)
    for job in jobs:
        job.cancel()
    for job in jobs:
        job.wait(timeout_s)


# The model, loaded once per settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSettings:
    """The preferences that decide which model is loaded, and where it runs."""

    model_dir: str = ""
    """Model folder; empty for the bundled model."""
    text_model_dir: str = ""
    """Text-model folder override; empty for the default."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    threads: int = 0
    """torch CPU threads; 0 keeps torch's current setting."""


_model_lock = threading.Lock()
_model: tuple[ModelSettings, object] | None = None


def cached_generator(settings: ModelSettings):
    """The ``TemosGenerator`` for ``settings``, loading it on first use or when the settings changed."""
    global _model
    with _model_lock:
        if _model is not None and _model[0] == settings:
            return _model[1]
        _model = None  # let the old model go before the new one takes memory
        from ..core.generate import TemosGenerator  # torch is imported here, on the worker, on first use

        generator = TemosGenerator.load(
            settings.model_dir or None, settings.text_model_dir or None, settings.device, settings.threads or None
        )
        _model = (settings, generator)
        return generator


def loaded_model() -> tuple[ModelSettings, object] | None:
    """(settings, generator) of the cached model, or None."""
    return _model


def model_is_loaded(settings: ModelSettings) -> bool:
    model = _model
    return model is not None and model[0] == settings


def forget_model() -> None:
    """Drop the cached model (the next generation loads it again)."""
    global _model
    with _model_lock:
        _model = None


# The work of one generation ------------------------------------------------------------------------------------

STAGES_AFTER_CORE = ("retarget", "bake")


@dataclass(frozen=True)
class GenerationPlan:
    """Everything the worker needs, as plain data gathered on the main thread."""

    prompt: str
    duration_s: float
    seeds: tuple[int, ...]
    """One take per seed."""
    diversity: float
    model: ModelSettings
    retarget: Callable
    """``retarget(take) -> curves``: numpy only, bound to the rig and bone map on the main thread."""


def stage_count(plan: GenerationPlan) -> int:
    from_core = 4  # encode text, sample, decode, convert (core.generate.STAGES, without importing torch here)
    return (0 if model_is_loaded(plan.model) else 1) + from_core + len(STAGES_AFTER_CORE)


def generate_and_retarget(plan: GenerationPlan, report: ReportFn, should_stop: StopFn) -> list[tuple[object, object]]:
    """Load (if needed) → generate → retarget. Returns ``[(take, curves)]``; the caller bakes (stage "bake")."""
    total = stage_count(plan)
    offset = 0
    if not model_is_loaded(plan.model):
        report(0, total, "load model")
        offset = 1
    generator = cached_generator(plan.model)
    if should_stop():
        raise Cancelled("Generation was cancelled.")
    from ..core.generate import GenerateRequest

    request = GenerateRequest(plan.prompt, plan.duration_s, len(plan.seeds), plan.seeds[0], plan.diversity)
    takes = generator.generate(
        request, on_progress=lambda i, _n, label: report(offset + i, total, label), should_stop=should_stop,
        seeds=list(plan.seeds),
    )  # fmt: skip
    report(total - 2, total, "retarget")
    out = []
    for take in takes:
        if should_stop():
            raise Cancelled("Generation was cancelled.")
        out.append((take, plan.retarget(take)))
    return out
