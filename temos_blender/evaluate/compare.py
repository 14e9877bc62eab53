"""Compare a model with the one it would replace, on what a release is judged by; both measured in the same run.

    python -m temos_blender.evaluate.compare runs/mine/export                 # against the bundled weights
    python -m temos_blender.evaluate.compare A --against B --out out/compare.md

For a retrained, reproduced or fine-tuned model: is it as good as the weights it would replace? On the held-out test
split, with the same evaluator and the same prompts for both: fact-1 R@3 over several independent draws, and the
per-prompt difference between the two models (the same distractors for both, so it is paired; 95 % bootstrap interval
over test clips); fact-0 R@3, FID (the first draw's, and the mean and range over the draws: the draw-to-draw spread
says how much of a difference in FID is noise), APE root and MultiModality. Then the prompts an animator types: the
behaviour prompts (:mod:`.behaviour`, passing takes of 5), the qualitative set (passing takes of 60), jump prompts
(takes that leave the floor, how high the pelvis rises, the longest time both feet stay up: a captured jump's flight
lasts about 0.3–0.6 s) and a long wave's stroke speed. Writes Markdown and JSON.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import behaviour
from .clips import MotionClips, load_motion_clips
from .evaluator import RetrievalEvaluator, SentenceEmbedder, load_or_train
from .metrics import ape_ave, frechet_distance, paired_difference_ci, r_precision, r_precision_hits
from .run import fact1_seeds, frame_range, model_identity, multimodality_of, test_items
from .sampling import prompt_latents, sample_joints

JUMP_PROMPTS = ("a person jumps", "someone jumps up and down", "a man jumps in place", "someone leaps into the air")
"""Jumps an animator asks for, none phrased like a training description; judged together."""
OTHER_JUMP_PROMPTS = ("a person jumps forward", "a person hops")
"""Jumps the data barely holds (shown, not judged)."""
JUMP_LENGTH_S = 4.0
LONG_WAVE_S = 8.0


def retrieval(
    gen, items, evaluator: RetrievalEvaluator, text_emb: np.ndarray, gt_emb: np.ndarray, gt_joints: list[np.ndarray],
    draws: int, seed: int, repeats: int,
) -> tuple[dict, np.ndarray]:
    """A model's test-split numbers, and its per-prompt fact-1 R@3 hits averaged over ``draws`` (for pairing)."""
    mu, logvar = prompt_latents(gen, [it.text for it in items])
    lengths = [it.frames for it in items]
    fps = gen.cfg.fps
    r3, hits, fid = [], [], []
    out: dict = {}
    for d in range(draws):
        joints = sample_joints(gen, mu, logvar, lengths, 1.0, seeds=fact1_seeds(len(items), d, seed))
        emb = evaluator.embed_motions(joints, fps)
        r3.append(float(r_precision(emb, text_emb, repeats=repeats, seed=seed)[2]))
        hits.append(r_precision_hits(emb, text_emb, repeats=repeats, seed=seed))
        fid.append(float(frechet_distance(emb, gt_emb)))
        if d == 0:
            out["FID"] = fid[0]
            out["APE_root"] = ape_ave(joints, gt_joints)["APE_root"]
    out["FID_draws"] = fid
    out["FID_mean"] = float(np.mean(fid))
    joints0 = sample_joints(gen, mu, logvar, lengths, 0.0, seeds=[0] * len(items))
    emb0 = evaluator.embed_motions(joints0, fps)
    out["R@3_fact1"] = float(np.mean(r3))
    out["R@3_fact1_draws"] = r3
    out["R@3_fact0"] = float(r_precision(emb0, text_emb, repeats=repeats, seed=seed)[2])
    out["MultiModality"] = multimodality_of(gen, evaluator, mu, logvar, lengths, seed)[0]
    return out, np.mean(hits, axis=0)


def float_ratio(airborne_s: float, rise_m: float) -> float:
    """Time both feet stay up over the flight time of a body whose pelvis rises ``rise_m`` and falls back
    (2·sqrt(2h/g)): about 1 for a real jump (the captured jumps in place: 0.9), more when the legs tuck up and hang."""
    return airborne_s / (2.0 * np.sqrt(2.0 * max(rise_m, 1e-3) / 9.81))


