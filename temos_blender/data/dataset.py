"""Torch access to the cached training set (:mod:`.build`): variable-length clips, random crops, masks, texts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from ..core.features import canonicalize_features
from .build import DEFAULT_FPS, cache_matches_features, ensure_built
from .processing import gait_phase_starts, phase_aligned_start


class MotionTextDataset(Dataset):
    """One split of the cache. An item is a dict: ``features`` (T, 135) float32 (normalised unless asked not to),
    ``text`` (str), ``length`` (int), ``id`` (str).

    path: the cache ``.npz`` (built when missing if None). split: ``train``, ``val`` or ``test``.
    max_frames: longer clips are cropped to this many frames — at a random start when ``random_crop``, else from
    the start. min_frames: shorter clips are left out. texts: ``"train"`` picks among the training phrasings,
    ``"eval"`` among the evaluation-only ones (val/test only: training clips' evaluation texts are never used).
    include_mirrored: keep the mirrored copies (training split only has them).
    align_gait_phase: crops of stepping motions start at one phase of the stride (the left foot swinging past the
    right, see :func:`.processing.gait_phase_starts`): the first such frame, or the one at or before a random start.
    Without it a walk's phase at frame 0 is random given its text (see ``TrainConfig.align_gait_phase``).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        split: str = "train",
        fps: float = DEFAULT_FPS,
        max_frames: int | None = None,
        min_frames: int = 1,
        random_crop: bool | None = None,
        texts: str = "train",
        include_mirrored: bool = True,
        normalize: bool = True,
        seed: int | None = None,
        align_gait_phase: bool = False,
    ):
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test; got {split!r}")
        if texts not in ("train", "eval"):
            raise ValueError(f"texts must be 'train' or 'eval'; got {texts!r}")
        if texts == "eval" and split == "train":
            raise ValueError("evaluation-only texts are for val/test; the training split uses texts='train'")
        path = Path(path) if path else ensure_built(fps)
        if not cache_matches_features(path):
            raise ValueError(
                f"{path} holds features of another layout than core.features computes now; "
                "rebuild it with `python -m temos_blender.data --force`"
            )
        index = json.loads(path.with_suffix(".json").read_text())
        arrays = np.load(path, allow_pickle=False)
        self.meta = index["meta"]
        self.fps = float(self.meta["fps"])
        self.mean = torch.from_numpy(arrays["mean"])
        self.std = torch.from_numpy(arrays["std"])
        self._features = arrays["features"]
        offsets = arrays["offsets"]
        self.max_frames = int(max_frames) if max_frames else int(round(10.0 * self.fps))
        self.random_crop = (split == "train") if random_crop is None else random_crop
        self.normalize = normalize
        self.text_key = "texts" if texts == "train" else "eval_texts"
        self.rng = np.random.default_rng(seed)
        self.align_gait_phase = align_gait_phase
        self.min_frames = max(1, int(min_frames))
        self._phase_starts: dict[int, np.ndarray] = {}
        self.clips = []
        for i, c in enumerate(index["clips"]):
            if c["split"] != split or (c["mirrored"] and not include_mirrored) or c["num_frames"] < min_frames:
                continue
            self.clips.append(dict(c, start=int(offsets[i]), stop=int(offsets[i + 1])))
        if not self.clips:
            raise ValueError(f"no clips in split {split!r} of {path}")

    def __len__(self) -> int:
        return len(self.clips)

    def normalise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def denormalise(self, features: torch.Tensor) -> torch.Tensor:
        return features * self.std + self.mean

    def __getitem__(self, i: int) -> dict:
        c = self.clips[i]
        total = c["stop"] - c["start"]
        offset = int(self.rng.integers(0, total - self.max_frames + 1)) if self.random_crop and total > self.max_frames else 0
        if self.align_gait_phase:
            if i not in self._phase_starts:
                self._phase_starts[i] = gait_phase_starts(self._features[c["start"] : c["stop"]], self.fps)
            phases = self._phase_starts[i]
            offset = phase_aligned_start(phases[phases <= total - self.min_frames], offset)
        start, n = c["start"] + offset, min(total - offset, self.max_frames)
        feats = torch.from_numpy(np.array(self._features[start : start + n]))
        if start != c["start"]:
            feats = canonicalize_features(feats)  # a later crop starts at its own heading and position
        if self.normalize:
            feats = self.normalise(feats)
        options = c[self.text_key]
        text = options[int(self.rng.integers(len(options)))] if self.random_crop else options[0]
        return {"features": feats, "text": text, "length": n, "id": c["id"]}

    def sample_weights(self) -> torch.Tensor:
        """Per-clip sampling weights (rare actions up; see ``build.sample_weights``); uniform outside train."""
        w = torch.tensor([c["sample_weight"] for c in self.clips], dtype=torch.double)
        return w if bool((w > 0).all()) else torch.ones(len(self.clips), dtype=torch.double)

    def weighted_sampler(self, num_samples: int | None = None, generator=None) -> WeightedRandomSampler:
        return WeightedRandomSampler(
            self.sample_weights(), num_samples or len(self), replacement=True, generator=generator
        )


def collate(batch: list[dict]) -> dict:
    """Pad to the longest item: ``features`` (B, T, 135), ``mask`` (B, T) bool (True = real frame),
    ``lengths`` (B,) long, ``texts`` list[str], ``ids`` list[str]."""
    lengths = torch.tensor([b["length"] for b in batch], dtype=torch.long)
    t_max = int(lengths.max())
    nfeats = batch[0]["features"].shape[-1]
    feats = torch.zeros(len(batch), t_max, nfeats, dtype=batch[0]["features"].dtype)
    for k, b in enumerate(batch):
        feats[k, : b["length"]] = b["features"]
    mask = torch.arange(t_max)[None, :] < lengths[:, None]
    return {"features": feats, "mask": mask, "lengths": lengths, "texts": [b["text"] for b in batch],
            "ids": [b["id"] for b in batch]}  # fmt: skip
