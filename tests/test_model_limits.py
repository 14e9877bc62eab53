"""A model folder's limits.json turns a prompt the model was measured not to make into a warning."""

import json
import os
from pathlib import Path

import pytest

from temos_blender.model_limits import LIMITS_FILE, limit_warnings, load_limits, prompt_limits

BUNDLED = Path(__file__).resolve().parent.parent / "vendor_models" / "temos-cmu-kitml"


def _write(folder: Path, data) -> Path:
    path = folder / LIMITS_FILE
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _limits(*entries):
    return {"limits": [{"action": a, "words": w, "measured": m} for a, w, m in entries]}


def test_whole_words_in_any_case_name_a_limit_in_the_files_order(tmp_path):
    _write(tmp_path, _limits(("kicks", ["kick", "kicks"], "7 cm"), ("bows", ["Bow", "bows"], "6 cm")))
    limits = load_limits(tmp_path)

    assert [x.action for x in prompt_limits("Someone BOWS, then KICKS.", limits)] == ["kicks", "bows"]
    assert [x.action for x in prompt_limits("a person bow-kicks", limits)] == ["kicks", "bows"]
    assert prompt_limits("a kickboxer walks to the bowling alley", limits) == []  # parts of words do not count
    assert limit_warnings("someone kicks", tmp_path) == [
        "This model was measured not to make kicks (7 cm); the takes may leave it out."
    ]


def test_a_folder_without_the_file_has_no_limits(tmp_path):
    assert load_limits(tmp_path) == ()
    assert limit_warnings("someone kicks", tmp_path) == []
    assert limit_warnings("someone kicks", tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("{not json", "Expecting property name"),
        ({"limit": []}, "missing 'limits'"),
        ({"limits": [{"action": "kicks", "words": "kick", "measured": "7 cm"}]}, "'words' of 'kicks' must be a list"),
        ({"limits": [{"action": "kicks", "words": ["kick"]}]}, "missing 'measured'"),
        ({"limits": [{"action": 3, "words": ["kick"], "measured": "7 cm"}]}, "must be text"),
    ],
)
def test_a_bad_file_is_named_with_what_is_wrong_and_never_stops_generation(tmp_path, data, reason):
    path = _write(tmp_path, data)

    with pytest.raises(ValueError, match=f"Cannot read {path}") as e:
        load_limits(tmp_path)
    assert reason in str(e.value)
    assert limit_warnings("someone kicks", tmp_path) == [str(e.value)]  # a warning, not an exception


def test_an_edited_file_is_read_again(tmp_path):
    path = _write(tmp_path, _limits(("kicks", ["kick"], "7 cm")))
    assert limit_warnings("a kick", tmp_path)
    _write(tmp_path, _limits(("bows", ["bow"], "6 cm")))
    stamp = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))

    assert limit_warnings("a kick", tmp_path) == []
    assert limit_warnings("a bow", tmp_path)


@pytest.mark.parametrize(
    ("prompt", "action"),
    [
        ("someone kicks with the right leg", "kicks"),
        ("a person bows", "bows"),
        ("Someone bows politely.", "bows"),
        ("a person sits down", "sitting down"),
        ("a person hops", "hops"),
    ],
)
def test_the_bundled_model_flags_the_actions_its_card_lists_as_failing(prompt, action):
    assert [x.action for x in prompt_limits(prompt, load_limits(BUNDLED))] == [action]


def test_the_bundled_model_flags_none_of_its_behaviour_and_working_qualitative_prompts():
    from temos_blender.evaluate.behaviour import BEHAVIOURS
    from temos_blender.evaluate.qualitative import NEW_PROMPTS

    failing = {"someone kicks with the right leg", "a person bows", "a person sits down"}
    prompts = {b.prompt for b in BEHAVIOURS} | {p for p, _ in NEW_PROMPTS if p not in failing}
    assert len(prompts) >= 10
    assert {p: limit_warnings(p, BUNDLED) for p in prompts if limit_warnings(p, BUNDLED)} == {}
