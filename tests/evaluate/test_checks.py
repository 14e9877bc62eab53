"""The automatic checks: right on synthetic motions, and fair on the captured test clips of each action."""

from __future__ import annotations

import numpy as np
import pytest

from temos_blender.evaluate import checks
from temos_blender.skeleton import JOINT_INDEX

FPS = 12.5


def test_a_left_turn_measures_positive_heading_change(moving_rest_pose):
    m = checks.measure(moving_rest_pose(50, yaw_rate_dps=30), FPS)
    assert m["heading_change_deg"] == pytest.approx(30 * 48 / FPS, rel=0.02)  # last 3 frames averaged
    assert checks.turns_left(m) and not checks.turns_right(m)


def test_forward_and_left_are_the_bodys_own_directions(moving_rest_pose):
    # Facing +X (turned 90° left); moving along +X is forward, along −Z is to its left.
    m = checks.measure(moving_rest_pose(25, velocity_mps=(1.0, 0.0, -0.5), yaw0_deg=90), FPS)
    assert m["forward_m"] == pytest.approx(24 / FPS) and m["left_m"] == pytest.approx(0.5 * 24 / FPS)
    m = checks.measure(moving_rest_pose(25, velocity_mps=(0.0, 0.0, -1.0)), FPS)
    assert m["forward_m"] < -1 and checks.walks_backward(m)


def test_sliding_without_steps_is_not_a_walk(moving_rest_pose):
    m = checks.measure(moving_rest_pose(50, velocity_mps=(0.0, 0.0, 1.0)), FPS)
    assert m["forward_m"] > 3 and m["steps"] == 0
    assert not checks.walks_forward(m)


def _ballistic_jump(moving_rest_pose, apex_m: float, hang_s: float = 0.0) -> np.ndarray:
    """Stand 1 s, fly up ``apex_m`` and back in free fall (holding ``hang_s`` at the top), stand 1 s."""
    flight = 2 * np.sqrt(2 * apex_m / 9.81)
    t = np.arange(int(round((2 + flight + hang_s) * FPS))) / FPS - 1.0
    up = np.clip(t, 0, None)
    rising = np.minimum(up, flight / 2)
    falling = np.clip(up - flight / 2 - hang_s, 0, flight / 2)
    height = 9.81 * flight / 2 * rising - 9.81 / 2 * rising**2 - 9.81 / 2 * falling**2
    joints = moving_rest_pose(len(t))
    joints[..., 1] += np.where(t > 0, np.maximum(height, 0.0), 0.0)[:, None]
    return joints


def test_a_jump_is_measured_from_where_the_feet_stand_and_a_real_one_flies_as_long_as_its_height_allows(
    moving_rest_pose,
):
    from temos_blender.evaluate.compare import float_ratio

    jump = _ballistic_jump(moving_rest_pose, 0.45)
    m = checks.measure(jump, FPS)
    assert checks.jumps(m) and m["pelvis_rise_m"] == pytest.approx(0.45, abs=0.01)
    assert 0.75 <= float_ratio(m["airborne_s"], m["pelvis_rise_m"]) <= 1.0  # 10 cm of the flight is below the mark
    hang = checks.measure(_ballistic_jump(moving_rest_pose, 0.2, hang_s=0.5), FPS)
    assert float_ratio(hang["airborne_s"], hang["pelvis_rise_m"]) > 1.5, "feet up far longer than the height allows"
    # Feet that sink 11 cm in a crouch put the take's lowest foot point 11 cm under the standing toes: standing is
    # not flight, only the jump is.
    crouch = jump.copy()
    crouch[5:10, :, 1] -= 0.11
    m_crouch = checks.measure(crouch, FPS)
    assert m_crouch["airborne_s"] == pytest.approx(m["airborne_s"], abs=1 / FPS)
    stand = moving_rest_pose(50)
    stand[20:25, :, 1] -= 0.11
    assert checks.measure(stand, FPS)["airborne_s"] == 0.0


def test_alternating_feet_are_counted(moving_rest_pose):
    walk = moving_rest_pose(50, velocity_mps=(0.0, 0.0, 1.0))
    swing = 0.25 * np.sin(2 * np.pi * 1.0 * np.arange(50) / FPS)  # one stride a second: 2 swaps
    for joint, sign in (("left_foot", 1), ("left_ankle", 1), ("right_foot", -1), ("right_ankle", -1)):
        walk[:, JOINT_INDEX[joint], 2] += sign * swing
    m = checks.measure(walk, FPS)
    assert m["steps"] == 7  # sign changes of sin over 3.9 s
    assert checks.walks_forward(m)


