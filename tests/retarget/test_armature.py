import dataclasses

import numpy as np
import pytest

from temos_blender.retarget.armature import (
    Armature,
    RigError,
    armature_from_head_tail_roll,
    bone_rest_rotation,
    forward_kinematics,
    to_world_positions,
)
from temos_blender.rotations import axis_angle_to_matrix, matrix_to_quat


def _chain(**flags) -> Armature:
    """root (up) → mid (forward, −Y) → tip (up), with a sideways roll on mid."""
    heads = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 1.0]])
    tails = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 1.0], [0.0, -1.0, 2.0]])
    arm = armature_from_head_tail_roll(
        "chain", ["root", "mid", "tip"], [None, "root", "mid"], heads, tails, [0.0, 0.7, 0.0]
    )
    return dataclasses.replace(arm, **flags)


def test_bone_rest_rotation_points_y_from_head_to_tail_and_is_a_rotation():
    rng = np.random.default_rng(0)
    heads, tails = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    r = bone_rest_rotation(heads, tails, rng.uniform(-3, 3, 50))
    y = (tails - heads) / np.linalg.norm(tails - heads, axis=-1, keepdims=True)
    np.testing.assert_allclose(r[..., :, 1], y, atol=1e-12)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)


def test_bone_rest_rotation_with_zero_roll_is_the_smallest_turn_from_plus_y():
    # A bone along +Z with roll 0: Blender gives X = +X, Z = −Y (a 90° turn about X).
    r = bone_rest_rotation(np.zeros(3), np.array([0.0, 0.0, 2.0]), 0.0)
    np.testing.assert_allclose(r, axis_angle_to_matrix(np.array([np.pi / 2, 0.0, 0.0])), atol=1e-12)


def test_roll_turns_x_and_z_about_the_bone_axis():
    base = bone_rest_rotation(np.zeros(3), np.array([0.3, 0.5, 0.8]), 0.0)
    rolled = bone_rest_rotation(np.zeros(3), np.array([0.3, 0.5, 0.8]), 0.4)
    np.testing.assert_allclose(base.T @ rolled, axis_angle_to_matrix(np.array([0.0, 0.4, 0.0])), atol=1e-12)


def test_bone_pointing_along_minus_y_uses_blenders_special_case():
    r = bone_rest_rotation(np.zeros(3), np.array([0.0, -1.0, 0.0]), 0.0)
    np.testing.assert_allclose(r, np.diag([-1.0, -1.0, 1.0]), atol=1e-12)


def test_zero_length_bone_is_rejected():
    with pytest.raises(RigError, match="zero length"):
        bone_rest_rotation(np.zeros(3), np.zeros(3), 0.0)


def test_forward_kinematics_without_pose_gives_rest_matrices():
    arm = _chain()
    np.testing.assert_allclose(forward_kinematics(arm), arm.rest_matrices, atol=1e-12)


def test_pose_matrix_is_parent_pose_times_local_rest_times_basis():
    arm = _chain()
    rng = np.random.default_rng(1)
    rot = axis_angle_to_matrix(rng.normal(size=(3, 3)))
    loc = rng.normal(size=(3, 3))
    poses = forward_kinematics(arm, matrix_to_quat(rot), loc)
    m = arm.rest_matrices

    def basis(i):
        b = np.eye(4)
        b[:3, :3], b[:3, 3] = rot[i], loc[i]
        return b

    p0 = m[0] @ basis(0)
    p1 = p0 @ np.linalg.inv(m[0]) @ m[1] @ basis(1)
    p2 = p1 @ np.linalg.inv(m[1]) @ m[2] @ basis(2)
    np.testing.assert_allclose(poses, np.stack([p0, p1, p2]), atol=1e-12)


