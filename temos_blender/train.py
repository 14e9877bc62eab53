"""Train TEMOS on the cached mocap data set. Plain torch: AdamW, the paper's losses, resumable, DDP-ready.

    python -m temos_blender.train --config configs/bundled.json            # one process (CPU or one GPU)
    torchrun --nproc_per_node 4 -m temos_blender.train --config ...        # DistributedDataParallel

Losses (Petrovich et al. 2022, §3.3): SmoothL1 reconstruction of the motion features from the text latent and
from the motion latent; KL(text‖N(0,I)), KL(motion‖N(0,I)), KL(text‖motion), KL(motion‖text), each at 1e-5 and
averaged over the latent dimensions as the official KLLoss does; SmoothL1 between the two latents at 1e-5. The text
model is frozen: its token features are computed once per text and cached on disk, so an epoch runs only the small
networks.

Checkpoints (``--out``/``last.pt``, own format, loaded with ``weights_only=True``) are written every
``checkpoint_every_min`` minutes and at the end; ``--resume`` continues from the last one with the same
optimizer, step and random state, so an interrupted run ends where an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn import functional as F

from .core.features import NUM_JOINTS, canonicalize_features
from .core.model import Temos, TemosConfig, lengths_to_mask
from .core.text_encoder import DEFAULT_TEXT_MODEL, FrozenTextModel, resolve_text_model_folder
from .core.weights import save_model
from .data.build import action_weights
from .data.processing import (
    HOLD_CONTENT,
    LOOP_CONTENT,
    WAVE_HANDS,
    gait_phase_starts,
    hold_extend,
    loop_extend,
    loop_stride,
    loop_wave,
    one_off_pieces,
    phase_aligned_start,
    stroke_timing,
    warp_strokes,
    wave_cycle,
    wave_strokes,
)
from .skeleton import JOINT_INDEX


@dataclass(frozen=True)
class TrainConfig:
    """A training run. ``model`` holds the network's :class:`TemosConfig` fields."""

    model: dict
    """Keyword arguments of TemosConfig (latent_dim, num_layers, fps, …)."""
    batch_size: int = 32
    """Clips per optimiser step (per process under DDP)."""
    lr: float = 1e-4
    """AdamW learning rate (the paper: 1e-4)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear learning-rate warm-up."""
    max_steps: int = 20000
    """Stop after this many optimiser steps."""
    time_budget_min: float = 0.0
    """Stop (and export) after this many minutes of training in this process; 0 = no limit."""
    min_frames: int = 12
    """Shortest crop, frames."""
    max_frames: int = 100
    """Longest crop, frames (random crops of longer clips)."""
    motion_noise_ramp: tuple[int, int] = (0, 0)
    """Steps (a, b): the motion latent is decoded without sampling noise until step a, with the paper's full noise
    from step b, linearly in between. At the start the posterior σ is ≈ 1 against |μ| ≈ 1 per dimension, so a
    sampled motion latent cannot carry the phase of a gait; the decoder then settles on the phase average (a still
    pose) and stays there. A noise-free start lets it learn to use the latent first. (0, 0) = the paper."""
    crop_from_start: bool = True
    """Crops of clips that fit in ``max_frames`` start at the clip's first frame. A text says nothing about where
    in a walk cycle a random crop begins; from random starts the text branch can only learn the average over
    phases — a still pose carried along the root path. Anchored crops keep the phase a function of the clip, but
    captured clips themselves start at different phases: ``align_gait_phase`` fixes that for stepping motions.
    Longer clips are cropped at a random start either way."""
    align_gait_phase: bool = False
    """Crops of stepping motions start at one fixed phase of the stride (the left foot swinging past the right; see
    :func:`temos_blender.data.processing.gait_phase_starts`): the first such frame for clips that fit, the one at or
    before a random start for longer clips. Captured walks begin anywhere in the stride and a mirrored walk has
    the opposite phase under the same text, so without this a walk's phase is a coin toss given its text and the
    text branch learns feet that never swap. Motions that do not step are cropped as before."""
    one_off_lead: dict[str, float] | None = None
    """Contents of one-off actions and a lead in seconds (e.g. ``{"kick": 1.0, "bow": 1.5}``): their clips are cut
    into pieces that each start the lead before one of the action's peaks
    (:func:`temos_blender.data.processing.one_off_pieces`), so the action falls at one moment of every crop that
    starts a piece. A text says a person kicks, not when: the captured kick clip kicks three times, 4.5 s apart, half
    a second each, and the average over timings is no kick at all. None = the clips whole."""
    one_off_share: float | None = None
    """Share of the draws for the ``one_off_lead`` contents' pieces together (split among them by their usual
    weights); the rest keep their weights relative to each other. With one such action among 60 at an equal share
    each, a kick is half a crop per batch of 32, too few to learn from even when it is on one timing. None = the
    usual weights."""
    action_balance: float | None = None
    """Exponent p of the per-clip sampling weight ∝ count(action)^-p over the training clips
    (:func:`temos_blender.data.build.action_weights`). None = the data cache's weights (p = 0.5: an action with 100×
    fewer clips is drawn 10× more often per clip, so jumps, kicks and punches together make ~5 % of the draws).
    p = 1 gives every action the same share. At 0.5 the model does not learn the rare actions at all: encoding a
    training jump, kick or punch and decoding it gives a person standing."""
    loop_locomotion_prob: float = 0.0
    """Chance that a crop of a steady locomotion clip shorter than ``max_frames`` (see
    :data:`temos_blender.data.processing.LOOP_CONTENT`) is lengthened to a random length up to ``max_frames`` by
    repeating its last stride (:func:`temos_blender.data.processing.loop_extend`). The captured runs last 3.4 s on
    average, so without it a long request of a run falls back to the speed of the long clips — walks. 0 = off."""
    hold_jump_prob: float = 0.0
    """Chance that a crop reaching the end of a jump clip (:data:`temos_blender.data.processing.HOLD_CONTENT`) shorter
    than ``max_frames`` is lengthened to a random length up to ``max_frames`` by holding its last pose
    (:func:`temos_blender.data.processing.hold_extend`). The captured jumps last 1.8–5 s, and a model that saw a jump
    only at those lengths decodes a request for 4 s or more to standing still. 0 = off (and draws nothing)."""
    loop_wave_prob: float = 0.0
    """Chance that a crop of a wave clip (:data:`temos_blender.data.processing.WAVE_HANDS`) shorter than
    ``max_frames`` is lengthened by repeating one of its stroke cycles in its middle (1 up to as many as fit in
    ``max_frames``; :func:`temos_blender.data.processing.loop_wave`), keeping its own raise and lowering. Length and
    performer are tied in the captures: right-hand waves of 5–6.5 s stroke at 1.9 m/s while raised, those of 7.5–8.5 s
    at 0.4 (slow performers take longer), so a request for 8 s got a raised, nearly still hand. 0 = off."""
    loop_wave_fill: bool = False
    """With ``loop_wave_prob``: lengthen by as many stroke cycles as fit in ``max_frames`` (so a whole lengthened wave
    lasts nearly ``max_frames``) instead of a random number of them from 1."""
    warp_wave_strokes: bool = False
    """Retime every training clip of a wave (:data:`temos_blender.data.processing.WAVE_HANDS`) so that its strokes
    fall on its action's common timing — the median first stroke and period over that action's clips, all styles
    together (:func:`temos_blender.data.processing.warp_strokes`). Each performer strokes at their own rate from
    their own moment, so the average over performers — all that the text tells — is a raised hand held still; on
    one timing the strokes line up. One timing per action rather than per style, because the plain phrasings ("a
    person waves with the right hand") describe clips of every style: over the right-hand waves, the average of the
    clips keeps 11 % of their wrist speed over 2–5 s as captured, 41 % on per-style timings, 72 % on one timing.
    The price: slow and fast styles wave at the common rate. False = the clips as captured."""
    length_groups: int = 1
    """Split each batch, sorted by crop length, into this many groups that are each padded only to their own
    longest crop, with one forward and backward per group; each loss term is weighted by the group's share of what
    the term averages over (frames, frame pairs, energy windows, clips), so the summed gradient is the whole batch's
    — the same step up to the random draws. A batch is padded to its longest crop (98 of 100 frames on average in
    training) and only 45 % of the frames it computes are real; 2 groups compute 31 % fewer
    (``benchmarks/bench_train.py``, ``docs/BENCHMARKS.md``). 1 = one pass over the padded batch."""
    full_clip_prob: float = 0.5
    """Chance that a crop is the whole clip (up to ``max_frames``) rather than a random length."""
    bf16: bool = False
    """Run the networks' matrix products in bfloat16 (``torch.autocast``) during training; parameters, optimiser
    state, the decoder's output layer and every loss stay float32, and validation runs in float32. On a CPU with
    AVX-512 BF16 a training step takes 0.74× the time (``benchmarks/bench_train.py``, ``docs/BENCHMARKS.md``).
    False = float32 throughout."""
    text_samples: int = 1
    """Latents drawn from each text's distribution per step; only the one whose decoding is closest to the clip is
    trained (the "best of many" objective of Bhattacharyya et al., CVPR 2018). 1 = the paper: every draw must
    decode to *this* clip, so with several clips under one text the decoder learns their average around the whole
    text distribution, and a sampled take is the mean take plus noise. With K draws a draw only has to land near
    one of the text's clips, so different draws can decode to different performances."""
    velocity_weight: float = 0.0
    """Weight of an extra SmoothL1 between the frame-to-frame differences of the reconstructions and of the data
    (both branches); 0 = the paper. The pose term alone rewards the phase-average pose long before it rewards
    getting the motion's timing right; this term pays for the timing directly."""
    energy_weight: float = 0.0
    """Weight of a SmoothL1 between the *motion energy* of the reconstructions and of the data (both branches): each
    joint's rotation speed (the norm of the frame-to-frame change of its 6-D features) averaged over windows of
    ``energy_window`` frames (see :func:`motion_energy`). 0 = the paper. The pose and velocity terms both compare
    frame by frame, so where the timing of a periodic detail is uncertain — a wave's strokes, an arm's swing late in
    a take, the same text over performers who stroke at their own rate — their optimum is the average over timings:
    the detail held still. Energy over a window does not depend on the timing inside it, so this term charges a held
    hand for a wave without asking where each stroke falls."""
    energy_window: int = 12
    """Frames per window of the energy term (12 at 12.5 fps ≈ 1 s, about one wave stroke or one stride); windows
    overlap by half and only windows inside the clip count."""
    accel_energy_weight: float = 0.0
    """Weight of the energy term's second-order counterpart: each joint's rotation *acceleration* (the norm of the
    second difference of its 6-D features) averaged over the same windows, SmoothL1 against the data's (see
    :func:`motion_energy`, ``order=2``), again without asking for a timing. 0 = off. Made to keep a heavy energy
    term's takes from jerking more than the captured clips; measured, it does not (``docs/MODEL_HISTORY.md``): the
    text branch's windowed acceleration is below the data's (``val_accel_text`` 0.61), so the term asks for more."""
    root_weight: float = 1.0
    """Weight of the root's three features (height, horizontal velocity) in the pose and velocity terms, against 1
    for each of the 132 rotation features; 1 = the paper. They are 3 of 135 numbers but carry the whole trajectory,
    and with weight 1 a jump costs little to miss: the autoencoder decodes a captured jump's 0.2 m rise (5 standard
    deviations of the root height) as a crouch back to standing height, feet never off the floor."""
    root_weight_content: dict[str, float] | None = None
    """Root weights for the clips of the named contents (e.g. ``{"jump": 60}``; content labels as in
    :mod:`temos_blender.data.processing`), in place of ``root_weight`` for those clips alone. None = every clip gets
    ``root_weight``. The trajectory matters most where it is the action (a jump's rise), and a heavier root in every
    clip also changes how walks, runs and turns are learnt."""
    joint_weights: dict[str, float] | None = None
    """Weights of named SMPL joints' six rotation features in the pose and velocity terms (e.g. ``{"spine1": 3}``),
    against 1 for the joints not named; None = all 1, the paper. The joint-space counterpart of ``root_weight``."""
    joint_weights_content: dict[str, dict[str, float]] | None = None
    """Joint weights for the clips of the named contents (e.g. ``{"bow": {"spine1": 10}}``), over ``joint_weights``
    for those clips alone (joints not named keep theirs). None = every clip gets ``joint_weights``. What makes a rare
    action is a few joints (a bow: the torso; a kick: the legs), and in a handful of clips among thousands they cost
    little to miss: the joint-space counterpart of ``root_weight_content``."""
    kl_weight: float = 1e-5
    """Weight of each of the four KL terms, each a mean over the latent dimensions (the paper: 1e-5). A weight of
    1e-5 × latent_dim is the same as 1e-5 on KLs summed over the dimensions."""
    latent_weight: float = 1e-5
    """Weight of the SmoothL1 between text and motion latents."""
    trainable: list[str] | None = None
    """Names (prefixes of parameter names, e.g. ``"motiondecoder.seqTransDecoder.layers.6."``) of the only parameters
    the run updates; the rest stay frozen (e.g. only the new layers of a decoder grown by ``--init-from``, or only the
    text encoder). None = every parameter."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    val_every: int = 500
    """Validate every this many steps."""
    checkpoint_every_min: float = 10.0
    """Write last.pt this often."""
    seed: int = 1234
    """Seed of everything random in the run."""
    data_fps: float = 12.5
    """Frame rate of the data cache to read."""
    rotation_std_floor: float = 0.03
    """Floor of the normalisation std of the 6-D rotation features. A joint that never moves in the bulk of the
    data (e.g. spine3, which follows the chest in the Bandai skeleton) otherwise gets std ≈ 0, and the few clips
    where it does move blow up to hundreds of standard deviations."""

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TrainConfig:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TypeError(f"{path} has unknown key {unknown[0]!r}")
        TemosConfig.from_dict(d["model"])  # fail early on a misspelled model key
        return cls(**d)


# ------------------------------------------------------------------------------------------------ text features
class TextFeatureCache:
    """Token features of the frozen text model, computed once per text and kept on disk (safetensors, fp16)."""

    def __init__(self, folder: Path, text_model: str, text_model_folder: str | None = None):
        self.folder = folder
        self.text_model = text_model
        self.text_model_folder = text_model_folder
        self.features: dict[str, torch.Tensor] = {}

    def _path(self) -> Path:
        key = hashlib.sha1(self.text_model.encode()).hexdigest()[:12]
        return self.folder / f"text_features_{key}.safetensors"

    def build(self, texts: list[str], batch_size: int = 64) -> None:
        from safetensors.torch import load_file, save_file

        path = self._path()
        if path.is_file():
            stored = load_file(str(path))
            self.features = {bytes.fromhex(k).decode(): v for k, v in stored.items()}
        todo = sorted(set(texts) - set(self.features))
        if todo:
            from tqdm import tqdm

            model = FrozenTextModel(resolve_text_model_folder(self.text_model, self.text_model_folder))
            for i in tqdm(range(0, len(todo), batch_size), desc="text features", unit="batch"):
                chunk = todo[i : i + batch_size]
                feats, mask = model(chunk)
                for t, f, m in zip(chunk, feats, mask):
                    self.features[t] = f[m].half().clone()
            self.folder.mkdir(parents=True, exist_ok=True)
            save_file({t.encode().hex(): v for t, v in self.features.items()}, str(path))

    def batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts → (B, L, text_dim) float32 padded, (B, L) bool."""
        seqs = [self.features[t].float() for t in texts]
        lengths = torch.tensor([s.shape[0] for s in seqs])
        out = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
        for i, s in enumerate(seqs):
            out[i, : s.shape[0]] = s
        return out, lengths_to_mask(lengths)


