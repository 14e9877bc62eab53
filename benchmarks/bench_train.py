"""Training step time: float32, bfloat16 autocast (``TrainConfig.bf16``) and bfloat16 with length groups
(``TrainConfig.length_groups``), in one process.

    .venv/bin/python benchmarks/bench_train.py [--config configs/budget-base-grouped.json] [--steps 6] [--no-write]

One optimiser step of the given recipe (both encoders, both reconstructions, every loss term the recipe turns on,
backward, AdamW) on batches whose crop lengths are drawn as training draws them (``ClipBatcher`` over the training
cache, when it is built; otherwise half the clips at ``max_frames`` and half at random lengths), 16 text tokens.
The features are random, which does not change the arithmetic. The settings alternate for three rounds (so a
change in machine load hits all of them), each on the same batches; medians of ``--steps`` timed steps per round
after two warm-up steps. Writes the Training section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ui import DOC, REPO, machine, write_section  # noqa: E402

sys.path.insert(0, str(REPO))
from temos_blender.core.model import Temos, TemosConfig, lengths_to_mask  # noqa: E402
from temos_blender.train import TrainConfig, TrainingPass, grouped_step  # noqa: E402

BEGIN = "<!-- BEGIN train: written by benchmarks/bench_train.py -->"
END = "<!-- END train -->"


SETTINGS = {
    "float32": {"bf16": False, "length_groups": 1},
    "bfloat16 autocast (`bf16`)": {"bf16": True, "length_groups": 1},
    "bfloat16 + 2 length groups (`length_groups`)": {"bf16": True, "length_groups": 2},
}


def crop_lengths(cfg: TrainConfig, batches: int) -> tuple[list[torch.Tensor], str]:
    """Per batch, crop lengths as training draws them, and where they come from."""
    g = torch.Generator().manual_seed(0)
    try:
        from temos_blender.train import ClipBatcher, load_training_clips

        batcher = ClipBatcher(load_training_clips(cfg.data_fps)["train"], cfg, g)
    except (OSError, RuntimeError, ValueError) as e:  # no training cache here: a stated stand-in
        b, t = cfg.batch_size, cfg.max_frames
        out = []
        for _ in range(batches):
            lengths = torch.randint(cfg.min_frames, t + 1, (b,), generator=g)
            lengths[: b // 2] = t
            out.append(lengths)
        return out, f"half the clips at {t} frames, half at random lengths (no training cache: {e})"
    return [batcher.sample(cfg.batch_size)[2].sum(1) for _ in range(batches)], "crops drawn as training draws them"


def step_times(cfg: TrainConfig, steps: int, rounds: int = 3) -> tuple[dict[str, list[float]], str, float]:
    torch.manual_seed(0)
    model = Temos(TemosConfig.from_dict(cfg.model))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    all_lengths, source = crop_lengths(cfg, steps + 2)
    batches = []
    for lengths in all_lengths:
        mask = lengths_to_mask(lengths, int(lengths.max()))
        motion = torch.randn(len(lengths), mask.shape[1], model.cfg.nfeats).cumsum(1) * 0.1 * mask[..., None]
        text, text_mask = torch.randn(len(lengths), 16, model.cfg.text_dim), torch.ones(len(lengths), 16, dtype=torch.bool)
        batches.append((text, text_mask, motion, mask))
    real = sum(float(b[3].sum()) for b in batches) / sum(b[3].numel() for b in batches)

    def one(setting: dict, batch) -> float:
        run = replace(cfg, **setting)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        grouped_step(TrainingPass(model, bf16=run.bf16), *batch, run, 1.0)
        opt.step()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(rounds):
        for name, setting in SETTINGS.items():
            for batch in batches[:2]:
                one(setting, batch)
            times[name].append(statistics.median(one(setting, batch) for batch in batches[2:]))
    return times, source, real


def draw_times(cfg: TrainConfig, draws: int = 20) -> dict[str, float] | None:
    """Median seconds to draw one training batch (``ClipBatcher.sample``: crops, loops, canonicalisation), with the
    feature-space canonicalisation and with the SMPL round trip it replaces (the baseline), on the same draws."""
    import temos_blender.train as train
    from temos_blender.core.features import canonicalize, features_to_smpl, smpl_to_features

    try:
        clips = train.load_training_clips(cfg.data_fps)["train"]
    except (OSError, RuntimeError, ValueError):
        return None
    ways = {"SMPL round trip (before)": lambda f: smpl_to_features(*canonicalize(*features_to_smpl(f))),
            "feature space (`canonicalize_features`)": train.canonicalize_features}
    out = {}
    for name, way in ways.items():
        batcher = train.ClipBatcher(clips, cfg, torch.Generator().manual_seed(0))
        saved, train.canonicalize_features = train.canonicalize_features, way
        try:
            batcher.sample(cfg.batch_size)
            times = []
            for _ in range(draws):
                start = time.perf_counter()
                batcher.sample(cfg.batch_size)
                times.append(time.perf_counter() - start)
        finally:
            train.canonicalize_features = saved
        out[name] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "budget-base-grouped.json")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per precision and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = TrainConfig.from_json(args.config)
    m = machine()
    times, source, real = step_times(cfg, args.steps)
    draws = draw_times(cfg)
    base = statistics.median(times["float32"])
    load = ", ".join(f"{x:.2f}" for x in m["load"]) if m["load"] else "n/a"
    name = args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config
    lines = [
        "## Training",
        "",
        f"Measured by `benchmarks/bench_train.py` on {time.strftime('%Y-%m-%d')}: {m['cpu']}, {m['cores']} cores, "
        f"torch {torch.__version__} with {args.threads} thread(s), CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, Python {m['python']}. Load average when the run started: {load}.",
        "",
        f"One optimiser step of `{name}` (batch {cfg.batch_size}, {source}: {real:.0%} of the padded frames are real; "
        f"every loss term the recipe uses), the same {args.steps} batches timed in each of 3 alternating rounds, "
        "median seconds:",
        "",
        "| setting | round 1 | round 2 | round 3 | median | vs float32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, row in times.items():
        med = statistics.median(row)
        lines.append(f"| {label} | " + " | ".join(f"{x:.3f}" for x in row) + f" | **{med:.3f}** | {med / base:.2f}× |")
    lines += [
        "",
        "bfloat16 runs only the matrix products at lower precision: parameters, optimiser state, the decoder's output "
        "layer and the losses stay float32. Without hardware bfloat16 (no AVX-512 BF16 / AMX) it can be slower than "
        "float32; measure before turning it on. Length groups change no arithmetic that matters (the step's gradient "
        "is the whole batch's, `tests/training/test_train.py`); they skip padding.",
        "",
    ]
    if draws:
        before = draws["SMPL round trip (before)"]
        lines += [
            f"Drawing one batch of {cfg.batch_size} from the training cache (`ClipBatcher.sample`: crops, looped "
            "locomotion, canonicalisation of crops that start after a clip's first frame), median of 20 draws, the "
            "same draws each way:",
            "",
            "| canonicalisation | seconds per batch | vs before |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {k} | {v:.3f} | {v / before:.2f}× |" for k, v in draws.items()]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"Wrote the Training section of {DOC.relative_to(REPO)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
