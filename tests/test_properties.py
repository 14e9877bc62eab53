"""Property tests (hypothesis) of the rotation helpers and the rotation-transfer math: round trips and invariants
that must hold for every rotation, not only the handful a hand-written test picks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from temos_blender.retarget.transfer import alignment_from_pose, global_to_local, local_to_global, transfer_global
from temos_blender.rotations import (
    axis_angle_to_matrix,
    matrix_to_6d,
    matrix_to_axis_angle,
    matrix_to_quat,
    quat_multiply,
    quat_slerp,
    quat_to_matrix,
    rotation_6d_to_matrix,
)
from temos_blender.skeleton import SMPL_PARENTS, SMPL_REST_POSITIONS_M

FAST = settings(max_examples=50, deadline=None, database=None)  # no .hypothesis folder in the checkout

unit = st.floats(-1.0, 1.0, allow_nan=False)
quaternions = (
    st.tuples(unit, unit, unit, unit)
    .map(np.array)
    .filter(lambda q: np.linalg.norm(q) > 0.1)
    .map(lambda q: q / np.linalg.norm(q))
)
"""Unit quaternions (w, x, y, z), any sign, any angle."""
rotations = quaternions.map(quat_to_matrix)
seeds = st.integers(0, 2**32 - 1)


def _random_rotations(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """(*shape, 3, 3) rotations from normalised Gaussian quaternions (uniform over rotations)."""
    q = np.random.default_rng(seed).normal(size=shape + (4,))
    return quat_to_matrix(q / np.linalg.norm(q, axis=-1, keepdims=True))


def _assert_rotation(m: np.ndarray) -> None:
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-9)


@st.composite
def parent_lists(draw) -> list[int]:
    """A forest in topological order: each joint's parent is -1 (a root) or an earlier joint."""
    n = draw(st.integers(1, 24))
    return [-1] + [draw(st.integers(-1, j - 1)) for j in range(1, n)]


# -- rotations.py ------------------------------------------------------------------------------------------------


@FAST
@given(quaternions)
def test_quaternion_to_matrix_gives_a_proper_rotation(q):
    _assert_rotation(quat_to_matrix(q))


@FAST
@given(quaternions)
def test_quaternion_matrix_quaternion_round_trip_up_to_sign(q):
    back = matrix_to_quat(quat_to_matrix(q))
    assert back[0] >= 0
    np.testing.assert_allclose(abs(np.dot(back, q)), 1.0, atol=1e-9)
    np.testing.assert_allclose(quat_to_matrix(back), quat_to_matrix(q), atol=1e-9)


@FAST
@given(rotations)
def test_matrix_6d_matrix_round_trip(m):
    d6 = matrix_to_6d(m)
    assert d6.shape == (6,)
    np.testing.assert_allclose(rotation_6d_to_matrix(d6), m, atol=1e-9)


@FAST
@given(st.tuples(*[unit] * 6).map(np.array).filter(lambda v: np.linalg.norm(np.cross(v[:3], v[3:])) > 0.05))
def test_any_non_degenerate_6d_vector_gives_a_rotation_keeping_its_first_row_direction(d6):
    m = rotation_6d_to_matrix(d6)
    _assert_rotation(m)
    np.testing.assert_allclose(m[0], d6[:3] / np.linalg.norm(d6[:3]), atol=1e-9)
    np.testing.assert_allclose(rotation_6d_to_matrix(matrix_to_6d(m)), m, atol=1e-9)


@FAST
@given(quaternions, quaternions)
def test_quaternion_product_is_the_matrix_product(a, b):
    np.testing.assert_allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-9)


@FAST
@given(st.tuples(unit, unit, unit).map(np.array).filter(lambda v: 1e-3 < np.linalg.norm(v) < 0.999))
def test_axis_angle_round_trip_below_half_a_turn(v):
    aa = v * np.pi  # angle in (0, π)
    m = axis_angle_to_matrix(aa)
    _assert_rotation(m)
    np.testing.assert_allclose(matrix_to_axis_angle(m), aa, atol=1e-7)


@FAST
@given(quaternions, quaternions)
def test_slerp_starts_at_q0_and_ends_at_q1_up_to_sign(q0, q1):
    np.testing.assert_allclose(quat_slerp(q0, q1, 0.0), q0, atol=1e-9)
    end = quat_slerp(q0, q1, 1.0)
    np.testing.assert_allclose(abs(np.dot(end, q1)), 1.0, atol=1e-9)


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.arccos(np.clip(abs(np.dot(a, b)), 0.0, 1.0))


@FAST
@given(quaternions, quaternions, st.floats(0.0, 1.0))
def test_slerp_moves_at_constant_speed_along_the_shortest_arc(q0, q1, t):
    total = _angle_between(q0, q1)
    q = quat_slerp(q0, q1, t)
    np.testing.assert_allclose(np.linalg.norm(q), 1.0, atol=1e-12)
    np.testing.assert_allclose(_angle_between(q0, q), t * total, atol=2e-6)
    np.testing.assert_allclose(_angle_between(q, q1), (1 - t) * total, atol=2e-6)


