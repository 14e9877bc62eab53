"""Training step time, float32 against bfloat16 autocast (``TrainConfig.bf16``), in one process.

    .venv/bin/python benchmarks/bench_train.py [--config configs/budget.json] [--steps 6] [--no-write]

One optimiser step of the given recipe (both encoders, both reconstructions, every loss term the recipe turns on,
backward, AdamW) on a batch shaped like training's: batch size from the config, half the clips at the longest crop
(``max_frames``) and half at random lengths, 16 text tokens. No data is read: inputs are random, which does not
change the arithmetic. The two precisions alternate for three rounds (so a change in machine load hits both);
medians of ``--steps`` timed steps per round after two warm-up steps. Writes the Training section of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ui import DOC, REPO, machine, write_section  # noqa: E402

sys.path.insert(0, str(REPO))
from temos_blender.core.model import Temos, TemosConfig, lengths_to_mask  # noqa: E402
from temos_blender.train import TrainConfig, TrainingPass, temos_losses  # noqa: E402

BEGIN = "<!-- BEGIN train: written by benchmarks/bench_train.py -->"
END = "<!-- END train -->"


def step_times(cfg: TrainConfig, steps: int, rounds: int = 3) -> dict[bool, list[float]]:
    torch.manual_seed(0)
    model = Temos(TemosConfig.from_dict(cfg.model))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b, t = cfg.batch_size, cfg.max_frames
    lengths = torch.randint(cfg.min_frames, t + 1, (b,))
    lengths[: b // 2] = t
    mask = lengths_to_mask(lengths, t)
    motion = torch.randn(b, t, model.cfg.nfeats).cumsum(1) * 0.1 * mask[..., None]
    text, text_mask = torch.randn(b, 16, model.cfg.text_dim), torch.ones(b, 16, dtype=torch.bool)

    def one(bf16: bool) -> float:
        start = time.perf_counter()
        losses = temos_losses(TrainingPass(model, bf16=bf16), text, text_mask, motion, mask, cfg)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        return time.perf_counter() - start

    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for bf16 in (False, True):
            for _ in range(2):
                one(bf16)
            times[bf16].append(statistics.median(one(bf16) for _ in range(steps)))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "budget.json")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per precision and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = TrainConfig.from_json(args.config)
    m = machine()
    times = step_times(cfg, args.steps)
    fp32, bf16 = statistics.median(times[False]), statistics.median(times[True])
    load = ", ".join(f"{x:.2f}" for x in m["load"]) if m["load"] else "n/a"
    lines = [
        "## Training",
        "",
        f"Measured by `benchmarks/bench_train.py` on {time.strftime('%Y-%m-%d')}: {m['cpu']}, {m['cores']} cores, "
        f"torch {torch.__version__} with {args.threads} thread(s), CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, Python {m['python']}. Load average when the run started: {load}.",
        "",
        f"One optimiser step of `{args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config}`"
        f" (batch {cfg.batch_size}, half the clips at {cfg.max_frames} frames; every loss term the recipe uses), "
        f"median of {args.steps} steps in each of 3 alternating rounds, seconds:",
        "",
        "| precision | round 1 | round 2 | round 3 | median | vs float32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| float32 | " + " | ".join(f"{x:.3f}" for x in times[False]) + f" | **{fp32:.3f}** | 1.00× |",
        "| bfloat16 autocast (`bf16`) | " + " | ".join(f"{x:.3f}" for x in times[True])
        + f" | **{bf16:.3f}** | {bf16 / fp32:.2f}× |",
        "",
        "bfloat16 runs only the matrix products at lower precision: parameters, optimiser state, the decoder's output "
        "layer and the losses stay float32. Without hardware bfloat16 (no AVX-512 BF16 / AMX) it can be slower than "
        "float32; measure before turning it on.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"Wrote the Training section of {DOC.relative_to(REPO)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
