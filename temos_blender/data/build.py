"""Build the cached training set: every source clip → SMPL-22 at the model's fps, texts, splits, TEMOS features.

Output, in ``<out_dir>`` (default ``.cache/data`` under the repository root), named by :data:`DATA_VERSION` and fps:

- ``temos_data_v{N}_{fps}fps.npz`` (numpy ``savez``, no pickle): ``features`` (F, 135) float32 unnormalised,
  ``rotations`` (F, 22, 4) float32 local wxyz, ``root_translation`` (F, 3) float32 metres, ``offsets`` (C + 1,) int64
  (clip ``i`` is rows ``offsets[i]:offsets[i+1]``), ``mean`` / ``std`` (135,) float32 from the train split only.
- ``temos_data_v{N}_{fps}fps.json``: ``meta`` (version, fps, counts, std floor, seed, rejected clips with reasons)
  and ``clips``: one record per clip in array order (id, source, file, split, content, style, action, texts,
  eval_texts, mirrored, mirror_of, num_frames, duration_s, sample_weight, stats).

Splits: KIT-ML trials keep KIT-ML's split and label-only CMU trials HumanML3D's where it has one. Every other clip's
split is fixed by a hash of its file name (:func:`assign_splits`): stratified by (source, content, style) where a group
has ≥ 10 clips, by the hash alone in smaller groups, and an action (source, content) with fewer than 10 clips stays
whole in training (the DeepMimic and AMP clips, Bandai's call/punch/slash/kick/respond/dance) so that no action is
seen only at evaluation time. Mirrored copies are made for training clips only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..core.features import mirror_smpl, smpl_to_features
from ..rotations import matrix_to_quat, quat_to_matrix
from ..skeleton import MIRROR_INDEX
from . import bandai, cmu, deepmimic
from .bvh import BvhError
from .descriptions import (
    CMU_LABEL_CONTENT,
    EVAL_SUBJECTS,
    MIRROR_CONTENT,
    describe,
    mirror_text,
    paraphrase_subject,
)
from .processing import ClipRejected

DATA_VERSION = 3
"""Bump when anything that changes the cached arrays or texts changes."""
DEFAULT_FPS = 12.5
STD_FLOOR = 1e-3
"""Normalisation std is max(std, STD_FLOOR): features that barely vary in training are not blown up."""
TEST_FRACTION = 0.10
VAL_FRACTION = 0.05
STRATIFY_MIN_GROUP = 10
TEXT_SEED = 0
N_TRAIN_TEXTS = 8
N_EVAL_TEXTS = 3


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """``$TEMOS_DATA_DIR`` or ``../shared/data`` relative to the repository root."""
    env = os.environ.get("TEMOS_DATA_DIR")
    return Path(env) if env else repo_root().parent / "shared" / "data"


def default_out_dir() -> Path:
    return repo_root() / ".cache" / "data"


def cache_stem(fps: float) -> str:
    return f"temos_data_v{DATA_VERSION}_{fps:g}fps"


def _hash01(name: str) -> float:
    return int(hashlib.sha1(name.encode()).hexdigest()[:12], 16) / float(16**12)


def assign_splits(items: list[tuple[str, tuple, str]]) -> dict[str, str]:
    """(file name, stratification group, action) triples → file name → ``train`` / ``val`` / ``test``.

    Deterministic (a hash of the file name). An action with fewer than :data:`STRATIFY_MIN_GROUP` clips stays whole in
    training, so no action is seen only at evaluation time. Otherwise a group with at least that many clips is split
    by rank of the hash (the first 10 % test, the next 5 % val), and a smaller group clip by clip by the hash value.
    """
    groups: dict[tuple, list[str]] = defaultdict(list)
    action_count = Counter(action for _, _, action in items)
    action_of = {}
    for name, group, action in items:
        groups[group].append(name)
        action_of[name] = action
    out = {}
    for names in groups.values():
        if len(names) >= STRATIFY_MIN_GROUP:
            ranked = sorted(names, key=_hash01)
            n_test = round(len(ranked) * TEST_FRACTION)
            n_val = round(len(ranked) * VAL_FRACTION)
            for i, n in enumerate(ranked):
                out[n] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
        else:
            for n in names:
                u = _hash01(n)
                if action_count[action_of[n]] < STRATIFY_MIN_GROUP:
                    out[n] = "train"
                else:
                    out[n] = "test" if u < TEST_FRACTION else "val" if u < TEST_FRACTION + VAL_FRACTION else "train"
    return out


@dataclass
class ClipRecord:
    id: str
    source: str
    file: str
    split: str
    content: str
    style: str
    texts: list[str]
    eval_texts: list[str]
    rotmats: np.ndarray  # (T, 22, 3, 3)
    root: np.ndarray  # (T, 3)
    mirrored: bool = False
    mirror_of: str = ""
    stats: dict = field(default_factory=dict)

    @property
    def action(self) -> str:
        return f"{self.source}:{self.content}"


@dataclass
class ClipJob:
    """One source clip to convert, with everything known before conversion."""

    id: str
    source: str
    file: str
    content: str
    style: str
    texts: list[str]
    eval_texts: list[str]
    split: str
    """The source's own split, or empty to assign one."""
    convert: tuple
    """(function, args): ``function(*args, fps)`` returns a ``processing.Motion``."""


