"""Choose the checkpoint to ship from a training run, by validation retrieval and validation reconstruction.

    python -m temos_blender.evaluate.select runs/bundled                     # scores → runs/bundled/selection.json
    python -m temos_blender.evaluate.select runs/bundled --export vendor_models/temos-cmu-kitml
    python -m temos_blender.evaluate.select runs/bundled runs/more         # one pool: a run and its continuation

Candidates are the run's snapshots (``RUN/snapshots/stepNNNNNN``, one per validation). Each is scored on the
*validation* split — the test split stays untouched for the final report — with the evaluation's retrieval evaluator
(trained on the training split only): R@3 of fact-1 samples for the validation clips' evaluation-only phrasings,
averaged over a few independent draws, R@3 of the mean latent (fact 0) for reference, and the FID of the fact-1
samples against the validation clips (``val_FID``, the evaluator's embeddings). The validation reconstruction from
the text latent comes from the training log (``val_rec_text``).

Length check: the validation clips of steady locomotion (runs, walks: ``LOOP_CONTENT``) are generated from their
evaluation-only phrasings with the mean latent at :data:`LONG_S` seconds, and their mean pelvis speed is compared with
the captured clip's (``val_speed_ratio_long``; ``val_speed_ratio`` is the same at the clip's own length). The validation
takes otherwise have the clips' own lengths (runs: 3.4 s on average), so without it the rule cannot see a model whose
runs slow to a jog when an animator asks for 8 s.

Rule: among the snapshots whose validation reconstruction is within ``rec_tolerance`` (5 %) of the lowest one's, those
that keep at least ``long_speed_min`` (75 %) of the captured speed at :data:`LONG_S` s (all of them when none does);
of these, those whose mean fact-1 R@3 is within ``r3_tolerance`` (1 point) of the best; of these, the one with the
lowest ``val_FID`` (ties to the later step). Reconstruction alone would pick the blurriest checkpoint (an average motion reconstructs
well and animates badly); retrieval alone could pick one that drifted from the data, and between neighbouring
snapshots it moves by ±1.5 points while the motion itself keeps improving — inside that band, the motion that looks
most like the data wins.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

SNAPSHOT = re.compile(r"^step(\d+)$")
LONG_S = 8.0
"""Length (s) of the length check's takes."""


