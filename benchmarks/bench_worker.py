"""Thread job vs worker process: time to the takes, and what the main thread feels meanwhile.

Each mode runs in a fresh Python (so the cold run includes importing torch and transformers and loading the models):
a :class:`~temos_blender.blender.jobs.Job` on a thread, or a :class:`~temos_blender.blender.worker_client.ProcessJob`
(worker started with this same Python). While a job runs, the main thread ticks every 10 ms, as Blender's UI timer
would; the longest gap between ticks is what a user would feel as a freeze. Two generations per mode: cold, then warm.

    .venv/bin/python benchmarks/bench_worker.py [--model DIR] [--takes 4] [--duration 5]

Without ``--model`` it uses the bundled model when present, else a tiny random model (then only the start-up and
import costs are meaningful).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TICK_S = 0.010


def run_with_ticks(job) -> dict:
    """Start ``job``; tick on this thread until it ends. Returns wall time and tick gaps."""
    gaps = []
    started = time.perf_counter()
    job.start()
    last = time.perf_counter()
    while job.running or job.finished is None:
        time.sleep(TICK_S)
        now = time.perf_counter()
        gaps.append(now - last - TICK_S)
        last = now
        job.poll()
        if job.finished is not None and not job.running:
            break
    wall = time.perf_counter() - started
    gaps.sort()
    return {
        "ok": type(job.finished).__name__ == "Done",
        "wall_s": wall,
        "max_gap_ms": 1000 * gaps[-1] if gaps else 0.0,
        "p99_gap_ms": 1000 * gaps[int(0.99 * (len(gaps) - 1))] if gaps else 0.0,
        "error": getattr(job.finished, "message", ""),
    }


def inner(mode: str, model_dir: str, takes: int, duration_s: float, threads: int) -> dict:
    sys.path.insert(0, str(REPO_ROOT))
    from temos_blender.blender import jobs, worker_client

    plan = jobs.GenerationPlan(
        prompt="a person walks forward and waves",
        duration_s=duration_s,
        seeds=tuple(range(takes)),
        diversity=1.0,
        model=jobs.ModelSettings(model_dir=model_dir, device="cpu", threads=threads),
        retarget=lambda take: None,
    )

    def make_job():
        if mode == "thread":
            return jobs.Job(partial(jobs.generate_and_retarget, plan))
        return worker_client.ProcessJob(plan, python=sys.executable)

    out = {"mode": mode, "torch_in_main_process_before": "torch" in sys.modules}
    out["cold"] = run_with_ticks(make_job())
    out["warm"] = run_with_ticks(make_job())
    out["torch_in_main_process_after"] = "torch" in sys.modules
    if mode == "process":
        worker_client.shutdown()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="model folder (default: bundled, else a tiny random model)")
    parser.add_argument("--takes", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--inner", choices=("thread", "process"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.inner:
        result = inner(args.inner, args.model, args.takes, args.duration, args.threads)
        print("BENCH " + json.dumps(result), flush=True)
        os._exit(0)  # bpy (imported with the add-on's package) can hang at exit

    model = args.model
    tmp = None
    if not model:
        bundled = REPO_ROOT / "vendor_models" / "temos-cmu-kitml"
        if (bundled / "config.json").is_file():
            model = str(bundled)
        else:
            sys.path.insert(0, str(REPO_ROOT))
            import torch

            from temos_blender.core.model import Temos, TemosConfig
            from temos_blender.core.weights import save_model

            torch.manual_seed(0)
            tmp = tempfile.mkdtemp(prefix="bench-worker-")
            cfg = TemosConfig(model_id="tiny-bench", latent_dim=32, ff_size=64, num_layers=1, num_heads=2)
            model = str(save_model(Temos(cfg), tmp))
            print("No bundled model: using a tiny random model (generation itself is then almost free).")
    print(f"model: {model}; {args.takes} takes of {args.duration:g} s; {os.cpu_count()} CPUs")
    print(f"{'mode':8} {'run':5} {'wall s':>8} {'max gap ms':>11} {'p99 gap ms':>11}")
    for mode in ("thread", "process"):
        command = [sys.executable, __file__, "--inner", mode, "--model", model]
        command += ["--takes", str(args.takes), "--duration", str(args.duration), "--threads", str(args.threads)]
        run = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in run.stdout.splitlines() if line.startswith("BENCH ")]
        if not lines:
            print(f"{mode}: failed\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
            return 1
        result = json.loads(lines[-1][6:])
        for name in ("cold", "warm"):
            r = result[name]
            flag = "" if r["ok"] else f"  FAILED: {r['error']}"
            print(f"{mode:8} {name:5} {r['wall_s']:8.2f} {r['max_gap_ms']:11.1f} {r['p99_gap_ms']:11.1f}{flag}")
        print(f"{mode:8} torch imported into the main process: {result['torch_in_main_process_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
