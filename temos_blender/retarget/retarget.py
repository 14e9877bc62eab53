"""SMPL motion → pose-bone keys for any humanoid armature, exact and rest-pose aware.

``retarget(take, armature, bone_map, options)`` runs five named passes:

1. :func:`map_bones` — the bone map (detected when not given) is checked against the armature.
2. :func:`rest_alignment` — everything constant: the rig's body frame ``C`` (SMPL axes → armature axes, measured
   from the rig: up from the object's world up, left from its left/right joints), the heading turn, the scale
   ``s`` (rig leg length / SMPL leg length, in armature units per metre, so object scale is honoured) and, per
   mapped joint, the alignment ``A_j`` of :func:`.transfer.alignment_from_pose`: the reference pose is *both rest
   poses* (SMPL's T-pose, all rotations identity, and the rig's rest, whatever it is), the twist comes from the rig's
   own rest frame and a swing makes each rig segment (joint → next mapped joint) point along the SMPL segment. So a
   T-pose take looks right on an A-pose rig. Joints without a segment (hands, toes, head) take the swing of their
   mapped parent joint, keeping their rest angle to it.
3. :func:`local_rotations` — each mapped bone's armature-space rotation is ``G_b(t) = C · G_smpl(j, t) · A_j``:
   world rotations of mapped bones are exact, so the rotation of an *unmapped* joint (a missing collar, a third
   spine joint) lands in the next mapped bone below it. Where the rig lacks an SMPL joint inside a chain, a small
   swing keeps the rig segment on the SMPL segment. Unmapped rig bones between mapped spine bones share the bend
   (spine distribution). Finally each keyed bone's pose rotation (``rotation_quaternion``) is solved top-down from
   its parent's pose, as Blender composes them (:mod:`.armature`), so unmapped bones in between (twist bones,
   Rigify's mechanism bones) are accounted for.
4. :func:`root_motion` — the rig's hip centre follows SMPL's hip centre scaled by ``s`` in the body frame; the root
   bone's ``location`` (in its own rest frame, what Blender's ``pose_bone.location`` means) is solved for that.
5. :func:`clean_foot_contacts` — contacts are detected on the SMPL motion; the root is shifted so planted feet stop
   drifting together, then each planted foot is pinned (shifted and, while flat, kept from spinning) and two-bone IK
   bends hip and knee to reach it; skating is measured on the rig before and after.

Conventions: SMPL space as in :mod:`temos_blender.skeleton`; quaternions wxyz; the armature's own units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_quat, quat_to_matrix, rotation_between
from ..skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_JOINTS, SMPL_OFFSETS_M, SMPL_PARENTS, forward_kinematics_np
from ..take import Take
from .armature import Armature, RigError, location_axes, to_world_positions
from .axes import BLENDER_FORWARD, BLENDER_UP, body_frame, yaw_matrix_smpl
from .bone_map import BoneMap, CustomProp, detect_bone_map
from .foot_contact import detect_contacts, plant_corrections, root_drift_correction, skating_ratio, two_bone_ik
from .transfer import alignment_from_pose

_J = JOINT_INDEX

PRIMARY_CHILD: dict[str, str] = {
    "pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
    "left_hip": "left_knee", "left_knee": "left_ankle", "left_ankle": "left_foot",
    "right_hip": "right_knee", "right_knee": "right_ankle", "right_ankle": "right_foot",
    "left_collar": "left_shoulder", "left_shoulder": "left_elbow", "left_elbow": "left_wrist",
    "right_collar": "right_shoulder", "right_shoulder": "right_elbow", "right_elbow": "right_wrist",
}  # fmt: skip
"""The child that defines each joint's segment direction (the spine, not the hips, for the pelvis)."""

