"""Does Blender stay responsive while takes are generated, and how fast are takes baked? Writes the "UI" section of
docs/BENCHMARKS.md.

    python benchmarks/bench_ui.py [--takes 8] [--duration 10] [--runs 3] [--no-write]

1. **Main-thread gaps.** The add-on is built and installed into bpy like the tests do, an SMPL armature is added,
   and a generation of ``--takes`` × ``--duration`` s runs through the operator's non-blocking path: a
   ``GenerationRun`` whose worker thread loads the model, samples, decodes and retargets while the main thread
   polls it. Background-mode bpy has no event loop (its timers never fire), so this script plays Blender's part: a
   main-thread loop that wakes every 10 ms, runs a little Python (as a redraw or the modal timer would) and calls
   ``GenerationRun.pump`` exactly as ``TEMOS_OT_generate.modal`` does. The longest interval between two wake-ups
   is the longest the UI would have been frozen; it includes baking, which ``pump`` does in slices on the main
   thread. The same loop without a generation gives the machine's own scheduling noise, for comparison. A cold run
   (first generation: the worker imports torch and loads the model) and ``--runs`` warm runs are measured.
2. **Bake speed.** 4 takes × 22 bones × 200 frames (quaternion rotations of every bone, root location) written
   with :mod:`temos_blender.blender.bake` (``keyframe_points.add`` + ``foreach_set``) against pose-bone
   ``keyframe_insert`` for every bone and frame, in the same process.

The model is the bundled one (``vendor_models/temos-cmu-kitml``) when present, else one of the official size
(d=256, 6 layers) with random weights — the same amount of computation.
"""

from __future__ import annotations

import argparse
import importlib.util
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
BEGIN, END = "<!-- BEGIN ui: written by benchmarks/bench_ui.py -->", "<!-- END ui -->"
PROMPT = "a person walks forward, turns around and waves with the right hand"
TICK_S = 0.010
GAP_GOAL_MS = 50.0
SPEEDUP_GOAL = 20.0
BAKED_GOAL_MS = 200.0
MEMORY_GOAL_MB = 600.0
EXTENSION = "bl_ext.user_default.temos_blender"

CHILD_GENERATION = """
import sys, numpy as np, torch
from temos_blender.core.generate import GenerateRequest, TemosGenerator
from temos_blender.retarget.armature import Armature
from temos_blender.retarget.retarget import retarget
torch.set_num_threads({threads})
gen = TemosGenerator.load({folder!r}, device="cpu")
arm = Armature(**{{k: (np.array(v) if isinstance(v, list) else v) for k, v in {armature!r}.items()}})
request = GenerateRequest({prompt!r}, duration_s={duration}, n_takes={takes}, seed=0)
[retarget(t, arm) for t in gen.generate(request)]  # warm-up
print("READY", flush=True)
sys.stdin.readline()
import time
t0 = time.perf_counter()
for _ in range({runs}):
    [retarget(t, arm) for t in gen.generate(request)]
print("DONE", time.perf_counter() - t0, flush=True)
"""

OFFICIAL_SIZE = """
import sys, torch
from temos_blender.core.model import Temos, TemosConfig
from temos_blender.core.weights import save_model
torch.manual_seed(0)
save_model(Temos(TemosConfig(model_id="official-size-random", latent_dim=256, ff_size=1024, num_layers=6,
                             num_heads=4, text_dim=384)), sys.argv[1])
"""


def machine() -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def model_folder(tmp: Path) -> tuple[Path, str]:
    """The bundled model, else official-size random weights written by a child process (so that this process
    has not imported torch when the cold run starts)."""
    if (BUNDLED / "config.json").is_file():
        return BUNDLED, "the bundled model"
    folder = tmp / "official-size"
    subprocess.run([sys.executable, "-c", OFFICIAL_SIZE, str(folder)], check=True, cwd=REPO)
    return folder, "official size (d=256, ff=1024, 6 layers, 4 heads) with random weights"


