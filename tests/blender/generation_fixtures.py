"""Helpers for the generation tests of this folder (imported by test_generate_op.py and test_takes.py).

A tiny random-weight model saved in our checkpoint format, a Mixamo-named armature built in code the way an FBX
import leaves it (A-pose, Y-up centimetres under a 90° object rotation and 0.01 scale), and a fingerprint of
everything a generation could change, to check that "nothing changed" really holds.
"""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np

from temos_blender.skeleton import SMPL_JOINTS, SMPL_PARENTS, SMPL_REST_POSITIONS_M

TINY_CONFIG = dict(latent_dim=32, ff_size=64, num_layers=1, num_heads=2, fps=12.5, model_id="tiny-test")

MIXAMO_NAMES = {
    "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head",
    "left_collar": "LeftShoulder", "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
    "right_collar": "RightShoulder", "right_shoulder": "RightArm", "right_elbow": "RightForeArm",
    "right_wrist": "RightHand", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot",
    "left_foot": "LeftToeBase", "right_hip": "RightUpLeg", "right_knee": "RightLeg", "right_ankle": "RightFoot",
    "right_foot": "RightToeBase",
}  # fmt: skip


def save_tiny_model(folder: Path) -> Path:
    """A seeded random-weight TEMOS (d=32, one layer) in ``folder``: config.json + model.safetensors."""
    import torch

    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.weights import save_model

    torch.manual_seed(0)
    return save_model(Temos(TemosConfig(**TINY_CONFIG)), folder)


def _a_pose_positions_y_up() -> np.ndarray:
    """(22, 3) SMPL rest joints with the arms lowered 45° (an A-pose), SMPL axes (Y-up, facing +Z), metres."""
    pos = SMPL_REST_POSITIONS_M.copy()
    for side, angle in (("left", -math.pi / 4), ("right", math.pi / 4)):
        pivot = pos[SMPL_JOINTS.index(f"{side}_shoulder")]
        c, s = math.cos(angle), math.sin(angle)
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # about the forward axis
        for joint in ("elbow", "wrist"):
            j = SMPL_JOINTS.index(f"{side}_{joint}")
            pos[j] = pivot + turn @ (pos[j] - pivot)
    return pos


def build_mixamo_rig(name: str = "Armature") -> bpy.types.Object:
    """A Mixamo-named A-pose armature as an FBX import leaves it: bones in Y-up centimetres, object rotated +90°
    about X and scaled 0.01, plus an unmapped ``mixamorig:HeadTop_End`` leaf."""
    pos = _a_pose_positions_y_up() * 100.0
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    obj.scale = (0.01, 0.01, 0.01)
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = {}
    for j, joint in enumerate(SMPL_JOINTS):
        children = [i for i, p in enumerate(SMPL_PARENTS) if p == j]
        child = {"pelvis": "spine1", "spine3": "neck", "left_collar": "left_shoulder", "right_collar": "right_shoulder"}
        if joint in child:
            tail = pos[SMPL_JOINTS.index(child[joint])]
        elif children:
            tail = pos[children[0]]
        elif joint == "head":
            tail = pos[j] + np.array([0.0, 15.0, 0.0])
        elif joint.endswith("wrist"):
            tail = pos[j] + 0.1 * (pos[j] - pos[SMPL_PARENTS[j]])
        else:  # toes point forward (+Z in Y-up)
            tail = pos[j] + np.array([0.0, 0.0, 8.0])
        bone = arm.edit_bones.new("mixamorig:" + MIXAMO_NAMES[joint])
        bone.head, bone.tail = pos[j], tail
        bones[joint] = bone
    for j, p in enumerate(SMPL_PARENTS):
        if p >= 0:
            bones[SMPL_JOINTS[j]].parent = bones[SMPL_JOINTS[p]]
    top = arm.edit_bones.new("mixamorig:HeadTop_End")
    top.head = bones["head"].tail
    top.tail = (top.head.x, top.head.y + 10.0, top.head.z)
    top.parent = bones["head"]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def scene_fingerprint() -> dict:
    """Everything a generation could add or change, as plain values (compare two with ==)."""
    scene = bpy.context.scene
    out = {
        "counts": {
            kind: len(getattr(bpy.data, kind)) for kind in ("actions", "objects", "meshes", "armatures", "collections")
        },
        "actions": sorted((a.name, a.users, len(a.keys())) for a in bpy.data.actions),
        "frame": (scene.frame_current, scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end),
        "settings": {key: str(getattr(scene.temos, key)) for key in scene.temos.bl_rna.properties.keys()},
    }
    for obj in bpy.data.objects:
        # Reading a registered property group can create its (empty) storage, so custom keys come after it.
        entry = {"bone_map": [(i.joint, i.bone) for i in obj.temos_rig.bone_map]}
        entry |= {"data": obj.data.name if obj.data else None, "custom": sorted(obj.keys())}
        ad = obj.animation_data
        if ad is not None:
            entry["action"] = ad.action.name if ad.action else None
            entry["tracks"] = [
                (t.name, t.mute, t.is_solo, [(s.name, s.frame_start, s.frame_end, s.action.name) for s in t.strips])
                for t in ad.nla_tracks
            ]
        if obj.type == "ARMATURE":
            entry["pose"] = [
                (b.name, b.rotation_mode, tuple(round(v, 6) for v in (*b.rotation_quaternion, *b.location)))
                for b in obj.pose.bones
            ]
        out[obj.name] = entry
    return out
