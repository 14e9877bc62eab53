"""Generate: prompt → N takes on an armature, as N actions on N NLA tracks, undoable, cancellable, and refusing bad
input without touching the scene. A tiny random-weight model keeps it fast; the motions mean nothing, the plumbing
is what is tested."""

import importlib
import json
import shutil
import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from temos_blender.skeleton import SMPL_JOINTS  # noqa: E402
from tests.blender.generation_fixtures import build_mixamo_rig, scene_fingerprint  # noqa: E402

PROMPT = "a person walks forward and waves"

# The first generation of a session imports torch and transformers and loads the text model (seconds when the
# machine is idle, a minute or more when it is busy); later ones take a fraction of a second.
pytestmark = pytest.mark.timeout(600, method="thread")


@pytest.fixture
def temos(tiny_addon):
    """The add-on on the tiny model; gives its blender modules by name."""
    modules = tiny_addon.modules({n: f"blender.{n}" for n in ("ops_generate", "bake", "jobs")})
    return type("Temos", (), {**modules, "prefs": tiny_addon.prefs})


def _settings(prompt=PROMPT, takes=3, duration=2.0, seed=7, start=5):
    props = bpy.context.scene.temos
    props.prompt = prompt
    props.n_takes = takes
    props.duration_s = duration
    props.random_seed = False
    props.seed = seed
    props.use_current_frame = False
    props.start_frame = start
    return props


def _smpl_rig():
    assert bpy.ops.temos.add_smpl_armature() == {"FINISHED"}
    return bpy.context.scene.temos.armature


def _keys(fcurve):
    co = np.empty(2 * len(fcurve.keyframe_points), dtype=np.float32)
    fcurve.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def _all_keys(compat, action):
    return {(fc.data_path, fc.array_index): _keys(fc) for fc in compat.fcurves_of(action)}


# 2 s at the model's 12.5 fps is 25 frames; at the scene's 24 fps a 2 s take is 48 frames.
EXPECTED_FRAMES = 48


def _check_takes(temos, obj, n, bones, start=5):
    compat = importlib.import_module(temos.bake.__name__.rpartition(".")[0] + ".compat")
    takes = temos.bake.takes_of(obj)
    assert len(takes) == n
    assert len(obj.animation_data.nla_tracks) == n
    assert len({t.action.name for t in takes}) == n
    for i, take in enumerate(takes):
        assert take.track.name == take.action.name == f"{PROMPT} · take {i + 1}"
        assert len(take.track.strips) == 1
        assert (take.strip.frame_start, take.strip.frame_end) == (start, start + EXPECTED_FRAMES - 1)
        curves = compat.fcurves_of(take.action)
        rotated = {fc.data_path.split('"')[1] for fc in curves if fc.data_path.endswith("rotation_quaternion")}
        assert rotated == set(bones)
        assert all(len(fc.keyframe_points) == EXPECTED_FRAMES for fc in curves if "rotation" in fc.data_path)
        meta = take.metadata
        assert (meta.prompt, meta.seed, meta.duration_s, meta.model_id) == (PROMPT, 7 + i, 2.0, "tiny-test")
        assert meta.take_number == i + 1 and meta.addon_version and meta.generation == takes[0].metadata.generation
    assert [t.track.mute for t in takes] == [False] + [True] * (n - 1)
    assert takes[0].track.is_solo
    return takes


def test_generate_puts_one_action_track_and_strip_per_take_on_an_smpl_rig(temos):
    bpy.context.scene.render.fps = 24
    rig = _smpl_rig()
    _settings(takes=3)

    assert bpy.ops.temos.generate() == {"FINISHED"}

    _check_takes(temos, rig, 3, SMPL_JOINTS)
    assert len(rig.temos_rig.bone_map) == 22 and all(item.bone == item.joint for item in rig.temos_rig.bone_map)
    assert rig.animation_data.action is None  # the user's active action slot is left alone


def test_generate_puts_takes_on_a_mixamo_a_pose_rig(temos):
    bpy.context.scene.render.fps = 24
    rig = build_mixamo_rig()
    _settings(takes=2)

    assert bpy.ops.temos.generate() == {"FINISHED"}

    bones = [b.name for b in rig.data.bones if b.name != "mixamorig:HeadTop_End"]
    takes = _check_takes(temos, rig, 2, bones)
    assert 'pose.bones["mixamorig:Hips"].location' in {
        fc.data_path
        for fc in importlib.import_module(temos.bake.__name__.rpartition(".")[0] + ".compat").fcurves_of(
            takes[0].action
        )
    }