def snapshots(run: Path) -> list[tuple[int, Path]]:
    """(step, folder) of the run's snapshots that hold weights, by step."""
    found = []
    for folder in (run / "snapshots").glob("step*"):
        m = SNAPSHOT.match(folder.name)
        if m and (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
            found.append((int(m.group(1)), folder))
    return sorted(found)


def validation_log(run: Path) -> dict[int, dict]:
    """The training log's validation rows (``RUN/log.jsonl``) by step; the last row of a step wins (resumes)."""
    rows = {}
    path = run / "log.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[int(row["step"])] = row
    return rows


def choose(
    rows: list[dict], rec_tolerance: float = 0.05, r3_tolerance: float = 0.01, long_speed_min: float | None = 0.75
) -> dict:
    """The row to ship. Pool: rows with ``val_rec_text`` ≤ (1 + rec_tolerance) × the lowest (rows without a
    reconstruction, i.e. without a log row, only when none has one); of those, the rows whose
    ``val_speed_ratio_long`` is ≥ ``long_speed_min`` when any is (``None``: no length check). Of the pool's rows whose
    ``R@3_fact1`` is within ``r3_tolerance`` of the pool's best, the lowest ``val_FID``; rows without a FID count as
    worst. Ties → the later one: the later run (``order``, when rows come from several), then the later step."""
    if not rows:
        raise ValueError("no checkpoints to choose from")
    with_rec = [r for r in rows if r.get("val_rec_text") is not None]
    pool = rows
    if with_rec:
        limit = (1.0 + rec_tolerance) * min(r["val_rec_text"] for r in with_rec)
        pool = [r for r in with_rec if r["val_rec_text"] <= limit]
    if long_speed_min is not None:
        pool = [r for r in pool if (r.get("val_speed_ratio_long") or 0.0) >= long_speed_min] or pool
    best = max(r["R@3_fact1"] for r in pool)
    near = [r for r in pool if r["R@3_fact1"] >= best - r3_tolerance - 1e-9]
    return min(near, key=lambda r: (round(r.get("val_FID", float("inf")), 6), -r.get("order", 0), -r["step"]))


def score(folder: Path, clips, evaluator, embedder, draws: int = 3, seed: int = 0, repeats: int = 20) -> dict:
    """Validation R@3 of one model folder: fact 0 and ``draws`` independent fact-1 samplings of every prompt, and the
    FID of the fact-1 samples (all draws) against the prompts' validation clips, and their MultiModality (the spread of
    one prompt's draws; reported, not part of the rule)."""
    from ..core.generate import TemosGenerator
    from .metrics import frechet_distance, multimodality, r_precision
    from .run import frame_range, test_items
    from .sampling import sample_joints, text_latents

    gen = TemosGenerator.load(folder, device="cpu")
    items = test_items(clips, *frame_range(gen, evaluator), split="val")
    prompts = [it.text for it in items]
    text_emb = evaluator.embed_texts(embedder(prompts))
    unique = sorted(set(prompts))
    mu_u, logvar_u = text_latents(gen, unique)
    sel = torch.tensor([unique.index(p) for p in prompts])
    mu, logvar, lengths = mu_u[sel], logvar_u[sel], [it.frames for it in items]

    def r3(emb) -> float:
        return float(r_precision(emb, text_emb, repeats=repeats, seed=seed)[2])

    fps = gen.cfg.fps
    gt_emb = evaluator.embed_motions([clips.joints[it.clip][: it.frames] for it in items], fps)
    fact1_emb = [
        evaluator.embed_motions(
            sample_joints(gen, mu, logvar, lengths, 1.0, seeds=[seed + 100_000 * d + k for k in range(len(items))]), fps
        )
        for d in range(draws)
    ]
    fact1 = [r3(emb) for emb in fact1_emb]
    fact0 = r3(evaluator.embed_motions(sample_joints(gen, mu, logvar, lengths, 0.0, seeds=[0] * len(items)), fps))
    return {"prompts": len(items), "R@3_fact1": float(np.mean(fact1)), "R@3_fact1_draws": fact1, "R@3_fact0": fact0,
            "val_FID": frechet_distance(np.concatenate(fact1_emb), gt_emb),
            "val_MM": multimodality(np.stack(fact1_emb, axis=1)) if draws >= 2 else None,
            **speed_ratios(gen, clips)}  # fmt: skip


def speed_ratios(gen, clips) -> dict:
    """The length check: mean over the validation clips of steady locomotion of (pelvis speed of the mean-latent take
    of the clip's first evaluation-only phrasing) / (the captured clip's), at the clip's own length
    (``val_speed_ratio``) and at :data:`LONG_S` s (``val_speed_ratio_long``); ``None`` without such clips."""
    from ..data.processing import LOOP_CONTENT
    from . import checks
    from .sampling import sample_joints, text_latents

    idx = [i for i, r in enumerate(clips.records)
           if r["split"] == "val" and r.get("content") in LOOP_CONTENT and r.get("eval_texts")]  # fmt: skip
    if not idx:
        return {"val_speed_ratio": None, "val_speed_ratio_long": None}
    captured = np.array([checks.measure(clips.joints[i], clips.fps)["speed_mps"] for i in idx])
    keep = captured > 0.2  # a clip that barely moves has no speed to keep
    idx, captured = [i for i, k in zip(idx, keep) if k], captured[keep]
    if not idx:
        return {"val_speed_ratio": None, "val_speed_ratio_long": None}
    mu, logvar = text_latents(gen, [clips.records[i]["eval_texts"][0] for i in idx])
    fps = gen.cfg.fps
    out = {}
    for key, lengths in (("val_speed_ratio", [len(clips.joints[i]) for i in idx]),
                         ("val_speed_ratio_long", [round(LONG_S * fps)] * len(idx))):  # fmt: skip
        takes = sample_joints(gen, mu, logvar, lengths, 0.0, seeds=[0] * len(idx))
        out[key] = float(np.mean([checks.measure(j, fps)["speed_mps"] for j in takes] / captured))
    return out


def select(
    runs: Path | list[Path],
    last: int | None = None,
    draws: int = 3,
    seed: int = 0,
    rec_tolerance: float = 0.05,
    r3_tolerance: float = 0.01,
    long_speed_min: float | None = 0.75,
    step: int | None = None,
) -> dict:
    """Score the snapshots of one run, or of several runs in training order (a run continued from another's weights
    comes after it), the ``last`` N of each only when given — or only the snapshot at ``step`` (a choice made
    elsewhere, e.g. by the rule for stage 4 in docs/MODEL_HISTORY.md) — and choose one; returns the report dict."""
    from tqdm import tqdm

    from ..core.weights import read_config
    from .clips import load_motion_clips
    from .evaluator import SentenceEmbedder, load_or_train

    runs = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    found = []
    for order, run in enumerate(runs):
        listed = snapshots(run)
        if not listed:
            raise FileNotFoundError(f"{run} has no snapshots (expected {run / 'snapshots' / 'stepNNNNNN'})")
        log = validation_log(run)
        for at, folder in listed[-last:] if last else listed:
            if step is None or at == step:
                found.append((order, run, at, folder, log.get(at, {}).get("val_rec_text")))
    if not found:
        raise FileNotFoundError(f"no snapshot at step {step} in {', '.join(str(r) for r in runs)}")
    clips = load_motion_clips(read_config(found[0][3]).fps, splits=("train", "val"))
    embedder = SentenceEmbedder()
    evaluator, _ = load_or_train(clips, embedder=embedder)
    rows = []
    for order, run, step, folder, rec in tqdm(found, desc="validation R@3", unit="checkpoint"):
        t0 = time.monotonic()
        row = {"run": run.name, "order": order, "step": step, "folder": str(folder), "val_rec_text": rec}
        row.update(score(folder, clips, evaluator, embedder, draws=draws, seed=seed))
        row["seconds"] = round(time.monotonic() - t0, 1)
        rows.append(row)
    chosen = choose(rows, rec_tolerance, r3_tolerance, long_speed_min)
    length = (
        "" if long_speed_min is None else f", that keep ≥ {100 * long_speed_min:g} % of the captured locomotion speed at "
        f"{LONG_S:g} s (all of them when none does)"
    )
    return {
        "runs": [r.name for r in runs],
        "rule": f"among snapshots whose val_rec_text is within {100 * rec_tolerance:g} % of the lowest{length} and whose mean "
        f"validation R@3 of {draws} fact-1 draws is within {100 * r3_tolerance:g} point(s) of the best, the lowest "
        "val_FID of those draws; ties to the later one",
        "chosen_run": chosen["run"],
        "chosen_step": chosen["step"],
        "chosen_folder": chosen["folder"],
        "rows": rows,
    }


def _ratio(row: dict, key: str) -> str:
    return f"{row[key]:>6.2f}" if row.get(key) is not None else f"{'—':>6}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m temos_blender.evaluate.select", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="training run folder (holds snapshots/ and log.jsonl); several = one pool, in training order")  # fmt: skip
    parser.add_argument("--last", type=int, default=None, help="score only the N latest snapshots of each run")
    parser.add_argument("--draws", type=int, default=3, help="independent fact-1 draws per checkpoint (default 3)")
    parser.add_argument("--rec-tolerance", type=float, default=0.05, help="reconstruction slack (default 0.05)")
    parser.add_argument("--r3-tolerance", type=float, default=0.01, help="R@3 slack, a fraction (default 0.01)")
    parser.add_argument("--long-speed-min", type=float, default=0.75,
                        help="length check: least share of the captured speed kept at 8 s (default 0.75; <0: off)")  # fmt: skip
    parser.add_argument("--step", type=int, default=None,
                        help="score (and export) only the snapshot at this step: a choice made by another rule")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export", default=None, help="write the chosen checkpoint here as float16")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = [Path(r) for r in args.runs]
    try:
        long_speed_min = None if args.long_speed_min < 0 else args.long_speed_min
        report = select(runs, args.last, args.draws, args.seed, args.rec_tolerance, args.r3_tolerance, long_speed_min,
                        args.step)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = runs[-1] / "selection.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    name = max(len(r.name) for r in runs)
    print(
        f"{'run':>{name}} {'step':>7} {'val_rec_text':>12} {'R@3 fact1':>10} {'R@3 fact0':>10} {'val_FID':>8} {'val_MM':>7}"
        f" {'speed':>6} {'@' + format(LONG_S, 'g') + ' s':>6}"
    )
    for r in report["rows"]:
        rec = "—" if r["val_rec_text"] is None else f"{r['val_rec_text']:.4f}"
        mark = "  ← chosen" if r["folder"] == report["chosen_folder"] else ""
        print(f"{r['run']:>{name}} {r['step']:>7} {rec:>12} {100 * r['R@3_fact1']:>9.1f}% {100 * r['R@3_fact0']:>9.1f}% "
              f"{r['val_FID']:>8.3f} {r['val_MM'] or 0:>7.3f} {_ratio(r, 'val_speed_ratio')} "
              f"{_ratio(r, 'val_speed_ratio_long')}{mark}")  # fmt: skip
    print(f"wrote {out}")
    if args.export:
        from ..core.weights import load_model, save_model

        save_model(load_model(report["chosen_folder"]), args.export, half=True)
        print(f"exported {report['chosen_run']} step {report['chosen_step']} to {args.export}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
