import numpy as np
from retarget_rigs import build_rig

from temos_blender.retarget.foot_contact import (
    contact_runs,
    detect_contacts,
    plant_corrections,
    skating_ratio,
    two_bone_ik,
)
from temos_blender.retarget.retarget import RetargetOptions, retarget
from temos_blender.retarget.synthetic import walk, with_root_speed
from temos_blender.rotations import axis_angle_to_matrix, quat_to_matrix
from temos_blender.skeleton import JOINT_INDEX, SMPL_REST_POSITIONS_M, forward_kinematics_np

FEET = [JOINT_INDEX[j] for j in ("left_ankle", "left_foot", "right_ankle", "right_foot")]


def _smpl_feet(take):
    pos, _ = forward_kinematics_np(
        quat_to_matrix(take.rotations.astype(np.float64)), take.root_translation.astype(np.float64)
    )
    return pos[:, FEET]


def test_contacts_of_a_synthetic_walk_are_its_stance_phases():
    take = walk(duration_s=3.0, fps=20.0, speed_m_s=1.0, cycle_s=1.0, stance_fraction=0.6)
    contacts = detect_contacts(_smpl_feet(take), take.fps, rest_heights=SMPL_REST_POSITIONS_M[FEET, 1])
    t = np.arange(take.num_frames) / take.fps
    for column, phase0 in ((0, 0.0), (2, 0.5)):
        stance = np.mod(t - phase0, 1.0) < 0.6
        agreement = np.mean(contacts[:, column] == stance)
        assert agreement > 0.9, agreement


def test_synthetic_walk_does_not_skate_and_a_faster_root_does():
    take = walk(duration_s=3.0, fps=20.0)
    rest = SMPL_REST_POSITIONS_M[FEET, 1]
    feet = _smpl_feet(take)
    assert skating_ratio(feet, detect_contacts(feet, 20.0, rest_heights=rest), 20.0) == 0.0
    sliding = _smpl_feet(with_root_speed(take, 1.25))
    assert skating_ratio(sliding, detect_contacts(sliding, 20.0, rest_heights=rest), 20.0) > 0.5


def test_skating_ratio_counts_contact_frames_away_from_the_plant():
    positions = np.zeros((10, 1, 3))
    positions[:, 0, 2] = np.arange(10) * 0.01  # slides 1 cm per frame
    contacts = np.ones((10, 1), dtype=bool)
    assert skating_ratio(positions, contacts, fps=10.0, threshold_m=0.025) == 0.7  # frames 3..9 are > 2.5 cm away
    positions[:, 0, 1] = np.arange(10) * 0.01  # vertical motion does not count
    positions[:, 0, 2] = 0.0
    assert skating_ratio(positions, contacts, fps=10.0) == 0.0
    assert skating_ratio(positions, np.zeros((10, 1), dtype=bool), fps=10.0) == 0.0


def test_contact_runs_are_half_open_ranges():
    assert contact_runs(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 3), (4, 5)]


def _corrected(point, ankle, shift, yaw):
    """x' = R(yaw) (x − ankle) + ankle + shift, about +Y."""
    r = axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]) * yaw[:, None])
    return np.einsum("tij,tj->ti", r, point - ankle) + ankle + shift


def test_plant_corrections_pin_a_sliding_foot_and_fade_out_after_the_contact():
    n = 20
    ankle = np.zeros((n, 3))
    ankle[:, 2] = np.arange(n) * 0.02
    toe = ankle + [0.0, 0.0, 0.1]
    contact = np.zeros(n, dtype=bool)
    contact[2:10] = True
    shift, yaw = plant_corrections(ankle, toe, contact, contact, up=(0, 1, 0), blend_frames=4)
    for point in (ankle, toe):
        pinned = _corrected(point, ankle, shift, yaw)[2:10]
        np.testing.assert_allclose(pinned, np.broadcast_to(point[2], pinned.shape), atol=1e-12)
    np.testing.assert_allclose(shift[:2], 0.0)
    np.testing.assert_allclose(shift[14:], 0.0)
    steps = np.linalg.norm(np.diff(shift, axis=0), axis=-1)
    assert steps[10:14].max() < np.linalg.norm(shift[9]) / 3  # released gradually, not popped


