"""From SMPL poses at the source rate to a finished training clip: ground, resample, canonicalise, check, featurise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.features import (
    canonicalize,
    canonicalize_features,
    features_to_smpl,
    heading_of,
    smpl_to_features,
    yaw_matrix,
)
from ..rotations import matrix_to_quat, quat_to_matrix, resample_linear, resample_rotations
from ..skeleton import JOINT_INDEX, forward_kinematics_np
from .smpl_transfer import ground_clip

MAX_ROOT_SPEED_MPS = 12.0
"""A pelvis faster than this between two frames is a teleport (sprinters peak near 12 m/s; mocap runs are ≤ 6)."""
MAX_JOINT_SPEED_MPS = 25.0
"""Any joint (relative to the pelvis) faster than this is a glitch (a fast punch or kick stays below ~15 m/s)."""
MAX_BONE_ERROR_DEG = 3.0
"""Mean bone-direction error after transfer above which a clip is rejected."""
MIN_DURATION_S = 1.0
"""Clips shorter than this are rejected (the model trains on ≥ 1 s)."""


class ClipRejected(Exception):
    """A clip that must not be trained on; the message says why."""


@dataclass
class Motion:
    """A finished SMPL-22 motion at ``fps``: canonicalised (facing +Z at frame 0, starting at x = z = 0), grounded."""

    local_rotmats: np.ndarray
    """(T, 22, 3, 3) float64 local joint rotations."""
    root_translation: np.ndarray
    """(T, 3) float64 pelvis position, metres."""
    fps: float
    stats: dict = field(default_factory=dict)
    """Measurements kept for the report (bone error, ground shift, speeds …)."""

    @property
    def num_frames(self) -> int:
        return int(self.local_rotmats.shape[0])

    def quaternions(self) -> np.ndarray:
        return matrix_to_quat(self.local_rotmats).astype(np.float32)

    def features(self) -> np.ndarray:
        """(T, 135) float32 unnormalised TEMOS features."""
        f = smpl_to_features(torch.from_numpy(self.local_rotmats), torch.from_numpy(self.root_translation))
        return f.numpy().astype(np.float32)


def finish_motion(
    local: np.ndarray,
    root: np.ndarray,
    src_fps: float,
    dst_fps: float,
    bone_error_deg: float | None = None,
    ground: bool = True,
) -> Motion:
    """Check, ground, resample (slerp / linear) and canonicalise a motion; raises :class:`ClipRejected`.

    local: (T, 22, 3, 3) SMPL local rotations at ``src_fps``; root: (T, 3) pelvis, metres.
    """
    stats: dict = {}
    if not (np.isfinite(local).all() and np.isfinite(root).all()):
        raise ClipRejected("NaN or infinite values after transfer")
    duration = (local.shape[0] - 1) / src_fps
    if duration < MIN_DURATION_S - 0.02:
        raise ClipRejected(f"too short: {duration:.2f} s < {MIN_DURATION_S} s")
    if bone_error_deg is not None:
        stats["bone_error_deg"] = float(bone_error_deg)
        if bone_error_deg > MAX_BONE_ERROR_DEG:
            raise ClipRejected(f"mean bone-direction error {bone_error_deg:.2f}° > {MAX_BONE_ERROR_DEG}°")
    pos, _ = forward_kinematics_np(local, root)
    root_speed = np.linalg.norm(np.diff(root, axis=0), axis=-1) * src_fps
    rel = pos - pos[:, :1]
    joint_speed = np.linalg.norm(np.diff(rel, axis=0), axis=-1).max(axis=-1) * src_fps
    stats["max_root_speed_mps"] = float(root_speed.max())
    stats["max_joint_speed_mps"] = float(joint_speed.max())
    if root_speed.max() > MAX_ROOT_SPEED_MPS:
        f = int(root_speed.argmax())
        raise ClipRejected(f"teleport: pelvis moves at {root_speed.max():.1f} m/s at frame {f}")
    if joint_speed.max() > MAX_JOINT_SPEED_MPS:
        f = int(joint_speed.argmax())
        raise ClipRejected(f"glitch: a joint moves at {joint_speed.max():.1f} m/s relative to the pelvis at frame {f}")
    if ground:
        root, shift = ground_clip(local, root)
        stats["ground_shift_m"] = shift

    quats = matrix_to_quat(local)
    if abs(src_fps - dst_fps) > 1e-4 * dst_fps:  # a declared 0.0333333 s frame is 30 fps
        quats = resample_rotations(quats, src_fps, dst_fps)
        root = resample_linear(root, src_fps, dst_fps)
    rots = quat_to_matrix(quats)
    rots_t, root_t = canonicalize(torch.from_numpy(rots), torch.from_numpy(root))
    return Motion(rots_t.numpy(), root_t.numpy(), dst_fps, stats)


GAIT_LEAD_M = 0.12
"""How far a foot must lead (toe ahead of the other toe along the heading) for a swap of feet to count as a step."""
GAIT_STEP_S = (0.2, 1.2)
"""Shortest and longest time between a stride's two swaps of the leading foot (walks ~0.5 s, runs ~0.35 s)."""


