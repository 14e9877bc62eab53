"""blender/bake.py: takes become actions keyed in bulk, one NLA track each, named without ever overwriting."""

import importlib

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

BONES = ("root", "spine", "arm")


@pytest.fixture
def bake(addon):
    return importlib.import_module(addon.__name__ + ".blender.bake")


@pytest.fixture
def compat(addon):
    return importlib.import_module(addon.__name__ + ".blender.compat")


@pytest.fixture
def rig():
    arm = bpy.data.armatures.new("Rig")
    obj = bpy.data.objects.new("Rig", arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for i, name in enumerate(BONES):
        bone = arm.edit_bones.new(name)
        bone.head, bone.tail = (0.0, 0.0, float(i)), (0.0, 0.0, i + 1.0)
        bone.parent = parent
        parent = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _random_quats(rng, frames):
    q = rng.normal(size=(frames, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _curves(bake, frames=26, fps=12.5, seed=0):
    rng = np.random.default_rng(seed)
    return bake.TakeCurves(
        fps=fps,
        rotations={b: _random_quats(rng, frames) for b in BONES},
        locations={"root": rng.normal(size=(frames, 3))},
    )


def _meta(bake, number=1, prompt="walk forward and wave", seed=0):
    return bake.TakeMetadata(prompt, seed, 1.0, 2.0, "tiny-test", "0.1.0", number, "gen1")


def _keys(fcurve):
    co = np.empty(2 * len(fcurve.keyframe_points), dtype=np.float32)
    fcurve.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def _curve(compat, action, path, index):
    return next(fc for fc in compat.fcurves_of(action) if fc.data_path == path and fc.array_index == index)


def test_action_keys_every_scene_frame_from_the_start_frame(bake, compat, rig):
    curves = _curves(bake, frames=26, fps=12.5)  # 26 frames of 80 ms: 2.08 s of motion

    action, _slot = bake.write_action(rig, "take", curves, scene_fps=25.0, start_frame=7)

    quat_curve = _curve(compat, action, 'pose.bones["arm"].rotation_quaternion', 0)
    keys = _keys(quat_curve)
    assert len(keys) == 52  # 2.08 s at 25 fps, as Blender counts frames: 1..120 at 30 fps is 4 s
    assert keys[0, 0] == 7 and keys[-1, 0] == 58
    assert np.all(np.diff(keys[:, 0]) == 1)
    assert {kp.interpolation for kp in quat_curve.keyframe_points} == {"LINEAR"}
    loc = _keys(_curve(compat, action, 'pose.bones["root"].location', 2))
    assert loc[::2, 1] == pytest.approx(curves.locations["root"][:, 2], abs=1e-5)  # every other frame is a sample


def test_action_has_four_quaternion_curves_per_bone_plus_root_location_grouped_by_bone(bake, compat, rig):
    action, _ = bake.write_action(rig, "take", _curves(bake), scene_fps=12.5, start_frame=1)

    curves = compat.fcurves_of(action)

    assert len(curves) == 4 * len(BONES) + 3
    for fc in curves:
        bone = fc.data_path.split('"')[1]
        assert compat.fcurve_group_name(fc) == bone


def test_keyed_quaternions_never_flip_sign_between_frames(bake, compat, rig):
    frames = 40
    q = np.tile([np.cos(0.05), np.sin(0.05), 0.0, 0.0], (frames, 1))
    q[1::2] *= -1  # same rotations, alternating signs
    curves = bake.TakeCurves(fps=12.5, rotations={"arm": q}, locations={})

    action, _ = bake.write_action(rig, "take", curves, scene_fps=12.5, start_frame=1)

    w = _keys(_curve(compat, action, 'pose.bones["arm"].rotation_quaternion', 0))[:, 1]
    assert np.all(w * w[0] > 0)


def test_euler_bone_gets_euler_keys_that_give_the_same_rotation(bake, compat, rig):
    from mathutils import Euler, Quaternion

    rig.pose.bones["arm"].rotation_mode = "YXZ"
    curves = _curves(bake, frames=10)

    action, slot = bake.write_action(rig, "take", curves, scene_fps=12.5, start_frame=1)
    compat.assign_action(rig, action, slot)

    paths = {fc.data_path for fc in compat.fcurves_of(action)}
    assert 'pose.bones["arm"].rotation_euler' in paths and 'pose.bones["arm"].rotation_quaternion' not in paths
    for frame in (1, 6, 10):
        bpy.context.scene.frame_set(frame)
        euler = rig.pose.bones["arm"].rotation_euler
        got = Euler(euler, "YXZ").to_quaternion()
        want = Quaternion(curves.rotations["arm"][frame - 1])
        assert abs(got.dot(want)) == pytest.approx(1.0, abs=1e-5)


def test_metadata_round_trips_through_custom_properties(bake, rig):
    action, _ = bake.write_action(rig, "take", _curves(bake), scene_fps=12.5, start_frame=1)
    meta = _meta(bake, number=3, seed=12345)

    meta.write(action)

    assert action["temos_prompt"] == "walk forward and wave" and action["temos_seed"] == 12345
    assert bake.TakeMetadata.read(action) == meta
    assert bake.TakeMetadata.read(bpy.data.actions.new("user's own")) is None


def test_take_numbers_continue_after_existing_actions_and_tracks(bake, rig):
    bpy.data.actions.new("walk forward and wave · take 2")
    track = rig.animation_data_create().nla_tracks.new()
    track.name = "walk forward and wave · take 5"

    assert bake.next_take_number(rig, "walk forward and wave") == 6
    assert bake.next_take_number(rig, "  walk   forward and wave ") == 6
    assert bake.next_take_number(rig, "jump") == 1


def test_long_prompts_are_cut_so_the_take_name_fits_blenders_name_limit(bake):
    prompt = "ü" * 100  # two bytes each in UTF-8

    name = bake.take_name(prompt, 16)

    assert len(name.encode("utf-8")) <= bake.MAX_NAME_BYTES
    assert name.endswith("… · take 16")
    assert bpy.data.actions.new(name).name == name  # Blender keeps it as it is


def test_generation_puts_each_take_on_its_own_track_with_one_strip_at_the_start_frame(bake, rig):
    with bake.GenerationBake(rig, scene_fps=25.0, start_frame=10) as generation:
        for i in range(3):
            generation.add(_curves(bake, seed=i), _meta(bake, number=i + 1, seed=i), mute=i > 0)
        generation.commit()

    tracks = rig.animation_data.nla_tracks
    assert [t.name for t in tracks] == [f"walk forward and wave · take {i}" for i in (1, 2, 3)]
    assert [t.mute for t in tracks] == [False, True, True]
    for i, track in enumerate(tracks):
        (strip,) = track.strips
        assert (strip.frame_start, strip.frame_end) == (10.0, 61.0)  # 26 frames at 12.5 fps = 2.08 s = 52 frames at 25
        assert strip.action.name == track.name and bake.TakeMetadata.read(strip.action).seed == i
    assert [t.metadata.take_number for t in bake.takes_of(rig)] == [1, 2, 3]
    assert rig.animation_data.action is None


def test_a_failing_take_removes_everything_the_generation_added(bake, rig):
    user_action = bpy.data.actions.new("user's walk")
    broken = bake.TakeCurves(fps=12.5, rotations={"no such bone": np.tile([1.0, 0, 0, 0], (5, 1))}, locations={})

    with pytest.raises(KeyError, match="no such bone"):
        with bake.GenerationBake(rig, scene_fps=25.0, start_frame=1) as generation:
            generation.add(_curves(bake), _meta(bake, 1), mute=False)
            generation.add(broken, _meta(bake, 2), mute=True)

    assert list(bpy.data.actions) == [user_action]
    assert rig.animation_data is None


def test_replacing_a_take_keeps_its_track_and_drops_the_old_action(bake, rig):
    with bake.GenerationBake(rig, scene_fps=12.5, start_frame=1) as generation:
        generation.add(_curves(bake, seed=0), _meta(bake, 1, seed=0), mute=False)
        generation.commit()
    (old,) = bake.takes_of(rig)
    old_action_name = old.action.name

    with bake.GenerationBake(rig, scene_fps=12.5, start_frame=1) as generation:
        generation.add(_curves(bake, seed=1), _meta(bake, 1, seed=99), mute=False, replace=old.track)
        generation.commit()

    (new,) = bake.takes_of(rig)
    assert new.track.name == new.action.name == old_action_name == "walk forward and wave · take 1"
    assert new.metadata.seed == 99
    assert len(bpy.data.actions) == 1  # the old action is gone; the new one took over its name


def test_deleting_a_take_removes_its_action_only_when_unused(bake, rig):
    with bake.GenerationBake(rig, scene_fps=12.5, start_frame=1) as generation:
        for i in (1, 2):
            generation.add(_curves(bake, seed=i), _meta(bake, i), mute=False)
        generation.commit()
    first, second = bake.takes_of(rig)
    second.action.use_fake_user = True
    kept_name = second.action.name

    bake.delete_take(rig, first.track)
    bake.delete_take(rig, second.track)

    assert bake.takes_of(rig) == []
    assert list(bpy.data.actions.keys()) == [kept_name]
