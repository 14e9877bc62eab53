"""Procedural SMPL motions with known foot contacts, for tests, benchmarks and previews without a model.

:func:`walk` builds a straight walk by inverse kinematics: each foot is planted (flat, fixed in the world) for
``stance_fraction`` of the gait cycle and swings along an arc to its next plant otherwise; the pelvis moves at
constant speed and drops where a straight leg would not reach. Planted feet therefore do not slide at all.
:func:`with_root_speed` then scales the horizontal root motion, which is how a generated take typically goes
wrong (the body travels faster or slower than its steps), so the planted feet slide by a known amount.
"""

from __future__ import annotations

import numpy as np

from ..rotations import axis_angle_to_matrix, matrix_to_quat, rotation_between
from ..skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_OFFSETS_M, SMPL_REST_POSITIONS_M
from ..take import Take

_J = JOINT_INDEX


def _rot_x(angle: np.ndarray) -> np.ndarray:
    aa = np.zeros(np.shape(angle) + (3,))
    aa[..., 0] = angle
    return axis_angle_to_matrix(aa)


def _knee_flexion(thigh: np.ndarray, shin: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Knee angle κ ≥ 0 about SMPL's X axis so that |thigh + R_x(κ) shin| = reach (clamped to what the leg can do)."""
    k0 = thigh[0] * shin[0]
    alpha = thigh[1] * shin[1] + thigh[2] * shin[2]
    beta = thigh[2] * shin[1] - thigh[1] * shin[2]
    gamma = (reach**2 - thigh @ thigh - shin @ shin) / 2 - k0
    amplitude = np.hypot(alpha, beta)
    phi = np.arctan2(beta, alpha)
    kappa = phi + np.arccos(np.clip(gamma / amplitude, -1.0, 1.0))
    kappa = np.mod(kappa + np.pi, 2 * np.pi) - np.pi
    other = np.mod(2 * phi - kappa + np.pi, 2 * np.pi) - np.pi
    return np.where(kappa >= 0, kappa, other).clip(0.0, None)


def walk(
    duration_s: float = 4.0,
    fps: float = 20.0,
    speed_m_s: float = 1.0,
    cycle_s: float = 1.0,
    stance_fraction: float = 0.58,
    step_height_m: float = 0.08,
    arm_swing_rad: float = 0.35,
) -> Take:
    """A straight walk along +Z (SMPL space) whose planted feet stay exactly in place.

    One gait cycle (two steps) takes ``cycle_s``; each step is ``speed_m_s · cycle_s / 2`` long. The left foot
    starts its stance at t = 0, the right half a cycle later.
    """
    n = int(round(duration_s * fps))
    t = np.arange(n) / fps
    rest = SMPL_REST_POSITIONS_M
    stride = speed_m_s * cycle_s  # one foot moves this far per cycle
    leg_reach = 0.985 * (
        np.linalg.norm(SMPL_OFFSETS_M[_J["left_knee"]]) + np.linalg.norm(SMPL_OFFSETS_M[_J["left_ankle"]])
    )
    hip_drop = rest[_J["pelvis"], 1] - rest[_J["left_hip"], 1]

    local = np.broadcast_to(np.eye(3), (n, NUM_JOINTS, 3, 3)).copy()
    root = np.zeros((n, 3))
    root[:, 2] = speed_m_s * t

    # Foot plants and ankle targets (world), per side.
    ankle_target = {}
    for side, phase0 in (("left", 0.0), ("right", 0.5)):
        ankle_rest = rest[_J[f"{side}_ankle"]]
        phase = np.mod(t / cycle_s - phase0, 1.0)
        cycle_index = np.floor(t / cycle_s - phase0)
        # Plant k is where the pelvis is half-way through stance k.
        plant_z = speed_m_s * (cycle_index + phase0 + stance_fraction / 2) * cycle_s + ankle_rest[2]
        swing = phase >= stance_fraction
        s = np.clip((phase - stance_fraction) / (1 - stance_fraction), 0, 1)
        ease = 0.5 - 0.5 * np.cos(np.pi * s)
        z = np.where(swing, plant_z + ease * stride, plant_z)
        y = ankle_rest[1] + np.where(swing, step_height_m * np.sin(np.pi * s), 0.0)
        ankle_target[side] = np.stack([np.full(n, ankle_rest[0]), y, z], axis=-1)

    # Pelvis height: as high as nominal, lower where a planted leg would have to overstretch.
    height = np.full(n, rest[_J["pelvis"], 1] - 0.03)
    for side in ("left", "right"):
        hip_rest = rest[_J[f"{side}_hip"]]
        horizontal = np.hypot(
            ankle_target[side][:, 0] - hip_rest[0], ankle_target[side][:, 2] - (root[:, 2] + hip_rest[2])
        )
        reachable = np.sqrt(np.clip(leg_reach**2 - horizontal**2, 0, None)) + ankle_target[side][:, 1] + hip_drop
        height = np.minimum(height, reachable)
    root[:, 1] = height

    # Legs: knee flexion from the reach, then swing the thigh onto the target; feet stay flat.
    for side in ("left", "right"):
        hip_j, knee_j, ankle_j = _J[f"{side}_hip"], _J[f"{side}_knee"], _J[f"{side}_ankle"]
        hip_world = root + (rest[hip_j] - rest[_J["pelvis"]])
        to_target = ankle_target[side] - hip_world
        reach = np.minimum(np.linalg.norm(to_target, axis=-1), leg_reach)
        thigh, shin = SMPL_OFFSETS_M[knee_j], SMPL_OFFSETS_M[ankle_j]
        kappa = _knee_flexion(thigh, shin, reach)
        knee_local = _rot_x(kappa)
        leg_vec = thigh + np.einsum("tij,j->ti", knee_local, shin)
        hip_global = rotation_between(leg_vec, to_target)
        local[:, hip_j] = hip_global  # pelvis and spine are unrotated, so global == local here
        local[:, knee_j] = knee_local
        local[:, ankle_j] = np.swapaxes(hip_global @ knee_local, -1, -2)  # foot flat: global identity

    # Arms hang and swing against the legs; the chest turns a little against the pelvis.
    swing_phase = 2 * np.pi * t / cycle_s
    for side, sign in (("left", 1.0), ("right", -1.0)):
        down = axis_angle_to_matrix(np.array([0.0, 0.0, -sign * 1.2]))
        fore_aft = _rot_x(sign * arm_swing_rad * np.cos(swing_phase))
        local[:, _J[f"{side}_shoulder"]] = fore_aft @ down
        elbow_axis = np.array([0.0, -sign, 0.0])  # forearm bends forward (+Z)
        local[:, _J[f"{side}_elbow"]] = axis_angle_to_matrix(
            elbow_axis * (0.25 + 0.1 * (1 - np.cos(swing_phase)))[:, None]
        )
    local[:, _J["spine3"]] = axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]) * (0.06 * np.cos(swing_phase))[:, None])

    return Take(
        prompt=f"synthetic walk at {speed_m_s:.2f} m/s",
        seed=0,
        fps=float(fps),
        rotations=matrix_to_quat(local).astype(np.float32),
        root_translation=root.astype(np.float32),
        model_id="synthetic",
    )


def with_root_speed(take: Take, factor: float) -> Take:
    """The same take with its horizontal root motion scaled by ``factor`` (planted feet then slide)."""
    root = take.root_translation.astype(np.float64).copy()
    root[:, [0, 2]] = root[0, [0, 2]] + (root[:, [0, 2]] - root[0, [0, 2]]) * factor
    return Take(
        prompt=f"{take.prompt} (root speed × {factor:g})",
        seed=take.seed,
        fps=take.fps,
        rotations=take.rotations,
        root_translation=root.astype(np.float32),
        diversity=take.diversity,
        model_id=take.model_id,
    )
