"""Mocap skeleton → the shared SMPL 22-joint skeleton, through the project's one rotation transfer.

For every SMPL joint ``j`` driven by a source joint ``s``: ``G_smpl_j(t) = G_src_s(t) · A_j``
(:func:`temos_blender.retarget.transfer.transfer_global`). The alignments ``A_j`` come from a *reference pose*, a
calm standing frame of the source, in which each SMPL joint is given the rotation it naturally has when standing
like that (:func:`reference_targets`):

- ``bone``: the SMPL bone (joint → its main child) points where the source bone points, with no twist of its own:
  ``R_heading · swing(SMPL rest bone direction → observed direction in the heading frame)``. This reproduces the
  source's bone directions exactly on every frame, and reads the arbitrary twist of the source joint frames (the
  Bandai zero pose has every bone along local X) as the twist-free natural one.
- ``upright``: the joint is as in SMPL's rest pose, turned to the body's heading (the head: level, facing forward).
- ``flat``: the joint keeps SMPL's rest pitch and roll and is turned about the vertical to where the source bone points
  on the floor (the ankle: the sole flat on the floor, the toes turned out as the actor's are). Used where the
  source segment is not the same anatomical segment as SMPL's (a mocap ankle marker sits higher than SMPL's ankle).
- ``parent``: the joint's local rotation is identity in the reference pose (the toes, the wrists: in line with the
  foot and the forearm).

The root translation keeps the legs attached: the pelvis goes where the scaled source hip centre puts SMPL's hip
centre, so the SMPL legs, whose bone directions equal the source's, land where the source feet are, scaled by the ratio
of leg lengths. The clip is then lowered or raised so that its lowest foot contacts sit at SMPL's rest toe height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..retarget.transfer import alignment_from_pose, global_to_local, transfer_global
from ..rotations import axis_angle_to_matrix, matrix_to_quat, quat_normalize, quat_to_matrix, rotation_between
from ..skeleton import (
    JOINT_INDEX,
    NUM_JOINTS,
    SMPL_JOINTS,
    SMPL_OFFSETS_M,
    SMPL_PARENTS,
    SMPL_REST_POSITIONS_M,
    forward_kinematics_np,
)

UP = np.array([0.0, 1.0, 0.0])

MAIN_CHILD: dict[str, str] = {
    "pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
    "left_hip": "left_knee", "left_knee": "left_ankle", "left_ankle": "left_foot",
    "right_hip": "right_knee", "right_knee": "right_ankle", "right_ankle": "right_foot",
    "left_collar": "left_shoulder", "left_shoulder": "left_elbow", "left_elbow": "left_wrist",
    "right_collar": "right_shoulder", "right_shoulder": "right_elbow", "right_elbow": "right_wrist",
}  # fmt: skip
"""The child whose direction defines each SMPL joint's bone (joints not listed are leaves in SMPL-22)."""

FOOT_JOINTS = tuple(JOINT_INDEX[n] for n in ("left_ankle", "left_foot", "right_ankle", "right_foot"))
FOOT_CONTACT_HEIGHT_M = float(SMPL_REST_POSITIONS_M[JOINT_INDEX["left_foot"], 1])
"""Height of SMPL's toe joint standing at rest: where the lowest foot joint sits when a foot is planted."""


@dataclass(frozen=True)
class JointMap:
    """How one source skeleton drives SMPL-22."""

    source: dict[str, str]
    """SMPL joint name → the source joint whose world rotation drives it (every SMPL joint must be listed)."""
    bone_end: dict[str, str]
    """SMPL joint name → source joint that ends its bone, where it is not the source joint of the SMPL child."""
    rule: dict[str, str]
    """SMPL joint name → reference rule other than ``bone``: ``upright``, ``flat`` or ``parent`` (module docstring)."""
    left_hip: str
    right_hip: str
    left_leg: tuple[str, str, str]
    """Source hip, knee, ankle joint names (left side): their bone lengths give the leg-length ratio."""

    def source_index(self, names: list[str]) -> list[int]:
        missing = [self.source[n] for n in SMPL_JOINTS if self.source[n] not in names]
        if missing:
            raise KeyError(f"source skeleton lacks joints {missing}; it has {names}")
        return [names.index(self.source[n]) for n in SMPL_JOINTS]

    def bone_end_index(self, names: list[str]) -> list[int]:
        """Per SMPL joint: index of the source joint ending its bone, or −1 for no bone."""
        out = []
        for n in SMPL_JOINTS:
            if n in self.bone_end:
                out.append(names.index(self.bone_end[n]))
            elif n in MAIN_CHILD:
                out.append(names.index(self.source[MAIN_CHILD[n]]))
            else:
                out.append(-1)
        return out


