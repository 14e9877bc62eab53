"""``python -m temos_blender.data.report``: tables and plots of the cached training set, for ``docs/DATA.md``.

Prints Markdown tables (per source, per split, rejected clips, actions, description examples) and writes PNG plots
(root trajectories seen from above, foot heights, one joint's rotation over time) for a few clips. Needs matplotlib
(``pip install matplotlib``) for the plots only.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..rotations import matrix_to_axis_angle, quat_to_matrix
from ..skeleton import JOINT_INDEX, SMPL_JOINTS, SMPL_PARENTS, forward_kinematics_np
from .build import DEFAULT_FPS, cache_stem, default_out_dir, repo_root

PLOT_CLIPS = (
    ("dataset-2_walk_normal_001", "Bandai walk, normal"),
    ("dataset-2_walk-turn-left_exhausted_001", "Bandai walk-turn-left, exhausted"),
    ("dataset-2_wave-right-hand_elderly_001", "Bandai wave-right-hand, elderly"),
    ("cmu_07_03", "CMU 07_03 (KIT-ML walk)"),
    ("deepmimic_cartwheel", "DeepMimic cartwheel"),
    ("sie_humanoid3d_run_left00", "SIE run curving left"),
)


def load_cache(fps: float, out_dir: Path | None = None):
    path = (Path(out_dir) if out_dir else default_out_dir()) / f"{cache_stem(fps)}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: build it first with `python -m temos_blender.data --fps {fps:g}`")
    index = json.loads(path.with_suffix(".json").read_text())
    return index, np.load(path, allow_pickle=False)


def tables(index: dict) -> str:
    clips, meta = index["clips"], index["meta"]
    originals = [c for c in clips if not c["mirrored"]]
    lines = [
        "| source | clips | hours | train / val / test | mirrored copies (train) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for src in sorted({c["source"] for c in originals}):
        mine = [c for c in originals if c["source"] == src]
        sp = Counter(c["split"] for c in mine)
        n_mir = sum(c["mirrored"] and c["source"] == src for c in clips)
        hours = sum(c["duration_s"] for c in mine) / 3600
        lines.append(f"| {src} | {len(mine)} | {hours:.3f} | {sp['train']} / {sp['val']} / {sp['test']} | {n_mir} |")
    hours = sum(c["duration_s"] for c in originals) / 3600
    sp = Counter(c["split"] for c in originals)
    lines.append(
        f"| **all** | **{len(originals)}** | **{hours:.2f}** | {sp['train']} / {sp['val']} / {sp['test']} | "
        f"{meta['mirrored_clips']} |"
    )
    lines += ["", f"Frames at {meta['fps']:g} fps (train includes mirrored copies): {meta['frames_per_split']}.", ""]
    lines += ["| rejected file | reason |", "| --- | --- |"]
    lines += [f"| `{r['file']}` | {r['reason']} |" for r in meta["rejected"]]
    lines += ["", "| action (source:content) | clips | sampling weight per clip |", "| --- | --- | --- |"]
    by_action = defaultdict(list)
    for c in clips:
        if c["split"] == "train":
            by_action[c["action"]].append(c["sample_weight"])
    for action, ws in sorted(by_action.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"| {action} | {len(ws)} | {np.mean(ws):.2f} |")
    return "\n".join(lines)


def examples(index: dict, ids: tuple[str, ...]) -> str:
    by_id = {c["id"]: c for c in index["clips"]}
    lines = []
    for cid in ids:
        c = by_id.get(cid)
        if c is None:
            continue
        lines.append(f"- `{cid}` ({c['content']}, {c['style']}; split {c['split']}):")
        lines += [f"  - train: “{t}”" for t in c["texts"][:4]]
        lines += [f"  - eval only: “{t}”" for t in c["eval_texts"][:2]]
    return "\n".join(lines)


def _clip_arrays(index, arrays, cid):
    for i, c in enumerate(index["clips"]):
        if c["id"] == cid:
            a, b = arrays["offsets"][i], arrays["offsets"][i + 1]
            rot = quat_to_matrix(arrays["rotations"][a:b].astype(np.float64))
            root = arrays["root_translation"][a:b].astype(np.float64)
            return c, rot, root
    return None, None, None


def plots(index: dict, arrays, img_dir: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise SystemExit("the plots need matplotlib: pip install matplotlib") from e
    img_dir.mkdir(parents=True, exist_ok=True)
    fps = float(index["meta"]["fps"])
    data = []
    for cid, title in PLOT_CLIPS:
        c, rot, root = _clip_arrays(index, arrays, cid)
        if c is not None:
            pos, _ = forward_kinematics_np(rot, root)
            data.append((title, rot, root, pos))
    out = []

    fig, axes = plt.subplots(1, len(data), figsize=(3.2 * len(data), 3.4))
    for ax, (title, _, root, _) in zip(np.atleast_1d(axes), data):
        ax.plot(root[:, 0], root[:, 2], "-", lw=1.5)
        ax.plot(root[0, 0], root[0, 2], "go", ms=5)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("x (m, body's left at frame 0)", fontsize=7)
        ax.set_ylabel("z (m, forward at frame 0)", fontsize=7)
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=7)
    fig.suptitle("Root (pelvis) trajectory seen from above; green: frame 0, facing +z", fontsize=9)
    fig.tight_layout()
    out.append(img_dir / "data_root_trajectories.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(len(data), 1, figsize=(8, 1.7 * len(data)), sharex=False)
    for ax, (title, _, _, pos) in zip(np.atleast_1d(axes), data):
        t = np.arange(len(pos)) / fps
        for name, style in (("left_ankle", "b-"), ("left_foot", "b:"), ("right_ankle", "r-"), ("right_foot", "r:")):
            ax.plot(t, pos[:, JOINT_INDEX[name], 1], style, lw=1, label=name)
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("height (m)", fontsize=7)
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].legend(fontsize=6, ncol=4, loc="upper right")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)", fontsize=7)
    fig.tight_layout()
    out.append(img_dir / "data_foot_heights.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(len(data), 1, figsize=(8, 1.7 * len(data)))
    for ax, (title, rot, _, _) in zip(np.atleast_1d(axes), data):
        t = np.arange(len(rot)) / fps
        for name, color in (("left_knee", "b"), ("right_elbow", "r")):
            aa = np.degrees(matrix_to_axis_angle(rot[:, JOINT_INDEX[name]]))
            for k, style in enumerate(("-", "--", ":")):
                ax.plot(t, aa[:, k], color + style, lw=1, label=f"{name} {'xyz'[k]}")
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("deg", fontsize=7)
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].legend(fontsize=6, ncol=6, loc="upper right")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)", fontsize=7)
    fig.suptitle(
        "Local rotation (axis × angle, degrees) of the left knee (flexion: +x) and right elbow (+y)", fontsize=9
    )
    fig.tight_layout()
    out.append(img_dir / "data_joint_rotations.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(len(data), 6, figsize=(9, 1.9 * len(data)))
    parents = SMPL_PARENTS
    for row, (title, _, _, pos) in zip(np.atleast_2d(axes), data):
        frames = np.linspace(0, len(pos) - 1, 6).round().astype(int)
        for ax, f in zip(row, frames):
            p = pos[f] - pos[f, 0] * np.array([1.0, 0.0, 1.0])
            for j, par in enumerate(parents):
                if par >= 0:
                    side = "b" if "left" in SMPL_JOINTS[j] else "r" if "right" in SMPL_JOINTS[j] else "k"
                    ax.plot([p[par, 0], p[j, 0]], [p[par, 1], p[j, 1]], side + "-", lw=1.2)
            ax.axhline(0.0, color="0.6", lw=0.5)
            ax.set_xlim(-1.0, 1.0)
            ax.set_ylim(-0.05, 2.0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{f / fps:.1f} s", fontsize=6)
        row[0].set_ylabel(title, fontsize=6)
    fig.suptitle(
        "SMPL skeleton after transfer, seen from the front at frame 0 (blue: body's left, red: right)", fontsize=9
    )
    fig.tight_layout()
    out.append(img_dir / "data_stick_figures.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m temos_blender.data.report", description=__doc__)
    p.add_argument("--fps", type=float, default=DEFAULT_FPS)
    p.add_argument("--out-dir", default=None, help="cache folder (default .cache/data)")
    p.add_argument("--img-dir", default=str(repo_root() / "docs" / "img"))
    a = p.parse_args(argv)
    index, arrays = load_cache(a.fps, a.out_dir)
    print(tables(index))
    print()
    print(examples(index, tuple(cid for cid, _ in PLOT_CLIPS) + ("dataset-1_guide_chimpira_001",)))
    for path in plots(index, arrays, Path(a.img_dir)):
        print("wrote", path)


if __name__ == "__main__":
    main()
