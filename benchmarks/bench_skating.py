"""Foot skating before and after the retarget's foot-contact cleanup, on synthetic walks and on data motions.

    python benchmarks/bench_skating.py [--clips 8] [--data PATH.npz] [--write]

Skating ratio: of the frames where a foot point (ankle or toe) is planted, the fraction in which it has moved more
than 2 cm horizontally from where it was planted (``retarget.foot_contact.skating_ratio``); contacts come from the
SMPL motion (height + speed thresholds). Reported for the SMPL motion itself, for the rig right after retargeting
and for the rig after the cleanup (root drift correction + two-bone leg IK).

Motions: procedural walks (``retarget.synthetic.walk``) with the root moving as fast as the steps (no skating), 20 %
faster, 15 % slower, and with jittering legs; plus, when the training-data cache exists (``.cache/data`` or
``--data``), walk/run clips from it, 12.5 fps as the model sees them. Rigs: the synthetic rigs of the retarget tests,
a T-pose rig with SMPL's proportions and an A-pose rig with 15 % longer legs, twist and finger bones.
``--write`` replaces the "Skating" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from temos_blender.retarget.foot_contact import detect_contacts, skating_ratio  # noqa: E402
from temos_blender.retarget.retarget import retarget  # noqa: E402
from temos_blender.retarget.synthetic import walk, with_root_speed  # noqa: E402
from temos_blender.rotations import axis_angle_to_matrix, matrix_to_quat, quat_to_matrix  # noqa: E402
from temos_blender.skeleton import JOINT_INDEX, SMPL_REST_POSITIONS_M, forward_kinematics_np  # noqa: E402
from temos_blender.take import Take  # noqa: E402

DOC = REPO / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- BEGIN skating: written by benchmarks/bench_skating.py -->", "<!-- END skating -->"
FEET = [JOINT_INDEX[j] for j in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
DATA_ACTIONS = ("walk", "run", "dash", "walk-turn-left", "walk-turn-right", "walk-back")


def _rig_helpers():
    path = REPO / "tests" / "retarget" / "retarget_rigs.py"
    spec = importlib.util.spec_from_file_location("retarget_rigs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["retarget_rigs"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def synthetic_motions() -> list[tuple[str, Take]]:
    out = []
    for speed in (0.8, 1.1, 1.4):
        base = walk(duration_s=6.0, fps=20.0, speed_m_s=speed, cycle_s=1.0 if speed < 1.3 else 0.9)
        out.append((f"walk {speed} m/s", base))
        out.append((f"walk {speed} m/s, root +20%", with_root_speed(base, 1.2)))
        out.append((f"walk {speed} m/s, root −15%", with_root_speed(base, 0.85)))
    base = walk(duration_s=6.0, fps=20.0, speed_m_s=1.1)
    rng = np.random.default_rng(0)
    rot = quat_to_matrix(base.rotations.astype(np.float64))
    for joint in ("left_hip", "right_hip", "left_knee", "right_knee"):
        j = JOINT_INDEX[joint]
        rot[:, j] = axis_angle_to_matrix(rng.normal(size=(base.num_frames, 3)) * 0.03) @ rot[:, j]
    jitter = Take("jitter", 0, base.fps, matrix_to_quat(rot).astype(np.float32), base.root_translation)
    out.append(("walk 1.1 m/s, legs jitter ±1.7°", jitter))
    return out


def data_motions(path: Path | None, count: int) -> list[tuple[str, Take]]:
    if path is None:
        found = sorted((REPO / ".cache" / "data").glob("temos_data_v*fps.npz"))
        if not found:
            return []
        path = found[-1]
    index = json.loads(path.with_suffix(".json").read_text())
    arrays = np.load(path)
    offsets = arrays["offsets"]
    fps = float(index["meta"]["fps"])
    picked = [
        (i, c) for i, c in enumerate(index["clips"])
        if not c.get("mirrored") and str(c.get("action", "")).split(":")[-1] in DATA_ACTIONS and c["num_frames"] >= 40
    ]  # fmt: skip
    step = max(1, len(picked) // max(count, 1))
    out = []
    for i, clip in picked[::step][:count]:
        rows = slice(offsets[i], offsets[i + 1])
        take = Take(clip["id"], 0, fps, arrays["rotations"][rows], arrays["root_translation"][rows])
        out.append((f"data: {clip['id']}", take))
    return out


def smpl_skating(take: Take) -> float:
    pos, _ = forward_kinematics_np(
        quat_to_matrix(take.rotations.astype(np.float64)), take.root_translation.astype(np.float64)
    )
    feet = pos[:, FEET]
    contacts = detect_contacts(feet, take.fps, rest_heights=SMPL_REST_POSITIONS_M[FEET, 1])
    return skating_ratio(feet, contacts, take.fps)


def run(motions, rigs) -> tuple[str, dict]:
    lines = [
        "| motion | frames | SMPL | rig | before | after | retarget ms/frame |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    summary: dict[str, list[tuple[float, float]]] = {}
    for label, take in motions:
        smpl = smpl_skating(take)
        for rig_label, rig in rigs:
            start = time.perf_counter()
            result = retarget(take, rig.armature, rig.bone_map)
            ms = 1000 * (time.perf_counter() - start) / take.num_frames
            before, after = result.skating_before, result.skating_after
            summary.setdefault(rig_label, []).append((before, after))
            lines.append(
                f"| {label} | {take.num_frames} | {100 * smpl:.1f}% | {rig_label} | {100 * before:.1f}% | "
                f"{100 * after:.1f}% | {ms:.2f} |"
            )
    return "\n".join(lines) + "\n", summary


def write_section(text: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Benchmarks\n\n"
    block = f"{BEGIN}\n{text}{END}\n"
    if BEGIN in doc and END in doc:
        start, stop = doc.index(BEGIN), doc.index(END) + len(END)
        doc = doc[:start] + block.rstrip("\n") + doc[stop:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    DOC.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="data clips to use when the cache exists")
    parser.add_argument("--data", type=Path, default=None, help="a training-data cache .npz (default: .cache/data)")
    parser.add_argument("--write", action="store_true", help=f"replace the Skating section of {DOC.name}")
    args = parser.parse_args(argv)
    helpers = _rig_helpers()
    rigs = [
        ("T-pose, SMPL proportions", helpers.build_rig("T", seed=1)),
        ("A-pose, legs ×1.15, twist+fingers", helpers.build_rig("A", seed=2, leg_scale=1.15, twist=True, fingers=True)),
    ]
    motions = synthetic_motions() + data_motions(args.data, args.clips)
    table, summary = run(motions, rigs)
    totals = []
    for rig_label, pairs in summary.items():
        b, a = np.mean([p[0] for p in pairs]), np.mean([p[1] for p in pairs])
        totals.append(f"- {rig_label}: mean skating {100 * b:.1f}% → {100 * a:.1f}% over {len(pairs)} motions")
    text = (
        "## Skating (foot-contact cleanup)\n\n"
        "Fraction of planted-foot frames where the foot is > 2 cm (horizontally) from where it was planted.\n\n"
        + table
        + "\n"
        + "\n".join(totals)
        + "\n"
    )
    print(text)
    if args.write:
        write_section(text)
        print(f"Wrote the Skating section of {DOC.relative_to(REPO)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
