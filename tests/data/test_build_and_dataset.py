"""The cache builder and the torch Dataset, on a handful of real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from temos_blender.data.build import assign_splits, build
from temos_blender.data.dataset import MotionTextDataset, collate

KEEP = {
    "dataset-2_walk_normal_001", "dataset-2_walk_normal_002", "dataset-2_wave-right-hand_normal_001",
    "dataset-1_kick_normal_001", "dataset-1_bow_happy_001", "dataset-1_dash_normal_001",
}  # fmt: skip


@pytest.fixture(scope="module")
def small_cache(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache")
    return build(12.5, data_dir=data_dir, out_dir=out, workers=1, clip_filter=lambda cid: cid in KEEP)


def test_cache_holds_clips_texts_splits_and_train_only_statistics(small_cache):
    index = json.loads(small_cache.with_suffix(".json").read_text())
    arrays = np.load(small_cache, allow_pickle=False)
    clips = index["clips"]
    assert {r["file"] for r in index["meta"]["rejected"]} >= {"dataset-1_dash_normal_001.bvh.gz"}  # 0.63 s: too short
    originals = [c for c in clips if not c["mirrored"]]
    assert {c["id"] for c in originals} == KEEP - {"dataset-1_dash_normal_001"}
    assert all(c["split"] == "train" for c in clips if c["mirrored"])
    assert len(arrays["offsets"]) == len(clips) + 1 and arrays["offsets"][-1] == len(arrays["features"])
    assert arrays["features"].shape[1] == 135 and arrays["rotations"].shape[1:] == (22, 4)
    train_rows = np.concatenate(
        [
            np.arange(arrays["offsets"][i], arrays["offsets"][i + 1])
            for i, c in enumerate(clips)
            if c["split"] == "train"
        ]
    )
    f = arrays["features"][train_rows].astype(np.float64)
    assert np.allclose(arrays["mean"], f.mean(0), atol=1e-5)
    assert np.allclose(arrays["std"], np.maximum(f.std(0), 1e-3), atol=1e-5)
    mirror = next(c for c in clips if c["id"] == "dataset-2_wave-right-hand_normal_001_mirror")
    assert mirror["content"] == "wave-left-hand" and all("left" in t for t in mirror["texts"])


def test_splits_are_deterministic_stratified_and_roughly_85_5_10():
    items = [
        (f"clip_{g}_{i}.bvh.gz", ("src", f"content{g}", "style"), f"src:content{g}")
        for g in range(5)
        for i in range(40)
    ]
    a, b = assign_splits(items), assign_splits(list(reversed(items)))
    assert a == b
    for g in range(5):
        group = [a[n] for n, grp, _ in items if grp[1] == f"content{g}"]
        assert group.count("test") == 4 and group.count("val") == 2


def test_an_action_with_few_clips_stays_wholly_in_training():
    items = [(f"rare_{i}.txt.gz", ("src", "cartwheel", "unstyled"), "src:cartwheel") for i in range(9)]
    items += [(f"common_{i}.bvh.gz", ("src", "walk", f"style{i % 8}"), "src:walk") for i in range(80)]
    splits = assign_splits(items)
    assert all(splits[f"rare_{i}.txt.gz"] == "train" for i in range(9))
    common = [splits[f"common_{i}.bvh.gz"] for i in range(80)]
    assert "test" in common and common.count("train") > 55


def test_dataset_crops_pads_masks_and_gives_texts(small_cache):
    ds = MotionTextDataset(small_cache, split="train", max_frames=40, seed=0)
    assert len(ds) >= 2
    lengths = [ds[i]["length"] for i in range(len(ds))]
    assert max(lengths) == 40  # the 9 s walk is cropped to 40 frames
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["features"].shape == (len(ds), 40, 135)
    assert torch.equal(batch["mask"].sum(1), batch["lengths"])
    assert torch.all(batch["features"][~batch["mask"]] == 0)
    assert all(isinstance(t, str) and t.endswith(".") for t in batch["texts"])
    fixed = MotionTextDataset(small_cache, split="train", max_frames=40, random_crop=False)
    raw = MotionTextDataset(small_cache, split="train", max_frames=40, random_crop=False, normalize=False)
    assert torch.allclose(fixed.denormalise(fixed[0]["features"]), raw[0]["features"], atol=1e-5)


def test_random_crops_start_at_the_origin_facing_forward_like_whole_clips(small_cache):
    from temos_blender.core.features import features_to_smpl, heading_of

    ds = MotionTextDataset(small_cache, split="train", max_frames=20, seed=3, normalize=False)
    longest = max(range(len(ds)), key=lambda i: ds.clips[i]["stop"] - ds.clips[i]["start"])
    for _ in range(5):  # several random starts inside the longest clip
        crop = ds[longest]["features"].double()
        rots, _ = features_to_smpl(crop)
        assert abs(float(heading_of(rots[0, 0]))) < 1e-4
        assert torch.all(crop[0, 1:3] == 0)


def test_evaluation_texts_are_refused_on_the_training_split(small_cache):
    with pytest.raises(ValueError, match="val/test"):
        MotionTextDataset(small_cache, split="train", texts="eval")


def test_weighted_sampler_draws_rare_actions_more_often_per_clip(small_cache):
    ds = MotionTextDataset(small_cache, split="train")
    w = ds.sample_weights()
    by_action = {}
    for c, wi in zip(ds.clips, w.tolist()):
        by_action.setdefault(c["action"], set()).add(round(wi, 9))
    counts = {a: sum(c["action"] == a for c in ds.clips) for a in by_action}
    rare, common = min(counts, key=counts.get), max(counts, key=counts.get)
    if counts[rare] < counts[common]:
        assert max(by_action[rare]) > max(by_action[common])
