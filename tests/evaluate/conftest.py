"""Fixtures for the evaluation tests: synthetic motions on the shared skeleton, the data cache's test clips."""

from __future__ import annotations

import numpy as np
import pytest

from temos_blender.evaluate.kinematics import yaw_rotation
from temos_blender.skeleton import SMPL_REST_POSITIONS_M

FPS = 12.5


def moving_rest_pose(
    frames: int, velocity_mps=(0.0, 0.0, 0.0), yaw_rate_dps: float = 0.0, yaw0_deg: float = 0.0
) -> np.ndarray:
    """(T, 22, 3): the rest pose (feet on the ground) carried along at a constant velocity, turning at a constant
    rate about its pelvis; turning positive = to the left."""
    t = np.arange(frames) / FPS
    rest = SMPL_REST_POSITIONS_M - SMPL_REST_POSITIONS_M[0] * np.array([1.0, 0.0, 1.0])  # pelvis over the origin
    yaw = np.radians(yaw0_deg + yaw_rate_dps * t)
    joints = np.einsum("tij,kj->tki", yaw_rotation(yaw), rest)
    return joints + t[:, None, None] * np.asarray(velocity_mps)[None, None, :]


@pytest.fixture(name="moving_rest_pose", scope="session")
def moving_rest_pose_fixture():
    """:func:`moving_rest_pose`, for the test modules (which cannot import this file)."""
    return moving_rest_pose


@pytest.fixture(scope="session")
def test_clips():
    """The test split of the data cache at 12.5 fps, or a skip saying how to build it."""
    from temos_blender.data.build import cache_stem, default_out_dir
    from temos_blender.evaluate.clips import load_motion_clips

    path = default_out_dir() / f"{cache_stem(FPS)}.npz"
    if not path.is_file():
        pytest.skip(f"the data cache {path.name} is not built (run `python -m temos_blender.data`)")
    return load_motion_clips(FPS, splits=("test",), path=path)