def prompt_checks(gen, clips: MotionClips | None, seed: int, qualitative: bool) -> dict:
    """The behaviour prompts, the jump prompts, the long wave and (``qualitative``) the qualitative set."""
    measure = behaviour.TakeMeasurer(gen, seed=seed)
    out: dict = {"behaviour": {}, "jumps": {}}
    for b in behaviour.BEHAVIOURS:
        out["behaviour"][b.name] = behaviour.passing_takes(b, measure(b.prompt, b.duration_s))
    holds, slow, fast = behaviour.slower_holds(measure)
    out["slower"] = {"holds": holds, "slow_mps": slow, "fast_mps": fast}
    out["behaviour_passed"] = sum(n >= behaviour.MIN_PASSING for n in out["behaviour"].values()) + int(holds)
    out["behaviour_total"] = len(behaviour.BEHAVIOURS) + 1
    for prompt in JUMP_PROMPTS + OTHER_JUMP_PROMPTS:
        m = measure(prompt, JUMP_LENGTH_S)
        out["jumps"][prompt] = {
            "airborne_takes": sum(x["airborne_s"] >= 0.15 for x in m),
            "pelvis_rise_m": [round(x["pelvis_rise_m"], 3) for x in m],
            "airborne_s": [round(x["airborne_s"], 2) for x in m],
            "forward_m": [round(x["forward_m"], 2) for x in m],
        }
    judged = [out["jumps"][p] for p in JUMP_PROMPTS]
    out["jump_rise_mean_m"] = float(np.mean([r for j in judged for r in j["pelvis_rise_m"]]))
    out["jump_airborne_median_s"] = float(np.median([a for j in judged for a in j["airborne_s"]]))
    ratios = [float_ratio(a, r) for j in judged for a, r in zip(j["airborne_s"], j["pelvis_rise_m"]) if a > 0]
    out["jump_float_ratio_median"] = float(np.median(ratios)) if ratios else None
    out["long_wave_mps"] = float(
        np.mean([x["right_wrist_speed_raised_mps"] for x in measure(behaviour.WAVE, LONG_WAVE_S)])
    )
    if qualitative and clips is not None:
        from .qualitative import TAKES, run_qualitative

        rows = run_qualitative(gen, clips, seed=seed)
        out["qualitative_passed"] = int(sum(r["passed"] for r in rows))
        out["qualitative_total"] = TAKES * len(rows)
    return out