# ------------------------------------------------------------------------------------------------ losses
def kl_normal(mu_p, logvar_p, mu_q, logvar_q) -> torch.Tensor:
    """KL(N(μp, σp) ‖ N(μq, σq)) of diagonal Gaussians, averaged over the batch *and* the latent dimensions, as
    TEMOS' KLLoss does (``kl_divergence(q, p).mean()`` on per-dimension Normals): with ``kl_weight`` 1e-5 this is
    the paper's weighting whatever the latent width."""
    kl = 0.5 * (logvar_q - logvar_p + (logvar_p.exp() + (mu_p - mu_q) ** 2) / logvar_q.exp() - 1.0)
    return kl.mean()


def masked_smooth_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, feature_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """SmoothL1 averaged over valid frames and features (weighted by ``feature_weights`` (F,) or per clip
    (B, 1, F) when given; their mean is the scale, so weights of 1 are the plain mean)."""
    loss = F.smooth_l1_loss(pred, target, reduction="none")
    loss = loss.mean(-1) if feature_weights is None else (loss * feature_weights).sum(-1) / loss.shape[-1]
    return (loss * mask).sum() / mask.sum()


def feature_weights(
    cfg: TrainConfig, nfeats: int, device=None, contents: list[str | None] | None = None
) -> torch.Tensor | None:
    """Per-feature weights of the reconstruction terms: ``root_weight`` on the root's height and horizontal
    velocity (features 0–2, see :mod:`temos_blender.core.features`), ``joint_weights`` on the named joints' six
    rotation features, 1 elsewhere; None when all are 1. (F,), or (B, 1, F) per clip when
    ``cfg.root_weight_content`` or ``cfg.joint_weights_content`` is set (``contents``: each clip's content label,
    required then)."""
    joints = cfg.joint_weights or {}
    by_content = cfg.root_weight_content or {}
    joints_by_content = cfg.joint_weights_content or {}
    unknown = sorted((set(joints).union(*joints_by_content.values())) - set(JOINT_INDEX))
    if unknown:
        raise ValueError(f"joint_weights: no SMPL joint named {', '.join(unknown)} (joints: {', '.join(JOINT_INDEX)})")
    if cfg.root_weight == 1.0 and all(v == 1.0 for v in joints.values()) and not by_content and not joints_by_content:
        return None

    def weights(root: float, named: dict[str, float]) -> torch.Tensor:
        w = torch.ones(nfeats, device=device)
        w[:3] = root
        for name, weight in named.items():
            i = 3 + 6 * JOINT_INDEX[name]
            w[i : i + 6] = weight
        return w

    base = weights(cfg.root_weight, joints)
    if not by_content and not joints_by_content:
        return base
    if contents is None:
        raise ValueError("root_weight_content and joint_weights_content need each clip's content label")
    rows = [weights(by_content.get(c, cfg.root_weight), {**joints, **joints_by_content.get(c, {})}) for c in contents]
    return torch.stack(rows)[:, None, :]


