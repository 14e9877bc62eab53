"""Blending a model with one fine-tuned from it (``python -m temos_blender.blend``)."""

from __future__ import annotations

import pytest
import torch

from temos_blender.blend import main
from temos_blender.core.model import TemosConfig
from temos_blender.core.weights import blend_models, load_model, save_model
from temos_blender.errors import CheckpointError

from .conftest import TINY, make_model


def _tuned(seed: int = 1):
    """A second model with the first one's normalisation, as fine-tuning leaves it: other weights, same features."""
    a, b = make_model(), make_model(seed=seed)
    b.mean.copy_(a.mean)
    b.std.copy_(a.std)
    return a, b


def test_blend_is_the_straight_line_between_the_two_models_weights():
    a, b = _tuned()
    with torch.no_grad():
        a.mean.add_(0.5)
        b.mean.copy_(a.mean)
    sa, sb = a.state_dict(), b.state_dict()
    for w in (0.0, 0.25, 1.0):
        s = blend_models(a, b, w).state_dict()
        for k in sa:
            torch.testing.assert_close(s[k], (1 - w) * sa[k] + w * sb[k], rtol=0, atol=1e-6)
    assert torch.equal(blend_models(a, b, 0.0).state_dict()["mean"], sa["mean"]), "the normalisation is kept"
    x = torch.randn(1, 10, TINY.nfeats)
    mask = torch.ones(1, 10, dtype=torch.bool)
    with torch.no_grad():
        mu_a, mu_b = a.encode_motion(x, mask)[0], b.encode_motion(x, mask)[0]
        mu_0, mu_1 = (blend_models(a, b, w).encode_motion(x, mask)[0] for w in (0.0, 1.0))
    torch.testing.assert_close(mu_0, mu_a)
    torch.testing.assert_close(mu_1, mu_b)
    assert not torch.allclose(mu_a, mu_b), "the two models differ where it matters"


def test_models_that_differ_in_configuration_or_normalisation_are_refused():
    a, b = _tuned()
    with pytest.raises(CheckpointError, match="latent_dim"):
        blend_models(a, make_model(TemosConfig(**{**TINY.to_dict(), "latent_dim": 16})), 0.5)
    with torch.no_grad():
        b.std.mul_(2.0)
    with pytest.raises(CheckpointError, match="normalise"):
        blend_models(a, b, 0.5)
    with pytest.raises(ValueError, match="outside"):
        blend_models(a, a, 1.5)


def test_command_writes_a_loadable_float16_folder_and_refuses_bad_input(tmp_path, capsys):
    a, b = _tuned()
    save_model(a, tmp_path / "a")
    save_model(b, tmp_path / "b")
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--weight", "0.75", "--out", str(tmp_path / "ab")]) == 0
    blended = load_model(tmp_path / "ab")
    expected = blend_models(a, b, 0.75).state_dict()
    for k, v in blended.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-3, atol=1e-3)  # stored as float16
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--weight", "2", "--out", str(tmp_path / "x")]) == 2
    assert main([str(tmp_path / "a"), str(tmp_path / "missing"), "--weight", "0.5", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.count("error:") == 2
    assert not (tmp_path / "x").exists(), "nothing is written when the blend is refused"
