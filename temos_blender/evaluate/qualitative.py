"""The qualitative set: 20 prompts × 3 takes through the generator, each take measured by :mod:`.checks`.

Eight prompts are evaluation-only phrasings of test-split clips (one per frequent action, picked deterministically
from the data cache); twelve are new prompts an animator might type, some of actions the training data barely has
(a jump, a kick, a bow, sitting down). Each prompt carries the check that says whether a take does what it asks.

:func:`render_sheets` makes the same takes again through the command line (``temos-blender generate --preview png``,
same seeds and length) so that a reader can look at them: one PNG sheet of six moments per prompt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checks
from .clips import MotionClips
from .kinematics import joints_from_take


@dataclass(frozen=True)
class Expectation:
    """What a prompt asks, as an automatic check on :func:`checks.measure`'s numbers."""

    text: str
    """The expectation in words."""
    check: Callable[[dict], bool]
    """The check."""
    shown: tuple[str, ...]
    """Measured numbers to show beside the verdict."""


WALK = Expectation("root ≥ 1 m forward, ≥ 3 foot swaps", checks.walks_forward, ("forward_m", "steps"))
RUN = Expectation("mean speed ≥ 2 m/s, forward", checks.runs_forward, ("speed_mps", "forward_m"))
TURN_LEFT = Expectation("heading turns left ≥ 45°", checks.turns_left, ("heading_change_deg", "forward_m"))
TURN_RIGHT = Expectation("heading turns right ≥ 45°", checks.turns_right, ("heading_change_deg", "forward_m"))
RIGHT_HAND = Expectation(
    "right wrist over right shoulder and moving while up (≥ 0.3 m/s), left wrist below left shoulder",
    checks.waves_right_hand, ("right_wrist_over_shoulder_m", "right_wrist_speed_raised_mps", "left_wrist_over_shoulder_m"),
)  # fmt: skip
LEFT_HAND = Expectation(
    "left wrist over left shoulder and moving while up (≥ 0.3 m/s), right wrist below right shoulder",
    checks.waves_left_hand, ("left_wrist_over_shoulder_m", "left_wrist_speed_raised_mps", "right_wrist_over_shoulder_m"),
)  # fmt: skip
BOTH_HANDS = Expectation("both wrists over the shoulders", checks.raises_both_hands, ("both_wrists_over_shoulders_m",))
OVER_HEAD = Expectation("both wrists over the head", checks.raises_both_hands_over_head, ("wrists_over_head_m",))
BACKWARD = Expectation("root ≥ 0.5 m backward", checks.walks_backward, ("forward_m",))
RIGHTWARD = Expectation("root ≥ 0.5 m to the body's right", checks.moves_right, ("left_m", "forward_m"))
JUMP = Expectation("both feet > 10 cm up for ≥ 0.15 s", checks.jumps, ("airborne_s", "pelvis_rise_m"))
KICK = Expectation(
    "right ankle ≥ 0.4 m above the floor", checks.kicks_right, ("right_ankle_lift_m", "left_ankle_lift_m")
)
BOW = Expectation("head ≥ 0.2 m down, root stays within 0.5 m", checks.bows, ("head_drop_m", "forward_m"))
SIT = Expectation("pelvis ≥ 0.3 m down", checks.sits_or_crouches, ("pelvis_drop_m",))

TEST_CONTENT_EXPECTATIONS = {
    "walk": WALK, "run": RUN, "walk-turn-left": TURN_LEFT, "walk-turn-right": TURN_RIGHT,
    "wave-right-hand": RIGHT_HAND, "wave-left-hand": LEFT_HAND, "raise-up-both-hands": BOTH_HANDS,
    "wave-both-hands": BOTH_HANDS,
}  # fmt: skip
"""Test-split actions in the set, and the check of each."""

