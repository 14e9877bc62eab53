"""`make train` is seven commands that each start from the snapshot the one before stops at (or its export); a wrong
step or folder fails only after hours of training. Read the recipe from the Makefile and check the chain without
running it."""

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
    assert len(stages) == 7
    exports = {}  # folder → (run, step) of the snapshot a select command exported there
    previous, previous_cfg = None, None
    for cmd in commands:
        if "temos_blender.evaluate.select" in cmd:
            run = cmd[cmd.index("temos_blender.evaluate.select") + 1]
            step = int(option(cmd, "--step"))
            assert previous is not None and run == previous[0] and step <= previous[1], f"{cmd}: exports the stage before"
            assert step % previous_cfg.val_every == 0, f"{cmd}: the exported step is one of its snapshots"
            exports[option(cmd, "--export")] = (run, step)
            continue
        cfg = TrainConfig.from_json(ROOT / option(cmd, "--config"))
        stop = int(option(cmd, "--stop-at"))
        assert 0 < stop <= cfg.max_steps, f"{cmd}: the stop lies in the schedule (a stop leaves a snapshot)"
        start = option(cmd, "--init-from")
        if previous is None:
            assert start is None, "the first stage starts from scratch"
        else:
            out, prev_stop = previous
            if start in exports:
                assert exports[start][0] == out, f"{cmd}: starts from an export of the stage before"
            else:
                assert start == f"{out}/snapshots/step{prev_stop:06d}", cmd
        assert "--resume" in cmd, "a stopped stage continues where it stopped"
        assert option(cmd, "--time-budget-min") == "0", (
            f"{cmd}: a clock would cut the stage short of --stop-at on a slower machine (config budget "
            f"{cfg.time_budget_min} min) and the next stage would find no snapshot to start from"
        )
        previous, previous_cfg = (option(cmd, "--out"), stop), cfg
    export = commands[-1]
    assert "temos_blender.evaluate.select" in export and export[export.index("temos_blender.evaluate.select") + 1] == previous[0]
    step = int(option(export, "--step"))
    last_cfg = TrainConfig.from_json(ROOT / option(stages[-1], "--config"))
    assert step <= previous[1] and step % last_cfg.val_every == 0, "the exported step is a snapshot of the last stage"
    assert option(export, "--export") == "vendor_models/temos-cmu-kitml"
    jump = TrainConfig.from_json(ROOT / option(stages[5], "--config"))
    assert jump.root_weight_content and all(w > jump.root_weight for w in jump.root_weight_content.values()), \
        "the jump stage weighs the jump clips' root more than the others'"
