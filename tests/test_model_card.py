"""The bundled model's card states the numbers of the evaluation of the weights it ships with.

`make eval` rewrites `docs/evaluation.json` (and `docs/EVALUATION.md`, `docs/QUALITATIVE.md`); the card is written by
hand. These tests fail when the weights change and the evaluation or the card is not brought along.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "vendor_models" / "temos-cmu-kitml"
CARD = MODEL / "MODEL_CARD.md"
EVALUATION = ROOT / "docs" / "evaluation.json"

pytestmark = pytest.mark.skipif(not (MODEL / "model.safetensors").is_file(), reason="no bundled weights")

# card row (first cell starts with) → evaluation.json method
ROWS = {
    "ground truth": "ground_truth",
    "**this model, sampled takes (fact 1)**": "temos_fact1",
    "this model, mean latent (fact 0)": "temos_fact0",
    "nearest neighbour": "nearest_neighbour",
    "random training motion": "random",
}
# card column → (evaluation.json key, how the card writes it); "–" where the method has no such number
COLUMNS = {
    "R@1": ("R@1", lambda v: f"{100 * v:.1f}"),
    "R@3": ("R@3", lambda v: f"{100 * v:.1f}"),
    "FID ↓": ("FID", lambda v: f"{v:.3f}"),
    "MultiModality": ("MultiModality", lambda v: "0" if v == 0 else f"{v:.3f}"),
    "APE root (m)": ("APE_root", lambda v: "0" if abs(v) < 1e-9 else f"{v:.3f}"),  # the clips against themselves
    "APE local (m)": ("APE_local", lambda v: "0" if abs(v) < 1e-9 else f"{v:.3f}"),  # (float rounding: ~1e-21)
    "foot skating": ("skating_ratio", lambda v: f"{100 * v:.1f} %"),
    "jerk (m/s³)": ("jerk_mps3", lambda v: f"{v:.1f}"),
    "local joint speed": ("local_speed_mps", lambda v: f"{v:.3f} m/s"),
}


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of the text as rows of cells (the separator row left out)."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _table_with_header(first: str) -> list[list[str]]:
    found = [t for t in _tables(CARD.read_text(encoding="utf-8")) if t[0][0] == first]
    assert len(found) == 1, f"the card has one table whose first column is {first!r}"
    return found[0]


@pytest.fixture(scope="module")
def evaluation() -> dict:
    return json.loads(EVALUATION.read_text(encoding="utf-8"))


def test_the_evaluation_is_of_the_bundled_weights(evaluation):
    sha = hashlib.sha256((MODEL / "model.safetensors").read_bytes()).hexdigest()
    assert sha.startswith(evaluation["model"]["weights_sha256_16"]), "run `make eval` after changing the weights"


def test_the_cards_table_of_methods_is_the_evaluations(evaluation):
    header, *rows = _table_with_header("method")
    seen = set()
    for row in rows:
        method = next((m for start, m in ROWS.items() if row[0].startswith(start)), None)
        if method is None:
            continue  # the paper's row: other data, not measured here
        seen.add(method)
        numbers = evaluation["methods"][method]
        for column, cell in zip(header[1:], row[1:], strict=True):
            key, written = COLUMNS[column]
            expected = written(numbers[key]) if key in numbers else "–"
            assert cell.replace("*", "") == expected, f"{row[0]} / {column}: card {cell}, evaluation {expected}"
    assert seen == set(ROWS.values())


def test_the_card_states_the_sampled_against_mean_result_it_measured(evaluation):
    fact1, fact0 = evaluation["methods"]["temos_fact1"], evaluation["methods"]["temos_fact0"]
    card = " ".join(CARD.read_text(encoding="utf-8").split())
    draws = fact1["R@3_draws"]
    assert f"{100 * sum(draws) / len(draws):.1f} vs {100 * fact0['R@3']:.1f} % over {len(draws)} draws" in card
    paired = fact1["R@3_minus_fact0"]
    low, high = (f"{100 * x:+.1f}".replace("-", "−").lstrip("+") for x in paired["ci95"])
    assert f"{100 * paired['mean']:+.1f} points (95 % interval {low} to {high})".replace("-", "−").lstrip("+") in card
    if paired["mean"] <= 0:
        assert "do not beat the mean latent" in card, "the card says the goal is not met"
    real = evaluation["real_variety"]
    r3 = {k: f"{100 * v:.1f}" for k, v in real["R@3"].items()}
    assert (
        f"drawn at random; {real['prompts']} test prompts) reaches R@3 {r3['other_performance']} %, against "
        f"{r3['temos_fact0']} / {r3['temos_fact1']} % for fact 0 / fact 1 on the same prompts (the clips themselves: "
        f"{r3['ground_truth']} %)"
    ) in " ".join(card.split())


def test_the_cards_qualitative_table_is_the_evaluations(evaluation):
    header, *rows = _table_with_header("prompt")
    assert header == ["prompt", "from", "the check", "takes passing"]
    card = {row[0]: row for row in rows}
    measured = evaluation["qualitative"]
    assert list(card) == [q["prompt"] for q in measured]
    for q in measured:
        _, source, check, passing = card[q["prompt"]]
        assert source == ("test split" if q["source"].startswith("test") else "new")
        assert check == q["expectation"]
        assert passing == f"{q['passed']}/{len(q['takes'])}"
