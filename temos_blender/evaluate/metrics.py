"""Text-to-motion metrics (numpy only): retrieval (R-precision), distribution (FID, Diversity, MultiModality),
joint-position errors against the ground truth (APE, AVE) and motion quality (foot skating, jerk, penetration).

Embedding metrics read the retrieval evaluator's unit-length embeddings (:mod:`.evaluator`); the others read
joint positions (T, 22, 3) in metres from forward kinematics on the shared SMPL skeleton.

References: R-precision, FID, Diversity and MultiModality as in Guo et al., "Generating Diverse and Natural 3D Human
Motions from Text", CVPR 2022; APE/AVE as in Petrovich et al., "TEMOS", ECCV 2022 (official
``temos/model/metrics/compute.py``): errors in TEMOS' canonical frame (floor at 0, start at the origin facing a fixed
direction), APE averaged over all frames of all clips, AVE over clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .kinematics import FOOT_JOINTS, TOE_JOINTS, canonical_joints, floor_height, local_poses


# ---------------------------------------------------------------------------------------------- retrieval
def _ranks_of_true(motion_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """(B, D), (B, D) → (B,) rank (0 = best) of text i among all B texts, for motion i, by Euclidean distance."""
    dist = np.linalg.norm(motion_emb[:, None, :] - text_emb[None, :, :], axis=-1)  # (B, B)
    true = np.diag(dist)
    return (dist < true[:, None]).sum(1)


def r_precision(
    motion_emb: np.ndarray, text_emb: np.ndarray, batch_size: int = 32, top_k: int = 3, repeats: int = 20, seed: int = 0
) -> np.ndarray:
    """R@1 … R@top_k: for each motion, is its own text among the ``k`` nearest of the ``batch_size`` texts in its batch?

    Row i of ``motion_emb`` belongs with row i of ``text_emb``. Each repeat shuffles the items with a fixed seed and
    splits them into batches of ``batch_size`` (1 true text + 31 others; a last incomplete batch is dropped).
    Returns (top_k,) fractions, averaged over all motions of all repeats.
    """
    ranks = np.concatenate([r for _, r in _batched_ranks(motion_emb, text_emb, batch_size, repeats, seed)])
    return np.array([(ranks < k).mean() for k in range(1, top_k + 1)])


def _batched_ranks(
    motion_emb: np.ndarray, text_emb: np.ndarray, batch_size: int, repeats: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(item indices, ranks of their true texts) of every full batch of every seeded shuffle."""
    n = len(motion_emb)
    assert n == len(text_emb), f"{n} motions but {len(text_emb)} texts"
    assert n >= batch_size, f"R-precision needs at least {batch_size} items; got {n}"
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(repeats):
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            out.append((idx, _ranks_of_true(motion_emb[idx], text_emb[idx])))
    return out


def r_precision_hits(
    motion_emb: np.ndarray, text_emb: np.ndarray, k: int = 3, batch_size: int = 32, repeats: int = 20, seed: int = 0
) -> np.ndarray:
    """(N,) per item: the share of :func:`r_precision`'s batches (same shuffles for the same ``seed``) in which its
    own text is among the ``k`` nearest; NaN for an item that never landed in a full batch. Two methods scored on the
    same items with the same seed meet the same distractors, so their per-item difference is a paired comparison."""
    hits, seen = np.zeros(len(motion_emb)), np.zeros(len(motion_emb))
    for idx, ranks in _batched_ranks(motion_emb, text_emb, batch_size, repeats, seed):
        hits[idx] += ranks < k
        seen[idx] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, hits / np.maximum(seen, 1), np.nan)


