"""CMU (three BVH conversions), DeepMimic and AMP clips → SMPL-22, on real files."""

from __future__ import annotations

import numpy as np
import pytest

from temos_blender.data import cmu, deepmimic
from temos_blender.data.bvh import read_bvh
from temos_blender.data.smpl_transfer import hinge_axes
from temos_blender.skeleton import JOINT_INDEX, forward_kinematics_np

J = JOINT_INDEX


@pytest.fixture(scope="module")
def cmu_clips(data_dir):
    return {c.trial: c for c in cmu.list_clips(data_dir)}


@pytest.fixture(scope="module")
def dm_clips(data_dir):
    clips, _ = deepmimic.list_clips(data_dir)
    return {c.clip_id: c for c in clips}


@pytest.mark.parametrize("trial, skeleton", [("01_01", "cmu_mb"), ("131_03", "cmu_max"), ("07_03", "cmu_daz")])
def test_each_cmu_conversion_transfers_with_small_bone_error_and_stands_upright(cmu_clips, trial, skeleton):
    clip = cmu_clips[trial]
    assert clip.skeleton == skeleton
    m = cmu.convert_clip(clip, 30.0)
    assert m.stats["bone_error_deg"] < 3.0
    pos, _ = forward_kinematics_np(m.local_rotmats, m.root_translation)
    assert 0.8 < np.median(pos[:, J["pelvis"], 1]) < 1.0 and 1.35 < np.median(pos[:, J["head"], 1]) < 1.6
    assert np.median(pos[:, J["left_hip"], 0]) > np.median(pos[:, J["right_hip"], 0])  # the body's left is +X


def test_cmu_tpose_first_frame_is_dropped(cmu_clips):
    clip = cmu_clips["07_03"]
    assert clip.tpose_first_frame
    frames = read_bvh(clip.path).num_frames
    assert cmu.convert_clip(clip, 30.0).num_frames == frames - 1


def test_cmu_walk_moves_forward_from_the_origin(cmu_clips):
    m = cmu.convert_clip(cmu_clips["07_03"], 12.5)  # KIT-ML: "A person walks forward."
    travel = m.root_translation[-1] - m.root_translation[0]
    assert np.allclose(m.root_translation[0, [0, 2]], 0.0) and travel[2] > 2.5 and abs(travel[0]) < 0.5


@pytest.mark.parametrize(
    "clip_id", ["deepmimic_walk", "deepmimic_cartwheel", "sie_humanoid3d_punch_forward00", "amp_hop"]
)
def test_deepmimic_skeleton_clips_transfer_with_small_bone_error(dm_clips, clip_id):
    m = deepmimic.convert_clip(dm_clips[clip_id], 30.0)
    assert m.stats["bone_error_deg"] < 3.0
    pos, _ = forward_kinematics_np(m.local_rotmats, m.root_translation)
    feet = pos[:, [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]], 1].min(axis=1)
    assert np.percentile(feet, 2) == pytest.approx(0.01, abs=0.005)


def test_gait_loop_is_repeated_without_a_jump_at_the_seams(dm_clips):
    clip = dm_clips["deepmimic_walk"]
    one, _ = deepmimic.read_deepmimic(clip.path)
    tiled = deepmimic.load(clip)
    assert tiled.num_frames > 3 * one.num_frames - 3
    pos, _ = tiled.forward_kinematics()
    step = np.linalg.norm(np.diff(pos, axis=0), axis=-1).max(axis=1)  # largest joint move per frame
    seams = np.arange(1, 4) * (one.num_frames - 1)
    assert step[seams - 1].max() < 1.5 * np.percentile(step, 99)


def test_mirrored_sie_duplicates_are_left_out(data_dir):
    clips, skipped = deepmimic.list_clips(data_dir)
    assert len(skipped) == 23 and all("mirrored duplicate" in why for _, why in skipped)
    assert not any(c.clip_id in {name.removesuffix(".txt.gz") for name, _ in skipped} for c in clips)


def test_elbows_and_knees_bend_about_smpl_axes_after_transfer(cmu_clips, dm_clips, bandai_clips, data_dir):
    from temos_blender.data import bandai

    locals_ = [
        bandai.convert_clip(bandai_clips["dataset-2_run_normal_001"], data_dir, 30.0)[0].local_rotmats,
        cmu.convert_clip(cmu_clips["09_01"], 30.0).local_rotmats,
        deepmimic.convert_clip(dm_clips["deepmimic_run"], 30.0).local_rotmats,
    ]
    expected = {"left_elbow": (0, -1, 0), "right_elbow": (0, 1, 0), "left_knee": (1, 0, 0), "right_knee": (1, 0, 0)}
    for local in locals_:
        for name, (axis, n) in hinge_axes([local]).items():
            if axis is not None:
                assert np.degrees(np.arccos(np.clip(axis @ expected[name], -1, 1))) < 10.0, (name, axis, n)
