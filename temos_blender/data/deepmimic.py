"""DeepMimic reference motions (``deepmimic/``, ``deepmimic/sie/``) and IsaacGymEnvs AMP clips → SMPL-22.

Both use the DeepMimic humanoid: 15 joints, Y-up after conversion, metres, facing +X at rest with the right side
towards +Z, arms hanging, feet flat. Its rest pose (all rotations identity) is the reference for the alignment.

The skeleton lacks joints SMPL has; what each missing SMPL joint does, and why:

- ``spine1`` follows the pelvis, ``spine2`` and ``spine3`` follow ``chest`` (local identity between them): the chest
  joint sits 0.24 m above the root, between SMPL's spine1 and spine3, so the whole back bend happens at spine2.
- ``left/right_collar`` follow the chest (the shoulders hang off the chest directly).
- ``head`` follows ``neck`` (DeepMimic's neck joint carries the head sphere, so it *is* the head's rotation).
- ``left/right_wrist`` follow the forearm (DeepMimic's wrist is a fixed joint; the AMP clips' ``hand`` joint, which
  can rotate, drives the wrist there).
- ``left/right_foot`` (toes) follow the ankle: the foot is one rigid box.

So those SMPL joints carry no motion of their own in these clips; the model learns them from the Bandai and CMU data.
Gait-cycle loops (walk, jog, run, zombie walk: ``"Loop": "wrap"``, one cycle) are played for several cycles, each
continuing from where the last ended (turned and moved as the cycle turns and moves the root), as DeepMimic plays
them. Clips with uneven frame durations (``roll``) are resampled by time to an even rate with slerp.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..rotations import quat_slerp, quat_to_matrix
from .bvh import BvhMotion
from .processing import Motion, finish_motion
from .smpl_transfer import (
    SMPL_LEG_LENGTH_M,
    JointMap,
    alignment_for_reference,
    bone_direction_errors_deg,
    leg_length,
    transfer_to_smpl,
)

NAMES = (
    "root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
    "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip
PARENTS = (-1, 0, 1, 0, 3, 4, 1, 6, 7, 0, 9, 10, 1, 12, 13)
OFFSETS_M = np.array(
    [
        [0, 0, 0], [0, 0.236151, 0], [0, 0.223894, 0], [0, 0, 0.084887], [0, -0.421546, 0], [0, -0.40987, 0],
        [-0.02405, 0.2435, 0.18311], [0, -0.274788, 0], [0, -0.258947, 0], [0, 0, -0.084887], [0, -0.421546, 0],
        [0, -0.40987, 0], [-0.02405, 0.2435, -0.18311], [0, -0.274788, 0], [0, -0.258947, 0],
    ]
)  # fmt: skip
"""Joint offsets from the parent (m), from ``character_humanoid3d.txt``."""

# Frame layout: which numbers hold each joint (after the duration, root position and root rotation).
_SPHERICAL = {"chest": 8, "neck": 12, "right_hip": 16, "right_ankle": 21, "right_shoulder": 25, "left_hip": 30,
              "left_ankle": 35, "left_shoulder": 39}  # fmt: skip
_REVOLUTE = {"right_knee": 20, "right_elbow": 29, "left_knee": 34, "left_elbow": 43}

AMP_TO_DEEPMIMIC = {
    "pelvis": "root", "torso": "chest", "head": "neck", "right_upper_arm": "right_shoulder",
    "right_lower_arm": "right_elbow", "right_hand": "right_wrist", "left_upper_arm": "left_shoulder",
    "left_lower_arm": "left_elbow", "left_hand": "left_wrist", "right_thigh": "right_hip", "right_shin": "right_knee",
    "right_foot": "right_ankle", "left_thigh": "left_hip", "left_shin": "left_knee", "left_foot": "left_ankle",
}  # fmt: skip
ZUP_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""IsaacGym's Z-up world to Y-up: (x, y, z) → (x, z, −y)."""

JOINT_MAP = JointMap(
    source={
        "pelvis": "root", "spine1": "root", "spine2": "chest", "spine3": "chest", "neck": "neck", "head": "neck",
        "left_collar": "chest", "right_collar": "chest",
        "left_shoulder": "left_shoulder", "left_elbow": "left_elbow", "left_wrist": "left_wrist",
        "right_shoulder": "right_shoulder", "right_elbow": "right_elbow", "right_wrist": "right_wrist",
        "left_hip": "left_hip", "left_knee": "left_knee", "left_ankle": "left_ankle", "left_foot": "left_ankle",
        "right_hip": "right_hip", "right_knee": "right_knee", "right_ankle": "right_ankle", "right_foot": "right_ankle",
    },
    bone_end={},
    rule={
        "pelvis": "upright", "spine1": "upright", "spine2": "upright", "spine3": "upright", "neck": "upright",
        "head": "parent", "left_collar": "parent", "right_collar": "parent", "left_wrist": "parent",
        "right_wrist": "parent", "left_ankle": "upright", "right_ankle": "upright", "left_foot": "parent",
        "right_foot": "parent",
    },
    left_hip="left_hip",
    right_hip="right_hip",
    left_leg=("left_hip", "left_knee", "left_ankle"),
)  # fmt: skip