def paired_difference_ci(
    a: np.ndarray, b: np.ndarray, groups: Sequence, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a − b`` over the items both score (NaN-free) and its bootstrap confidence interval at ``level``,
    resampling whole ``groups`` (e.g. all prompts of one clip, which are not independent). Returns (mean, low, high)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    keep = ~np.isnan(d)
    d, labels = d[keep], np.asarray([str(g) for g in groups])[keep]
    _, group = np.unique(labels, return_inverse=True)
    sums, counts = np.bincount(group, weights=d), np.bincount(group).astype(float)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    boot = sums[pick].sum(1) / counts[pick].sum(1)
    tail = 100 * (1 - level) / 2
    return float(d.mean()), float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


def ranks_against_other_labels(
    motion_emb: np.ndarray, text_emb: np.ndarray, labels: Sequence, n_others: int = 31, repeats: int = 20, seed: int = 0
) -> np.ndarray:
    """(repeats, N) rank (0 = best) of item i's own text among itself and ``n_others`` texts drawn at random from
    items whose label differs from item i's. The draws depend only on ``labels`` and ``seed``, so every method
    evaluated on the same items meets the same distractors."""
    labels = np.asarray([str(x) for x in labels])
    rng = np.random.default_rng(seed)
    n = len(motion_emb)
    pools = {lab: np.flatnonzero(labels != lab) for lab in set(labels)}
    ranks = np.zeros((repeats, n), np.int64)
    for r in range(repeats):
        for i in range(n):
            pool = pools[labels[i]]
            assert len(pool) >= n_others, f"only {len(pool)} items have a label other than {labels[i]!r}"
            others = rng.choice(pool, n_others, replace=False)
            d_true = np.linalg.norm(motion_emb[i] - text_emb[i])
            ranks[r, i] = int((np.linalg.norm(motion_emb[i][None] - text_emb[others], axis=-1) < d_true).sum())
    return ranks


def r_precision_distinct(
    motion_emb: np.ndarray,
    text_emb: np.ndarray,
    labels: Sequence,
    n_others: int = 31,
    top_k: int = 3,
    repeats: int = 20,
    seed: int = 0,
) -> np.ndarray:
    """R-precision whose ``n_others`` wrong texts are drawn only from items with a different label.

    In a data set where many clips share one (action, style) label, the plain protocol counts another clip's text of
    the same label as wrong although it describes the motion equally well; this variant never does.
    """
    ranks = ranks_against_other_labels(motion_emb, text_emb, labels, n_others, repeats, seed)
    return np.array([(ranks < k).mean() for k in range(1, top_k + 1)])


# ---------------------------------------------------------------------------------------------- distributions
def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two sets of embeddings (N, D), (M, D): ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(cov_a)
    # Tr((Σa Σb)^½) = Σ √λ of the symmetric PSD matrix Σa^½ Σb Σa^½ (same eigenvalues as Σa Σb).
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_covmean)


def diversity(emb: np.ndarray, n_pairs: int = 300, seed: int = 0) -> float:
    """Mean distance between ``n_pairs`` random pairs of different items (Guo et al.: 300 pairs)."""
    rng = np.random.default_rng(seed)
    n = len(emb)
    first = rng.integers(0, n, n_pairs)
    second = (first + rng.integers(1, n, n_pairs)) % n  # never the same item
    return float(np.linalg.norm(emb[first] - emb[second], axis=-1).mean())


def multimodality(groups: np.ndarray) -> float:
    """Spread of several samples of one prompt: (P prompts, S samples, D) → mean distance over all pairs of samples
    of the same prompt, averaged over prompts. 0 when every sample of a prompt is the same motion."""
    p, s, _ = groups.shape
    assert s >= 2, "MultiModality needs at least 2 samples per prompt"
    dist = np.linalg.norm(groups[:, :, None, :] - groups[:, None, :, :], axis=-1)  # (P, S, S)
    iu = np.triu_indices(s, 1)
    return float(dist[:, iu[0], iu[1]].mean())


# ---------------------------------------------------------------------------------------------- joint positions
def _variance(x: np.ndarray) -> np.ndarray:
    """Over time (axis 0), with TEMOS' (T − 1) denominator."""
    return ((x - x.mean(0)) ** 2).sum(0) / max(len(x) - 1, 1)