# -- retarget/transfer.py ----------------------------------------------------------------------------------------


@FAST
@given(parent_lists(), seeds)
def test_global_to_local_and_back_is_identity_for_any_hierarchy(parents, seed):
    glob = _random_rotations(seed, (3, len(parents)))  # (T, J, 3, 3)
    local = global_to_local(glob, parents)
    np.testing.assert_allclose(local_to_global(local, parents), glob, atol=1e-9)
    roots = [j for j, p in enumerate(parents) if p < 0]
    np.testing.assert_allclose(local[:, roots], glob[:, roots], atol=0)
    np.testing.assert_allclose(global_to_local(local_to_global(local, parents), parents), local, atol=1e-9)


@FAST
@given(parent_lists(), seeds)
def test_local_rotations_compose_down_every_chain(parents, seed):
    local = _random_rotations(seed, (len(parents),))
    glob = local_to_global(local, parents)
    for j, p in enumerate(parents):
        np.testing.assert_allclose(glob[j], local[j] if p < 0 else glob[p] @ local[j], atol=1e-9)


def _smpl_bone_directions() -> np.ndarray:
    """(22, 3) each SMPL joint's bone (to its first child) at rest, SMPL axes; zero for the leaves."""
    out = np.zeros((len(SMPL_PARENTS), 3))
    for j in range(len(SMPL_PARENTS)):
        children = [c for c, p in enumerate(SMPL_PARENTS) if p == j]
        if children:
            out[j] = SMPL_REST_POSITIONS_M[children[0]] - SMPL_REST_POSITIONS_M[j]
    return out


@FAST
@given(seeds, seeds)
def test_transfer_onto_a_rig_with_random_rest_orientations_reproduces_smpl_world_orientations(rig_seed, motion_seed):
    # A rig with SMPL's joints whose bones have arbitrary rest frames B_j (as rolls and export axes leave them).
    # Both skeletons stand alike at rest, so each rig bone must turn in the world exactly as its SMPL joint does:
    # G_rig(t) · B⁻¹ = G_smpl(t), and its bone (its own rest-frame direction) must follow the SMPL bone.
    n = len(SMPL_PARENTS)
    rest_frames = _random_rotations(rig_seed, (n,))  # B_j: world orientation of rig bone j at rest
    smpl_dirs = _smpl_bone_directions()
    rig_dirs = np.einsum("jba,jb->ja", rest_frames, smpl_dirs)  # Bᵀ d: the same bones, seen in each rig frame
    alignment = alignment_from_pose(np.broadcast_to(np.eye(3), (n, 3, 3)), rest_frames, rig_dirs, smpl_dirs)

    smpl_local = _random_rotations(motion_seed, (4, n))  # (T, 22, 3, 3) any motion
    smpl_global = local_to_global(smpl_local, SMPL_PARENTS)
    rig_global = transfer_global(smpl_global, range(n), alignment)

    np.testing.assert_allclose(rig_global @ np.swapaxes(rest_frames, -1, -2), smpl_global, atol=1e-9)
    np.testing.assert_allclose(
        np.einsum("tjab,jb->tja", rig_global, rig_dirs), np.einsum("tjab,jb->tja", smpl_global, smpl_dirs), atol=1e-9
    )
    rig_local = global_to_local(rig_global, SMPL_PARENTS)
    np.testing.assert_allclose(local_to_global(rig_local, SMPL_PARENTS), rig_global, atol=1e-9)


@FAST
@given(seeds, st.lists(st.booleans(), min_size=6, max_size=6))
def test_alignment_is_a_rotation_taking_each_target_bone_onto_its_source_bone(seed, without_bone):
    # Any reference poses, any bone directions (even far from agreeing): A is a rotation with A d_t ∥ d_s;
    # where a bone is missing, A keeps the reference twist: A = G_sᵀ G_t.
    rng = np.random.default_rng(seed)
    source_ref, target_ref = _random_rotations(seed, (2, 6))
    target_dirs = rng.normal(size=(6, 3))
    source_dirs = rng.normal(size=(6, 3)) * rng.uniform(0.05, 2.0, size=(6, 1))
    target_dirs[np.array(without_bone)] = 0.0

    alignment = alignment_from_pose(source_ref, target_ref, target_dirs, source_dirs)

    _assert_rotation(alignment)
    for j in range(6):
        if without_bone[j]:
            np.testing.assert_allclose(alignment[j], source_ref[j].T @ target_ref[j], atol=1e-9)
        else:
            mapped = alignment[j] @ target_dirs[j]
            np.testing.assert_allclose(
                mapped / np.linalg.norm(mapped), source_dirs[j] / np.linalg.norm(source_dirs[j]), atol=1e-7
            )
