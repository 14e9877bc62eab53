import subprocess
import sys

import numpy as np
import pytest
from retarget_rigs import build_rig, random_motion

from temos_blender.retarget.armature import RigError, forward_kinematics, to_world_positions
from temos_blender.retarget.axes import SMPL_TO_BLENDER
from temos_blender.retarget.bone_map import BoneMap
from temos_blender.retarget.retarget import RetargetOptions, retarget
from temos_blender.retarget.synthetic import walk
from temos_blender.rotations import axis_angle_to_matrix, matrix_to_quat, quat_to_matrix
from temos_blender.skeleton import JOINT_INDEX, SMPL_JOINTS, SMPL_REST_POSITIONS_M, forward_kinematics_np
from temos_blender.take import Take

NO_CLEANUP = RetargetOptions(clean_foot_contacts=False)
_J = JOINT_INDEX


def _rig_poses(rig, result):
    rot, loc = result.basis_arrays(rig.armature)
    return forward_kinematics(rig.armature, rot, loc)


def _segment_errors_rad(rig, result, rotations, root) -> dict[str, float]:
    """Per mapped joint with a segment: worst angle over frames between the rig's segment (joint → next mapped
    joint, rig forward kinematics) and SMPL's segment carried into armature space."""
    smpl_pos, _ = forward_kinematics_np(quat_to_matrix(np.asarray(rotations, dtype=np.float64)), root)
    poses = _rig_poses(rig, result)
    al = result.alignment
    out = {}
    for j, c in al.partner.items():
        have = poses[:, al.point_bone[c], :3, 3] - poses[:, al.point_bone[j], :3, 3]
        want = (smpl_pos[:, c] - smpl_pos[:, j]) @ al.smpl_to_armature.T
        angle = np.arctan2(np.linalg.norm(np.cross(have, want), axis=-1), np.sum(have * want, axis=-1))
        out[SMPL_JOINTS[j]] = float(angle.max())
    return out


def _assert_segments(rig, rotations, root, tolerance_rad, expected_segments=None):
    result = retarget((rotations, root, 20.0), rig.armature, rig.bone_map, NO_CLEANUP)
    errors = _segment_errors_rad(rig, result, rotations, root)
    if expected_segments is not None:
        assert len(errors) == expected_segments, sorted(errors)
    worst = max(errors, key=errors.get)
    assert errors[worst] < tolerance_rad, f"{worst}: {errors[worst]:.3g} rad"
    return result


def test_t_pose_rig_with_random_rolls_reproduces_every_smpl_segment_within_1e4_rad():
    rotations, root = random_motion(30, seed=1, amplitude_rad=0.8)
    rig = build_rig("T", seed=11)
    result = _assert_segments(rig, rotations, root, 1e-4, expected_segments=17)
    np.testing.assert_allclose(result.alignment.smpl_to_armature, SMPL_TO_BLENDER, atol=1e-12)


def test_a_pose_rig_with_other_proportions_reproduces_smpl_segments():
    rotations, root = random_motion(30, seed=2)
    for seed in (3, 4):
        rig = build_rig("A", seed=seed, leg_scale=1.25, arm_scale=0.8, trunk_scale=1.1)
        _assert_segments(rig, rotations, root, 1e-4)


def test_extra_twist_and_finger_bones_leave_the_mapped_segments_exact():
    rotations, root = random_motion(20, seed=3)
    rig = build_rig("A", seed=5, twist=True, fingers=True)
    result = _assert_segments(rig, rotations, root, 1e-4, expected_segments=17)
    assert not any("twist" in name or "finger" in name for name in result.rotations)


def test_missing_collars_spine2_and_toes_keep_the_remaining_segments_exact():
    rotations, root = random_motion(20, seed=4)
    rig = build_rig("T", seed=6, missing=("left_collar", "right_collar", "spine2", "left_foot", "right_foot"))
    result = _assert_segments(rig, rotations, root, 1e-4)
    assert (
        result.bone_map.status()
        == "17/22 joints mapped (missing: spine2, left_foot, right_foot, left_collar, right_collar)"
    )
    # spine1 now spans to spine3: its segment follows SMPL's spine1 → spine3 through the missing joint's bend.
    assert result.alignment.partner[_J["spine1"]] == _J["spine3"]