def heading_rotation(forward: np.ndarray) -> np.ndarray:
    """(3, 3) rotation about Y taking +Z onto the horizontal part of ``forward``."""
    yaw = np.arctan2(forward[0], forward[2])
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def body_forward(left_hip_pos: np.ndarray, right_hip_pos: np.ndarray) -> np.ndarray:
    """Horizontal facing (..., 3) from the hip joints: left × up (SMPL: left +X, up +Y, forward +Z)."""
    left = left_hip_pos - right_hip_pos
    fwd = np.cross(left, UP)
    fwd[..., 1] = 0.0
    return fwd / np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-12)


def _rest_bone_dirs() -> np.ndarray:
    """(22, 3) SMPL rest bone direction per joint (zero for leaves); SMPL rest rotations are identity."""
    out = np.zeros((NUM_JOINTS, 3))
    for name, child in MAIN_CHILD.items():
        out[JOINT_INDEX[name]] = SMPL_OFFSETS_M[JOINT_INDEX[child]]
    return out


SMPL_REST_BONE_DIRS = _rest_bone_dirs()


def reference_targets(src_pos: np.ndarray, src_names: list[str], jmap: JointMap) -> np.ndarray:
    """(22, 3, 3) world rotations the SMPL joints take in the source's reference pose (see the module docstring).

    src_pos: (J_src, 3) world positions of the source joints in that pose (Y-up).
    """
    heading = heading_rotation(
        body_forward(src_pos[src_names.index(jmap.left_hip)], src_pos[src_names.index(jmap.right_hip)])
    )
    src_idx = jmap.source_index(src_names)
    end_idx = jmap.bone_end_index(src_names)
    out = np.zeros((NUM_JOINTS, 3, 3))
    for j, name in enumerate(SMPL_JOINTS):
        rule = jmap.rule.get(name, "bone")
        if rule == "parent":
            continue  # filled below, after its parent
        if rule == "upright":
            out[j] = heading
            continue
        d_world = src_pos[end_idx[j]] - src_pos[src_idx[j]]
        if rule == "bone":
            out[j] = heading @ rotation_between(SMPL_REST_BONE_DIRS[j], heading.T @ d_world)
        elif rule == "flat":
            rest = SMPL_REST_BONE_DIRS[j]
            yaw_obs = np.arctan2(d_world[0], d_world[2])
            yaw_rest = np.arctan2(rest[0], rest[2])
            yaw = yaw_obs - yaw_rest
            c, s = np.cos(yaw), np.sin(yaw)
            out[j] = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        else:
            raise ValueError(f"unknown reference rule {rule!r} for {name}; use bone, upright, flat or parent")
    for j, name in enumerate(SMPL_JOINTS):
        if jmap.rule.get(name) == "parent":
            out[j] = out[SMPL_PARENTS[j]]
    return out


def alignment_for_reference(
    src_pos: np.ndarray, src_global: np.ndarray, src_names: list[str], jmap: JointMap
) -> np.ndarray:
    """Alignments A (22, 3, 3) from one reference frame: src_pos (J_src, 3), src_global (J_src, 3, 3)."""
    src_idx = jmap.source_index(src_names)
    end_idx = jmap.bone_end_index(src_names)
    target = reference_targets(src_pos, src_names, jmap)
    tdirs, sdirs = _bone_dirs(src_pos, src_global, src_idx, end_idx, jmap)
    return alignment_from_pose(src_global[src_idx], target, tdirs, sdirs)


def _bone_dirs(src_pos, src_global, src_idx, end_idx, jmap: JointMap) -> tuple[np.ndarray, np.ndarray]:
    """Target bone dirs (SMPL rest) and source bone dirs (in the source joint frame) of the ``bone`` joints."""
    tdirs = np.zeros((NUM_JOINTS, 3))
    sdirs = np.zeros((NUM_JOINTS, 3))
    for j, name in enumerate(SMPL_JOINTS):
        if jmap.rule.get(name, "bone") == "bone" and end_idx[j] >= 0:
            tdirs[j] = SMPL_REST_BONE_DIRS[j]
            sdirs[j] = src_global[src_idx[j]].T @ (src_pos[end_idx[j]] - src_pos[src_idx[j]])
    return tdirs, sdirs


