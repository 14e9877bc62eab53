"""Domain errors. Each message names the thing, the rule, what was found and what to do.

``hint`` carries the fix in words a UI can show beside the message.
"""

from __future__ import annotations


class TemosError(Exception):
    """Base of every error the project raises on purpose."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class PromptError(TemosError):
    """A generation request that cannot run: empty prompt, bad duration, bad take count."""


class CheckpointError(TemosError):
    """Weights or config that cannot be loaded safely: missing, malformed, or carrying code."""


class TextModelError(CheckpointError):
    """The frozen text model is missing or does not match the checkpoint."""


class RigError(TemosError):
    """An armature the motion cannot be put on."""


class Cancelled(TemosError):
    """The user asked to stop; nothing was produced."""
