"""The SMPL 22-joint body skeleton: the one definition every room of the project shares.

Conventions (stated once here, relied on everywhere):
- SMPL space is **Y-up**, the body faces **+Z** at rest, the body's **left is +X**; units are **metres**.
- Joint order is SMPL's first 22 joints (no hands): ``SMPL_JOINTS[i]`` has parent ``SMPL_PARENTS[i]``.
- The rest pose is SMPL's: a T-pose with all joint rotations identity.

The rest offsets are a neutral adult of 1.70 m standing height: the joint positions of the SMPL neutral
template rounded to 5 mm and made left/right symmetric. They are a documented average, not a body model;
a user who holds an SMPL model file can build exact offsets with ``smplx`` and pass them where an
``offsets_m`` argument is taken.

This module needs only numpy; ``core`` (torch) and ``retarget`` (numpy) both import it.
"""

from __future__ import annotations

import numpy as np

SMPL_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
NUM_JOINTS = len(SMPL_JOINTS)

SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(SMPL_JOINTS)}


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


MIRROR_INDEX: tuple[int, ...] = tuple(JOINT_INDEX[_mirror_name(n)] for n in SMPL_JOINTS)
"""``MIRROR_INDEX[i]`` is the joint that mirrors joint ``i`` (left ↔ right); the centre line maps to itself."""

# Rest joint positions (metres, SMPL space) of the neutral 1.70 m adult; left side listed, right mirrored.
_REST_POSITIONS_M: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.93, 0.0),
    "left_hip": (0.07, 0.84, -0.005),
    "spine1": (0.0, 1.04, -0.025),
    "left_knee": (0.105, 0.46, -0.01),
    "spine2": (0.0, 1.175, -0.02),
    "left_ankle": (0.09, 0.065, -0.045),
    "spine3": (0.0, 1.23, 0.0),
    "left_foot": (0.12, 0.01, 0.075),
    "neck": (0.0, 1.44, -0.04),
    "left_collar": (0.08, 1.35, -0.03),
    "head": (0.0, 1.505, 0.01),
    "left_shoulder": (0.175, 1.385, -0.045),
    "left_elbow": (0.435, 1.37, -0.065),
    "left_wrist": (0.70, 1.38, -0.065),
}


def _rest_positions() -> np.ndarray:
    out = np.zeros((NUM_JOINTS, 3))
    for i, name in enumerate(SMPL_JOINTS):
        if name in _REST_POSITIONS_M:
            out[i] = _REST_POSITIONS_M[name]
        else:
            x, y, z = _REST_POSITIONS_M[_mirror_name(name)]
            out[i] = (-x, y, z)
    return out


SMPL_REST_POSITIONS_M: np.ndarray = _rest_positions()
"""(22, 3) rest joint positions in metres, SMPL space, feet on y≈0."""
SMPL_REST_POSITIONS_M.flags.writeable = False

SMPL_OFFSETS_M: np.ndarray = np.stack(
    [SMPL_REST_POSITIONS_M[i] - (SMPL_REST_POSITIONS_M[p] if p >= 0 else 0.0) for i, p in enumerate(SMPL_PARENTS)]
)
"""(22, 3) offset of each joint from its parent at rest (the pelvis row is its rest position)."""
SMPL_OFFSETS_M.flags.writeable = False

LEFT_FOOT_JOINTS = (JOINT_INDEX["left_ankle"], JOINT_INDEX["left_foot"])
RIGHT_FOOT_JOINTS = (JOINT_INDEX["right_ankle"], JOINT_INDEX["right_foot"])


def children_of(joint: int) -> list[int]:
    """Indices of the joints whose parent is ``joint``."""
    return [i for i, p in enumerate(SMPL_PARENTS) if p == joint]


def forward_kinematics_np(
    local_rotmats: np.ndarray, root_translation_m: np.ndarray, offsets_m: np.ndarray = SMPL_OFFSETS_M
) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions and rotations from local joint rotations.

    local_rotmats: (..., 22, 3, 3) rotation of each joint relative to its parent (root: relative to world).
    root_translation_m: (..., 3) world position of the pelvis joint.
    Returns (positions (..., 22, 3) m, global_rotmats (..., 22, 3, 3)).
    """
    assert local_rotmats.shape[-3:] == (NUM_JOINTS, 3, 3), f"expected (..., 22, 3, 3), got {local_rotmats.shape}"
    glob = [None] * NUM_JOINTS
    pos = [None] * NUM_JOINTS
    for i, p in enumerate(SMPL_PARENTS):
        if p < 0:
            glob[i] = local_rotmats[..., i, :, :]
            pos[i] = root_translation_m
        else:
            glob[i] = glob[p] @ local_rotmats[..., i, :, :]
            pos[i] = pos[p] + np.einsum("...ij,j->...i", glob[p], offsets_m[i])
    return np.stack(pos, axis=-2), np.stack(glob, axis=-3)