def test_location_moves_a_bone_along_its_own_rest_axes():
    arm = _chain()
    loc = np.zeros((3, 3))
    loc[1] = (0.0, 0.5, 0.0)  # along mid's Y axis, which points −Y in armature space
    poses = forward_kinematics(arm, None, loc)
    np.testing.assert_allclose(poses[1, :3, 3], arm.heads[1] + [0.0, -0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(poses[2, :3, 3], arm.heads[2] + [0.0, -0.5, 0.0], atol=1e-12)


def test_location_without_local_location_moves_along_parent_axes():
    arm = _chain(local_location=(True, False, True))
    loc = np.zeros((3, 3))
    loc[1] = (0.0, 0.5, 0.0)
    poses = forward_kinematics(arm, None, loc)
    np.testing.assert_allclose(poses[1, :3, 3], arm.heads[1] + [0.0, 0.0, 0.5], atol=1e-12)  # root's Y is +Z


def test_connected_bone_ignores_its_location():
    arm = _chain(connected=(False, True, True))
    root_only = np.zeros((3, 3))
    root_only[0] = 1.0
    np.testing.assert_allclose(
        forward_kinematics(arm, None, np.ones((3, 3))), forward_kinematics(arm, None, root_only), atol=1e-12
    )


def test_bone_without_inherit_rotation_keeps_its_rest_orientation():
    arm = _chain(inherit_rotation=(True, False, True))
    rot = np.zeros((3, 4))
    rot[:, 0] = 1.0
    rot[0] = matrix_to_quat(axis_angle_to_matrix(np.array([0.0, 0.9, 0.0])))  # twist the root about its own axis
    poses = forward_kinematics(arm, rot)
    np.testing.assert_allclose(poses[1, :3, :3], arm.rest_rotations[1], atol=1e-12)
    np.testing.assert_allclose(poses[1, :3, 3], arm.heads[1], atol=1e-12)  # its head sits on the twisting axis
    assert not np.allclose(forward_kinematics(_chain(), rot)[1, :3, :3], arm.rest_rotations[1], atol=1e-3)


def test_copy_transforms_bone_takes_the_pose_of_its_target():
    arm = _chain(copy_transforms=(-1, -1, 0))
    rot = np.zeros((3, 4))
    rot[:, 0] = 1.0
    rot[0] = matrix_to_quat(axis_angle_to_matrix(np.array([0.4, 0.2, 0.0])))
    poses = forward_kinematics(arm, rot)
    np.testing.assert_allclose(poses[2], poses[0], atol=1e-12)


def test_evaluation_order_puts_parents_and_copied_bones_first():
    arm = Armature(
        "a",
        ("c", "b", "a"),
        (1, 2, -1),
        np.zeros((3, 3)),
        np.ones((3, 3)),
        np.broadcast_to(np.eye(3), (3, 3, 3)),
        copy_transforms=(-1, -1, -1),
    )
    order = arm.evaluation_order
    assert order.index(2) < order.index(1) < order.index(0)


def test_parent_cycle_is_reported():
    with pytest.raises(RigError, match="cycle"):
        Armature("a", ("x", "y"), (1, 0), np.zeros((2, 3)), np.ones((2, 3)), np.broadcast_to(np.eye(3), (2, 3, 3)))


def test_unknown_bone_error_names_the_bone_and_the_fix():
    with pytest.raises(RigError, match="Bone 'hand' is not on armature 'chain'. Choose a bone-map preset"):
        _chain().bone_index("hand")


def test_world_positions_apply_object_rotation_and_scale():
    w = np.eye(4)
    w[:3, :3] = axis_angle_to_matrix(np.array([np.pi / 2, 0.0, 0.0])) * 0.01
    w[:3, 3] = (1.0, 2.0, 3.0)
    arm = dataclasses.replace(_chain(), world_matrix=w)
    np.testing.assert_allclose(to_world_positions(arm, np.array([0.0, 100.0, 0.0])), [1.0, 2.0, 4.0], atol=1e-12)
    assert arm.world_scale == pytest.approx(0.01)
