"""Retargeting checked inside Blender: armatures built in the test (a Mixamo-named A-pose rig as an FBX import leaves
it, a UE5-named rig facing +X with twist bones and five spine bones, and a Rigify rig generated from its metarig),
read with ``rig_io``, keyed from a ``RetargetResult`` and evaluated by Blender. After ``view_layer.update()`` the
evaluated pose bones must match the numpy forward kinematics and each rig segment must point along SMPL's.

Rigify is generated in a subprocess: on bpy 4.5 a process that imported Rigify never exits by itself, so the
script ends with ``sys.stdout.flush(); os._exit(0)`` and runs under a timeout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import bpy
import numpy as np
import pytest
from mathutils import Matrix

from temos_blender.blender.rig_io import apply_frame, armature_from_object
from temos_blender.retarget.armature import forward_kinematics
from temos_blender.retarget.bone_map import detect_bone_map
from temos_blender.retarget.retarget import RetargetOptions, retarget
from temos_blender.rotations import quat_to_matrix
from temos_blender.skeleton import JOINT_INDEX, SMPL_JOINTS, forward_kinematics_np


def _load_rig_helpers():
    """tests/retarget/retarget_rigs.py (synthetic rigs and motions), imported by path: pytest's importlib mode puts
    no test folder on sys.path."""
    if "retarget_rigs" not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "retarget" / "retarget_rigs.py"
        spec = importlib.util.spec_from_file_location("retarget_rigs", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["retarget_rigs"] = module
        spec.loader.exec_module(module)
    return sys.modules["retarget_rigs"]


rigs = _load_rig_helpers()
NO_CLEANUP = RetargetOptions(clean_foot_contacts=False)
FRAMES = (0, 9, 17)

MIXAMO = {
    "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head",
    "left_collar": "LeftShoulder", "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
    "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "left_foot": "LeftToeBase",
}  # fmt: skip
UE5 = {
    "pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_03", "spine3": "spine_05", "neck": "neck_01",
    "head": "head", "left_collar": "clavicle_l", "left_shoulder": "upperarm_l", "left_elbow": "lowerarm_l",
    "left_wrist": "hand_l", "left_hip": "thigh_l", "left_knee": "calf_l", "left_ankle": "foot_l", "left_foot": "ball_l",
}  # fmt: skip
UE5_EXTRA = {
    "spine1_mid": "spine_02", "spine2_mid": "spine_04", "root": "root",
    "upper_arm_twist.left": "upperarm_twist_01_l", "upper_arm_twist.right": "upperarm_twist_01_r",
    "thigh_twist.left": "thigh_twist_01_l", "thigh_twist.right": "thigh_twist_01_r",
}  # fmt: skip


def _names(table, right):
    return lambda joint: right(table["left_" + joint[6:]]) if joint.startswith("right_") else table[joint]


def _build_in_blender(rig, name: str) -> bpy.types.Object:
    """The synthetic rig as a Blender armature object: same heads, tails, rolls, parents and object matrix."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    arm = rig.armature
    edit_bones = {}
    for i, bone_name in enumerate(arm.bone_names):
        bone = data.edit_bones.new(bone_name)
        bone.head, bone.tail, bone.roll = arm.heads[i].tolist(), arm.tails[i].tolist(), float(rig.rolls[i])
        edit_bones[bone_name] = bone
    for bone_name, parent in zip(arm.bone_names, rig.parents):
        if parent is not None:
            edit_bones[bone_name].parent = edit_bones[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.matrix_world = Matrix(arm.world_matrix.tolist())
    bpy.context.view_layer.update()
    return obj


def _evaluated(obj, result, frames=FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Key the frames on ``obj`` and let Blender evaluate: (pose matrices (F, B, 4, 4), world heads (F, B, 3))."""
    poses, heads = [], []
    world = np.array(obj.matrix_world)
    for frame in frames:
        apply_frame(obj, result, frame)
        bpy.context.view_layer.update()
        m = np.array([np.array(pb.matrix) for pb in obj.pose.bones])
        poses.append(m)
        heads.append(m[:, :3, 3] @ world[:3, :3].T + world[:3, 3])
    return np.stack(poses), np.stack(heads)


def _segment_errors_rad(obj, arm, result, heads, rotations, root, frames=FRAMES) -> dict[str, float]:
    smpl_pos, _ = forward_kinematics_np(quat_to_matrix(rotations), root)
    al = result.alignment
    world_rot = np.array(obj.matrix_world)[:3, :3]
    index = {pb.name: i for i, pb in enumerate(obj.pose.bones)}
    out = {}
    for j, c in al.partner.items():
        have = heads[:, index[arm.bone_names[al.point_bone[c]]]] - heads[:, index[arm.bone_names[al.point_bone[j]]]]
        want = (smpl_pos[list(frames), c] - smpl_pos[list(frames), j]) @ (world_rot @ al.smpl_to_armature).T
        angle = np.arctan2(np.linalg.norm(np.cross(have, want), axis=-1), np.sum(have * want, axis=-1))
        out[SMPL_JOINTS[j]] = float(angle.max())
    return out


def _check_rig(obj, preset: str, cleanup_tolerance: float):
    arm = armature_from_object(obj)
    bone_map = detect_bone_map(arm)
    assert bone_map.source == f"preset:{preset}" and bone_map.num_mapped == 22, bone_map.status()
    rotations, root = rigs.random_motion(18, seed=3)

    # Keys evaluated by Blender = the numpy forward kinematics of the same keys (foot cleanup on).
    result = retarget((rotations, root, 20.0), arm, bone_map)
    poses, _ = _evaluated(obj, result)
    rot, loc = result.basis_arrays(arm)
    want = forward_kinematics(arm, rot[list(FRAMES)], loc[list(FRAMES)])
    order = [arm.index[pb.name] for pb in obj.pose.bones]
    np.testing.assert_allclose(poses, want[:, order], atol=cleanup_tolerance)

    # Without the cleanup every rig segment points along SMPL's.
    result = retarget((rotations, root, 20.0), arm, bone_map, NO_CLEANUP)
    _, heads = _evaluated(obj, result)
    errors = _segment_errors_rad(obj, arm, result, heads, rotations, root)
    assert len(errors) == 17
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-4, f"{worst}: {errors[worst]:.3g} rad"
    return arm, result


def test_rig_io_reads_the_rest_pose_blender_built(empty_file):
    rig = rigs.build_rig("A", seed=1, twist=True, fingers=True)
    obj = _build_in_blender(rig, "Synthetic")
    arm = armature_from_object(obj)
    built = rig.armature
    assert sorted(arm.bone_names) == sorted(built.bone_names)
    order = [built.index[name] for name in arm.bone_names]  # Blender keeps its own bone order
    parents = [arm.bone_names[p] if p >= 0 else None for p in arm.parents]
    assert parents == [rig.parents[i] for i in order]
    np.testing.assert_allclose(arm.heads, built.heads[order], atol=1e-6)
    np.testing.assert_allclose(arm.tails, built.tails[order], atol=1e-6)
    # Blender's bone matrices follow the roll convention of bone_rest_rotation.
    np.testing.assert_allclose(arm.rest_rotations, built.rest_rotations[order], atol=1e-5)
    np.testing.assert_allclose(arm.rest_matrices[5], np.array(obj.data.bones[5].matrix_local), atol=1e-6)


def test_mixamo_a_pose_rig_imported_like_an_fbx_follows_smpl_in_blender(empty_file):
    names = _names(MIXAMO, lambda n: n.replace("Left", "Right"))
    rig = rigs.build_rig("A", seed=2, names=lambda j: "mixamorig:" + names(j), units=100.0, y_up_data=True)
    obj = _build_in_blender(rig, "Armature")
    obj.rotation_euler = (np.pi / 2, 0.0, 0.0)  # what the FBX importer leaves: Y-up centimetres, turned and scaled
    obj.scale = (0.01, 0.01, 0.01)
    bpy.context.view_layer.update()
    arm, result = _check_rig(obj, "mixamo", cleanup_tolerance=2e-3)  # centimetres
    assert result.alignment.scale == pytest.approx(100.0)


def test_ue5_named_rig_facing_x_with_twist_bones_follows_smpl_in_blender(empty_file):
    names = _names(UE5, lambda n: n[:-2] + "_r")
    rig = rigs.build_rig(
        "A",
        seed=3,
        names=names,
        twist=True,
        extra_spine=True,
        root_bone=True,
        facing_turn_rad=np.pi / 2,
        rename=UE5_EXTRA,
    )
    obj = _build_in_blender(rig, "SK_Mannequin")
    arm, result = _check_rig(obj, "ue5", cleanup_tolerance=2e-5)
    assert {"spine_02", "spine_04"} <= set(result.rotations)  # the spine bend is shared by the unmapped spine bones
    assert not any("twist" in name for name in result.rotations)


RIGIFY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import bpy, addon_utils
    from temos_blender.blender.rig_io import apply_frame, armature_from_object
    from temos_blender.retarget.armature import forward_kinematics
    from temos_blender.retarget.bone_map import detect_bone_map
    from temos_blender.retarget.retarget import RetargetOptions, retarget
    from temos_blender.rotations import quat_to_matrix
    from temos_blender.skeleton import JOINT_INDEX, forward_kinematics_np

    DEFORM = {
        "pelvis": "DEF-spine", "spine1": "DEF-spine.001", "spine2": "DEF-spine.002", "spine3": "DEF-spine.003",
        "neck": "DEF-spine.004", "head": "DEF-spine.006",
    }
    for side, s in (("left", "L"), ("right", "R")):
        DEFORM.update({
            f"{side}_collar": f"DEF-shoulder.{s}", f"{side}_shoulder": f"DEF-upper_arm.{s}",
            f"{side}_elbow": f"DEF-forearm.{s}", f"{side}_wrist": f"DEF-hand.{s}", f"{side}_hip": f"DEF-thigh.{s}",
            f"{side}_knee": f"DEF-shin.{s}", f"{side}_ankle": f"DEF-foot.{s}", f"{side}_foot": f"DEF-toe.{s}",
        })
    PAIRS = [("pelvis", "spine1"), ("spine1", "spine2"), ("spine2", "spine3"), ("spine3", "neck"), ("neck", "head")]
    for side in ("left", "right"):
        PAIRS += [(f"{side}_{a}", f"{side}_{b}") for a, b in
                  (("collar", "shoulder"), ("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"),
                   ("knee", "ankle"), ("ankle", "foot"))]

    motion = np.load(sys.argv[1])
    rotations, root, frames = motion["rotations"], motion["root"], [int(f) for f in motion["frames"]]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    bpy.ops.pose.rigify_generate()
    obj = bpy.data.objects["rig"]
    arm = armature_from_object(obj)
    bone_map = detect_bone_map(arm)
    result = retarget((rotations, root, 20.0), arm, bone_map, RetargetOptions(clean_foot_contacts=False))
    smpl_pos, _ = forward_kinematics_np(quat_to_matrix(rotations), root)
    c = np.array(obj.matrix_world)[:3, :3] @ result.alignment.smpl_to_armature
    rot, loc = result.basis_arrays(arm)
    want_poses = forward_kinematics(arm, rot[frames], loc[frames])
    segment_error, pose_error = {}, 0.0
    for k, frame in enumerate(frames):
        apply_frame(obj, result, frame)
        bpy.context.view_layer.update()
        heads = {name: np.array(obj.matrix_world @ obj.pose.bones[name].head) for name in DEFORM.values()}
        for a, b in PAIRS:
            have = heads[DEFORM[b]] - heads[DEFORM[a]]
            want = c @ (smpl_pos[frame, JOINT_INDEX[b]] - smpl_pos[frame, JOINT_INDEX[a]])
            angle = float(np.arctan2(np.linalg.norm(np.cross(have, want)), have @ want))
            segment_error[a] = max(segment_error.get(a, 0.0), angle)
        for name in result.rotations:
            got = np.array(obj.pose.bones[name].matrix)
            pose_error = max(pose_error, float(np.abs(got - want_poses[k, arm.index[name]]).max()))
    print("RESULT " + json.dumps({
        "source": bone_map.source, "mapped": bone_map.num_mapped, "keyed": sorted(result.rotations),
        "props": [[p.bone, p.name, p.value] for p in result.custom_props], "root": result.root_bone,
        "segment_error": segment_error, "pose_error": pose_error,
    }))
    sys.stdout.flush()
    os._exit(0)  # bpy 4.5 never exits once Rigify was imported
    """
)


@pytest.mark.timeout(600, method="thread")
def test_rigify_rig_generated_from_the_metarig_follows_smpl_in_blender(tmp_path):
    rotations, root = rigs.random_motion(18, seed=4)
    np.savez(tmp_path / "motion.npz", rotations=rotations, root=root, frames=np.array(FRAMES))
    script = tmp_path / "rigify_check.py"
    script.write_text(RIGIFY_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "motion.npz")],
        capture_output=True,
        text=True,
        timeout=540,  # ~11 s of CPU; a machine busy with training stretches it a lot
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, (
        f"the Rigify script printed no result (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["source"] == "preset:rigify" and out["mapped"] == 22
    assert out["root"] == "torso"
    assert {"spine_fk", "thigh_fk.L", "upper_arm_fk.R", "toe_fk.L"} <= set(out["keyed"])
    assert ["thigh_parent.L", "IK_FK", 1.0] in out["props"] and ["upper_arm_parent.R", "IK_FK", 1.0] in out["props"]
    assert out["pose_error"] < 1e-4, out["pose_error"]
    worst = max(out["segment_error"], key=out["segment_error"].get)
    assert out["segment_error"][worst] < 1e-4, f"{worst}: {out['segment_error'][worst]:.3g} rad"
    assert set(out["segment_error"]) == {*JOINT_INDEX} - {
        "head",
        "left_wrist",
        "right_wrist",
        "left_foot",
        "right_foot",
    }
