import numpy as np

from temos_blender.retarget.axes import (
    BLENDER_FORWARD,
    BLENDER_UP,
    SMPL_FORWARD,
    SMPL_LEFT,
    SMPL_TO_BLENDER,
    SMPL_UP,
    blender_to_smpl_positions,
    blender_to_smpl_quaternions,
    blender_to_smpl_rotations,
    body_frame,
    smpl_to_blender_positions,
    smpl_to_blender_quaternions,
    smpl_to_blender_rotations,
    yaw_matrix_smpl,
)
from temos_blender.rotations import axis_angle_to_matrix, matrix_to_quat, quat_to_matrix


def test_smpl_up_forward_and_left_land_on_blenders_up_front_and_plus_x():
    np.testing.assert_allclose(smpl_to_blender_positions(SMPL_UP), BLENDER_UP)
    np.testing.assert_allclose(smpl_to_blender_positions(SMPL_FORWARD), BLENDER_FORWARD)
    np.testing.assert_allclose(smpl_to_blender_positions(SMPL_LEFT), [1.0, 0.0, 0.0])
    assert np.linalg.det(SMPL_TO_BLENDER) == 1.0


def test_conversions_round_trip():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(5, 3))
    np.testing.assert_allclose(blender_to_smpl_positions(smpl_to_blender_positions(p)), p, atol=1e-12)
    r = axis_angle_to_matrix(rng.normal(size=(5, 3)))
    np.testing.assert_allclose(blender_to_smpl_rotations(smpl_to_blender_rotations(r)), r, atol=1e-12)
    q = matrix_to_quat(r)
    np.testing.assert_allclose(blender_to_smpl_quaternions(smpl_to_blender_quaternions(q)), q, atol=1e-12)


def test_converted_rotation_acts_on_converted_points():
    rng = np.random.default_rng(1)
    r = axis_angle_to_matrix(rng.normal(size=3))
    p = rng.normal(size=3)
    np.testing.assert_allclose(
        smpl_to_blender_rotations(r) @ smpl_to_blender_positions(p), smpl_to_blender_positions(r @ p), atol=1e-12
    )
    np.testing.assert_allclose(
        quat_to_matrix(smpl_to_blender_quaternions(matrix_to_quat(r))), smpl_to_blender_rotations(r), atol=1e-12
    )


def test_body_frame_of_a_blender_character_is_smpl_to_blender():
    np.testing.assert_allclose(body_frame(np.array([1.0, 0.0, 0.05]), BLENDER_UP), SMPL_TO_BLENDER, atol=1e-12)


def test_yaw_turns_forward_towards_left():
    np.testing.assert_allclose(yaw_matrix_smpl(np.pi / 2) @ SMPL_FORWARD, SMPL_LEFT, atol=1e-12)
