"""SMPL poses ↔ TEMOS features, canonicalisation, mirroring, forward kinematics."""

from __future__ import annotations

import math

import numpy as np
import torch

from temos_blender.core.features import (
    NFEATS,
    canonicalize,
    canonicalize_features,
    features_to_smpl,
    heading_of,
    mirror_smpl,
    smpl_to_features,
    yaw_matrix,
)
from temos_blender.rotations import axis_angle_to_matrix
from temos_blender.skeleton import (
    JOINT_INDEX,
    MIRROR_INDEX,
    SMPL_OFFSETS_M,
    SMPL_REST_POSITIONS_M,
    forward_kinematics_np,
)


def random_motion(t: int = 20, batch: tuple[int, ...] = (), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random local rotations (..., T, 22, 3, 3) and a random walk of the root (..., T, 3), float64."""
    rng = np.random.default_rng(seed)
    rots = axis_angle_to_matrix(rng.normal(scale=1.0, size=(*batch, t, 22, 3)))
    trans = np.cumsum(rng.normal(scale=0.05, size=(*batch, t, 3)), axis=-2) + np.array([0.3, 0.9, -0.2])
    return torch.from_numpy(rots), torch.from_numpy(trans)


def test_features_have_135_numbers_per_frame():
    rots, trans = random_motion(t=7, batch=(2,))
    assert smpl_to_features(rots, trans).shape == (2, 7, NFEATS)


def test_smpl_to_features_to_smpl_round_trip_is_exact():
    rots, trans = random_motion()
    rots2, trans2 = features_to_smpl(smpl_to_features(rots, trans))
    torch.testing.assert_close(rots2, rots, atol=1e-12, rtol=0)
    start = trans[:1] * torch.tensor([1.0, 0.0, 1.0], dtype=trans.dtype)  # the trajectory restarts at x = z = 0
    torch.testing.assert_close(trans2, trans - start, atol=1e-12, rtol=0)


def test_features_to_smpl_to_features_round_trip_is_exact():
    feats = smpl_to_features(*random_motion(seed=1))
    torch.testing.assert_close(smpl_to_features(*features_to_smpl(feats)), feats, atol=1e-12, rtol=0)


def test_canonicalized_clip_round_trips_through_features_unchanged():
    rots, trans = canonicalize(*random_motion(seed=2))
    rots2, trans2 = features_to_smpl(smpl_to_features(rots, trans))
    torch.testing.assert_close(rots2, rots, atol=1e-12, rtol=0)
    torch.testing.assert_close(trans2, trans, atol=1e-12, rtol=0)


def test_canonicalize_faces_plus_z_at_the_origin():
    rots, trans = canonicalize(*random_motion(seed=3))
    assert abs(float(heading_of(rots[0, 0]))) < 1e-12
    torch.testing.assert_close(trans[0, [0, 2]], torch.zeros(2, dtype=trans.dtype), atol=1e-12, rtol=0)


def test_canonicalize_keeps_height_and_pose_below_the_root():
    rots, trans = random_motion(seed=4)
    rots_c, trans_c = canonicalize(rots, trans)
    torch.testing.assert_close(trans_c[:, 1], trans[:, 1], atol=1e-12, rtol=0)
    assert torch.equal(rots_c[:, 1:], rots[:, 1:])


def test_canonicalize_is_idempotent():
    once = canonicalize(*random_motion(seed=5, batch=(3,)))
    twice = canonicalize(*once)
    torch.testing.assert_close(twice[0], once[0], atol=1e-12, rtol=0)
    torch.testing.assert_close(twice[1], once[1], atol=1e-12, rtol=0)


def test_a_late_crop_is_canonicalised_like_a_whole_clip_starting_there():
    rots, trans = canonicalize(*random_motion(t=30, seed=6))
    clip = smpl_to_features(rots, trans)
    crop = canonicalize_features(clip[12:])
    rots_c, trans_c = features_to_smpl(crop)
    assert abs(float(heading_of(rots_c[0, 0]))) < 1e-9, "the crop's first frame faces +Z"
    assert torch.equal(crop[0, 1:3], torch.zeros(2, dtype=crop.dtype)), "no velocity on its first frame"
    torch.testing.assert_close(crop, smpl_to_features(*canonicalize(rots[12:], trans[12:])), atol=1e-12, rtol=0)
    torch.testing.assert_close(crop[:, 9:], clip[12:, 9:], atol=1e-12, rtol=0)  # joints below the root unchanged
    speed = lambda f: f[1:, 1:3].norm(dim=-1)  # noqa: E731 — ground speed survives the turn
    torch.testing.assert_close(speed(crop), speed(clip[12:]), atol=1e-12, rtol=0)
    torch.testing.assert_close(canonicalize_features(clip), clip, atol=1e-12, rtol=0)  # a whole clip: unchanged


def test_canonicalize_heading_offset_sets_the_first_heading():
    rots, _ = canonicalize(*random_motion(seed=6), heading_offset_rad=-math.pi / 2)
    assert abs(float(heading_of(rots[0, 0])) + math.pi / 2) < 1e-12


def test_mirroring_twice_is_identity():
    rots, trans = random_motion(seed=7)
    rots2, trans2 = mirror_smpl(*mirror_smpl(rots, trans, MIRROR_INDEX), MIRROR_INDEX)
    torch.testing.assert_close(rots2, rots, atol=1e-15, rtol=0)
    torch.testing.assert_close(trans2, trans, atol=1e-15, rtol=0)


def test_mirrored_pose_puts_joints_at_mirrored_positions():
    rots, trans = random_motion(t=3, seed=8)
    pos, _ = forward_kinematics_np(rots.numpy(), trans.numpy())
    rots_m, trans_m = mirror_smpl(rots, trans, MIRROR_INDEX)
    pos_m, _ = forward_kinematics_np(rots_m.numpy(), trans_m.numpy())
    expected = pos[:, list(MIRROR_INDEX)] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(pos_m, expected, atol=1e-12)


def test_upright_root_uses_the_official_row_6d_layout_in_z_up():
    # An upright body facing +Z in SMPL space has the Z-up root rotation [[1,0,0],[0,0,-1],[0,1,0]]; the official
    # features store its first two rows: (1, 0, 0) and (0, 0, -1).
    rots = torch.eye(3, dtype=torch.float64).expand(1, 22, 3, 3)
    feats = smpl_to_features(rots, torch.tensor([[0.0, 0.93, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(feats[0, 3:9], torch.tensor([1.0, 0, 0, 0, 0, -1.0], dtype=torch.float64))
    assert float(feats[0, 0]) == 0.93  # root height is the Z-up z, the SMPL-space y


def test_root_velocity_is_the_z_up_horizontal_step():
    rots = torch.eye(3, dtype=torch.float64).expand(3, 22, 3, 3)
    trans = torch.tensor([[0.0, 0.9, 0.0], [0.1, 0.9, 0.2], [0.1, 0.9, 0.5]], dtype=torch.float64)
    feats = smpl_to_features(rots, trans)
    # SMPL (x, y, z) is Z-up (x, -z, y): the step (0.1, 0, 0.2) becomes (0.1, -0.2) in the Z-up ground plane.
    torch.testing.assert_close(feats[:, 1:3], torch.tensor([[0.0, 0.0], [0.1, -0.2], [0.0, -0.3]], dtype=torch.float64))


def test_yaw_matrix_turns_forward_by_the_heading():
    for angle in (-2.0, 0.3, 1.5):
        assert abs(float(heading_of(yaw_matrix(torch.tensor(angle, dtype=torch.float64)))) - angle) < 1e-12


def test_rest_pose_forward_kinematics_gives_rest_positions():
    rots = np.broadcast_to(np.eye(3), (22, 3, 3))
    pos, glob = forward_kinematics_np(rots, SMPL_REST_POSITIONS_M[0])
    np.testing.assert_allclose(pos, SMPL_REST_POSITIONS_M, atol=1e-12)
    np.testing.assert_allclose(glob, rots, atol=1e-12)


def test_elbow_bent_90_degrees_brings_the_left_wrist_forward():
    elbow, wrist = JOINT_INDEX["left_elbow"], JOINT_INDEX["left_wrist"]
    rots = np.tile(np.eye(3), (22, 1, 1))
    rots[elbow] = axis_angle_to_matrix(np.array([0.0, -math.pi / 2, 0.0]))  # about the up axis, hand to the front
    pos, _ = forward_kinematics_np(rots, SMPL_REST_POSITIONS_M[0])
    forearm = SMPL_OFFSETS_M[wrist]  # (length along +X, small y, 0) at rest
    np.testing.assert_allclose(pos[elbow], SMPL_REST_POSITIONS_M[elbow], atol=1e-12)
    np.testing.assert_allclose(pos[wrist] - pos[elbow], [-forearm[2], forearm[1], forearm[0]], atol=1e-12)
    assert pos[wrist, 2] - pos[elbow, 2] > 0.2  # the hand is now in front of the elbow (+Z)
    others = [j for j in range(22) if j != wrist]
    np.testing.assert_allclose(pos[others], SMPL_REST_POSITIONS_M[others], atol=1e-12)


def test_root_rotation_turns_the_whole_body():
    rots = np.tile(np.eye(3), (22, 1, 1))
    rots[0] = axis_angle_to_matrix(np.array([0.0, math.pi, 0.0]))  # about-turn
    root = SMPL_REST_POSITIONS_M[0]
    pos, _ = forward_kinematics_np(rots, root)
    np.testing.assert_allclose(pos - root, (SMPL_REST_POSITIONS_M - root) * np.array([-1.0, 1.0, -1.0]), atol=1e-12)


def test_feature_space_canonicalisation_equals_the_round_trip_through_smpl_in_batches_and_float32():
    rots, trans = random_motion(t=25, seed=8, batch=(3,))
    rots = yaw_matrix(torch.tensor([3.1, -2.0, 0.4], dtype=rots.dtype))[:, None, None] @ rots  # headings near ±π too
    feats = smpl_to_features(rots, trans).float()
    reference = smpl_to_features(*canonicalize(*features_to_smpl(feats[:, 7:])))
    torch.testing.assert_close(canonicalize_features(feats[:, 7:]), reference, atol=2e-6, rtol=0)