def average_alignment(
    alignments: list[np.ndarray], src_pos: np.ndarray, src_global: np.ndarray, src_names: list[str], jmap: JointMap
) -> np.ndarray:
    """Rotation mean of several reference alignments, re-swung so bone directions stay exact.

    ``src_pos``/``src_global``: one reference frame, used only for the source bone directions in the joint frames
    (constant for a rigid source skeleton).
    """
    q = matrix_to_quat(np.stack(alignments))  # (K, 22, 4)
    q = np.where(np.sum(q * q[:1], axis=-1, keepdims=True) < 0, -q, q)
    mean = quat_to_matrix(quat_normalize(q.mean(0)))
    src_idx = jmap.source_index(src_names)
    end_idx = jmap.bone_end_index(src_names)
    tdirs, sdirs = _bone_dirs(src_pos, src_global, src_idx, end_idx, jmap)
    eye = np.broadcast_to(np.eye(3), (NUM_JOINTS, 3, 3))
    return alignment_from_pose(eye, mean, tdirs, sdirs)


def leg_length(pos: np.ndarray, names: list[str], chain: tuple[str, str, str]) -> float:
    """Hip→knee + knee→ankle length of a skeleton's rest or any frame (positions (J, 3))."""
    h, k, a = (pos[names.index(n)] for n in chain)
    return float(np.linalg.norm(k - h) + np.linalg.norm(a - k))


SMPL_LEG_LENGTH_M = leg_length(SMPL_REST_POSITIONS_M, list(SMPL_JOINTS), ("left_hip", "left_knee", "left_ankle"))