def test_same_prompt_seed_and_settings_give_identical_keys(temos):
    compat = importlib.import_module(temos.bake.__name__.rpartition(".")[0] + ".compat")
    rig = _smpl_rig()
    _settings(takes=1)
    bpy.ops.temos.generate()
    bpy.ops.temos.generate()

    first, second = temos.bake.takes_of(rig)
    a, b = _all_keys(compat, first.action), _all_keys(compat, second.action)
    assert second.track.name == f"{PROMPT} · take 2"  # a new name: nothing is overwritten
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_random_seed_is_drawn_per_generation_and_written_back_to_the_settings(temos):
    rig = _smpl_rig()
    props = _settings(takes=2)
    props.random_seed = True

    bpy.ops.temos.generate()

    takes = temos.bake.takes_of(rig)
    assert [t.metadata.seed for t in takes] == [props.seed, props.seed + 1]


def test_one_undo_step_removes_the_whole_generation(temos):
    _smpl_rig()
    _settings(takes=2)
    bpy.ops.ed.undo_push(message="before generating")
    before = scene_fingerprint()

    # The second argument asks bpy to push the operator's undo step, as clicking Generate does.
    assert bpy.ops.temos.generate("EXEC_DEFAULT", True) == {"FINISHED"}
    assert scene_fingerprint() != before
    bpy.ops.ed.undo()

    assert scene_fingerprint() == before
    assert not [a for a in bpy.data.actions if "temos_prompt" in a]


def test_save_and_reload_keep_takes_strips_and_metadata(temos, tmp_path):
    compat = importlib.import_module(temos.bake.__name__.rpartition(".")[0] + ".compat")
    rig = _smpl_rig()
    _settings(takes=2)
    bpy.ops.temos.generate()
    saved = {t.action.name: (_all_keys(compat, t.action), t.metadata) for t in temos.bake.takes_of(rig)}
    path = tmp_path / "takes.blend"

    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))

    rig = bpy.data.objects["SMPL"]
    loaded = temos.bake.takes_of(rig)
    assert [t.action.name for t in loaded] == list(saved)
    for take in loaded:
        keys, meta = saved[take.action.name]
        assert take.metadata == meta
        got = _all_keys(compat, take.action)
        assert got.keys() == keys.keys() and all(np.array_equal(got[k], keys[k]) for k in keys)
        assert (take.strip.frame_start, take.strip.frame_end) == (5.0, 5.0 + EXPECTED_FRAMES - 1)
    assert len(rig.temos_rig.bone_map) == 22


def test_cancelling_before_the_worker_starts_leaves_the_scene_unchanged(temos):
    rig = _smpl_rig()
    _settings(takes=2)
    before = scene_fingerprint()
    ops = temos.ops_generate

    run = ops.GenerationRun(bpy.context, rig, ops.spec_from_scene(bpy.context))
    run.cancel()
    run.start()
    state = run.pump(bpy.context)

    assert state == "CANCELLED"
    assert run.job.wait(30)
    assert isinstance(run.job.poll()[-1], temos.jobs.Failed) and run.job.finished.cancelled
    assert scene_fingerprint() == before


def test_cancelling_mid_generation_stops_the_worker_and_changes_nothing(temos):
    rig = _smpl_rig()
    _settings(takes=4)
    before = scene_fingerprint()
    ops = temos.ops_generate
    run = ops.GenerationRun(bpy.context, rig, ops.spec_from_scene(bpy.context)).start()

    deadline = time.monotonic() + 60
    while run.pump(bpy.context) == "RUNNING" and run.progress.label == "starting" and time.monotonic() < deadline:
        time.sleep(0.005)
    run.cancel()  # what Esc and the Cancel button do

    assert run.pump(bpy.context) == "CANCELLED"
    assert run.job.wait(60)
    assert scene_fingerprint() == before