_JOBS: list[ClipJob] = []


def _run_job(args) -> tuple[int, object]:
    i, fps = args
    fn, fargs = _JOBS[i].convert
    try:
        return i, fn(*fargs, fps)
    except (ClipRejected, BvhError, ValueError) as e:
        return i, str(e)


def _bandai_convert(clip, data_dir: str, fps: float):
    return bandai.convert_clip(clip, Path(data_dir), fps)[0]


def bandai_jobs(data_dir: Path) -> tuple[list[ClipJob], list[tuple[str, str]]]:
    clips, skipped = bandai.list_clips(data_dir)
    jobs = []
    for c in clips:
        train, ev = describe(c.content, c.style, c.clip_id, N_TRAIN_TEXTS, N_EVAL_TEXTS, TEXT_SEED)
        jobs.append(
            ClipJob(
                c.clip_id, "bandai", f"bandai_namco/{c.dataset}/{c.path.name}", c.content, c.style, train, ev, "",
                (_bandai_convert, (c, str(data_dir))),
            )
        )  # fmt: skip
    return jobs, skipped


def cmu_jobs(data_dir: Path) -> list[ClipJob]:
    jobs = []
    for c in cmu.list_clips(data_dir):
        if c.texts:  # KIT-ML sentences: as written, plus the same sentence with other subjects
            content = "kitml"
            train = sorted({v for t in c.texts for v in paraphrase_subject(t)})
            ev = sorted({v for t in c.texts for v in paraphrase_subject(t, EVAL_SUBJECTS)})
        else:
            content = CMU_LABEL_CONTENT[c.label]
            train, ev = describe(content, "unstyled", c.clip_id, N_TRAIN_TEXTS, N_EVAL_TEXTS, TEXT_SEED)
        jobs.append(
            ClipJob(
                c.clip_id, f"cmu_{'kitml' if c.texts else 'labels'}", c.path.relative_to(data_dir).as_posix(),
                content, "unstyled", train, ev, c.split,
                (cmu.convert_clip, (c,)),
            )
        )  # fmt: skip
    return jobs


def deepmimic_jobs(data_dir: Path) -> tuple[list[ClipJob], list[tuple[str, str]]]:
    clips, skipped = deepmimic.list_clips(data_dir)
    jobs = []
    for c in clips:
        train = sorted({v for t in c.texts for v in paraphrase_subject(t)})
        ev = sorted({v for t in c.texts for v in paraphrase_subject(t, EVAL_SUBJECTS)})
        jobs.append(
            ClipJob(
                c.clip_id, c.source, c.path.relative_to(data_dir).as_posix(), c.label.replace(" ", "-"),
                "unstyled", train, ev, "", (deepmimic.convert_clip, (c,)),
            )
        )  # fmt: skip
    return jobs, skipped