def gait_phase_starts(features: np.ndarray | torch.Tensor, fps: float) -> np.ndarray:
    """Frames where a stepping motion is at one fixed phase of its stride: the left foot swinging past the right.

    ``features``: (T, 135) unnormalised features of one clip. Returns the frames, ascending, where the left toe moves
    from behind the right one (by more than :data:`GAIT_LEAD_M`) to in front of it (by as much) — the moment of
    the left foot's swing when it passes the standing right foot — but only in a gait: the right foot must have led
    within :data:`GAIT_STEP_S` before, and the left must lead until the right passes it again within as long.
    Empty for a motion that does not step (standing, gestures, a single kick).

    Why: captured walks start anywhere in the stride, and a mirrored walk has the opposite phase under the same
    text, so from the text alone the phase is a coin toss and the model learns the average — feet that never swap.
    Crops that start at one of these frames give every walk the same phase at frame 0.
    """
    from ..evaluate.kinematics import foot_lead

    f = torch.as_tensor(features, dtype=torch.float64)
    local, root = features_to_smpl(f)
    joints, _ = forward_kinematics_np(local.numpy(), root.numpy())
    lead = foot_lead(joints)
    state = np.where(lead > GAIT_LEAD_M, 1, np.where(lead < -GAIT_LEAD_M, -1, 0))
    swaps = []  # (frame, new leader) each time the leading foot changes, with hysteresis as in the step counter
    current = 0
    for t, s in enumerate(state):
        if s and s != current:
            swaps.append((t, int(s)))
            current = s
    shortest, longest = (round(x * fps) for x in GAIT_STEP_S)
    starts = []
    for k, (t, leader) in enumerate(swaps):
        if leader != 1 or k == 0:
            continue
        before = t - swaps[k - 1][0]  # the right foot led this long
        after = swaps[k + 1][0] - t if k + 1 < len(swaps) else None
        if shortest <= before <= longest and after is not None and shortest <= after <= longest:
            starts.append(t)
    return np.asarray(starts, dtype=np.int64)


def phase_aligned_start(phase_starts: np.ndarray, start: int) -> int:
    """The crop start moved to a gait phase (:func:`gait_phase_starts`): the last phase frame at or before
    ``start``, else the first one; ``start`` itself for a motion without phase frames."""
    if len(phase_starts) == 0:
        return int(start)
    return int(phase_starts[max(0, int(np.searchsorted(phase_starts, start, "right")) - 1)])


LOOP_CONTENT = frozenset(
    {"run", "dash", "jog", "run-forward", "walk", "walk-back", "stealthy-walk", "zombie-walk"}
)
"""Contents of steady, cyclic locomotion: their texts ("a person runs forward") stay true however long the motion
goes on, so a clip of them may be lengthened by repeating a stride (:func:`loop_extend`). Runs and dashes in the
data last 1–7.7 s (median 3.2 s), so without this the model only learns runs shorter than ~4 s and slows long ones
down to a jog."""
MAX_LOOP_SEAM_M = 0.08
"""Largest mean distance between the body-frame joint positions of a stride and of what follows it in the capture,
frame by frame, for the stride to be repeated; larger means the motion is not steady there (speeding up, stopping)."""


def loop_stride(features: np.ndarray | torch.Tensor, phase_starts: np.ndarray, fps: float) -> tuple[int, int] | None:
    """The stride ``(a, b)`` of a stepping clip to repeat: the last two consecutive :func:`gait_phase_starts` at most
    two of the longest steps apart such that the capture after ``b`` repeats the stride within
    :data:`MAX_LOOP_SEAM_M`; ``None`` when there is none."""
    from ..evaluate.kinematics import local_poses

    if len(phase_starts) < 2:
        return None
    longest = 2 * round(GAIT_STEP_S[1] * fps)
    local = None
    for a, b in reversed(list(zip(phase_starts[:-1].tolist(), phase_starts[1:].tolist()))):
        if b - a > longest:
            continue
        if local is None:
            joints, _ = forward_kinematics_np(*(x.numpy() for x in features_to_smpl(torch.as_tensor(features).double())))
            local = local_poses(joints)
        m = min(b - a, len(local) - b)
        if np.linalg.norm(local[b : b + m] - local[a : a + m], axis=-1).mean() <= MAX_LOOP_SEAM_M:
            return int(a), int(b)
    return None


