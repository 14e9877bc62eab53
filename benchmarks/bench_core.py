"""Core speed on the CPU: text encoding, sampling takes, cold start; writes the "Core" section of docs/BENCHMARKS.md.

    python benchmarks/bench_core.py [--runs 7] [--threads N] [--no-write]

Two models: the official size (d=256, 6 layers, ff 1024, 4 heads, MiniLM-L6 text features) with random weights,
and the bundled model (``vendor_models/temos-cmu-kitml``) when it exists. Times are wall-clock medians of warm
runs after one warm-up; cold start (import + load, then the first request) runs in a fresh interpreter.
The goal: prompt → 4 takes × 8 s (text encoding, sampling, decoding, conversion) in ≤ 0.1 s warm, official size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "BENCHMARKS.md"
BUNDLED = REPO / "vendor_models" / "temos-cmu-kitml"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ui import write_section  # noqa: E402

BEGIN, END = "<!-- BEGIN core: written by benchmarks/bench_core.py -->", "<!-- END core -->"
PROMPT = "a person walks forward, turns around and waves with the right hand"
GOAL_S = 0.1
CASES = [(n, d) for n in (1, 4, 8) for d in (4.0, 8.0, 10.0)]  # includes the goal case, 4 takes × 8 s

OFFICIAL_SIZE = dict(
    model_id="official-size-random", latent_dim=256, ff_size=1024, num_layers=6, num_heads=4, text_dim=384
)  # fmt: skip

COLD_START = """
import json, time
w0, c0 = time.perf_counter(), time.process_time()
import torch
from temos_blender.core.generate import GenerateRequest, TemosGenerator
w1, c1 = time.perf_counter(), time.process_time()
if {threads}:
    torch.set_num_threads({threads})
gen = TemosGenerator.load({folder!r}, device="cpu")
w2, c2 = time.perf_counter(), time.process_time()
gen.generate(GenerateRequest({prompt!r}, duration_s=8.0, n_takes=4, seed=0))
w3, c3 = time.perf_counter(), time.process_time()
print(json.dumps({{"import": [w1 - w0, c1 - c0], "load": [w2 - w1, c2 - c1], "first": [w3 - w2, c3 - c2]}}))
"""


def machine() -> dict:
    import torch

    cpu = "unknown CPU"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else platform.processor() or cpu
    except OSError:
        cpu = platform.processor() or cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _clock() -> tuple[float, float]:
    """(wall-clock s, CPU s of this process: user + system, all threads)."""
    return time.perf_counter(), time.process_time()


def timed(fn, runs: int) -> dict[str, float]:
    """Median wall-clock and CPU milliseconds of ``fn()`` over ``runs`` runs after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = _clock()
        fn()
        w1, c1 = _clock()
        wall.append(w1 - w0)
        cpu.append(c1 - c0)
    return {"wall": statistics.median(wall) * 1e3, "cpu": statistics.median(cpu) * 1e3}


def stage_medians_ms(gen, request, runs: int) -> dict[str, dict[str, float]]:
    """Median wall-clock and CPU ms of each stage of ``generate`` (text, sample, decode, convert) and in total."""
    per_stage: dict[str, dict[str, list[float]]] = {}
    for i in range(runs + 1):
        marks: list[tuple[str, tuple[float, float]]] = []

        def on_progress(_i, _n, stage, marks=marks):
            marks.append((stage, _clock()))

        start = _clock()
        gen.generate(request, on_progress=on_progress)
        end = _clock()
        if i == 0:
            continue  # warm-up
        stamps = [c for _, c in marks] + [end]
        for (stage, c), c_next in zip(marks + [("total", start)], stamps[1:] + [end]):
            d = per_stage.setdefault(stage, {"wall": [], "cpu": []})
            d["wall"].append(c_next[0] - c[0])
            d["cpu"].append(c_next[1] - c[1])
    return {k: {m: statistics.median(v[m]) * 1e3 for m in v} for k, v in per_stage.items()}


