"""Wave strokes on a common timing: every performer of a wave strokes at their own rate from their own moment, so the
average over performers (what a text alone can predict) is a raised, held hand. Retiming each clip so that its strokes
fall on one grid must keep its poses and path and make the performers' strokes line up."""

from __future__ import annotations

import numpy as np
import torch

from temos_blender.core.features import features_to_smpl, smpl_to_features
from temos_blender.data.processing import loop_wave, stroke_timing, warp_strokes, wave_cycle, wave_strokes
from temos_blender.evaluate.kinematics import local_poses
from temos_blender.rotations import axis_angle_to_matrix
from temos_blender.skeleton import JOINT_INDEX, forward_kinematics_np

FPS = 12.5
WRIST, SHOULDER = JOINT_INDEX["right_wrist"], JOINT_INDEX["right_shoulder"]


def waving(seconds: float, period_s: float, offset_s: float, amplitude_rad: float = 0.6, raised: bool = True,
           lower_s: float = 0.0) -> torch.Tensor:  # fmt: skip
    """Features of a right arm raised in 0.4 s (or hanging down) whose forearm swings sideways with ``period_s``;
    with ``lower_s`` the arm comes down again over the last ``lower_s`` seconds."""
    t = np.arange(round(seconds * FPS)) / FPS
    aa = np.zeros((len(t), 22, 3))
    lift = np.clip(t / 0.4, 0, 1)
    if lower_s:
        lift = lift * np.clip((t[-1] - t) / lower_s, 0, 1)
    aa[:, JOINT_INDEX["right_shoulder"], 2] = -1.2 * lift if raised else 1.2
    aa[:, JOINT_INDEX["right_elbow"], 2] = -amplitude_rad * (1 + np.cos(2 * np.pi * (t - offset_s) / period_s)) / 2 - 0.3
    trans = np.tile([0.0, 0.9, 0.0], (len(t), 1)) + np.outer(t, [0.05, 0.0, 0.1])  # drifting slowly
    return smpl_to_features(torch.from_numpy(axis_angle_to_matrix(aa)), torch.from_numpy(trans))


def joints_of(features: torch.Tensor) -> np.ndarray:
    return forward_kinematics_np(*(x.numpy() for x in features_to_smpl(features.double())))[0]


def test_strokes_are_found_at_the_waving_rate_and_only_while_the_hand_is_up():
    strokes = wave_strokes(waving(5, 0.8, 1.0), "right", FPS)
    assert len(strokes) >= 5 and set(np.diff(strokes).tolist()) == {10}, "one stroke per 0.8 s period"
    assert len(wave_strokes(waving(5, 0.8, 1.0, raised=False), "right", FPS)) == 0, "a swinging lowered arm is no wave"
    assert len(wave_strokes(waving(5, 0.8, 1.0, amplitude_rad=0.0), "right", FPS)) == 0, "a held hand is no wave"
    assert len(wave_strokes(waving(5, 0.8, 1.0), "left", FPS)) == 0, "the other hand does not wave"


def test_retiming_puts_the_strokes_on_the_grid_and_keeps_poses_and_path():
    clip = waving(6, 1.0, 0.3)
    strokes = wave_strokes(clip, "right", FPS)
    warped = warp_strokes(clip, strokes, first=8.0, period=8.0)
    new = wave_strokes(warped, "right", FPS)
    assert len(new) == len(strokes)
    np.testing.assert_allclose(new, 8 + 8 * np.arange(len(new)), atol=1)
    j, w = joints_of(clip), joints_of(warped)
    np.testing.assert_allclose(w[8 + 8 * np.arange(len(new))], j[strokes], atol=1e-6)  # the stroke poses themselves
    np.testing.assert_allclose(w[-1, 0], j[-1, 0], atol=1e-6)  # the path ends where it did
    np.testing.assert_allclose(w[0], j[0], atol=1e-6)
    assert warped.shape[0] == 8 + 8 * (len(strokes) - 1) + (clip.shape[0] - 1 - strokes[-1]) + 1
    regular = waving(5, 0.8, 1.0)  # strokes every 10 frames: already on a grid
    strokes = wave_strokes(regular, "right", FPS)
    torch.testing.assert_close(warp_strokes(regular, strokes, float(strokes[0]), 10.0), regular, atol=1e-5, rtol=0)


def test_on_a_common_timing_the_average_of_performers_keeps_waving():
    clips = [waving(6, period, offset) for period, offset in ((0.64, 0.1), (0.8, 0.5), (0.96, 0.3), (0.72, 0.7))]
    strokes = [wave_strokes(c, "right", FPS) for c in clips]
    first, period = stroke_timing(strokes)

    def average_over_own_speed(feature_list) -> float:
        n = min(f.shape[0] for f in feature_list)
        paths = np.stack([(lambda j: j[25:n, WRIST] - j[25:n, SHOULDER])(joints_of(f)) for f in feature_list])
        own = np.linalg.norm(np.diff(paths, axis=1), axis=-1).mean()
        return float(np.linalg.norm(np.diff(paths.mean(0), axis=0), axis=-1).mean() / own)

    raw = average_over_own_speed(clips)
    aligned = average_over_own_speed([warp_strokes(c, s, first, period) for c, s in zip(clips, strokes)])
    assert raw < 0.5 and aligned > 0.9, (raw, aligned)


