"""What a model was measured not to make, so that a prompt asking for it gets a warning instead of a silent miss.

A model folder may hold ``limits.json``: the actions its evaluation found it does not make, each with the words that
name it in a prompt and what was measured. Pure Python (no torch, no bpy): the add-on, the CLI and the tests read it
alike. A folder without the file has no known limits.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

LIMITS_FILE = "limits.json"


@dataclass(frozen=True)
class Limit:
    action: str
    """What the model does not make, as a noun phrase ("kicks")."""
    words: frozenset[str]
    """Lower-case words that name the action in a prompt ("kick", "kicks", "kicking")."""
    measured: str
    """What was measured, in words ("the right ankle rises about 7 cm; captured kicks 97–162 cm")."""


def load_limits(folder: str | Path) -> tuple[Limit, ...]:
    """The limits listed in ``folder``/limits.json (none when there is no such file).

    Raises ValueError, naming the file and what is wrong, when the file cannot be read or is not of the form
    ``{"limits": [{"action": str, "words": [str, ...], "measured": str}, ...]}``."""
    path = Path(folder) / LIMITS_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return ()
    return _read_limits(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _read_limits(path_text: str, stamp: int) -> tuple[Limit, ...]:
    """The file at ``path_text`` parsed (cached per modification time: the panel asks at every redraw)."""
    path = Path(path_text)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["limits"]
        limits = []
        for entry in entries:
            words = entry["words"]
            if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
                raise ValueError(f"'words' of '{entry.get('action')}' must be a list of words")
            if not isinstance(entry["action"], str) or not isinstance(entry["measured"], str):
                raise ValueError("'action' and 'measured' must be text")
            limits.append(Limit(entry["action"], frozenset(w.lower() for w in words), entry["measured"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        detail = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise ValueError(f"Cannot read {path}: {detail}.") from None
    return tuple(limits)


def prompt_limits(prompt: str, limits: tuple[Limit, ...]) -> list[Limit]:
    """The limits whose words occur in ``prompt`` as whole words, any case, in the file's order."""
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    return [limit for limit in limits if limit.words & words]


def limit_warnings(prompt: str, folder: str | Path) -> list[str]:
    """One sentence per limit the prompt runs into, for the user; a sentence about the file when it is unreadable.

    Never raises for a bad file: the warning says what is wrong, and generation goes on."""
    try:
        limits = load_limits(folder)
    except ValueError as e:
        return [str(e)]
    return [
        f"This model was measured not to make {limit.action} ({limit.measured}); the takes may leave it out."
        for limit in prompt_limits(prompt, limits)
    ]
