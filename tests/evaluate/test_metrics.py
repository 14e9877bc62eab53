"""The metrics on synthetic data whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from temos_blender.evaluate import metrics
from temos_blender.evaluate.kinematics import canonical_joints, evaluator_inputs, heading, yaw_rotation

FPS = 12.5


def unit_rows(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------ retrieval
def test_r_precision_of_a_perfect_evaluator_is_one():
    emb = unit_rows(96)
    np.testing.assert_allclose(metrics.r_precision(emb, emb.copy(), repeats=3), [1.0, 1.0, 1.0])


def test_r_precision_of_unrelated_embeddings_is_chance():
    r = metrics.r_precision(unit_rows(640, seed=1), unit_rows(640, seed=2), repeats=10)
    np.testing.assert_allclose(r, [1 / 32, 2 / 32, 3 / 32], atol=0.015)


def test_r_precision_grows_with_k():
    motions = unit_rows(128, seed=3)
    texts = motions + 0.4 * unit_rows(128, seed=4)
    r = metrics.r_precision(motions, texts, repeats=5)
    assert 1 / 32 < r[0] <= r[1] <= r[2] <= 1


def test_per_item_hits_average_to_r_precision_and_pair_two_methods_on_the_same_distractors():
    motions = unit_rows(100, seed=5)  # 100 items: 4 dropped from each shuffle, so weights differ slightly
    texts = motions + 0.5 * unit_rows(100, seed=6)
    hits = metrics.r_precision_hits(motions, texts, k=3, repeats=8, seed=2)
    assert hits.shape == (100,) and np.all((hits >= 0) & (hits <= 1))
    r3 = metrics.r_precision(motions, texts, repeats=8, seed=2)[2]
    assert abs(np.nanmean(hits) - r3) < 0.02
    np.testing.assert_array_equal(metrics.r_precision_hits(motions, texts, k=3, repeats=8, seed=2), hits)
    perfect = metrics.r_precision_hits(texts, texts, k=1, repeats=8, seed=2)
    assert np.all(perfect[~np.isnan(perfect)] == 1.0)


def test_paired_difference_ci_brackets_the_true_shift_and_excludes_zero_only_when_it_should():
    rng = np.random.default_rng(0)
    clips = np.repeat(np.arange(300), 3)  # three prompts per clip
    a = rng.uniform(0, 1, 900)
    mean, lo, hi = metrics.paired_difference_ci(a + 0.05, a, clips)
    assert mean == pytest.approx(0.05) and lo == pytest.approx(0.05) and hi == pytest.approx(0.05)
    noisy = a + rng.normal(0, 0.3, 900)
    mean, lo, hi = metrics.paired_difference_ci(noisy, a, clips)
    assert lo < 0 < hi and lo < mean < hi  # no real difference: the interval holds zero
    mean, lo, hi = metrics.paired_difference_ci(noisy - 0.1, a, clips)
    assert hi < 0 and lo < mean < hi
    with_nan = a.copy()
    with_nan[:3] = np.nan  # an item no method scored is left out, not counted as zero
    assert metrics.paired_difference_ci(with_nan + 0.05, with_nan, clips)[0] == pytest.approx(0.05)


def test_other_label_r_precision_forgives_texts_of_the_same_label():
    labels = np.repeat(np.arange(12), 8)  # 12 labels × 8 items; items of one label are indistinguishable
    centres = unit_rows(12, seed=5)
    emb = centres[labels]

    plain = metrics.r_precision(emb, emb.copy(), repeats=5)
    other = metrics.r_precision_distinct(emb, emb.copy(), labels, repeats=2)

    assert plain[0] == 1.0  # ties are not counted against the true text…
    np.testing.assert_allclose(other, [1.0, 1.0, 1.0])
    shuffled = emb[np.random.default_rng(0).permutation(len(emb))]  # …but a wrong motion is
    assert metrics.r_precision_distinct(shuffled, emb, labels, repeats=2)[2] < 0.5


def test_other_label_distractors_are_the_same_for_every_method():
    labels = np.repeat(np.arange(10), 5)
    emb_a, emb_b = unit_rows(50, seed=6), unit_rows(50, seed=7)
    first = metrics.ranks_against_other_labels(emb_a, emb_a, labels, repeats=1, seed=3)
    again = metrics.ranks_against_other_labels(emb_a, emb_a, labels, repeats=1, seed=3)
    other_method = metrics.ranks_against_other_labels(emb_b, emb_a, labels, repeats=1, seed=3)
    assert np.array_equal(first, again) and first.shape == other_method.shape == (1, 50)


# ------------------------------------------------------------------------------------------------ distributions
def test_fid_of_a_set_with_itself_is_zero():
    a = unit_rows(200, d=8)
    assert abs(metrics.frechet_distance(a, a.copy())) < 1e-6


def test_fid_of_a_shifted_set_is_the_squared_shift():
    a = unit_rows(200, d=8)
    shift = np.arange(8) * 0.1
    assert metrics.frechet_distance(a, a + shift) == pytest.approx((shift**2).sum(), abs=1e-6)


def test_fid_of_a_doubled_set_matches_the_closed_form():
    # b = 2a: ‖μ‖² + Tr(Σ) + Tr(4Σ) − 2 Tr(2Σ) = ‖μ‖² + Tr(Σ)
    a = unit_rows(300, d=6, seed=8) + 0.3
    expected = (a.mean(0) ** 2).sum() + np.trace(np.cov(a, rowvar=False))
    assert metrics.frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-6)


def test_diversity_of_two_opposite_points_is_their_distance():
    emb = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert metrics.diversity(emb, n_pairs=50) == pytest.approx(2.0)
    assert metrics.diversity(np.ones((10, 3)), n_pairs=50) == 0.0


def test_multimodality_is_zero_for_identical_samples_and_the_pair_distance_for_two():
    assert metrics.multimodality(np.ones((4, 5, 3))) == 0.0
    groups = np.array([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 2.0]]])  # distances 5 and 1
    assert metrics.multimodality(groups) == pytest.approx(3.0)


# ------------------------------------------------------------------------------------------------ APE / AVE
def test_ape_and_ave_of_identical_motions_are_zero(moving_rest_pose):
    walk = moving_rest_pose(40, velocity_mps=(0.2, 0.0, 1.2), yaw_rate_dps=10)
    out = metrics.ape_ave([walk], [walk.copy()])
    assert set(out) == {f"{a}_{k}" for a in ("APE", "AVE") for k in ("root", "traj", "local", "global")}
    assert max(out.values()) < 1e-9


def test_ape_ignores_where_a_motion_starts_and_faces_and_how_high_its_floor_is(moving_rest_pose):
    walk = moving_rest_pose(40, velocity_mps=(0.0, 0.0, 1.0), yaw_rate_dps=20)
    moved = walk @ yaw_rotation(np.radians(70.0)).T + np.array([3.0, 0.25, -2.0])
    assert max(metrics.ape_ave([moved], [walk]).values()) < 1e-9


def test_ape_of_a_walk_against_standing_still_is_the_mean_distance_walked(moving_rest_pose):
    frames, speed = 26, 1.0
    stand, walk = moving_rest_pose(frames), moving_rest_pose(frames, velocity_mps=(0.0, 0.0, speed))
    out = metrics.ape_ave([walk], [stand])
    dist = speed * np.arange(frames) / FPS  # distance from the start at each frame
    assert out["APE_root"] == pytest.approx(dist.mean())
    assert out["APE_traj"] == pytest.approx(dist.mean())
    assert out["APE_global"] == pytest.approx(dist.mean())
    assert out["APE_local"] == pytest.approx(0.0, abs=1e-9)
    # AVE: the variance of z over time (denominator T − 1) against 0.
    assert out["AVE_root"] == pytest.approx(((dist - dist.mean()) ** 2).sum() / (frames - 1))


def test_ape_averages_over_frames_and_ave_over_clips(moving_rest_pose):
    short = [moving_rest_pose(10, velocity_mps=(0, 0, 1.0)), moving_rest_pose(10)]
    long = [moving_rest_pose(30), moving_rest_pose(30)]
    out = metrics.ape_ave([short[0], long[0]], [short[1], long[1]])
    alone = metrics.ape_ave([short[0]], [short[1]])
    assert out["APE_root"] == pytest.approx(alone["APE_root"] * 10 / 40)
    assert out["AVE_root"] == pytest.approx(alone["AVE_root"] / 2)


# ------------------------------------------------------------------------------------------------ quality
def test_foot_skating_of_a_sliding_grounded_foot_is_positive(moving_rest_pose):
    slide = moving_rest_pose(20, velocity_mps=(1.0, 0.0, 0.0))  # feet on the floor, moving 1 m/s
    assert metrics.foot_skating_ratio(slide, FPS) == 1.0


def test_foot_skating_of_still_or_slowly_moving_feet_is_zero(moving_rest_pose):
    assert metrics.foot_skating_ratio(moving_rest_pose(20), FPS) == 0.0
    assert metrics.foot_skating_ratio(moving_rest_pose(20, velocity_mps=(0.5, 0.0, 0.0)), FPS) == 0.0


def test_foot_skating_ignores_a_foot_in_the_air(moving_rest_pose):
    slide = moving_rest_pose(20, velocity_mps=(1.0, 0.0, 0.0))
    slide[:, [7, 10, 8, 11], 1] += np.where(np.arange(20) % 2 == 0, 0.0, 0.3)[:, None]  # feet up every other frame
    assert metrics.foot_skating_ratio(slide, FPS) == 0.0


def test_jerk_is_zero_at_constant_velocity_and_six_a_for_a_cubic_path(moving_rest_pose):
    assert metrics.mean_jerk(moving_rest_pose(20, velocity_mps=(1.0, 0.0, 0.5)), FPS) == pytest.approx(0.0, abs=1e-9)
    t = np.arange(30) / FPS
    cubic = moving_rest_pose(30)
    cubic[..., 0] += 2.0 * t[:, None] ** 3
    assert metrics.mean_jerk(cubic, FPS) == pytest.approx(12.0, rel=1e-6)


def test_ground_penetration_is_how_deep_the_lowest_foot_joint_sinks(moving_rest_pose):
    stand = moving_rest_pose(10)
    assert metrics.ground_penetration(stand) == 0.0
    sunk = stand - np.array([0.0, 0.1, 0.0])  # the balls of the feet rest 1 cm up → 9 cm under
    assert metrics.ground_penetration(sunk) == pytest.approx(0.09)


def test_local_joint_speed_is_zero_for_a_carried_pose_and_the_limb_speed_otherwise(moving_rest_pose):
    assert metrics.local_joint_speed(moving_rest_pose(20, velocity_mps=(1.0, 0, 2.0), yaw_rate_dps=0), FPS) < 1e-9
    waving = moving_rest_pose(20)
    waving[:, 21, 1] += 0.5 * np.arange(20) / FPS  # right wrist rises at 0.5 m/s, 1 joint of 21
    assert metrics.local_joint_speed(waving, FPS) == pytest.approx(0.5 / 21)


def test_motion_quality_averages_over_clips(moving_rest_pose):
    out = metrics.motion_quality([moving_rest_pose(20, velocity_mps=(1.0, 0, 0)), moving_rest_pose(20)], FPS)
    assert out["skating_ratio"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------------ kinematics
def test_heading_is_zero_facing_plus_z_and_grows_when_turning_left(moving_rest_pose):
    assert heading(moving_rest_pose(1))[0] == pytest.approx(0.0, abs=1e-9)
    # Facing +X (the body's left at rest) is a quarter turn to the left.
    assert heading(moving_rest_pose(1, yaw0_deg=90))[0] == pytest.approx(np.pi / 2)
    turning = heading(moving_rest_pose(40, yaw_rate_dps=120))  # 1.5 turns: unwrapped, no jumps
    assert np.all(np.diff(turning) > 0) and turning[-1] == pytest.approx(np.radians(120 * 39 / FPS))


def test_canonical_joints_are_idempotent_and_start_at_the_origin_facing_plus_z(moving_rest_pose):
    walk = moving_rest_pose(30, velocity_mps=(0.3, 0.0, 1.0), yaw_rate_dps=15, yaw0_deg=40) + np.array([1.0, 0.2, 2.0])
    c = canonical_joints(walk)
    np.testing.assert_allclose(canonical_joints(c), c, atol=1e-9)
    np.testing.assert_allclose(c[0, 0, [0, 2]], 0.0, atol=1e-9)
    assert heading(c[:1])[0] == pytest.approx(0.0, abs=1e-9)


def test_evaluator_inputs_do_not_depend_on_start_position_or_facing(moving_rest_pose):
    walk = moving_rest_pose(30, velocity_mps=(0.3, 0.0, 1.0), yaw_rate_dps=15)
    moved = walk @ yaw_rotation(np.radians(-110.0)).T + np.array([-4.0, 0.0, 7.0])
    a, b = evaluator_inputs(walk, FPS), evaluator_inputs(moved, FPS)
    assert a.shape == (30, 130)
    np.testing.assert_allclose(a, b, atol=1e-4)
