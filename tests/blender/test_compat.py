"""blender/compat.py: one way to make actions, F-curves and strips on Blender 4.2, 4.5 and 5.0.

These tests build their own one-bone rig so they also run under the 4.2 and 5.0 bpy modules (``make test-compat``).
"""

import importlib
import re
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

QUAT_PATH = 'pose.bones["bone"].rotation_quaternion'


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
    bone = arm.edit_bones.new("bone")
    bone.head, bone.tail = (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _key_quaternion(compat, action, slot, frames, quats, group="bone"):
    curves = []
    for i in range(4):
        fc = compat.new_fcurve(action, slot, QUAT_PATH, i, group_name=group)
        fc.keyframe_points.add(len(frames))
        fc.keyframe_points.foreach_set("co", [v for f, q in zip(frames, quats) for v in (f, q[i])])
        fc.update()
        curves.append(fc)
    return curves


QUARTER_TURN_X = (0.7071067811865476, 0.7071067811865476, 0.0, 0.0)


def test_keys_written_through_compat_drive_the_pose_bone(compat, rig):
    action = compat.new_action("turn")
    slot = compat.ensure_slot(action, rig)
    _key_quaternion(compat, action, slot, [1, 11], [(1, 0, 0, 0), QUARTER_TURN_X])

    compat.assign_action(rig, action, slot)
    bpy.context.scene.frame_set(11)

    assert tuple(rig.pose.bones["bone"].rotation_quaternion) == pytest.approx(QUARTER_TURN_X, abs=1e-6)
    assert compat.active_slot(rig) == slot


def test_new_fcurves_are_grouped_under_the_bone_name(compat, rig):
    action = compat.new_action("grouped")
    slot = compat.ensure_slot(action, rig)
    _key_quaternion(compat, action, slot, [1, 2], [(1, 0, 0, 0)] * 2, group="bone")
    loc = compat.new_fcurve(action, slot, 'pose.bones["bone"].location', 0, group_name="bone")

    curves = compat.fcurves_of(action, slot)

    assert len(curves) == 5 and loc in curves
    assert {compat.fcurve_group_name(fc) for fc in curves} == {"bone"}


def test_ensure_slot_finds_the_slot_it_made_instead_of_adding_one(compat, rig):
    action = compat.new_action("slots")
    first = compat.ensure_slot(action, rig)
    again = compat.ensure_slot(action, rig)

    assert first == again
    if compat.SLOTTED_ACTIONS:
        assert len(action.slots) == 1 and first.name_display == rig.name
    else:
        assert first is None


def test_nla_strip_plays_the_same_pose_as_the_action(compat, rig):
    action = compat.new_action("strip")
    slot = compat.ensure_slot(action, rig)
    _key_quaternion(compat, action, slot, [1, 11], [(1, 0, 0, 0), QUARTER_TURN_X])
    track = (rig.animation_data or rig.animation_data_create()).nla_tracks.new()

    strip = compat.new_nla_strip(track, "strip", 5, action, slot)
    bpy.context.scene.frame_set(15)  # the strip starts at 5: frame 15 is the action's frame 11

    assert (strip.frame_start, strip.frame_end) == (5.0, 15.0)
    assert compat.strip_slot(strip) == slot
    assert tuple(rig.pose.bones["bone"].rotation_quaternion) == pytest.approx(QUARTER_TURN_X, abs=1e-6)


def test_assign_action_none_clears_the_active_action(compat, rig):
    action = compat.new_action("cleared")
    compat.assign_action(rig, action, compat.ensure_slot(action, rig))

    compat.assign_action(rig, None)

    assert rig.animation_data.action is None
    assert compat.active_slot(rig) is None


def test_only_compat_checks_the_blender_version():
    package = Path(__file__).resolve().parents[2] / "temos_blender"
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "compat.py" and re.search(r"bpy\.app\.version\b", path.read_text(encoding="utf-8"))
    ]

    assert offenders == []


def test_world_colour_is_what_workbench_and_cycles_show(compat):
    world = bpy.data.worlds.new("World")
    compat.set_world_color(world, (0.2, 0.4, 0.6))
    assert tuple(world.color) == pytest.approx((0.2, 0.4, 0.6))  # Workbench; Cycles on a world without nodes
    nodes = world.node_tree.nodes if world.node_tree is not None else []
    backgrounds = [n for n in nodes if n.bl_idname == "ShaderNodeBackground"]
    assert bool(backgrounds) == (bpy.app.version >= (5, 0, 0))  # only 5.0 gives a new world nodes
    for node in backgrounds:  # what Cycles shows when the world has nodes
        assert tuple(node.inputs["Color"].default_value) == pytest.approx((0.2, 0.4, 0.6, 1.0))
