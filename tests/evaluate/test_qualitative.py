"""The qualitative report and its preview sheets."""

from __future__ import annotations

import pytest

from temos_blender.core.weights import bundled_model_folder
from temos_blender.evaluate.qualitative import TAKES, qualitative_markdown, render_sheets

HEADER = {"model_id": "m", "sha256": "0123", "date": "2026-01-01", "seed": 0}


def _row(prompt, passed, sheet=None):
    row = {"prompt": prompt, "source": "new", "expectation": "x", "passed": passed,
           "takes": [{"seed": s, "pass": s < passed, "forward_m": 1.0} for s in range(TAKES)]}  # fmt: skip
    if sheet:
        row["sheet"] = sheet
    return row


def test_the_report_links_each_prompts_sheet_and_has_no_sheet_column_without_them():
    with_sheets = qualitative_markdown([_row("a", 3, "img/q/01.png"), _row("b", 0, "img/q/02.png")], HEADER)
    table = [line for line in with_sheets.splitlines() if line.startswith("|")]
    assert table[0].endswith("| verdict | sheet |") and table[1].count("---") == 8
    assert table[2].endswith("| works | [01.png](img/q/01.png) |")
    assert table[3].endswith("| fails | [02.png](img/q/02.png) |")
    without = qualitative_markdown([_row("a", 3)], HEADER)
    assert "sheet" not in without.splitlines()[next(i for i, x in enumerate(without.splitlines()) if x.startswith("|"))]


@pytest.mark.slow
@pytest.mark.timeout(600, method="thread")
def test_sheets_are_rendered_one_per_prompt_in_order_through_the_command_line(tmp_path):
    pytest.importorskip("bpy")
    model = bundled_model_folder()
    if model is None:
        pytest.skip("no bundled model")
    (tmp_path / "07.png").write_bytes(b"stale")
    sheets = render_sheets(["a person walks forward", "a person raises both arms"], tmp_path, model)
    assert [p.name for p in sheets] == ["01.png", "02.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in sheets)
    assert sheets[0].read_bytes() != sheets[1].read_bytes()
    assert not (tmp_path / "07.png").exists()  # an older, longer set leaves no stale sheets behind


def test_a_failing_command_line_is_an_error_that_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="could not be made"):
        render_sheets(["a person walks"], tmp_path / "sheets", tmp_path / "no-such-model")
    assert not (tmp_path / "sheets").exists()


def test_the_length_sweep_reports_every_prompt_at_every_length_as_measured_speeds():
    model = bundled_model_folder()
    if model is None:
        pytest.skip("no bundled model")
    from temos_blender.core.generate import TemosGenerator
    from temos_blender.evaluate.qualitative import LENGTH_PROMPTS, LENGTHS_S, run_lengths

    rows = run_lengths(TemosGenerator.load(model, device="cpu"))
    assert [(r["prompt"], r["key"]) for r in rows] == list(LENGTH_PROMPTS)
    walk = rows[0]["values"]
    assert list(walk) == [f"{x:g}" for x in LENGTHS_S] and all(len(v) == TAKES for v in walk.values())
    assert all(0.5 < s < 2.5 for v in walk.values() for s in v), "a walk moves at walking speed at every length"
    report = qualitative_markdown([_row("a", 3)], HEADER, rows).splitlines()
    header = report.index("| prompt | measured | " + " | ".join(f"{x:g} s" for x in LENGTHS_S) + " |")
    assert report[header + 2].startswith("| a person walks forward | speed | ")
    assert report[header + 2].count("|") == 3 + len(LENGTHS_S)
    assert report[header + 4].startswith("| someone waves with their right hand | R wrist speed up | ")
