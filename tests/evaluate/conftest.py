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


class StandInEvaluator:
    """A stand-in for the retrieval evaluator: a motion's embedding is its mean pelvis velocity and height spread,
    a text's is the start of its sentence embedding — enough to exercise scoring code, not to judge motions."""

    class cfg:
        max_frames = 40

    def embed_motions(self, joints, fps):
        out = [np.r_[np.diff(j[:, 0], axis=0).mean(0) * fps, j[:, :, 1].std(), j[:, 20:22].std()] for j in joints]
        return np.asarray(out, dtype=np.float64)

    def embed_texts(self, sentence_embeddings):
        return np.asarray(sentence_embeddings)[:, :5]


@pytest.fixture(scope="session")
def stand_in_evaluator():
    """:class:`StandInEvaluator`, for the test modules."""
    return StandInEvaluator()


@pytest.fixture(scope="session")
def synthetic_clips():
    """``make(splits, contents, fps, path)`` → (clips, embedder): clip i of the given split and content slides at
    0.1·i m/s with three evaluation phrasings, and the embedder gives each phrasing a fixed random vector."""
    from temos_blender.evaluate.clips import MotionClips

    def make(splits, contents, fps, path):
        records, joints = [], []
        for i, (split, content) in enumerate(zip(splits, contents)):
            records.append({"id": f"c{i}", "split": split, "mirrored": False, "content": content, "style": "",
                            "texts": [f"act {i}"],
                            "eval_texts": [f"a person does act {i}", f"act {i} is done", f"someone performs act {i}"]})  # fmt: skip
            joints.append(moving_rest_pose(30, velocity_mps=(0.1 * i, 0.0, 0.0)).astype(np.float32))
        rng = np.random.default_rng(0)
        table = {t: rng.normal(size=8) for r in records for t in r["eval_texts"]}

        def embedder(texts):
            return np.stack([table[t] for t in texts])

        return MotionClips(records, joints, fps=fps, data_version=0, path=path), embedder

    return make
