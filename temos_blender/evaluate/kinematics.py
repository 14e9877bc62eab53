"""Joint positions from poses, and the body-frame quantities every metric and check reads (numpy only).

Conventions of :mod:`temos_blender.skeleton`: SMPL space, Y-up, the body faces +Z at rest, its left is +X, metres.
The heading (yaw) of a body is read from its joints as TEMOS does (hips and shoulders), not from the pelvis
rotation, so the same function measures motions from any source. A yaw of 0 faces +Z; a positive change of yaw is a
turn to the body's left (counter-clockwise seen from above), checked on the ``walk-turn-left`` clips of the data set.
"""

from __future__ import annotations

import numpy as np

from ..rotations import quat_to_matrix
from ..skeleton import JOINT_INDEX, forward_kinematics_np

FOOT_JOINTS = (
    JOINT_INDEX["left_ankle"],
    JOINT_INDEX["left_foot"],
    JOINT_INDEX["right_ankle"],
    JOINT_INDEX["right_foot"],
)
"""The joints TEMOS' metrics take the floor from (MMM's ankles and toes → SMPL's ankles and feet)."""
EVALUATOR_NFEATS = 130
"""Width of :func:`evaluator_inputs`."""
POSE_COLUMNS = slice(0, 64)
"""Columns of :func:`evaluator_inputs` that describe the pose: pelvis height and the 21 local joint positions."""
ROOT_VELOCITY_COLUMNS = slice(64, 67)
"""Columns with the pelvis' ground velocity and the heading's angular velocity."""
POSE_VELOCITY_COLUMNS = slice(67, 130)
"""Columns with the local joints' velocities."""
TOE_JOINTS = (JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"])
"""SMPL's ``*_foot`` joints sit on the ball of the foot, 1 cm above the ground at rest: the contact points."""


def joints_from_rotmats(local_rotmats: np.ndarray, root_translation_m: np.ndarray) -> np.ndarray:
    """(T, 22, 3, 3) local rotations + (T, 3) pelvis positions → (T, 22, 3) joint positions on the shared skeleton."""
    positions, _ = forward_kinematics_np(
        np.asarray(local_rotmats, np.float64), np.asarray(root_translation_m, np.float64)
    )
    return positions


def joints_from_quats(quats_wxyz: np.ndarray, root_translation_m: np.ndarray) -> np.ndarray:
    """(T, 22, 4) local wxyz rotations + (T, 3) pelvis positions → (T, 22, 3) joint positions."""
    return joints_from_rotmats(quat_to_matrix(np.asarray(quats_wxyz, np.float64)), root_translation_m)


def joints_from_take(take) -> np.ndarray:
    """A :class:`temos_blender.take.Take` → (T, 22, 3) joint positions in metres."""
    return joints_from_quats(take.rotations, take.root_translation)


def heading(joints: np.ndarray) -> np.ndarray:
    """(..., T, 22, 3) → (..., T) yaw in radians, unwrapped over time; 0 faces +Z, increasing = turning left.

    The body's forward direction is ``up × across`` with ``across`` = (right hip − left hip) + (right shoulder − left
    shoulder), as in TEMOS' ``get_forward_direction``.
    """
    across = (
        joints[..., JOINT_INDEX["right_hip"], :]
        - joints[..., JOINT_INDEX["left_hip"], :]
        + joints[..., JOINT_INDEX["right_shoulder"], :]
        - joints[..., JOINT_INDEX["left_shoulder"], :]
    )
    forward_x, forward_z = across[..., 2], -across[..., 0]  # (0, 1, 0) × across
    return np.unwrap(np.arctan2(forward_x, forward_z), axis=-1)


def foot_lead(joints: np.ndarray) -> np.ndarray:
    """(T, 22, 3) → (T,) how far the left toe is ahead of the right along the body's current heading (m): positive
    with the left foot in front. A walk swings it between about ±0.3 m twice a stride; standing keeps it near 0."""
    yaw = heading(joints)
    forward = np.stack([np.sin(yaw), np.cos(yaw)], -1)  # (T, 2) x, z
    left, right = joints[:, TOE_JOINTS[0], :], joints[:, TOE_JOINTS[1], :]
    return ((left - right)[:, [0, 2]] * forward).sum(-1)


def yaw_rotation(angle_rad: np.ndarray) -> np.ndarray:
    """(...) → (..., 3, 3) rotation about +Y by ``angle_rad``: it turns +Z (yaw 0) to yaw ``angle_rad``."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(np.shape(angle_rad) + (3, 3))


def floor_height(joints: np.ndarray) -> float:
    """Height of the floor under a clip: the lowest foot joint over all frames (TEMOS' ``get_floor``, whose soft
    minimum differs from the minimum by under a millimetre)."""
    return float(joints[:, FOOT_JOINTS, 1].min())


def canonical_joints(joints: np.ndarray) -> np.ndarray:
    """TEMOS' metric frame: the floor at y = 0, the pelvis starting at x = z = 0, the first frame's heading on +Z.

    This is what TEMOS' ``ComputeMetrics.transform`` reconstructs from its rotation-invariant joint features, so
    the APE/AVE computed on it follow the paper's definitions. (T, 22, 3) → (T, 22, 3).
    """
    out = np.array(joints, dtype=np.float64)
    out[..., 1] -= floor_height(out)
    out[..., [0, 2]] -= out[0, 0, [0, 2]]
    turn = yaw_rotation(np.asarray(-heading(out[:1])[0]))  # (3, 3)
    return out @ turn.T


def local_poses(joints: np.ndarray) -> np.ndarray:
    """(T, 22, 3) → (T, 21, 3): the non-root joints relative to the pelvis' ground projection, turned into each
    frame's own heading (facing +Z); heights stay heights. TEMOS' "local" pose (``poses_local`` of Rifke)."""
    yaw = heading(joints)  # (T,)
    rel = joints[:, 1:, :].copy()
    rel[..., [0, 2]] -= joints[:, None, 0, [0, 2]]
    return np.einsum("tij,tkj->tki", yaw_rotation(-yaw), rel)


def root_trajectory(joints: np.ndarray) -> np.ndarray:
    """(T, 22, 3) → (T, 2): the pelvis' ground-plane (x, z) path."""
    return joints[:, 0, [0, 2]]


def root_speed_mps(joints: np.ndarray, fps: float) -> float:
    """Mean horizontal speed of the pelvis along its path (path length / duration), metres per second."""
    if len(joints) < 2:
        return 0.0
    steps = np.linalg.norm(np.diff(root_trajectory(joints), axis=0), axis=-1)
    return float(steps.sum() * fps / (len(joints) - 1))


def evaluator_inputs(joints: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame motion description read by the retrieval evaluator, invariant to where the clip starts and faces.

    (T, 22, 3) joint positions → (T, 130) float32: pelvis height above the clip's floor (1), the 21 local joint
    positions (63, see :func:`local_poses`), the pelvis' ground velocity in the body's frame (2, m/s), the heading's
    angular velocity (1, rad/s) and the local joints' velocities (63, m/s). Velocities are 0 on the first frame.
    """
    joints = np.asarray(joints, np.float64)
    height = joints[:, 0, 1:2] - floor_height(joints)
    local = local_poses(joints)  # (T, 21, 3)
    yaw = heading(joints)
    vel_world = np.diff(root_trajectory(joints), axis=0, prepend=root_trajectory(joints)[:1]) * fps  # (T, 2) x, z
    c, s = np.cos(yaw), np.sin(yaw)
    vel_local = np.stack([c * vel_world[:, 0] - s * vel_world[:, 1], s * vel_world[:, 0] + c * vel_world[:, 1]], -1)
    yaw_rate = np.diff(yaw, prepend=yaw[:1])[:, None] * fps
    local_vel = np.diff(local, axis=0, prepend=local[:1]) * fps
    feats = np.concatenate(
        [height, local.reshape(len(joints), -1), vel_local, yaw_rate, local_vel.reshape(len(joints), -1)], -1
    )
    return feats.astype(np.float32)
