"""Foot contacts: detect them, measure skating, and keep planted feet planted.

Detection (:func:`detect_contacts`) marks a foot point (ankle or toe) as in contact when it is near the ground
(height above the ground minus its standing height below ``height_threshold_m``) and slow (speed below
``speed_threshold_m_s``); contacts shorter than ``min_contact_s`` are dropped as noise.

The skating metric (:func:`skating_ratio`): of all contact frames, the fraction where the point has moved more than
``threshold_m`` horizontally from where it was planted (its position on the first frame of that contact).

The cleanup tools are used by :func:`temos_blender.retarget.retarget.retarget`'s ``clean_foot_contacts`` pass:
:func:`root_drift_correction` moves the root so that planted feet stop drifting together, :func:`plant_corrections`
gives the per-frame horizontal shift and turn that pin each foot to its plant, blended out after the contact, and
:func:`two_bone_ik` bends hip and knee so the ankle reaches the pinned target.
"""

from __future__ import annotations

import numpy as np

from ..rotations import axis_angle_to_matrix, rotation_between


def _horizontal(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    return v - np.sum(v * up, axis=-1, keepdims=True) * up


def _unit(up) -> np.ndarray:
    up = np.asarray(up, dtype=np.float64)
    return up / np.linalg.norm(up)


def contact_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(T,) bool → list of [start, stop) frame ranges where it is True."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def drop_short_runs(contacts: np.ndarray, min_frames: int) -> np.ndarray:
    """(T, ...) bool contacts with every run shorter than ``min_frames`` removed (each column on its own)."""
    out = np.array(contacts, dtype=bool)
    flat = out.reshape(out.shape[0], -1)
    for k in range(flat.shape[1]):
        for start, stop in contact_runs(flat[:, k]):
            if stop - start < min_frames:
                flat[start:stop, k] = False
    return flat.reshape(out.shape)


def estimate_ground_height(positions: np.ndarray, up=(0.0, 1.0, 0.0), rest_heights: np.ndarray | None = None) -> float:
    """Height of the ground under (T, P, 3) foot points: a low percentile of their heights (minus standing heights)."""
    heights = positions @ _unit(up)
    if rest_heights is not None:
        heights = heights - np.asarray(rest_heights)
    return float(np.percentile(heights.min(axis=1), 5.0))


def detect_contacts(
    positions: np.ndarray,
    fps: float,
    up=(0.0, 1.0, 0.0),
    rest_heights: np.ndarray | None = None,
    height_threshold_m: float = 0.05,
    speed_threshold_m_s: float = 0.5,
    ground_height_m: float | None = None,
    min_contact_s: float = 0.1,
) -> np.ndarray:
    """(T, P, 3) foot-point positions in metres → (T, P) bool contacts.

    up: the up direction of ``positions`` (SMPL space: +Y). rest_heights: (P,) height of each point above the ground
    when standing (an ankle sits higher than a toe); None: 0. ground_height_m: None estimates it from the clip.
    """
    positions = np.asarray(positions, dtype=np.float64)
    up = _unit(up)
    rest = np.zeros(positions.shape[1]) if rest_heights is None else np.asarray(rest_heights, dtype=np.float64)
    ground = estimate_ground_height(positions, up, rest) if ground_height_m is None else ground_height_m
    height = positions @ up - ground - rest  # (T, P)
    if positions.shape[0] > 1:
        speed = np.linalg.norm(np.gradient(positions, axis=0), axis=-1) * fps
    else:
        speed = np.zeros(positions.shape[:2])
    contacts = (height < height_threshold_m) & (speed < speed_threshold_m_s)
    return drop_short_runs(contacts, max(1, int(round(min_contact_s * fps))))


def skating_ratio(
    positions: np.ndarray,
    contacts: np.ndarray,
    fps: float,
    threshold_m: float = 0.02,
    up=(0.0, 1.0, 0.0),
    min_contact_s: float = 0.1,
) -> float:
    """Fraction of contact frames in which a planted foot point is more than ``threshold_m`` (horizontally) away
    from where it was planted, i.e. from its position on the first frame of that contact.

    positions: (T, P, 3) metres; contacts: (T, P) bool; contacts shorter than ``min_contact_s`` are not plants and
    are not counted. Returns 0.0 when there is no contact frame.
    """
    positions = np.asarray(positions, dtype=np.float64)
    up = _unit(up)
    contacts = drop_short_runs(contacts, max(1, int(round(min_contact_s * fps))))
    total = skating = 0
    for k in range(positions.shape[1]):
        for start, stop in contact_runs(contacts[:, k]):
            drift = np.linalg.norm(_horizontal(positions[start:stop, k] - positions[start, k], up), axis=-1)
            total += stop - start
            skating += int(np.sum(drift > threshold_m))
    return skating / total if total else 0.0


def root_drift_correction(points: np.ndarray, contacts: np.ndarray, up) -> np.ndarray:
    """(T, 3) horizontal root offsets that cancel the average drift of the planted points.

    points: (T, P, 3) foot points; contacts: (T, P). On each frame, the points planted on this frame and the one
    before move by the mean of their horizontal steps; the root moves the other way by that much, accumulated, so
    the body travels as far as its planted feet push it.
    """
    up = _unit(up)
    steps = _horizontal(np.diff(points, axis=0), up)  # (T-1, P, 3)
    both = contacts[1:] & contacts[:-1]  # (T-1, P)
    count = both.sum(axis=1, keepdims=True)
    mean = np.where(count > 0, (steps * both[..., None]).sum(axis=1) / np.maximum(count, 1), 0.0)
    offsets = np.zeros((points.shape[0], 3))
    offsets[1:] = -np.cumsum(mean, axis=0)
    return offsets


def plant_corrections(
    ankle: np.ndarray,
    toe: np.ndarray | None,
    ankle_contact: np.ndarray,
    toe_contact: np.ndarray | None,
    up,
    blend_frames: int,
) -> tuple[np.ndarray, np.ndarray]:
    """How to move one foot so its planted points stay where they were planted: ((T, 3) shift, (T,) yaw).

    The corrected foot is ``x' = R(yaw) (x − ankle) + ankle + shift``: turned about the up axis through the ankle,
    then shifted horizontally. While the toe is down it stays where it was planted; while the ankle is down too, the
    foot also keeps the heading it was planted with (it cannot spin on the spot), but it may still roll onto the ball
    (the ankle then moves as the heel lifts); while only the ankle is down (heel strike) the ankle stays put. A new
    contact or a change of pinned points keeps the correction continuous; after a contact it fades to zero over
    ``blend_frames``.
    """
    up = _unit(up)
    ankle = _horizontal(np.asarray(ankle, dtype=np.float64), up)  # only horizontal corrections are made
    toe = None if toe is None else _horizontal(np.asarray(toe, dtype=np.float64), up)
    n = ankle.shape[0]
    shifts, yaws = np.zeros((n, 3)), np.zeros(n)
    shift, yaw = np.zeros(3), 0.0
    mode = None
    plant_ankle = plant_toe = np.zeros(3)
    fade_shift, fade_yaw, since = np.zeros(3), 0.0, 0

    def turn(v: np.ndarray, angle: float) -> np.ndarray:
        return v * np.cos(angle) + np.cross(up, v) * np.sin(angle)  # v ⟂ up

    for t in range(n):
        toe_down = toe is not None and toe_contact is not None and bool(toe_contact[t])
        ankle_down = bool(ankle_contact[t])
        if ankle_down or toe_down:
            now = "both" if ankle_down and toe_down else ("toe" if toe_down else "ankle")
            if now != mode:  # pin where the current correction puts the points now
                plant_ankle = ankle[t] + shift
                if toe is not None:
                    plant_toe = ankle[t] + turn(toe[t] - ankle[t], yaw) + shift
                mode = now
            if mode == "both":
                have, want = toe[t] - ankle[t], plant_toe - plant_ankle
                yaw = float(np.arctan2(np.dot(up, np.cross(have, want)), np.dot(have, want)))
            if mode in ("both", "toe"):
                shift = plant_toe - ankle[t] - turn(toe[t] - ankle[t], yaw)
            else:
                shift = plant_ankle - ankle[t]
            since = 0
        else:
            if mode is not None:
                fade_shift, fade_yaw, since, mode = shift.copy(), yaw, 0, None
            since += 1
            weight = max(0.0, 1.0 - since / max(1, blend_frames))
            shift, yaw = fade_shift * weight, fade_yaw * weight
        shifts[t], yaws[t] = shift, yaw
    return shifts, yaws


def two_bone_ik(
    hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray, fallback_axis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic two-bone IK. All (T, 3) in one space; returns world rotations (R_thigh, R_shin), each (T, 3, 3).

    Left-multiply the thigh's world rotation by ``R_thigh`` and the shin's by ``R_shin``: the knee then bends (in its
    current bending plane; ``fallback_axis`` (3,) when the leg is straight) so the hip–ankle distance equals the
    hip–target distance, as far as the leg reaches, and the leg swings about the hip to point at the target.
    """
    u = knee - hip
    v = ankle - knee
    a = np.linalg.norm(u, axis=-1)
    b = np.linalg.norm(v, axis=-1)
    d = np.linalg.norm(target - hip, axis=-1)
    d = np.clip(d, np.abs(a - b) + 1e-6, (a + b) * (1 - 1e-6))
    cos_now = np.sum(u * v, axis=-1) / np.maximum(a * b, 1e-12)  # cos of the angle between u and v
    cos_want = (d * d - a * a - b * b) / np.maximum(2 * a * b, 1e-12)
    delta = np.arccos(np.clip(cos_want, -1, 1)) - np.arccos(np.clip(cos_now, -1, 1))
    axis = np.cross(u, v)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    axis = np.where(norm > 1e-9, axis / np.maximum(norm, 1e-12), np.broadcast_to(_unit(fallback_axis), axis.shape))
    r_bend = axis_angle_to_matrix(axis * delta[..., None])
    ankle_bent = knee + np.einsum("...ij,...j->...i", r_bend, v)
    r_swing = rotation_between(ankle_bent - hip, target - hip)
    return r_swing, r_swing @ r_bend
