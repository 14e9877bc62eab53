"""Prompt → diverse takes. The one entry point for the Blender operator, the CLI, evaluation and tests.

    gen = TemosGenerator.load()                       # bundled model, device auto
    takes = gen.generate(GenerateRequest("a person walks forward and waves", duration_s=6, n_takes=4, seed=7))

All takes of a request are decoded in one batch. Take ``i`` draws its latent from its own generator seeded with
``seed + i``, so a take is reproducible alone ("regenerate take 3") and independent of how many were asked for.
"""

from __future__ import annotations

import numbers
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import Cancelled, CheckpointError, PromptError
from ..take import Take
from .features import canonicalize, features_to_smpl
from .model import Temos, lengths_to_mask, sample_latent
from .text_encoder import FrozenTextModel, resolve_text_model_folder
from .weights import bundled_model_folder, load_model

MAX_TAKES = 16
STAGES = ("encode text", "sample", "decode", "convert")


@dataclass(frozen=True)
class GenerateRequest:
    """What to generate."""

    prompt: str
    """Free English text describing the motion. Control characters count as spaces; the text model reads the first
    ``MAX_TOKENS`` (128) tokens of a longer prompt. Any script is accepted (the tokenizer decides what it knows)."""
    duration_s: float = 5.0
    """Length of every take, seconds."""
    n_takes: int = 4
    """How many different takes to sample (1–16)."""
    seed: int = 0
    """Seed of take 0; take i uses seed + i."""
    diversity: float = 1.0
    """Latent sampling factor: 0 gives the mean motion (all takes equal), 1 the trained spread."""

    def validated(self, min_s: float, max_s: float) -> GenerateRequest:
        """A copy with the prompt's whitespace collapsed and numbers as plain int/float; a :class:`PromptError` naming
        the field when one is unusable (NaN and infinity included)."""
        if not isinstance(self.prompt, str):
            raise PromptError(f"The prompt must be text; got {type(self.prompt).__name__}.")
        prompt = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in self.prompt).split())
        if not prompt:
            raise PromptError("The prompt is empty.", "Type what the character should do, e.g. 'a person walks forward and waves'.")
        duration_s = _number("Duration", self.duration_s)
        if not (min_s <= duration_s <= max_s):
            raise PromptError(f"Duration must be between {min_s:g} and {max_s:g} s; got {duration_s:g}.")
        n_takes = _whole_number("Number of takes", self.n_takes)
        if not (1 <= n_takes <= MAX_TAKES):
            raise PromptError(f"Number of takes must be between 1 and {MAX_TAKES}; got {n_takes}.")
        diversity = _number("Diversity", self.diversity)
        if not (0.0 <= diversity <= 3.0):
            raise PromptError(f"Diversity must be between 0 and 3; got {diversity:g}.")
        seed = _whole_number("Seed", self.seed)
        _check_seed(seed)
        return GenerateRequest(prompt, duration_s, n_takes, seed, diversity)