def cold_start(folder: Path, threads: int) -> dict:
    code = COLD_START.format(folder=str(folder), prompt=PROMPT, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_model(name: str, folder: Path, runs: int, threads: int) -> dict:
    import torch

    from temos_blender.core.generate import GenerateRequest, TemosGenerator

    gen = TemosGenerator.load(folder, device="cpu")
    with torch.inference_mode():
        text = timed(lambda: gen.model.encode_text(*gen.text_model([PROMPT])), runs)
    result = {"name": name, "cfg": gen.cfg.to_dict(), "text": text, "cases": []}
    for n, duration in CASES:
        stages = stage_medians_ms(gen, GenerateRequest(PROMPT, duration_s=duration, n_takes=n, seed=0), runs)
        result["cases"].append({"n_takes": n, "duration_s": duration, "frames": gen.num_frames(duration), **stages})
    result["cold"] = cold_start(folder, threads)
    return result


def thread_scaling(folder: Path, runs: int, counts=(1, 2)) -> dict[int, dict]:
    """Totals of 4 takes × 8 s and 8 takes × 10 s with each torch thread count, same process and model."""
    import torch

    from temos_blender.core.generate import GenerateRequest, TemosGenerator

    gen = TemosGenerator.load(folder, device="cpu")
    before = torch.get_num_threads()
    out = {}
    for n in counts:
        torch.set_num_threads(n)
        out[n] = {
            (k, d): stage_medians_ms(gen, GenerateRequest(PROMPT, duration_s=d, n_takes=k, seed=0), runs)["total"]
            for k, d in ((4, 8.0), (8, 10.0))
        }
    torch.set_num_threads(before)
    return out


def official_size_folder(tmp: Path) -> Path:
    import torch

    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.weights import save_model

    torch.manual_seed(0)
    return save_model(Temos(TemosConfig(**OFFICIAL_SIZE)), tmp / "official-size")


def random_weights_folder(folder: Path, tmp: Path) -> Path:
    import torch

    from temos_blender.core.model import Temos
    from temos_blender.core.weights import read_config, save_model

    torch.manual_seed(0)
    return save_model(Temos(read_config(folder)), tmp / "bundled-config")


def _ms(t: dict[str, float]) -> str:
    return f"{t['wall']:.1f} / {t['cpu']:.1f}"


def render(results: list[dict], missing_bundled: bool, info: dict, runs: int) -> str:
    load = info["load"]
    lines = [
        "## Core",
        "",
        f"Measured by `benchmarks/bench_core.py` on {time.strftime('%Y-%m-%d')}: {info['cpu']}, {info['cores']} cores, "
        f"torch {info['torch']} with {info['threads']} thread(s), Python {info['python']}, CPU only. "
        f"Medians of {runs} warm runs after one warm-up; prompt: “{PROMPT}”. "
        "Each time is **wall-clock / CPU** in ms; CPU is the process's user + system time over all its threads. "
        "Stages of one `TemosGenerator.generate` call: *text* = tokenizer + text model + TEMOS text encoder, "
        "*sample* = the seeded latents, *decode* = transformer decoder + unnormalisation, *convert* = features → "
        "SMPL rotations → canonical pose → quaternions.",
        "",
    ]
    busy = load is not None and load[0] > 0.5 * (info["cores"] or 1)
    if load is not None:
        lines += [
            f"Load average when the run started: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) on "
            f"{info['cores']} cores"
            + (
                " — **the machine was busy with other work and this ran at low priority (`nice`), so the wall-clock "
                "times mostly measure waiting for a core; the CPU times are the better estimate of the cost on an "
                "idle machine.** Rerun on an idle machine for clean latencies."
                if busy
                else " — the machine was otherwise idle."
            ),
            "",
        ]
    for r in results:
        c, cold = r["cfg"], r["cold"]
        lines += [
            f"### {r['name']}",
            "",
            f"d={c['latent_dim']}, ff={c['ff_size']}, {c['num_layers']} layers, {c['num_heads']} heads, "
            f"text model {c['text_model']} ({c['text_dim']}-d), {c['fps']:g} fps.",
            "",
            f"- Text encoding (tokenizer + text model + TEMOS text encoder), one prompt: **{_ms(r['text'])} ms**",
            "- Cold start in a fresh interpreter (wall / CPU s): "
            f"import {cold['import'][0]:.2f} / {cold['import'][1]:.2f}, "
            f"load model + text model {cold['load'][0]:.2f} / {cold['load'][1]:.2f}, "
            f"first request (4 takes × 8 s) {cold['first'][0]:.2f} / {cold['first'][1]:.2f}",
            "",
            "| takes × length | frames | text | sample | decode | convert | total |",
            "|---|---|---|---|---|---|---|",
        ]
        for case in r["cases"]:
            lines.append(
                f"| {case['n_takes']} × {case['duration_s']:g} s | {case['frames']} | {_ms(case['encode text'])} | "
                f"{_ms(case['sample'])} | {_ms(case['decode'])} | {_ms(case['convert'])} | **{_ms(case['total'])}** |"
            )
        lines.append("")
        if r.get("threads"):
            lines += ["Total per request by torch thread count (same process; wall / CPU ms):", "",
                      "| threads | 4 takes × 8 s | 8 takes × 10 s |", "|---|---|---|"]  # fmt: skip
            for n, t in r["threads"].items():
                lines.append(f"| {n} | {_ms(t[(4, 8.0)])} | {_ms(t[(8, 10.0)])} |")
            lines.append("")
    official = next((r for r in results if r["name"].startswith("Official size")), None)
    if official is not None:
        goal = next(c for c in official["cases"] if (c["n_takes"], c["duration_s"]) == (4, 8.0))["total"]
        limit = GOAL_S * 1e3
        # On a busy machine wall-clock times mostly measure waiting, so judge by CPU time. With one thread it is
        # about what one idle core needs, an upper bound for two idle threads: below the goal proves it is met,
        # above it proves nothing. With more threads, busy-waiting inflates CPU time: CPU / threads is rough.
        if not busy:
            estimate, how = goal["wall"], "wall-clock"
            verdict = "met" if estimate <= limit else "**not met**"
        elif info["threads"] == 1:
            estimate, how = goal["cpu"], "single-thread CPU time (about an upper bound for two idle threads)"
            verdict = "met" if estimate <= limit else "not shown on this busy machine — rerun on an idle one"
        else:
            estimate, how = goal["cpu"] / info["threads"], f"CPU time / {info['threads']} threads (rough)"
            verdict = "probably met" if estimate <= limit else "probably not met — rerun on an idle machine"
        lines += [
            f"Goal — prompt → 4 takes × 8 s in ≤ {limit:.0f} ms warm at official size: {_ms(goal)} ms; "
            f"judged by {how} = {estimate:.1f} ms: {verdict}.",
            "",
        ]
    if missing_bundled:
        lines += ["Bundled model (`vendor_models/temos-cmu-kitml`): not yet bundled.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="warm runs per measurement (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not rewrite {DOC.name}")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = official_size_folder(Path(tmp))
        results.append(bench_model("Official size, random weights", folder, args.runs, args.threads))
        results[-1]["threads"] = thread_scaling(folder, args.runs)
        missing_bundled = not (BUNDLED / "config.json").is_file()
        if not missing_bundled:
            bundled, label = BUNDLED, f"Bundled model ({BUNDLED.name})"
            if not (BUNDLED / "model.safetensors").is_file():  # config only: time its size with random weights
                bundled, label = random_weights_folder(BUNDLED, Path(tmp)), label + ", random weights"
            results.append(bench_model(label, bundled, args.runs, args.threads))
            results[-1]["threads"] = thread_scaling(bundled, args.runs)
    text = render(results, missing_bundled, info, args.runs)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"Wrote the Core section of {DOC.relative_to(REPO)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