NEW_PROMPTS: tuple[tuple[str, Expectation], ...] = (
    ("a person walks forward", WALK),
    ("someone waves with their right hand", RIGHT_HAND),
    ("a person waves with the left hand", LEFT_HAND),
    ("a person raises both arms over the head", OVER_HEAD),
    ("a man walks and turns to the left", TURN_LEFT),
    ("a person runs forward", RUN),
    ("a person walks backwards", BACKWARD),
    ("a person walks to the right", RIGHTWARD),
    ("a person jumps", JUMP),
    ("someone kicks with the right leg", KICK),
    ("a person bows", BOW),
    ("a person sits down", SIT),
)
"""New prompts, phrased unlike the training descriptions."""

DURATION_S = 5.0
TAKES = 3


def prompt_set(clips: MotionClips) -> list[tuple[str, str, Expectation]]:
    """(prompt, source, expectation) × 20: one evaluation-only phrasing per test action above, then the new ones.

    The test prompt of an action is the first evaluation phrasing of its first test clip (cache order) whose style
    is ``normal`` — or of its first test clip when none is.
    """
    out = []
    for content, expectation in TEST_CONTENT_EXPECTATIONS.items():
        found = [r for r in clips.records if r["split"] == "test" and r.get("content") == content]
        if not found:
            continue
        rec = next((r for r in found if r.get("style") == "normal"), found[0])
        out.append((rec["eval_texts"][0], f"test clip `{content}/{rec.get('style', '')}`", expectation))
    out += [(p, "new", e) for p, e in NEW_PROMPTS]
    return out


def run_qualitative(gen, clips: MotionClips, seed: int = 0) -> list[dict]:
    """Generate :data:`TAKES` takes of :data:`DURATION_S` s per prompt (seeds ``seed``, ``seed + 1`` …) and check
    each. Returns one dict per prompt: prompt, source, expectation, passed (count), and per-take numbers."""
    from ..core.generate import GenerateRequest

    rows = []
    for prompt, source, exp in prompt_set(clips):
        takes = gen.generate(GenerateRequest(prompt, duration_s=DURATION_S, n_takes=TAKES, seed=seed))
        measured = [checks.measure(joints_from_take(t), t.fps) for t in takes]
        passed = [bool(exp.check(m)) for m in measured]
        rows.append({"prompt": prompt, "source": source, "expectation": exp.text, "passed": int(sum(passed)),
                     "takes": [{"seed": t.seed, "pass": p, **{k: round(m[k], 2) for k in exp.shown}}
                               for t, p, m in zip(takes, passed, measured)]})  # fmt: skip
    return rows


LENGTH_PROMPTS = (
    ("a person walks forward", "speed_mps"),
    ("a person runs forward", "speed_mps"),
    ("someone waves with their right hand", "right_wrist_speed_raised_mps"),
)
"""(prompt, :func:`checks.measure` key) measured at every length of :data:`LENGTHS_S`: the pelvis speed of a walk and
a run, the right wrist's speed (relative to the pelvis) of a wave while the wrist is over the shoulder."""
LENGTHS_S = (2.0, 4.0, 5.0, 6.0, 8.0, 10.0)
"""Take lengths of the length sweep: the captured runs last 1–7.7 s (median 3.2 s), walks up to 16 s, waves 7 s on
average and raised hands 2.7 s."""


def run_lengths(gen, seed: int = 0) -> list[dict]:
    """:data:`TAKES` takes of each :data:`LENGTH_PROMPTS` prompt at each length of :data:`LENGTHS_S`: does a run stay
    a run, a wave a wave, when the animator asks for a long one? One dict per prompt: prompt, measured key and
    ``values`` {length: [per-take value]}."""
    from ..core.generate import GenerateRequest

    rows = []
    for prompt, key in LENGTH_PROMPTS:
        values = {}
        for length in LENGTHS_S:
            takes = gen.generate(GenerateRequest(prompt, duration_s=length, n_takes=TAKES, seed=seed))
            values[f"{length:g}"] = [round(checks.measure(joints_from_take(t), t.fps)[key], 2) for t in takes]
        rows.append({"prompt": prompt, "key": key, "values": values})
    return rows