def _number(field: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PromptError(f"{field} must be a number; got {value!r}.")
    return float(value)


def _whole_number(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise PromptError(f"{field} must be a whole number; got {value!r}.")
    return int(value)


def _check_seed(seed: int) -> None:
    if not (0 <= seed < 2**31):
        raise PromptError(f"Seed must be between 0 and {2**31 - 1}; got {seed}.")


def pick_device(device: str = "auto") -> torch.device:
    """'auto' → CUDA, then MPS, then CPU; otherwise the named device (a clear error when it is absent)."""
    device = device.lower()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("Device CUDA was asked for, but this torch has no CUDA device.", "Choose Auto or CPU.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise CheckpointError("Device MPS was asked for, but it is not available here.", "Choose Auto or CPU.")
    return torch.device(device)


def _matrix_to_quat_wxyz(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 4) wxyz, w ≥ 0 (stable per-element branch)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cands = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], 1 - m00 + m11 - m22, m[..., 2, 1] + m[..., 1, 2]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2], 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # fmt: skip
    best = torch.stack([m00 + m11 + m22, m00, m11, m22], -1).argmax(-1)
    q = torch.take_along_dim(cands, best[..., None, None].expand(*best.shape, 1, 4), dim=-2)[..., 0, :]
    q = torch.nn.functional.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


class TemosGenerator:
    """A loaded model + text model on one device, reused across requests."""

    def __init__(self, model: Temos, text_model: FrozenTextModel, device: torch.device):
        self.model = model
        self.text_model = text_model
        self.device = device
        self.cfg = model.cfg
        if text_model.hidden_size != self.cfg.text_dim:
            raise CheckpointError(
                f"The text model in '{text_model.folder}' gives {text_model.hidden_size}-d features; "
                f"the checkpoint expects {self.cfg.text_dim}-d ({self.cfg.text_model}).",
                "Point the text-model folder at the model named in config.json.",
            )

    @classmethod
    def load(
        cls,
        model_folder: str | os.PathLike | None = None,
        text_model_folder: str | os.PathLike | None = None,
        device: str = "auto",
        threads: int | None = None,
    ) -> TemosGenerator:
        """Load a model folder (default: the bundled model) and its text model. ``threads`` sets torch's CPU threads."""
        if threads:
            torch.set_num_threads(int(threads))
        folder = Path(model_folder) if model_folder else bundled_model_folder()
        if folder is None:
            raise CheckpointError("No model folder was given and the bundled model is missing.", "Set the model folder in preferences.")
        dev = pick_device(device)
        model = load_model(folder, dev)
        text = FrozenTextModel(resolve_text_model_folder(model.cfg.text_model, text_model_folder)).to(dev)
        return cls(model, text, dev)

    @property
    def model_id(self) -> str:
        return self.cfg.model_id

    def num_frames(self, duration_s: float) -> int:
        return max(1, int(round(duration_s * self.cfg.fps)))

    @torch.inference_mode()
    def generate(
        self,
        request: GenerateRequest,
        on_progress: Callable[[int, int, str], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        seeds: list[int] | None = None,
    ) -> list[Take]:
        """Sample ``request.n_takes`` takes (or one per entry of ``seeds``). Raises :class:`Cancelled` when stopped."""
        req = request.validated(self.cfg.min_duration_s, self.cfg.max_duration_s)
        if seeds is None:
            seeds = [req.seed + i for i in range(req.n_takes)]
        else:
            seeds = [_whole_number("Seed", s) for s in seeds]
            if not 1 <= len(seeds) <= MAX_TAKES:
                raise PromptError(f"Number of takes must be between 1 and {MAX_TAKES}; got {len(seeds)} seeds.")
            for s in seeds:
                _check_seed(s)
        total = len(STAGES)

        def step(i: int) -> None:
            if should_stop():
                raise Cancelled("Generation was cancelled.")
            if on_progress is not None:
                on_progress(i, total, STAGES[i])

        step(0)
        tokens, token_mask = self.text_model([req.prompt])
        mu, logvar = self.model.encode_text(tokens, token_mask)  # (1, d)

        step(1)
        eps = torch.stack([torch.randn(mu.shape[-1], generator=torch.Generator().manual_seed(s)) for s in seeds])
        eps = eps.to(self.device)  # drawn on the CPU so a seed gives the same take on every device
        n = len(seeds)
        z = sample_latent(mu.expand(n, -1), logvar.expand(n, -1), req.diversity, eps=eps)  # (n, d)

        step(2)
        frames = self.num_frames(req.duration_s)
        mask = lengths_to_mask(torch.full((n,), frames, device=self.device), frames)
        feats = self.model.unnormalize(self.model.decode(z, mask))  # (n, T, nfeats)

        step(3)
        rots, trans = features_to_smpl(feats.float().cpu())
        rots, trans = canonicalize(rots, trans)  # every model's takes start at the origin, facing +Z
        quats = _matrix_to_quat_wxyz(rots).numpy().astype(np.float32)
        trans = trans.numpy().astype(np.float32)
        return [
            Take(
                prompt=req.prompt, seed=s, fps=self.cfg.fps, rotations=quats[i], root_translation=trans[i],
                diversity=req.diversity, model_id=self.cfg.model_id,
            )  # fmt: skip
            for i, s in enumerate(seeds)
        ]
