"""CMU mocap trials (three BVH conversions) with KIT-ML sentences or CMU's short labels → SMPL-22.

The three cgspeed conversions differ in joint names, joint count, Euler orders and units (see the data README):
``cmu_mb`` (MotionBuilder-friendly, ASF units, all ZYX, zero pose: T-pose with the legs splayed), ``cmu_max``
(3dsMax-friendly, ASF units, ZYX / ZXY, zero pose: arms hanging, legs splayed) and ``cmu_daz`` (Daz-friendly,
roughly centimetres, ZXY, zero pose: T-pose, no toe joint: the foot's End Site is the toe). In every BVH the joint
frames are world-aligned in the zero pose, so that pose is the reference for the alignment (see
:mod:`.smpl_transfer`): limbs take the twist-free swing from SMPL's rest, the torso and head SMPL's rest posture.
The upper arms and thighs are then twisted about their bones so that elbows and knees bend about SMPL's axes,
measured on the trial itself (hinges flexed on fewer than 30 frames are left as they are). Units do not matter: the
scale comes from the leg length. A leading calibration T-pose frame is dropped where the
index says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bvh import BvhMotion, read_bvh
from .processing import Motion, finish_motion
from .smpl_transfer import (
    SMPL_LEG_LENGTH_M,
    JointMap,
    alignment_for_reference,
    apply_twists,
    bone_direction_errors_deg,
    hinge_twist_corrections,
    leg_length,
    transfer_to_smpl,
)

_TORSO_RULES = {
    "pelvis": "upright", "spine1": "upright", "spine2": "upright", "spine3": "upright", "neck": "upright",
    "head": "upright", "left_ankle": "flat", "right_ankle": "flat", "left_foot": "parent", "right_foot": "parent",
    "left_wrist": "parent", "right_wrist": "parent",
}  # fmt: skip


def _sided(template: dict[str, str], left: str, right: str, l_tag: str, r_tag: str) -> dict[str, str]:
    out = {}
    for smpl, src in template.items():
        if "{s}" in smpl:
            out[smpl.format(s=left)] = src.format(s=l_tag)
            out[smpl.format(s=right)] = src.format(s=r_tag)
        else:
            out[smpl] = src
    return out


JOINT_MAPS: dict[str, JointMap] = {
    "cmu_mb": JointMap(
        source=_sided(
            {
                "pelvis": "Hips", "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1", "neck": "Neck",
                "head": "Head", "{s}_hip": "{s}UpLeg", "{s}_knee": "{s}Leg", "{s}_ankle": "{s}Foot",
                "{s}_foot": "{s}ToeBase", "{s}_collar": "{s}Shoulder", "{s}_shoulder": "{s}Arm",
                "{s}_elbow": "{s}ForeArm", "{s}_wrist": "{s}Hand",
            },
            "left", "right", "Left", "Right",
        ),
        bone_end={},
        rule=_TORSO_RULES,
        left_hip="LeftUpLeg",
        right_hip="RightUpLeg",
        left_leg=("LeftUpLeg", "LeftLeg", "LeftFoot"),
    ),
    "cmu_max": JointMap(
        source=_sided(
            {
                "pelvis": "Hips", "spine1": "lowerback", "spine2": "Chest", "spine3": "Chest2", "neck": "lowerneck",
                "head": "Head", "{s}_hip": "{s}Hip", "{s}_knee": "{s}Knee", "{s}_ankle": "{s}Ankle",
                "{s}_foot": "{s}Toe", "{s}_collar": "{s}Collar", "{s}_shoulder": "{s}Shoulder",
                "{s}_elbow": "{s}Elbow", "{s}_wrist": "{s}Wrist",
            },
            "left", "right", "Left", "Right",
        ),
        bone_end={},
        rule=_TORSO_RULES,
        left_hip="LeftHip",
        right_hip="RightHip",
        left_leg=("LeftHip", "LeftKnee", "LeftAnkle"),
    ),
    "cmu_daz": JointMap(
        source=_sided(
            {
                "pelvis": "hip", "spine1": "abdomen", "spine2": "chest", "spine3": "chest", "neck": "neck",
                "head": "head", "{s}_hip": "{s}Thigh", "{s}_knee": "{s}Shin", "{s}_ankle": "{s}Foot",
                "{s}_foot": "{s}Foot_end", "{s}_collar": "{s}Collar", "{s}_shoulder": "{s}Shldr",
                "{s}_elbow": "{s}ForeArm", "{s}_wrist": "{s}Hand",
            },
            "left", "right", "l", "r",
        ),
        bone_end={},
        rule=_TORSO_RULES,
        left_hip="lThigh",
        right_hip="rThigh",
        left_leg=("lThigh", "lShin", "lFoot"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class CmuClip:
    trial: str
    path: Path
    skeleton: str
    tpose_first_frame: bool
    texts: tuple[str, ...]
    """KIT-ML sentences, or empty for label-only trials."""
    label: str
    """CMU's short description for label-only trials, else empty."""
    split: str
    """The split the index gives (KIT-ML's, or HumanML3D's for label-only trials); empty if none."""

    @property
    def clip_id(self) -> str:
        return f"cmu_{self.trial}"