MIN_LOOP_DURATION_S = 4.0
"""Gait-cycle loops are repeated until they last at least this long."""
GAIT_LABELS = ("walk", "jog", "run", "zombie walk")
"""Loop clips that are one gait cycle, so repeating them is the same action going on. Other ``wrap`` clips (a
backflip, a cartwheel, a spin kick) are single actions whose text says "once"; they are not repeated."""


@dataclass(frozen=True)
class DeepMimicClip:
    clip_id: str
    path: Path
    source: str
    """``deepmimic``, ``deepmimic_sie`` or ``amp``."""
    label: str
    texts: tuple[str, ...]
    loop: bool


def list_clips(data_dir: Path) -> tuple[list[DeepMimicClip], list[tuple[str, str]]]:
    """Clips of ``deepmimic/`` and ``isaacgymenvs_amp/``, and (file, reason) for those left out."""
    data_dir = Path(data_dir)
    clips, skipped = [], []
    for rec in json.loads((data_dir / "deepmimic" / "manifest.json").read_text()):
        name = Path(rec["file"]).name
        if rec.get("likely_mirrored_copy"):
            skipped.append((name, "mirrored duplicate of another clip (the pipeline mirrors every clip itself)"))
            continue
        source = "deepmimic_sie" if "/sie/" in rec["file"] else "deepmimic"
        clip_id = rec["name"] if rec["name"].startswith("sie_") else f"deepmimic_{rec['name']}"
        clips.append(
            DeepMimicClip(
                clip_id, data_dir / rec["file"], source, rec["label"], tuple(rec["texts"]),
                rec.get("loop") == "wrap",
            )
        )  # fmt: skip
    for rec in json.loads((data_dir / "isaacgymenvs_amp" / "manifest.json").read_text()):
        clips.append(
            DeepMimicClip(f"amp_{rec['name']}", data_dir / rec["file"], "amp", rec["label"], tuple(rec["texts"]), False)
        )
    return clips, skipped


def _motion(rot_local: np.ndarray, root_pos: np.ndarray, fps: float) -> BvhMotion:
    t = rot_local.shape[0]
    trans = np.broadcast_to(OFFSETS_M, (t, len(NAMES), 3)).copy()
    trans[:, 0] = root_pos
    return BvhMotion(
        names=list(NAMES),
        parents=np.asarray(PARENTS),
        offsets=OFFSETS_M.copy(),
        channels=[()] * len(NAMES),
        end_sites={},
        frame_time=1.0 / fps,
        local_rotations=rot_local,
        local_translations=trans,
    )


