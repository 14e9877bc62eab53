"""Reliability of Generate inside Blender: a failure in the worker or in retargeting is reported and leaves the scene
as it was (and the next generation works), many generations in one session leave nothing behind once their takes
are deleted, and disabling the add-on mid-generation stops the worker without hanging or leaving a timer.

A tiny random-weight model keeps it fast. The soak runs 10 generations; ``TEMOS_SOAK=1`` runs 50."""

import os
import threading
import time

import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402  (Blender's own module: on sys.path once bpy is imported)

from tests.blender.generation_fixtures import scene_fingerprint  # noqa: E402

PROMPT = "a person jumps and lands"

# The first generation of a test loads torch, the text model and the tiny model (seconds on an idle machine).
pytestmark = pytest.mark.timeout(600, method="thread")


@pytest.fixture
def temos(tiny_addon):
    """The add-on on the tiny model; its modules by short name."""
    modules = tiny_addon.modules({
        "ops_generate": "blender.ops_generate", "bake": "blender.bake", "jobs": "blender.jobs",
        "generate": "core.generate", "retargeting": "retarget.retarget",
    })  # fmt: skip
    return type("Temos", (), {**modules, "prefs": tiny_addon.prefs, "module_name": tiny_addon.module_name})


@pytest.fixture
def rig(temos):
    """The SMPL armature with the panel set for 2 takes of 1 s; the model already loaded (so tests time only what
    they test)."""
    assert bpy.ops.temos.add_smpl_armature() == {"FINISHED"}
    props = bpy.context.scene.temos
    props.prompt = PROMPT
    props.n_takes = 2
    props.duration_s = 1.0
    props.random_seed = False
    props.seed = 5
    props.use_current_frame = False
    props.start_frame = 1
    temos.jobs.cached_generator(temos.ops_generate.model_settings(temos.prefs))
    return props.armature


def _nla_counts(obj) -> tuple[int, int]:
    ad = obj.animation_data
    tracks = list(ad.nla_tracks) if ad is not None else []
    return len(tracks), sum(len(t.strips) for t in tracks)


def _data_counts() -> dict[str, int]:
    """How many of each kind of datablock bpy.data holds."""
    return {
        name: len(getattr(bpy.data, name))
        for name in dir(bpy.data)
        if isinstance(getattr(bpy.data, name, None), bpy.types.bpy_prop_collection)
    }


def _run_threaded(temos, obj, timeout_s: float = 120.0) -> tuple[str, object]:
    """One generation the way the modal operator drives it: worker thread, pumped from the main thread."""
    ops = temos.ops_generate
    run = ops.GenerationRun(bpy.context, obj, ops.spec_from_scene(bpy.context)).start()
    deadline = time.monotonic() + timeout_s
    state = "RUNNING"
    while state == "RUNNING" and time.monotonic() < deadline:
        state = run.pump(bpy.context)
        time.sleep(0.002)
    assert run.job.wait(30), "the worker thread did not end"
    return state, run


def test_an_exception_in_the_worker_is_reported_changes_nothing_and_the_next_generation_works(temos, rig, monkeypatch):
    before = scene_fingerprint()
    nla_before = _nla_counts(rig)
    calls = []

    def broken_generate(self, request, *args, **kwargs):
        calls.append(threading.current_thread().name)
        raise RuntimeError("injected failure in the model")

    monkeypatch.setattr(temos.generate.TemosGenerator, "generate", broken_generate)

    state, run = _run_threaded(temos, rig)

    assert calls == ["temos-generate"]  # it ran on the worker thread
    assert state == "FAILED"
    assert run.message == "Generation failed: RuntimeError: injected failure in the model"
    assert "please report it" in run.hint
    assert scene_fingerprint() == before and _nla_counts(rig) == nla_before == (0, 0)

    monkeypatch.undo()
    state, run = _run_threaded(temos, rig)

    assert state == "FINISHED", run.message
    assert len(temos.bake.takes_of(rig)) == 2 and _nla_counts(rig) == (2, 2)


def test_an_exception_in_retargeting_is_reported_changes_nothing_and_the_next_generation_works(temos, rig, monkeypatch):
    bpy.ops.temos.generate()  # takes already on the rig: the failed generation must leave them as they are
    before = scene_fingerprint()
    actions_before = {a.name for a in bpy.data.actions}
    real_retarget = temos.retargeting.retarget
    calls = []

    def fail_on_the_second_take(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("injected failure in retargeting")
        return real_retarget(*args, **kwargs)

    monkeypatch.setattr(temos.retargeting, "retarget", fail_on_the_second_take)

    with pytest.raises(RuntimeError, match="Generation failed: FloatingPointError: injected failure in retargeting"):
        bpy.ops.temos.generate()

    assert len(calls) == 2
    assert scene_fingerprint() == before
    assert {a.name for a in bpy.data.actions} == actions_before and _nla_counts(rig) == (2, 2)

    monkeypatch.undo()
    assert bpy.ops.temos.generate() == {"FINISHED"}
    assert _nla_counts(rig) == (4, 4)
    assert [t.metadata.take_number for t in temos.bake.takes_of(rig)] == [1, 2, 3, 4]


def test_many_generations_leave_nothing_behind_once_their_takes_are_deleted(temos, rig):
    generations = 50 if os.environ.get("TEMOS_SOAK") == "1" else 10
    bpy.context.scene.temos.n_takes = 1
    counts_before = _data_counts()
    actions_before = {a.name for a in bpy.data.actions}
    threads_before = set(threading.enumerate())
    preview_before = bpy.context.scene.use_preview_range

    for i in range(generations):
        state, run = _run_threaded(temos, rig)
        assert state == "FINISHED", f"generation {i + 1}: {run.message}"

    takes = temos.bake.takes_of(rig)
    assert len(takes) == generations
    assert {a.name for a in bpy.data.actions} - actions_before == {t.action.name for t in takes}
    assert _data_counts() == {**counts_before, "actions": counts_before["actions"] + generations}
    # Every worker thread ended. (A thread of an earlier test, such as pytest-timeout's timer, may end meanwhile:
    # only threads started during these generations count.)
    assert [t.name for t in set(threading.enumerate()) - threads_before] == []

    props = bpy.context.scene.temos
    while temos.bake.takes_of(rig):
        props.take_index = 0
        assert bpy.ops.temos.take_delete() == {"FINISHED"}

    assert _data_counts() == counts_before
    assert {a.name for a in bpy.data.actions} == actions_before
    assert _nla_counts(rig) == (0, 0)
    assert bpy.context.scene.use_preview_range is preview_before  # the audition's preview range is undone


def test_disabling_the_addon_during_a_generation_stops_the_worker_without_hanging(temos, rig, monkeypatch,
                                                                                  find_leftovers):  # fmt: skip
    real_generate = temos.generate.TemosGenerator.generate
    started = threading.Event()

    def generate_until_stopped(self, request, on_progress=None, should_stop=lambda: False, seeds=None):
        started.set()
        deadline = time.monotonic() + 60
        while not should_stop() and time.monotonic() < deadline:  # a long generation, mid-way
            time.sleep(0.005)
        return real_generate(self, request, on_progress, should_stop, seeds)  # stops at its first check

    monkeypatch.setattr(temos.generate.TemosGenerator, "generate", generate_until_stopped)
    ops = temos.ops_generate
    run = ops.GenerationRun(bpy.context, rig, ops.spec_from_scene(bpy.context)).start()
    ops._current = run  # what TEMOS_OT_generate.invoke does when it starts the worker
    assert started.wait(60), "the worker never reached generate()"

    t0 = time.monotonic()
    addon_utils.disable(temos.module_name, default_set=True)
    took_s = time.monotonic() - t0

    assert took_s < 10, f"disabling took {took_s:.1f} s"
    assert not run.job.running, "the worker thread outlived the add-on"
    assert run.job.cancel_requested
    final = [m for m in run.job.poll() if isinstance(m, temos.jobs.Failed | temos.jobs.Done)]
    assert len(final) == 1 and final[0].cancelled
    assert find_leftovers(temos.module_name) == []  # no timer, handler, class or property left registered
    assert temos.jobs.loaded_model() is None  # the model's memory is let go
    assert temos.bake.takes_of(rig) == []