def test_a_held_raised_hand_is_not_a_wave(moving_rest_pose):
    held = moving_rest_pose(30)
    held[:, JOINT_INDEX["right_wrist"], 1] += 0.3
    held[:, JOINT_INDEX["left_wrist"], 1] -= 0.5
    waving = held.copy()
    waving[:, JOINT_INDEX["right_wrist"], 0] += 0.15 * np.sin(2 * np.pi * 2.0 * np.arange(30) / FPS)  # 2 Hz
    assert checks.raises_right_hand_only(checks.measure(held, FPS))
    assert not checks.waves_right_hand(checks.measure(held, FPS))
    assert checks.waves_right_hand(checks.measure(waving, FPS))


def test_raised_right_wrist_is_seen_and_the_left_one_is_not(moving_rest_pose):
    pose = moving_rest_pose(10)
    pose[:, JOINT_INDEX["right_wrist"], 1] += 0.3  # T-pose wrists are level with the shoulders
    pose[:, JOINT_INDEX["left_wrist"], 1] -= 0.5
    m = checks.measure(pose, FPS)
    assert checks.raises_right_hand_only(m) and not checks.raises_left_hand_only(m)
    assert not checks.raises_both_hands_over_head(m)


# ------------------------------------------------------------------------------------------------ ground truth
def _pass_rate(test_clips, content: str, check, style: str | None = None, max_s: float = 10.0) -> tuple[float, int]:
    results = [
        check(checks.measure(j[: int(max_s * FPS)], FPS))
        for r, j in zip(test_clips.records, test_clips.joints)
        if r["source"] == "bandai" and r["content"] == content and (style is None or r["style"] == style)
    ]
    return float(np.mean(results)), len(results)


@pytest.mark.parametrize(
    ("content", "check", "min_rate"),
    [
        ("walk", checks.walks_forward, 0.9),
        ("run", checks.runs_forward, 0.8),
        ("walk-turn-left", checks.turns_left, 0.9),
        ("walk-turn-right", checks.turns_right, 0.9),
        ("wave-right-hand", checks.raises_right_hand_only, 0.7),
        ("wave-right-hand", checks.waves_right_hand, 0.7),
        ("wave-left-hand", checks.raises_left_hand_only, 0.7),
        ("wave-left-hand", checks.waves_left_hand, 0.7),
        ("raise-up-both-hands", checks.raises_both_hands, 0.8),
    ],
)
def test_checks_pass_on_captured_clips_of_their_action(test_clips, content, check, min_rate):
    rate, n = _pass_rate(test_clips, content, check)
    assert n >= 10, f"only {n} test clips of {content}"
    assert rate >= min_rate, f"{check.__name__} passes on {rate:.0%} of {n} captured {content} clips"


@pytest.mark.parametrize(
    ("content", "check"),
    [("walk-turn-left", checks.turns_right), ("walk-turn-right", checks.turns_left), ("wave-left-hand", checks.raises_right_hand_only),
     ("raise-up-left-hand", checks.raises_right_hand_only), ("walk", checks.turns_left)],
)  # fmt: skip
def test_checks_reject_captured_clips_of_another_action(test_clips, content, check):
    rate, n = _pass_rate(test_clips, content, check)
    assert rate <= 0.1, f"{check.__name__} passes on {rate:.0%} of {n} captured {content} clips"


def test_the_jump_check_passes_captured_jumps_and_not_walks_runs_or_bows():
    """Jumps exist only in the training split (rare actions stay wholly in training), so they are checked there."""
    from temos_blender.data.build import cache_stem, default_out_dir
    from temos_blender.evaluate.clips import load_motion_clips

    path = default_out_dir() / f"{cache_stem(FPS)}.npz"
    if not path.is_file():
        pytest.skip(f"the data cache {path.name} is not built (run `python -m temos_blender.data`)")
    clips = load_motion_clips(FPS, splits=("train",), path=path)
    rates: dict[str, list[bool]] = {}
    for r, j in zip(clips.records, clips.joints):
        kind = "jump" if "jump" in r["action"] or "hop" in r["action"] else r.get("content")
        if not r["mirrored"] and kind in ("jump", "walk", "run", "bow"):
            rates.setdefault(kind, []).append(checks.jumps(checks.measure(j, FPS)))
    assert len(rates["jump"]) >= 5 and np.mean(rates["jump"]) >= 0.8, rates["jump"]
    assert np.mean(rates["walk"]) <= 0.05 and np.mean(rates["bow"]) == 0
    assert np.mean(rates["run"]) <= 0.15, "a run's flight phase is mostly shorter than a jump's"


def test_exhausted_walks_are_slower_than_active_walks_in_the_data(test_clips):
    speeds = {
        style: [
            checks.measure(j, FPS)["speed_mps"]
            for r, j in zip(test_clips.records, test_clips.joints)
            if r["content"] == "walk" and r["style"] == style
        ]
        for style in ("exhausted", "active")
    }
    assert speeds["exhausted"] and speeds["active"]
    assert np.mean(speeds["exhausted"]) < np.mean(speeds["active"])
