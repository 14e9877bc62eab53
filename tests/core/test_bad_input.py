"""Requests a user (or a script) can get wrong: each is refused before any work with a message naming the field, or
accepted as ``GenerateRequest`` documents it. test_generate.py already covers "   ", duration 0, 0 takes and
diversity -1; this table covers the rest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from temos_blender.core.generate import GenerateRequest
from temos_blender.errors import PromptError

PROMPT = "a person walks forward and waves"
SEED_RULE = "Seed must be between 0 and 2147483647"


def _request(**changes) -> GenerateRequest:
    return GenerateRequest(**{"prompt": PROMPT, "duration_s": 1.0, "n_takes": 1, "seed": 3, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"prompt": ""}, "The prompt is empty", id="empty prompt"),
        pytest.param({"prompt": " \t\r\n \u3000 "}, "The prompt is empty", id="whitespace-only prompt"),
        pytest.param({"prompt": "\x00\x07\x1b\x7f\x9f"}, "The prompt is empty", id="control-characters-only prompt"),
        pytest.param({"prompt": None}, "The prompt must be text; got NoneType", id="prompt is None"),
        pytest.param({"duration_s": -2.0}, "Duration must be between 1 and 10 s; got -2", id="negative duration"),
        pytest.param({"duration_s": math.nan}, "Duration must be between 1 and 10 s; got nan", id="NaN duration"),
        pytest.param({"duration_s": math.inf}, "Duration must be between 1 and 10 s; got inf", id="infinite duration"),
        pytest.param({"duration_s": 1000.0}, "Duration must be between 1 and 10 s; got 1000", id="1000 s duration"),
        pytest.param({"duration_s": "2"}, "Duration must be a number; got '2'", id="duration as text"),
        pytest.param({"n_takes": 100}, "Number of takes must be between 1 and 16; got 100", id="100 takes"),
        pytest.param({"n_takes": -3}, "Number of takes must be between 1 and 16; got -3", id="negative takes"),
        pytest.param({"n_takes": 2.5}, "Number of takes must be a whole number; got 2.5", id="fractional takes"),
        pytest.param({"seed": -1}, f"{SEED_RULE}; got -1", id="negative seed"),
        pytest.param({"seed": 2**70}, f"{SEED_RULE}; got {2**70}", id="seed 2**70"),
        pytest.param({"seed": 1.5}, "Seed must be a whole number; got 1.5", id="fractional seed"),
        pytest.param({"diversity": -0.5}, "Diversity must be between 0 and 3; got -0.5", id="negative diversity"),
        pytest.param({"diversity": math.nan}, "Diversity must be between 0 and 3; got nan", id="NaN diversity"),
        pytest.param({"diversity": math.inf}, "Diversity must be between 0 and 3; got inf", id="infinite diversity"),
    ],
)
def test_unusable_request_is_refused_naming_the_field_before_any_work(generator, changes, message):
    stages = []
    with pytest.raises(PromptError) as err:
        generator.generate(_request(**changes), on_progress=lambda i, n, label: stages.append(label))
    assert err.value.message.startswith(message)
    assert stages == []


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        pytest.param([], "Number of takes must be between 1 and 16; got 0 seeds", id="no seeds"),
        pytest.param(list(range(17)), "Number of takes must be between 1 and 16; got 17 seeds", id="17 seeds"),
        pytest.param([5, -1], f"{SEED_RULE}; got -1", id="a negative seed"),
        pytest.param([2**70], f"{SEED_RULE}; got {2**70}", id="seed 2**70"),
        pytest.param([0.5], "Seed must be a whole number; got 0.5", id="fractional seed"),
    ],
)
def test_explicit_seed_lists_are_checked_like_the_request_seed(generator, seeds, message):
    with pytest.raises(PromptError) as err:
        generator.generate(_request(), seeds=seeds)
    assert err.value.message.startswith(message)


def _check_takes(takes, n: int, frames: int) -> None:
    assert len(takes) == n
    for take in takes:
        assert take.rotations.shape == (frames, 22, 4) and take.root_translation.shape == (frames, 3)
        assert np.isfinite(take.rotations).all() and np.isfinite(take.root_translation).all()
        np.testing.assert_allclose(np.linalg.norm(take.rotations, axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("a person dances 💃🕺 and waves 👋🏽", id="emoji"),
        pytest.param("💃", id="emoji only"),
        pytest.param("شخص يمشي إلى الأمام ويلوح", id="Arabic (right to left)"),
        pytest.param("אדם הולך קדימה ומנופף", id="Hebrew (right to left)"),
        pytest.param("\u200fא person walks\u200e forward", id="mixed with direction marks"),
    ],
)
def test_prompts_in_any_script_generate_takes_and_keep_their_text(generator, prompt):
    takes = generator.generate(_request(prompt=prompt, n_takes=2, duration_s=1.2))
    _check_takes(takes, 2, 15)  # 1.2 s at 12.5 fps
    assert all(t.prompt == prompt for t in takes)


def test_a_10_kb_prompt_works_and_only_its_first_tokens_count(generator):
    # Documented: the text model reads the first 128 tokens. Two 10 kB prompts alike for their first ~1000 words
    # but different after that give identical takes.
    head = "a person walks forward and then turns around " * 150  # ~1200 tokens, 6.6 kB
    long_a = head + "and jumps " * 400
    long_b = head + "and sits down " * 300
    assert len(long_a.encode()) >= 10_000 and len(long_b.encode()) >= 10_000
    a = generator.generate(_request(prompt=long_a))
    b = generator.generate(_request(prompt=long_b))
    _check_takes(a, 1, 12)
    assert a[0].prompt == long_a.strip()
    assert np.array_equal(a[0].rotations, b[0].rotations)
    assert np.array_equal(a[0].root_translation, b[0].root_translation)


def test_control_characters_in_a_prompt_count_as_spaces(generator):
    (dirty,) = generator.generate(_request(prompt="a person\x00walks\x07 forward\x1b\x1b and waves\x7f"))
    (clean,) = generator.generate(_request(prompt=PROMPT))
    assert dirty.prompt == PROMPT
    assert np.array_equal(dirty.rotations, clean.rotations)


def test_whole_numbers_of_any_numeric_type_are_accepted(generator):
    plain = generator.generate(_request(n_takes=2, seed=9))
    numpy_typed = generator.generate(
        _request(n_takes=np.int64(2), seed=np.int32(9), duration_s=np.float32(1.0), diversity=np.float64(1.0))
    )
    as_floats = generator.generate(_request(n_takes=2.0, seed=9.0))
    assert [t.seed for t in numpy_typed] == [t.seed for t in as_floats] == [9, 10]
    assert all(type(t.seed) is int for t in numpy_typed)
    for a, b in zip(plain, numpy_typed):
        assert np.array_equal(a.rotations, b.rotations)


def test_the_largest_seed_is_accepted(generator):
    (take,) = generator.generate(_request(seed=2**31 - 1))
    assert take.seed == 2**31 - 1
    _check_takes([take], 1, 12)
