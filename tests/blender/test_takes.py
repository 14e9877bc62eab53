"""The take browser: audition, rename, delete, keep (as strip / as the active action), regenerate, bake to NLA.

Most tests bake takes directly from made-up curves (the operators only see actions, tracks and metadata); the
regenerate tests run the tiny model, since they must reproduce or replace a real take."""


import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from temos_blender.skeleton import SMPL_JOINTS  # noqa: E402
from tests.blender.generation_fixtures import scene_fingerprint  # noqa: E402

PROMPT = "a person jumps twice"
pytestmark = pytest.mark.timeout(600, method="thread")  # the regenerate tests may load the text model


@pytest.fixture
def temos(tiny_addon):
    return type("Temos", (), tiny_addon.modules({n: f"blender.{n}" for n in ("ops_generate", "bake", "compat", "props")}))


@pytest.fixture
def rig(temos):
    bpy.ops.temos.add_smpl_armature()
    return bpy.context.scene.temos.armature


def _bake_takes(temos, rig, n=3, start=11, frames=25):
    """n takes of random rotations on the SMPL rig, baked and auditioned as Generate leaves them."""
    bake, ops = temos.bake, temos.ops_generate
    rng = np.random.default_rng(0)
    scene = bpy.context.scene
    with bake.GenerationBake(rig, scene_fps=12.5, start_frame=start) as generation:
        for i in range(n):
            q = rng.normal(size=(frames, 4))
            curves = bake.TakeCurves(
                fps=12.5,
                rotations={j: q / np.linalg.norm(q, axis=-1, keepdims=True) for j in SMPL_JOINTS},
                locations={"pelvis": rng.normal(size=(frames, 3))},
            )
            meta = bake.TakeMetadata(PROMPT, 100 + i, 1.0, 2.0, "tiny-test", "0.1.0", i + 1, "gen")
            generation.add(curves, meta, mute=True)
        generation.commit()
        ops.audition(scene, rig, generation.baked[0].track)
    return bake.takes_of(rig)


def _preview_range(start, end, use):
    scene = bpy.context.scene
    scene.use_preview_range = True  # while it is off, setting one end resets the other
    scene.frame_preview_start, scene.frame_preview_end = start, end
    scene.use_preview_range = use


def _select(rig, take):
    bpy.context.scene.temos.take_index = list(rig.animation_data.nla_tracks).index(take.track)


def _keys(compat, action):
    out = {}
    for fc in compat.fcurves_of(action):
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co
    return out


def test_audition_solos_the_take_and_loops_its_frames_in_the_preview_range(temos, rig):
    scene = bpy.context.scene
    _preview_range(3, 30, use=False)
    takes = _bake_takes(temos, rig)
    _select(rig, takes[1])

    assert bpy.ops.temos.take_audition() == {"FINISHED"}

    tracks = rig.animation_data.nla_tracks
    assert [t.is_solo for t in tracks] == [False, True, False]
    assert [t.mute for t in tracks] == [True, False, True]
    assert scene.use_preview_range
    assert (scene.frame_preview_start, scene.frame_preview_end) == (11, 35)
    assert scene.frame_current == 11


def test_bake_to_nla_clears_solo_restores_the_preview_range_and_leaves_the_chosen_take_playing(temos, rig):
    scene = bpy.context.scene
    _preview_range(3, 30, use=False)
    takes = _bake_takes(temos, rig)
    _select(rig, takes[2])
    bpy.ops.temos.take_audition()

    assert bpy.ops.temos.bake_to_nla() == {"FINISHED"}

    tracks = rig.animation_data.nla_tracks
    assert not any(t.is_solo for t in tracks)
    assert [t.mute for t in tracks] == [True, True, False]
    assert (scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end) == (False, 3, 30)
    assert not scene.temos.audition_saved


def test_bake_to_nla_can_remove_the_takes_that_were_not_chosen(temos, rig):
    takes = _bake_takes(temos, rig)
    kept, chosen = takes[0].action.name, takes[1].action.name
    takes[0].action["temos_kept"] = True
    _select(rig, takes[1])

    bpy.ops.temos.bake_to_nla(remove_others=True)

    assert [t.action.name for t in temos.bake.takes_of(rig)] == [kept, chosen]
    assert not any(t.mute or t.is_solo for t in rig.animation_data.nla_tracks)
    assert sorted(a.name for a in bpy.data.actions) == sorted([kept, chosen])


def test_rename_renames_the_action_its_track_and_its_strip(temos, rig):
    takes = _bake_takes(temos, rig)
    _select(rig, takes[0])

    bpy.ops.temos.take_rename(name="hop hop")

    take = temos.bake.takes_of(rig)[0]
    assert take.action.name == take.track.name == take.strip.name == "hop hop"
    assert take.metadata.prompt == PROMPT


def test_delete_removes_the_track_and_its_action_and_nothing_else(temos, rig):
    takes = _bake_takes(temos, rig)
    doomed = takes[1].action.name
    others = [takes[0].action.name, takes[2].action.name]
    _select(rig, takes[1])

    bpy.ops.temos.take_delete()

    assert [t.action.name for t in temos.bake.takes_of(rig)] == others
    assert doomed not in bpy.data.actions
    assert [t.is_solo for t in rig.animation_data.nla_tracks] == [True, False]  # take 1 is still being auditioned


