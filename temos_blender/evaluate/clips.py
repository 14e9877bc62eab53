"""The data pipeline's cache (:mod:`temos_blender.data.build`) as joint positions per clip, for evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .kinematics import joints_from_quats

FREE_TEXT_CONTENT = frozenset({"kitml"})
"""Content names of sources whose texts describe one clip each (KIT-ML sentences), not a shared action label."""


@dataclass
class MotionClips:
    """Clips of some splits: the cache's clip records (id, split, content, style, texts, eval_texts, mirrored, …) and
    each clip's joint positions (T, 22, 3) float32 in metres, as stored (canonicalised, feet on y = 0)."""

    records: list[dict]
    joints: list[np.ndarray]
    fps: float
    data_version: int
    path: Path

    def __len__(self) -> int:
        return len(self.records)

    def label(self, i: int) -> str:
        """What a clip shows, as far as its texts can tell: ``content/style`` (a mirrored clip's content already names
        the mirrored side), or the clip's own id when its texts are free descriptions of that clip alone."""
        r = self.records[i]
        if not r.get("content") or r["content"] in FREE_TEXT_CONTENT:
            return r["id"]
        return f"{r['content']}/{r.get('style', '')}"


def load_motion_clips(
    fps: float, splits: tuple[str, ...] = ("train", "val", "test"), path: Path | None = None
) -> MotionClips:
    """Read (building it first when missing) the cache at ``fps`` and run forward kinematics for the clips of
    ``splits`` (the training split includes its mirrored copies)."""
    from ..data.build import ensure_built

    path = Path(path) if path else ensure_built(fps)
    index = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    with np.load(path, allow_pickle=False) as arrays:
        offsets = arrays["offsets"]
        keep = [i for i, rec in enumerate(index["clips"]) if rec["split"] in splits]
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in keep])
        quats = arrays["rotations"][rows]
        trans = arrays["root_translation"][rows]
    joints = joints_from_quats(quats, trans).astype(np.float32)
    bounds = np.cumsum([0] + [int(offsets[i + 1] - offsets[i]) for i in keep])
    return MotionClips(
        records=[index["clips"][i] for i in keep],
        joints=[joints[bounds[k] : bounds[k + 1]] for k in range(len(keep))],
        fps=float(index["meta"]["fps"]),
        data_version=int(index["meta"]["data_version"]),
        path=path,
    )
