"""Synthetic rigs built in code for the retarget tests (imported by the test modules of this folder): any proportions, T- or A-pose rests, random bone rolls,
extra bones (twist, fingers, in-between spine bones, a root bone), missing joints, object rotation and scale."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from temos_blender.retarget.armature import Armature, armature_from_head_tail_roll
from temos_blender.retarget.axes import smpl_to_blender_positions
from temos_blender.retarget.bone_map import BoneMap
from temos_blender.retarget.retarget import PRIMARY_CHILD
from temos_blender.rotations import axis_angle_to_matrix, matrix_to_quat
from temos_blender.skeleton import JOINT_INDEX, SMPL_JOINTS, SMPL_OFFSETS_M, SMPL_PARENTS, forward_kinematics_np

LEG_JOINTS = {
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_foot",
    "right_foot",
}
ARM_JOINTS = {f"{s}_{j}" for s in ("left", "right") for j in ("collar", "shoulder", "elbow", "wrist")}
TRUNK_JOINTS = {"spine1", "spine2", "spine3", "neck", "head"}


@dataclass
class SyntheticRig:
    armature: Armature
    bone_map: BoneMap
    smpl_positions: np.ndarray
    """(22, 3) the rig's joint positions in SMPL axes (before units/orientation), metres."""
    parents: list[str | None]
    """Parent bone name of each bone (armature order), for building the same rig in Blender."""
    rolls: np.ndarray
    """(B,) bone rolls (radians), for building the same rig in Blender."""


def smpl_shaped_positions(
    pose: str = "T", leg_scale: float = 1.0, arm_scale: float = 1.0, trunk_scale: float = 1.0
) -> np.ndarray:
    """(22, 3) joint positions in SMPL axes: SMPL's rest with scaled body parts, arms lowered 45° for an A-pose."""
    offsets = SMPL_OFFSETS_M.copy()
    for j, name in enumerate(SMPL_JOINTS):
        if name in LEG_JOINTS:
            offsets[j] *= leg_scale
        elif name in ARM_JOINTS and not name.endswith("collar"):
            offsets[j] *= arm_scale
        elif name in TRUNK_JOINTS:
            offsets[j] *= trunk_scale
    if pose == "A":
        for side, sign in (("left", 1.0), ("right", -1.0)):
            down = axis_angle_to_matrix(np.array([0.0, 0.0, -sign * np.pi / 4]))
            spread = axis_angle_to_matrix(np.array([0.0, 0.0, sign * 0.08]))
            bend = axis_angle_to_matrix(np.array([0.08, 0.0, 0.0]))
            for joint in ("elbow", "wrist"):
                offsets[JOINT_INDEX[f"{side}_{joint}"]] = down @ offsets[JOINT_INDEX[f"{side}_{joint}"]]
            offsets[JOINT_INDEX[f"{side}_knee"]] = spread @ offsets[JOINT_INDEX[f"{side}_knee"]]
            offsets[JOINT_INDEX[f"{side}_ankle"]] = bend @ spread @ offsets[JOINT_INDEX[f"{side}_ankle"]]
    elif pose != "T":
        raise ValueError(pose)
    pos, _ = forward_kinematics_np(np.broadcast_to(np.eye(3), (22, 3, 3)), offsets[0], offsets)
    return pos


