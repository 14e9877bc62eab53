"""The retrieval evaluator: its loss, that it learns, that it round-trips through its cache; the report's helpers."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from temos_blender.evaluate.clips import MotionClips
from temos_blender.evaluate.evaluator import (
    EvaluatorConfig,
    cache_path,
    contrastive_loss,
    freeze_pose,
    load_evaluator,
    pose_speed,
    save_evaluator,
    train_evaluator,
)
from temos_blender.evaluate.run import TestItem as Prompt  # (a name pytest does not collect)
from temos_blender.evaluate.run import fit_length, other_performances, write_markdown

FPS = 12.5


def test_pairs_of_the_same_label_are_not_negatives():
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]), dim=-1)
    none = torch.zeros(3, 3, dtype=torch.bool)
    same = none.clone()
    same[0, 1] = same[1, 0] = True  # items 0 and 1 show the same thing
    assert contrastive_loss(emb, emb, same, 0.1) < contrastive_loss(emb, emb, none, 0.1)


def test_extra_negatives_close_to_a_text_raise_the_loss():
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    none = torch.zeros(2, 2, dtype=torch.bool)
    far = torch.nn.functional.normalize(torch.tensor([[-1.0, -1.0]]), dim=-1)
    near = torch.nn.functional.normalize(torch.tensor([[1.0, 0.05]]), dim=-1)
    base = contrastive_loss(emb, emb, none, 0.1)
    assert contrastive_loss(emb, emb, none, 0.1, far) == pytest.approx(base.item(), abs=1e-3)
    assert contrastive_loss(emb, emb, none, 0.1, near) > base + 0.1  # one text of two now has 2 near motions


def test_a_frozen_copy_holds_one_pose_and_keeps_or_stops_the_root(moving_rest_pose):
    from temos_blender.evaluate.kinematics import evaluator_inputs

    walk = moving_rest_pose(20, velocity_mps=(0.0, 0.0, 1.0))
    walk[:, 21, 1] += np.sin(np.arange(20))  # a moving wrist
    x = evaluator_inputs(walk, FPS)
    assert pose_speed(x) > 0.1
    travelling, standing = freeze_pose(x, 5, True), freeze_pose(x, 5, False)
    for f in (travelling, standing):
        assert np.all(f[:, :64] == x[5, :64]) and pose_speed(f) == 0.0
    assert np.all(travelling[:, 64:67] == x[:, 64:67]) and np.all(standing[:, 64:67] == 0.0)


class FixedSentences:
    """Stands in for the MiniLM embedder: a fixed random unit vector per text."""

    def training_texts(self, texts):
        out = []
        for t in texts:
            v = np.random.default_rng(zlib.crc32(t.encode())).standard_normal(384)  # hash() differs per process
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)


def synthetic_clips(moving_rest_pose) -> MotionClips:
    kinds = {
        "walk": ("A person walks forward.", lambda k: moving_rest_pose(30 + k, velocity_mps=(0, 0, 1.0 + 0.05 * k))),
        "turn": ("A person turns on the spot.", lambda k: moving_rest_pose(30 + k, yaw_rate_dps=60 + 5 * k)),
        "stand": ("A person stands still.", lambda k: moving_rest_pose(30 + k)),
        "back": ("A person walks backwards.", lambda k: moving_rest_pose(30 + k, velocity_mps=(0, 0, -0.8 - 0.05 * k))),
    }
    records, joints = [], []
    for content, (text, make) in kinds.items():
        for k in range(6):
            records.append({"id": f"{content}{k}", "split": "train", "content": content, "style": "normal",
                            "texts": [text], "eval_texts": [text], "mirrored": False, "sample_weight": 1.0})  # fmt: skip
            joints.append(make(k).astype(np.float32))
    return MotionClips(records, joints, FPS, 0, Path("synthetic"))


@pytest.fixture(scope="module")
def trained(moving_rest_pose):
    clips = synthetic_clips(moving_rest_pose)
    cfg = EvaluatorConfig(model_dim=32, ff_size=64, embed_dim=32, batch_size=8, steps=60, lr=3e-3, dropout=0.0)
    model, summary = train_evaluator(clips, cfg, FixedSentences(), progress=False)
    return clips, model, summary


def test_the_evaluator_learns_to_match_motions_to_their_texts(trained):
    clips, model, summary = trained
    motions = model.embed_motions(clips.joints, FPS)
    texts = model.embed_texts(FixedSentences().training_texts([r["texts"][0] for r in clips.records]))
    kinds = [r["content"] for r in clips.records]
    nearest = (motions @ np.unique(texts, axis=0).T).argmax(1)
    # every motion is closest to its own kind's text
    groups = {k: set(nearest[[i for i, x in enumerate(kinds) if x == k]]) for k in set(kinds)}
    assert all(len(g) == 1 for g in groups.values()) and len({min(g) for g in groups.values()}) == 4
    assert summary["train_clips"] == 24 and summary["labels"] == 4


def test_the_cached_evaluator_gives_the_same_embeddings(trained, tmp_path):
    clips, model, summary = trained
    path = cache_path(model.cfg, data_version=9, fps=FPS, cache_root=tmp_path)
    save_evaluator(model, path, summary)
    loaded, loaded_summary = load_evaluator(path)
    np.testing.assert_allclose(
        loaded.embed_motions(clips.joints, FPS), model.embed_motions(clips.joints, FPS), atol=1e-6
    )
    assert loaded_summary == summary and "v9_12.5fps_" in path.name


def test_the_cache_name_changes_with_the_configuration():
    assert EvaluatorConfig().key() != EvaluatorConfig(steps=801).key()


def test_fit_length_crops_or_holds_the_last_pose():
    clip = np.arange(5, dtype=float)[:, None, None] * np.ones((1, 22, 3))
    assert fit_length(clip, 3).shape == (3, 22, 3)
    held = fit_length(clip, 8)
    assert held.shape == (8, 22, 3) and np.all(held[4:] == 4.0)


def fake_results() -> dict:
    """A results dict as :func:`temos_blender.evaluate.run.evaluate` returns, with made-up numbers."""
    keys = ["R@1", "R@2", "R@3", "R_other_labels@1", "R_other_labels@2", "R_other_labels@3", "FID", "Diversity",
            "text_motion_distance", "skating_ratio", "jerk_mps3", "penetration_m", "local_speed_mps"]  # fmt: skip
    keys += [f"{a}_{k}" for a in ("APE", "AVE") for k in ("root", "traj", "local", "global")]
    r3 = {"ground_truth": 0.5, "temos_fact1": 0.48, "temos_fact0": 0.49, "nearest_neighbour": 0.55, "random": 0.1}
    methods = {m: {**dict.fromkeys(keys, 0.3), "R@3": v} for m, v in r3.items()}
    methods["temos_fact1"]["MultiModality"] = 0.2
    methods["temos_fact0"]["MultiModality"] = 0.0
    return {
        "date": "2026-01-01 12:00 UTC",
        "model": {"model_id": "m", "folder": "vendor_models/m", "weights_sha256_16": "0" * 16, "config": {}},
        "machine": {"cpu": "cpu", "logical_cpus": 2, "torch_threads": 2, "os": "os", "python": "3", "torch": "2"},
        "data": {
            "data_version": 1,
            "fps": 12.5,
            "test_clips": 10,
            "test_prompts": 30,
            "distinct_test_prompts": 30,
            "max_duration_s": 10.0,
            "labels": 5,
            "test_clips_cropped": 0,
            "same_label_share_of_other_prompts": 0.2,
        },  # fmt: skip
        "evaluator": {"config": EvaluatorConfig().__dict__, "training": {}},
        "methods": methods,
        "per_content_R_other_labels@3": {"walk": {"prompts": 30, **r3}},
        "nearest_neighbour_label_match": 0.5,
        "ground_truth_training_phrasings_R@3": 0.9,
        "seconds": {"total": 1.0},
    }


def test_the_report_states_the_75_percent_target_from_the_numbers(tmp_path):
    res = fake_results()
    write_markdown(res, tmp_path / "EVALUATION.md")
    text = (tmp_path / "EVALUATION.md").read_text()
    assert "96.0 % of the ground truth's (target ≥ 75 %: met)" in text
    assert "It beats random training motions" in text and "It does not beat the mean-latent sample" in text

    res["methods"]["temos_fact1"]["R@3"] = 0.2
    write_markdown(res, tmp_path / "EVALUATION.md")
    assert "(target ≥ 75 %: not met)" in (tmp_path / "EVALUATION.md").read_text()


@pytest.mark.parametrize(
    ("draws", "verdict"),
    [([0.50, 0.51, 0.52], "It beats the mean-latent sample"),
     ([0.48, 0.50, 0.51], "It ties with the mean-latent sample"),
     ([0.46, 0.47, 0.48], "It does not beat the mean-latent sample")],
)  # fmt: skip
def test_fact_1_beats_fact_0_only_when_every_independent_draw_does(tmp_path, draws, verdict):
    res = fake_results()  # fact 0: R@3 0.49
    res["methods"]["temos_fact1"]["R@3"] = draws[0]
    res["methods"]["temos_fact1"]["R@3_draws"] = draws
    write_markdown(res, tmp_path / "EVALUATION.md")
    text = (tmp_path / "EVALUATION.md").read_text()
    assert verdict in text
    assert f"over 3 independent draws of the fact-1 samples R@3 is {100 * np.mean(draws):.1f} ±" in text


def test_the_report_gives_the_paired_fact_1_minus_fact_0_difference_with_its_interval(tmp_path):
    res = fake_results()
    res["methods"]["temos_fact1"]["R@3_minus_fact0"] = {
        "mean": -0.005,
        "ci95": [-0.012, 0.002],
        "resampled": "test clips",
    }
    write_markdown(res, tmp_path / "EVALUATION.md")
    text = (tmp_path / "EVALUATION.md").read_text()
    assert (
        "fact 1 − fact 0 = -0.5 points, 95 % confidence interval -1.2 to +0.2 (bootstrap over the test clips)" in text
    )


def test_another_performance_is_a_training_clip_of_the_prompts_label_fitted_to_its_length(moving_rest_pose):
    clips = synthetic_clips(moving_rest_pose)
    clips.records[0]["split"] = "test"  # walk0 is the prompt's own clip: never its own "other performance"
    items = [
        Prompt(0, "A man walks.", 25, clips.label(0), "walk"),
        Prompt(0, "Someone dances.", 40, "dance/x", "dance"),
    ]
    kept, joints = other_performances(items, clips, seed=0)
    assert kept == [0]  # no training clip shows the dance: that prompt is left out
    assert joints[0].shape == (25, 22, 3)
    walks = [fit_length(clips.joints[i], 25) for i in range(1, 6)]
    assert any(np.array_equal(joints[0], w) for w in walks)


def test_the_report_compares_the_takes_with_real_variety(tmp_path):
    res = fake_results()
    res["real_variety"] = {
        "prompts": 28,
        "R@3": {"other_performance": 0.40, "ground_truth": 0.45, "temos_fact0": 0.52, "temos_fact1": 0.50},
    }
    write_markdown(res, tmp_path / "EVALUATION.md")
    text = (tmp_path / "EVALUATION.md").read_text()
    assert "(28 prompts whose label has one) — reaches R@3 = 40.0 % on those prompts (the ground truth 45.0 %" in text
    assert "fact 0 / fact 1 52.0 / 50.0 %): the evaluator ranks a text's typical motion above" in text
