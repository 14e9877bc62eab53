"""Rotation conversions in numpy, shared by ``retarget`` and ``data`` (torch versions live in ``core``).

Quaternions are (w, x, y, z), unit length; matrices act on column vectors (``v' = R @ v``);
6-D rotations are the first two *rows* of the matrix, concatenated (PyTorch3D's ``matrix_to_rotation_6d``
after Zhou et al., CVPR 2019), the layout the official TEMOS features use. Angles are radians.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def quat_normalize(q: np.ndarray) -> np.ndarray:
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply b, then a)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz → (..., 3, 3)."""
    q = quat_normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )  # fmt: skip
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 4) wxyz with w ≥ 0 (numerically stable branch per element)."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cand = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
            np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], 1 - m00 + m11 - m22, m[..., 2, 1] + m[..., 1, 2]], -1),
            np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2], 1 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )  # fmt: skip
    diag = np.stack([m00 + m11 + m22, m00, m11, m22], -1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cand, best[..., None, None].repeat(4, -1), axis=-2)[..., 0, :]
    q = quat_normalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vector (axis × angle, rad) → (..., 3, 3) by Rodrigues' formula."""
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, _EPS)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    q = matrix_to_quat(m)
    sin_half = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(sin_half, q[..., :1])
    return q[..., 1:] / np.maximum(sin_half, _EPS) * angle


def euler_to_matrix(angles_rad: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic rotations in the given axis order, as BVH channels read: ``"ZXY"`` → Rz @ Rx @ Ry.

    angles_rad: (..., 3), the angles in the same order as ``order``.
    """
    out = None
    for k, axis in enumerate(order.upper()):
        aa = np.zeros(angles_rad.shape[:-1] + (3,))
        aa[..., "XYZ".index(axis)] = angles_rad[..., k]
        r = axis_angle_to_matrix(aa)
        out = r if out is None else out @ r
    return out


def matrix_to_6d(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) → (..., 6): first row then second row."""
    return np.concatenate([m[..., 0, :], m[..., 1, :]], axis=-1)


def rotation_6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """(..., 6) → (..., 3, 3) by Gram–Schmidt on the two rows."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), _EPS)
    b2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = b2 / np.maximum(np.linalg.norm(b2, axis=-1, keepdims=True), _EPS)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-2)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (..., 3, 3) taking direction ``a`` onto direction ``b`` (swing, no twist)."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), _EPS)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), _EPS)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True)
    # Opposite vectors: turn 180° about any axis perpendicular to a.
    fallback = np.cross(a, np.array([1.0, 0.0, 0.0]))
    fallback = np.where(np.linalg.norm(fallback, axis=-1, keepdims=True) < 1e-6, np.cross(a, np.array([0.0, 1.0, 0.0])), fallback)
    axis = np.where(sin < 1e-9, fallback, axis)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), _EPS)
    return axis_angle_to_matrix(axis * np.arctan2(sin, cos))


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Shortest-path spherical interpolation between unit quaternions; ``t`` broadcasts against (...)."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(theta)
    small = sin < 1e-6
    w0 = np.where(small, 1 - t, np.sin((1 - t) * theta) / np.where(small, 1.0, sin))
    w1 = np.where(small, t, np.sin(t * theta) / np.where(small, 1.0, sin))
    return quat_normalize(w0 * q0 + w1 * q1)


def _resample_frames(
    n_src: int, src_fps: float, dst_fps: float, n_dst: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source frame pairs (i0, i1) and blend weights of each output frame at ``dst_fps``.

    By default the output spans the same time as the input, first frame to last. With ``n_dst`` it has exactly
    that many frames; output frames past the last input frame hold it.
    """
    if n_dst is None:
        n_dst = int(np.floor((n_src - 1) / src_fps * dst_fps + 1e-6)) + 1
    t = np.minimum(np.arange(n_dst) / dst_fps * src_fps, n_src - 1)
    i0 = np.clip(np.floor(t).astype(int), 0, n_src - 1)
    i1 = np.clip(i0 + 1, 0, n_src - 1)
    return i0, i1, t - i0


def resample_rotations(quats: np.ndarray, src_fps: float, dst_fps: float, n_dst: int | None = None) -> np.ndarray:
    """Resample (T, ..., 4) quaternions from ``src_fps`` to ``dst_fps`` by slerp (frame count: see ``_resample_frames``)."""
    i0, i1, frac = _resample_frames(quats.shape[0], src_fps, dst_fps, n_dst)
    return quat_slerp(quats[i0], quats[i1], frac.reshape((-1,) + (1,) * (quats.ndim - 2)))


def resample_linear(values: np.ndarray, src_fps: float, dst_fps: float, n_dst: int | None = None) -> np.ndarray:
    """Resample (T, ...) values linearly, matching :func:`resample_rotations`' frame times."""
    i0, i1, frac = _resample_frames(values.shape[0], src_fps, dst_fps, n_dst)
    frac = frac.reshape((-1,) + (1,) * (values.ndim - 1))
    return values[i0] * (1 - frac) + values[i1] * frac
