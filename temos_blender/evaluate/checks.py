"""Automatic checks of one take: does the motion do what a prompt asks? (numpy only)

:func:`measure` reads a take's joint positions (T, 22, 3) and returns plain numbers in the body's own frame at the
first frame (forward = where the body faces, left = the body's left); the checks compare them with thresholds. The
behaviour tests, the qualitative report and the model card use these same functions, and
``tests/evaluate/test_checks.py`` runs them on ground-truth clips of the data set to show the thresholds are fair.
"""

from __future__ import annotations

import numpy as np

from ..skeleton import JOINT_INDEX as J
from .kinematics import TOE_JOINTS, floor_height, foot_lead, heading, local_poses, root_speed_mps

STEP_HYSTERESIS_M = 0.05
"""The leading foot must lead by this much before a swap of feet is counted (no counting of jitter)."""


def foot_alternations(joints: np.ndarray) -> int:
    """How many times the leading foot changes: the feet's front–back offset along the body's current heading
    flips sign by more than :data:`STEP_HYSTERESIS_M`. A walk makes about two per second; standing, none."""
    state, flips = 0, 0
    for v in foot_lead(joints):
        new = 1 if v > STEP_HYSTERESIS_M else -1 if v < -STEP_HYSTERESIS_M else state
        if state and new != state:
            flips += 1
        state = new
    return flips


def measure(joints: np.ndarray, fps: float) -> dict[str, float]:
    """Numbers a prompt can be checked against (metres, degrees, m/s):

    ``forward_m`` / ``left_m``: pelvis displacement from the first to the last frame along the body's first-frame
    facing / its left; ``speed_mps``: mean horizontal pelvis speed along its path; ``heading_change_deg``: heading at
    the end (mean of the last 3 frames) minus the first frame's, positive = turned left; ``steps``:
    :func:`foot_alternations`; ``right_wrist_over_shoulder_m`` / ``left_…``: highest wrist height over the same
    side's shoulder, over the take; ``both_wrists_over_shoulders_m``: the same for the lower of the two at each
    frame; ``wrists_over_head_m``: highest height of the *lower* wrist over the head;
    ``pelvis_rise_m`` / ``pelvis_drop_m``: how far the pelvis goes above / below its first-frame height;
    ``head_drop_m``: how far the head goes below its first-frame height; ``right_ankle_lift_m`` / ``left_…``:
    highest ankle height above the clip's floor; ``airborne_s``: longest time both feet are over 10 cm up (the lower
    toe 10 cm over its median height in the take);
    ``right_wrist_speed_mps`` / ``left_…``: mean speed of the wrist relative to the pelvis, in the body's own frame;
    ``right_wrist_speed_raised_mps`` / ``left_…``: the same over the frames where that wrist is above its shoulder
    (0 when it never is) — the strokes of a wave, without the raise and the lowering.
    """
    joints = np.asarray(joints, np.float64)
    yaw = heading(joints)
    f0 = np.array([np.sin(yaw[0]), np.cos(yaw[0])])  # (x, z) facing at frame 0
    l0 = np.array([f0[1], -f0[0]])  # the body's left: facing +Z → left is +X
    disp = joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]]
    y = joints[..., 1]
    floor = floor_height(joints)
    local = local_poses(joints)  # (T, 21, 3): joint i is column i - 1
    step_speed = np.linalg.norm(np.diff(local, axis=0), axis=-1) * fps  # (T - 1, 21)
    wrist_speed = step_speed.mean(0) if len(joints) > 1 else np.zeros(21)

    def speed_while_raised(side: str) -> float:
        up = y[:, J[f"{side}_wrist"]] > y[:, J[f"{side}_shoulder"]]
        both = up[1:] & up[:-1]
        return float(step_speed[both, J[f"{side}_wrist"] - 1].mean()) if both.any() else 0.0

    # Both feet up: the lower toe more than 10 cm above its own usual height. Not above the take's lowest foot point:
    # a generated take whose feet sink in a crouch puts that 10 cm under the standing toes, and standing read as flight.
    lower_toe = (y[:, TOE_JOINTS] - floor).min(-1)
    feet_up = lower_toe - np.median(lower_toe) > 0.10
    longest, run = 0, 0
    for up in feet_up:
        run = run + 1 if up else 0
        longest = max(longest, run)
    return {
        "forward_m": float(disp @ f0),
        "left_m": float(disp @ l0),
        "speed_mps": root_speed_mps(joints, fps),
        "heading_change_deg": float(np.degrees(yaw[-3:].mean() - yaw[0])),
        "steps": float(foot_alternations(joints)),
        "right_wrist_over_shoulder_m": float((y[:, J["right_wrist"]] - y[:, J["right_shoulder"]]).max()),
        "left_wrist_over_shoulder_m": float((y[:, J["left_wrist"]] - y[:, J["left_shoulder"]]).max()),
        "both_wrists_over_shoulders_m": float(
            np.minimum(
                y[:, J["left_wrist"]] - y[:, J["left_shoulder"]], y[:, J["right_wrist"]] - y[:, J["right_shoulder"]]
            ).max()
        ),
        "wrists_over_head_m": float(
            (np.minimum(y[:, J["left_wrist"]], y[:, J["right_wrist"]]) - y[:, J["head"]]).max()
        ),
        "pelvis_rise_m": float(y[:, 0].max() - y[0, 0]),
        "pelvis_drop_m": float(y[0, 0] - y[:, 0].min()),
        "head_drop_m": float(y[0, J["head"]] - y[:, J["head"]].min()),
        "right_ankle_lift_m": float((y[:, J["right_ankle"]] - floor).max()),
        "left_ankle_lift_m": float((y[:, J["left_ankle"]] - floor).max()),
        "airborne_s": longest / fps,
        "right_wrist_speed_mps": float(wrist_speed[J["right_wrist"] - 1]),
        "left_wrist_speed_mps": float(wrist_speed[J["left_wrist"] - 1]),
        "right_wrist_speed_raised_mps": speed_while_raised("right"),
        "left_wrist_speed_raised_mps": speed_while_raised("left"),
    }