def lengths_markdown(rows: list[dict]) -> list[str]:
    """The length sweep (:func:`run_lengths`) as a section of QUALITATIVE.md."""
    lengths = list(rows[0]["values"]) if rows else []
    lines = [
        "## Speed against the length of the take",
        "",
        f"The same prompt asked for at different lengths: mean of {TAKES} takes (smallest–largest), in m/s — the pelvis "
        "speed of a walk or run, the right wrist's speed relative to the pelvis while it is over the shoulder for a wave "
        "(the wave check asks for 0.3; captured waves stroke at about 0.5–1.8 m/s). The captured runs last 1–7.7 s (median 3.2 s), the walks up to 16 s, the waves 7 s on average and the "
        "raised hands 2.7 s.",
        "",
        "| prompt | measured | " + " | ".join(f"{x} s" for x in lengths) + " |",
        "| --- | --- |" + " --- |" * len(lengths),
    ]
    for r in rows:
        cells = [f"{np.mean(v):.2f} ({min(v):.2f}–{max(v):.2f})" for v in r["values"].values()]
        lines.append(f"| {r['prompt']} | {_short(r['key'])} | " + " | ".join(cells) + " |")
    return lines + [""]


VERDICTS = {3: "works", 2: "mostly works", 1: "rarely works", 0: "fails"}