TRUNK_JOINTS = ("pelvis", "spine1", "spine2", "spine3", "neck", "head")
BRANCHING_JOINTS = ("pelvis", "spine3")
"""Joints that carry several limbs; a swing toward one child would move the others, so they get none."""
LEFT_RIGHT_PAIRS = (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_collar", "right_collar"))
LEGS = {side: tuple(f"{side}_{j}" for j in ("hip", "knee", "ankle", "foot")) for side in ("left", "right")}


@dataclass(frozen=True)
class RetargetOptions:
    """How a take is put on a rig."""

    in_place: bool = False
    """Drop the horizontal root motion: the hips keep their first-frame horizontal position (height still moves)."""
    face_rig_forward: bool = True
    """True: the take's first-frame forward becomes the rig's forward (the rig faces where it faced). False: keep
    the take's own world heading (SMPL +Z → Blender −Y), whichever way the rig object is turned."""
    start_at_current_root: bool = False
    """Start the take where the root bone currently is: add the horizontal part of ``current_root_location``."""
    current_root_location: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """The root bone's current ``pose_bone.location`` (its local space), used with ``start_at_current_root``."""
    distribute_spine: bool = True
    """Key unmapped bones of the bone map's spine chain with a share of the bend between mapped spine bones."""
    clean_foot_contacts: bool = True
    """Run the foot-contact cleanup pass (skipped for in-place takes)."""
    contact_height_m: float = 0.05
    """A foot point is down when less than this above its standing height (SMPL metres)."""
    contact_speed_m_s: float = 0.5
    """…and slower than this."""
    min_contact_s: float = 0.1
    """Shorter contacts are ignored."""
    contact_blend_s: float = 0.2
    """Time over which a pinned foot is released after its contact ends."""
    max_plant_shift_m: float = 0.25
    """Largest horizontal shift the leg IK may apply to one foot (SMPL metres, scaled to the rig)."""
    skating_threshold_m: float = 0.02
    """Drift (world metres) above which a planted foot counts as skating in the report."""


@dataclass
class RigAlignment:
    """What :func:`rest_alignment` measures once per rig and bone map (armature space unless said otherwise)."""

    armature: Armature
    bone_map: BoneMap
    joint_bone: dict[int, int]
    """SMPL joint index → bone index, mapped joints only."""
    point_bone: dict[int, int]
    """SMPL joint index → bone whose head marks that joint on the rig."""
    root_bone: int
    """Bone that carries the root motion."""
    body_frame: np.ndarray
    """(3, 3) SMPL axes → the rig's rest body axes (left, up, forward)."""
    smpl_to_armature: np.ndarray
    """(3, 3) SMPL space → armature space for the motion: ``body_frame`` turned for the heading option."""
    scale: float
    """Armature units per SMPL metre (rig leg length / SMPL leg length)."""
    origin: np.ndarray
    """(3,) where SMPL's origin lands in armature space (SMPL's ground is the plane through it ⟂ up)."""
    alignment: dict[int, np.ndarray]
    """SMPL joint index → (3, 3) ``A_j``: ``G_b = smpl_to_armature · G_smpl(j) · A_j``."""
    partner: dict[int, int]
    """SMPL joint index → the next mapped joint along its segment (absent for hands, toes, head)."""
    chord_fix: list[int]
    """Joints whose segment needs a per-frame swing (a skipped SMPL joint or distributed rig bones in between)."""
    chord_gain: dict[int, float]
    """Per chord-fixed joint with distributed bones: how much of a turn of its bone reaches the segment (< 1)."""
    segments: list[tuple[int, list[int], int, np.ndarray]]
    """Spine distribution: (lower mapped bone, unmapped bones between, upper mapped bone, fractions)."""
    keyed: list[int]
    """Bones that get rotation keys, in evaluation order."""
    evaluation: list[int]
    """Bones whose poses are needed, in evaluation order."""
    ref_joints: tuple[int, ...]
    """Joints whose mean position is the root reference (the two hips, else the pelvis)."""
    smpl_rest_positions: np.ndarray
    """(22, 3) SMPL rest joint positions used (metres)."""
    smpl_offsets: np.ndarray
    """(22, 3) SMPL offsets used (metres)."""
    messages: list[str] = field(default_factory=list)
    """Warnings about the rig, in words."""

    @property
    def up(self) -> np.ndarray:
        """(3,) the rig's up direction in armature space."""
        return self.smpl_to_armature[:, 1]


@dataclass
class RetargetResult:
    """Per-frame pose-bone channels for one take on one rig, ready to write as F-curves."""

    fps: float
    """Frame rate of the arrays (the take's)."""
    rotations: dict[str, np.ndarray]
    """Bone name → (T, 4) wxyz ``pose_bone.rotation_quaternion`` (relative to the rest pose, bone's local space),
    sign-continuous from frame to frame."""
    locations: dict[str, np.ndarray]
    """Bone name → (T, 3) ``pose_bone.location`` (the root bone only)."""
    custom_props: list[CustomProp]
    """Pose-bone custom properties to set so the keys drive the rig (Rigify's IK/FK switches)."""
    root_bone: str
    """The bone in ``locations``."""
    bone_map: BoneMap
    """The map used (detected when none was given)."""
    alignment: RigAlignment
    """The constant part of the retarget (frames, scale, alignments), for inspection."""
    contacts: np.ndarray | None = None
    """(T, P) foot-point contacts used by the cleanup, or None when it did not run."""
    skating_before: float | None = None
    """Skating ratio of the rig's feet before the cleanup (fraction of contact frames)."""
    skating_after: float | None = None
    """…and after it."""
    messages: list[str] = field(default_factory=list)
    """What happened, in words (bone-map status, warnings, the cleanup's before/after)."""

    @property
    def num_frames(self) -> int:
        return int(next(iter(self.rotations.values())).shape[0])

    @property
    def root_location(self) -> np.ndarray:
        """(T, 3) ``pose_bone.location`` of :attr:`root_bone`."""
        return self.locations[self.root_bone]

    def basis_arrays(self, armature: Armature) -> tuple[np.ndarray, np.ndarray]:
        """(T, B, 4) rotations and (T, B, 3) locations for every bone of ``armature`` (identity / zero where not
        keyed), the inputs of :func:`.armature.forward_kinematics`."""
        t = self.num_frames
        rot = np.zeros((t, armature.num_bones, 4))
        rot[..., 0] = 1.0
        loc = np.zeros((t, armature.num_bones, 3))
        for name, q in self.rotations.items():
            rot[:, armature.bone_index(name)] = q
        for name, p in self.locations.items():
            loc[:, armature.bone_index(name)] = p
        return rot, loc


# ---------------------------------------------------------------------------------------------- input
def _as_motion(take_or_arrays) -> tuple[np.ndarray, np.ndarray, float]:
    """A Take, or (rotations, root_translation, fps) → (local rotmats (T, 22, 3, 3), root (T, 3), fps)."""
    if isinstance(take_or_arrays, Take):
        rot, trans, fps = take_or_arrays.rotations, take_or_arrays.root_translation, take_or_arrays.fps
    elif isinstance(take_or_arrays, dict):
        rot, trans, fps = take_or_arrays["rotations"], take_or_arrays["root_translation"], take_or_arrays["fps"]
    else:
        try:
            rot, trans, fps = take_or_arrays
        except (TypeError, ValueError):
            raise TypeError("retarget() takes a Take or (rotations, root_translation, fps)") from None
    rot = np.asarray(rot, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    if rot.shape[1:] == (NUM_JOINTS, 4):
        rot = quat_to_matrix(rot)
    if rot.ndim != 4 or rot.shape[1:] != (NUM_JOINTS, 3, 3):
        raise ValueError(f"rotations must be (T, {NUM_JOINTS}, 4) wxyz or (T, {NUM_JOINTS}, 3, 3); got {rot.shape}")
    if trans.shape != (rot.shape[0], 3):
        raise ValueError(f"root_translation must be ({rot.shape[0]}, 3); got {trans.shape}")
    if rot.shape[0] == 0:
        raise ValueError("the take has no frames")
    return rot, trans, float(fps)


def _rest_positions(offsets: np.ndarray) -> np.ndarray:
    pos = np.zeros((NUM_JOINTS, 3))
    for j, p in enumerate(SMPL_PARENTS):
        pos[j] = offsets[j] + (pos[p] if p >= 0 else 0.0)
    return pos


# ---------------------------------------------------------------------------------------------- pass 1
def map_bones(armature: Armature, bone_map: BoneMap | None = None) -> BoneMap:
    """The bone map to use: ``bone_map`` if given, else the detected one; raises :class:`RigError` if unusable."""
    bone_map = detect_bone_map(armature) if bone_map is None else bone_map
    bone_map.check(armature)
    return bone_map


# ---------------------------------------------------------------------------------------------- pass 2
def rest_alignment(
    armature: Armature,
    bone_map: BoneMap,
    options: RetargetOptions | None = None,
    smpl_offsets_m: np.ndarray | None = None,
) -> RigAlignment:
    """Measure the rig against SMPL once: body frame, heading, scale, per-joint alignments, spine segments."""
    options = options or RetargetOptions()
    arm = armature
    offsets = SMPL_OFFSETS_M if smpl_offsets_m is None else np.asarray(smpl_offsets_m, dtype=np.float64)
    smpl_rest = _rest_positions(offsets)
    messages: list[str] = []
    joint_bone = {_J[j]: arm.bone_index(b) for j, b in bone_map.joints.items()}
    point_bone = {j: arm.bone_index(bone_map.point_bone(SMPL_JOINTS[j])) for j in joint_bone}
    points = {j: arm.heads[b] for j, b in point_bone.items()}
    root = arm.bone_index(bone_map.root_motion_bone())
    if arm.connected[root]:
        raise RigError(
            f"Root bone '{arm.bone_names[root]}' is connected to its parent, so it cannot move; "
            "choose another root bone in the bone map."
        )

    # Body frame: up is the world's up seen from the armature; left from the rig's left/right joints.
    r_obj = arm.world_rotation
    up = r_obj.T @ BLENDER_UP
    left = np.zeros(3)
    for lj, rj in LEFT_RIGHT_PAIRS:
        if _J[lj] in points and _J[rj] in points:
            left += points[_J[lj]] - points[_J[rj]]
    if np.linalg.norm(left - np.dot(left, up) * up) < 1e-9:
        left = r_obj.T @ np.array([1.0, 0.0, 0.0])
        messages.append("No left/right joint pair is mapped; assuming the rig's left is the world's +X.")
    frame = body_frame(left, up)
    if options.face_rig_forward:
        turn = np.eye(3)
    else:
        wanted = frame.T @ r_obj.T @ BLENDER_FORWARD  # world −Y in body axes
        turn = yaw_matrix_smpl(np.arctan2(wanted[0], wanted[2]))
    to_arm = frame @ turn

    # Scale: leg length ratio, else trunk length ratio, else one metre per metre of world.
    rig_len, smpl_len = [], []
    for side in ("left", "right"):
        hip, knee, ankle = (_J[j] for j in LEGS[side][:3])
        if all(j in points for j in (hip, knee, ankle)):
            rig_len.append(np.linalg.norm(points[knee] - points[hip]) + np.linalg.norm(points[ankle] - points[knee]))
            smpl_len.append(
                np.linalg.norm(smpl_rest[knee] - smpl_rest[hip]) + np.linalg.norm(smpl_rest[ankle] - smpl_rest[knee])
            )
    top = next((_J[j] for j in ("head", "neck", "spine3") if _J[j] in points), None)
    if rig_len:
        scale = float(np.sum(rig_len) / np.sum(smpl_len))
    elif top is not None and _J["pelvis"] in points:
        scale = float(
            np.linalg.norm(points[top] - points[_J["pelvis"]]) / np.linalg.norm(smpl_rest[top] - smpl_rest[0])
        )
        messages.append("No complete leg is mapped; the root motion is scaled by the trunk length instead.")
    else:
        scale = 1.0 / arm.world_scale
        messages.append("Neither legs nor trunk are mapped; the root motion is not scaled to the rig.")
    if not scale > 0:
        raise RigError(f"Armature '{arm.name}': the mapped leg bones have zero length; check the bone map")

    ref_joints = (_J["left_hip"], _J["right_hip"])
    if not all(j in points for j in ref_joints):
        ref_joints = (_J["pelvis"],)
    rig_ref = np.mean([points[j] for j in ref_joints], axis=0)
    smpl_ref = np.mean(smpl_rest[list(ref_joints)], axis=0)
    origin = rig_ref - scale * to_arm @ smpl_ref

    # Segment partners: the next mapped joint along each joint's primary chain.
    partner: dict[int, int] = {}
    skipped: set[int] = set()
    for j in joint_bone:
        c = PRIMARY_CHILD.get(SMPL_JOINTS[j])
        while c is not None and _J[c] not in joint_bone:
            skipped.add(j)
            c = PRIMARY_CHILD.get(c)
        if c is not None:
            partner[j] = _J[c]

    # Alignments from the two rest poses (SMPL rest: every global rotation is the identity).
    joints = sorted(joint_bone)
    rest_rot = arm.rest_rotations
    a0 = np.stack([frame.T @ rest_rot[joint_bone[j]] for j in joints])
    d_target = np.zeros((len(joints), 3))
    d_source = np.zeros((len(joints), 3))
    for k, j in enumerate(joints):
        if j in partner:
            seg = points[partner[j]] - points[j]
            if np.linalg.norm(seg) > 1e-6 * max(scale, 1e-12):
                d_target[k] = rest_rot[joint_bone[j]].T @ seg
                d_source[k] = smpl_rest[partner[j]] - smpl_rest[j]
    aligned = alignment_from_pose(np.broadcast_to(np.eye(3), a0.shape), a0, d_target, d_source)
    alignment: dict[int, np.ndarray] = {}
    swing: dict[int, np.ndarray] = {}
    for k, j in enumerate(joints):  # joints are sorted, so SMPL parents come first
        if np.linalg.norm(d_target[k]) > 0:
            alignment[j] = aligned[k]
            swing[j] = aligned[k] @ a0[k].T
        else:
            p = SMPL_PARENTS[j]
            while p >= 0 and p not in joint_bone:
                p = SMPL_PARENTS[p]
            swing[j] = swing[p] if p >= 0 else np.eye(3)
            alignment[j] = swing[j] @ a0[k]

    # Spine distribution segments.
    segments: list[tuple[int, list[int], int, np.ndarray]] = []
    chord_fix = {j for j in skipped if j in partner and SMPL_JOINTS[j] not in BRANCHING_JOINTS}
    chord_gain: dict[int, float] = {}
    bone_joint = {b: j for j, b in joint_bone.items()}
    if options.distribute_spine and bone_map.spine_chain:
        chain = [arm.bone_index(b) for b in bone_map.spine_chain]
        anchors = [k for k, b in enumerate(chain) if b in bone_joint and SMPL_JOINTS[bone_joint[b]] in TRUNK_JOINTS]
        for k1, k2 in zip(anchors[:-1], anchors[1:]):
            lower, upper, between = chain[k1], chain[k2], chain[k1 + 1 : k2]
            if not between:
                continue
            path = [lower, *between, upper]
            if any(b in bone_joint for b in between) or not all(
                arm.is_ancestor(path[i], path[i + 1]) for i in range(len(path) - 1)
            ):
                messages.append(
                    f"Spine chain bones {[arm.bone_names[b] for b in between]} are not a parent→child chain "
                    f"between '{arm.bone_names[lower]}' and '{arm.bone_names[upper]}'; they follow their parents."
                )
                continue
            lengths = np.linalg.norm(np.diff(arm.heads[path], axis=0), axis=-1)
            fractions = np.cumsum(lengths)[:-1] / max(np.sum(lengths), 1e-12)
            segments.append((lower, between, upper, fractions))
            lj = bone_joint[lower]
            if partner.get(lj) == bone_joint[upper] and SMPL_JOINTS[lj] not in BRANCHING_JOINTS:
                chord_fix.add(lj)
                # Turning the lower bone turns the bones in between only by (1 - their fraction) of it.
                chord_gain[lj] = float(np.sum(lengths * (1 - np.concatenate([[0.0], fractions]))) / np.sum(lengths))

    keyed_set = set(joint_bone.values()) | {b for _, between, _, _ in segments for b in between}
    for b in sorted(keyed_set):
        if arm.copy_transforms[b] >= 0:
            messages.append(
                f"Bone '{arm.bone_names[b]}' copies the transforms of '{arm.bone_names[arm.copy_transforms[b]]}'; "
                "its keys will have no effect. Map the bone it copies instead."
            )
    leg_bones = [joint_bone[_J[j]] for side in LEGS.values() for j in side if _J[j] in joint_bone]
    evaluation = arm.dependencies(keyed_set | set(point_bone.values()) | {root} | set(leg_bones))
    keyed = [b for b in evaluation if b in keyed_set]
    return RigAlignment(
        armature=arm,
        bone_map=bone_map,
        joint_bone=joint_bone,
        point_bone=point_bone,
        root_bone=root,
        body_frame=frame,
        smpl_to_armature=to_arm,
        scale=scale,
        origin=origin,
        alignment=alignment,
        partner=partner,
        chord_fix=sorted(chord_fix),
        chord_gain=chord_gain,
        segments=segments,
        keyed=keyed,
        evaluation=evaluation,
        ref_joints=ref_joints,
        smpl_rest_positions=smpl_rest,
        smpl_offsets=offsets,
        messages=messages,
    )


# ---------------------------------------------------------------------------------------------- rig poses
def solve_pose(
    rig: RigAlignment, globals_: dict[int, np.ndarray], root_location: np.ndarray | None = None
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Pose matrices and basis rotations from the wanted armature-space rotations of the keyed bones.

    globals_: bone → (T, 3, 3) wanted rotation (``pose_bone.matrix`` rotation) for every keyed bone; other bones
    follow their parents at rest. root_location: (T, 3) ``location`` of the root bone (None: zero).
    Returns (bone → (T, 4, 4) pose matrix, keyed bone → (T, 3, 3) basis rotation), Blender's composition.
    """
    arm = rig.armature
    t = next(iter(globals_.values())).shape[0]
    identity = np.broadcast_to(np.eye(4), (t, 4, 4))
    local_rest = arm.local_rest_matrices
    poses: dict[int, np.ndarray] = {}
    basis: dict[int, np.ndarray] = {}
    for b in rig.evaluation:
        target = arm.copy_transforms[b]
        if target >= 0:
            poses[b] = poses[target]
            continue
        p = arm.parents[b]
        parent_pose = poses[p] if p >= 0 else identity
        base = parent_pose @ local_rest[b]
        rot_base = base[:, :3, :3] if arm.inherit_rotation[b] else np.broadcast_to(arm.rest_rotations[b], (t, 3, 3))
        if b in globals_:
            rot = globals_[b]
            basis[b] = np.swapaxes(rot_base, -1, -2) @ rot
        else:
            rot = rot_base
        pose = np.zeros((t, 4, 4))
        pose[:, :3, :3] = rot
        pose[:, :3, 3] = base[:, :3, 3]
        if b == rig.root_bone and root_location is not None:
            pose[:, :3, 3] += np.einsum("tij,tj->ti", location_axes(arm, b, parent_pose), root_location)
        pose[:, 3, 3] = 1.0
        poses[b] = pose
    return poses, basis


def _points(rig: RigAlignment, poses: dict[int, np.ndarray], joints) -> np.ndarray:
    """(T, len(joints), 3) rig positions of SMPL joints (heads of their point bones), armature space."""
    return np.stack([poses[rig.point_bone[j]][:, :3, 3] for j in joints], axis=1)


def _fractional_rotation(r: np.ndarray, fraction: float) -> np.ndarray:
    return axis_angle_to_matrix(matrix_to_axis_angle(r) * fraction)


def _distribute(rig: RigAlignment, globals_: dict[int, np.ndarray]) -> None:
    rest = rig.armature.rest_rotations
    for lower, between, upper, fractions in rig.segments:
        rest_rel_upper = rest[lower].T @ rest[upper]
        bend = np.swapaxes(globals_[lower], -1, -2) @ globals_[upper] @ rest_rel_upper.T  # in the lower bone's frame
        for b, f in zip(between, fractions):
            globals_[b] = globals_[lower] @ _fractional_rotation(bend, f) @ (rest[lower].T @ rest[b])


@dataclass
class _Pose:
    smpl_positions: np.ndarray  # (T, 22, 3) metres, SMPL space
    globals_: dict[int, np.ndarray]  # keyed bone → (T, 3, 3) armature space
    root_location: np.ndarray | None = None  # (T, 3)


# ---------------------------------------------------------------------------------------------- pass 3
def local_rotations(
    local_rotmats: np.ndarray, root_translation_m: np.ndarray, rig: RigAlignment, max_iterations: int = 12
) -> _Pose:
    """Wanted armature-space rotations of every keyed bone, frame by frame (see the module docstring)."""
    positions, smpl_global = forward_kinematics_np(local_rotmats, root_translation_m, rig.smpl_offsets)
    c = rig.smpl_to_armature
    globals_ = {b: c @ smpl_global[:, j] @ rig.alignment[j] for j, b in rig.joint_bone.items()}
    _distribute(rig, globals_)
    for _ in range(max_iterations if rig.chord_fix else 0):
        poses, _ = solve_pose(rig, globals_)
        worst = 0.0
        for j in rig.chord_fix:
            k = rig.partner[j]
            have = poses[rig.point_bone[k]][:, :3, 3] - poses[rig.point_bone[j]][:, :3, 3]
            want = (positions[:, k] - positions[:, j]) @ c.T
            b = rig.joint_bone[j]
            swing = matrix_to_axis_angle(rotation_between(have, want)) / rig.chord_gain.get(j, 1.0)
            globals_[b] = axis_angle_to_matrix(swing) @ globals_[b]
            angle = np.arctan2(np.linalg.norm(np.cross(have, want), axis=-1), np.sum(have * want, axis=-1))
            worst = max(worst, float(np.max(angle)))
        _distribute(rig, globals_)
        if worst < 1e-8:
            break
    return _Pose(positions, globals_)


# ---------------------------------------------------------------------------------------------- pass 4
def root_motion(pose: _Pose, rig: RigAlignment, options: RetargetOptions) -> np.ndarray:
    """(T, 3) root-bone ``location`` that puts the rig's hip centre where SMPL's is, scaled; sets ``pose.root_location``."""
    smpl_ref = pose.smpl_positions[:, list(rig.ref_joints)].mean(axis=1)  # (T, 3)
    rest_ref = rig.smpl_rest_positions[list(rig.ref_joints)].mean(axis=0)
    ref = smpl_ref.copy()
    horizontal = [0, 2]  # SMPL's ground plane
    if options.in_place:
        ref[:, horizontal] = rest_ref[horizontal]
    else:
        ref[:, horizontal] += rest_ref[horizontal] - smpl_ref[0, horizontal]
    target = rig.origin + rig.scale * ref @ rig.smpl_to_armature.T
    arm = rig.armature
    if options.start_at_current_root:
        p = arm.parents[rig.root_bone]
        parent_rest = arm.rest_matrices[p] if p >= 0 else np.eye(4)
        shift = location_axes(arm, rig.root_bone, parent_rest) @ np.asarray(
            options.current_root_location, dtype=np.float64
        )
        target = target + shift - np.dot(shift, rig.up) * rig.up
    poses, _ = solve_pose(rig, pose.globals_)
    have = np.mean([poses[rig.point_bone[j]][:, :3, 3] for j in rig.ref_joints], axis=0)
    p = arm.parents[rig.root_bone]
    parent_pose = poses[p] if p >= 0 else np.broadcast_to(np.eye(4), (have.shape[0], 4, 4))
    axes = location_axes(arm, rig.root_bone, parent_pose)
    pose.root_location = np.einsum("tji,tj->ti", axes, target - have)
    return pose.root_location


# ---------------------------------------------------------------------------------------------- pass 5
@dataclass
class FootCleanupReport:
    contacts: np.ndarray | None
    skating_before: float | None
    skating_after: float | None
    message: str


def clean_foot_contacts(pose: _Pose, rig: RigAlignment, fps: float, options: RetargetOptions) -> FootCleanupReport:
    """Keep planted feet planted: root drift correction, then two-bone IK per leg. Updates ``pose`` in place."""
    if not options.clean_foot_contacts:
        return FootCleanupReport(None, None, None, "Foot cleanup: off.")
    if options.in_place:
        return FootCleanupReport(None, None, None, "Foot cleanup: skipped for an in-place take.")
    feet = [(side, [_J[j] for j in LEGS[side] if _J[j] in rig.joint_bone]) for side in ("left", "right")]
    point_joints = [
        j for side in ("left", "right") for j in (_J[f"{side}_ankle"], _J[f"{side}_foot"]) if j in rig.joint_bone
    ]
    if not point_joints:
        return FootCleanupReport(None, None, None, "Foot cleanup: skipped, no ankle or toe bone is mapped.")
    arm, s, up = rig.armature, rig.scale, rig.up
    contacts = detect_contacts(
        pose.smpl_positions[:, point_joints],
        fps,
        up=(0.0, 1.0, 0.0),
        rest_heights=rig.smpl_rest_positions[point_joints, 1],
        height_threshold_m=options.contact_height_m,
        speed_threshold_m_s=options.contact_speed_m_s,
        min_contact_s=options.min_contact_s,
    )
    up_world = arm.world_matrix[:3, :3] @ up
    up_world /= np.linalg.norm(up_world)

    def measure(poses) -> tuple[np.ndarray, float]:
        pts = _points(rig, poses, point_joints)
        world = to_world_positions(arm, pts)
        return pts, skating_ratio(world, contacts, fps, options.skating_threshold_m, up_world, options.min_contact_s)

    poses, _ = solve_pose(rig, pose.globals_, pose.root_location)
    pts, before = measure(poses)

    # Root: cancel the common drift of planted feet.
    drift = root_drift_correction(pts, contacts, up)
    p = arm.parents[rig.root_bone]
    parent_pose = poses[p] if p >= 0 else np.broadcast_to(np.eye(4), (pts.shape[0], 4, 4))
    axes = location_axes(arm, rig.root_bone, parent_pose)
    pose.root_location = pose.root_location + np.einsum("tji,tj->ti", axes, drift)
    poses, _ = solve_pose(rig, pose.globals_, pose.root_location)

    # Legs: pin what drift remains with two-bone IK.
    blend = max(1, int(round(options.contact_blend_s * fps)))
    pinned = []
    for side, leg in feet:
        hip, knee, ankle = (_J[f"{side}_{j}"] for j in ("hip", "knee", "ankle"))
        if not all(j in leg for j in (hip, knee, ankle)):
            continue
        toe = _J[f"{side}_foot"]
        ankle_pos = poses[rig.point_bone[ankle]][:, :3, 3]
        has_toe = toe in rig.joint_bone
        toe_pos = poses[rig.point_bone[toe]][:, :3, 3] if has_toe else None
        ankle_contact = contacts[:, point_joints.index(ankle)]
        toe_contact = contacts[:, point_joints.index(toe)] if has_toe else None
        shift, yaw = plant_corrections(ankle_pos, toe_pos, ankle_contact, toe_contact, up, blend)
        limit = options.max_plant_shift_m * s
        norm = np.linalg.norm(shift, axis=-1, keepdims=True)
        shift = shift * np.minimum(1.0, limit / np.maximum(norm, 1e-12))
        thigh, shin = rig.joint_bone[hip], rig.joint_bone[knee]
        heads = [poses[b][:, :3, 3] for b in (thigh, shin, rig.joint_bone[ankle])]
        # The ankle point need not be the foot bone's head: move the head as the corrected foot moves it.
        turn = axis_angle_to_matrix(up * yaw[:, None])  # (T, 3, 3) about the up axis
        target = ankle_pos + shift + np.einsum("tij,tj->ti", turn, heads[2] - ankle_pos)
        r_thigh, r_shin = two_bone_ik(*heads, target, fallback_axis=rig.smpl_to_armature[:, 0])
        pose.globals_[thigh] = r_thigh @ pose.globals_[thigh]
        pose.globals_[shin] = r_shin @ pose.globals_[shin]
        for joint in (ankle, toe):  # the foot (and toe) turn with the correction
            if joint in rig.joint_bone:
                pose.globals_[rig.joint_bone[joint]] = turn @ pose.globals_[rig.joint_bone[joint]]
        pinned.append(f"{side} {int(np.sum(ankle_contact | (toe_contact if has_toe else False)))}")
    poses, _ = solve_pose(rig, pose.globals_, pose.root_location)
    _, after = measure(poses)
    message = (
        f"Foot cleanup: skating {100 * before:.1f}% → {100 * after:.1f}% of contact frames "
        f"(planted frames: {', '.join(pinned) if pinned else 'no leg to pin'})."
    )
    return FootCleanupReport(contacts, before, after, message)


# ---------------------------------------------------------------------------------------------- all passes
def _continuous_quaternions(rotmats: np.ndarray) -> np.ndarray:
    q = matrix_to_quat(rotmats)  # (T, 4), w ≥ 0
    if q.shape[0] > 1:
        flips = np.sum(q[1:] * q[:-1], axis=-1) < 0
        sign = np.concatenate([[1.0], np.where(np.cumsum(flips) % 2 == 1, -1.0, 1.0)])
        q = q * sign[:, None]
    return q


def retarget(
    take_or_arrays,
    armature: Armature,
    bone_map: BoneMap | None = None,
    options: RetargetOptions | None = None,
    smpl_offsets_m: np.ndarray | None = None,
) -> RetargetResult:
    """Put a take (or ``(rotations, root_translation, fps)``) on ``armature``.

    bone_map: None detects one (:func:`.bone_map.detect_bone_map`). smpl_offsets_m: (22, 3) SMPL bone offsets of
    the take's body (default :data:`temos_blender.skeleton.SMPL_OFFSETS_M`).
    """
    options = options or RetargetOptions()
    local, root_translation, fps = _as_motion(take_or_arrays)
    bone_map = map_bones(armature, bone_map)
    rig = rest_alignment(armature, bone_map, options, smpl_offsets_m)
    pose = local_rotations(local, root_translation, rig)
    root_motion(pose, rig, options)
    cleanup = clean_foot_contacts(pose, rig, fps, options)
    _, basis = solve_pose(rig, pose.globals_, pose.root_location)
    names = armature.bone_names
    root_name = names[rig.root_bone]
    return RetargetResult(
        fps=fps,
        rotations={names[b]: _continuous_quaternions(basis[b]) for b in rig.keyed},
        locations={root_name: pose.root_location},
        custom_props=list(bone_map.custom_props),
        root_bone=root_name,
        bone_map=bone_map,
        alignment=rig,
        contacts=cleanup.contacts,
        skating_before=cleanup.skating_before,
        skating_after=cleanup.skating_after,
        messages=[bone_map.status(), *rig.messages, cleanup.message],
    )