def test_training_retimes_each_wave_action_onto_one_timing_and_leaves_other_clips_alone():
    from temos_blender.train import waves_on_common_timing

    def clip(features, content, style):
        return {"features": features, "content": content, "style": style, "texts": ["t"],
                "crop": lambda s, n, f=features: f[s : s + n]}  # fmt: skip

    styles = (("active", 0.48, 0.1), ("active", 0.56, 0.3), ("elderly", 1.04, 0.2), ("elderly", 1.12, 0.6))
    right = [clip(waving(6, p, o), "wave-right-hand", st) for st, p, o in styles]
    both = [clip(waving(6, p, o), "wave-both-hands", "normal") for p, o in ((0.64, 0.2), (0.72, 0.0))]
    walk = clip(waving(6, 0.8, 0.0), "walk", "normal")
    out = waves_on_common_timing([*right, *both, walk], FPS)
    assert out[-1] is walk
    timings = []
    for before, after in ((right, out[:4]), (both, out[4:6])):  # one action, whatever the style: one grid of strokes
        first, period = stroke_timing([wave_strokes(c["features"], "right", FPS) for c in before])
        grid = first + period * np.arange(1, 4)  # (the first stroke after the raise may travel too little to count)
        for c in after:
            strokes = wave_strokes(c["features"], "right", FPS)
            assert np.abs(strokes[None, :] - grid[:, None]).min(1).max() <= 1, (strokes, grid)
        torch.testing.assert_close(after[0]["crop"](0, 10), after[0]["features"][:10])
        timings.append((first, period))
    assert timings[0] != timings[1], "each action has its own timing"


def test_a_lengthened_wave_keeps_its_rate_its_raise_and_its_lowering():
    clip = waving(5, 0.8, 0.3, lower_s=0.8)  # a stroke every 10 frames; the hand comes down over the last 0.8 s
    cycle = wave_cycle(clip, "right", FPS)
    assert cycle is not None and cycle[1] - cycle[0] == 10, cycle
    a, b = cycle
    longer = loop_wave(clip, a, b, 3)
    n = clip.shape[0]
    assert longer.shape == (n + 30, 135)
    j, w = joints_of(clip), joints_of(longer)
    np.testing.assert_allclose(w[:b], j[:b], atol=1e-5, err_msg="the raise and the strokes before the cycle are the capture's")
    np.testing.assert_allclose(local_poses(w[b + 30 :]), local_poses(j[b:]), atol=1e-5, err_msg="so is the lowering")
    np.testing.assert_allclose(w[-1, 0] - w[b + 30, 0], j[-1, 0] - j[b, 0], atol=1e-5, err_msg="the path goes on as captured")
    assert w[-1, WRIST, 1] < w[b : b + 30, WRIST, 1].min() - 0.1, "the hand still comes down at the end"
    strokes, more = wave_strokes(clip, "right", FPS), wave_strokes(longer, "right", FPS)
    assert len(more) == len(strokes) + 3, "three more strokes…"
    assert sorted(np.diff(more).tolist()) == sorted(np.diff(strokes).tolist() + [10] * 3), "…at the same rate"
    moves = np.linalg.norm(np.diff(w, axis=0), axis=-1).max(-1)
    assert moves.max() <= 1.05 * np.linalg.norm(np.diff(j, axis=0), axis=-1).max(), "no jump where a repeat joins"


def test_only_a_wave_that_repeats_itself_is_looped():
    assert wave_cycle(waving(5, 0.8, 0.3, amplitude_rad=0.0), "right", FPS) is None, "a held hand"
    assert wave_cycle(waving(5, 0.8, 0.3, raised=False), "right", FPS) is None, "an arm swinging down low"
    assert wave_cycle(waving(5, 0.8, 0.3), "left", FPS) is None, "the other hand"


def test_training_lengthens_waves_only():
    from temos_blender.train import ClipBatcher, TrainConfig

    def clip(content: str) -> dict:
        f = waving(4, 0.8, 0.3, lower_s=0.8).float()
        return {"features": f, "texts": [content], "weight": 1.0, "content": content, "crop": lambda s, n: f[s : s + n]}

    wave, raise_hand = clip("wave-right-hand"), clip("raise-up-right-hand")  # the same motion; only a wave's text
    n = wave["features"].shape[0]  # says it may go on longer

    def lengths(prob: float, fill: bool = False) -> dict[str, list[int]]:
        cfg = TrainConfig(model={}, min_frames=6, max_frames=100, data_fps=FPS, loop_wave_prob=prob, loop_wave_fill=fill,
                          full_clip_prob=1.0)  # fmt: skip
        texts, _, mask, _ = ClipBatcher([wave, raise_hand], cfg, torch.Generator().manual_seed(0)).sample(300)
        out: dict[str, list[int]] = {}
        for text, m in zip(texts, mask):
            out.setdefault(text, []).append(int(m.sum()))
        return out

    on, off = lengths(1.0), lengths(0.0)
    assert max(on["wave-right-hand"]) > 90 and np.mean(on["wave-right-hand"]) > n, "waves are lengthened up to the longest crop"
    assert max(on["wave-right-hand"]) <= 100 and max(on["raise-up-right-hand"]) <= n, "never past it; other clips never"
    assert max(off["wave-right-hand"]) <= n, "and nothing is with the option off"
    assert len(set(on["wave-right-hand"])) > 3, "a random number of cycles…"
    assert set(lengths(1.0, fill=True)["wave-right-hand"]) == {n + 10 * ((100 - n) // 10)}, "…or as many as fit"