class TrainingPass(torch.nn.Module):
    """One forward pass of training: both encoders, the sampled latents, both reconstructions in one decoder call.

    A module of its own so that DistributedDataParallel wraps the forward that training runs (DDP only syncs
    gradients of a backward that follows its own forward).
    """

    def __init__(self, model: Temos, bf16: bool = False):
        super().__init__()
        self.model = model
        self.bf16 = bf16

    def forward(
        self, text_feats, text_mask, motion, mask, motion_noise: float = 1.0, text_samples: int = 1
    ) -> dict[str, torch.Tensor]:
        """``text_samples`` K: K draws of each text latent, stacked draw-major (``z_t``, ``from_text``: K·B rows)."""
        m = self.model
        with torch.autocast(motion.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            mu_t, logvar_t = (x.float() for x in m.encode_text(text_feats, text_mask))
            mu_m, logvar_m = (x.float() for x in m.encode_motion(motion, mask))
            k = text_samples
            eps = torch.randn((k * len(mu_t), mu_t.shape[1]), device=mu_t.device, dtype=mu_t.dtype)
            z_t = mu_t.repeat(k, 1) + torch.exp(0.5 * logvar_t).repeat(k, 1) * eps
            z_m = mu_m + motion_noise * torch.exp(0.5 * logvar_m) * torch.randn_like(mu_m)
            decoded = m.decode(torch.cat([z_t, z_m]), mask.repeat(k + 1, 1))  # all reconstructions, B → (K + 1)·B
        return {"mu_t": mu_t, "logvar_t": logvar_t, "mu_m": mu_m, "logvar_m": logvar_m, "z_t": z_t, "z_m": z_m,
                "from_text": decoded[: len(z_t)], "from_motion": decoded[len(z_t) :]}  # fmt: skip


@torch.no_grad()
def _per_clip_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, velocity_weight: float) -> torch.Tensor:
    """The training loss of each clip on its own (B,): pose SmoothL1 plus ``velocity_weight`` × that of the
    frame-to-frame differences, each averaged over the clip's valid frames."""

    def per_clip(a, b, m):
        return (F.smooth_l1_loss(a, b, reduction="none").mean(-1) * m).sum(1) / m.sum(1).clamp(min=1)

    err = per_clip(pred, target, mask)
    if velocity_weight:
        both = mask[:, 1:] & mask[:, :-1]
        err = err + velocity_weight * per_clip(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1], both)
    return err