def transfer_to_smpl(
    src_pos: np.ndarray,
    src_global: np.ndarray,
    src_names: list[str],
    jmap: JointMap,
    alignment: np.ndarray,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Source motion → SMPL local rotations (T, 22, 3, 3) and pelvis translation (T, 3) in metres.

    src_pos: (T, J, 3) world positions, Y-up, in source units; src_global: (T, J, 3, 3) world rotations.
    scale: source units → SMPL metres (unit factor × SMPL leg length / source leg length).
    The result is not yet grounded, re-centred or canonicalised (see :func:`ground_clip`).
    """
    src_idx = jmap.source_index(src_names)
    glob = transfer_global(src_global, src_idx, alignment)  # (T, 22, 3, 3)
    local = global_to_local(glob, SMPL_PARENTS)
    hip_mid_src = 0.5 * (src_pos[:, src_names.index(jmap.left_hip)] + src_pos[:, src_names.index(jmap.right_hip)])
    hip_mid_smpl = 0.5 * (SMPL_OFFSETS_M[JOINT_INDEX["left_hip"]] + SMPL_OFFSETS_M[JOINT_INDEX["right_hip"]])
    root = scale * hip_mid_src - np.einsum("tab,b->ta", glob[:, 0], hip_mid_smpl)
    return local, root


def ground_clip(local: np.ndarray, root: np.ndarray, percentile: float = 2.0) -> tuple[np.ndarray, float]:
    """Shift ``root`` (T, 3) vertically so the clip's foot contacts sit at :data:`FOOT_CONTACT_HEIGHT_M`.

    The contact level is a low percentile over frames of the lowest foot joint (robust to a single bad frame).
    Returns the shifted root and the shift applied (m).
    """
    pos, _ = forward_kinematics_np(local, root)
    lowest = pos[:, list(FOOT_JOINTS), 1].min(axis=1)
    shift = FOOT_CONTACT_HEIGHT_M - float(np.percentile(lowest, percentile))
    return root + np.array([0.0, shift, 0.0]), shift


def check_segments(jmap: JointMap, src_names: list[str]) -> list[tuple[int, int, int, int, str]]:
    """Segments whose directions must agree between SMPL and the source: (smpl a, smpl b, src a, src b, label).

    Every ``bone``-rule joint's bone, plus the whole torso (pelvis → neck against the source's hips → neck), which
    ``upright`` joints do not align bone by bone.
    """
    src_idx = jmap.source_index(src_names)
    end_idx = jmap.bone_end_index(src_names)
    out = []
    for j, name in enumerate(SMPL_JOINTS):
        if jmap.rule.get(name, "bone") == "bone" and end_idx[j] >= 0:
            out.append((j, JOINT_INDEX[MAIN_CHILD[name]], src_idx[j], end_idx[j], name))
    p, n = JOINT_INDEX["pelvis"], JOINT_INDEX["neck"]
    out.append((p, n, src_idx[p], src_idx[n], "torso"))
    return out


def bone_direction_errors_deg(
    local: np.ndarray, root: np.ndarray, src_pos: np.ndarray, src_names: list[str], jmap: JointMap
) -> tuple[np.ndarray, list[str]]:
    """(T, S) angle in degrees between each checked SMPL segment and its source segment, and the segment labels.

    See :func:`check_segments`. A constant offset is expected on the torso: it measures how far the source's
    average standing posture is from SMPL's rest posture, plus the bend of the spine during the clip.
    """
    pos, _ = forward_kinematics_np(local, root)
    segs = check_segments(jmap, src_names)
    out = np.zeros((pos.shape[0], len(segs)))
    for k, (a, b, sa, sb, _) in enumerate(segs):
        u = pos[:, b] - pos[:, a]
        v = src_pos[:, sb] - src_pos[:, sa]
        cos = np.sum(u * v, -1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-12)
        out[:, k] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out, [s[4] for s in segs]


HINGES: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
    ("left_shoulder", "left_elbow", (0.0, -1.0, 0.0)),
    ("right_shoulder", "right_elbow", (0.0, 1.0, 0.0)),
    ("left_hip", "left_knee", (1.0, 0.0, 0.0)),
    ("right_hip", "right_knee", (1.0, 0.0, 0.0)),
)
"""(upper bone, hinge joint, SMPL's flexion axis in the upper bone's frame): elbows bend the forearm forward from the
T-pose, knees bend the shin backward."""
HINGE_MIN_FLEXION_DEG = 25.0
HINGE_MIN_FRAMES = 30


def hinge_axes(local_clips: list[np.ndarray]) -> dict[str, tuple[np.ndarray | None, int]]:
    """Per hinge: the observed flexion axis in the upper bone's frame (unit, or None) and the frames it rests on.

    For each frame, the lower bone's direction ``f`` in the upper bone's frame and the upper bone's direction ``d``
    span the plane of flexion; the axis is the mean of ``d × f`` over frames flexed by at least
    :data:`HINGE_MIN_FLEXION_DEG` (so the forearm's own twist, pronation, does not enter).
    """
    out = {}
    for upper, hinge, _ in HINGES:
        j = JOINT_INDEX[hinge]
        d = SMPL_REST_BONE_DIRS[JOINT_INDEX[upper]]
        d = d / np.linalg.norm(d)
        child = SMPL_REST_BONE_DIRS[j] / np.linalg.norm(SMPL_REST_BONE_DIRS[j])
        acc, n = np.zeros(3), 0
        for local in local_clips:
            f = np.einsum("tab,b->ta", local[:, j], child)
            c = np.cross(d, f)
            big = np.linalg.norm(c, axis=-1) > np.sin(np.radians(HINGE_MIN_FLEXION_DEG))
            acc += c[big].sum(0)
            n += int(big.sum())
        acc -= d * (acc @ d)
        out[hinge] = (acc / np.linalg.norm(acc) if n >= HINGE_MIN_FRAMES and np.linalg.norm(acc) > 0 else None, n)
    return out


def hinge_twist_corrections(local_clips: list[np.ndarray]) -> dict[str, float]:
    """Twist (rad) about each upper bone that turns its observed flexion axis onto SMPL's (hinges with data only)."""
    out = {}
    for (upper, _hinge, expected), (axis, _) in zip(HINGES, hinge_axes(local_clips).values()):
        if axis is None:
            continue
        d = SMPL_REST_BONE_DIRS[JOINT_INDEX[upper]]
        d = d / np.linalg.norm(d)
        e = np.asarray(expected)
        out[upper] = float(np.arctan2(d @ np.cross(e, axis), e @ axis))
    return out


def apply_twists(alignment: np.ndarray, twists: dict[str, float]) -> np.ndarray:
    """``A_j · T_j`` for each named joint, ``T_j`` the rotation by the given angle about the joint's rest bone.

    The bone keeps its direction (a twist about it); the joint's children keep their world rotations, so the hinge
    joint's local rotation becomes ``T⁻¹ L``: its flexion axis, expressed in the twisted upper bone, is SMPL's.
    """
    out = alignment.copy()
    for name, angle in twists.items():
        j = JOINT_INDEX[name]
        d = SMPL_REST_BONE_DIRS[j] / np.linalg.norm(SMPL_REST_BONE_DIRS[j])
        out[j] = out[j] @ axis_angle_to_matrix(d * angle)
    return out
