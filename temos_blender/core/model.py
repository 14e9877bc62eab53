"""TEMOS: text-conditioned motion VAE, in plain torch, readable in one sitting.

Reference: M. Petrovich, M. J. Black, G. Varol, "TEMOS: Generating diverse human motions from textual
descriptions", ECCV 2022 (arXiv 2204.14109); official code: github.com/Mathux/TEMOS.

    text tokens ─▶ TextEncoder ─▶ N(μ_text, σ_text) ─┐
                                                      ├─▶ z ─▶ MotionDecoder(z, T) ─▶ features (T, nfeats)
    motion feats ─▶ MotionEncoder ─▶ N(μ_mot, σ_mot) ─┘        (training only on the motion side)

Both encoders are the same "actor-agnostic" transformer: two learned tokens (μ, logσ²) are prepended to the
embedded sequence and read back after an N-layer transformer encoder (post-norm as in the paper; pre-norm is a
config option). The decoder queries T frames of zeros plus positional encoding, with z as the single memory token,
and no causal mask.

Module and parameter names follow the official checkpoint (``textencoder.projection.1``, ``mu_token``,
``seqTransEncoder``, ``motiondecoder.final_layer`` …) so conversion is a renaming-free copy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

MAX_TOKENS = 128
"""Longest token sequence the text model is given (longer prompts are truncated)."""


@dataclass(frozen=True)
class TemosConfig:
    """Everything needed to rebuild the network; stored as ``config.json`` beside the weights."""

    model_id: str = "untrained"
    """Name shown to users and stored on every take."""
    latent_dim: int = 256
    """Width d of every transformer and of the latent z (official: 256)."""
    ff_size: int = 1024
    """Hidden width of the transformer feed-forward blocks (official: 1024)."""
    num_layers: int = 6
    """Layers in each of the text encoder, motion encoder and decoder (official: 6)."""
    decoder_layers: int | None = None
    """Layers in the decoder when it differs from ``num_layers`` (a decoder grown after training; see
    ``train.py --init-from``). None: ``num_layers``."""
    num_heads: int = 4
    """Attention heads (official: 4 — its YAML keys are misspelled, so the code's default applies)."""
    dropout: float = 0.1
    """Dropout inside the transformers and on the positional encoding (training only)."""
    activation: str = "gelu"
    """Feed-forward activation."""
    norm_first: bool = False
    """Pre-norm transformer layers (LayerNorm before attention and feed-forward, plus a final LayerNorm per stack)
    instead of the official post-norm. Trains faster on small budgets: on 256 clips the motion autoencoder
    reproduced 2–3× more of the frame-to-frame change at the same step and reconstruction error. Official
    checkpoints are post-norm (False)."""
    nfeats: int = 135
    """Motion features per frame (see ``core/features.py``)."""
    fps: float = 12.5
    """Frame rate of the features the model was trained on."""
    max_frames: int = 1000
    """Longest sequence the positional encoding covers (frames)."""
    text_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    """Identifier of the frozen text model whose per-token features feed the text encoder."""
    text_dim: int = 384
    """Width of the text model's hidden states (768 for DistilBERT, 384 for MiniLM-L6)."""
    min_duration_s: float = 1.0
    """Shortest motion the model was trained on; shorter requests are refused."""
    max_duration_s: float = 10.0
    """Longest motion the model was trained on; longer requests are refused."""

    @classmethod
    def from_dict(cls, d: dict) -> TemosConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TypeError(f"config.json has unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["decoder_layers"] is None:  # config.json of a model whose stacks are all alike stays as it was
            del d["decoder_layers"]
        return d


class PositionalEncoding(nn.Module):
    """Sinusoidal positions (Vaswani et al.) added to a (B, T, d) sequence, then dropout."""

    def __init__(self, d_model: int, dropout: float, max_len: int):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)  # (max_len, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] <= self.pe.shape[0], f"sequence of {x.shape[1]} frames exceeds max_frames={self.pe.shape[0]}"
        return self.dropout(x + self.pe[: x.shape[1]])


def _final_norm(cfg: TemosConfig) -> nn.LayerNorm | None:
    return nn.LayerNorm(cfg.latent_dim) if cfg.norm_first else None


def _encoder_stack(cfg: TemosConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        cfg.latent_dim, cfg.num_heads, cfg.ff_size, cfg.dropout, cfg.activation, batch_first=True,
        norm_first=cfg.norm_first,
    )  # fmt: skip
    return nn.TransformerEncoder(layer, cfg.num_layers, norm=_final_norm(cfg), enable_nested_tensor=False)


class ActorAgnosticEncoder(nn.Module):
    """Sequence (B, L, d_in) + mask (B, L) → Gaussian parameters μ, logσ² (B, d). Subclasses define ``embed``."""

    def __init__(self, cfg: TemosConfig):
        super().__init__()
        self.mu_token = nn.Parameter(torch.randn(cfg.latent_dim))
        self.logvar_token = nn.Parameter(torch.randn(cfg.latent_dim))
        # Long enough for the longest motion and for the text model's longest token sequence (``MAX_TOKENS``).
        max_len = max(cfg.max_frames, MAX_TOKENS) + 2
        self.sequence_pos_encoding = PositionalEncoding(cfg.latent_dim, cfg.dropout, max_len)
        self.seqTransEncoder = _encoder_stack(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        x = self.embed(x)  # (B, L, d)
        tokens = torch.stack([self.mu_token, self.logvar_token])[None].expand(b, -1, -1)  # (B, 2, d)
        xseq = self.sequence_pos_encoding(torch.cat([tokens, x], dim=1))  # (B, L+2, d)
        aug_mask = torch.cat([torch.ones(b, 2, dtype=torch.bool, device=mask.device), mask], dim=1)
        out = self.seqTransEncoder(xseq, src_key_padding_mask=~aug_mask)  # (B, L+2, d)
        return out[:, 0], out[:, 1]


class TextEncoder(ActorAgnosticEncoder):
    """Frozen text-model token features (B, L, text_dim) → μ, logσ². ``projection`` is ReLU + Linear."""

    def __init__(self, cfg: TemosConfig):
        super().__init__(cfg)
        self.projection = nn.Sequential(nn.ReLU(), nn.Linear(cfg.text_dim, cfg.latent_dim))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x)


class MotionEncoder(ActorAgnosticEncoder):
    """Normalised motion features (B, T, nfeats) → μ, logσ². ``skel_embedding`` is a Linear."""

    def __init__(self, cfg: TemosConfig):
        super().__init__(cfg)
        self.skel_embedding = nn.Linear(cfg.nfeats, cfg.latent_dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.skel_embedding(x)


class MotionDecoder(nn.Module):
    """Latent z (B, d) + frame mask (B, T) → normalised motion features (B, T, nfeats), zero beyond each length."""

    def __init__(self, cfg: TemosConfig):
        super().__init__()
        self.latent_dim = cfg.latent_dim
        self.sequence_pos_encoding = PositionalEncoding(cfg.latent_dim, cfg.dropout, cfg.max_frames)
        layer = nn.TransformerDecoderLayer(
            cfg.latent_dim, cfg.num_heads, cfg.ff_size, cfg.dropout, cfg.activation, batch_first=True,
            norm_first=cfg.norm_first,
        )  # fmt: skip
        self.seqTransDecoder = nn.TransformerDecoder(layer, cfg.decoder_layers or cfg.num_layers, norm=_final_norm(cfg))
        self.final_layer = nn.Linear(cfg.latent_dim, cfg.nfeats)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = mask.shape
        queries = self.sequence_pos_encoding(torch.zeros(b, t, self.latent_dim, device=z.device, dtype=z.dtype))
        out = self.seqTransDecoder(tgt=queries, memory=z[:, None], tgt_key_padding_mask=~mask)  # (B, T, d)
        with torch.autocast(out.device.type, enabled=False):  # features at full precision under mixed precision
            out = self.final_layer(out.to(self.final_layer.weight.dtype))  # (B, T, nfeats)
        return out.masked_fill(~mask[..., None], 0.0)


class Temos(nn.Module):
    """The three networks plus the feature normalisation (``mean``/``std`` buffers ride in the weights file)."""

    def __init__(self, cfg: TemosConfig):
        super().__init__()
        self.cfg = cfg
        self.textencoder = TextEncoder(cfg)
        self.motionencoder = MotionEncoder(cfg)
        self.motiondecoder = MotionDecoder(cfg)
        self.register_buffer("mean", torch.zeros(cfg.nfeats))
        self.register_buffer("std", torch.ones(cfg.nfeats))

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        # + 1e-12 as the official code: its kit-amass-rot std has an exact 0 (a constant feature).
        return (feats - self.mean) / (self.std + 1e-12)

    def unnormalize(self, feats: torch.Tensor) -> torch.Tensor:
        return feats * self.std + self.mean

    def encode_text(self, token_feats: torch.Tensor, token_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, text_dim), (B, L) bool → μ, logσ² (B, d)."""
        return self.textencoder(token_feats, token_mask)

    def encode_motion(self, feats_norm: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, nfeats) normalised, (B, T) bool → μ, logσ² (B, d)."""
        return self.motionencoder(feats_norm, mask)

    def decode(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, d), (B, T) bool → normalised features (B, T, nfeats)."""
        return self.motiondecoder(z, mask)


def sample_latent(
    mu: torch.Tensor, logvar: torch.Tensor, diversity: float, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """z = μ + diversity · σ · ε (TEMOS' ``fact``); ε ~ N(0, I) unless given (shape of μ).

    diversity 0 gives the mean motion; 1 the spread the model was trained with.
    """
    if diversity == 0:
        return mu
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + diversity * torch.exp(0.5 * logvar) * eps


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths → (B, T) bool, True on valid frames."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None] < lengths[:, None]
