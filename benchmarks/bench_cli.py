"""The main job from the command line: wall time of each stage of `make demo`'s command, in fresh processes.

    .venv/bin/python benchmarks/bench_cli.py [--runs 3] [--no-write]

Runs ``python -m temos_blender generate`` exactly as ``scripts/demo.sh`` does (4 takes × 6 s on the SMPL rig, BVH +
FBX + glTF exports, MP4 preview) ``--runs`` times, each in a new process, as a user would; reports the median of each
stage the command itself times (``--json``'s ``timings_s``) and the process's whole wall time (interpreter start and
imports included). Writes the CLI section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ui import DOC, REPO, machine, write_section  # noqa: E402

BEGIN = "<!-- BEGIN cli: written by benchmarks/bench_cli.py -->"
END = "<!-- END cli -->"
PROMPT = "a person walks forward and waves"


def run_once(out: Path) -> dict:
    cmd = [
        sys.executable, "-m", "temos_blender", "generate", PROMPT, "--takes", "4", "--duration", "6", "--seed", "7",
        "--rig", "smpl", "--export", "bvh,fbx,glb", "--preview", "mp4", "--out", str(out), "--overwrite", "--json",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    result = json.loads(proc.stdout)
    return {"wall_s": wall, **result["timings_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not rewrite {DOC.name}")
    args = parser.parse_args(argv)
    info = machine()
    with tempfile.TemporaryDirectory(prefix="temos-bench-cli-") as tmp:
        runs = [run_once(Path(tmp) / f"run{i}") for i in range(args.runs)]
    stages = [k for k in runs[0] if k != "wall_s"]
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in ["wall_s", *stages]}
    load = info["load"]
    lines = [
        "## CLI",
        "",
        f"Measured by `benchmarks/bench_cli.py` on {time.strftime('%Y-%m-%d')}: {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}, CPU only"
        + (f"; load average at the start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}" if load else "")
        + f". `make demo`'s command (“{PROMPT}”, 4 takes × 6 s, SMPL rig, BVH + FBX + glTF, MP4 preview), "
        f"{args.runs} runs, each a fresh process; medians in seconds.",
        "",
        "| " + " | ".join(stages) + " | whole process |",
        "|" + "---|" * (len(stages) + 1),
        "| " + " | ".join(f"{med[k]:.2f}" for k in stages) + f" | **{med['wall_s']:.2f}** |",
        "",
        "The whole process includes starting Python, importing bpy and torch, and writing the files; *load* is the "
        "model + text model, *preview* renders the MP4 with Workbench.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"Wrote the CLI section of {DOC.relative_to(REPO)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
