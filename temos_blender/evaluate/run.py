"""Evaluate a TEMOS model folder against baselines on the held-out test split; write EVALUATION.md + JSON.

    python -m temos_blender.evaluate --model vendor_models/temos-cmu-kitml            # → docs/EVALUATION.md, docs/evaluation.json
    python -m temos_blender.evaluate --model runs/bundled/best --out out/eval.md --no-qualitative

Test prompts are the test-split clips with their evaluation-only phrasings (never seen in training), one prompt per
(clip, phrasing). Every method makes one motion per prompt, as long as the prompt's ground-truth clip (cropped to the
model's longest duration). Methods: the ground truth itself (upper bound), a random training motion (lower bound),
the nearest neighbour (the training motion whose text is most similar to the prompt), TEMOS with the mean latent
(fact 0) and TEMOS sampled with fact 1. All are measured by the same retrieval evaluator (:mod:`.evaluator`) and the
same joint-position metrics (:mod:`.metrics`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .clips import MotionClips, load_motion_clips
from .evaluator import RetrievalEvaluator, SentenceEmbedder, load_or_train
from .metrics import (
    ape_ave,
    diversity,
    frechet_distance,
    motion_quality,
    multimodality,
    paired_difference_ci,
    r_precision,
    r_precision_hits,
    ranks_against_other_labels,
)
from .sampling import prompt_latents, sample_joints

METHODS = ("ground_truth", "temos_fact1", "temos_fact0", "nearest_neighbour", "random")
METHOD_NAMES = {
    "ground_truth": "Ground truth (upper bound)",
    "temos_fact1": "TEMOS, fact = 1 (sampled)",
    "temos_fact0": "TEMOS, fact = 0 (mean latent)",
    "nearest_neighbour": "Nearest neighbour (text)",
    "random": "Random training motion (lower bound)",
}
TEMOS_KIT = {"APE_root": 0.963, "APE_traj": 0.955, "APE_local": 0.104, "APE_global": 0.976,
             "AVE_root": 0.445, "AVE_traj": 0.445, "AVE_local": 0.005, "AVE_global": 0.448}  # fmt: skip
"""TEMOS on KIT-ML, from the paper's Table (text-conditioned, sampled): another data set, for orientation only."""


@dataclass(frozen=True)
class TestItem:
    """One test prompt: an evaluation-only phrasing of a test clip, and how many frames to make."""

    clip: int
    """Index of the ground-truth clip in the loaded clips."""
    text: str
    """The prompt."""
    frames: int
    """Length of every motion made for it: the clip's, cropped to the model's longest duration."""
    label: str
    """What the clip shows (``content/style``, or the clip id for free-text sources)."""
    content: str
    """The clip's content label, for the per-action table."""


def test_items(
    clips: MotionClips, max_frames: int, min_frames: int, max_clips: int | None = None, split: str = "test"
) -> list[TestItem]:
    """Every (clip of ``split``, evaluation-only phrasing) pair; clips shorter than ``min_frames`` are left out.
    ``split="val"`` gives the validation prompts that checkpoint selection (:mod:`.select`) uses."""
    idx = [i for i, r in enumerate(clips.records) if r["split"] == split and not r["mirrored"]]
    idx = [i for i in idx if len(clips.joints[i]) >= min_frames][:max_clips]
    return [
        TestItem(
            i, text, min(len(clips.joints[i]), max_frames), clips.label(i), clips.records[i].get("content") or "other"
        )
        for i in idx
        for text in clips.records[i]["eval_texts"]
    ]


def frame_range(gen, evaluator: RetrievalEvaluator) -> tuple[int, int]:
    """(longest, shortest) motion in frames that both the model and the evaluator take."""
    fps = gen.cfg.fps
    longest = min(int(round(gen.cfg.max_duration_s * fps)), evaluator.cfg.max_frames)
    return longest, int(np.ceil(gen.cfg.min_duration_s * fps))


def fit_length(joints: np.ndarray, frames: int) -> np.ndarray:
    """Crop to ``frames`` from the start, or hold the last pose until ``frames`` are reached."""
    if len(joints) >= frames:
        return joints[:frames]
    return np.concatenate([joints, np.repeat(joints[-1:], frames - len(joints), axis=0)])


def nearest_neighbour(
    items: list[TestItem], clips: MotionClips, embedder: SentenceEmbedder, prompt_emb: np.ndarray
) -> tuple[list[np.ndarray], list[int]]:
    """For each prompt, the training text with the highest cosine similarity of sentence embeddings; among the training
    clips carrying that text, the one whose length is closest to the prompt's; fitted to the prompt's length.
    Returns the motions and the chosen clips' indices."""
    train = [i for i, r in enumerate(clips.records) if r["split"] == "train"]
    texts = sorted({t for i in train for t in clips.records[i]["texts"]})
    clips_of: dict[str, list[int]] = {}
    for i in train:
        for t in clips.records[i]["texts"]:
            clips_of.setdefault(t, []).append(i)
    sims = prompt_emb @ embedder.training_texts(texts).T  # (N, n_texts), unit vectors
    joints, chosen = [], []
    for item, row in zip(items, sims):
        text = texts[int(row.argmax())]
        best = min(clips_of[text], key=lambda i: (abs(len(clips.joints[i]) - item.frames), i))
        joints.append(fit_length(clips.joints[best], item.frames))
        chosen.append(best)
    return joints, chosen