def compare(
    candidate: str | Path, against: str | Path, draws: int = 5, seed: int = 0, repeats: int = 20,
    max_clips: int | None = None, qualitative: bool = True, clips: MotionClips | None = None,
    evaluator: RetrievalEvaluator | None = None, embedder=None, progress: bool = True,
) -> dict:
    """Both models' numbers, and the paired fact-1 R@3 difference (candidate − against) with its 95 % interval."""
    from ..core.generate import TemosGenerator

    t0 = time.monotonic()
    gens = {"candidate": TemosGenerator.load(candidate, device="cpu"), "against": TemosGenerator.load(against, device="cpu")}
    if gens["candidate"].cfg.fps != gens["against"].cfg.fps:
        raise ValueError("the two models run at different frame rates; compare them with `make eval` each")
    clips = clips or load_motion_clips(gens["candidate"].cfg.fps)
    embedder = embedder or SentenceEmbedder()
    if evaluator is None:
        evaluator, _ = load_or_train(clips, embedder=embedder, progress=progress)
    ranges = [frame_range(g, evaluator) for g in gens.values()]
    items = test_items(clips, min(r[0] for r in ranges), max(r[1] for r in ranges), max_clips)
    gt = [clips.joints[it.clip][: it.frames] for it in items]
    text_emb = evaluator.embed_texts(embedder([it.text for it in items]))
    gt_emb = evaluator.embed_motions(gt, clips.fps)
    res: dict = {"date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "draws": draws, "seed": seed,
                 "test_prompts": len(items), "test_clips": len({it.clip for it in items})}  # fmt: skip
    hits = {}
    for name, gen in gens.items():
        res[name] = {"model": model_identity(Path(candidate if name == "candidate" else against), gen)}
        numbers, hits[name] = retrieval(gen, items, evaluator, text_emb, gt_emb, gt, draws, seed, repeats)
        res[name].update(numbers)
        res[name].update(prompt_checks(gen, clips, seed, qualitative))
        if progress:
            print(f"[compare] {name} measured ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    mean, lo, hi = paired_difference_ci(hits["candidate"], hits["against"], [it.clip for it in items], seed=seed)
    res["paired_R@3_fact1"] = {"mean": mean, "ci95": [lo, hi], "resampled": "test clips"}
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _spread(xs: list[float]) -> str:
    return f"{np.mean(xs):.3f} ({min(xs):.3f}–{max(xs):.3f})"


def _opt(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def markdown(res: dict) -> str:
    c, a = res["candidate"], res["against"]
    p = res["paired_R@3_fact1"]
    lines = [
        f"# {c['model']['folder']} against {a['model']['folder']}",
        "",
        f"{res['date']}; test split: {res['test_prompts']} prompts of {res['test_clips']} clips; seed {res['seed']}; "
        f"fact-1 R@3 over {res['draws']} draws. Candidate weights sha256 {c['model']['weights_sha256_16']}, the other's "
        f"{a['model']['weights_sha256_16']}.",
        "",
        f"**Paired fact-1 R@3, candidate − other: {100 * p['mean']:+.2f} points** (95 % interval {100 * p['ci95'][0]:+.2f} "
        f"to {100 * p['ci95'][1]:+.2f}, resampling test clips).",
        "",
        "| | candidate | other |",
        "| --- | --- | --- |",
        f"| R@3 fact 1 (mean of draws) | {_pct(c['R@3_fact1'])} | {_pct(a['R@3_fact1'])} |",
        f"| R@3 fact 0 (mean latent) | {_pct(c['R@3_fact0'])} | {_pct(a['R@3_fact0'])} |",
        f"| FID (fact 1, first draw, lower is better) | {c['FID']:.3f} | {a['FID']:.3f} |",
        f"| FID, mean of the draws (range) | {_spread(c['FID_draws'])} | {_spread(a['FID_draws'])} |",
        f"| APE root, m | {c['APE_root']:.3f} | {a['APE_root']:.3f} |",
        f"| MultiModality | {c['MultiModality']:.3f} | {a['MultiModality']:.3f} |",
        f"| behaviour prompts passed | {c['behaviour_passed']} / {c['behaviour_total']} | "
        f"{a['behaviour_passed']} / {a['behaviour_total']} |",
    ]
    if "qualitative_passed" in c:
        lines.append(f"| qualitative takes passed | {c['qualitative_passed']} / {c['qualitative_total']} | "
                     f"{a['qualitative_passed']} / {a['qualitative_total']} |")  # fmt: skip
    lines += [
        f"| right-hand wave at {LONG_WAVE_S:g} s, wrist speed while up (m/s) | {c['long_wave_mps']:.2f} | "
        f"{a['long_wave_mps']:.2f} |",
        f"| jumps: mean pelvis rise, m ({len(JUMP_PROMPTS)} prompts × {behaviour.SEEDS} takes) | "
        f"{c['jump_rise_mean_m']:.3f} | {a['jump_rise_mean_m']:.3f} |",
        f"| jumps: median longest time with both feet up, s | {c['jump_airborne_median_s']:.2f} | "
        f"{a['jump_airborne_median_s']:.2f} |",
        f"| jumps: median time up over a free flight of that rise (about 1 for a real jump) | "
        f"{_opt(c['jump_float_ratio_median'])} | {_opt(a['jump_float_ratio_median'])} |",
        "",
        f"Behaviour prompts: takes passing of {behaviour.SEEDS} (a prompt passes at {behaviour.MIN_PASSING}).",
        "",
        "| prompt | length | check | candidate | other |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in behaviour.BEHAVIOURS:
        lines.append(f"| {b.prompt} | {b.duration_s:g} s | {b.check.__name__} | {c['behaviour'][b.name]} | "
                     f"{a['behaviour'][b.name]} |")  # fmt: skip
    slow, fast, length = behaviour.SLOWER
    lines.append(f"| {slow} / {fast} | {length:g} s | slower on average | {c['slower']['slow_mps']:.2f} / "
                 f"{c['slower']['fast_mps']:.2f} m/s | {a['slower']['slow_mps']:.2f} / {a['slower']['fast_mps']:.2f} m/s |")  # fmt: skip
    lines += [
        "",
        f"Jump prompts at {JUMP_LENGTH_S:g} s: takes with both feet over 10 cm up for ≥ 0.15 s; pelvis rise (m) and the "
        "longest time both feet stay up (s), per take; the last two prompts are shown, not judged.",
        "",
        "| prompt | candidate | other |",
        "| --- | --- | --- |",
    ]

    def cell(j: dict) -> str:
        return f"{j['airborne_takes']}/{len(j['airborne_s'])}; rise {j['pelvis_rise_m']}; up {j['airborne_s']} s"

    for prompt in JUMP_PROMPTS + OTHER_JUMP_PROMPTS:
        lines.append(f"| {prompt} | {cell(c['jumps'][prompt])} | {cell(a['jumps'][prompt])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m temos_blender.evaluate.compare", description=__doc__.split("\n")[0])
    parser.add_argument("candidate", help="model folder (config.json + model.safetensors)")
    parser.add_argument("--against", default=None, help="the model it would replace (default: the bundled weights)")
    parser.add_argument("--out", default="out/compare.md", help="Markdown report; the JSON goes beside it")
    parser.add_argument("--draws", type=int, default=5, help="independent fact-1 draws (default 5)")
    parser.add_argument("--max-clips", type=int, default=None, help="use only the first N test clips (quick runs)")
    parser.add_argument("--no-qualitative", action="store_true", help="skip the 20-prompt qualitative set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..core.weights import bundled_model_folder
    from ..errors import TemosError

    against = args.against or bundled_model_folder()
    if against is None:
        print("error: no bundled weights to compare with; pass --against FOLDER", file=sys.stderr)
        return 2
    try:
        res = compare(args.candidate, against, draws=args.draws, seed=args.seed, max_clips=args.max_clips,
                      qualitative=not args.no_qualitative)  # fmt: skip
    except (TemosError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(res))
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    p = res["paired_R@3_fact1"]
    print(f"paired fact-1 R@3 {100 * p['mean']:+.2f} points (95 % {100 * p['ci95'][0]:+.2f} to {100 * p['ci95'][1]:+.2f}); "
          f"wrote {out} and {out.with_suffix('.json')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
