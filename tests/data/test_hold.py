"""Holding a jump's last pose: a captured jump lasts 1.8–5 s, so a jump clip may be lengthened by the performer
standing still after landing. The clip's own frames must stay as captured, the held frames must be its last pose
without ground velocity, and only jump clips, only crops that reach their clip's end, and only with the option on."""

from __future__ import annotations

import torch

from temos_blender.data.processing import HOLD_CONTENT, LOOP_CONTENT, hold_extend
from temos_blender.train import ClipBatcher, TrainConfig


def jump_features(frames: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(frames)
    f = torch.randn(frames, 135, generator=g)
    f[:, 1:3] = 0.05  # moving forward to the end: the held frames must stop
    return f


def test_the_clip_is_kept_and_its_last_pose_held_without_ground_velocity():
    f = jump_features(30)
    out = hold_extend(f, 80)
    assert out.shape == (80, 135)
    assert torch.equal(out[:30], f), "the clip's own frames are as captured"
    assert torch.equal(out[30:, 0], f[-1, 0].expand(50)), "the height stays"
    assert torch.equal(out[30:, 3:], f[-1, 3:].expand(50, -1)), "so do every rotation"
    assert torch.count_nonzero(out[30:, 1:3]) == 0, "and the body does not slide on"
    assert torch.equal(hold_extend(f, 20), f[:20]), "a shorter request is a crop"


def test_only_crops_that_reach_the_end_of_a_jump_clip_are_held_and_only_with_the_option_on():
    def clip(n: int, content: str) -> dict:
        f = jump_features(n)
        return {"features": f, "texts": [content], "weight": 1.0, "content": content, "crop": lambda s, k: f[s : s + k]}

    jump, walk = clip(38, "jump"), clip(38, "walk")
    assert "jump" in HOLD_CONTENT and not HOLD_CONTENT & LOOP_CONTENT

    def sampled(prob: float) -> tuple[list[str], torch.Tensor, torch.Tensor, list]:
        cfg = TrainConfig(model={}, min_frames=6, max_frames=100, data_fps=12.5, hold_jump_prob=prob,
                          crop_from_start=True, full_clip_prob=0.5)  # fmt: skip
        return ClipBatcher([jump, walk], cfg, torch.Generator().manual_seed(0)).sample(200)

    texts, motion, mask, _ = sampled(1.0)
    lengths = mask.sum(1)
    is_jump = torch.tensor([t == "jump" for t in texts])
    assert lengths[is_jump].max() > 90 and lengths[is_jump].float().mean() > 38, "jumps are held up to the longest crop"
    assert lengths[~is_jump].max() <= 38, "other clips never are"
    held = is_jump & (lengths > 38)
    assert held.any() and all(torch.equal(m[:38], jump["features"]) for m in motion[held]), "after the whole clip"
    shorter = is_jump & (lengths < 38)
    assert shorter.any(), "a crop that ends before the clip does is left as it is"
    texts0, motion0, mask0, _ = sampled(0.0)
    assert mask0.sum(1).max() <= 38, "nothing is held with the option off"
    off = TrainConfig(model={}, min_frames=6, max_frames=100, data_fps=12.5, crop_from_start=True, full_clip_prob=0.5)
    texts1, motion1, _, _ = ClipBatcher([jump, walk], off, torch.Generator().manual_seed(0)).sample(200)
    assert texts1 == texts0 and torch.equal(motion1, motion0), "and the draws are those of a config without it"
