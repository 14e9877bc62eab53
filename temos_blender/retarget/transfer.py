"""Rotation transfer between two skeletons with different rest poses and joint frames.

The one implementation used both to bring mocap onto SMPL (``data``) and SMPL onto a user's rig (``blender``).

For a target joint ``j`` driven by source joint ``s``, the world rotation is ``G_j(t) = G_s(t) · A_j``, where the
constant *alignment* ``A_j`` makes the target bone point where the source bone points. With ``d_j`` the target
bone's direction in its own rest frame and ``d_s`` the source bone's direction in the source joint frame,
``A_j d_j = d_s`` holds, so bone directions are reproduced exactly on every frame. The twist about the bone is
fixed by a *reference pose* in which both skeletons are known to stand alike (:func:`alignment_from_pose`).
Local rotations are then ``L_j = G_parent(j)⁻¹ · G_j``; for a rig bone this is ``B⁻¹ · L · B`` in disguise.
"""

from __future__ import annotations

import numpy as np

from ..rotations import rotation_between


def global_to_local(global_rotmats: np.ndarray, parents) -> np.ndarray:
    """(..., J, 3, 3) world rotations → rotations relative to each parent (roots unchanged)."""
    local = global_rotmats.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            local[..., j, :, :] = np.swapaxes(global_rotmats[..., p, :, :], -1, -2) @ global_rotmats[..., j, :, :]
    return local


def local_to_global(local_rotmats: np.ndarray, parents) -> np.ndarray:
    """(..., J, 3, 3) parent-relative rotations → world rotations. Parents must precede children."""
    glob = local_rotmats.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            assert p < j, f"joint {j} has parent {p}: parents must come first"
            glob[..., j, :, :] = glob[..., p, :, :] @ local_rotmats[..., j, :, :]
    return glob


def alignment_from_pose(
    source_global_ref: np.ndarray,
    target_global_ref: np.ndarray,
    target_bone_dirs: np.ndarray,
    source_bone_dirs: np.ndarray,
) -> np.ndarray:
    """Alignments ``A`` (J, 3, 3) such that ``G_target = G_source · A`` reproduces bone directions exactly.

    source_global_ref: (J, 3, 3) world rotation of the driving source joint of each target joint, in a reference pose.
    target_global_ref: (J, 3, 3) world rotation the target joint should have in that same pose (its twist is kept).
    target_bone_dirs: (J, 3) each target bone's direction in its own joint frame (zero vector: no bone to align).
    source_bone_dirs: (J, 3) the matching source bone's direction in the source joint frame.

    Starts from ``A₀ = G_sᵀ G_t`` (right twist, near-right direction), then applies the smallest swing in the
    source joint frame that takes ``A₀ d_t`` onto ``d_s`` exactly.
    """
    a0 = np.swapaxes(source_global_ref, -1, -2) @ target_global_ref
    mapped = np.einsum("jab,jb->ja", a0, target_bone_dirs)
    has_bone = (np.linalg.norm(target_bone_dirs, axis=-1) > 1e-9) & (np.linalg.norm(source_bone_dirs, axis=-1) > 1e-9)
    swing = rotation_between(np.where(has_bone[:, None], mapped, 1.0), np.where(has_bone[:, None], source_bone_dirs, 1.0))
    return np.where(has_bone[:, None, None], swing @ a0, a0)


def transfer_global(source_global: np.ndarray, source_index, alignment: np.ndarray) -> np.ndarray:
    """World rotations of the target joints: ``G_t[..., j] = G_s[..., source_index[j]] · A[j]``.

    source_global: (..., J_src, 3, 3); source_index: length-J_dst sequence of source joint indices.
    """
    return source_global[..., list(source_index), :, :] @ alignment