def qualitative_markdown(rows: list[dict], header: dict, lengths: list[dict] | None = None) -> str:
    """docs/QUALITATIVE.md from :func:`run_qualitative`'s rows (and :func:`run_lengths`' when given); ``header`` has
    model, date, machine."""
    works = [r for r in rows if r["passed"] == TAKES]
    fails = [r for r in rows if r["passed"] == 0]
    lines = [
        "# Qualitative check of the bundled model",
        "",
        f"Model `{header['model_id']}` (weights sha256 `{header['sha256']}…`), {header['date']}, "
        f"{TAKES} takes of {DURATION_S:g} s per prompt (seeds {header['seed']}–{header['seed'] + TAKES - 1}, "
        "diversity 1), made through the generator the add-on uses. Each take is checked automatically "
        "(`temos_blender/evaluate/checks.py`): positions come from forward kinematics on the shared SMPL skeleton; "
        "forward and left are the body's own directions at the first frame; heading changes are positive to the left.",
        "",
        f"**{len(works)} of {len(rows)} prompts work in every take; {len(fails)} fail in every take.**",
        "",
        "| # | prompt | source | expectation | passed | per take (seed: numbers) | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    sheets = [r.get("sheet") for r in rows]
    if any(sheets):
        lines[-2] = lines[-2].replace(" verdict |", " verdict | sheet |")
        lines[-1] += " --- |"
    for k, r in enumerate(rows, 1):
        per_take = "; ".join(
            f"{t['seed']}{'✓' if t['pass'] else '✗'}: "
            + ", ".join(f"{_short(key)} {val:g}" for key, val in t.items() if key not in ("seed", "pass"))
            for t in r["takes"]
        )
        lines.append(
            f"| {k} | {r['prompt']} | {r['source']} | {r['expectation']} | {r['passed']}/{TAKES} | {per_take} | "
            f"{VERDICTS.get(r['passed'], '')} |"
            + (f" [{Path(r['sheet']).name}]({r['sheet']}) |" if any(sheets) else "")
        )
    if any(sheets):
        lines += [
            "",
            "Sheets (`temos-blender generate --preview png`, the same seeds and length): six moments of the prompt's "
            "three takes, evenly spaced from the first frame to the last, left to right and top to bottom; the "
            "camera looks at the body's front at the first frame, slightly from above.",
        ]
    lines += [
        "",
        "Abbreviations: fwd = pelvis displacement forward (m), left = to the body's left (m), steps = swaps of the "
        "leading foot, turn = heading change (°, + left), speed = mean pelvis speed (m/s), R/L wrist = highest wrist "
        "height over the same shoulder (m), R/L wrist speed = mean wrist speed relative to the pelvis (m/s), R/L wrist speed up = the same while that wrist is over its shoulder (m/s), both = the lower wrist over its shoulder (m), over head = the lower wrist "
        "over the head (m), air = longest time both feet are > 10 cm up (s), rise/drop = pelvis height change (m), "
        "head drop (m), R/L ankle = highest ankle height above the floor (m).",
        "",
        "## What this says",
        "",
    ]
    lines += [f"- Works: {', '.join(repr(r['prompt']) for r in works) or 'none'}."]
    partly = [r for r in rows if 0 < r["passed"] < TAKES]
    partly_text = ", ".join(f"{r['prompt']!r} ({r['passed']}/{TAKES})" for r in partly)
    lines += [f"- Works in some takes: {partly_text or 'none'}."]
    lines += [f"- Fails: {', '.join(repr(r['prompt']) for r in fails) or 'none'}."]
    lines += [
        "",
        "Prompts asking for actions the training data barely contains (a jump, a kick, a bow, sitting down; see "
        "the data's action counts in `docs/DATA.md`) are the hardest: they fail or come out as the nearest frequent "
        "action unless training gives them room (the table above says which work with these weights); left/right "
        "and style words are the finest distinctions the model has to learn from the text.",
        "",
    ]
    if lengths:
        lines += lengths_markdown(lengths)
    return "\n".join(lines)


_SHORT = {"forward_m": "fwd", "left_m": "left", "steps": "steps", "heading_change_deg": "turn", "speed_mps": "speed",
          "right_wrist_over_shoulder_m": "R wrist", "left_wrist_over_shoulder_m": "L wrist",
          "both_wrists_over_shoulders_m": "both", "wrists_over_head_m": "over head", "airborne_s": "air",
          "pelvis_rise_m": "rise", "pelvis_drop_m": "drop", "head_drop_m": "head drop",
          "right_ankle_lift_m": "R ankle", "left_ankle_lift_m": "L ankle", "right_wrist_speed_mps": "R wrist speed",
          "left_wrist_speed_mps": "L wrist speed", "right_wrist_speed_raised_mps": "R wrist speed up",
          "left_wrist_speed_raised_mps": "L wrist speed up"}  # fmt: skip


def _short(key: str) -> str:
    return _SHORT.get(key, key)


def render_sheets(
    prompts: list[str], folder: str | os.PathLike, model: str | os.PathLike, seed: int = 0, timeout_s: float = 1800.0
) -> list[Path]:
    """One preview sheet per prompt (``folder``/NN.png, NN from 01) of the takes :func:`run_qualitative` checks, made
    by the command line in a child process (it needs ``bpy``; this module does not). Returns the sheets' paths.
    Raises RuntimeError with the command's last output when it fails."""
    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix="temos-sheets-") as tmp:
        listing = Path(tmp) / "prompts.txt"
        listing.write_text("\n".join(prompts) + "\n", encoding="utf-8")
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "temos_blender", "generate", "--prompts", str(listing), "--takes", str(TAKES),
               "--duration", f"{DURATION_S:g}", "--seed", str(seed), "--rig", "smpl", "--model", str(model),
               "--export", "none", "--preview", "png", "--out", str(out)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        made = sorted(out.glob("*/preview.png")) if out.is_dir() else []
        if proc.returncode != 0 or len(made) != len(prompts):
            tail = " | ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:])
            raise RuntimeError(f"the sheets could not be made (exit status {proc.returncode}): {tail}")
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("[0-9][0-9].png"):
            old.unlink()
        return [Path(shutil.copyfile(src, folder / f"{k:02d}.png")) for k, src in enumerate(made, 1)]


def pass_rate(rows: list[dict]) -> float:
    return float(np.mean([r["passed"] / TAKES for r in rows])) if rows else 0.0
