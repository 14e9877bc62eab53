"""The bundled model does what plain prompts ask — prompts phrased unlike any training description.

The prompts, lengths and checks are ``temos_blender/evaluate/behaviour.py``'s: each prompt is sampled with 5 seeds
(diversity 1, through the generator the add-on uses) and passes when at least 4 takes pass its check from
``temos_blender/evaluate/checks.py``. The checks themselves are shown fair on captured clips in
``tests/evaluate/test_checks.py``. Set ``TEMOS_BEHAVIOUR_MODEL`` to a model folder to test another model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from temos_blender.core.weights import BUNDLED_MODEL_ID, bundled_model_folder
from temos_blender.evaluate import behaviour

pytestmark = pytest.mark.slow


def _model_folder() -> Path | None:
    override = os.environ.get("TEMOS_BEHAVIOUR_MODEL")
    return Path(override) if override else bundled_model_folder()


@pytest.fixture(scope="module")
def measure():
    folder = _model_folder()
    if folder is None or not (folder / "config.json").is_file():
        pytest.skip(f"the bundled model vendor_models/{BUNDLED_MODEL_ID} is absent (train and export it: `make train`)")
    from temos_blender.core.generate import TemosGenerator

    return behaviour.TakeMeasurer(TemosGenerator.load(folder, device="cpu"))


def test_the_bundled_model_loads_through_the_normal_path():
    if bundled_model_folder() is None:
        pytest.skip(f"the bundled model vendor_models/{BUNDLED_MODEL_ID} is absent")
    from temos_blender.core.generate import TemosGenerator

    gen = TemosGenerator.load(device="cpu")
    assert gen.model_id == BUNDLED_MODEL_ID


@pytest.mark.parametrize("case", behaviour.BEHAVIOURS, ids=[b.name for b in behaviour.BEHAVIOURS])
def test_most_takes_do_what_the_prompt_asks(measure, case):
    measured = measure(case.prompt, case.duration_s)
    passed = behaviour.passing_takes(case, measured)
    detail = "; ".join(
        f"seed {i}: " + ", ".join(f"{k}={m[k]:.2f}" for k in case.shown) for i, m in enumerate(measured)
    )
    assert passed >= behaviour.MIN_PASSING, (
        f"{case.prompt!r} at {case.duration_s:g} s: {passed}/{behaviour.SEEDS} takes pass {case.check.__name__} ({detail})"
    )


def test_an_exhausted_walk_is_slower_than_an_energetic_walk(measure):
    holds, slow, fast = behaviour.slower_holds(measure)
    assert holds, f"exhausted {slow:.2f} m/s vs energetic {fast:.2f} m/s on average"


def test_every_prompt_of_the_issue_is_asked():
    """The prompts the model was asked to handle, each with its own check."""
    prompts = {(b.prompt, b.check.__name__) for b in behaviour.BEHAVIOURS}
    assert ("a person walks forward", "walks_forward") in prompts
    assert ("someone waves with their right hand", "raises_right_hand_only") in prompts
    assert ("a person raises both arms over the head", "raises_both_hands_over_head") in prompts
    assert ("a man walks and turns to the left", "turns_left") in prompts
    assert behaviour.SLOWER[:2] == ("an exhausted person walks", "an energetic person walks")
    assert len({b.name for b in behaviour.BEHAVIOURS}) == len(behaviour.BEHAVIOURS)
    assert np.all([b.duration_s >= 4.0 for b in behaviour.BEHAVIOURS])