def test_modal_path_reports_every_stage_then_bakes_on_the_main_thread(temos):
    rig = _smpl_rig()
    _settings(takes=2)
    ops = temos.ops_generate
    temos.jobs.forget_model()
    run = ops.GenerationRun(bpy.context, rig, ops.spec_from_scene(bpy.context)).start()

    deadline = time.monotonic() + 300
    state = "RUNNING"
    while state == "RUNNING" and time.monotonic() < deadline:
        state = run.pump(bpy.context)
        time.sleep(0.002)

    assert state == "FINISHED", run.message
    assert run.stages[:6] == ["load model", "encode text", "sample", "decode", "convert", "retarget"]
    assert run.stages[6:] == ["bake take 1/2", "bake take 2/2", "bake"]
    assert run.progress.step == run.progress.total - 1 == 6
    assert len(temos.bake.takes_of(rig)) == 2


def _linked_rig(tmp_path, override=False):
    path = tmp_path / "library.blend"
    rig = build_mixamo_rig("Linked")
    bpy.data.libraries.write(str(path), {rig})
    bpy.data.objects.remove(rig)
    with bpy.data.libraries.load(str(path), link=True) as (_src, dst):
        dst.objects = ["Linked"]
    obj = dst.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    if override:
        obj = obj.override_create(remap_local_usages=True)
    bpy.context.scene.temos.armature = obj
    return obj


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty prompt", "prompt is empty"),
        ("zero takes", "takes must be between 1 and 16; got 0"),
        ("zero duration", "Duration must be between 1 and 10 s; got 0 s"),
        ("no armature", "No armature to put the takes on"),
        ("linked armature", "is linked from"),
        ("library override", "is a library override"),
        ("no model", "has no config.json"),
    ],
)
def test_bad_input_is_reported_and_changes_nothing(temos, tmp_path, case, message):
    if case == "no armature":
        _settings()
    elif case.startswith(("linked", "library")):
        _settings()
        _linked_rig(tmp_path, override=case == "library override")
    else:
        _smpl_rig()
        _settings(
            prompt="   " if case == "empty prompt" else PROMPT,
            takes=0 if case == "zero takes" else 2,
            duration=0.0 if case == "zero duration" else 2.0,
        )
    if case == "no model":
        temos.prefs.model_dir = str(tmp_path)
    before = scene_fingerprint()

    with pytest.raises(RuntimeError, match=message):
        bpy.ops.temos.generate()

    assert scene_fingerprint() == before
    assert message.lower() in temos.ops_generate.generate_blocker(bpy.context).lower()


