"""`make train` is five commands that each start from the snapshot the one before stops at; a wrong step or folder
fails only after hours of training. Read the recipe from the Makefile and check the chain without running it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from temos_blender.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def recipe(target: str) -> list[list[str]]:
    """The commands of a Makefile target, continuation lines joined, make variables expanded from their `:=`/`?=` lines."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    variables = dict(re.findall(r"^([A-Z_]+) [:?]?= (.*)$", text, flags=re.M))
    body = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, flags=re.M).group(1)
    out = []
    for line in body.splitlines():
        for _ in range(3):
            line = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m.group(1), m.group(0)), line)
        out.append(shlex.split(line.strip()))
    return out


def option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_every_stage_of_make_train_starts_from_a_snapshot_the_stage_before_leaves():
    commands = recipe("train")
    stages = [c for c in commands if "temos_blender.train" in c]
    assert len(stages) == 5
    previous = None
    for cmd in stages:
        cfg = TrainConfig.from_json(ROOT / option(cmd, "--config"))
        stop = int(option(cmd, "--stop-at"))
        assert 0 < stop <= cfg.max_steps, f"{cmd}: the stop lies in the schedule (a stop leaves a snapshot)"
        if previous is None:
            assert option(cmd, "--init-from") is None, "the first stage starts from scratch"
        else:
            out, prev_stop = previous
            assert option(cmd, "--init-from") == f"{out}/snapshots/step{prev_stop:06d}", cmd
        assert "--resume" in cmd, "a stopped stage continues where it stopped"
        assert option(cmd, "--time-budget-min") == "0", (
            f"{cmd}: a clock would cut the stage short of --stop-at on a slower machine (config budget "
            f"{cfg.time_budget_min} min) and the next stage would find no snapshot to start from"
        )
        previous = option(cmd, "--out"), stop
    export = commands[-1]
    assert "temos_blender.evaluate.select" in export and export[export.index("temos_blender.evaluate.select") + 1] == previous[0]
    step = int(option(export, "--step"))
    last_cfg = TrainConfig.from_json(ROOT / option(stages[-1], "--config"))
    assert step <= previous[1] and step % last_cfg.val_every == 0, "the exported step is a snapshot of the last stage"
    assert option(export, "--export") == "vendor_models/temos-cmu-kitml"


def test_make_train_jumps_chains_its_two_stages_from_the_bundled_weights_and_blends_with_them():
    commands = recipe("train-jumps")
    stages = [c for c in commands if "temos_blender.train" in c]
    assert len(stages) == 2
    assert option(stages[0], "--init-from") == "vendor_models/temos-cmu-kitml"
    first = TrainConfig.from_json(ROOT / option(stages[0], "--config"))
    assert first.root_weight_content and all(w > first.root_weight for w in first.root_weight_content.values()), \
        "the jump clips' root weighs more than the others'"
    out, stop = option(stages[0], "--out"), int(option(stages[0], "--stop-at"))
    assert option(stages[1], "--init-from") == f"{out}/snapshots/step{stop:06d}"
    for cmd in stages:
        cfg = TrainConfig.from_json(ROOT / option(cmd, "--config"))
        assert int(option(cmd, "--stop-at")) % cfg.val_every == 0, "each stop is a validation step, so a snapshot"
        assert "--resume" in cmd and option(cmd, "--time-budget-min") == "0"
    blend = commands[-1]
    i = blend.index("temos_blender.blend")
    last = f"{option(stages[1], '--out')}/snapshots/step{int(option(stages[1], '--stop-at')):06d}"
    assert blend[i + 1 : i + 3] == ["vendor_models/temos-cmu-kitml", last]
    assert 0 < float(option(blend, "--weight")) < 1
    assert option(blend, "--out") != "vendor_models/temos-cmu-kitml", "the bundled weights stay as they are"
