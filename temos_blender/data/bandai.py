"""Bandai Namco Research motion datasets 1 and 2 → SMPL-22.

One skeleton for both datasets (Y-up, centimetres, 30 fps): ``joint_Root`` › ``Hips`` › Spine › Chest › Neck › Head,
Chest › Shoulder › UpperArm › LowerArm › Hand, Hips › UpperLeg › LowerLeg › Foot › Toes. Every joint carries 6
channels (position + ZXY rotation); the position channels replace the OFFSETs and equal them except on the two
roots, where the translation lives on either. Forward kinematics through ``joint_Root`` composes both.

The zero pose is degenerate (every bone along its local X; the joint orients are baked into the channels), so the
twist of each joint frame means nothing by itself. The alignment is read from reference frames of calm standing
(the first frame of the first ``normal`` takes of the dataset-2 hand-raising and waving contents) as described in
:mod:`.smpl_transfer`, and averaged over them. Limbs and collars use the ``bone`` rule (their bone directions are
reproduced exactly); the pelvis, spine, neck and head use ``upright``: the actor's average calm standing posture maps
onto SMPL's rest posture, and every movement away from it is transferred. Aligning the torso bone by bone instead
would force SMPL's curved rest spine and forward-leaning neck onto the mocap skeleton's straighter segments: a constant
31° kink between spine2 and spine3 and a neck bent back 47° with the head bent forward 30° to compensate.
The upper arms and thighs are then twisted about their bones so that the elbows and knees bend about SMPL's flexion
axes (:func:`.smpl_transfer.hinge_twist_corrections`, measured on the first take of every dataset-2 content and
style: about 21° and 23° for the upper arms, 9° and 11° for the thighs): standing frames alone leave the twist of a
nearly straight limb undetermined. SMPL's spine2 and spine3 both follow Chest (the source has one joint for both), with the same alignment, so spine3's
local rotation is the identity; spine1 follows Spine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .bvh import BvhMotion, read_bvh
from .processing import Motion, finish_motion
from .smpl_transfer import (
    SMPL_LEG_LENGTH_M,
    JointMap,
    alignment_for_reference,
    apply_twists,
    average_alignment,
    bone_direction_errors_deg,
    hinge_twist_corrections,
    leg_length,
    transfer_to_smpl,
)

SOURCE = "bandai"
FILE_RE = re.compile(r"^(dataset-[12])_(.+?)_([a-z-]+)_(\d+)\.bvh\.gz$")

JOINT_MAP = JointMap(
    source={
        "pelvis": "Hips", "spine1": "Spine", "spine2": "Chest", "spine3": "Chest", "neck": "Neck", "head": "Head",
        "left_collar": "Shoulder_L", "left_shoulder": "UpperArm_L", "left_elbow": "LowerArm_L", "left_wrist": "Hand_L",
        "right_collar": "Shoulder_R", "right_shoulder": "UpperArm_R", "right_elbow": "LowerArm_R",
        "right_wrist": "Hand_R",
        "left_hip": "UpperLeg_L", "left_knee": "LowerLeg_L", "left_ankle": "Foot_L", "left_foot": "Toes_L",
        "right_hip": "UpperLeg_R", "right_knee": "LowerLeg_R", "right_ankle": "Foot_R", "right_foot": "Toes_R",
    },
    bone_end={},
    rule={
        "pelvis": "upright", "spine1": "upright", "spine2": "upright", "spine3": "upright", "neck": "upright",
        "head": "upright", "left_ankle": "flat", "right_ankle": "flat", "left_foot": "parent", "right_foot": "parent",
        "left_wrist": "parent", "right_wrist": "parent",
    },
    left_hip="UpperLeg_L",
    right_hip="UpperLeg_R",
    left_leg=("UpperLeg_L", "LowerLeg_L", "Foot_L"),
)  # fmt: skip

REFERENCE_CONTENTS = ("raise-up-both-hands", "raise-up-left-hand", "raise-up-right-hand", "wave-both-hands",
                      "wave-left-hand", "wave-right-hand")  # fmt: skip
"""dataset-2 contents whose ``normal`` takes start standing still, arms hanging, feet flat (checked on every one)."""
REFERENCE_TAKES_PER_CONTENT = 8
STANDING_MAX_HAND_HEIGHT_CM = 95.0
STANDING_MAX_ANKLE_HEIGHT_CM = 13.0


@dataclass(frozen=True)
class BandaiClip:
    path: Path
    dataset: str
    content: str
    style: str
    take: int

    @property
    def clip_id(self) -> str:
        return self.path.name.removesuffix(".bvh.gz")


def list_clips(data_dir: Path) -> tuple[list[BandaiClip], list[tuple[str, str]]]:
    """All Bandai BVH clips under ``data_dir/bandai_namco`` and the (file, reason) of those that cannot be used."""
    root = Path(data_dir) / "bandai_namco"
    clips, skipped = [], []
    for ds in ("dataset-1", "dataset-2"):
        folder = root / ds
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: the Bandai Namco data is expected there")
        contents = (folder / "cfg" / "content_label.txt").read_text().split()
        styles = (folder / "cfg" / "style_label.txt").read_text().split()
        for js in sorted(folder.glob("*.json")):
            bvh = js.with_name(js.name.removesuffix(".json") + ".bvh.gz")
            if not bvh.exists():
                skipped.append((bvh.name, "BVH file absent (only its label .json is present)"))
                continue
            m = FILE_RE.match(bvh.name)
            if not m:
                skipped.append((bvh.name, "file name does not follow dataset-N_content_style_id"))
                continue
            labels = json.loads(js.read_text())
            content = contents[labels["content"]].removeprefix(ds + "_")
            style = styles[labels["style"]].removeprefix(ds + "_")
            if (content, style) != (m.group(2), m.group(3)):
                skipped.append((bvh.name, f"labels {content}/{style} disagree with the file name"))
                continue
            clips.append(BandaiClip(bvh, ds, content, style, int(m.group(4))))
    return clips, skipped


def _fk(motion: BvhMotion) -> tuple[np.ndarray, np.ndarray]:
    return motion.forward_kinematics()


def _is_standing(pos: np.ndarray, names: list[str]) -> bool:
    hands = max(pos[names.index("Hand_L"), 1], pos[names.index("Hand_R"), 1])
    ankles = max(pos[names.index("Foot_L"), 1], pos[names.index("Foot_R"), 1])
    return bool(hands < STANDING_MAX_HAND_HEIGHT_CM and ankles < STANDING_MAX_ANKLE_HEIGHT_CM)


@lru_cache(maxsize=2)
def alignment(data_dir: str) -> tuple[np.ndarray, float, np.ndarray]:
    """(A (22, 3, 3), scale source-cm → SMPL-m, spread (K, 22) degrees) for the Bandai skeleton, hinge-calibrated.

    Both datasets share one rig (same offsets and joint frames), so one alignment serves both. It is the rotation
    mean of the alignments read from the first frame of the first ``normal`` takes of each reference content
    (standing still, arms hanging); the spread is each reference's angle from the mean, per joint.
    """
    clips, _ = list_clips(Path(data_dir))
    aligns, frames = [], []
    for content in REFERENCE_CONTENTS:
        refs = sorted((c for c in clips if c.content == content and c.style == "normal"), key=lambda c: c.take)
        for clip in refs[:REFERENCE_TAKES_PER_CONTENT]:
            motion = read_bvh(clip.path)
            pos, glob = _fk(motion)
            if _is_standing(pos[0], motion.names):
                aligns.append(alignment_for_reference(pos[0], glob[0], motion.names, JOINT_MAP))
                frames.append((pos[0], glob[0], motion.names))
    if not aligns:
        raise RuntimeError("no standing reference frame found in the Bandai dataset-2 normal takes")
    pos0, glob0, names = frames[0]
    mean = average_alignment(aligns, pos0, glob0, names, JOINT_MAP)
    rel = np.swapaxes(mean, -1, -2)[None] @ np.stack(aligns)
    spread = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))
    scale = SMPL_LEG_LENGTH_M / leg_length(pos0, names, JOINT_MAP.left_leg)
    calibration = sorted((c for c in clips if c.dataset == "dataset-2" and c.take == 1), key=lambda c: c.clip_id)
    locals_ = []
    for clip in calibration:
        motion = read_bvh(clip.path)
        pos, glob = _fk(motion)
        locals_.append(transfer_to_smpl(pos, glob, motion.names, JOINT_MAP, mean, scale)[0])
    mean = apply_twists(mean, hinge_twist_corrections(locals_))
    return mean, scale, spread


def convert_clip(clip: BandaiClip, data_dir: Path, fps: float) -> tuple[Motion, BvhMotion]:
    """Read, transfer and finish one clip at ``fps``; raises ``ClipRejected`` or ``BvhError`` with the reason."""
    motion = read_bvh(clip.path)
    a, scale, _ = alignment(str(data_dir))
    pos, glob = _fk(motion)
    local, root = transfer_to_smpl(pos, glob, motion.names, JOINT_MAP, a, scale)
    err, _ = bone_direction_errors_deg(local, root, pos, motion.names, JOINT_MAP)
    return finish_motion(local, root, motion.fps, fps, bone_error_deg=float(err.mean())), motion