def list_clips(data_dir: Path) -> list[CmuClip]:
    data_dir = Path(data_dir)
    out = []
    for rec in json.loads((data_dir / "kitml_cmu.json").read_text()):
        out.append(
            CmuClip(
                rec["trial"], data_dir / rec["file"], rec["skeleton"], bool(rec["tpose_first_frame"]),
                tuple(rec["texts"]), "", rec["split"],
            )
        )  # fmt: skip
    for rec in json.loads((data_dir / "cmu_bvh_labels.json").read_text()):
        split = rec.get("humanml3d_split") or ""
        if isinstance(split, list):
            split = split[0] if len(set(split)) == 1 else ""
        out.append(
            CmuClip(
                rec["trial"], data_dir / rec["file"], rec["skeleton"], bool(rec["tpose_first_frame"]), (),
                rec["cmu_description"], split if split in ("train", "val", "test") else "",
            )
        )  # fmt: skip
    return out


def with_end_sites(motion: BvhMotion) -> BvhMotion:
    """The motion with each End Site appended as a joint ``<parent>_end`` (no rotation of its own)."""
    if not motion.end_sites:
        return motion
    names, parents = list(motion.names), list(motion.parents)
    offsets = [motion.offsets]
    rot = [motion.local_rotations]
    trans = [motion.local_translations]
    t = motion.num_frames
    for j, off in sorted(motion.end_sites.items()):
        names.append(f"{motion.names[j]}_end")
        parents.append(j)
        offsets.append(off[None])
        rot.append(np.broadcast_to(np.eye(3), (t, 1, 3, 3)))
        trans.append(np.broadcast_to(off, (t, 1, 3)))
    return BvhMotion(
        names=names,
        parents=np.asarray(parents),
        offsets=np.concatenate(offsets),
        channels=list(motion.channels) + [()] * len(motion.end_sites),
        end_sites={},
        frame_time=motion.frame_time,
        local_rotations=np.concatenate(rot, axis=1),
        local_translations=np.concatenate(trans, axis=1),
        rotation_orders=list(motion.rotation_orders) + [""] * len(motion.end_sites),
    )


def rest_pose(motion: BvhMotion) -> tuple[np.ndarray, np.ndarray]:
    """World positions (J, 3) and rotations (J, 3, 3) of the zero pose (all rotations identity, OFFSETs)."""
    pos = np.zeros((len(motion.names), 3))
    for j, p in enumerate(motion.parents):
        pos[j] = motion.offsets[j] + (pos[p] if p >= 0 else 0.0)
    return pos, np.broadcast_to(np.eye(3), (len(motion.names), 3, 3)).copy()


def convert_clip(clip: CmuClip, fps: float) -> Motion:
    """Read, transfer and finish one trial at ``fps``; raises ``ClipRejected`` / ``BvhError`` with the reason."""
    motion = with_end_sites(read_bvh(clip.path))
    jmap = JOINT_MAPS[clip.skeleton]
    rest_pos, rest_glob = rest_pose(motion)
    alignment = alignment_for_reference(rest_pos, rest_glob, motion.names, jmap)
    scale = SMPL_LEG_LENGTH_M / leg_length(rest_pos, motion.names, jmap.left_leg)
    pos, glob = motion.forward_kinematics()
    if clip.tpose_first_frame:
        pos, glob = pos[1:], glob[1:]
    local, root = transfer_to_smpl(pos, glob, motion.names, jmap, alignment, scale)
    twists = hinge_twist_corrections([local])
    if twists:
        alignment = apply_twists(alignment, twists)
        local, root = transfer_to_smpl(pos, glob, motion.names, jmap, alignment, scale)
    err, _ = bone_direction_errors_deg(local, root, pos, motion.names, jmap)
    return finish_motion(local, root, motion.fps, fps, bone_error_deg=float(err.mean()))