def random_motions(items: list[TestItem], clips: MotionClips, seed: int) -> list[np.ndarray]:
    """A uniformly drawn training clip per prompt, fitted to the prompt's length."""
    rng = np.random.default_rng(seed)
    train = [i for i, r in enumerate(clips.records) if r["split"] == "train"]
    return [fit_length(clips.joints[train[int(rng.integers(len(train)))]], item.frames) for item in items]


def other_performances(items: list[TestItem], clips: MotionClips, seed: int) -> tuple[list[int], list[np.ndarray]]:
    """Real variety: for each prompt whose label (action and style) has training clips, one of them drawn at random,
    fitted to the prompt's length — a take from a sampler that draws captured performances of the prompt's action.
    Returns the prompts' indices (prompts whose label has no training clip are left out) and the motions."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, r in enumerate(clips.records):
        if r["split"] == "train":
            by_label.setdefault(clips.label(i), []).append(i)
    kept, joints = [], []
    for k, item in enumerate(items):
        peers = by_label.get(item.label)
        if peers:
            kept.append(k)
            joints.append(fit_length(clips.joints[peers[int(rng.integers(len(peers)))]], item.frames))
    return kept, joints


def model_identity(folder: Path, gen) -> dict:
    weights = folder / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else ""
    try:
        shown = str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = folder.name
    return {"model_id": gen.cfg.model_id, "folder": shown, "weights_sha256_16": digest, "config": gen.cfg.to_dict()}


def machine_description() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "torch": torch.__version__}  # fmt: skip


def fact1_seeds(n: int, draw: int, seed: int) -> list[int]:
    """Per-prompt seeds of fact-1 draw ``draw`` (0, 1, …) of ``n`` prompts: draw 0 is the report's fact-1 row."""
    return [seed + 100_000 * draw + k for k in range(n)]


