"""Bandai Namco → SMPL-22: bone directions, grounding, facing, mirroring, features, on real clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from temos_blender.core.features import features_to_smpl, heading_of, mirror_smpl, smpl_to_features
from temos_blender.data import bandai
from temos_blender.data.bvh import read_bvh
from temos_blender.data.smpl_transfer import bone_direction_errors_deg, transfer_to_smpl
from temos_blender.skeleton import JOINT_INDEX, MIRROR_INDEX, forward_kinematics_np

J = JOINT_INDEX


def _convert(bandai_clips, data_dir, clip_id, fps=30.0):
    motion, _ = bandai.convert_clip(bandai_clips[clip_id], data_dir, fps)
    return motion


@pytest.mark.parametrize(
    "clip_id", ["dataset-2_walk_normal_001", "dataset-2_wave-right-hand_elderly_001", "dataset-1_kick_normal_001"]
)
def test_transfer_mean_bone_direction_error_is_below_3_degrees(bandai_clips, data_dir, clip_id):
    m = read_bvh(bandai_clips[clip_id].path)
    pos, glob = m.forward_kinematics()
    a, scale, _ = bandai.alignment(str(data_dir))
    local, root = transfer_to_smpl(pos, glob, m.names, bandai.JOINT_MAP, a, scale)
    err, labels = bone_direction_errors_deg(local, root, pos, m.names, bandai.JOINT_MAP)
    assert err.mean() <= 3.0, dict(zip(labels, err.mean(0).round(2)))
    limbs = err[:, [i for i, lab in enumerate(labels) if lab != "torso"]]
    assert limbs.max() < 0.5  # limb bones are aligned exactly; only the torso carries a posture offset


def test_reference_alignment_is_stable_across_standing_frames(data_dir):
    _, _, spread = bandai.alignment(str(data_dir))
    assert np.median(spread) < 2.0 and np.percentile(spread, 95) < 8.0


def test_walk_feet_stay_planted_near_the_ground(bandai_clips, data_dir):
    m = _convert(bandai_clips, data_dir, "dataset-2_walk_normal_001")
    pos, _ = forward_kinematics_np(m.local_rotmats, m.root_translation)
    lowest = pos[:, [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]], 1].min(axis=1)
    assert np.all(lowest > -0.01) and np.all(lowest < 0.05), (lowest.min(), lowest.max())
    # A planted foot does not slide: on frames where the left toe is lowest and at the ground, it barely moves.
    toe = pos[:, J["left_foot"]]
    planted = (toe[:-1, 1] < 0.03) & (toe[1:, 1] < 0.03)
    slide = np.linalg.norm(np.diff(toe[:, [0, 2]], axis=0), axis=-1)[planted] * m.fps
    assert planted.sum() > 20 and np.median(slide) < 0.15, (planted.sum(), np.median(slide))


def test_clip_faces_forward_at_the_origin_and_walks_forward(bandai_clips, data_dir):
    m = _convert(bandai_clips, data_dir, "dataset-2_walk_normal_001", fps=12.5)
    assert m.fps == 12.5 and m.num_frames == 114  # 273 frames at 30 fps = 9.07 s
    assert abs(float(heading_of(torch.from_numpy(m.local_rotmats[0, 0])))) < 1e-6
    assert np.allclose(m.root_translation[0, [0, 2]], 0.0, atol=1e-9)
    travel = m.root_translation[-1] - m.root_translation[0]
    assert travel[2] > 8.0 and abs(travel[0]) < 0.2 * travel[2]  # ~10 m forward (+Z), scaled by the leg ratio
    assert 0.85 < m.root_translation[:, 1].mean() < 0.97


def test_wave_right_hand_raises_the_right_wrist_and_mirrored_the_left(bandai_clips, data_dir):
    m = _convert(bandai_clips, data_dir, "dataset-2_wave-right-hand_normal_001", fps=12.5)
    pos, _ = forward_kinematics_np(m.local_rotmats, m.root_translation)
    assert pos[:, J["right_wrist"], 1].max() > pos[:, J["head"], 1].max()
    assert pos[:, J["left_wrist"], 1].max() < 1.0
    rots, root = mirror_smpl(torch.from_numpy(m.local_rotmats), torch.from_numpy(m.root_translation), MIRROR_INDEX)
    mpos, _ = forward_kinematics_np(rots.numpy(), root.numpy())
    assert mpos[:, J["left_wrist"], 1].max() > mpos[:, J["head"], 1].max()
    assert mpos[:, J["right_wrist"], 1].max() < 1.0
    assert np.all(mpos[:, J["left_wrist"], 0] > 0)  # the body's left is +X


def test_mirroring_twice_is_identity(bandai_clips, data_dir):
    m = _convert(bandai_clips, data_dir, "dataset-1_kick_normal_001", fps=12.5)
    rots, root = torch.from_numpy(m.local_rotmats), torch.from_numpy(m.root_translation)
    r2, t2 = mirror_smpl(*mirror_smpl(rots, root, MIRROR_INDEX), MIRROR_INDEX)
    assert torch.allclose(r2, rots, atol=1e-12) and torch.allclose(t2, root, atol=1e-12)


def test_features_to_rotations_to_features_is_exact(bandai_clips, data_dir):
    m = _convert(bandai_clips, data_dir, "dataset-2_run_normal_001", fps=12.5)
    feats = smpl_to_features(torch.from_numpy(m.local_rotmats), torch.from_numpy(m.root_translation))
    rots, trans = features_to_smpl(feats)
    assert torch.allclose(rots, torch.from_numpy(m.local_rotmats), atol=1e-9)
    assert torch.allclose(trans, torch.from_numpy(m.root_translation), atol=1e-9)
    assert torch.allclose(smpl_to_features(rots, trans), feats, atol=1e-9)