def test_keep_as_action_makes_it_the_active_action_and_stashes_the_previous_one(temos, rig):
    compat = temos.compat
    user_action = compat.new_action("user's idle")
    compat.assign_action(rig, user_action, compat.ensure_slot(user_action, rig))
    takes = _bake_takes(temos, rig)
    chosen = takes[1].action.name
    _select(rig, takes[1])

    bpy.ops.temos.take_keep(mode="ACTION")

    ad = rig.animation_data
    assert ad.action.name == chosen and ad.action["temos_kept"]
    assert chosen not in [t.action.name for t in temos.bake.takes_of(rig)]
    stash = ad.nla_tracks["[Action Stash]"]
    assert stash.mute and stash.strips[0].action == user_action
    assert not any(t.is_solo for t in ad.nla_tracks)  # a solo track would silence the active action
    bpy.context.scene.frame_set(11)  # the chosen take now plays from its action
    path = 'pose.bones["left_knee"].rotation_quaternion'
    curves = sorted((fc for fc in compat.fcurves_of(ad.action) if fc.data_path == path), key=lambda fc: fc.array_index)
    pose = tuple(rig.pose.bones["left_knee"].rotation_quaternion)
    assert pose == pytest.approx(tuple(fc.evaluate(11) for fc in curves), abs=1e-5)


def test_keep_as_strip_marks_the_take_and_unmutes_it(temos, rig):
    takes = _bake_takes(temos, rig)
    _select(rig, takes[2])

    bpy.ops.temos.take_keep(mode="STRIP")

    take = temos.bake.takes_of(rig)[2]
    assert take.action["temos_kept"] and not take.track.mute


def test_take_operators_need_a_selected_take(temos, rig):
    _bake_takes(temos, rig)
    bpy.context.scene.temos.take_index = -1

    with pytest.raises(RuntimeError, match="Select a take in the list first"):
        bpy.ops.temos.take_delete()


def test_take_list_shows_only_the_take_tracks(temos, rig):
    _bake_takes(temos, rig, n=2)
    user_track = rig.animation_data.nla_tracks.new()
    user_track.name = "my own layer"

    flags, order = temos.props.TEMOS_UL_takes.filter_items(
        type("List", (), {"bitflag_filter_item": 1 << 30, "filter_name": ""})(),
        bpy.context,
        rig.animation_data,
        "nla_tracks",
    )

    assert flags == [1 << 30, 1 << 30, 0] and order == []


def test_panel_shows_the_selected_takes_metadata(temos, rig, layout_recorder):
    takes = _bake_takes(temos, rig)
    _select(rig, takes[1])

    layout_recorder.record_draw(bpy.types.TEMOS_PT_takes.draw)

    texts = layout_recorder.texts()
    assert f"“{PROMPT}”" in texts
    assert "Seed 101 · diversity 1.00 · 2 s" in texts
    assert "Model tiny-test · add-on 0.1.0" in texts
    assert ("operator", "temos.bake_to_nla") in layout_recorder.lines


def _generate(n=2):
    props = bpy.context.scene.temos
    props.prompt, props.n_takes, props.duration_s = PROMPT, n, 2.0
    props.random_seed, props.seed = False, 40
    assert bpy.ops.temos.generate() == {"FINISHED"}


def test_regenerate_exactly_reproduces_the_take_as_a_new_take(temos, rig):
    _generate()
    original = temos.bake.takes_of(rig)[1]
    original_keys = _keys(temos.compat, original.action)
    _select(rig, original)

    assert bpy.ops.temos.take_regenerate(mode="EXACT") == {"FINISHED"}

    takes = temos.bake.takes_of(rig)
    copy = takes[-1]
    assert len(takes) == 3 and copy.track.name == f"{PROMPT} · take 3"
    assert copy.metadata.seed == 41 and copy.metadata.take_number == 3
    copy_keys = _keys(temos.compat, copy.action)
    assert copy_keys.keys() == original_keys.keys()
    # Equal to float precision: the original was decoded in a batch of two, the copy alone (measured: 2e-6).
    worst = max(float(np.max(np.abs(copy_keys[k] - original_keys[k]))) for k in copy_keys)
    assert worst < 1e-4


def test_regenerate_with_a_new_seed_replaces_the_take_in_its_track(temos, rig):
    _generate()
    old = temos.bake.takes_of(rig)[0]
    old_name, old_action, old_keys = old.track.name, old.action.name, _keys(temos.compat, old.action)
    old_range = (old.strip.frame_start, old.strip.frame_end)  # read now: regenerating frees the old strip
    _select(rig, old)

    bpy.ops.temos.take_regenerate(mode="NEW_SEED")

    takes = temos.bake.takes_of(rig)
    new = takes[0]
    assert len(takes) == 2 and new.track.name == old_name and new.metadata.take_number == 1
    assert new.metadata.seed != 40
    assert new.action.name == old_action and len(bpy.data.actions) == 2  # the old action is gone, its name reused
    new_keys = _keys(temos.compat, new.action)
    assert not all(np.array_equal(new_keys[k], old_keys[k]) for k in old_keys)
    assert (new.strip.frame_start, new.strip.frame_end) == old_range


def test_take_operators_are_single_undo_steps(temos, rig):
    takes = _bake_takes(temos, rig)
    _select(rig, takes[1])
    bpy.ops.ed.undo_push(message="takes baked")
    before = scene_fingerprint()

    bpy.ops.temos.take_delete("EXEC_DEFAULT", True)
    bpy.ops.ed.undo()

    assert scene_fingerprint() == before