def best_text_sample(from_text, z_t, motion, mask, velocity_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Of K draw-major decodings per clip (``from_text``: K·B rows, ``z_t`` likewise), the draw whose decoding the
    training loss likes best, per clip: ``{"from_text": (B, T, F), "z_t": (B, D)}``. The choice carries no
    gradient; the loss then trains only the chosen draw."""
    b = len(motion)
    k = len(from_text) // b
    err = torch.stack([_per_clip_error(x, motion, mask, velocity_weight) for x in from_text.view(k, b, *from_text.shape[1:])])
    pick = err.argmin(0) * b + torch.arange(b, device=err.device)
    return {"from_text": from_text[pick], "z_t": z_t[pick]}


def length_groups(lengths: torch.Tensor, groups: int) -> list[torch.Tensor]:
    """The batch's indices sorted by length (stable), cut into ``groups`` consecutive parts of nearly equal size,
    shortest first; fewer parts when the batch is smaller than ``groups``."""
    order = torch.argsort(lengths, stable=True)
    return [part for part in torch.tensor_split(order, max(1, groups)) if len(part)]


def _energy_windows(mask: torch.Tensor, window: int) -> torch.Tensor:
    """(B, W) bool: the energy windows (see :func:`motion_energy`) that lie wholly inside each clip."""
    b, t = mask.shape
    if t - 1 < window:
        return mask.new_zeros(b, 0)
    both = (mask[:, 1:] & mask[:, :-1]).float()
    return both.unfold(1, window, max(1, window // 2)).min(-1).values > 0


def loss_shares(mask: torch.Tensor, part: torch.Tensor, cfg: TrainConfig) -> dict[str, float]:
    """A group's share (see ``TrainConfig.length_groups``) of each quantity the loss terms average over: valid
    ``frames`` (the pose terms), valid frame ``pairs`` (the velocity terms), energy ``windows`` and ``clips`` (the
    KL and latent terms). With these weights the groups' losses add up to the whole batch's."""
    pairs = mask[:, 1:] & mask[:, :-1]
    windows = _energy_windows(mask, cfg.energy_window).sum(1) if cfg.energy_weight or cfg.accel_energy_weight else None

    def share(per_clip: torch.Tensor) -> float:
        total = float(per_clip.sum())
        return float(per_clip[part].sum()) / total if total else 0.0

    out = {"frames": share(mask.sum(1)), "pairs": share(pairs.sum(1)), "clips": len(part) / len(mask)}
    if windows is not None:
        out["windows"] = share(windows)
    return out


def temos_losses(
    training_pass, text_feats, text_mask, motion, mask, cfg: TrainConfig, motion_noise: float = 1.0,
    shares: dict[str, float] | None = None, contents: list[str | None] | None = None,
) -> dict[str, torch.Tensor]:
    """All of TEMOS' training terms for one batch; ``motion`` is normalised (B, T, nfeats).

    ``training_pass`` is a :class:`TrainingPass` (or its DDP wrapper). ``motion_noise`` scales the sampling noise
    of the motion latent (1 = the paper; see ``TrainConfig.motion_noise_ramp``). ``shares`` (from
    :func:`loss_shares`) weight each term in ``total`` when this batch is one length group of a larger one; the
    terms themselves are this group's means. ``contents``: each clip's content label (for
    ``cfg.root_weight_content`` and ``cfg.joint_weights_content``).
    """
    w = {"frames": 1.0, "pairs": 1.0, "windows": 1.0, "clips": 1.0, **(shares or {})}
    o = training_pass(text_feats, text_mask, motion, mask, motion_noise, cfg.text_samples)
    if cfg.text_samples > 1:
        o = dict(o, **best_text_sample(o["from_text"], o["z_t"], motion, mask, cfg.velocity_weight))
    fw = feature_weights(cfg, motion.shape[-1], motion.device, contents)
    rec_t = masked_smooth_l1(o["from_text"], motion, mask, fw)
    rec_m = masked_smooth_l1(o["from_motion"], motion, mask, fw)
    mu_t, logvar_t, mu_m, logvar_m = o["mu_t"], o["logvar_t"], o["mu_m"], o["logvar_m"]
    zeros = torch.zeros_like(mu_t)
    kl = (
        kl_normal(mu_t, logvar_t, zeros, zeros)
        + kl_normal(mu_m, logvar_m, zeros, zeros)
        + kl_normal(mu_t, logvar_t, mu_m, logvar_m)
        + kl_normal(mu_m, logvar_m, mu_t, logvar_t)
    )
    latent = F.smooth_l1_loss(o["z_t"], o["z_m"])
    total = w["frames"] * (rec_t + rec_m) + w["clips"] * (cfg.kl_weight * kl + cfg.latent_weight * latent)
    out = {"total": total, "rec_text": rec_t, "rec_motion": rec_m, "kl": kl, "latent": latent}
    if cfg.velocity_weight:
        both = mask[:, 1:] & mask[:, :-1]
        vel = sum(masked_smooth_l1(x[:, 1:] - x[:, :-1], motion[:, 1:] - motion[:, :-1], both, fw)
                  for x in (o["from_text"], o["from_motion"]))  # fmt: skip
        out["total"] = out["total"] + w["pairs"] * cfg.velocity_weight * vel
        out["velocity"] = vel
    if cfg.energy_weight:
        energy = sum(energy_loss(x, motion, mask, cfg.energy_window) for x in (o["from_text"], o["from_motion"]))
        out["total"] = out["total"] + w["windows"] * cfg.energy_weight * energy
        out["energy"] = energy
    if cfg.accel_energy_weight:
        accel = sum(energy_loss(x, motion, mask, cfg.energy_window, order=2) for x in (o["from_text"], o["from_motion"]))
        out["total"] = out["total"] + w["windows"] * cfg.accel_energy_weight * accel
        out["accel_energy"] = accel
    return out


def grouped_step(
    net, text_feats, text_mask, motion, mask, cfg: TrainConfig, motion_noise: float, distributed: bool = False,
    contents: list[str | None] | None = None,
):
    """Forward and backward of one batch in ``cfg.length_groups`` length groups (gradients accumulate in the
    parameters; DDP syncs them once, on the last group). Returns the terms averaged as over the whole batch."""
    parts = length_groups(mask.sum(1), cfg.length_groups)
    if len(parts) == 1:
        losses = temos_losses(net, text_feats, text_mask, motion, mask, cfg, motion_noise, contents=contents)
        losses["total"].backward()
        return {k: v.detach() for k, v in losses.items()}
    lengths = mask.sum(1)
    averaged: dict[str, torch.Tensor] = {}
    for k, part in enumerate(parts):
        t = int(lengths[part].max())
        shares = loss_shares(mask, part, cfg)
        last = k == len(parts) - 1
        with contextlib.nullcontext() if last or not distributed else net.no_sync():
            part_contents = None if contents is None else [contents[i] for i in part.tolist()]
            losses = temos_losses(net, text_feats[part], text_mask[part], motion[part, :t], mask[part, :t], cfg,
                                  motion_noise, shares, part_contents)  # fmt: skip
            losses["total"].backward()
        weight = {"rec_text": "frames", "rec_motion": "frames", "velocity": "pairs", "energy": "windows",
                  "accel_energy": "windows"}
        for name, value in losses.items():
            if name != "total":
                share = shares.get(weight.get(name, "clips"), 0.0)
                averaged[name] = averaged.get(name, 0.0) + share * value.detach()
        averaged["total"] = averaged.get("total", 0.0) + losses["total"].detach()
    return averaged


def motion_energy(
    x: torch.Tensor, mask: torch.Tensor, window: int, order: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each joint's rotation speed (``order`` 1) or acceleration (2) averaged over windows: (B, T, 135) features,
    (B, T) mask → energies (B, W, 22) and the windows that lie wholly inside the clip (B, W). Windows of ``window``
    frame-to-frame changes, hop ``window // 2``; a clip shorter than one window has none. A window's accelerations
    are the second differences of the frames its changes span, so both orders see the same frames."""
    b, t = mask.shape
    if t - 1 < window:
        return x.new_zeros(b, 0, NUM_JOINTS), mask.new_zeros(b, 0)
    rot = x[..., 3:].reshape(b, t, NUM_JOINTS, 6)
    change = rot[:, 1:] - rot[:, :-1]  # (B, T-1, 22, 6)
    if order == 2:
        change = F.pad(change[:, 1:] - change[:, :-1], (0, 0, 0, 0, 0, 1))  # index i: frames i..i+2
    per_window = change.norm(dim=-1).unfold(1, window, max(1, window // 2))  # (B, W, 22, window)
    energy = (per_window[..., :-1] if order == 2 else per_window).mean(-1)
    return energy, _energy_windows(mask, window)


def energy_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, window: int, order: int = 1) -> torch.Tensor:
    """SmoothL1 between the windowed joint energies (:func:`motion_energy`) of ``pred`` and ``target``, averaged over
    the windows inside the clips and the joints; 0 when no clip spans a window."""
    e_pred, inside = motion_energy(pred, mask, window, order)
    e_true, _ = motion_energy(target, mask, window, order)
    if not inside.any():
        return pred.sum() * 0.0
    loss = F.smooth_l1_loss(e_pred, e_true, reduction="none").mean(-1)
    return (loss * inside).sum() / inside.sum()


# ------------------------------------------------------------------------------------------------ data
class ClipBatcher:
    """Random weighted batches of crops (see ``crop_from_start``), drawn from one seeded generator per process."""

    def __init__(self, clips: list[dict], cfg: TrainConfig, generator: torch.Generator):
        self.clips = [c for c in clips if c["features"].shape[0] >= cfg.min_frames]
        if cfg.warp_wave_strokes:
            self.clips = waves_on_common_timing(self.clips, cfg.data_fps)
        leads = cfg.one_off_lead or {}
        if leads:
            self.clips = [
                dict(c, features=f, crop=lambda s, n, f=f: f[:n] if s == 0 else canonicalize_features(f[s : s + n]))
                if c.get("content") in leads else c
                for c in self.clips
                for f in (one_off_pieces(c["features"], cfg.data_fps, leads[c["content"]], cfg.min_frames)
                          if c.get("content") in leads else [c["features"]])
            ]  # fmt: skip
        self.cfg = cfg
        self.g = generator
        if cfg.action_balance is None:
            self.weights = torch.tensor([float(c.get("weight", 1.0)) for c in self.clips])
        else:
            actions = [c.get("action") or c.get("content") or "" for c in self.clips]
            self.weights = torch.from_numpy(action_weights(actions, cfg.action_balance)).float()
        one_off = torch.tensor([c.get("content") in leads for c in self.clips])
        if cfg.one_off_share is not None and one_off.any() and (~one_off).any():
            share = cfg.one_off_share
            self.weights[one_off] *= share / self.weights[one_off].sum()
            self.weights[~one_off] *= (1 - share) / self.weights[~one_off].sum()
        loops = cfg.loop_locomotion_prob > 0
        self.phase_starts = [
            gait_phase_starts(c["features"], cfg.data_fps)
            if cfg.align_gait_phase or (loops and c.get("content") in LOOP_CONTENT)
            else np.zeros(0, np.int64)
            for c in self.clips
        ]
        self.loops = [
            loop_stride(c["features"], p, cfg.data_fps)
            if loops and c.get("content") in LOOP_CONTENT and c["features"].shape[0] < cfg.max_frames
            else None
            for c, p in zip(self.clips, self.phase_starts)
        ]
        if not cfg.align_gait_phase:
            self.phase_starts = [np.zeros(0, np.int64) for _ in self.clips]
        cycles = [
            wave_cycle(c["features"], WAVE_HANDS[c["content"]], cfg.data_fps)
            if cfg.loop_wave_prob > 0 and c.get("content") in WAVE_HANDS and c["features"].shape[0] < cfg.max_frames
            else None
            for c in self.clips
        ]  # a cycle only where one more of it fits in max_frames
        self.wave_cycles = [
            x if x is not None and c["features"].shape[0] + x[1] - x[0] <= cfg.max_frames else None
            for c, x in zip(self.clips, cycles)
        ]

    def __len__(self) -> int:
        return len(self.clips)

    def lengthened_wave(self, i: int) -> tuple[torch.Tensor, Callable[[int, int], torch.Tensor]]:
        """Clip ``i``'s features and crop function: a wave lengthened by ``loop_wave_prob``, else the clip's own."""
        c, cycle = self.clips[i], self.wave_cycles[i]
        if cycle is None or float(torch.rand((), generator=self.g)) >= self.cfg.loop_wave_prob:
            return c["features"], c["crop"]
        a, b = cycle
        room = (self.cfg.max_frames - c["features"].shape[0]) // (b - a)
        repeats = room if self.cfg.loop_wave_fill else int(torch.randint(1, room + 1, (1,), generator=self.g))
        f = loop_wave(c["features"], a, b, repeats)
        return f, (lambda s, n: f[:n] if s == 0 else canonicalize_features(f[s : s + n]))

    def sample(self, batch_size: int) -> tuple[list[str], torch.Tensor, torch.Tensor, list[str | None]]:
        """``batch_size`` crops: their texts, features (B, T, F) padded with zeros, mask (B, T) and content labels."""
        idx = torch.multinomial(self.weights, batch_size, replacement=True, generator=self.g).tolist()
        texts, crops = [], []
        for i in idx:
            c = self.clips[i]
            features, crop = self.lengthened_wave(i)
            n = features.shape[0]
            longest = min(n, self.cfg.max_frames)
            length = int(torch.randint(self.cfg.min_frames, longest + 1, (1,), generator=self.g))
            if float(torch.rand((), generator=self.g)) < self.cfg.full_clip_prob:
                length = longest
            anchored = self.cfg.crop_from_start and n <= self.cfg.max_frames
            start = 0 if anchored else int(torch.randint(0, n - length + 1, (1,), generator=self.g))
            phases = self.phase_starts[i][self.phase_starts[i] <= n - self.cfg.min_frames]
            if len(phases):
                start = phase_aligned_start(phases, start)
                length = min(length, n - start)
            loop = self.loops[i]
            if loop is not None and float(torch.rand((), generator=self.g)) < self.cfg.loop_locomotion_prob:
                length = int(torch.randint(length, self.cfg.max_frames + 1, (1,), generator=self.g))
                longer = loop_extend(features, *loop, start + length)
                crops.append(longer[:length] if start == 0 else canonicalize_features(longer[start:]))
            elif self.cfg.hold_jump_prob > 0 and c.get("content") in HOLD_CONTENT and start + length == n < self.cfg.max_frames \
                    and float(torch.rand((), generator=self.g)) < self.cfg.hold_jump_prob:  # fmt: skip
                held = int(torch.randint(length, self.cfg.max_frames + 1, (1,), generator=self.g))
                crops.append(hold_extend(crop(start, length), held))
            else:
                crops.append(crop(start, length))
            texts.append(c["texts"][int(torch.randint(len(c["texts"]), (1,), generator=self.g))])
        lengths = torch.tensor([x.shape[0] for x in crops])
        out = torch.zeros(len(crops), int(lengths.max()), crops[0].shape[1])
        for i, x in enumerate(crops):
            out[i, : x.shape[0]] = x
        return texts, out, lengths_to_mask(lengths), [self.clips[i].get("content") for i in idx]


def waves_on_common_timing(clips: list[dict], fps: float) -> list[dict]:
    """``clips`` with every wave clip retimed onto its action's stroke timing (see ``TrainConfig.warp_wave_strokes``);
    clips of other actions, and waves without two strokes, as they are."""
    strokes = {i: wave_strokes(c["features"], WAVE_HANDS[c["content"]], fps)
               for i, c in enumerate(clips) if c.get("content") in WAVE_HANDS}  # fmt: skip
    groups: dict[tuple, list[int]] = {}
    for i in strokes:
        groups.setdefault(clips[i]["content"], []).append(i)
    out = list(clips)
    for members in groups.values():
        timing = stroke_timing([strokes[i] for i in members])
        for i in members:
            if timing is not None and len(strokes[i]) >= 2:
                f = warp_strokes(clips[i]["features"], strokes[i], *timing)
                out[i] = dict(clips[i], features=f,
                              crop=lambda s, n, f=f: f[:n] if s == 0 else canonicalize_features(f[s : s + n]))  # fmt: skip
    return out


def load_training_clips(fps: float, npz_path: Path | None = None) -> dict:
    """The data pipeline's cache (built when missing, or ``npz_path``) as train/val clips + the train-split mean/std.

    A clip is a dict: ``features`` (T, nfeats) unnormalised, ``texts`` (training phrasings), ``content`` (the
    action name, for :data:`~temos_blender.data.processing.LOOP_CONTENT`), ``weight``
    (sampling weight: rare actions up), ``crop(start, length)`` → features rows, canonicalised again when the crop
    starts after the clip's first frame (as the data set's crops are).
    """
    import numpy as np

    from .data.build import ensure_built

    npz_path = Path(npz_path) if npz_path else ensure_built(fps)
    meta = json.loads(npz_path.with_suffix(".json").read_text(encoding="utf-8"))
    with np.load(npz_path, allow_pickle=False) as arrays:
        feats = torch.from_numpy(arrays["features"].astype(np.float32))
        offsets = arrays["offsets"].tolist()
        mean = torch.from_numpy(arrays["mean"].astype(np.float32))
        std = torch.from_numpy(arrays["std"].astype(np.float32))
    out: dict = {"train": [], "val": [], "mean": mean, "std": std}
    for i, rec in enumerate(meta["clips"]):
        if rec["split"] not in ("train", "val"):
            continue
        f = feats[offsets[i] : offsets[i + 1]]
        out[rec["split"]].append(
            {"id": rec["id"], "features": f, "texts": rec["texts"], "weight": rec.get("sample_weight") or 1.0,
             "content": rec.get("content"), "style": rec.get("style"), "action": rec.get("action"),
             "crop": (lambda s, n, f=f: f[:n] if s == 0 else canonicalize_features(f[s : s + n]))}
        )  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------------ run
def _use_loopback_for_single_machine_gloo() -> None:
    """Pin gloo to the loopback interface when every rank runs on this machine.

    Without ``GLOO_SOCKET_IFNAME`` gloo binds to whatever the host name resolves to; in containers and CI
    sandboxes that is often an address (an IPv6 ``::1``, a stale LAN address) it cannot connect through, and
    a rank aborts. A user's own setting always wins; multi-machine runs are left alone.
    """
    if "GLOO_SOCKET_IFNAME" in os.environ or os.environ.get("LOCAL_WORLD_SIZE") != os.environ.get("WORLD_SIZE"):
        return
    names = [name for _, name in socket.if_nameindex()] if hasattr(socket, "if_nameindex") else []
    loopback = next((n for n in ("lo", "lo0") if n in names), None)
    if loopback:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def dynamics_explained(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of the target's within-clip variation (each frame minus its clip's mean) that ``pred`` reproduces:
    1 − Σ‖Δpred − Δtarget‖² / Σ‖Δtarget‖². 0 for the clip's mean pose held still, 1 for the motion itself. (B, T, F)."""
    w = mask[..., None].to(target.dtype)
    n = w.sum(1, keepdim=True).clamp_min(1)
    d_pred = (pred - (pred * w).sum(1, keepdim=True) / n) * w
    d_true = (target - (target * w).sum(1, keepdim=True) / n) * w
    return float(1 - ((d_pred - d_true) ** 2).sum() / ((d_true**2).sum()).clamp_min(1e-12))


@torch.no_grad()
def validate(model: Temos, clips: list[dict], texts: TextFeatureCache, cfg: TrainConfig, device) -> dict[str, float]:
    """Reconstruction error of the mean text latent (fact 0) and of the motion latent on fixed val crops, and
    how much the text-decoded features change from frame to frame relative to the real ones
    (``val_change_ratio``: ≈ 0 for a still pose, ≈ 1 for motion as lively as the data), and how much of each clip's
    own variation over time the motion autoencoder reproduces (``val_dynamics_motion``, see :func:`dynamics_explained`;
    the text branch cannot know a clip's phase, so its counterpart is not a target), and the mean posterior σ of the
    text and motion latents (``val_sigma_text``, ``val_sigma_motion``: the size of a fact-1 sample's step), and the joints'
    windowed rotation speed of both reconstructions as a share of the data's (``val_energy_text``,
    ``val_energy_motion``; see :func:`motion_energy`: 1 = as lively as the data, whatever the timing) and the same
    of the text branch's rotation acceleration (``val_accel_text``)."""
    model.eval()
    rec_t, rec_m, n, change_pred, change_true, dynamics, sigma_t, sigma_m = 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    energy_true, energy_text, energy_motion, accel_true, accel_text = 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(0, len(clips), 64):
        chunk = clips[i : i + 64]
        feats = [c["crop"](0, min(c["features"].shape[0], cfg.max_frames)) for c in chunk]
        lengths = torch.tensor([f.shape[0] for f in feats])
        motion = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
        for j, f in enumerate(feats):
            motion[j, : f.shape[0]] = f
        mask = lengths_to_mask(lengths).to(device)
        motion = model.normalize(motion.to(device)) * mask[..., None]  # the space the losses are in
        tf, tm = texts.batch([c["texts"][0] for c in chunk])
        mu_t, logvar_t = model.encode_text(tf.to(device), tm.to(device))
        mu_m, logvar_m = model.encode_motion(motion, mask)
        sigma_t += torch.exp(0.5 * logvar_t).mean().item() * len(chunk)
        sigma_m += torch.exp(0.5 * logvar_m).mean().item() * len(chunk)
        from_text = model.decode(mu_t, mask)
        rec_t += masked_smooth_l1(from_text, motion, mask).item() * len(chunk)
        from_motion = model.decode(mu_m, mask)
        rec_m += masked_smooth_l1(from_motion, motion, mask).item() * len(chunk)
        dynamics += dynamics_explained(from_motion, motion, mask) * len(chunk)
        both = (mask[:, 1:] & mask[:, :-1])[..., None]
        change_pred += ((from_text[:, 1:] - from_text[:, :-1]).abs() * both).sum().item()
        change_true += ((motion[:, 1:] - motion[:, :-1]).abs() * both).sum().item()
        e_true, inside = motion_energy(motion, mask, cfg.energy_window)
        energy_true += e_true[inside].sum().item()
        energy_text += motion_energy(from_text, mask, cfg.energy_window)[0][inside].sum().item()
        energy_motion += motion_energy(from_motion, mask, cfg.energy_window)[0][inside].sum().item()
        accel_true += motion_energy(motion, mask, cfg.energy_window, order=2)[0][inside].sum().item()
        accel_text += motion_energy(from_text, mask, cfg.energy_window, order=2)[0][inside].sum().item()
        n += len(chunk)
    model.train()
    return {"val_rec_text": rec_t / max(n, 1), "val_rec_motion": rec_m / max(n, 1),
            "val_change_ratio": change_pred / max(change_true, 1e-9), "val_dynamics_motion": dynamics / max(n, 1),
            "val_sigma_text": sigma_t / max(n, 1), "val_sigma_motion": sigma_m / max(n, 1),
            "val_energy_text": energy_text / max(energy_true, 1e-9),
            "val_energy_motion": energy_motion / max(energy_true, 1e-9),
            "val_accel_text": accel_text / max(accel_true, 1e-9)}  # fmt: skip


def grow_decoder(model: Temos, start: Temos) -> tuple[int, int]:
    """Load ``start`` into ``model``, whose decoder has more layers, so that both compute the same function.

    Every tensor of ``start`` is copied; the decoder's extra layers come last (before the final norm) with the
    outputs of their three residual branches (self-attention, cross-attention, feed-forward) set to zero, so each
    starts as the identity and learns from there. Needs pre-norm layers (``norm_first``): a post-norm layer
    normalises the residual stream and is never the identity. Returns (layers before, layers after).
    """
    before = len(start.motiondecoder.seqTransDecoder.layers)
    after = len(model.motiondecoder.seqTransDecoder.layers)
    if after == before:  # decoder_layers spelled out as num_layers on one side only: the same network
        model.load_state_dict({k: v.float() for k, v in start.state_dict().items()})
        return before, after
    if after < before or not model.cfg.norm_first:
        raise SystemExit(
            f"--init-from can grow a pre-norm decoder only (from {before} to {after} layers, norm_first "
            f"{model.cfg.norm_first})"
        )
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in start.state_dict().items()}, strict=False)
    new = tuple(f"motiondecoder.seqTransDecoder.layers.{i}." for i in range(before, after))
    if unexpected or any(not k.startswith(new) for k in missing):
        raise SystemExit(f"--init-from: weights do not fit the grown model ({(unexpected or missing)[:3]})")
    with torch.no_grad():
        for layer in model.motiondecoder.seqTransDecoder.layers[before:]:
            for out_proj in (layer.self_attn.out_proj, layer.multihead_attn.out_proj, layer.linear2):
                out_proj.weight.zero_()
                out_proj.bias.zero_()
    return before, after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m temos_blender.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="training config JSON (see configs/)")
    parser.add_argument("--out", default="runs/bundled", help="run folder: checkpoints, log, best model")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--export", default=None, help="export the model to this folder at the end (float16)")
    parser.add_argument("--export-from", choices=("last", "best"), default="last",
                        help="export the final weights (default) or those with the lowest validation reconstruction")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--max-steps", type=int, default=None, help="override the config's max_steps")
    parser.add_argument("--time-budget-min", type=float, default=None, help="override the config's time budget")
    parser.add_argument("--lr", type=float, default=None, help="override the config's peak learning rate")
    parser.add_argument("--bf16", action="store_true", help="train in bfloat16 autocast whatever the config says")
    parser.add_argument("--length-groups", type=int, default=None,
                        help="override the config's length_groups (batches split by crop length; same gradient, less padding)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this many steps in this process (resume later)")
    parser.add_argument("--stop-at", type=int, default=None,
                        help="stop when the run reaches this step, counted from its start, also across --resume "
                             "(a stage cut before the end of its learning-rate schedule); leaves a snapshot there")
    parser.add_argument("--init-from", default=None,
                        help="start from the weights of this model folder (e.g. the bundled model) with a fresh "
                             "optimizer and step 0; ignored when --resume finds OUT/last.pt")
    parser.add_argument("--renormalize", action="store_true",
                        help="on --resume, take the normalisation from the current data instead of the checkpoint")
    parser.add_argument("--data", default=None, help="data cache .npz (default: build/read the pipeline's cache)")
    args = parser.parse_args(argv)

    cfg = TrainConfig.from_json(args.config)
    flags = (("max_steps", args.max_steps), ("time_budget_min", args.time_budget_min), ("lr", args.lr),
             ("length_groups", args.length_groups))  # fmt: skip
    overrides = {k: v for k, v in flags if v is not None}
    if args.bf16:
        overrides["bf16"] = True
    if overrides:
        cfg = TrainConfig(**{**asdict(cfg), **overrides})

    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "gloo":
            _use_loopback_for_single_machine_gloo()
        dist.init_process_group(backend)
    rank = dist.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(cfg.seed)

    clips = load_training_clips(cfg.data_fps, args.data)
    mcfg = TemosConfig.from_dict({**cfg.model, "fps": cfg.data_fps})
    model = Temos(mcfg).to(device)
    def set_normalisation() -> None:
        model.mean.copy_(clips["mean"])
        model.std.copy_(torch.cat([clips["std"][:3], clips["std"][3:].clamp(min=cfg.rotation_std_floor)]))

    set_normalisation()
    train_clips, val_clips = clips["train"], clips["val"]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = TextFeatureCache(Path(".cache") / "text", mcfg.text_model or DEFAULT_TEXT_MODEL)
    if _is_main():
        texts.build([t for c in train_clips + val_clips for t in c["texts"]])
    if distributed:
        dist.barrier()
        texts.build([t for c in train_clips + val_clips for t in c["texts"]])

    params = [p for n, p in model.named_parameters() if cfg.trainable is None or n.startswith(tuple(cfg.trainable))]
    if not params:
        raise SystemExit(f"{args.config}: no parameter name starts with any of trainable {cfg.trainable}")
    chosen = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * rank)
    state = {"step": 0, "best": float("inf"), "elapsed_s": 0.0, "history": []}
    if args.init_from and not (args.resume and (out / "last.pt").is_file()):
        from .core.weights import load_model

        start = load_model(args.init_from)
        differ = sorted(k for k, v in asdict(mcfg).items() if asdict(start.cfg).get(k) != v)
        if differ == ["decoder_layers"]:
            grown = grow_decoder(model, start)
            if _is_main() and grown[1] > grown[0]:
                print(f"Decoder grown from {grown[0]} to {grown[1]} layers; the new layers start as the identity.",
                      file=sys.stderr, flush=True)  # fmt: skip
        elif differ:
            raise SystemExit(f"--init-from {args.init_from}: its config differs from {args.config} in {differ}")
        else:
            model.load_state_dict({k: v.float() for k, v in start.state_dict().items()})
        if args.renormalize:
            set_normalisation()
    if args.resume and (out / "last.pt").is_file():
        ckpt = torch.load(out / "last.pt", map_location=device, weights_only=True)
        if _is_main():
            at = json.loads(ckpt["state"])["step"]
            unused = f"; --init-from {args.init_from} is not used (a new run needs a new --out)" if args.init_from else ""
            print(f"Resuming {out} at step {at} from its last.pt{unused}.", file=sys.stderr, flush=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"][rank] if rank < len(ckpt["generator"]) else ckpt["generator"][0])
        torch.set_rng_state(ckpt["torch_rng"])
        state = json.loads(ckpt["state"])
        if args.renormalize:
            set_normalisation()
    net = TrainingPass(model, bf16=cfg.bf16)
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(net)
    batcher = ClipBatcher(train_clips, cfg, gen)

    def save_last() -> None:
        gens = [gen.get_state()]
        if distributed:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, gen.get_state())
            gens = gathered
        if _is_main():
            tmp = out / "last.pt.tmp"
            torch.save(
                {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gens,
                 "torch_rng": torch.get_rng_state(), "state": json.dumps(state)},
                tmp,
            )  # fmt: skip
            os.replace(tmp, out / "last.pt")

    def validate_and_snapshot(train_rec_text: float | None) -> None:
        """Validation row in log.jsonl + a snapshot of the weights (the candidates of checkpoint selection)."""
        if not _is_main():
            return
        v = validate(model, val_clips, texts, cfg, device)
        v.update(step=state["step"], minutes=round(state["elapsed_s"] / 60, 1), train_rec_text=train_rec_text)
        state["history"].append(v)
        with open(out / "log.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(v) + "\n")
        save_model(model, out / "snapshots" / f"step{state['step']:06d}")
        if v["val_rec_text"] < state["best"]:
            state["best"] = v["val_rec_text"]
            save_model(model, out / "best")

    from tqdm import tqdm

    bar = tqdm(total=cfg.max_steps, initial=state["step"], disable=not _is_main(), unit="step", dynamic_ncols=True)
    started = time.monotonic()
    elapsed0 = state["elapsed_s"]
    last_ckpt = time.monotonic()
    model.train()
    stop_requested = []
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))  # finish the step, save, exit
    first_step = state["step"]

    def agreed(*flags: bool) -> list[bool]:
        """Every rank acts on the same decision: a flag raised on any rank (a SIGTERM, a clock) holds for all.

        Clocks and signals differ between processes; a checkpoint (a collective) or a stop taken by one rank
        alone would leave the others waiting in a collective that never comes.
        """
        if not distributed:
            return list(flags)
        t = torch.tensor([float(f) for f in flags])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    while state["step"] < cfg.max_steps:
        (stop,) = agreed(
            bool(stop_requested)
            or (args.stop_after is not None and state["step"] - first_step >= args.stop_after)
            or (args.stop_at is not None and state["step"] >= args.stop_at)
            or bool(cfg.time_budget_min and (time.monotonic() - started) / 60 >= cfg.time_budget_min)
        )
        if stop:
            break
        step = state["step"]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch_texts, motion, mask, contents = batcher.sample(cfg.batch_size)
        tf, tm = texts.batch(batch_texts)
        motion = model.normalize(motion.to(device)) * mask.to(device)[..., None]
        a, b = cfg.motion_noise_ramp
        noise = 1.0 if step >= b else 0.0 if step <= a else (step - a) / (b - a)
        opt.zero_grad(set_to_none=True)
        losses = grouped_step(net, tf.to(device), tm.to(device), motion, mask.to(device), cfg, noise, distributed,
                              contents)  # fmt: skip
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        state["step"] = step + 1
        state["elapsed_s"] = elapsed0 + time.monotonic() - started
        bar.update(1)
        if state["step"] % 10 == 0:
            bar.set_postfix(rec_t=f"{losses['rec_text'].item():.3f}", rec_m=f"{losses['rec_motion'].item():.3f}",
                            kl=f"{losses['kl'].item():.1f}")  # fmt: skip
        if state["step"] % cfg.val_every == 0 or state["step"] == cfg.max_steps:
            validate_and_snapshot(losses["rec_text"].item())
        (checkpoint,) = agreed(time.monotonic() - last_ckpt > cfg.checkpoint_every_min * 60)
        if checkpoint:
            save_last()
            last_ckpt = time.monotonic()
    bar.close()
    if state["step"] > first_step and (not state["history"] or state["history"][-1]["step"] != state["step"]):
        validate_and_snapshot(None)  # a stop between validations (time budget, SIGTERM) still leaves a candidate
    save_last()
    if _is_main():
        if not (out / "best" / "config.json").is_file():
            save_model(model, out / "best")
        if args.export:
            from .core.weights import load_model

            source = model if args.export_from == "last" else load_model(out / "best")
            save_model(source, args.export, half=True)
        print(json.dumps({"step": state["step"], "minutes": round(state["elapsed_s"] / 60, 1), "best_val_rec_text": state["best"]}))
    if distributed:
        # Every replica must hold the same weights: a forward that bypasses DDP would let them drift apart silently.
        checksum = sum(p.detach().double().sum().item() for p in model.parameters())
        checksums = [None] * dist.get_world_size()
        dist.all_gather_object(checksums, checksum)
        if len(set(checksums)) != 1:
            raise RuntimeError(f"DDP replicas diverged: parameter checksums {checksums}")
        dist.barrier()  # no rank tears the group down while another is still exporting
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