def collect(
    data_dir: Path, fps: float, workers: int, clip_filter=None
) -> tuple[list[ClipRecord], list[tuple[str, str]]]:
    """Convert every clip of every source; returns the records and the (file, reason) of each clip left out."""
    jobs, rejected = bandai_jobs(data_dir)
    jobs += cmu_jobs(data_dir)
    dm_jobs, dm_skipped = deepmimic_jobs(data_dir)
    jobs += dm_jobs
    rejected += dm_skipped
    given = {j.file: j.split for j in jobs if j.split}
    splits = assign_splits([(j.file, (j.source, j.content, j.style), f"{j.source}:{j.content}") for j in jobs])
    splits.update(given)
    if clip_filter is not None:
        jobs = [j for j in jobs if clip_filter(j.id)]
    bandai.alignment(str(data_dir))  # fail early, and compute once before forking
    _JOBS[:] = jobs
    args = [(i, fps) for i in range(len(jobs))]
    if workers > 1 and len(jobs) > 1:
        with get_context("fork").Pool(workers) as pool:
            results = list(tqdm(pool.imap_unordered(_run_job, args, chunksize=8), total=len(jobs), desc="clips"))
    else:
        results = [_run_job(a) for a in tqdm(args, desc="clips")]
    records = []
    for i, out in sorted(results, key=lambda r: r[0]):
        job = jobs[i]
        if isinstance(out, str):
            rejected.append((Path(job.file).name, out))
            continue
        records.append(
            ClipRecord(
                id=job.id, source=job.source, file=job.file, split=splits[job.file], content=job.content,
                style=job.style, texts=job.texts, eval_texts=job.eval_texts, rotmats=out.local_rotmats,
                root=out.root_translation, stats=out.stats,
            )
        )  # fmt: skip
    _JOBS.clear()
    return records, rejected


def _mirror(rec: ClipRecord) -> ClipRecord:
    rots, root = mirror_smpl(torch.from_numpy(rec.rotmats), torch.from_numpy(rec.root), MIRROR_INDEX)
    return ClipRecord(
        id=rec.id + "_mirror",
        source=rec.source,
        file=rec.file,
        split=rec.split,
        content=MIRROR_CONTENT.get(rec.content, rec.content),
        style=rec.style,
        texts=[mirror_text(t) for t in rec.texts],
        eval_texts=[mirror_text(t) for t in rec.eval_texts],
        rotmats=rots.numpy(),
        root=root.numpy(),
        mirrored=True,
        mirror_of=rec.id,
        stats=dict(rec.stats),
    )


def sample_weights(records: list[ClipRecord], power: float = 0.5) -> np.ndarray:
    """Per-clip sampling weight ∝ count(action)^-power, normalised to mean 1 over the records given.

    With power 0.5 an action with 4× fewer clips is drawn 2× more often per clip: rare actions (kicks, punches,
    bows) are weighted up without letting a single clip repeat so often that it is memorised.
    """
    return action_weights([r.action for r in records], power)


def action_weights(actions: list[str], power: float = 0.5) -> np.ndarray:
    """Per-clip weight ∝ count(action)^-power over the clips' action names, normalised to mean 1. Power 0 draws
    clips uniformly; power 1 gives every action the same share of the draws however few clips it has."""
    counts = Counter(actions)
    w = np.array([counts[a] ** -power for a in actions], dtype=np.float64)
    return w / w.mean()