def test_missing_collar_rotation_lands_in_the_upper_arm():
    rotations, root = random_motion(10, seed=5)
    rig = build_rig("T", seed=7, missing=("left_collar", "right_collar"))
    result = retarget((rotations, root, 20.0), rig.armature, rig.bone_map, NO_CLEANUP)
    poses = _rig_poses(rig, result)
    _, smpl_global = forward_kinematics_np(quat_to_matrix(rotations), root)
    al = result.alignment
    j = _J["left_shoulder"]
    want = al.smpl_to_armature @ smpl_global[:, j] @ al.alignment[j]  # includes the collar's rotation
    np.testing.assert_allclose(poses[:, al.joint_bone[j], :3, :3], want, atol=1e-9)


def test_in_between_spine_bones_share_the_bend_and_keep_segments():
    rotations, root = random_motion(20, seed=6, amplitude_rad=0.8)
    rig = build_rig("A", seed=8, extra_spine=True)
    result = _assert_segments(rig, rotations, root, np.radians(1.0))
    for mid, lower, upper in (("spine1_mid", "spine1", "spine2"), ("spine2_mid", "spine2", "spine3")):
        assert mid in result.rotations
        poses = _rig_poses(rig, result)
        idx = rig.armature.index
        rest = rig.armature.rest_rotations
        # Bend of the whole segment vs the share the in-between bone takes.
        whole = (
            np.swapaxes(poses[:, idx[lower], :3, :3], -1, -2)
            @ poses[:, idx[upper], :3, :3]
            @ (rest[idx[lower]].T @ rest[idx[upper]]).T
        )
        part = (
            np.swapaxes(poses[:, idx[lower], :3, :3], -1, -2)
            @ poses[:, idx[mid], :3, :3]
            @ (rest[idx[lower]].T @ rest[idx[mid]]).T
        )
        whole_angle = np.arccos(np.clip((np.trace(whole, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
        part_angle = np.arccos(np.clip((np.trace(part, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
        moving = whole_angle > 0.1
        ratio = part_angle[moving] / whole_angle[moving]
        assert np.all((ratio > 0.3) & (ratio < 0.7)), ratio


def test_without_spine_distribution_in_between_bones_are_not_keyed():
    rotations, root = random_motion(10, seed=7)
    rig = build_rig("T", seed=9, extra_spine=True)
    result = retarget(
        (rotations, root, 20.0),
        rig.armature,
        rig.bone_map,
        RetargetOptions(clean_foot_contacts=False, distribute_spine=False),
    )
    assert "spine1_mid" not in result.rotations
    errors = _segment_errors_rad(rig, result, rotations, root)
    assert errors["pelvis"] < 1e-4 and errors["left_shoulder"] < 1e-4


def test_foot_height_profile_scales_with_leg_length():
    take = walk(duration_s=2.0, fps=20.0)
    for leg_scale in (0.8, 1.3):
        rig = build_rig("A", seed=10, leg_scale=leg_scale, arm_scale=1.2)
        result = retarget(take, rig.armature, rig.bone_map, NO_CLEANUP)
        assert result.alignment.scale == pytest.approx(leg_scale)
        poses = _rig_poses(rig, result)
        smpl_pos, _ = forward_kinematics_np(
            quat_to_matrix(take.rotations.astype(np.float64)), take.root_translation.astype(np.float64)
        )
        al = result.alignment
        for joint in ("left_ankle", "right_ankle", "left_foot", "right_foot"):
            rig_height = (poses[:, al.point_bone[_J[joint]], :3, 3] - al.origin) @ al.up
            np.testing.assert_allclose(rig_height, leg_scale * smpl_pos[:, _J[joint], 1], atol=1e-9)


def test_rig_hip_centre_follows_the_scaled_smpl_hip_centre():
    rotations, root = random_motion(20, seed=8)
    rig = build_rig("T", seed=12, leg_scale=1.1, root_bone=True)
    result = retarget((rotations, root, 20.0), rig.armature, rig.bone_map, NO_CLEANUP)
    assert result.root_bone == "root"
    poses = _rig_poses(rig, result)
    smpl_pos, _ = forward_kinematics_np(quat_to_matrix(rotations), root)
    al = result.alignment
    rig_mid = poses[:, [al.point_bone[_J["left_hip"]], al.point_bone[_J["right_hip"]]]][..., :3, 3].mean(axis=1)
    smpl_mid = smpl_pos[:, [_J["left_hip"], _J["right_hip"]]].mean(axis=1)
    # The take starts over the rig: the first frame's horizontal offset from SMPL's rest hip centre is removed.
    rest_mid = SMPL_REST_POSITIONS_M[[_J["left_hip"], _J["right_hip"]]].mean(axis=0)
    smpl_mid[:, [0, 2]] -= smpl_mid[0, [0, 2]] - rest_mid[[0, 2]]
    np.testing.assert_allclose(rig_mid, al.origin + 1.1 * smpl_mid @ al.smpl_to_armature.T, atol=1e-9)
    rest_rig_mid = rig.armature.heads[[al.point_bone[_J["left_hip"]], al.point_bone[_J["right_hip"]]]].mean(axis=0)
    offset = rig_mid[0] - rest_rig_mid
    np.testing.assert_allclose(offset - np.dot(offset, al.up) * al.up, 0.0, atol=1e-9)  # starts over the rest hips


def test_object_rotation_and_scale_are_honoured_like_an_fbx_import():
    rotations, root = random_motion(16, seed=9)
    plain = build_rig("A", seed=13)
    w = np.eye(4)
    w[:3, :3] = axis_angle_to_matrix(np.array([np.pi / 2, 0.0, 0.0])) * 0.01  # Y-up data in centimetres
    fbx = build_rig("A", seed=14, units=100.0, y_up_data=True, world_matrix=w)
    world = []
    for rig in (plain, fbx):
        result = retarget((rotations, root, 20.0), rig.armature, rig.bone_map, NO_CLEANUP)
        poses = _rig_poses(rig, result)
        al = result.alignment
        heads = np.stack([poses[:, al.point_bone[j], :3, 3] for j in range(22)], axis=1)
        world.append(to_world_positions(rig.armature, heads))
    assert fbx.armature.world_scale == pytest.approx(0.01)
    np.testing.assert_allclose(world[1], world[0], atol=1e-9)


def _travel_direction_world(rig, take, face_rig_forward):
    result = retarget(
        take, rig.armature, rig.bone_map, RetargetOptions(clean_foot_contacts=False, face_rig_forward=face_rig_forward)
    )
    poses = _rig_poses(rig, result)
    pelvis = to_world_positions(rig.armature, poses[:, rig.armature.index["pelvis"], :3, 3])
    d = pelvis[-1] - pelvis[0]
    return d / np.linalg.norm(d)


def test_face_rig_forward_walks_where_the_rig_faces_and_keep_heading_walks_along_minus_y():
    take = walk(duration_s=2.0, fps=20.0)
    rig = build_rig("T", seed=15, facing_turn_rad=np.pi / 2)  # the rig faces +X
    np.testing.assert_allclose(_travel_direction_world(rig, take, True), [1.0, 0.0, 0.0], atol=0.02)
    np.testing.assert_allclose(_travel_direction_world(rig, take, False), [0.0, -1.0, 0.0], atol=0.02)


def test_in_place_keeps_the_hips_over_their_first_position():
    take = walk(duration_s=2.0, fps=20.0)
    rig = build_rig("T", seed=16)
    result = retarget(take, rig.armature, rig.bone_map, RetargetOptions(in_place=True))
    poses = _rig_poses(rig, result)
    al = result.alignment
    mid = poses[:, [al.point_bone[_J["left_hip"]], al.point_bone[_J["right_hip"]]]][..., :3, 3].mean(axis=1)
    horizontal = mid - np.outer(mid @ al.up, al.up)
    np.testing.assert_allclose(horizontal, np.broadcast_to(horizontal[0], horizontal.shape), atol=1e-9)
    assert np.ptp(mid @ al.up) > 0.01  # the hips still bob
    assert "skipped for an in-place take" in result.messages[-1]


def test_start_at_current_root_shifts_the_take_horizontally_only():
    take = walk(duration_s=1.0, fps=20.0)
    rig = build_rig("T", seed=17)
    base = retarget(take, rig.armature, rig.bone_map, NO_CLEANUP)
    moved = retarget(
        take,
        rig.armature,
        rig.bone_map,
        RetargetOptions(clean_foot_contacts=False, start_at_current_root=True, current_root_location=(0.0, 0.0, 0.5)),
    )
    # location moves the pelvis bone along its own rest Z axis; only the horizontal part of that is kept.
    shift = _rig_poses(rig, moved)[:, 0, :3, 3] - _rig_poses(rig, base)[:, 0, :3, 3]
    along = 0.5 * rig.armature.rest_rotations[0][:, 2]
    up = base.alignment.up
    np.testing.assert_allclose(shift, np.broadcast_to(along - np.dot(along, up) * up, shift.shape), atol=1e-9)
    assert np.linalg.norm(along - np.dot(along, up) * up) > 0.1


def test_smpl_rest_pose_gives_identity_keys_on_a_t_pose_rig_and_raises_a_pose_arms():
    t = 3
    rest = np.zeros((t, 22, 4))
    rest[..., 0] = 1.0
    root = np.tile([0.0, 0.93, 0.0], (t, 1))
    t_rig = build_rig("T", seed=18)
    result = retarget((rest, root, 20.0), t_rig.armature, t_rig.bone_map, NO_CLEANUP)
    for name, q in result.rotations.items():
        np.testing.assert_allclose(np.abs(q[:, 0]), 1.0, atol=1e-9, err_msg=name)
    a_rig = build_rig("A", seed=19)
    result = retarget((rest, root, 20.0), a_rig.armature, a_rig.bone_map, NO_CLEANUP)
    poses = _rig_poses(a_rig, result)
    upper_arm = (
        poses[:, a_rig.armature.index["left_elbow"], :3, 3] - poses[:, a_rig.armature.index["left_shoulder"], :3, 3]
    )
    smpl_upper_arm = SMPL_TO_BLENDER @ (
        SMPL_REST_POSITIONS_M[_J["left_elbow"]] - SMPL_REST_POSITIONS_M[_J["left_shoulder"]]
    )
    cos = upper_arm @ smpl_upper_arm / np.linalg.norm(upper_arm, axis=-1) / np.linalg.norm(smpl_upper_arm)
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)  # out to the side as in SMPL's T-pose, not down as at rest


def test_quaternions_are_unit_and_sign_continuous():
    rotations, root = random_motion(60, seed=10, amplitude_rad=2.5)
    rig = build_rig("A", seed=20)
    result = retarget((rotations, root, 20.0), rig.armature, rig.bone_map, NO_CLEANUP)
    for name, q in result.rotations.items():
        np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-9)
        assert np.all(np.sum(q[1:] * q[:-1], axis=-1) >= 0), name


def test_take_and_arrays_give_the_same_result():
    rotations, root = random_motion(8, seed=11)
    take = Take("x", 0, 20.0, rotations.astype(np.float32), root.astype(np.float32))
    rig = build_rig("T", seed=21)
    a = retarget(take, rig.armature, rig.bone_map, NO_CLEANUP)
    b = retarget(
        (quat_to_matrix(rotations.astype(np.float32).astype(np.float64)), root.astype(np.float32), 20.0),
        rig.armature,
        rig.bone_map,
        NO_CLEANUP,
    )
    for name in a.rotations:
        np.testing.assert_allclose(a.rotations[name], b.rotations[name], atol=1e-6)


def test_bad_input_shapes_are_rejected_with_the_expected_shape():
    rig = build_rig("T")
    with pytest.raises(ValueError, match=r"rotations must be \(T, 22, 4\)"):
        retarget((np.zeros((5, 21, 4)), np.zeros((5, 3)), 20.0), rig.armature, rig.bone_map)


def test_root_bone_must_be_an_ancestor_of_the_pelvis():
    rig = build_rig("T")
    bone_map = BoneMap(dict(rig.bone_map.joints), root_bone="head")
    with pytest.raises(RigError, match="must be the pelvis bone or one of its parents"):
        retarget((*random_motion(4), 20.0), rig.armature, bone_map)


def test_alignment_keys_match_the_transfer_formula():
    """B⁻¹·L·B in disguise: the pose rotation of a bone whose parent is mapped to the SMPL parent joint."""
    rotations, root = random_motion(6, seed=12)
    rig = build_rig("A", seed=22)
    result = retarget((rotations, root, 20.0), rig.armature, rig.bone_map, NO_CLEANUP)
    al = result.alignment
    j, p = _J["left_knee"], _J["left_hip"]
    rest = rig.armature.rest_rotations
    b, pb = al.joint_bone[j], al.joint_bone[p]
    local_rest = rest[pb].T @ rest[b]
    smpl_local = quat_to_matrix(rotations[:, j])
    # G_b = C G_p L A_j and G_pb = C G_p A_p  ⇒  basis_b = local_restᵀ A_pᵀ L A_j
    want = local_rest.T @ al.alignment[p].T @ smpl_local @ al.alignment[j]
    np.testing.assert_allclose(quat_to_matrix(result.rotations["left_knee"]), want, atol=1e-9)
    assert matrix_to_quat(want).shape == (6, 4)


def test_importing_retarget_does_not_import_torch_or_bpy():
    code = (
        "import sys, temos_blender.retarget.retarget, temos_blender.retarget.bone_map, temos_blender.retarget.foot_contact; "
        "assert 'torch' not in sys.modules and 'bpy' not in sys.modules, sorted(m for m in sys.modules if m in ('torch', 'bpy'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
