"""Axis conventions between SMPL space and Blender, in one place.

- **SMPL space** (:mod:`temos_blender.skeleton`): Y-up, the body faces **+Z**, the body's left is **+X**, metres.
- **Blender**: Z-up, metres (× the scene's unit scale, which we do not touch). A character standing in Blender's
  conventional orientation faces **−Y** (Blender's *Front* view looks along +Y, so a character facing −Y looks at
  the viewer); its left is then **+X**. The SMPL-X add-on, Rigify's metarig and Mixamo imports all stand like this.

So SMPL → Blender is a rotation of +90° about X: ``(x, y, z) → (x, −z, y)``. Quaternions are (w, x, y, z);
matrices act on column vectors. Every conversion says its direction in its name.

A rig's *armature* space may differ from Blender's world (an FBX import often carries a 90° object rotation and a
0.01 scale, a game rig may face +Y): :func:`body_frame` measures the rig's own up/left/forward instead of assuming.
"""

from __future__ import annotations

import numpy as np

from ..rotations import matrix_to_quat, quat_to_matrix

SMPL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation taking SMPL-space vectors to Blender's Z-up world: x→x, y→z, z→−y (+90° about X)."""
SMPL_TO_BLENDER.flags.writeable = False

BLENDER_TO_SMPL = SMPL_TO_BLENDER.T.copy()
"""Inverse of :data:`SMPL_TO_BLENDER`."""
BLENDER_TO_SMPL.flags.writeable = False

SMPL_UP = np.array([0.0, 1.0, 0.0])
"""The up axis of SMPL space."""
SMPL_LEFT = np.array([1.0, 0.0, 0.0])
"""The body's left at rest, SMPL space."""
SMPL_FORWARD = np.array([0.0, 0.0, 1.0])
"""The body's forward at rest, SMPL space."""
BLENDER_UP = np.array([0.0, 0.0, 1.0])
"""The up axis of Blender's world."""
BLENDER_FORWARD = np.array([0.0, -1.0, 0.0])
"""Where a character in Blender's conventional orientation faces."""


def smpl_to_blender_positions(p: np.ndarray) -> np.ndarray:
    """(..., 3) SMPL-space points or directions → Blender world axes (same units)."""
    return np.asarray(p) @ SMPL_TO_BLENDER.T


def blender_to_smpl_positions(p: np.ndarray) -> np.ndarray:
    """(..., 3) Blender world points or directions → SMPL-space axes (same units)."""
    return np.asarray(p) @ SMPL_TO_BLENDER


def smpl_to_blender_rotations(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) world rotations expressed in SMPL space → the same rotations expressed in Blender axes (``C R Cᵀ``).

    Use this for rotations that act in world space (a joint's global rotation); a rotation relative to a parent
    joint has no axes to convert.
    """
    return SMPL_TO_BLENDER @ np.asarray(r) @ SMPL_TO_BLENDER.T


def blender_to_smpl_rotations(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) world rotations in Blender axes → SMPL space (inverse of :func:`smpl_to_blender_rotations`)."""
    return SMPL_TO_BLENDER.T @ np.asarray(r) @ SMPL_TO_BLENDER


def smpl_to_blender_quaternions(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz world rotations in SMPL space → Blender axes (w ≥ 0)."""
    return matrix_to_quat(smpl_to_blender_rotations(quat_to_matrix(q)))


def blender_to_smpl_quaternions(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz world rotations in Blender axes → SMPL space (w ≥ 0)."""
    return matrix_to_quat(blender_to_smpl_rotations(quat_to_matrix(q)))


def yaw_matrix_smpl(angle_rad: float | np.ndarray) -> np.ndarray:
    """(...) angles → (..., 3, 3) rotations about SMPL's up axis (Y); +angle turns +Z towards +X."""
    a = np.asarray(angle_rad, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(a.shape + (3, 3))


def body_frame(left: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) taking SMPL-space axes to a body's axes: columns (left, up, forward = left × up).

    ``up`` is kept exactly; ``left`` is made perpendicular to it. For a character in Blender's conventional
    orientation (left +X, up +Z) this is :data:`SMPL_TO_BLENDER`.
    """
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    left = np.asarray(left, dtype=np.float64)
    left = left - np.dot(left, up) * up
    norm = np.linalg.norm(left)
    if norm < 1e-9:
        raise ValueError("the body's left-right axis is parallel to its up axis; the rig's rest pose is not upright")
    left = left / norm
    return np.stack([left, up, np.cross(left, up)], axis=-1)