def test_a_flat_foot_that_spins_is_held_and_a_heel_off_foot_pivots_on_its_toe():
    n = 12
    angle = np.linspace(0.0, 0.6, n)  # the foot turns about its toe
    toe = np.tile([0.2, 0.0, 0.3], (n, 1))
    ankle = toe - 0.15 * np.stack([np.sin(angle), np.zeros(n), np.cos(angle)], -1)
    both = np.ones(n, dtype=bool)
    shift, yaw = plant_corrections(ankle, toe, both, both, up=(0, 1, 0), blend_frames=3)
    np.testing.assert_allclose(_corrected(ankle, ankle, shift, yaw), np.broadcast_to(ankle[0], (n, 3)), atol=1e-12)
    np.testing.assert_allclose(_corrected(toe, ankle, shift, yaw), np.broadcast_to(toe[0], (n, 3)), atol=1e-12)
    heel_off = np.zeros(n, dtype=bool)
    shift, yaw = plant_corrections(ankle, toe, heel_off, both, up=(0, 1, 0), blend_frames=3)
    np.testing.assert_allclose(yaw, 0.0)
    np.testing.assert_allclose(_corrected(toe, ankle, shift, yaw), toe, atol=1e-12)  # pivot allowed
    rolling = toe - np.linspace(0.15, 0.1, n)[:, None] * [0.0, 0.0, 1.0]  # heel lifts: the ankle comes forward
    shift, yaw = plant_corrections(rolling, toe, both, both, up=(0, 1, 0), blend_frames=3)
    np.testing.assert_allclose(yaw, 0.0, atol=1e-12)
    np.testing.assert_allclose(shift, 0.0, atol=1e-12)  # rolling onto the ball is left alone


def test_two_bone_ik_reaches_the_target_and_keeps_bone_lengths():
    rng = np.random.default_rng(0)
    hip = np.zeros((50, 3))
    thigh_dir = axis_angle_to_matrix(rng.normal(size=(50, 3)) * 0.3) @ np.array([0.0, -1.0, 0.0])
    knee = hip + 0.45 * thigh_dir
    ankle = knee + 0.42 * (axis_angle_to_matrix(rng.normal(size=(50, 3)) * 0.3) @ np.array([0.0, -1.0, 0.0]))
    target = ankle + rng.normal(size=(50, 3)) * 0.05
    r_thigh, r_shin = two_bone_ik(hip, knee, ankle, target, fallback_axis=np.array([1.0, 0.0, 0.0]))
    new_knee = hip + np.einsum("tij,tj->ti", r_thigh, knee - hip)
    new_ankle = new_knee + np.einsum("tij,tj->ti", r_shin, ankle - knee)
    np.testing.assert_allclose(np.linalg.norm(new_knee - hip, axis=-1), 0.45, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(new_ankle - new_knee, axis=-1), 0.42, atol=1e-9)
    reachable = np.linalg.norm(target - hip, axis=-1) < 0.87 * (1 - 1e-5)
    np.testing.assert_allclose(new_ankle[reachable], target[reachable], atol=1e-6)


def test_cleanup_removes_skating_of_a_take_whose_root_runs_ahead_of_its_steps():
    take = with_root_speed(walk(duration_s=4.0, fps=20.0, speed_m_s=1.1), 1.2)
    rig = build_rig("A", seed=1, leg_scale=1.15, arm_scale=0.9, twist=True)
    result = retarget(take, rig.armature, rig.bone_map)
    assert result.skating_before > 0.5
    assert result.skating_after < 0.05
    assert result.skating_after < result.skating_before
    assert "Foot cleanup: skating" in result.messages[-1]


def test_cleanup_pins_feet_whose_legs_jitter():
    take = walk(duration_s=4.0, fps=20.0)
    rng = np.random.default_rng(2)
    rotations = quat_to_matrix(take.rotations.astype(np.float64))
    for joint in ("left_hip", "right_hip", "left_knee", "right_knee"):
        rotations[:, JOINT_INDEX[joint]] = (
            axis_angle_to_matrix(rng.normal(size=(take.num_frames, 3)) * 0.03) @ rotations[:, JOINT_INDEX[joint]]
        )
    rig = build_rig("T", seed=2)
    result = retarget((rotations, take.root_translation, take.fps), rig.armature, rig.bone_map)
    assert result.skating_before > 0.2
    assert result.skating_after < 0.25 * result.skating_before


def test_cleanup_can_be_turned_off():
    take = with_root_speed(walk(duration_s=1.0, fps=20.0), 1.2)
    rig = build_rig("T")
    result = retarget(take, rig.armature, rig.bone_map, RetargetOptions(clean_foot_contacts=False))
    assert result.skating_before is None and result.contacts is None