def read_deepmimic(path: Path) -> tuple[BvhMotion, bool]:
    """A DeepMimic ``.txt(.gz)`` motion as a skeletal motion, and whether it loops (``"Loop": "wrap"``)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        doc = json.load(f)
    frames = np.asarray(doc["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != 44:
        raise ValueError(f"{path}: expected frames of 44 numbers, got shape {frames.shape}")
    durations = frames[:-1, 0]
    t = len(frames)
    quats = np.zeros((t, len(NAMES), 4))
    quats[..., 0] = 1.0
    quats[:, 0] = frames[:, 4:8]
    for name, col in _SPHERICAL.items():
        quats[:, NAMES.index(name)] = frames[:, col : col + 4]
    for name, col in _REVOLUTE.items():  # a rotation by angle a about local Z
        quats[:, NAMES.index(name), 0] = np.cos(frames[:, col] / 2)
        quats[:, NAMES.index(name), 3] = np.sin(frames[:, col] / 2)
    root = frames[:, 1:4]
    fps = 1.0 / durations.mean()
    if np.ptp(durations) > 1e-4 * durations.mean():
        times = np.concatenate([[0.0], np.cumsum(durations)])
        fps = 1.0 / np.median(durations)
        quats, root = resample_by_time(quats, root, times, fps)
    return _motion(quat_to_matrix(quats), root, fps), doc.get("Loop") == "wrap"


def resample_by_time(quats: np.ndarray, root: np.ndarray, times: np.ndarray, fps: float):
    """Frames at uneven ``times`` (s) → an even ``fps`` grid over the same span: slerp for quats, linear for root."""
    grid = np.arange(0.0, times[-1] + 1e-9, 1.0 / fps)
    i1 = np.clip(np.searchsorted(times, grid, side="right"), 1, len(times) - 1)
    i0 = i1 - 1
    frac = np.clip((grid - times[i0]) / np.maximum(times[i1] - times[i0], 1e-12), 0.0, 1.0)
    q = quat_slerp(quats[i0], quats[i1], frac[:, None])
    r = root[i0] * (1 - frac[:, None]) + root[i1] * frac[:, None]
    return q, r


def read_amp(path: Path) -> BvhMotion:
    """An IsaacGymEnvs AMP ``.npz`` (xyzw quaternions, Z-up) as a DeepMimic-skeleton motion in Y-up."""
    a = np.load(path, allow_pickle=False)
    names = [AMP_TO_DEEPMIMIC[str(n)] for n in a["node_names"]]
    order = [names.index(n) for n in NAMES]
    parents = a["parents"]
    expected = [names.index(NAMES[p]) if p >= 0 else -1 for p in PARENTS]
    if [int(parents[i]) for i in order] != expected:
        raise ValueError(f"{path}: joint hierarchy differs from the DeepMimic humanoid")
    q = a["rotation"].astype(np.float64)[:, order]  # (T, 15, 4) xyzw
    rot = quat_to_matrix(np.concatenate([q[..., 3:], q[..., :3]], axis=-1))
    rot = ZUP_TO_YUP @ rot @ ZUP_TO_YUP.T
    root = a["root_translation"].astype(np.float64) @ ZUP_TO_YUP.T
    offsets = a["local_translation"].astype(np.float64)[order] @ ZUP_TO_YUP.T
    if not np.allclose(offsets[1:], OFFSETS_M[1:], atol=2e-3):
        raise ValueError(f"{path}: bone offsets differ from the DeepMimic humanoid's")
    return _motion(rot, root, float(a["fps"]))


def _yaw_of_forward(root_rot: np.ndarray) -> float:
    f = root_rot[:, 0]  # DeepMimic faces +X
    return float(np.arctan2(-f[2], f[0]))


def _ry(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def tile_loop(motion: BvhMotion, min_duration_s: float) -> BvhMotion:
    """Repeat a one-cycle loop; each cycle starts where the last ended, turned by the cycle's change of heading.

    Cycle ``k`` is cycle 0 moved by ``D^k`` with ``D(p) = turn · (p − p0) + p_last`` on the floor plane, where ``turn``
    is the root's change of heading over the cycle; the last frame of every cycle but the final one is dropped, as
    it is the next cycle's first.
    """
    t = motion.num_frames
    cycle_s = (t - 1) * motion.frame_time
    n = max(1, int(np.ceil(min_duration_s / cycle_s)))
    if n == 1:
        return motion
    turn = _ry(_yaw_of_forward(motion.local_rotations[-1, 0]) - _yaw_of_forward(motion.local_rotations[0, 0]))
    p0, pl = motion.local_translations[0, 0].copy(), motion.local_translations[-1, 0].copy()
    p0[1] = pl[1] = 0.0
    rots, trans = [], []
    for k in range(n):
        stop = t if k == n - 1 else t - 1
        r = motion.local_rotations[:stop].copy()
        tr = motion.local_translations[:stop].copy()
        r[:, 0] = np.linalg.matrix_power(turn, k) @ r[:, 0]
        tr[:, 0] = _apply_power(turn, p0, pl, k, tr[:, 0])
        rots.append(r)
        trans.append(tr)
    return BvhMotion(
        names=motion.names,
        parents=motion.parents,
        offsets=motion.offsets,
        channels=motion.channels,
        end_sites=motion.end_sites,
        frame_time=motion.frame_time,
        local_rotations=np.concatenate(rots),
        local_translations=np.concatenate(trans),
    )


def _apply_power(turn: np.ndarray, p0: np.ndarray, pl: np.ndarray, k: int, points: np.ndarray) -> np.ndarray:
    """Apply D(p) = turn (p − p0) + pl to (N, 3) points k times (heights unchanged: ``turn`` is about Y)."""
    out = points.copy()
    for _ in range(k):
        out = (out - p0) @ turn.T + pl
    return out


def load(clip: DeepMimicClip) -> BvhMotion:
    if clip.source == "amp":
        return read_amp(clip.path)
    motion, loop = read_deepmimic(clip.path)
    return tile_loop(motion, MIN_LOOP_DURATION_S) if loop and clip.label in GAIT_LABELS else motion


def convert_clip(clip: DeepMimicClip, fps: float) -> Motion:
    """Read, transfer and finish one clip at ``fps``; raises ``ClipRejected`` / ``ValueError`` with the reason."""
    motion = load(clip)
    rest_pos = np.zeros((len(NAMES), 3))
    for j, p in enumerate(PARENTS):
        rest_pos[j] = OFFSETS_M[j] + (rest_pos[p] if p >= 0 else 0.0)
    rest_glob = np.broadcast_to(np.eye(3), (len(NAMES), 3, 3)).copy()
    alignment = alignment_for_reference(rest_pos, rest_glob, list(NAMES), JOINT_MAP)
    scale = SMPL_LEG_LENGTH_M / leg_length(rest_pos, list(NAMES), JOINT_MAP.left_leg)
    pos, glob = motion.forward_kinematics()
    local, root = transfer_to_smpl(pos, glob, list(NAMES), JOINT_MAP, alignment, scale)
    err, _ = bone_direction_errors_deg(local, root, pos, list(NAMES), JOINT_MAP)
    return finish_motion(local, root, motion.fps, fps, bone_error_deg=float(err.mean()))
