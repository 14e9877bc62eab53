"""SMPL poses ↔ TEMOS motion features (the official ``kit-amass-rot`` / ``SMPLVelP`` layout, 135 numbers a frame).

Per frame, in the official order::

    [0]      root height (m)                         — AMASS z, our SMPL-space y
    [1:3]    root horizontal velocity (m / frame)    — AMASS x, y; 0 on the first frame
    [3:135]  22 joint rotations as 6-D (first two matrix *rows*, as the official code's PyTorch3D-style
             ``matrix_to_rotation_6d``), the root's relative to the world

Official checkpoints' "root" is SMPL's ``transl`` parameter, which sits a constant rest offset from the pelvis
joint (for SMPL bodies about 3 cm lower, same velocities); ours is the pelvis joint itself.

The official features live in AMASS' **Z-up** world; our poses live in SMPL's **Y-up** space
(``temos_blender.skeleton``). :data:`YUP_TO_ZUP` converts between them, here and nowhere else.

Canonicalisation (training data only): the whole clip is turned about the vertical axis so that the body faces
a fixed direction on its first frame and the trajectory starts at the origin. The official code reads the heading
as the z component of the root's axis-angle, which is not a yaw once the pelvis tilts; we use the true yaw of the
pelvis' forward axis so canonicalising twice changes nothing and the round trip is exact. The official frame
(axis-angle z + π/2) leaves an upright body facing about −X in SMPL space, i.e. ``heading_offset_rad=-π/2``
(exactly so only for a body whose pelvis does not tilt).

The velocities are in the canonical world frame of the whole clip, not in a per-frame heading frame: the official
``SMPLVelP`` turns the clip once by its first frame's heading and then takes plain differences.
"""

from __future__ import annotations

import torch

NFEATS = 135
NUM_JOINTS = 22

YUP_TO_ZUP = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation taking SMPL-space (Y-up) vectors to AMASS world (Z-up): x→x, y→z, z→−y."""

SMPL_FORWARD = (0.0, 0.0, 1.0)
"""The body's forward axis in the pelvis frame (SMPL faces +Z at rest)."""


# ---------------------------------------------------------------------------------------------- rotations (torch)
def matrix_to_6d(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 6): the first row, then the second (the official TEMOS layout)."""
    return torch.cat([m[..., 0, :], m[..., 1, :]], dim=-1)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) → (..., 3, 3) by Gram–Schmidt on the two rows; exact inverse of :func:`matrix_to_6d` on rotations."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-2)


def yaw_matrix(angle_rad: torch.Tensor) -> torch.Tensor:
    """(...) angles → (..., 3, 3) rotations about the Y (up) axis of SMPL space."""
    c, s = torch.cos(angle_rad), torch.sin(angle_rad)
    z, o = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, z, s, z, o, z, -s, z, c], dim=-1).reshape(angle_rad.shape + (3, 3))


def heading_of(root_rotmat: torch.Tensor) -> torch.Tensor:
    """Yaw (rad) of the body's forward axis about SMPL-space Y; 0 when facing +Z. (..., 3, 3) → (...)."""
    forward = root_rotmat[..., :, 2]  # R @ (0, 0, 1)
    return torch.atan2(forward[..., 0], forward[..., 2])


