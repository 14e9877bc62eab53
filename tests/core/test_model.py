"""The network: shapes, masks, latent sampling."""

from __future__ import annotations

import pytest
import torch

from temos_blender.core.model import TemosConfig, lengths_to_mask, sample_latent


def test_encoders_and_decoder_give_documented_shapes(tiny_model):
    cfg = tiny_model.cfg
    b, t, l = 3, 17, 9
    with torch.inference_mode():
        mu, logvar = tiny_model.encode_text(torch.randn(b, l, cfg.text_dim), torch.ones(b, l, dtype=torch.bool))
        assert mu.shape == logvar.shape == (b, cfg.latent_dim)
        mu_m, logvar_m = tiny_model.encode_motion(torch.randn(b, t, cfg.nfeats), torch.ones(b, t, dtype=torch.bool))
        assert mu_m.shape == logvar_m.shape == (b, cfg.latent_dim)
        out = tiny_model.decode(mu, lengths_to_mask(torch.tensor([t, 5, 1])))
    assert out.shape == (b, t, cfg.nfeats)


def test_decoder_output_is_zero_beyond_each_length(tiny_model):
    lengths = torch.tensor([12, 7, 3])
    with torch.inference_mode():
        out = tiny_model.decode(torch.randn(3, tiny_model.cfg.latent_dim), lengths_to_mask(lengths))
    for i, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(out[i, n:]) == 0
        assert torch.all(out[i, :n].abs().sum(-1) > 0)


def test_decoder_valid_frames_do_not_depend_on_padding(tiny_model):
    z = torch.randn(1, tiny_model.cfg.latent_dim)
    with torch.inference_mode():
        alone = tiny_model.decode(z, lengths_to_mask(torch.tensor([6])))
        padded = tiny_model.decode(z, lengths_to_mask(torch.tensor([6]), max_len=15))
    torch.testing.assert_close(padded[:, :6], alone, atol=1e-5, rtol=1e-5)


def test_motion_encoder_ignores_padded_frames(tiny_model):
    cfg = tiny_model.cfg
    x = torch.randn(1, 8, cfg.nfeats)
    garbage = torch.randn(1, 5, cfg.nfeats) * 100
    with torch.inference_mode():
        mu, logvar = tiny_model.encode_motion(x, torch.ones(1, 8, dtype=torch.bool))
        mask = torch.cat([torch.ones(1, 8, dtype=torch.bool), torch.zeros(1, 5, dtype=torch.bool)], dim=1)
        mu_p, logvar_p = tiny_model.encode_motion(torch.cat([x, garbage], dim=1), mask)
    torch.testing.assert_close(mu_p, mu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logvar_p, logvar, atol=1e-5, rtol=1e-5)


def test_text_encoder_ignores_padded_tokens(tiny_model):
    cfg = tiny_model.cfg
    tokens = torch.randn(1, 6, cfg.text_dim)
    with torch.inference_mode():
        mu, _ = tiny_model.encode_text(tokens, torch.ones(1, 6, dtype=torch.bool))
        batch = torch.cat([torch.cat([tokens, torch.randn(1, 4, cfg.text_dim)], 1), torch.randn(1, 10, cfg.text_dim)])
        mask = torch.ones(2, 10, dtype=torch.bool)
        mask[0, 6:] = False
        mu_b, _ = tiny_model.encode_text(batch, mask)
    torch.testing.assert_close(mu_b[:1], mu, atol=1e-5, rtol=1e-5)


def test_diversity_zero_samples_the_mean():
    mu, logvar = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.equal(sample_latent(mu, logvar, 0.0, eps=torch.randn(4, 8)), mu)


def test_sample_latent_scales_noise_by_diversity_and_sigma():
    mu, logvar, eps = torch.randn(2, 8), torch.randn(2, 8), torch.randn(2, 8)
    z = sample_latent(mu, logvar, 0.5, eps=eps)
    torch.testing.assert_close(z, mu + 0.5 * torch.exp(0.5 * logvar) * eps)


def test_normalize_of_a_constant_feature_is_finite(tiny_model):
    # The official kit-amass-rot std has an exact zero; normalising must not give NaN.
    tiny_model.std[5] = 0.0
    feats = tiny_model.mean.expand(2, 3, -1).clone()
    assert torch.isfinite(tiny_model.normalize(feats)).all()


def test_unknown_config_key_is_rejected():
    with pytest.raises(TypeError, match="num_head"):
        TemosConfig.from_dict({**TemosConfig().to_dict(), "num_head": 6})


def test_config_round_trips_through_dict(tiny_model):
    assert TemosConfig.from_dict(tiny_model.cfg.to_dict()) == tiny_model.cfg


def test_pre_norm_adds_one_final_layer_norm_per_stack_and_post_norm_none():
    post = TemosConfig(latent_dim=32, ff_size=64, num_layers=2, num_heads=2)
    pre = TemosConfig(**{**post.to_dict(), "norm_first": True})
    from temos_blender.core.model import Temos

    extra = sorted(set(Temos(pre).state_dict()) - set(Temos(post).state_dict()))
    assert extra == [f"{stack}.{w}" for stack in ("motiondecoder.seqTransDecoder", "motionencoder.seqTransEncoder",
                                                  "textencoder.seqTransEncoder") for w in ("norm.bias", "norm.weight")]
    assert not TemosConfig().norm_first, "the default must stay the official post-norm layout"