def splice(features: torch.Tensor, segments: list[tuple[int, int]]) -> torch.Tensor:
    """Features (T, 135) → the frames of ``segments`` (``[start, end)`` ranges of the clip) one after another. Every
    segment after the first is turned about the vertical and moved so that its first frame stands where, and faces
    where, the capture's frame after the previous segment would have: a repeated stride walks on from where the last
    one ended, and the clip's own frames after a repeat continue from where the repeat left off. Heights are kept."""
    rots, trans = features_to_smpl(features.double())
    flat = torch.tensor([1.0, 0.0, 1.0], dtype=trans.dtype)
    heading = heading_of(rots[:, 0])
    turn, offset = torch.zeros((), dtype=trans.dtype), torch.zeros(3, dtype=trans.dtype)  # frame ↦ yaw(turn)·x + offset
    all_rots, all_trans, prev_end = [], [], None
    for start, end in segments:
        if prev_end is not None:  # the capture's frame ``prev_end``, where the previous segment put it
            there = yaw_matrix(turn) @ (trans[prev_end] * flat) + offset
            turn = turn + heading[prev_end] - heading[start]
            offset = there - yaw_matrix(turn) @ (trans[start] * flat)
        y = yaw_matrix(turn)
        r = rots[start:end].clone()
        r[:, 0] = y @ r[:, 0]
        all_rots.append(r)
        all_trans.append((trans[start:end] * flat) @ y.T + offset + trans[start:end] * (1 - flat))
        prev_end = end
    return smpl_to_features(torch.cat(all_rots), torch.cat(all_trans)).to(features.dtype)


def loop_extend(features: torch.Tensor, a: int, b: int, num_frames: int) -> torch.Tensor:
    """Features (T, 135) → (num_frames, 135): the clip's frames before ``b``, then the stride ``[a, b)`` over and
    over (:func:`splice`: each repeat starts where, and facing where, the previous stride ended, so a run that curves
    keeps curving at the same rate). Frames before ``b`` are the clip's own."""
    repeats = max(0, math.ceil((num_frames - b) / (b - a)))
    return splice(features, [(0, b)] + [(a, b)] * repeats)[:num_frames]


HOLD_CONTENT = frozenset({"jump", "jump-forward", "jump-balance", "hop-forward"})
"""Contents of one movement that ends standing: their texts ("a person jumps") stay true when the performer then
stands still, so a clip may be lengthened by holding its last pose (:func:`hold_extend`)."""