def install_addon(tmp: Path):
    """Build the extension zip, install and enable it; returns the add-on's blender package."""
    import bpy

    spec = importlib.util.spec_from_file_location("temos_build", REPO / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    zip_path = build.build_extension(tmp / "dist")
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
    blender = importlib.import_module(EXTENSION + ".blender")
    importlib.import_module(EXTENSION + ".blender.rig_io")
    return blender


def rss_mb() -> float:
    """Resident memory of this process (the Blender process here), MB; NaN where /proc is absent."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


# 1. main-thread gaps ------------------------------------------------------------------------------------------


def _gap_stats(gaps_ms: list[float]) -> dict:
    if not gaps_ms:
        return {"ticks": 0, "max_ms": 0.0, "p99_ms": 0.0, "median_ms": 0.0}
    return {
        "ticks": len(gaps_ms),
        "max_ms": max(gaps_ms),
        "p99_ms": sorted(gaps_ms)[int(0.99 * (len(gaps_ms) - 1))],
        "median_ms": statistics.median(gaps_ms),
    }


def tick_loop(step, max_s: float) -> dict:
    """Wake every TICK_S on this (main) thread and call ``step()`` until it returns (False, _); gap statistics in ms.

    ``step()`` returns (keep going, phase): the phase names what was going on during the gap that ended with this
    wake-up ("worker" while the worker thread computes, "bake" while the main thread bakes slices of takes).
    """
    import bpy

    stamps = [time.perf_counter()]
    busy, cpu, phases = [], [], []
    end = stamps[0] + max_s
    while stamps[-1] < end:
        time.sleep(TICK_S)
        t0, c0 = time.perf_counter(), time.thread_time()
        _ = bpy.context.scene.frame_current  # a little main-thread work, as drawing the panel would do
        running, phase = step()
        t1, c1 = time.perf_counter(), time.thread_time()
        busy.append(t1 - t0)
        cpu.append(c1 - c0)
        stamps.append(t1)
        phases.append(phase)
        if not running:
            break
    gaps = [(b - a) * 1e3 for a, b in zip(stamps, stamps[1:])]
    out = _gap_stats(gaps) | {
        "max_step_ms": max(busy) * 1e3,
        "max_step_cpu_ms": max(cpu) * 1e3,
        "main_cpu_s": sum(cpu),
        "wall_s": stamps[-1] - stamps[0],
    }
    for phase in sorted(set(phases)):
        out[phase] = _gap_stats([g for g, p in zip(gaps, phases) if p == phase])
        out[phase]["max_step_cpu_ms"] = max(c for c, p in zip(cpu, phases) if p == phase) * 1e3
    return out


def generation_gaps(blender, rig, takes: int, duration: float) -> tuple[dict, list[str]]:
    import bpy

    ops = blender.ops_generate
    scene = bpy.context.scene
    props = scene.temos
    props.prompt, props.n_takes, props.duration_s = PROMPT, takes, duration
    run = ops.GenerationRun(bpy.context, rig, ops.spec_from_scene(bpy.context)).start()
    state = ["RUNNING"]

    def step() -> tuple[bool, str]:
        phase = "bake" if run.baking else "worker"
        state[0] = run.pump(bpy.context)  # what TEMOS_OT_generate.modal does on each timer event
        return state[0] == "RUNNING", phase

    stats = tick_loop(step, max_s=900)
    if state[0] != "FINISHED":
        raise RuntimeError(f"generation ended {state[0]}: {run.message} {run.hint}")
    for take in blender.bake.takes_of(rig):  # leave the rig clean for the next run
        blender.bake.delete_take(rig, take.track)
    return stats, run.stages


def child_process_gaps(blender, rig, folder: Path, threads: int, takes: int, duration: float, runs: int) -> dict:
    """The control: the same generation + retargeting in a child process (which shares no GIL with this one) while
    this main thread ticks. What remains of the gaps is CPU contention, not the GIL."""
    import threading

    armature = blender.rig_io.armature_from_object(rig)
    fields = ("name", "bone_names", "parents", "heads", "tails", "rest_rotations", "world_matrix")
    data = {k: getattr(armature, k).tolist() if hasattr(getattr(armature, k), "tolist") else getattr(armature, k)
            for k in fields}  # fmt: skip
    code = CHILD_GENERATION.format(
        threads=threads, folder=str(folder), armature=data, prompt=PROMPT, duration=duration, takes=takes, runs=runs
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    for line in child.stdout:  # libraries may print to stdout too: wait for our own markers
        if line.strip() == "READY":
            break
    done = threading.Event()
    reported = []

    def wait_for_done() -> None:
        for line in child.stdout:
            if line.startswith("DONE"):
                reported.append(float(line.split()[1]))
                break
        done.set()

    threading.Thread(target=wait_for_done, daemon=True).start()
    child.stdin.write("go\n")
    child.stdin.flush()
    stats = tick_loop(lambda: (not done.is_set(), "worker"), max_s=900)
    if child.wait() != 0 or not reported:
        raise RuntimeError(f"the control process failed (exit status {child.returncode}); its errors are above")
    stats["child_s"] = reported[0]
    return stats


# 2. bake speed --------------------------------------------------------------------------------------------------


def bake_speed(blender, rig, takes: int = 4, frames: int = 200, runs: int = 5) -> dict:
    import bpy
    import numpy as np

    bake = blender.bake
    bones = [b.name for b in rig.pose.bones]
    rng = np.random.default_rng(0)
    data = []
    for _ in range(takes):
        q = np.cumsum(rng.normal(scale=0.05, size=(frames, len(bones), 4)), axis=0) + [1.0, 0.0, 0.0, 0.0]
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        data.append((q, rng.normal(size=(frames, 3))))
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 25, 1.0

    def fast() -> None:
        with bake.GenerationBake(rig, scene_fps=25.0, start_frame=1) as generation:
            for i, (q, loc) in enumerate(data):
                curves = bake.TakeCurves(25.0, {b: q[:, k] for k, b in enumerate(bones)}, {bones[0]: loc})
                meta = bake.TakeMetadata(PROMPT, i, 1.0, 8.0, "bench", "0", i + 1, "bench")
                generation.add(curves, meta, mute=i > 0)
            generation.commit()

    def keyframe_insert() -> None:
        ad = rig.animation_data or rig.animation_data_create()
        pose = rig.pose.bones
        for i, (q, loc) in enumerate(data):
            ad.action = bpy.data.actions.new(f"keyframe_insert {i}")
            for f in range(frames):
                for k, b in enumerate(bones):
                    pose[b].rotation_quaternion = q[f, k]
                    pose[b].keyframe_insert("rotation_quaternion", frame=f + 1, group=b)
                pose[bones[0]].location = loc[f]
                pose[bones[0]].keyframe_insert("location", frame=f + 1, group=bones[0])
            ad.action = None

    def clear() -> None:
        for take in bake.takes_of(rig):
            bake.delete_take(rig, take.track)
        for action in list(bpy.data.actions):
            if action.users == 0:
                bpy.data.actions.remove(action)

    def timed(fn, n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
            clear()
        return out

    fast()  # warm-up
    clear()
    fast_s = timed(fast, runs)
    slow_s = timed(keyframe_insert, max(1, runs // 2))
    tracks_s = timed(lambda: nla_only(bake, rig, takes), runs)
    curves = takes * (4 * len(bones) + 3)
    return {
        "takes": takes, "bones": len(bones), "frames": frames, "curves": curves,
        "fast_ms": statistics.median(fast_s) * 1e3, "slow_ms": statistics.median(slow_s) * 1e3,
        "nla_ms": statistics.median(tracks_s) * 1e3, "fast_runs": len(fast_s), "slow_runs": len(slow_s),
    }  # fmt: skip


def nla_only(bake, rig, takes: int) -> None:
    """The NLA side of a bake alone: one action with a slot, a track and a strip per take, no keys."""
    with bake.GenerationBake(rig, scene_fps=25.0, start_frame=1) as generation:
        for i in range(takes):
            meta = bake.TakeMetadata(PROMPT, i, 1.0, 8.0, "bench", "0", i + 1, "bench")
            generation.add(bake.TakeCurves(25.0, {}, {}), meta, mute=i > 0)
        generation.commit()


def memory_and_soak(blender, rig, n: int, takes: int, duration: float) -> dict:
    """RSS after each of ``n`` warm generations (takes deleted after each), and the datablocks left over."""
    import bpy

    def counts() -> dict:
        return {k: len(getattr(bpy.data, k)) for k in ("actions", "objects", "meshes", "armatures", "materials")}

    before = counts()
    rss, walls = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        generation_gaps(blender, rig, takes, duration)
        walls.append(time.perf_counter() - t0)
        rss.append(rss_mb())
    return {"n": n, "rss_mb": rss, "wall_s": statistics.median(walls), "leftover": {
        k: v - before[k] for k, v in counts().items() if v != before[k]}}  # fmt: skip


# report ---------------------------------------------------------------------------------------------------------


def render(
    info: dict, model: str, args, idle: dict, cold: dict, warm: list[dict], child: dict, labels: list[str],
    speeds: list[dict], memory: dict, soak: dict,
) -> str:  # fmt: skip
    load = info["load"]
    busy = load is not None and load[0] > 0.5 * (info["cores"] or 1)
    worst_warm = max(w["max_ms"] for w in warm)
    lines = [
        "## UI",
        "",
        f"Measured by `benchmarks/bench_ui.py` on {time.strftime('%Y-%m-%d')}: {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}, bpy {info['bpy']}, CPU only; model: {model}; torch threads: "
        f"{info['torch_threads']} (the add-on's default).",
        "",
    ]
    if load is not None:
        lines += [
            f"Load average when the run started: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) on "
            f"{info['cores']} cores"
            + (
                " — **the machine was busy with other work, so gaps include waiting for a core; compare them with "
                "the idle loop's.**"
                if busy
                else " — the machine was otherwise idle."
            ),
            "",
        ]
    lines += [
        f"### Main-thread gaps while generating {args.takes} takes × {args.duration:g} s",
        "",
        f"A main-thread loop wakes every {TICK_S * 1e3:.0f} ms and calls `GenerationRun.pump` as the modal operator "
        "does (background bpy has no event loop, so the script stands in for it); a gap is the time between two "
        "wake-ups, so the 10 ms sleep is included. A *step* is the main thread's own work in one wake-up (reading the "
        "scene, `pump`: draining the queue, or baking a slice of takes); its CPU time is what it would cost on an "
        "idle machine. Stages seen: " + " → ".join(labels) + ".",
        "",
        "| run | wall s | ticks | median gap ms | p99 gap ms | longest gap ms: worker phase | longest gap ms: bake "
        "phase | longest step ms, CPU: worker / bake |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [("idle loop (no generation)", idle), ("cold (worker imports torch, loads the model)", cold)]
    rows += [(f"warm {i + 1}", w) for i, w in enumerate(warm)]
    rows += [(f"control: the same work in a child process ({args.runs} generations, {child['child_s']:.1f} s)", child)]
    for name, s in rows:
        worker, baking = s.get("worker", s.get("idle")), s.get("bake")
        lines.append(
            f"| {name} | {s['wall_s']:.1f} | {s['ticks']} | {s['median_ms']:.1f} | {s['p99_ms']:.1f} | "
            f"**{worker['max_ms']:.1f}** | " + (f"**{baking['max_ms']:.1f}**" if baking else "–") + " | "
            f"{worker['max_step_cpu_ms']:.1f} / " + (f"{baking['max_step_cpu_ms']:.1f}" if baking else "–") + " |"
        )
    verdict = "met" if worst_warm <= GAP_GOAL_MS else "not met"
    worker_cpu = max(w["worker"]["max_step_cpu_ms"] for w in warm)
    bake_cpu = max(w["bake"]["max_step_cpu_ms"] for w in warm)
    lines += [
        "",
        f"Goal — longest gap ≤ {GAP_GOAL_MS:.0f} ms during a warm generation: **{worst_warm:.1f} ms, {verdict}** "
        f"(idle loop on the same machine: {idle['max_ms']:.1f} ms; with the same work in a child process, which "
        f"shares no GIL with the main thread: {child['max_ms']:.1f} ms).",
        "",
        f"The main thread's own work per wake-up stayed under {worker_cpu:.1f} ms of CPU while the worker ran and "
        f"{bake_cpu:.1f} ms while baking, so on an idle machine a wake-up would be late by about that much (a gap of "
        f"about {TICK_S * 1e3 + bake_cpu:.0f} ms); what is beyond it here is waiting for a core"
        + f" (longest worker-phase gap {max(w['worker']['max_ms'] for w in warm):.1f} ms in-process against "
        f"{child['max_ms']:.1f} ms in the child-process control, which shares no GIL)."
        + " The cold run's long gap is the worker's first `import torch`: loading PyTorch's C extension holds the GIL, "
        "once per Blender session.",
        "",
        "### Bake: takes × 22 bones × 200 frames",
        "",
        f"A quaternion per bone and the root location per take. Medians of {speeds[0]['fast_runs']} runs for "
        f"`blender/bake.py` and of {speeds[0]['slow_runs']} for the baseline, in the same process; *NLA only* is the "
        "same bake with no keys (an action with its slot, a track and a strip per take).",
        "",
        "| takes | F-curves | `keyframe_points.add` + `foreach_set` ms | `keyframe_insert` ms | speed-up | NLA only ms |",
        "|---|---|---|---|---|---|",
    ]
    for sp in speeds:
        lines.append(
            f"| {sp['takes']} | {sp['curves']} | **{sp['fast_ms']:.1f}** | {sp['slow_ms']:.1f} | "
            f"**{sp['slow_ms'] / sp['fast_ms']:.1f}×** | {sp['nla_ms']:.1f} |"
        )
    worst = min(sp["slow_ms"] / sp["fast_ms"] for sp in speeds)
    rss = soak["rss_mb"]
    settled = rss[min(4, len(rss) - 1)]
    added = memory["after the first generation (torch imported, model loaded)"] - memory["add-on enabled"]
    lines += [
        "",
        f"Goal — speed-up ≥ {SPEEDUP_GOAL:.0f}×: lowest {worst:.1f}×, {'met' if worst >= SPEEDUP_GOAL else 'not met'}.",
        "",
        "### Prompt → baked takes, memory, soak",
        "",
        f"- Prompt → 4 takes × 8 s baked on the SMPL rig, warm (worker + main-thread bake, median of "
        f"{soak['n']}): **{soak['wall_s'] * 1e3:.0f} ms** (goal ≤ {BAKED_GOAL_MS:.0f} ms: "
        f"{'met' if soak['wall_s'] * 1e3 <= BAKED_GOAL_MS else 'not met'}; this includes the pump loop's "
        f"{TICK_S * 1e3:.0f} ms wake-ups).",
    ]
    lines += [f"- Blender process memory (RSS), {k}: **{v:.0f} MB**" for k, v in memory.items()]
    lines += [
        f"- Added by the model and torch: **{added:.0f} MB** (goal ≤ {MEMORY_GOAL_MB:.0f} MB: "
        f"{'met' if added <= MEMORY_GOAL_MB else 'not met'}).",
        f"- Soak, {soak['n']} generations of 4 takes × 8 s, takes deleted after each: RSS after generation 5: "
        f"{settled:.0f} MB, after {soak['n']}: {rss[-1]:.0f} MB (growth after the first few: "
        f"{rss[-1] - settled:+.0f} MB); datablocks left over: {soak['leftover'] or 'none'}.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the section between the ``begin`` and ``end`` markers of docs/BENCHMARKS.md (append it if absent)."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Benchmarks\n\n"
    block = f"{begin}\n{text}{end}\n"
    if begin in doc and end in doc:
        start, stop = doc.index(begin), doc.index(end) + len(end)
        doc = doc[:start] + block.rstrip("\n") + doc[stop:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    DOC.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--takes", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3, help="warm generations (and bake runs)")
    parser.add_argument("--soak", type=int, default=50, help="generations of 4 takes × 8 s for the memory soak")
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not rewrite {DOC.name}")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="temos-bench-ui-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(tmp / "blender")  # never touch a real Blender configuration
    info = machine()
    folder, model = model_folder(tmp)
    import bpy

    info["bpy"] = bpy.app.version_string
    memory = {"blender started": rss_mb()}
    blender = install_addon(tmp)
    memory["add-on enabled"] = rss_mb()
    prefs = bpy.context.preferences.addons[EXTENSION].preferences
    prefs.model_dir, prefs.device = str(folder), "CPU"
    bpy.ops.temos.add_smpl_armature()
    rig = bpy.context.scene.temos.armature
    bpy.context.scene.temos.random_seed = False
    bpy.context.scene.render.fps = 24
    assert "torch" not in sys.modules, "the main thread must not have imported torch before the cold run"

    idle = tick_loop(lambda: (True, "idle"), max_s=3.0)
    print("idle", json.dumps(idle))
    cold, labels = generation_gaps(blender, rig, args.takes, args.duration)
    memory["after the first generation (torch imported, model loaded)"] = rss_mb()
    print("cold", json.dumps(cold))
    warm = []
    for _ in range(args.runs):
        stats, labels = generation_gaps(blender, rig, args.takes, args.duration)
        warm.append(stats)
        print("warm", json.dumps(stats))
    import torch

    info["torch_threads"] = torch.get_num_threads()
    child = child_process_gaps(blender, rig, folder, info["torch_threads"], args.takes, args.duration, args.runs)
    print("child", json.dumps(child))
    soak = memory_and_soak(blender, rig, args.soak, 4, 8.0)
    print("soak", json.dumps({k: v for k, v in soak.items() if k != "rss_mb"}))
    speeds = [bake_speed(blender, rig, takes=t, runs=max(args.runs, 3)) for t in (1, 4, 16)]
    print("bake", json.dumps(speeds))

    text = render(info, model, args, idle, cold, warm, child, labels, speeds, memory, soak)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"Wrote the UI section of {DOC.relative_to(REPO)}.")
    sys.stdout.flush()
    os._exit(0)  # bpy 4.5 can hang at interpreter exit


if __name__ == "__main__":
    sys.exit(main())