# Each check takes measure()'s dict and says whether the take does what its prompt asks.
def walks_forward(m: dict, min_forward_m: float = 1.0, min_steps: int = 3) -> bool:
    """The pelvis ends at least ``min_forward_m`` ahead, with at least ``min_steps`` swaps of the leading foot."""
    return m["forward_m"] >= min_forward_m and m["steps"] >= min_steps


def walks_backward(m: dict, min_back_m: float = 0.5) -> bool:
    return m["forward_m"] <= -min_back_m


def moves_right(m: dict, min_m: float = 0.5) -> bool:
    """The pelvis ends at least ``min_m`` to the body's right of where it started."""
    return m["left_m"] <= -min_m


def runs_forward(m: dict, min_speed_mps: float = 2.0) -> bool:
    """Faster than any walk in the data (walks: about 0.6–1.6 m/s), and ahead."""
    return m["speed_mps"] >= min_speed_mps and m["forward_m"] > 0


def turns_left(m: dict, min_deg: float = 45.0) -> bool:
    return m["heading_change_deg"] >= min_deg


def turns_right(m: dict, min_deg: float = 45.0) -> bool:
    return m["heading_change_deg"] <= -min_deg


def raises_right_hand_only(m: dict) -> bool:
    """The right wrist goes above the right shoulder; the left wrist stays below the left shoulder."""
    return m["right_wrist_over_shoulder_m"] > 0.0 and m["left_wrist_over_shoulder_m"] < 0.0


def waves_right_hand(m: dict, min_speed_mps: float = 0.3) -> bool:
    """:func:`raises_right_hand_only`, and the right hand keeps moving while it is up: a raised, held hand is not a
    wave, however fast it went up (captured waves stroke at about 0.5–1.8 m/s)."""
    return raises_right_hand_only(m) and m["right_wrist_speed_raised_mps"] >= min_speed_mps


def raises_left_hand_only(m: dict) -> bool:
    return m["left_wrist_over_shoulder_m"] > 0.0 and m["right_wrist_over_shoulder_m"] < 0.0


def waves_left_hand(m: dict, min_speed_mps: float = 0.3) -> bool:
    """:func:`raises_left_hand_only`, and the left hand keeps moving while it is up."""
    return raises_left_hand_only(m) and m["left_wrist_speed_raised_mps"] >= min_speed_mps


def raises_both_hands(m: dict) -> bool:
    """At some frame both wrists are above their shoulders."""
    return m["both_wrists_over_shoulders_m"] > 0.0


def raises_both_hands_over_head(m: dict) -> bool:
    """At some frame both wrists are above the head joint."""
    return m["wrists_over_head_m"] > 0.0


def stays_in_place(m: dict, max_m: float = 0.5) -> bool:
    return float(np.hypot(m["forward_m"], m["left_m"])) <= max_m


def bows(m: dict, min_head_drop_m: float = 0.2) -> bool:
    """The head goes down at least ``min_head_drop_m`` while the body stays in place."""
    return m["head_drop_m"] >= min_head_drop_m and stays_in_place(m)


def jumps(m: dict, min_air_s: float = 0.15) -> bool:
    """Both feet are more than 10 cm off the floor together for at least ``min_air_s``."""
    return m["airborne_s"] >= min_air_s


def kicks_right(m: dict, min_lift_m: float = 0.4) -> bool:
    """The right ankle rises at least ``min_lift_m`` above the floor (a step lifts it ~0.2 m)."""
    return m["right_ankle_lift_m"] >= min_lift_m


def sits_or_crouches(m: dict, min_drop_m: float = 0.3) -> bool:
    return m["pelvis_drop_m"] >= min_drop_m