def multimodality_of(
    gen, evaluator: RetrievalEvaluator, mu: torch.Tensor, logvar: torch.Tensor, lengths: list[int], seed: int,
    prompts: int = 100, samples: int = 10,
) -> tuple[float, int]:
    """MultiModality: ``samples`` fact-1 takes of each of ``prompts`` prompts drawn from the rows of ``mu``/``logvar``,
    their spread in the evaluator's space. Returns (MultiModality, prompts used)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(lengths), min(prompts, len(lengths)), replace=False)
    rep = torch.from_numpy(np.repeat(idx, samples))
    joints = sample_joints(
        gen, mu[rep], logvar[rep], [lengths[i] for i in rep.tolist()], 1.0, seeds=[1000 + s for s in range(samples)] * len(idx)
    )
    emb = evaluator.embed_motions(joints, gen.cfg.fps).reshape(len(idx), samples, -1)
    return multimodality(emb), len(idx)


def _method_metrics(
    name: str,
    joints: list[np.ndarray],
    gt_joints: list[np.ndarray],
    evaluator: RetrievalEvaluator,
    text_emb: np.ndarray,
    gt_emb: np.ndarray | None,
    labels: list[str],
    fps: float,
    seed: int,
    repeats: int,
) -> tuple[dict, np.ndarray, np.ndarray]:
    emb = evaluator.embed_motions(joints, fps)
    rp = r_precision(emb, text_emb, repeats=repeats, seed=seed)
    ranks = ranks_against_other_labels(emb, text_emb, labels, repeats=max(repeats // 4, 1), seed=seed)
    rd = np.array([(ranks < k).mean() for k in (1, 2, 3)])
    out = {f"R@{k}": float(rp[k - 1]) for k in (1, 2, 3)}
    out.update({f"R_other_labels@{k}": float(rd[k - 1]) for k in (1, 2, 3)})
    out["FID"] = 0.0 if gt_emb is None else frechet_distance(emb, gt_emb)
    out["Diversity"] = diversity(emb, seed=seed)
    out["text_motion_distance"] = float(np.linalg.norm(emb - text_emb, axis=-1).mean())
    out.update(ape_ave(joints, gt_joints))
    out.update(motion_quality(joints, fps))
    return out, emb, ranks


def evaluate(
    model_folder: str | os.PathLike,
    gen=None,
    clips: MotionClips | None = None,
    timings: dict[str, float] | None = None,
    max_clips: int | None = None,
    mm_prompts: int = 100,
    mm_samples: int = 10,
    seed: int = 0,
    repeats: int = 20,
    progress: bool = True,
    fact1_draws: int = 5,
) -> dict:
    """Run the whole evaluation; returns the results dict that :func:`write_markdown` and the JSON file hold.

    ``gen`` (a :class:`TemosGenerator` of ``model_folder``) and ``clips`` are loaded when not given; ``timings``
    (seconds by step) is extended. ``fact1_draws``: independent fact-1 samplings of all prompts whose R@3 is
    reported (the table's fact-1 row is the first)."""
    from ..core.generate import TemosGenerator

    t_start = time.monotonic()
    timings = dict(timings or {})
    earlier = sum(timings.values())  # steps the caller timed before calling

    def tick(name: str, t0: float) -> float:
        timings[name] = round(time.monotonic() - t0, 1)
        if progress:
            print(f"[evaluate] {name}: {timings[name]} s", file=sys.stderr, flush=True)
        return time.monotonic()

    t = time.monotonic()
    folder = Path(model_folder)
    if gen is None or clips is None:
        gen = gen or TemosGenerator.load(folder, device="cpu")
        clips = clips or load_motion_clips(gen.cfg.fps)
        t = tick("load model and data", t)
    fps = gen.cfg.fps
    embedder = SentenceEmbedder()
    evaluator, ev_summary = load_or_train(clips, embedder=embedder, progress=progress)
    t = tick("evaluator (cached or trained)", t)

    max_frames, min_frames = frame_range(gen, evaluator)
    items = test_items(clips, max_frames, min_frames, max_clips)
    labels = [it.label for it in items]
    gt = [clips.joints[it.clip][: it.frames] for it in items]
    prompts = [it.text for it in items]
    prompt_sentence = embedder(prompts)
    text_emb = evaluator.embed_texts(prompt_sentence)
    t = tick("test prompts", t)

    mu, logvar = prompt_latents(gen, prompts)
    lengths = [it.frames for it in items]
    motions = {
        "ground_truth": gt,
        "temos_fact1": sample_joints(gen, mu, logvar, lengths, 1.0, seeds=fact1_seeds(len(items), 0, seed)),
        "temos_fact0": sample_joints(gen, mu, logvar, lengths, 0.0, seeds=[0] * len(items)),
    }
    t = tick("TEMOS samples", t)
    motions["nearest_neighbour"], nn_clips = nearest_neighbour(items, clips, embedder, prompt_sentence)
    motions["random"] = random_motions(items, clips, seed)
    t = tick("baselines", t)

    results, embeddings, ranks = {}, {}, {}
    gt_emb = None
    for name in METHODS:
        results[name], embeddings[name], ranks[name] = _method_metrics(
            name, motions[name], gt, evaluator, text_emb, gt_emb, labels, fps, seed, repeats
        )
        if name == "ground_truth":
            gt_emb = embeddings[name]
    t = tick("metrics", t)

    # Fact 1 is one random draw per prompt: R-precision of further draws shows how much of a gap to fact 0 is luck.
    # Per prompt, the share of batches whose top 3 hold its text, is paired between methods (same distractors), so the
    # fact-1 − fact-0 difference gets a confidence interval; prompts of one clip are resampled together.
    draws = [results["temos_fact1"]["R@3"]]
    hits1 = [r_precision_hits(embeddings["temos_fact1"], text_emb, repeats=repeats, seed=seed)]
    for d in range(1, fact1_draws):
        joints_d = sample_joints(gen, mu, logvar, lengths, 1.0, seeds=fact1_seeds(len(items), d, seed))
        emb_d = evaluator.embed_motions(joints_d, fps)
        draws.append(float(r_precision(emb_d, text_emb, repeats=repeats, seed=seed)[2]))
        hits1.append(r_precision_hits(emb_d, text_emb, repeats=repeats, seed=seed))
    results["temos_fact1"]["R@3_draws"] = draws
    hits0 = r_precision_hits(embeddings["temos_fact0"], text_emb, repeats=repeats, seed=seed)
    mean, lo, hi = paired_difference_ci(np.mean(hits1, axis=0), hits0, [it.clip for it in items], seed=seed)
    results["temos_fact1"]["R@3_minus_fact0"] = {"mean": mean, "ci95": [lo, hi], "resampled": "test clips"}
    t = tick("further fact-1 draws", t)

    # The same held-out clips described with training-style phrasings: how much of the ceiling is wording.
    train_style = [
        clips.records[it.clip]["texts"][k % len(clips.records[it.clip]["texts"])] for k, it in enumerate(items)
    ]
    gt_train_style = r_precision(gt_emb, evaluator.embed_texts(embedder(train_style)), repeats=repeats, seed=seed)

    # What R@3 a sampler of real variety gets: another captured performance of each prompt's action and style.
    kept, performances = other_performances(items, clips, seed)
    real_variety = None
    if len(kept) >= 32:
        sub_text = text_emb[kept]
        r3_sub = {
            name: float(r_precision(emb[kept], sub_text, repeats=repeats, seed=seed)[2])
            for name, emb in embeddings.items()
            if name in ("ground_truth", "temos_fact0", "temos_fact1")
        }
        r3_sub["other_performance"] = float(
            r_precision(evaluator.embed_motions(performances, fps), sub_text, repeats=repeats, seed=seed)[2]
        )
        real_variety = {"prompts": len(kept), "R@3": r3_sub}

    # MultiModality: several fact-1 samples of the same prompt.
    results["temos_fact1"]["MultiModality"], mm_used = multimodality_of(
        gen, evaluator, mu, logvar, lengths, seed, prompts=mm_prompts, samples=mm_samples
    )
    results["temos_fact0"]["MultiModality"] = 0.0  # one motion per prompt by construction
    t = tick("MultiModality", t)

    # R@3 against other labels, per content, for the discussion.
    contents = sorted({it.content for it in items})
    per_content = {}
    for c in contents:
        mask = np.array([it.content == c for it in items])
        per_content[c] = {"prompts": int(mask.sum())}
        per_content[c].update({m: float((ranks[m][:, mask] < 3).mean()) for m in METHODS})
    nn_label_match = float(np.mean([clips.label(c) == it.label for c, it in zip(nn_clips, items)]))
    same_label = np.array([sum(lab == other for other in labels) - 1 for lab in labels]) / (len(items) - 1)

    timings["total"] = round(time.monotonic() - t_start + earlier, 1)
    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "model": model_identity(folder, gen),
        "machine": machine_description(),
        "data": {
            "data_version": clips.data_version,
            "fps": fps,
            "test_clips": len({it.clip for it in items}),
            "test_prompts": len(items),
            "distinct_test_prompts": len(set(prompts)),
            "max_duration_s": max_frames / fps,
            "labels": len(set(labels)),
            "test_clips_cropped": len({it.clip for it in items if len(clips.joints[it.clip]) > it.frames}),
            "same_label_share_of_other_prompts": float(same_label.mean()),
        },
        "evaluator": {"config": asdict(evaluator.cfg), "training": ev_summary},
        "settings": {
            "seed": seed,
            "r_precision_batch": 32,
            "r_precision_repeats": repeats,
            "other_label_repeats": max(repeats // 4, 1),
            "mm_prompts": mm_used,
            "mm_samples_per_prompt": mm_samples,
            "fact1_draws": fact1_draws,
            "diversity_pairs": 300,
        },
        "methods": results,
        "per_content_R_other_labels@3": per_content,
        "nearest_neighbour_label_match": nn_label_match,
        "ground_truth_training_phrasings_R@3": float(gt_train_style[2]),
        "real_variety": real_variety,
        "temos_paper_kitml": TEMOS_KIT,
        "seconds": timings,
    }


# ---------------------------------------------------------------------------------------------- report
def _f(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def discussion(res: dict) -> list[str]:
    """Plain statements read off the numbers (every comparison is computed, so the text follows the run)."""
    m = res["methods"]
    gt, t1, t0, nn, rnd = (m[k] for k in METHODS)
    d = res["data"]
    out = []
    train_phr = res.get("ground_truth_training_phrasings_R@3")
    yardstick = (
        f"- **The yardstick.** Ground-truth motions reach R@3 = {_pct(gt['R@3'])} % with the usual protocol and "
        f"{_pct(gt['R_other_labels@3'])} % with wrong texts from other labels only ({d['labels']} labels over "
        f"{d['test_prompts']} prompts: on average {_pct(d['same_label_share_of_other_prompts'])} % of the other "
        "prompts share a prompt's label)."
    )
    if train_phr is not None:
        yardstick += (
            f" The ceiling is set mostly by the wording: with training-style phrasings of the same held-out clips the "
            f"evaluator reaches R@3 = {_pct(train_phr)} %. The evaluation phrasings are new words for the same "
            f"actions, and the frozen MiniLM places only {_pct(res['nearest_neighbour_label_match'])} % of them "
            "nearest to a training sentence of the right action and style."
        )
    out.append(yardstick)
    ratio = t1["R@3"] / gt["R@3"] if gt["R@3"] else 0.0
    sentence = (
        f"- **TEMOS (fact 1)** reaches R@3 = {_pct(t1['R@3'])} %, {_pct(ratio)} % of the ground truth's (target ≥ 75 %: "
        + ("met" if ratio >= 0.75 else "not met")
        + ")."
    )
    verb = "beats" if t1["R@3"] > rnd["R@3"] else "does not beat"
    sentence += f" It {verb} random training motions ({_pct(rnd['R@3'])} %)."
    draws = t1.get("R@3_draws") or [t1["R@3"]]
    verdict = (
        "beats" if min(draws) > t0["R@3"] else "does not beat" if max(draws) < t0["R@3"] else "ties with"
    )
    sentence += f" It {verdict} the mean-latent sample (fact 0, {_pct(t0['R@3'])} %)"
    if len(draws) > 1:
        sentence += (
            f": over {len(draws)} independent draws of the fact-1 samples R@3 is {_pct(float(np.mean(draws)))} ± "
            f"{_pct(float(np.std(draws)))} % (range {_pct(min(draws))}–{_pct(max(draws))})"
        )
    paired = t1.get("R@3_minus_fact0")
    if paired:
        lo, hi = paired["ci95"]
        sentence += (
            f"; paired per prompt (same distractors), fact 1 − fact 0 = {100 * paired['mean']:+.1f} points, 95 % "
            f"confidence interval {100 * lo:+.1f} to {100 * hi:+.1f} (bootstrap over the {paired['resampled']})"
        )
    out.append(sentence + ".")
    if t1["local_speed_mps"] < 0.25 * gt["local_speed_mps"]:
        static = (
            f"- **The limbs move far too little.** The joints move at {_f(t1['local_speed_mps'], 3)} m/s relative "
            f"to the pelvis in TEMOS' takes vs {_f(gt['local_speed_mps'], 3)} m/s in the captured clips (jerk "
            f"{_f(t1['jerk_mps3'], 1)} vs {_f(gt['jerk_mps3'], 1)} m/s³): the body's pose changes slowly while the root "
            "follows its path, so the fast cycles are missing — walks slide instead of stepping (foot skating "
            f"{_pct(t1['skating_ratio'])} % vs {_pct(gt['skating_ratio'])} %). "
        )
        if ratio >= 0.5:
            static += (
                f"Its R-precision still reaches {_pct(ratio)} % of the ground truth's: a held pose of the right kind (an "
                "arm up for a wave, the path of a walk) is retrieved by its text, although the evaluator is trained with "
                "frozen-pose copies as negatives. Read R-precision together with the local joint speed and the "
                "behaviour checks (docs/QUALITATIVE.md), which catch this failure."
            )
        else:
            static += "This, more than the text side, keeps its R-precision low (see docs/QUALITATIVE.md)."
        out.append(static)
    out.append(
        f"- **fact 0 vs fact 1.** The mean latent makes one motion per prompt (MultiModality 0; fact 1: "
        f"{_f(t1['MultiModality'])}, Diversity {_f(t0['Diversity'])} vs {_f(t1['Diversity'])}). R@3 "
        f"{_pct(t0['R@3'])} vs {_pct(t1['R@3'])} %, FID {_f(t0['FID'])} vs {_f(t1['FID'])}, APE global "
        f"{_f(t0['APE_global'])} vs {_f(t1['APE_global'])} m." + _real_variety_sentence(res.get("real_variety"))
    )
    higher_better = ("R@3", "R_other_labels@3")
    lower_better = ("FID", "APE_global", "AVE_global", "skating_ratio")
    better = [k for k in higher_better if t1[k] > nn[k]] + [k for k in lower_better if t1[k] < nn[k]]
    worse = [k for k in higher_better if t1[k] <= nn[k]] + [k for k in lower_better if t1[k] >= nn[k]]
    out.append(
        f"- **TEMOS vs the nearest neighbour.** The nearest neighbour is better on {', '.join(worse) or 'nothing'}; "
        f"TEMOS on {', '.join(better) or 'nothing'} (R@3 {_pct(t1['R@3'])} vs {_pct(nn['R@3'])} %, FID "
        f"{_f(t1['FID'])} vs {_f(nn['FID'])}). The test prompts are new phrasings of a closed set of actions and "
        "styles that all occur in training; whenever MiniLM matches the prompt to a training sentence of the same "
        f"action ({_pct(res['nearest_neighbour_label_match'])} % exactly, action and style), the baseline returns a real "
        "captured clip: right content, mocap quality, the FID of real data. TEMOS must turn the same text into a "
        "latent and decode it with a small network trained on a CPU, so it blurs neighbouring labels "
        "(left/right hand, the styles of one action) and smooths details. What the nearest neighbour cannot do: make "
        "a new motion, vary it (MultiModality), combine what no single clip shows, or fit a duration (it crops or "
        "holds the last pose)."
        + (
            f" The nearest neighbour even scores above the ground truth on R@3 ({_pct(nn['R@3'])} vs {_pct(gt['R@3'])} %): "
            "it picks motions by the same MiniLM similarity that the evaluator's text side is built on, so part of its "
            "score is agreement with MiniLM rather than with the clip."
            if nn["R@3"] > gt["R@3"]
            else ""
        )
    )
    common = {c: v for c, v in res["per_content_R_other_labels@3"].items() if v["prompts"] >= 30}
    if common:
        ranked = sorted(common, key=lambda c: common[c]["temos_fact1"])
        worst, best = ranked[:3], ranked[-3:][::-1]
        out.append(
            "- **Per action** (R@3 against other labels, actions with ≥ 30 prompts): TEMOS does best on "
            + ", ".join(f"{c} ({_pct(common[c]['temos_fact1'])} %)" for c in best)
            + "; worst on "
            + ", ".join(
                f"{c} ({_pct(common[c]['temos_fact1'])} %, nearest neighbour {_pct(common[c]['nearest_neighbour'])} %)"
                for c in worst
            )
            + "."
        )
    ape_note = (
        "fact 0 scores at or below fact 1, as expected: APE rewards the average path"
        if t0["APE_root"] <= t1["APE_root"]
        else "here fact 1 scores below fact 0"
    )
    out.append(
        f"- **Joint positions.** APE root {_f(t1['APE_root'])} m, local {_f(t1['APE_local'])} m, AVE root "
        f"{_f(t1['AVE_root'])} m (fact 1); TEMOS on KIT-ML in the paper: {TEMOS_KIT['APE_root']}, "
        f"{TEMOS_KIT['APE_local']}, {TEMOS_KIT['AVE_root']}. Same definitions, other data (shorter clips here, many "
        f"standing in place), so only the orders of magnitude compare. Random training motions: APE root "
        f"{_f(rnd['APE_root'])} m; nearest neighbour {_f(nn['APE_root'])} m; {ape_note}."
    )
    out.append(
        f"- **Motion quality.** Foot skating {_pct(t1['skating_ratio'])} % of frame steps for TEMOS vs "
        f"{_pct(gt['skating_ratio'])} % in the captured clips; jerk {_f(t1['jerk_mps3'], 1)} vs "
        f"{_f(gt['jerk_mps3'], 1)} m/s³ (lower is not better when it is far below the data's: that is missing "
        f"motion); ground penetration {_f(100 * t1['penetration_m'], 2)} vs {_f(100 * gt['penetration_m'], 2)} cm."
    )
    return out


def _real_variety_sentence(rv: dict | None) -> str:
    if not rv:
        return ""
    r = rv["R@3"]
    text = (
        f" A sampler of real variety — another captured performance of the prompt's action and style, a training "
        f"clip of its label drawn at random ({rv['prompts']} prompts whose label has one) — reaches R@3 = "
        f"{_pct(r['other_performance'])} % on those prompts (the ground truth {_pct(r['ground_truth'])} %, TEMOS "
        f"fact 0 / fact 1 {_pct(r['temos_fact0'])} / {_pct(r['temos_fact1'])} %)"
    )
    if r["other_performance"] < r["temos_fact0"]:
        text += (
            ": the evaluator ranks a text's typical motion above its particular performances, so takes that varied "
            "exactly as captured performances do would lose hits against the mean latent"
        )
    return text + "."


def _training_time(summary: dict) -> str:
    text = f"trained in {summary.get('train_seconds', '?')} s"
    if "train_cpu_seconds" in summary:
        text += f" ({summary['train_cpu_seconds']} s of CPU time, {summary.get('torch_threads', '?')} threads)"
    return text


def write_markdown(res: dict, path: Path) -> None:
    m = res["methods"]
    d, e = res["data"], res["evaluator"]
    mach = res["machine"]
    model = res["model"]
    lines = [
        "# Evaluation",
        "",
        f"Model `{model['model_id']}` from `{model['folder']}` (weights sha256 `{model['weights_sha256_16']}…`), "
        f"evaluated {res['date']} on {mach['cpu']} ({mach['logical_cpus']} logical CPUs, torch {mach['torch']} with "
        f"{mach['torch_threads']} threads, {mach['os']}, Python {mach['python']}) in {res['seconds']['total']:.0f} s. "
        "Reproduce with `make eval`, or:",
        "",
        "```",
        f"python -m temos_blender.evaluate --model {model['folder']}",
        "```",
        "",
        "## Set-up",
        "",
        f"- **Test prompts**: the {d['test_clips']} test-split clips of data version {d['data_version']} at "
        f"{d['fps']:g} fps, each with its evaluation-only phrasings (never seen in training): {d['test_prompts']} "
        f"prompts ({d['distinct_test_prompts']} distinct texts, {d['labels']} action/style labels). Every method makes one "
        f"motion per prompt, as long as the prompt's clip; {d['test_clips_cropped']} clips longer than the model's "
        f"{d['max_duration_s']:g} s are cropped to their first {d['max_duration_s']:g} s (the ground truth too).",
        "- **Methods**, all measured in this run by the same evaluator: the ground-truth clip (upper bound); a random "
        "training clip (lower bound); the nearest neighbour (the training clip whose text has the highest MiniLM "
        "sentence-embedding cosine with the prompt; of the clips with that text, the one closest in length; cropped, or "
        "its last pose held, to the prompt's length); TEMOS with the mean text latent (fact 0); TEMOS sampled with "
        "fact 1 (take seed = seed + prompt index), both through the generator's own steps.",
        f"- **Evaluator** (`temos_blender/evaluate/evaluator.py`): a TMR-style retrieval model trained contrastively on "
        f"the training split only ({e['training'].get('train_clips', '?')} clips with mirrored copies, "
        f"{e['training'].get('train_texts', '?')} texts, {_training_time(e['training'])}): "
        f"joint positions → {e['config']['num_layers']}-layer transformer ({e['config']['model_dim']}-d, 4 frames per "
        f"token) and frozen MiniLM sentence embeddings → MLP, both into a {e['config']['embed_dim']}-d unit sphere; "
        f"InfoNCE at τ = {e['config']['temperature']}, with pairs whose text was written for the other clip's label "
        "taken out of the negatives, and frozen-pose copies of moving training clips "
        f"({_pct(e['config'].get('frozen_negatives', 0.0))} % of a batch) added as negatives of every text. It is cached "
        "in `.cache/evaluator/` and retrained when the data version or its configuration changes.",
        "",
        "## Text–motion retrieval and distribution",
        "",
        "| method | R@1 | R@2 | R@3 | R@1 (other labels) | R@3 (other labels) | FID ↓ | Diversity | MultiModality |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k in METHODS:
        r = m[k]
        mm = _f(r["MultiModality"]) if "MultiModality" in r else "–"
        lines.append(
            f"| {METHOD_NAMES[k]} | {_pct(r['R@1'])} | {_pct(r['R@2'])} | {_pct(r['R@3'])} | "
            f"{_pct(r['R_other_labels@1'])} | {_pct(r['R_other_labels@3'])} | {_f(r['FID'])} | {_f(r['Diversity'])} | {mm} |"
        )
    lines += [
        "",
        "R-precision in %. Distances are in the evaluator's unit-sphere space (a distance lies between 0 and 2), so FID, "
        "Diversity and MultiModality are on that scale, not on HumanML3D's.",
        "",
        "## Joint positions against the ground truth (metres)",
        "",
        "| method | APE root | APE traj | APE local | APE global | AVE root | AVE traj | AVE local | AVE global |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    keys = ("APE_root", "APE_traj", "APE_local", "APE_global", "AVE_root", "AVE_traj", "AVE_local", "AVE_global")
    for k in METHODS:
        lines.append(f"| {METHOD_NAMES[k]} | " + " | ".join(_f(m[k][x]) for x in keys) + " |")
    lines.append("| *TEMOS paper, KIT-ML (other data)* | " + " | ".join(f"*{TEMOS_KIT[x]}*" for x in keys) + " |")
    lines += [
        "",
        "## Motion quality",
        "",
        "| method | foot skating ratio | jerk (m/s³) | ground penetration (cm) | local joint speed (m/s) | text–motion distance |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k in METHODS:
        r = m[k]
        lines.append(
            f"| {METHOD_NAMES[k]} | {_pct(r['skating_ratio'])} % | {_f(r['jerk_mps3'], 1)} | "
            f"{_f(100 * r['penetration_m'], 2)} | {_f(r['local_speed_mps'], 3)} | {_f(r['text_motion_distance'])} |"
        )
    lines += [
        "",
        "## Per action: R@3 against other labels (%)",
        "",
        "| action | prompts | "
        + " | ".join(
            METHOD_NAMES[k].split(" (")[0] if k != "temos_fact0" and k != "temos_fact1" else METHOD_NAMES[k]
            for k in METHODS
        )
        + " |",
        "| --- | --- | " + " | ".join("---" for _ in METHODS) + " |",
    ]
    for c, v in sorted(res["per_content_R_other_labels@3"].items(), key=lambda kv: -kv[1]["prompts"]):
        lines.append(f"| {c} | {v['prompts']} | " + " | ".join(_pct(v[k]) for k in METHODS) + " |")
    lines += ["", "## Discussion", ""] + discussion(res) + ["", "## Definitions", ""] + DEFINITIONS
    lines += ["", f"Timings (s): {', '.join(f'{k} {v}' for k, v in res['seconds'].items())}.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


DEFINITIONS = [
    "- **R-precision (R@k)**: the prompts are shuffled (fixed seed) and cut into batches of 32; for each motion, the 32 "
    "texts of its batch (its own + 31 others) are ranked by distance to the motion's embedding; R@k is the share of "
    "motions whose own text is among the k nearest. Averaged over 20 shuffles. *Other labels*: the 31 wrong texts are "
    "drawn for each motion from prompts of a different label (the same draws for every method; 5 repeats).",
    "- **FID**: Fréchet distance between Gaussians fitted to a method's motion embeddings and to the ground truth's.",
    "- **Diversity**: mean distance between the embeddings of 300 random pairs of a method's motions.",
    "- **MultiModality**: for 100 random prompts, 10 takes each (fact 1, seeds 1000–1009); the mean distance over all "
    "pairs of takes of the same prompt, averaged over prompts.",
    "- **Text–motion distance**: mean distance between a motion's embedding and its prompt's.",
    "- **APE / AVE** (TEMOS, `temos/model/metrics/compute.py`): both motions are put in TEMOS' frame — floor (lowest "
    "ankle or foot joint over the clip) at 0, the pelvis starting at the origin, the first frame's heading (from hips "
    "and shoulders) fixed. *root*: the pelvis (x, height, z); *traj*: its ground path (x, z); *local*: the 21 other joints "
    "relative to the pelvis' ground point, turned into each frame's own heading, averaged over joints; *global*: all 22 "
    "joints, averaged over joints. APE = L2 distance averaged over all frames of all clips; AVE = per clip, the L2 "
    "distance between the per-coordinate variances over time (denominator T − 1), averaged over clips.",
    "- **Foot skating ratio**: share of frame-to-frame steps in which a foot (SMPL's `left_foot`/`right_foot`, the ball "
    "of the foot) is below 5 cm above the clip's floor in both frames and moves horizontally faster than 0.75 m/s "
    "(= 2.5 cm per frame at 30 fps).",
    "- **Local joint speed**: mean speed of the 21 non-root joints relative to the pelvis, in the body's own moving "
    "frame (the *local* pose above): how much the limbs move, whatever the root does.",
    "- **Jerk**: mean norm of the third finite difference of all joint positions × fps³ (m/s³), at the model's frame rate.",
    "- **Ground penetration**: mean over frames of how far the lowest ankle or foot joint is below the ground plane "
    "y = 0 of the take (0 when above).",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m temos_blender.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--out", default="docs/EVALUATION.md", help="Markdown report (default docs/EVALUATION.md)")
    parser.add_argument("--json", default=None, help="numbers as JSON (default: evaluation.json beside --out)")
    parser.add_argument("--qualitative", default=None, help="qualitative report (default: QUALITATIVE.md beside --out)")
    parser.add_argument("--no-qualitative", action="store_true", help="skip the 20-prompt qualitative set")
    parser.add_argument(
        "--sheets",
        default=None,
        help="also render a preview sheet of each qualitative prompt's takes into this folder (needs bpy)",
    )
    parser.add_argument("--max-clips", type=int, default=None, help="use only the first N test clips (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.with_name("evaluation.json")
    for folder in {out.parent, json_path.parent, *([Path(args.qualitative).parent] if args.qualitative else [])}:
        folder.mkdir(parents=True, exist_ok=True)
    from ..core.generate import TemosGenerator
    from ..errors import TemosError

    t0 = time.monotonic()
    try:
        gen = TemosGenerator.load(args.model, device="cpu")
        clips = load_motion_clips(gen.cfg.fps)
    except (TemosError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    loading = {"load model and data": round(time.monotonic() - t0, 1)}
    res = evaluate(args.model, gen=gen, clips=clips, timings=loading, max_clips=args.max_clips, seed=args.seed)
    if not args.no_qualitative:
        from .qualitative import qualitative_markdown, run_lengths, run_qualitative

        t0 = time.monotonic()
        rows = run_qualitative(gen, clips, seed=args.seed)
        res["qualitative"] = rows
        res["qualitative_lengths"] = run_lengths(gen, seed=args.seed)
        res["seconds"]["qualitative"] = round(time.monotonic() - t0, 1)
        q_path = Path(args.qualitative) if args.qualitative else out.with_name("QUALITATIVE.md")
        if args.sheets:
            from .qualitative import render_sheets

            t0 = time.monotonic()
            try:
                sheets = render_sheets([r["prompt"] for r in rows], args.sheets, args.model, seed=args.seed)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                print(f"warning: no preview sheets: {e}", file=sys.stderr)
            else:
                for r, sheet in zip(rows, sheets):
                    r["sheet"] = Path(os.path.relpath(sheet, q_path.parent)).as_posix()
                print(f"wrote {len(sheets)} preview sheets to {args.sheets}")
            res["seconds"]["preview sheets"] = round(time.monotonic() - t0, 1)
        header = {
            "model_id": res["model"]["model_id"],
            "sha256": res["model"]["weights_sha256_16"],
            "date": res["date"],
            "seed": args.seed,
        }
        q_path.write_text(qualitative_markdown(rows, header, res["qualitative_lengths"]), encoding="utf-8")
        print(f"wrote {q_path}")
        res["seconds"]["total"] = round(res["seconds"]["total"] + res["seconds"]["qualitative"], 1)
    write_markdown(res, out)
    json_path.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} and {json_path}")
    return 0
