"""Checkpoint selection: the rule, and reading a run folder."""

from __future__ import annotations

import json

import pytest

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
