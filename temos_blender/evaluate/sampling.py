"""TEMOS samples for many prompts at once, exactly as :meth:`TemosGenerator.generate` makes each take.

The generator encodes one prompt per call; the evaluation needs ~1000 prompts of different lengths. These helpers
batch the same steps — text latent, ε drawn on the CPU from a generator seeded with the take's seed, z = μ + fact·σ·ε,
decode, features → SMPL, canonicalise — and return joint positions. ``tests/evaluate/test_sampling.py`` checks that
a take comes out the same as through the generator.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.features import canonicalize, features_to_smpl
from ..core.generate import TemosGenerator
from ..core.model import lengths_to_mask, sample_latent
from .kinematics import joints_from_rotmats


@torch.inference_mode()
def text_latents(gen: TemosGenerator, texts: list[str], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """μ, logσ² (N, d) of the text encoder for each text."""
    mus, logvars = [], []
    for i in range(0, len(texts), batch_size):
        tokens, mask = gen.text_model(texts[i : i + batch_size])
        mu, logvar = gen.model.encode_text(tokens, mask)
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    return torch.cat(mus), torch.cat(logvars)


def prompt_latents(gen: TemosGenerator, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`text_latents` of a list of prompts with repeats, each distinct prompt encoded once."""
    unique = sorted(set(prompts))
    mu, logvar = text_latents(gen, unique)
    row = {p: k for k, p in enumerate(unique)}
    sel = torch.tensor([row[p] for p in prompts])
    return mu[sel], logvar[sel]


def seeded_noise(seeds: list[int], dim: int) -> torch.Tensor:
    """(N, dim) ε, row i from a CPU generator seeded with ``seeds[i]`` (the generator's per-take draw)."""
    return torch.stack([torch.randn(dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


@torch.inference_mode()
def decode_joints(gen: TemosGenerator, z: torch.Tensor, lengths: list[int], batch_size: int = 64) -> list[np.ndarray]:
    """Latents (N, d) and frame counts → joint positions (T_i, 22, 3) per sample, as the generator's takes.

    Samples are decoded in batches of similar length; padding frames are masked out of the decoder's attention,
    so a sample decodes the same in a batch as alone (up to float rounding).
    """
    out: list[np.ndarray | None] = [None] * len(lengths)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        lens = torch.tensor([int(lengths[i]) for i in idx])
        mask = lengths_to_mask(lens).to(gen.device)
        feats = gen.model.unnormalize(gen.model.decode(z[idx].to(gen.device), mask)).float().cpu()
        for k, i in enumerate(idx):
            rots, trans = features_to_smpl(feats[k, : lens[k]])
            rots, trans = canonicalize(rots, trans)
            out[i] = joints_from_rotmats(rots.numpy(), trans.numpy()).astype(np.float32)
    return out  # type: ignore[return-value]


def sample_joints(
    gen: TemosGenerator,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    lengths: list[int],
    diversity: float,
    seeds: list[int],
) -> list[np.ndarray]:
    """One take per row of ``mu``/``logvar`` (the prompt's text latent), with its seed, diversity and length."""
    eps = seeded_noise(seeds, mu.shape[-1])
    z = sample_latent(mu, logvar, diversity, eps=eps)
    return decode_joints(gen, z, lengths)