def build(
    fps: float = DEFAULT_FPS,
    data_dir: Path | None = None,
    out_dir: Path | None = None,
    workers: int | None = None,
    clip_filter=None,
) -> Path:
    """Build the cache and return the path of the ``.npz``; prints a summary.

    clip_filter: optional ``clip_id -> bool`` keeping only some clips (for tests and quick experiments; the splits
    of the clips kept are those of the full build).
    """
    t0 = time.time()
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"training data folder {data_dir} not found; put the data at ../shared/data or set TEMOS_DATA_DIR"
        )
    out_dir = Path(out_dir) if out_dir else default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)

    records, rejected = collect(data_dir, fps, workers, clip_filter)
    records += [_mirror(r) for r in records if r.split == "train"]

    feats, quats, roots, offsets = [], [], [], [0]
    for r in tqdm(records, desc="features"):
        f = smpl_to_features(torch.from_numpy(r.rotmats), torch.from_numpy(r.root)).numpy().astype(np.float32)
        feats.append(f)
        quats.append(matrix_to_quat(r.rotmats).astype(np.float32))
        roots.append(r.root.astype(np.float32))
        offsets.append(offsets[-1] + len(f))
    features = np.concatenate(feats)
    is_train = np.concatenate([np.full(len(f), r.split == "train") for f, r in zip(feats, records)])
    mean = features[is_train].astype(np.float64).mean(0)
    std = np.maximum(features[is_train].astype(np.float64).std(0), STD_FLOOR)
    train_records = [r for r in records if r.split == "train"]
    weights = dict(zip((r.id for r in train_records), sample_weights(train_records)))

    stem = cache_stem(fps)
    npz_path = out_dir / f"{stem}.npz"
    tmp = out_dir / f"{stem}.tmp.npz"
    np.savez(
        tmp,
        features=features,
        rotations=np.concatenate(quats),
        root_translation=np.concatenate(roots),
        offsets=np.asarray(offsets, dtype=np.int64),
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
    )
    clips_json = []
    for i, r in enumerate(records):
        n = offsets[i + 1] - offsets[i]
        clips_json.append(
            {
                "id": r.id, "source": r.source, "file": r.file, "split": r.split, "content": r.content,
                "style": r.style, "action": r.action, "texts": r.texts, "eval_texts": r.eval_texts,
                "mirrored": r.mirrored, "mirror_of": r.mirror_of, "num_frames": int(n), "duration_s": n / fps,
                "sample_weight": float(weights.get(r.id, 0.0)),
                "stats": {k: round(float(v), 6) for k, v in r.stats.items()},
            }
        )  # fmt: skip
    split_counts = Counter(r.split for r in records if not r.mirrored)
    frames = {s: int(sum(c["num_frames"] for c in clips_json if c["split"] == s)) for s in ("train", "val", "test")}
    meta = {
        "data_version": DATA_VERSION,
        "fps": fps,
        "nfeats": int(features.shape[1]),
        "std_floor": STD_FLOOR,
        "text_seed": TEXT_SEED,
        "clips": len(records),
        "source_clips_kept": len(records) - sum(r.mirrored for r in records),
        "mirrored_clips": int(sum(r.mirrored for r in records)),
        "split_counts_unmirrored": dict(split_counts),
        "frames_per_split": frames,
        "hours_unmirrored": sum(c["duration_s"] for c in clips_json if not c["mirrored"]) / 3600,
        "rejected": [{"file": f, "reason": why} for f, why in sorted(rejected)],
        "build_seconds": round(time.time() - t0, 1),
    }
    json_path = out_dir / f"{stem}.json"
    tmp_json = out_dir / f"{stem}.tmp.json"
    tmp_json.write_text(json.dumps({"meta": meta, "clips": clips_json}, indent=1))
    os.replace(tmp, npz_path)
    os.replace(tmp_json, json_path)
    _print_summary(meta, clips_json, npz_path)
    return npz_path


def _print_summary(meta: dict, clips: list[dict], path: Path) -> None:
    n_texts = sum(len(c["texts"]) for c in clips)
    n_unique = len({t for c in clips for t in c["texts"]})
    n_eval = len({t for c in clips for t in c["eval_texts"]})
    print(f"\nwrote {path} (+ .json) in {meta['build_seconds']} s at {meta['fps']:g} fps")
    print(
        f"clips kept: {meta['source_clips_kept']} ({meta['hours_unmirrored']:.2f} h) + {meta['mirrored_clips']} mirrored; "
        f"rejected: {len(meta['rejected'])}"
    )
    print(f"splits (unmirrored clips): {meta['split_counts_unmirrored']}; frames: {meta['frames_per_split']}")
    print(f"training texts: {n_texts} ({n_unique} distinct); evaluation-only texts: {n_eval} distinct")
    by_source = Counter(c["source"] for c in clips if not c["mirrored"])
    print("per source:", dict(by_source))
    reasons = Counter(r["reason"].split(":")[0] for r in meta["rejected"])
    for why, n in reasons.most_common():
        print(f"  rejected {n:4d}: {why}")


def cache_matches_features(path: Path) -> bool:
    """Whether the cache's stored features equal what ``core.features`` computes now from its stored poses.

    Guards against a cache built before a change of the feature layout (checked on the first clip).
    """
    arrays = np.load(path, allow_pickle=False)
    a, b = int(arrays["offsets"][0]), int(arrays["offsets"][1])
    rots = quat_to_matrix(arrays["rotations"][a:b].astype(np.float64))
    root = arrays["root_translation"][a:b].astype(np.float64)
    now = smpl_to_features(torch.from_numpy(rots), torch.from_numpy(root)).numpy()
    return bool(np.allclose(now, arrays["features"][a:b], atol=1e-4))


def ensure_built(fps: float = DEFAULT_FPS, out_dir: Path | None = None, data_dir: Path | None = None) -> Path:
    """Path of the cache for ``fps``, building it first when it is missing or its features are out of date."""
    out_dir = Path(out_dir) if out_dir else default_out_dir()
    path = out_dir / f"{cache_stem(fps)}.npz"
    if path.exists() and path.with_suffix(".json").exists() and cache_matches_features(path):
        return path
    return build(fps, data_dir=data_dir, out_dir=out_dir)