# ---------------------------------------------------------------------------------------------- features
def canonicalize(
    local_rotmats: torch.Tensor, root_translation_m: torch.Tensor, heading_offset_rad: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a clip about Y so its first frame faces +Z (turned by ``heading_offset_rad``), starting at x = z = 0.

    local_rotmats: (..., T, 22, 3, 3); root_translation_m: (..., T, 3). Returns both, turned.
    """
    yaw0 = heading_of(local_rotmats[..., 0, 0, :, :])  # (...)
    turn = yaw_matrix(heading_offset_rad - yaw0)  # (..., 3, 3)
    root = turn[..., None, :, :] @ local_rotmats[..., :, 0, :, :]  # (..., T, 3, 3)
    rots = torch.cat([root[..., :, None, :, :], local_rotmats[..., :, 1:, :, :]], dim=-3)
    horizontal = torch.tensor([1.0, 0.0, 1.0], dtype=root_translation_m.dtype, device=root_translation_m.device)
    trans = root_translation_m - root_translation_m[..., :1, :] * horizontal
    trans = torch.einsum("...ij,...tj->...ti", turn, trans)
    return rots, trans


def smpl_to_features(local_rotmats: torch.Tensor, root_translation_m: torch.Tensor) -> torch.Tensor:
    """SMPL-space poses → unnormalised TEMOS features.

    local_rotmats: (..., T, 22, 3, 3) joint rotations relative to the parent (the root's relative to the
    Y-up world); root_translation_m: (..., T, 3) pelvis position in metres. Returns (..., T, 135).
    Does not canonicalise: call :func:`canonicalize` first for training data.
    """
    assert local_rotmats.shape[-3:] == (NUM_JOINTS, 3, 3), f"expected (..., T, 22, 3, 3), got {tuple(local_rotmats.shape)}"
    c = YUP_TO_ZUP.to(local_rotmats)
    trans_z = root_translation_m @ c.T  # (..., T, 3) Z-up
    vel = torch.diff(trans_z[..., :2], dim=-2)
    vel = torch.cat([torch.zeros_like(trans_z[..., :1, :2]), vel], dim=-2)  # (..., T, 2); 0 on the first frame
    root = c @ local_rotmats[..., 0, :, :]  # root orientation in the Z-up world
    rots = torch.cat([root[..., None, :, :], local_rotmats[..., 1:, :, :]], dim=-3)
    poses = matrix_to_6d(rots).flatten(-2)  # (..., T, 132)
    return torch.cat([trans_z[..., 2:3], vel, poses], dim=-1)


def features_to_smpl(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised TEMOS features (..., T, 135) → (local_rotmats (..., T, 22, 3, 3), root_translation_m (..., T, 3)).

    The trajectory is integrated from the velocities and starts at x = z = 0 (SMPL space).
    """
    assert features.shape[-1] == NFEATS, f"expected {NFEATS} features, got {features.shape[-1]}"
    c = YUP_TO_ZUP.to(features)
    height, vel, poses = features[..., 0], features[..., 1:3], features[..., 3:]
    traj = torch.cumsum(vel, dim=-2)
    traj = traj - traj[..., :1, :]
    trans_z = torch.cat([traj, height[..., None]], dim=-1)
    trans = trans_z @ c  # back to Y-up (c is orthonormal: c⁻¹ = cᵀ, and v @ c = cᵀ v)
    rots = rotation_6d_to_matrix(poses.unflatten(-1, (NUM_JOINTS, 6)))
    root = c.T @ rots[..., 0, :, :]
    rots = torch.cat([root[..., None, :, :], rots[..., 1:, :, :]], dim=-3)
    return rots, trans


def canonicalize_features(features: torch.Tensor) -> torch.Tensor:
    """Unnormalised features (..., T, 135) of any stretch of motion → the same motion canonicalised as the data
    pipeline does whole clips: the first frame faces +Z (SMPL space) and its velocity is 0.

    For crops that do not start at a clip's first frame: the cached clip was canonicalised once at its own start, so
    a crop taken later begins at whatever heading the body had reached there.

    Computed in feature space, the same as ``smpl_to_features(*canonicalize(*features_to_smpl(features)))``: only
    the root's orientation and the ground velocities turn (about the up axis), the first velocity becomes 0, and the
    height and the other joints' rotations are kept as they are (training crops many clips per step).
    """
    c = YUP_TO_ZUP.to(features)
    roots = rotation_6d_to_matrix(features[..., 3:9])  # (..., T, 3, 3) in the Z-up world
    turn = c @ yaw_matrix(-heading_of(c.T @ roots[..., 0, :, :])) @ c.T  # (..., 3, 3): about Z-up's up axis
    vel = torch.einsum("...ij,...tj->...ti", turn[..., :2, :2], features[..., 1:3])
    vel = torch.cat([torch.zeros_like(vel[..., :1, :]), vel[..., 1:, :]], dim=-2)
    root6d = matrix_to_6d(turn[..., None, :, :] @ roots)
    return torch.cat([features[..., :1], vel, root6d, features[..., 9:]], dim=-1)


def mirror_smpl(local_rotmats: torch.Tensor, root_translation_m: torch.Tensor, mirror_index) -> tuple[torch.Tensor, torch.Tensor]:
    """Reflect a motion through the body's sagittal plane (x → −x in SMPL space) and swap left/right joints.

    A reflected rotation is ``M R M`` with ``M = diag(-1, 1, 1)``. Mirroring twice is the identity.
    """
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=local_rotmats.dtype, device=local_rotmats.device)
    m = torch.diag(flip)
    rots = m @ local_rotmats[..., list(mirror_index), :, :] @ m
    return rots, root_translation_m * flip.to(root_translation_m)


__all__ = [
    "NFEATS", "YUP_TO_ZUP", "canonicalize", "features_to_smpl", "heading_of", "matrix_to_6d", "mirror_smpl",
    "rotation_6d_to_matrix", "smpl_to_features", "yaw_matrix",
]  # fmt: skip