def build_rig(
    pose: str = "T",
    seed: int = 0,
    leg_scale: float = 1.0,
    arm_scale: float = 1.0,
    trunk_scale: float = 1.0,
    missing: tuple[str, ...] = (),
    twist: bool = False,
    fingers: bool = False,
    extra_spine: bool = False,
    root_bone: bool = False,
    names: Callable[[str], str] | None = None,
    units: float = 1.0,
    facing_turn_rad: float = 0.0,
    world_matrix: np.ndarray | None = None,
    y_up_data: bool = False,
    rename: dict[str, str] | None = None,
) -> SyntheticRig:
    """A humanoid armature whose bones sit on SMPL-like joints; bone ``names(joint)`` drives joint ``joint``.

    units: armature units per metre. facing_turn_rad: turn of the whole rig about its up axis (0 faces −Y).
    y_up_data: build the armature data Y-up (as an FBX import does); pair with a world matrix that stands it up.
    rename: final names for extra bones ("root", "spine1_mid", "upper_arm_twist.left", "finger0_1.left", …).
    """
    rng = np.random.default_rng(seed)
    names = names or (lambda joint: joint)
    pos_smpl = smpl_shaped_positions(pose, leg_scale, arm_scale, trunk_scale)
    turn = axis_angle_to_matrix(np.array([0.0, facing_turn_rad, 0.0]))  # about SMPL's up axis
    pos = smpl_to_blender_positions(pos_smpl @ turn.T) * units
    if y_up_data:
        pos = pos @ axis_angle_to_matrix(np.array([-np.pi / 2, 0.0, 0.0])).T  # Z-up → Y-up data
    present = [j for j in SMPL_JOINTS if j not in missing]

    bones: list[tuple[str, str | None, np.ndarray, np.ndarray]] = []  # name, parent, head, tail

    def point(joint: str) -> np.ndarray:
        return pos[JOINT_INDEX[joint]]

    def parent_bone(joint: str) -> str | None:
        p = SMPL_PARENTS[JOINT_INDEX[joint]]
        while p >= 0 and SMPL_JOINTS[p] in missing:
            p = SMPL_PARENTS[p]
        if p < 0:
            return "root" if root_bone else None
        return names(SMPL_JOINTS[p])

    if root_bone:
        bones.append(("root", None, np.zeros(3), np.array([0.0, 0.0, 0.25 * units])))
    override_parent: dict[str, str] = {}
    for joint in present:
        head = point(joint)
        child = PRIMARY_CHILD.get(joint)
        while child is not None and child in missing:
            child = PRIMARY_CHILD.get(child)
        if child is not None and np.linalg.norm(point(child) - head) > 1e-6:
            tail = point(child)
        else:
            p = SMPL_PARENTS[JOINT_INDEX[joint]]
            d = head - pos[p]
            tail = head + 0.08 * units * d / np.linalg.norm(d)
        bones.append((names(joint), override_parent.get(joint) or parent_bone(joint), head, tail))
        if twist and joint.endswith("_shoulder") and "elbow" not in missing:
            side = joint.split("_")[0]
            mid = 0.5 * (head + point(f"{side}_elbow"))
            bones.append((f"upper_arm_twist.{side}", names(joint), mid, point(f"{side}_elbow")))
            override_parent[f"{side}_elbow"] = f"upper_arm_twist.{side}"
        if twist and joint.endswith("_hip"):
            side = joint.split("_")[0]
            mid = 0.5 * (head + point(f"{side}_knee"))
            bones.append((f"thigh_twist.{side}", names(joint), mid, point(f"{side}_knee")))
        if extra_spine and joint in ("spine1", "spine2"):
            upper = "spine2" if joint == "spine1" else "spine3"
            mid = 0.5 * (head + point(upper))
            bones[-1] = (bones[-1][0], bones[-1][1], head, mid)
            bones.append((f"{joint}_mid", names(joint), mid, point(upper)))
            override_parent[upper] = f"{joint}_mid"
    if fingers:
        for side in ("left", "right"):
            if f"{side}_wrist" in missing:
                continue
            wrist = point(f"{side}_wrist")
            direction = wrist - pos[JOINT_INDEX[f"{side}_elbow"]]
            direction /= np.linalg.norm(direction)
            for f, spread in enumerate((-0.02, 0.02)):
                parent = names(f"{side}_wrist")
                start = wrist + direction * 0.08 * units + np.array([0.0, spread, 0.0]) * units
                for k in range(3):
                    end = start + direction * 0.03 * units
                    bones.append((f"finger{f}_{k}.{side}", parent, start, end))
                    parent, start = f"finger{f}_{k}.{side}", end
    rename = rename or {}
    bones = [(rename.get(n, n), rename.get(p, p) if p else None, h, t) for n, p, h, t in bones]
    rolls = rng.uniform(-np.pi, np.pi, len(bones))
    arm = armature_from_head_tail_roll(
        "Synthetic",
        [b[0] for b in bones],
        [b[1] for b in bones],
        np.array([b[2] for b in bones]),
        np.array([b[3] for b in bones]),
        rolls,
        world_matrix=world_matrix,
    )
    chain = []
    for joint in ("pelvis", "spine1", "spine2", "spine3", "neck", "head"):
        if joint not in missing:
            chain.append(names(joint))
        if extra_spine and joint in ("spine1", "spine2"):
            chain.append(rename.get(f"{joint}_mid", f"{joint}_mid"))
    bone_map = BoneMap(
        joints={j: names(j) for j in present},
        root_bone=rename.get("root", "root") if root_bone else None,
        spine_chain=chain if extra_spine else [],
    )
    return SyntheticRig(arm, bone_map, pos_smpl, [b[1] for b in bones], rolls)


def random_motion(num_frames: int = 24, seed: int = 0, amplitude_rad: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(rotations (T, 22, 4) wxyz, root (T, 3)): smooth random joint rotations and a wandering root at hip height."""
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(4, 22, 3)) * amplitude_rad / 2
    t = np.linspace(0, 3, num_frames)
    aa = np.stack([np.interp(t, np.arange(4), keys[:, j, k]) for j in range(22) for k in range(3)], -1)
    rot = matrix_to_quat(axis_angle_to_matrix(aa.reshape(num_frames, 22, 3)))
    root = np.stack([0.3 * np.sin(t), 0.9 + 0.05 * np.cos(2 * t), 0.5 * t], -1)
    root[:, [0, 2]] -= root[0, [0, 2]]
    return rot, root
