"""One-off actions on one timing: performers bow 1–3 s into a clip and the captured kick clip kicks three times,
4.5 s apart; the text cannot say when, so such clips are cut into pieces that start a fixed lead before each peak.
The peaks must be the action's (legs, spine, head), not a gesture of the arms or a turn of the whole body; pieces
must start the lead before a peak and end where the next begins; other clips and configs without the options are
unchanged, and the share of the draws goes where it is asked to."""

from __future__ import annotations

import torch

from temos_blender.data.processing import PEAK_JOINTS, action_peaks, one_off_pieces
from temos_blender.skeleton import JOINT_INDEX
from temos_blender.train import ClipBatcher, TrainConfig

FPS = 12.5


def bump(f: torch.Tensor, joint: str, at: int, height: float, half_width: int = 3) -> None:
    i = 3 + 6 * JOINT_INDEX[joint]
    t = torch.arange(f.shape[0], dtype=torch.float32)
    f[:, i : i + 6] += (height * torch.clamp(1 - (t - at).abs() / half_width, min=0))[:, None]


def kick_clip(frames: int = 120) -> torch.Tensor:
    f = torch.zeros(frames, 135)
    f[:, 3:] = torch.eye(3)[:2].flatten().repeat(22)  # standing still: every joint at the identity rotation
    f[:, 0] = 1.0 + torch.arange(frames) * 1e-3  # the root's height tells the frames apart (not a peak joint)
    bump(f, "right_knee", 20, 1.0)
    bump(f, "right_knee", 70, 0.95)  # the second kick, as high
    bump(f, "right_knee", 100, 0.5)  # a small step: not a kick
    bump(f, "right_shoulder", 45, 5.0)  # the arms' gesture is larger than any kick
    f[35:45, 3:9] += 4.0  # and so is turning round: the pelvis' own orientation
    return f


def test_peaks_are_the_actions_height_not_the_arms_or_a_turn():
    assert "right_knee" in PEAK_JOINTS and "spine1" in PEAK_JOINTS and "right_shoulder" not in PEAK_JOINTS
    f = kick_clip()
    assert action_peaks(f, FPS).tolist() == [20, 70]
    assert action_peaks(f, FPS, share=0.4).tolist() == [20, 70, 100], "a lower share takes the step too"
    g = f.clone()
    bump(g, "right_knee", 26, 0.99)  # a second top 6 frames after the first: the same kick
    assert len(action_peaks(g, FPS)) == 2
    assert len(action_peaks(torch.ones(30, 135), FPS)) == 0, "a clip that never moves has no peak"


def test_pieces_start_the_lead_before_each_peak_and_end_where_the_next_starts():
    f = kick_clip()
    lead = round(1.0 * FPS)
    pieces = one_off_pieces(f, FPS, 1.0)
    assert [p.shape[0] for p in pieces] == [70 - 20, 120 - (70 - lead)]
    assert torch.allclose(pieces[0][:, 0], f[20 - lead : 70 - lead, 0]), "the first piece: the clip's own frames"
    assert torch.allclose(pieces[1][:, 0], f[70 - lead :, 0]), "the second starts the lead before the second kick"
    for p in pieces:
        knee = 3 + 6 * JOINT_INDEX["right_knee"]
        assert int(p[:, knee].argmax()) == lead, "in every piece the kick is at its height the lead in"
        assert torch.count_nonzero(p[0, 1:3]) == 0, "canonicalised like a crop: no velocity at the first frame"
    assert [p.shape[0] for p in one_off_pieces(f, FPS, 1.0, min_frames=60)] == [120 - (70 - lead)], "short ones go"
    still = torch.ones(30, 135)
    assert len(one_off_pieces(still, FPS, 1.0)) == 1 and torch.equal(one_off_pieces(still, FPS, 1.0)[0], still)


def clip(f: torch.Tensor, content: str, action: str) -> dict:
    return {"features": f, "texts": [content], "weight": 1.0, "content": content, "action": action,
            "crop": lambda s, k, f=f: f[s : s + k]}  # fmt: skip


def test_the_batcher_cuts_the_named_contents_and_gives_them_the_share_asked():
    kick = kick_clip()
    others = [clip(torch.randn(40, 135, generator=torch.Generator().manual_seed(i)), "walk", f"walk{i}") for i in range(9)]
    clips = [clip(kick, "kick", "kick"), *others]
    base = dict(model={}, min_frames=6, max_frames=100, data_fps=FPS, action_balance=1.0)
    plain = ClipBatcher(clips, TrainConfig(**base), torch.Generator().manual_seed(0))
    assert len(plain.clips) == 10 and abs(float(plain.weights[0] / plain.weights.sum()) - 0.1) < 1e-6
    cut = ClipBatcher(clips, TrainConfig(**base, one_off_lead={"kick": 1.0}), torch.Generator().manual_seed(0))
    assert len(cut.clips) == 11 and [c["content"] for c in cut.clips[:2]] == ["kick", "kick"]
    assert abs(float(cut.weights[:2].sum() / cut.weights.sum()) - 0.1) < 1e-6, "the pieces share the action's draws"
    shared = ClipBatcher(clips, TrainConfig(**base, one_off_lead={"kick": 1.0}, one_off_share=0.5),
                         torch.Generator().manual_seed(0))  # fmt: skip
    w = shared.weights / shared.weights.sum()
    assert abs(float(w[:2].sum()) - 0.5) < 1e-6, "half the draws"
    assert torch.allclose(w[2:], torch.full((9,), 0.5 / 9)), "the others keep their weights relative to each other"
    texts, motion, mask, contents = shared.sample(400)
    lead = round(1.0 * FPS)
    knee = 3 + 6 * JOINT_INDEX["right_knee"]
    from_start = [m for m, c, n in zip(motion, contents, mask.sum(1)) if c == "kick" and n > lead]
    assert 150 < sum(c == "kick" for c in contents) < 250
    assert all(int(m[:, knee].argmax()) == lead for m in from_start), "a crop of a piece has the kick the lead in"
