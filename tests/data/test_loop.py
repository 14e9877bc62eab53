"""Looping steady locomotion: a short captured run is lengthened by repeating its last stride, so training sees runs
as long as the longest crop. The repeat must keep the speed, the stride, the turn rate and the joins smooth, and only
clips whose texts stay true when they go on longer (runs, walks) are lengthened."""

from __future__ import annotations

import numpy as np
import torch

from temos_blender.core.features import features_to_smpl, smpl_to_features
from temos_blender.data.processing import LOOP_CONTENT, gait_phase_starts, loop_extend, loop_stride
from temos_blender.evaluate import checks
from temos_blender.evaluate.kinematics import heading
from temos_blender.rotations import axis_angle_to_matrix
from temos_blender.skeleton import JOINT_INDEX, forward_kinematics_np

FPS = 12.5


def locomotion(seconds: float, speed_mps: float, stride_s: float, turn_deg_s: float = 0.0,
               swing_rad=0.6) -> torch.Tensor:  # fmt: skip
    """Features of a synthetic gait: hips swinging in antiphase with period ``stride_s``, the pelvis moving along its
    heading at ``speed_mps`` while the heading turns at ``turn_deg_s``. ``swing_rad`` may be an array per frame."""
    t = np.arange(round(seconds * FPS)) / FPS
    yaw = np.radians(turn_deg_s) * t
    swing = np.broadcast_to(swing_rad, t.shape) * np.sin(2 * np.pi * t / stride_s)
    aa = np.zeros((len(t), 22, 3))
    aa[:, 0, 1] = yaw
    aa[:, JOINT_INDEX["left_hip"], 0] = -swing
    aa[:, JOINT_INDEX["right_hip"], 0] = swing
    step = speed_mps / FPS * np.stack([np.sin(yaw), 0 * yaw, np.cos(yaw)], -1)
    trans = np.cumsum(step, 0) - step[0] + np.array([0.0, 0.9, 0.0])
    return smpl_to_features(torch.from_numpy(axis_angle_to_matrix(aa)), torch.from_numpy(trans))


def joints_of(features: torch.Tensor) -> np.ndarray:
    return forward_kinematics_np(*(x.numpy() for x in features_to_smpl(features.double())))[0]


def looped(features: torch.Tensor, frames: int) -> tuple[torch.Tensor, int]:
    stride = loop_stride(features, gait_phase_starts(features, FPS), FPS)
    assert stride is not None, "a steady gait has a stride to repeat"
    return loop_extend(features, *stride, frames), stride[1]


def test_a_looped_run_keeps_its_speed_its_stride_and_smooth_joins():
    run = locomotion(3.0, speed_mps=2.8, stride_s=0.72)
    longer, b = looped(run, 100)
    assert longer.shape == (100, 135)
    assert torch.allclose(longer[:b], run[:b], atol=1e-5), "the captured frames are kept as they are"
    joints = joints_of(longer)
    tail = checks.measure(joints[b:], FPS)
    assert abs(tail["speed_mps"] - 2.8) < 0.03, "the repeats run as fast as the capture"
    assert abs(tail["left_m"]) < 0.05 and tail["forward_m"] > 0.95 * 2.8 * (100 - b - 1) / FPS, "…and straight on"
    assert tail["steps"] >= 2 * (100 - b) / (0.72 * FPS) - 2, "the feet keep swapping twice a stride"
    moves = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(-1)  # fastest joint, metres per frame
    assert moves[b - 1 :].max() <= 1.05 * moves[: b - 1].max(), "no jump where a repeat joins"


def test_a_curving_run_keeps_curving_at_the_same_rate():
    curve = locomotion(3.0, speed_mps=2.5, stride_s=0.72, turn_deg_s=20.0)
    longer, b = looped(curve, 100)
    yaw = np.degrees(np.unwrap(heading(joints_of(longer))))
    rate = np.diff(yaw) * FPS
    assert np.allclose(rate[b:], 20.0, atol=0.5), "the heading turns at 20°/s through every repeat"
    assert abs(yaw[-1] - yaw[0] - 20.0 * 99 / FPS) < 1.0


def test_motions_without_a_steady_stride_are_not_looped():
    still = locomotion(3.0, speed_mps=0.0, stride_s=0.72, swing_rad=0.0)
    t = np.arange(round(3.0 * FPS)) / FPS
    speeding_up = locomotion(3.0, speed_mps=1.5, stride_s=0.72, swing_rad=0.1 + 1.0 * t)  # each stride much wider
    for f in (still, speeding_up):
        assert loop_stride(f, gait_phase_starts(f, FPS), FPS) is None


def test_training_lengthens_crops_of_locomotion_only():
    from temos_blender.train import ClipBatcher, TrainConfig

    def clip(f: torch.Tensor, content: str) -> dict:
        f = f.float()
        return {"features": f, "texts": [content], "weight": 1.0, "content": content, "crop": lambda s, n: f[s : s + n]}

    run = clip(locomotion(3.0, 2.8, 0.72), "run")
    hop = clip(locomotion(3.0, 2.8, 0.72), "hop-forward")  # steps, but not a content whose text allows more of it
    still = clip(locomotion(3.0, 0.0, 0.72, swing_rad=0.0), "walk")  # a walk clip without a stride to repeat
    assert "run" in LOOP_CONTENT and "hop-forward" not in LOOP_CONTENT

    def lengths(prob: float) -> dict[str, list[int]]:
        cfg = TrainConfig(model={}, min_frames=6, max_frames=100, data_fps=FPS, loop_locomotion_prob=prob)
        texts, _, mask, _ = ClipBatcher([run, hop, still], cfg, torch.Generator().manual_seed(0)).sample(300)
        out: dict[str, list[int]] = {}
        for text, m in zip(texts, mask):
            out.setdefault(text, []).append(int(m.sum()))
        return out

    on, off = lengths(1.0), lengths(0.0)
    n = run["features"].shape[0]
    assert max(on["run"]) > 90 and np.mean(on["run"]) > n, "runs are lengthened up to the longest crop"
    assert max(on["hop-forward"]) <= n and max(on["walk"]) <= n, "other clips never are"
    assert max(off["run"]) <= n, "and nothing is with the option off"
