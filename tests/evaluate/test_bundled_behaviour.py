"""The bundled model does what plain prompts ask — prompts phrased unlike any training description.

Each prompt is sampled with 5 seeds (diversity 1, through the generator the add-on uses) and passes when at least 4
takes pass the check from ``temos_blender/evaluate/checks.py``. The checks themselves are shown fair on captured
clips in ``tests/evaluate/test_checks.py``. Set ``TEMOS_BEHAVIOUR_MODEL`` to a model folder to test another model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from temos_blender.core.weights import BUNDLED_MODEL_ID, bundled_model_folder
from temos_blender.evaluate import checks
from temos_blender.evaluate.kinematics import joints_from_take

pytestmark = pytest.mark.slow

SEEDS = 5
MIN_PASSING = 4


def _model_folder() -> Path | None:
    override = os.environ.get("TEMOS_BEHAVIOUR_MODEL")
    return Path(override) if override else bundled_model_folder()


@pytest.fixture(scope="module")
def generator():
    folder = _model_folder()
    if folder is None or not (folder / "config.json").is_file():
        pytest.skip(f"the bundled model vendor_models/{BUNDLED_MODEL_ID} is absent (train and export it: `make train`)")
    from temos_blender.core.generate import TemosGenerator

    return TemosGenerator.load(folder, device="cpu")


_MEASURED: dict[tuple[str, float], list[dict]] = {}


def measured_takes(generator, prompt: str, duration_s: float) -> list[dict]:
    """checks.measure() of the takes of seeds 0–4 (made once per prompt and duration)."""
    from temos_blender.core.generate import GenerateRequest

    key = (prompt, duration_s)
    if key not in _MEASURED:
        takes = generator.generate(GenerateRequest(prompt, duration_s=duration_s, n_takes=SEEDS, seed=0))
        _MEASURED[key] = [checks.measure(joints_from_take(t), t.fps) for t in takes]
    return _MEASURED[key]


def assert_most_pass(prompt: str, measured: list[dict], check, shown: tuple[str, ...]) -> None:
    passed = [bool(check(m)) for m in measured]
    detail = "; ".join(f"seed {i}: " + ", ".join(f"{k}={m[k]:.2f}" for k in shown) for i, m in enumerate(measured))
    assert sum(passed) >= MIN_PASSING, f"{prompt!r}: {sum(passed)}/{SEEDS} takes pass {check.__name__} ({detail})"


def test_the_bundled_model_loads_through_the_normal_path():
    if bundled_model_folder() is None:
        pytest.skip(f"the bundled model vendor_models/{BUNDLED_MODEL_ID} is absent")
    from temos_blender.core.generate import TemosGenerator

    gen = TemosGenerator.load(device="cpu")
    assert gen.model_id == BUNDLED_MODEL_ID


def test_walking_forward_moves_the_root_a_metre_in_four_seconds_with_alternating_feet(generator):
    prompt = "a person walks forward"
    assert_most_pass(prompt, measured_takes(generator, prompt, 4.0), checks.walks_forward, ("forward_m", "steps"))


def test_waving_the_right_hand_lifts_the_right_wrist_over_the_shoulder_and_not_the_left(generator):
    prompt = "someone waves with their right hand"
    assert_most_pass(
        prompt, measured_takes(generator, prompt, 4.0), checks.raises_right_hand_only,
        ("right_wrist_over_shoulder_m", "left_wrist_over_shoulder_m"),
    )  # fmt: skip


def test_waving_the_right_hand_keeps_the_hand_moving_while_it_is_up(generator):
    # The wrist check above passes on a held pose too; a wave strokes while the hand is up.
    prompt = "someone waves with their right hand"
    assert_most_pass(
        prompt, measured_takes(generator, prompt, 4.0), checks.waves_right_hand,
        ("right_wrist_over_shoulder_m", "right_wrist_speed_raised_mps"),
    )  # fmt: skip


def test_raising_both_arms_over_the_head_puts_both_wrists_above_the_head(generator):
    prompt = "a person raises both arms over the head"
    assert_most_pass(
        prompt, measured_takes(generator, prompt, 4.0), checks.raises_both_hands_over_head, ("wrists_over_head_m",)
    )


def test_walking_and_turning_left_turns_the_heading_left_by_45_degrees(generator):
    prompt = "a man walks and turns to the left"
    assert_most_pass(
        prompt, measured_takes(generator, prompt, 5.0), checks.turns_left, ("heading_change_deg", "forward_m")
    )


def test_an_exhausted_walk_is_slower_than_an_energetic_walk(generator):
    slow = [m["speed_mps"] for m in measured_takes(generator, "an exhausted person walks", 5.0)]
    fast = [m["speed_mps"] for m in measured_takes(generator, "an energetic person walks", 5.0)]
    assert np.mean(slow) < np.mean(fast), f"exhausted {np.round(slow, 2)} m/s vs energetic {np.round(fast, 2)} m/s"


def test_running_forward_moves_at_two_metres_per_second(generator):
    prompt = "a person runs forward"
    assert_most_pass(prompt, measured_takes(generator, prompt, 5.0), checks.runs_forward, ("speed_mps", "forward_m"))


def test_a_long_run_is_still_a_run(generator):
    """Captured runs last 3.4 s on average; 8 s asks for more than any but a few of them show."""
    prompt = "a person runs forward"
    assert_most_pass(prompt, measured_takes(generator, prompt, 8.0), checks.runs_forward, ("speed_mps", "forward_m"))


def test_leaping_into_the_air_leaves_the_floor(generator):
    """Jumps are a few dozen training clips; none of their texts says "into the air" (in training "leaps" goes forward
    with both feet, or with a spin)."""
    prompt = "someone leaps into the air"
    assert_most_pass(prompt, measured_takes(generator, prompt, 4.0), checks.jumps, ("airborne_s", "pelvis_rise_m"))


def test_a_long_wave_still_strokes(generator):
    """The captured waves that last 8 s are the slow performers'; without lengthened fast waves in training an 8 s
    request got a raised, held hand (0.09–0.14 m/s while up). Asked here: the hand over the shoulder and moving at
    0.2 m/s or more while it is up (a 4 s wave makes about 0.6, the captured ones 0.5–1.8)."""
    prompt = "someone waves with their right hand"

    def waves_slowly_at_least(m: dict) -> bool:
        return checks.waves_right_hand(m, min_speed_mps=0.2)

    assert_most_pass(
        prompt, measured_takes(generator, prompt, 8.0), waves_slowly_at_least,
        ("right_wrist_over_shoulder_m", "right_wrist_speed_raised_mps"),
    )  # fmt: skip
