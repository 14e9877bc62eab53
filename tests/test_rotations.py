"""The shared numpy rotation helpers: resampling keeps a take's timing."""

from __future__ import annotations

import numpy as np

from temos_blender.rotations import axis_angle_to_matrix, matrix_to_quat, resample_linear, resample_rotations


def _turning(n: int, fps: float) -> np.ndarray:
    """(n, 1, 4) quaternions turning about Y at 1 rad/s."""
    t = np.arange(n) / fps
    return matrix_to_quat(axis_angle_to_matrix(np.stack([0 * t, t, 0 * t], -1)))[:, None]


def _angle(q: np.ndarray) -> np.ndarray:
    return 2 * np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), np.abs(q[..., 0])) * np.sign(q[..., 0] * q[..., 2])


def test_resampling_keeps_the_span_from_first_to_last_frame_by_default():
    q = _turning(26, 12.5)  # 2 s from the first to the last frame
    out = resample_rotations(q, 12.5, 30.0)
    assert out.shape == (61, 1, 4)
    np.testing.assert_allclose(_angle(out[:, 0]), np.arange(61) / 30.0, atol=1e-6)  # slerp is exact on one axis


def test_resampling_to_a_frame_count_holds_the_last_pose_past_the_end():
    values = np.arange(25, dtype=float)[:, None]  # 25 frames at 12.5 fps: a 2 s take
    out = resample_linear(values, 12.5, 24.0, n_dst=48)
    assert out.shape == (48, 1)
    np.testing.assert_allclose(out[:47, 0], np.minimum(np.arange(47) / 24 * 12.5, 24), atol=1e-12)
    assert out[-1, 0] == 24.0
    q = resample_rotations(_turning(25, 12.5), 12.5, 24.0, n_dst=48)
    np.testing.assert_allclose(_angle(q[:, 0]), np.minimum(np.arange(48) / 24, 24 / 12.5), atol=1e-6)


def test_resampling_at_the_same_rate_returns_the_frames():
    q = _turning(10, 25.0)
    np.testing.assert_allclose(resample_rotations(q, 25.0, 25.0), q, atol=1e-12)
