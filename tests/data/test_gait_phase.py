"""Gait phase: stepping clips are cropped at one phase of the stride, whatever phase they were captured at."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from temos_blender.core.features import (
    canonicalize,
    canonicalize_features,
    features_to_smpl,
    mirror_smpl,
    smpl_to_features,
)
from temos_blender.data.processing import gait_phase_starts
from temos_blender.evaluate.kinematics import foot_lead
from temos_blender.rotations import axis_angle_to_matrix, matrix_to_quat
from temos_blender.skeleton import JOINT_INDEX, MIRROR_INDEX, forward_kinematics_np

FPS = 12.5
STRIDE_S = 1.1


def walk(seconds: float, phase: float, swing_rad: float = 0.45, mirrored: bool = False) -> torch.Tensor:
    """Features of a synthetic walk: the hips swing in antiphase, the pelvis moves forward at 1.3 m/s.
    ``phase`` (rad) is where in the stride the capture starts."""
    t = np.arange(round(seconds * FPS)) / FPS
    swing = swing_rad * np.sin(2 * np.pi * t / STRIDE_S + phase)
    aa = np.zeros((len(t), 22, 3))
    aa[:, JOINT_INDEX["left_hip"], 0] = -swing  # a negative turn about +X swings the leg forward (+Z)
    aa[:, JOINT_INDEX["right_hip"], 0] = swing
    rots = torch.from_numpy(axis_angle_to_matrix(aa))
    trans = torch.from_numpy(np.stack([0 * t, 0.9 + 0 * t, 1.3 * t], -1))
    if mirrored:
        rots, trans = mirror_smpl(rots, trans, MIRROR_INDEX)
    return smpl_to_features(*canonicalize(rots, trans))


def lead_of(features: torch.Tensor) -> np.ndarray:
    joints, _ = forward_kinematics_np(*(x.numpy() for x in features_to_smpl(features.double())))
    return foot_lead(joints)


@pytest.mark.parametrize("phase", [0.0, 1.0, 2.5, 4.0, 5.5])
@pytest.mark.parametrize("mirrored", [False, True])
def test_every_start_has_the_left_foot_just_passing_to_the_front_whatever_the_capture_phase(phase, mirrored):
    f = walk(6.0, phase, mirrored=mirrored)
    starts = gait_phase_starts(f, FPS)
    assert len(starts) >= 4, "a 6 s walk has about five strides"
    assert np.allclose(np.diff(starts), STRIDE_S * FPS, atol=1.01), "one start per stride"
    assert starts[0] <= 1.5 * STRIDE_S * FPS, "the first start comes once the right foot has led: within 1.5 strides"
    lead = lead_of(f)
    for s in starts:
        crop = lead_of(canonicalize_features(f[s:]))
        assert crop[0] > 0.12 and crop[1] > crop[0] - 1e-6, "the left foot leads and is still swinging forward"
        assert lead[s - 1] <= 0.12, "…and only just took the lead"


def test_motions_that_do_not_step_have_no_phase():
    still = walk(4.0, 0.0, swing_rad=0.0)
    shuffle = walk(4.0, 0.0, swing_rad=0.05)  # the feet never get 12 cm apart
    one_kick = walk(1.2, -np.pi / 2, swing_rad=0.8)[: round(0.6 * FPS)]  # a single swing, no stride
    for f in (still, shuffle, one_kick):
        assert len(gait_phase_starts(f, FPS)) == 0


def test_training_crops_of_walks_start_in_phase_and_other_clips_from_their_first_frame():
    from temos_blender.train import ClipBatcher, TrainConfig

    def clip(f: torch.Tensor) -> dict:
        f = f.float()
        return {"features": f, "texts": ["t"], "weight": 1.0,
                "crop": lambda s, n: f[:n] if s == 0 else canonicalize_features(f[s : s + n])}  # fmt: skip

    walks = [clip(walk(5.0, p, mirrored=m)) for p in (0.0, 2.0, 4.0) for m in (False, True)]
    long_walk = clip(walk(20.0, 1.0))  # longer than max_frames: a random start, then moved back to a phase
    still = clip(walk(3.0, 0.0, swing_rad=0.0) + torch.linspace(0, 1, round(3 * FPS))[:, None])
    cfg = TrainConfig(model={}, min_frames=6, max_frames=100, data_fps=FPS, align_gait_phase=True)
    batcher = ClipBatcher(walks + [long_walk, still], cfg, torch.Generator().manual_seed(0))
    _, x, mask, _ = batcher.sample(64)
    firsts = [lead_of(x[i, : int(mask[i].sum())])[:2] for i in range(len(x)) if not torch.equal(x[i, 0], still["features"][0])]
    assert len(firsts) > 40
    assert all(a > 0.12 and b >= a - 1e-6 for a, b in firsts), "every walk crop starts with the left foot swinging ahead"
    assert any(torch.equal(x[i, 0], still["features"][0]) for i in range(len(x))), "other clips start at frame 0"

    unaligned = ClipBatcher(walks, TrainConfig(model={}, min_frames=6, max_frames=100, data_fps=FPS),
                            torch.Generator().manual_seed(0))  # fmt: skip
    _, x, mask, _ = unaligned.sample(64)
    signs = {bool(lead_of(x[i, : int(mask[i].sum())])[0] > 0) for i in range(len(x))}
    assert signs == {True, False}, "without alignment a walk starts with either foot ahead"


def test_the_dataset_crops_walks_in_phase_when_asked(tmp_path):
    import json

    from temos_blender.data.dataset import MotionTextDataset

    clips = [walk(5.0, p, mirrored=m).float().numpy() for p in (0.0, 2.0, 4.0) for m in (False, True)]
    feats = np.concatenate(clips)
    offsets = np.cumsum([0] + [len(c) for c in clips])
    rots, root = features_to_smpl(torch.from_numpy(feats).double())  # the poses the features were made from
    path = tmp_path / "cache.npz"
    np.savez(path, features=feats, offsets=offsets, mean=feats.mean(0), std=feats.std(0) + 1e-3,
             rotations=matrix_to_quat(rots.numpy()), root_translation=root.numpy())  # fmt: skip
    records = [{"id": f"w{i}", "split": "train", "texts": ["a person walks"], "eval_texts": [], "mirrored": False,
                "num_frames": len(c), "sample_weight": 1.0} for i, c in enumerate(clips)]  # fmt: skip
    meta = {"fps": FPS, "features": "x"}
    path.with_suffix(".json").write_text(json.dumps({"meta": meta, "clips": records}))
    aligned = MotionTextDataset(path, normalize=False, min_frames=6, seed=0, align_gait_phase=True)
    plain = MotionTextDataset(path, normalize=False, min_frames=6, seed=0)
    assert all(lead_of(aligned[i]["features"])[0] > 0.12 for i in range(len(aligned)))
    assert {bool(lead_of(plain[i]["features"])[0] > 0) for i in range(len(plain))} == {True, False}