def test_a_failure_while_baking_removes_everything_the_generation_added(temos, monkeypatch):
    _smpl_rig()
    _settings(takes=3)
    before = scene_fingerprint()
    real_write = temos.bake.write_action
    calls = []

    def fail_on_the_third_take(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("out of memory while keying")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(temos.bake, "write_action", fail_on_the_third_take)

    with pytest.raises(RuntimeError, match="Baking the takes onto 'SMPL' failed: out of memory while keying"):
        bpy.ops.temos.generate()

    assert len(calls) == 3
    assert scene_fingerprint() == before


def test_model_is_loaded_once_and_reloaded_when_the_preferences_change(temos):
    jobs = temos.jobs
    _smpl_rig()
    _settings(takes=1)

    bpy.ops.temos.generate()
    first = jobs.loaded_model()
    bpy.ops.temos.generate()
    again = jobs.loaded_model()
    other_threads = temos.ops_generate.default_cpu_threads() + 1
    temos.prefs.cpu_threads = other_threads
    bpy.ops.temos.generate()
    changed = jobs.loaded_model()

    assert first is not None and again[1] is first[1]
    assert changed[0].threads == other_threads and changed[1] is not first[1]


def test_invoking_in_background_mode_runs_synchronously(temos):
    rig = _smpl_rig()
    _settings(takes=1)

    assert bpy.ops.temos.generate("INVOKE_DEFAULT") == {"FINISHED"}

    assert len(temos.bake.takes_of(rig)) == 1
    assert temos.ops_generate.current_run() is None


def test_add_smpl_armature_builds_the_22_joint_rig_facing_minus_y_with_a_body(temos):
    rig = _smpl_rig()

    bones = rig.data.bones
    assert sorted(b.name for b in bones) == sorted(SMPL_JOINTS)
    assert bones["left_knee"].parent.name == "left_hip" and bones["pelvis"].parent is None
    assert bones["left_hip"].head_local.x > 0 > bones["right_hip"].head_local.x  # left is +X
    assert bones["left_foot"].tail_local.y < bones["left_foot"].head_local.y  # toes point to -Y
    assert bones["head"].head_local.z > bones["pelvis"].head_local.z  # Z-up
    (body,) = [o for o in bpy.data.objects if o.parent == rig]
    assert body.type == "MESH" and body.modifiers[0].object == rig
    assert {g.name for g in body.vertex_groups} == set(SMPL_JOINTS)
    assert temos.ops_generate.rig_status(rig).bone_map.num_mapped == 22


def test_panel_disables_generate_and_says_why(temos, layout_recorder):
    _smpl_rig()
    _settings(prompt="")

    layout_recorder.record_draw(bpy.types.TEMOS_PT_main.draw)

    text = " ".join(layout_recorder.texts())
    assert "The prompt is empty." in text
    assert "22/22 joints mapped (detected) — edit below" in text
    assert ("operator", "temos.generate") in layout_recorder.lines


def test_a_prompt_the_model_was_measured_not_to_make_is_flagged_and_still_generated(temos, tmp_path, layout_recorder):
    model = shutil.copytree(temos.prefs.model_dir, tmp_path / "model")
    limits = {"limits": [{"action": "sitting down", "words": ["sit", "sits"], "measured": "no clip sits down"}]}
    (model / "limits.json").write_text(json.dumps(limits), encoding="utf-8")
    temos.prefs.model_dir = str(model)
    rig = _smpl_rig()
    _settings(prompt="A person SITS down", takes=1)

    layout_recorder.record_draw(bpy.types.TEMOS_PT_main.draw)

    text = " ".join(layout_recorder.texts())
    assert "This model was measured not to make sitting down (no clip sits down)" in text
    assert temos.ops_generate.generate_blocker(bpy.context) == ""  # a warning, not a reason to refuse
    assert bpy.ops.temos.generate() == {"FINISHED"}
    assert len(temos.bake.takes_of(rig)) == 1
    _settings(prompt="a person stands up", takes=1)
    assert temos.ops_generate.prompt_warnings(bpy.context) == []


def test_panel_shows_progress_and_cancel_while_a_generation_runs(temos, layout_recorder):
    rig = _smpl_rig()
    _settings(takes=1)
    ops = temos.ops_generate
    run = ops.GenerationRun(bpy.context, rig, ops.spec_from_scene(bpy.context))
    ops._current = run  # what TEMOS_OT_generate.invoke does when it starts the worker
    try:
        layout_recorder.record_draw(bpy.types.TEMOS_PT_main.draw)
        with pytest.raises(RuntimeError, match="A generation is running"):
            bpy.ops.temos.generate()
        assert bpy.ops.temos.cancel() == {"FINISHED"}
    finally:
        ops._current = None

    assert ("progress",) in layout_recorder.lines
    assert ("operator", "temos.cancel") in layout_recorder.lines
    assert ("operator", "temos.generate") not in layout_recorder.lines
    assert run.job.cancel_requested


def test_job_reports_progress_then_one_final_message_with_the_errors_hint(temos):
    jobs = temos.jobs
    errors = importlib.import_module(temos.jobs.__name__.split(".blender")[0] + ".errors")

    def works(report, should_stop):
        report(0, 2, "first")
        report(1, 2, "second")
        return "result"

    def refuses(report, should_stop):
        raise errors.PromptError("Duration must be between 1 and 10 s; got 0.", "Set a duration.")

    def has_a_bug(report, should_stop):
        return 1 / 0

    ok = jobs.Job(works).start()
    assert ok.wait(30)
    assert ok.poll() == [jobs.Progress(0, 2, "first"), jobs.Progress(1, 2, "second"), jobs.Done("result")]
    assert jobs.Job(refuses).run_blocking() == jobs.Failed(
        "Duration must be between 1 and 10 s; got 0.", "Set a duration."
    )
    bug = jobs.Job(has_a_bug).run_blocking()
    assert bug.message == "Generation failed: ZeroDivisionError: division by zero" and "Traceback" in bug.details
    stopped = jobs.Job(works)
    stopped.cancel()
    assert stopped.run_blocking().cancelled
