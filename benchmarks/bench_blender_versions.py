"""How fast are takes baked in each supported Blender? Writes the "Bake across Blender versions" section of
docs/BENCHMARKS.md.

    python benchmarks/bench_blender_versions.py [--rounds 3] [--runs 5] [--no-write]

The add-on keys through one module, :mod:`temos_blender.blender.compat`, on three action APIs: 4.2's legacy
``action.fcurves``, 4.5's slotted actions (a channelbag per slot, groups made by hand) and 5.0's (``fcurves.new``
makes the group). Each version runs ``bench_ui.bake_speed`` — takes × 22 bones × 200 frames written with
``keyframe_points.add`` + ``foreach_set`` against pose-bone ``keyframe_insert`` in the same process — in a child
process of its own, with the add-on installed from the zip as a user would. Timings of a few milliseconds move by
half from one process to the next on a shared machine, so the versions take turns (4.2, 4.5, 5.0, 4.2, …) for
``--rounds`` rounds and the table gives the median over rounds with the range. The bpy modules come
from ``.venv-bpy42`` (4.2 LTS), ``.venv`` (4.5 LTS) and ``.venv-bpy50`` (5.0); ``make test-compat`` makes the two
others. A version whose environment is absent is listed as not measured. The ratios are against 4.5, measured in
the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENVIRONMENTS = {"4.2 LTS": ".venv-bpy42", "4.5 LTS": ".venv", "5.0": ".venv-bpy50"}
BASELINE = "4.5 LTS"
TAKES = (1, 4, 16)
BEGIN, END = (
    "<!-- BEGIN bake-versions: written by benchmarks/bench_blender_versions.py -->",
    "<!-- END bake-versions -->",
)


def _bench_ui():
    spec = importlib.util.spec_from_file_location("bench_ui", REPO / "benchmarks" / "bench_ui.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(runs: int) -> None:
    """In the environment's own Python: install the add-on, add an SMPL rig, time the bakes, print one JSON line."""
    tmp = Path(tempfile.mkdtemp(prefix="temos-bench-versions-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(tmp / "blender")  # never touch a real Blender configuration
    bench_ui = _bench_ui()
    import bpy

    blender = bench_ui.install_addon(tmp)
    bpy.ops.temos.add_smpl_armature()
    rig = bpy.context.scene.temos.armature
    speeds = [bench_ui.bake_speed(blender, rig, takes=t, runs=runs) for t in TAKES]
    print("RESULT " + json.dumps({"bpy": bpy.app.version_string, "speeds": speeds}), flush=True)
    sys.stdout.flush()
    os._exit(0)  # bpy 4.5 can hang at interpreter exit


def _run_child(python: Path, runs: int) -> dict | str:
    proc = subprocess.run(
        [str(python), __file__, "--child", "--runs", str(runs)], cwd=REPO, capture_output=True, text=True
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:])
        return f"failed (exit status {proc.returncode}): {tail}"
    return json.loads(lines[-1][len("RESULT ") :])


def measure(rounds: int, runs: int) -> dict[str, list[dict] | str]:
    """Each version's results, one per round, or why it was not measured."""
    out: dict[str, list[dict] | str] = {}
    for version, venv in ENVIRONMENTS.items():
        if not (REPO / venv / "bin" / "python").is_file():
            out[version] = f"not measured: no `{venv}` (`make test-compat` makes it)"
        else:
            out[version] = []
    for i in range(rounds):
        for version, venv in ENVIRONMENTS.items():
            if isinstance(out[version], str):
                continue
            result = _run_child(REPO / venv / "bin" / "python", runs)
            if isinstance(result, str):
                out[version] = result
                continue
            out[version].append(result)
            print(f"round {i + 1}", version, json.dumps(result), flush=True)
    return out


def _summary(results: list[dict], takes: int, key: str) -> tuple[float, float, float]:
    values = [next(s[key] for s in r["speeds"] if s["takes"] == takes) for r in results]
    return statistics.median(values), min(values), max(values)


def render(results: dict[str, list[dict] | str], rounds: int, runs: int) -> str:
    info = _bench_ui().machine()
    lines = [
        "### Bake across Blender versions",
        "",
        f"Measured by `benchmarks/bench_blender_versions.py` on {time.strftime('%Y-%m-%d')}: {info['cpu']}, "
        f"{info['cores']} cores, Python {info['python']}. Takes × 22 bones × 200 frames as in the table above, each "
        f"version in a child process of its own, the versions taking turns for {rounds} rounds; a round's time is the "
        f"median of {runs} bakes (of {max(1, runs // 2)} for `keyframe_insert`), and the table gives the median "
        f"over rounds (the range in brackets). *vs {BASELINE}* is that median over {BASELINE}'s.",
        "",
        "| Blender | takes | F-curves | `keyframe_points.add` + `foreach_set` ms | `keyframe_insert` ms | speed-up "
        f"| vs {BASELINE} | NLA only ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = results.get(BASELINE)
    notes = []
    for version, result in results.items():
        if isinstance(result, str):
            notes.append(f"- {version}: {result}.")
            continue
        for takes in TAKES:
            fast, fast_lo, fast_hi = _summary(result, takes, "fast_ms")
            slow = _summary(result, takes, "slow_ms")[0]
            nla = _summary(result, takes, "nla_ms")[0]
            curves = next(s["curves"] for s in result[0]["speeds"] if s["takes"] == takes)
            ratio = f"{fast / _summary(base, takes, 'fast_ms')[0]:.2f}×" if isinstance(base, list) else "–"
            lines.append(
                f"| {result[0]['bpy']} | {takes} | {curves} | **{fast:.1f}** ({fast_lo:.1f}–{fast_hi:.1f}) | "
                f"{slow:.1f} | **{slow / fast:.1f}×** | {ratio} | {nla:.1f} |"
            )
    lines.append("")
    measured = [r for r in results.values() if isinstance(r, list)]
    if measured:
        goal = _bench_ui().SPEEDUP_GOAL
        lowest = min(_summary(r, t, "slow_ms")[0] / _summary(r, t, "fast_ms")[0] for r in measured for t in TAKES)
        verdict = "met" if lowest >= goal and len(measured) == len(results) else "not met"
        lines += [f"Goal — speed-up ≥ {goal:g}× on every supported version: lowest {lowest:.1f}×, {verdict}.", ""]
    if notes:
        lines += notes + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns each version takes")
    parser.add_argument("--runs", type=int, default=5, help="bake runs per size (half as many for keyframe_insert)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not rewrite docs/BENCHMARKS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.runs)
    results = measure(args.rounds, args.runs)
    text = render(results, args.rounds, args.runs)
    print(text)
    if not args.no_write:
        _bench_ui().write_section(text, BEGIN, END)
        print("Wrote the bake-across-versions section of docs/BENCHMARKS.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