def ape_ave(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict[str, float]:
    """Average Positional Error and Average Variance Error (TEMOS) in metres between paired joint sequences.

    Each pair is (T, 22, 3) with the same T. Both go to TEMOS' canonical frame (:func:`canonical_joints`).
    ``root``: the pelvis (x, height, z); ``traj``: the pelvis' ground path (x, z); ``local``: the 21 other joints
    relative to the pelvis in each frame's heading (:func:`local_poses`), averaged over joints; ``global``: all 22
    joints in the canonical frame, averaged over joints. APE: mean over all frames of all clips of the L2 distance.
    AVE: per clip, the L2 distance between the two per-coordinate variances over time; mean over clips.
    """
    assert len(generated) == len(reference) > 0, f"{len(generated)} generated vs {len(reference)} reference clips"
    names = ("root", "traj", "local", "global")
    ape = dict.fromkeys(names, 0.0)
    ave = dict.fromkeys(names, 0.0)
    frames = 0
    for gen, ref in zip(generated, reference):
        assert gen.shape == ref.shape, f"paired clips differ in shape: {gen.shape} vs {ref.shape}"
        parts = []
        for joints in (gen, ref):
            c = canonical_joints(joints)
            parts.append({"root": c[:, 0], "traj": c[:, 0, [0, 2]], "local": local_poses(c), "global": c})
        g, r = parts
        frames += len(gen)
        for k in names:
            err = np.linalg.norm(g[k] - r[k], axis=-1)  # (T,) or (T, J)
            ape[k] += float(err.mean(-1).sum() if err.ndim == 2 else err.sum())
            var_err = np.linalg.norm(_variance(g[k]) - _variance(r[k]), axis=-1)  # () or (J,)
            ave[k] += float(np.mean(var_err))
    out = {f"APE_{k}": ape[k] / frames for k in names}
    out.update({f"AVE_{k}": ave[k] / len(generated) for k in names})
    return out


# ---------------------------------------------------------------------------------------------- motion quality
SKATING_HEIGHT_M = 0.05
"""A foot joint lower than this above the clip's floor is taken to be on the ground."""
SKATING_SPEED_MPS = 0.75
"""A grounded foot moving faster than this horizontally is sliding: 2.5 cm per frame at 30 fps."""


def foot_skating_ratio(
    joints: np.ndarray, fps: float, height_m: float = SKATING_HEIGHT_M, speed_mps: float = SKATING_SPEED_MPS
) -> float:
    """Fraction of frame-to-frame steps in which a foot (SMPL ``left_foot``/``right_foot``, the ball of the foot) is
    below ``height_m`` above the clip's floor at both frames and moves horizontally faster than ``speed_mps``."""
    if len(joints) < 2:
        return 0.0
    toes = joints[:, TOE_JOINTS, :]  # (T, 2, 3)
    low = toes[..., 1] - floor_height(joints) < height_m  # (T, 2)
    grounded = low[1:] & low[:-1]
    speed = np.linalg.norm(np.diff(toes[..., [0, 2]], axis=0), axis=-1) * fps  # (T-1, 2)
    return float((grounded & (speed > speed_mps)).any(-1).mean())


def mean_jerk(joints: np.ndarray, fps: float) -> float:
    """Mean magnitude of the third time derivative of the joint positions, m/s³ (finite differences at ``fps``)."""
    if len(joints) < 4:
        return 0.0
    return float(np.linalg.norm(np.diff(joints, n=3, axis=0), axis=-1).mean() * fps**3)


def ground_penetration(joints: np.ndarray) -> float:
    """Mean depth (m) of the lowest foot joint (ankles, balls of the feet) below the take's ground plane y = 0, over
    frames (0 in a frame whose feet are all above it)."""
    lowest = joints[:, FOOT_JOINTS, 1].min(-1)
    return float(np.clip(-lowest, 0, None).mean())


def local_joint_speed(joints: np.ndarray, fps: float) -> float:
    """How much the body moves its limbs: mean speed (m/s) of the 21 non-root joints in the pelvis' own moving frame
    (:func:`local_poses`). 0 for a pose carried along unchanged; a captured walk is around 0.5 m/s."""
    if len(joints) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(local_poses(joints), axis=0), axis=-1).mean() * fps)


def motion_quality(clips: Sequence[np.ndarray], fps: float) -> dict[str, float]:
    """Foot skating ratio, jerk, penetration and local joint speed, averaged over clips (each (T, 22, 3))."""
    return {
        "skating_ratio": float(np.mean([foot_skating_ratio(j, fps) for j in clips])),
        "jerk_mps3": float(np.mean([mean_jerk(j, fps) for j in clips])),
        "penetration_m": float(np.mean([ground_penetration(j) for j in clips])),
        "local_speed_mps": float(np.mean([local_joint_speed(j, fps) for j in clips])),
    }
