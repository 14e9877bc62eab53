"""A text–motion retrieval evaluator, the yardstick of the embedding metrics (R-precision, FID, Diversity, MM).

TMR-style (Petrovich et al., "TMR: Text-to-Motion Retrieval Using Contrastive 3D Human Motion Synthesis", ICCV 2023),
kept small enough to train on a CPU in minutes:

    joint positions ─▶ per-frame inputs (kinematics.evaluator_inputs) ─▶ transformer + [CLS] ─▶ 256-d ─▶ unit length
    text ─▶ frozen MiniLM, mean-pooled, unit length (the sentence embedding) ─▶ MLP ─▶ 256-d ─▶ unit length

trained with a symmetric InfoNCE loss (temperature τ) on the *training* split only (mirrored copies included).
The data set has many clips of one (action, style) and texts shared between styles ("A man walks forward." describes
every walk), so a batch's other pairs are often true matches: a pair (text i, motion j) is removed from the negatives
whenever text i was written for some training clip with motion j's label. It reads joint positions, not the generator's
features, so it measures any motion source (data, TEMOS, a baseline) the same way.

The trained evaluator is cached in ``.cache/evaluator/`` under a name made of the data version, the frame rate and a
hash of its configuration; :func:`load_or_train` trains it when missing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.model import PositionalEncoding, lengths_to_mask
from ..core.text_encoder import DEFAULT_TEXT_MODEL
from .clips import MotionClips
from .kinematics import (
    EVALUATOR_NFEATS,
    POSE_COLUMNS,
    POSE_VELOCITY_COLUMNS,
    ROOT_VELOCITY_COLUMNS,
    evaluator_inputs,
)


@dataclass(frozen=True)
class EvaluatorConfig:
    """The evaluator's network and training run; its hash names the cached weights."""

    embed_dim: int = 256
    """Width of the shared text–motion space."""
    model_dim: int = 128
    """Width of the motion transformer."""
    num_layers: int = 2
    """Motion transformer layers."""
    num_heads: int = 4
    """Attention heads."""
    ff_size: int = 256
    """Feed-forward width of the transformer layers."""
    dropout: float = 0.1
    """Dropout in the transformer and the text MLP (training only)."""
    temperature: float = 0.1
    """InfoNCE temperature τ (TMR: 0.1)."""
    max_frames: int = 125
    """Longest motion read (10 s at 12.5 fps); longer clips are cropped (randomly in training, from the start else)."""
    batch_size: int = 64
    """Pairs per step."""
    steps: int = 800
    """Optimiser steps (about 10 passes over the training clips)."""
    lr: float = 5e-4
    """AdamW peak learning rate (linear warm-up over 100 steps, cosine decay to 0)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    frozen_negatives: float = 0.25
    """Extra negatives per batch, as a share of its size: copies of moving clips whose pose is frozen at one frame
    (the root keeps travelling, or stands). No text describes them, so the evaluator learns that a pose carried
    along is not a walk and a held raised arm is not a wave — the failure of an undertrained decoder."""
    seed: int = 0
    """Seed of the initialisation and of the batches."""
    text_model: str = DEFAULT_TEXT_MODEL
    """The frozen sentence model whose mean-pooled features are the text input."""
    text_dim: int = 384
    """Width of its features."""

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------- network
class MotionTower(nn.Module):
    """(B, T, nfeats) normalised inputs + (B, T) mask → (B, embed_dim) unit vectors.

    Two strided 1-D convolutions (kernel 4, stride 2 each) turn every 4 frames into one token, which makes the
    transformer ~4× cheaper on a CPU and still sees within-window oscillations (a wave) through the kernels.
    """

    def __init__(self, cfg: EvaluatorConfig):
        super().__init__()
        d = cfg.model_dim
        self.stem = nn.Sequential(
            nn.Conv1d(EVALUATOR_NFEATS, d, 4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv1d(d, d, 4, stride=2, padding=1),
            nn.GELU(),
        )
        self.cls = nn.Parameter(torch.randn(d) * 0.02)
        self.pos = PositionalEncoding(d, cfg.dropout, cfg.max_frames // 4 + 2)
        layer = nn.TransformerEncoderLayer(
            d, cfg.num_heads, cfg.ff_size, cfg.dropout, "gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.embed_dim))

    @staticmethod
    def token_lengths(lengths: torch.Tensor) -> torch.Tensor:
        """Frames → tokens after the stem (each convolution: ⌊(n + 2 − 4) / 2⌋ + 1 = ⌊n / 2⌋); at least 1."""
        return (lengths // 4).clamp(min=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = mask.shape
        x = x * mask[..., None]
        if t < 4:
            x = F.pad(x, (0, 0, 0, 4 - t))
        tokens = self.stem(x.transpose(1, 2)).transpose(1, 2)  # (B, ⌊T/4⌋, d)
        tmask = lengths_to_mask(self.token_lengths(mask.sum(1)), tokens.shape[1])
        seq = self.pos(torch.cat([self.cls.expand(b, 1, -1), tokens], dim=1))  # (B, 1 + T/4, d)
        full = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), tmask], dim=1)
        h = self.encoder(seq, src_key_padding_mask=~full)
        return F.normalize(self.out(h[:, 0]), dim=-1)


class TextTower(nn.Module):
    """(B, text_dim) sentence embeddings → (B, embed_dim) unit vectors."""

    def __init__(self, cfg: EvaluatorConfig):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(cfg.text_dim, cfg.embed_dim),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.embed_dim, cfg.embed_dim),
        )

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(sentence), dim=-1)


class RetrievalEvaluator(nn.Module):
    """Both towers plus the motion-input normalisation (``mean``/``std`` buffers, from the training split)."""

    def __init__(self, cfg: EvaluatorConfig):
        super().__init__()
        self.cfg = cfg
        self.motion = MotionTower(cfg)
        self.text = TextTower(cfg)
        self.register_buffer("mean", torch.zeros(EVALUATOR_NFEATS))
        self.register_buffer("std", torch.ones(EVALUATOR_NFEATS))

    def _batch(self, inputs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(x) for x in inputs])
        x = torch.zeros(len(inputs), int(lengths.max()), EVALUATOR_NFEATS)
        for i, f in enumerate(inputs):
            x[i, : len(f)] = torch.from_numpy(f)
        x = (x - self.mean) / self.std
        mask = lengths_to_mask(lengths)
        return x * mask[..., None], mask

    def forward_inputs(self, inputs: list[np.ndarray]) -> torch.Tensor:
        x, mask = self._batch(inputs)
        return self.motion(x, mask)

    @torch.inference_mode()
    def embed_motions(self, joints: list[np.ndarray], fps: float, batch_size: int = 128) -> np.ndarray:
        """Joint sequences (T, 22, 3) at ``fps`` → (N, embed_dim) unit embeddings. Clips longer than
        ``max_frames`` are read from their start."""
        self.eval()
        inputs = [evaluator_inputs(j[: self.cfg.max_frames], fps) for j in joints]
        order = np.argsort([len(x) for x in inputs])  # similar lengths together: less padding
        out = np.zeros((len(inputs), self.cfg.embed_dim), np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.forward_inputs([inputs[i] for i in idx]).numpy()
        return out

    @torch.inference_mode()
    def embed_texts(self, sentence_embeddings: np.ndarray) -> np.ndarray:
        """(N, text_dim) sentence embeddings (:func:`sentence_embeddings`) → (N, embed_dim) unit embeddings."""
        self.eval()
        return self.text(torch.as_tensor(sentence_embeddings, dtype=torch.float32)).numpy()


# ---------------------------------------------------------------------------------------------- text features
def mean_pool(token_feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D), (B, L) → (B, D): the sentence-transformers embedding (masked mean, then unit length)."""
    m = mask[..., None].to(token_feats.dtype)
    return F.normalize((token_feats * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)


def default_cache_root() -> Path:
    from ..data.build import repo_root

    return repo_root() / ".cache"


class SentenceEmbedder:
    """Sentence embeddings of texts: from the training run's token-feature cache when there (``.cache/text``, see
    :class:`temos_blender.train.TextFeatureCache`), else computed with the frozen text model and remembered."""

    def __init__(self, text_model: str = DEFAULT_TEXT_MODEL, cache_root: Path | None = None):
        self.text_model = text_model
        self.cache_root = Path(cache_root) if cache_root else default_cache_root()
        self._model = None
        self._memo: dict[str, np.ndarray] = {}

    def model(self):
        from ..core.text_encoder import FrozenTextModel, resolve_text_model_folder

        if self._model is None:
            self._model = FrozenTextModel(resolve_text_model_folder(self.text_model))
        return self._model

    def training_texts(self, texts: list[str]) -> np.ndarray:
        """Embeddings of training texts through the (shared, on-disk) token-feature cache, built when missing."""
        from ..train import TextFeatureCache

        todo = sorted(set(texts) - set(self._memo))
        if todo:
            cache = TextFeatureCache(self.cache_root / "text", self.text_model)
            cache.build(todo)
            for t in todo:
                f = cache.features[t].float()
                self._memo[t] = mean_pool(f[None], torch.ones(1, len(f), dtype=torch.bool))[0].numpy()
        return np.stack([self._memo[t] for t in texts])

    def token_features(self, texts: list[str], batch_size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Token features of ``texts`` in batches: [(feats (B, L, D), mask (B, L))]; remembers their embeddings."""
        out = []
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            feats, mask = self.model()(chunk)
            for t, e in zip(chunk, mean_pool(feats, mask).numpy()):
                self._memo.setdefault(t, e)
            out.append((feats, mask))
        return out

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = sorted(set(texts) - set(self._memo))
        if todo:
            self.token_features(todo)
        return np.stack([self._memo[t] for t in texts])


# ---------------------------------------------------------------------------------------------- training
def contrastive_loss(
    text_emb: torch.Tensor,
    motion_emb: torch.Tensor,
    same: torch.Tensor,
    temperature: float,
    extra_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of unit embeddings (B, D); ``same`` (B, B) bool marks pairs (text i, motion j)
    that match although i ≠ j: they are left out of the negatives (the diagonal is always the positive).
    ``extra_negatives`` (K, D): motions that match no text, added to every text's negatives."""
    logits = text_emb @ motion_emb.T / temperature  # (B, B)
    eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    text_to_motion = logits
    if extra_negatives is not None and len(extra_negatives):
        text_to_motion = torch.cat([logits, text_emb @ extra_negatives.T / temperature], dim=1)  # (B, B + K)
    return 0.5 * (F.cross_entropy(text_to_motion, target) + F.cross_entropy(logits.T, target))


FROZEN_MIN_SPEED_MPS = 0.15
"""Only clips whose joints move at least this fast (mean, relative to the pelvis) are frozen into negatives."""


def pose_speed(inputs: np.ndarray) -> float:
    """Mean speed (m/s) of the local joints in :func:`evaluator_inputs` rows."""
    vel = inputs[:, POSE_VELOCITY_COLUMNS].reshape(len(inputs), -1, 3)
    return float(np.linalg.norm(vel, axis=-1).mean())


def freeze_pose(inputs: np.ndarray, frame: int, keep_root_motion: bool) -> np.ndarray:
    """The same clip with the pose of ``frame`` held in every frame (joint velocities 0); the pelvis keeps its path
    when ``keep_root_motion``, else stands still."""
    out = inputs.copy()
    out[:, POSE_COLUMNS] = inputs[frame, POSE_COLUMNS]
    out[:, POSE_VELOCITY_COLUMNS] = 0.0
    if not keep_root_motion:
        out[:, ROOT_VELOCITY_COLUMNS] = 0.0
    return out


def _lr(step: int, cfg: EvaluatorConfig) -> float:
    warm = 100
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return 0.5 * cfg.lr * (1 + np.cos(np.pi * (step - warm) / max(cfg.steps - warm, 1)))


def train_evaluator(
    clips: MotionClips, cfg: EvaluatorConfig, embedder: SentenceEmbedder, progress: bool = True
) -> tuple[RetrievalEvaluator, dict]:
    """Train on the ``train`` records of ``clips`` (their training texts). Returns the evaluator and a summary."""
    t0, cpu0 = time.monotonic(), time.process_time()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train = [i for i, r in enumerate(clips.records) if r["split"] == "train"]
    assert train, "the evaluator needs training clips"
    inputs = [evaluator_inputs(clips.joints[i], clips.fps) for i in train]
    labels = [clips.label(i) for i in train]
    label_ids = {lab: k for k, lab in enumerate(sorted(set(labels)))}
    clip_label = np.array([label_ids[lab] for lab in labels])
    texts = sorted({t for i in train for t in clips.records[i]["texts"]})
    text_ids = {t: k for k, t in enumerate(texts)}
    text_fits = np.zeros((len(texts), len(label_ids)), bool)  # text k was written for a clip of label l
    for i, lab in zip(train, clip_label):
        for t in clips.records[i]["texts"]:
            text_fits[text_ids[t], lab] = True
    sentence = torch.from_numpy(embedder.training_texts(texts))  # (n_texts, text_dim)
    clip_texts = [[text_ids[t] for t in clips.records[i]["texts"]] for i in train]
    weights = np.array([float(clips.records[i].get("sample_weight") or 1.0) for i in train])
    weights /= weights.sum()

    model = RetrievalEvaluator(cfg)
    frames = np.concatenate(inputs).astype(np.float64)
    model.mean.copy_(torch.from_numpy(frames.mean(0)).float())
    model.std.copy_(torch.from_numpy(np.maximum(frames.std(0), 1e-3)).float())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    from tqdm import tqdm

    bar = tqdm(range(cfg.steps), desc="training the evaluator", unit="step", disable=not progress, dynamic_ncols=True)
    losses = []
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        batch = rng.choice(len(train), cfg.batch_size, p=weights)
        crops = []
        for k in batch:
            x = inputs[k]
            start = int(rng.integers(0, len(x) - cfg.max_frames + 1)) if len(x) > cfg.max_frames else 0
            crops.append(x[start : start + cfg.max_frames])
        tids = np.array([clip_texts[k][int(rng.integers(len(clip_texts[k])))] for k in batch])
        same = torch.from_numpy(text_fits[tids][:, clip_label[batch]])  # (B, B): text i fits motion j's label
        movers = [c for c in crops if pose_speed(c) >= FROZEN_MIN_SPEED_MPS]
        n_frozen = min(int(round(cfg.frozen_negatives * cfg.batch_size)), len(movers))
        frozen = [
            freeze_pose(movers[k], int(rng.integers(len(movers[k]))), bool(rng.integers(2)))
            for k in rng.choice(len(movers), n_frozen, replace=False)
        ]
        extra = model.forward_inputs(frozen) if frozen else None
        loss = contrastive_loss(model.text(sentence[tids]), model.forward_inputs(crops), same, cfg.temperature, extra)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    model.eval()
    summary = {"train_seconds": round(time.monotonic() - t0, 1), "train_cpu_seconds": round(time.process_time() - cpu0, 1),
               "torch_threads": torch.get_num_threads(), "final_loss": float(np.mean(losses[-50:])),
               "train_clips": len(train), "train_texts": len(texts), "labels": len(label_ids)}  # fmt: skip
    return model, summary


# ---------------------------------------------------------------------------------------------- cache
def cache_path(cfg: EvaluatorConfig, data_version: int, fps: float, cache_root: Path | None = None) -> Path:
    root = Path(cache_root) if cache_root else default_cache_root()
    return root / "evaluator" / f"evaluator_v{data_version}_{fps:g}fps_{cfg.key()}.safetensors"


def save_evaluator(model: RetrievalEvaluator, path: Path, summary: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"config": asdict(model.cfg), "summary": summary}, indent=1) + "\n")


def load_evaluator(path: Path) -> tuple[RetrievalEvaluator, dict]:
    from safetensors.torch import load_file

    info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    model = RetrievalEvaluator(EvaluatorConfig(**info["config"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval(), info["summary"]


def load_or_train(
    clips: MotionClips,
    cfg: EvaluatorConfig | None = None,
    embedder: SentenceEmbedder | None = None,
    cache_root: Path | None = None,
    progress: bool = True,
) -> tuple[RetrievalEvaluator, dict]:
    """The cached evaluator for this data version, frame rate and configuration; trained (and cached) when missing."""
    cfg = cfg or EvaluatorConfig()
    path = cache_path(cfg, clips.data_version, clips.fps, cache_root)
    if path.is_file() and path.with_suffix(".json").is_file():
        return load_evaluator(path)
    embedder = embedder or SentenceEmbedder(cfg.text_model, cache_root)
    model, summary = train_evaluator(clips, cfg, embedder, progress=progress)
    summary.update(data_version=clips.data_version, fps=clips.fps)
    save_evaluator(model, path, summary)
    return model, summary