def hold_extend(features: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Features (T, 135) → (num_frames, 135): the clip, then its last pose held — the same height and rotations, no
    ground velocity — for the frames after it. Frames of the clip are its own."""
    extra = num_frames - features.shape[0]
    if extra <= 0:
        return features[:num_frames]
    last = features[-1:].clone()
    last[:, 1:3] = 0.0
    return torch.cat([features, last.expand(extra, -1)])


PEAK_JOINTS = ("left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
               "spine3", "left_foot", "right_foot", "neck", "head")  # fmt: skip
"""Joints whose rotations make a one-off whole-body action such as a bow or a kick (:func:`action_peaks`)."""


def action_peaks(features: np.ndarray | torch.Tensor, fps: float, share: float = 0.8, gap_s: float = 1.0) -> np.ndarray:
    """Frames where a one-off action (a bow, a kick) is at its height: the local maxima of the body pose's distance
    from the clip's first pose that reach ``share`` of the largest, at least ``gap_s`` apart (the highest first).

    ``features``: (T, 135) unnormalised features of one clip; the distance is over the rotation features of
    :data:`PEAK_JOINTS` — not the pelvis' own orientation (where the body faces), the root's path or the arms, whose
    gestures around a bow are not the bow. A clip that starts standing and kicks three times gives three frames, a
    bow its deepest bend.
    """
    cols = [3 + 6 * JOINT_INDEX[j] + k for j in PEAK_JOINTS for k in range(6)]
    f = torch.as_tensor(features, dtype=torch.float32)[:, cols]
    d = (f - f[:1]).norm(dim=-1).numpy()
    if len(d) == 0 or d.max() <= 0:
        return np.zeros(0, np.int64)
    gap = max(1, round(gap_s * fps))
    peaks: list[int] = []
    for t in np.argsort(-d, kind="stable"):
        if d[t] < share * d.max():
            break
        if d[t] >= d[max(0, t - 1) : t + 2].max() and all(abs(int(t) - p) >= gap for p in peaks):
            peaks.append(int(t))
    return np.array(sorted(peaks), np.int64)


def one_off_pieces(features: torch.Tensor, fps: float, lead_s: float, min_frames: int = 1) -> list[torch.Tensor]:
    """A clip of a one-off action cut into one piece per peak (:func:`action_peaks`): each starts ``lead_s`` before
    its peak (or at the clip's first frame) and ends ``lead_s`` before the next peak (the last at the clip's end),
    canonicalised like a crop. Pieces shorter than ``min_frames`` are dropped; no peak → the clip whole.

    Why: a text says a person bows or kicks, not when. Performers bow 1–3 s into a clip, and the captured kick clip
    kicks three times, half a second each, 4.5 s apart: the average over those timings — all the text can teach — is
    a shallow bend and no kick, and even the motion autoencoder learns to leave them out. In pieces the action falls
    ``lead_s`` into every crop that starts a piece.
    """
    peaks = action_peaks(features, fps)
    if len(peaks) == 0:
        return [features]
    lead = round(lead_s * fps)
    starts = [max(0, int(p) - lead) for p in peaks]
    ends = starts[1:] + [features.shape[0]]
    return [features[a:b] if a == 0 else canonicalize_features(features[a:b])
            for a, b in zip(starts, ends) if b - a >= min_frames]  # fmt: skip


WAVE_HANDS = {"wave-right-hand": "right", "wave-left-hand": "left", "wave-both-hands": "right"}
"""Actions whose clips stroke a hand side to side, and the hand whose strokes time them (:func:`wave_strokes`)."""
WAVE_PERIOD_S = (0.2, 1.2)
"""Plausible time between two strokes of a wave, seconds."""
MIN_STROKE_M = 0.03
"""Least sideways travel of the wrist into a stroke's outer end (from its innermost point over the period before)."""


def wave_strokes(features: np.ndarray | torch.Tensor, hand: str, fps: float) -> np.ndarray:
    """Frames where a waving hand is at the outer end of a stroke: the wrist's sideways offset from its shoulder
    (in the body's current facing, positive away from the body) stops growing after at least :data:`MIN_STROKE_M` of
    travel, while the wrist is above the shoulder. Only strokes with a neighbour within :data:`WAVE_PERIOD_S` count (a single reach is not a wave). ``hand``:
    "right" or "left"; ``features``: (T, 135) unnormalised. Empty when the clip does not wave."""
    from ..evaluate.kinematics import heading
    from ..skeleton import JOINT_INDEX

    local, root = features_to_smpl(torch.as_tensor(features, dtype=torch.float64))
    joints, _ = forward_kinematics_np(local.numpy(), root.numpy())
    wrist, shoulder = JOINT_INDEX[f"{hand}_wrist"], JOINT_INDEX[f"{hand}_shoulder"]
    yaw = heading(joints)
    body_right = np.stack([-np.cos(yaw), np.sin(yaw)], -1)  # the body faces (sin yaw, cos yaw) in x, z
    side = ((joints[:, wrist] - joints[:, shoulder])[:, [0, 2]] * body_right).sum(-1) * (1.0 if hand == "right" else -1.0)
    up = joints[:, wrist, 1] > joints[:, shoulder, 1]
    v = np.gradient(side) if len(side) > 1 else np.zeros_like(side)
    lo, hi = (round(x * fps) for x in WAVE_PERIOD_S)
    ends = [t for t in range(1, len(side))
            if v[t - 1] > 0 >= v[t] and up[t] and side[t] - side[max(0, t - hi) : t].min() >= MIN_STROKE_M]  # fmt: skip
    near = [e for k, e in enumerate(ends)
            if (k > 0 and lo <= e - ends[k - 1] <= hi) or (k + 1 < len(ends) and lo <= ends[k + 1] - e <= hi)]  # fmt: skip
    return np.asarray(near, dtype=np.int64)


def stroke_timing(strokes: list[np.ndarray]) -> tuple[float, float] | None:
    """The common timing of a group of clips' strokes (:func:`wave_strokes`): (median first stroke, median of the
    clips' median periods), in frames; ``None`` without a clip of two strokes or more."""
    waved = [s for s in strokes if len(s) >= 2]
    if not waved:
        return None
    return float(np.median([s[0] for s in waved])), float(np.median([np.median(np.diff(s)) for s in waved]))


def warp_strokes(features: torch.Tensor, strokes: np.ndarray, first: float, period: float) -> torch.Tensor:
    """Features (T, 135) → (T', 135) retimed so that stroke k of the clip lands on frame ``first + k · period``:
    piecewise-linear time between the clip's start, its strokes (a gap of about n of its periods counts as n) and
    its end (after the last stroke the clip keeps its own pace). Rotations are slerped and the pelvis path
    interpolated, so the path and the poses are the clip's own, only their timing changes.

    Why: every wave performer strokes at their own rate from their own moment, so from the text alone the later
    seconds of a wave average out to a raised, held hand; on a common timing the strokes line up."""
    from ..rotations import matrix_to_quat, quat_slerp, quat_to_matrix

    if len(strokes) < 2:
        return features
    own, steps = float(np.median(np.diff(strokes))), [0]
    for a, b in zip(strokes[:-1], strokes[1:]):
        steps.append(steps[-1] + max(1, int(round((b - a) / own))))  # a gap of n of the clip's periods: n strokes
    n = features.shape[0]
    src = np.concatenate([[0.0], strokes.astype(np.float64), [n - 1.0]])
    dst = np.concatenate([[0.0], first + period * np.asarray(steps, np.float64), [0.0]])
    dst[-1] = dst[-2] + (n - 1.0 - strokes[-1])
    keep = np.concatenate([[True], np.diff(dst) > 0]) & np.concatenate([[True], np.diff(src) > 0])
    src, dst = src[keep], dst[keep]  # a late first stroke cannot move before the clip's start
    t = np.interp(np.arange(int(np.floor(dst[-1])) + 1), dst, src)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = t - i0
    rots, trans = features_to_smpl(features.double())
    q = matrix_to_quat(rots.numpy())
    q_new = quat_slerp(q[i0], q[i1], frac[:, None])
    trans_new = trans.numpy()[i0] * (1 - frac[:, None]) + trans.numpy()[i1] * frac[:, None]
    out = smpl_to_features(torch.from_numpy(quat_to_matrix(q_new)), torch.from_numpy(trans_new))
    return out.to(features.dtype)


def wave_cycle(features: np.ndarray | torch.Tensor, hand: str, fps: float) -> tuple[int, int] | None:
    """The stroke cycle ``(a, b)`` of a waving clip to repeat (:func:`loop_wave`): two consecutive
    :func:`wave_strokes` within :data:`WAVE_PERIOD_S` such that the capture after ``b`` repeats the cycle within
    :data:`MAX_LOOP_SEAM_M` (the body-frame joints, frame by frame); of those, the one that repeats it best. ``None``
    when the clip has no such cycle (one stroke, a drifting rate, a hand that comes down right after)."""
    from ..evaluate.kinematics import local_poses

    strokes = wave_strokes(features, hand, fps)
    lo, hi = (round(x * fps) for x in WAVE_PERIOD_S)
    pairs = [(int(a), int(b)) for a, b in zip(strokes[:-1], strokes[1:]) if lo <= b - a <= hi]
    if not pairs:
        return None
    joints, _ = forward_kinematics_np(*(x.numpy() for x in features_to_smpl(torch.as_tensor(features).double())))
    local = local_poses(joints)
    best, best_err = None, MAX_LOOP_SEAM_M
    for a, b in pairs:
        m = min(b - a, len(local) - b)
        err = float(np.linalg.norm(local[b : b + m] - local[a : a + m], axis=-1).mean())
        if err <= best_err:
            best, best_err = (a, b), err
    return best


def loop_wave(features: torch.Tensor, a: int, b: int, repeats: int) -> torch.Tensor:
    """Features (T, 135) → (T + repeats · (b − a), 135): a wave lengthened in its middle — the clip up to ``b``, the
    stroke cycle ``[a, b)`` ``repeats`` more times, then the rest of the clip (the hand coming down), each part
    continuing from where the previous one ended (:func:`splice`). The beginning and the end are the capture's own, so
    a longer wave keeps its performer's rate instead of being one of the slow performers who happen to take longer."""
    return splice(features, [(0, b)] + [(a, b)] * repeats + [(b, features.shape[0])])
