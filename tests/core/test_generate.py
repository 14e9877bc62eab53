"""Prompt → takes: determinism, diversity, shapes and units, cancellation, weights and text-model loading."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from temos_blender.core.features import YUP_TO_ZUP, canonicalize, features_to_smpl, matrix_to_6d
from temos_blender.core.generate import GenerateRequest, TemosGenerator
from temos_blender.core.model import Temos
from temos_blender.core.text_encoder import resolve_text_model_folder
from temos_blender.core.weights import load_model, read_config, save_model
from temos_blender.errors import Cancelled, CheckpointError, PromptError, TextModelError
from temos_blender.rotations import quat_to_matrix
from temos_blender.skeleton import SMPL_JOINTS

PROMPT = "a person walks forward and waves"


def takes_equal(a, b) -> bool:
    return np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root_translation, b.root_translation)


def test_same_seed_gives_identical_takes(generator):
    req = GenerateRequest(PROMPT, duration_s=2.0, n_takes=3, seed=11)
    first, second = generator.generate(req), generator.generate(req)
    assert all(takes_equal(a, b) for a, b in zip(first, second))


def test_different_seeds_give_different_takes(generator):
    takes = generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=3, seed=11))
    assert not takes_equal(takes[0], takes[1]) and not takes_equal(takes[1], takes[2])
    other = generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=1, seed=500))[0]
    assert not takes_equal(other, takes[0])
    assert [t.seed for t in takes] == [11, 12, 13]


def test_take_i_is_reproducible_alone_from_its_seed(generator):
    batch = generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=3, seed=11))
    alone = generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=1, seed=13))[0]
    np.testing.assert_allclose(alone.rotations, batch[2].rotations, atol=1e-4)  # batched matmuls round differently
    np.testing.assert_allclose(alone.root_translation, batch[2].root_translation, atol=1e-4)


def test_diversity_zero_makes_all_takes_identical(generator):
    takes = generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=4, seed=3, diversity=0.0))
    assert all(takes_equal(takes[0], t) for t in takes[1:])


def test_takes_have_model_fps_and_rounded_frame_count(generator):
    for duration, frames in ((2.0, 25), (2.5, 31), (3.3, 41)):
        take = generator.generate(GenerateRequest(PROMPT, duration_s=duration, n_takes=1))[0]
        assert take.fps == generator.cfg.fps == 12.5
        assert take.num_frames == frames == round(duration * take.fps)
        assert take.rotations.shape == (frames, 22, 4) and take.rotations.dtype == np.float32
        assert take.root_translation.shape == (frames, 3) and take.root_translation.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(take.rotations, axis=-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(take.root_translation[0, [0, 2]], 0.0)
        assert take.joint_names == SMPL_JOINTS
        assert (take.prompt, take.model_id) == (PROMPT, "tiny-test")


def test_take_is_in_metres_y_up_facing_plus_z(generator):
    # With std = 0 the decoder's output is ignored and every frame is the mean: an upright body (Z-up root
    # rotation = YUP_TO_ZUP), pelvis 0.93 m high, stepping 0.05 m per frame along Z-up -y = SMPL forward (+Z).
    model = generator.model
    mean = torch.zeros(135)
    mean[0] = 0.93
    mean[1:3] = torch.tensor([0.0, -0.05])
    rots = torch.eye(3).repeat(22, 1, 1)
    rots[0] = YUP_TO_ZUP
    mean[3:] = matrix_to_6d(rots).flatten()
    model.mean.copy_(mean)
    model.std.zero_()
    take = generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=2, seed=1))[1]
    t = np.arange(take.num_frames)
    np.testing.assert_allclose(take.root_translation[:, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(take.root_translation[:, 1], 0.93, atol=1e-6)
    np.testing.assert_allclose(take.root_translation[:, 2], 0.05 * t, atol=1e-5)
    np.testing.assert_allclose(take.rotations, np.broadcast_to([1.0, 0, 0, 0], take.rotations.shape), atol=1e-6)


def test_take_rotations_are_the_decoded_canonical_pose(generator):
    # Re-run the pipeline by hand: text → μ, σ → z (seeded ε) → decoder → features → SMPL → canonical.
    take = generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=1, seed=5))[0]
    model = generator.model
    with torch.inference_mode():
        mu, logvar = model.encode_text(*generator.text_model([PROMPT]))
        eps = torch.randn(mu.shape[-1], generator=torch.Generator().manual_seed(5))
        z = mu + torch.exp(0.5 * logvar) * eps
        feats = model.unnormalize(model.decode(z, torch.ones(1, take.num_frames, dtype=torch.bool)))
        rots, trans = canonicalize(*features_to_smpl(feats))
    np.testing.assert_allclose(quat_to_matrix(take.rotations.astype(np.float64)), rots[0].double().numpy(), atol=1e-5)
    np.testing.assert_allclose(take.root_translation, trans[0].numpy(), atol=1e-5)
    assert np.abs(take.rotations[..., 1:]).max() > 0.1  # a random network's poses are far from the rest pose


def test_progress_reports_every_stage_and_cancel_stops(generator):
    seen = []
    generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=1), on_progress=lambda i, n, s: seen.append(s))
    assert seen == ["encode text", "sample", "decode", "convert"]
    calls = []

    def stop_at_decode() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(Cancelled):
        generator.generate(GenerateRequest(PROMPT, duration_s=2.0, n_takes=1), should_stop=stop_at_decode)


@pytest.mark.parametrize(
    "request_kwargs, message",
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": PROMPT, "duration_s": 0.0}, "Duration must be between"),
        ({"prompt": PROMPT, "n_takes": 0}, "Number of takes"),
        ({"prompt": PROMPT, "diversity": -1.0}, "Diversity"),
    ],
)
def test_invalid_requests_are_refused_with_a_clear_error(generator, request_kwargs, message):
    with pytest.raises(PromptError, match=message):
        generator.generate(GenerateRequest(**request_kwargs))


def test_saved_model_loads_back_with_identical_outputs(tiny_model, tmp_path):
    save_model(tiny_model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.cfg == tiny_model.cfg
    for (k, a), (k2, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_half_precision_weights_load_as_float32(tiny_model, tmp_path):
    save_model(tiny_model, tmp_path / "m", half=True)
    loaded = load_model(tmp_path / "m")
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values())
    a, b = loaded.motiondecoder.final_layer.weight, tiny_model.motiondecoder.final_layer.weight
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_unknown_config_json_key_is_rejected(tiny_model, tmp_path):
    folder = save_model(tiny_model, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["num_head"] = 6
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unknown key 'num_head'"):
        read_config(folder)


def test_weights_that_disagree_with_config_are_refused(tiny_model, tmp_path):
    folder = save_model(tiny_model, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["ff_size"] = 128
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match config.json"):
        load_model(folder)


def test_missing_text_model_names_what_to_download():
    with pytest.raises(TextModelError) as err:
        resolve_text_model_folder("distilbert-base-uncased")
    assert "distilbert-base-uncased" in err.value.message
    assert "huggingface-cli download distilbert-base-uncased" in err.value.hint


def test_text_model_folder_without_config_is_refused(tmp_path):
    with pytest.raises(TextModelError, match="has no config.json"):
        resolve_text_model_folder("distilbert-base-uncased", tmp_path)


def test_loading_a_model_whose_text_model_is_absent_fails_before_any_download(tiny_model, tmp_path):
    cfg = dataclasses.replace(tiny_model.cfg, text_model="distilbert-base-uncased", text_dim=768)
    folder = save_model(Temos(cfg), tmp_path / "official")
    with pytest.raises(TextModelError, match="distilbert-base-uncased"):
        TemosGenerator.load(folder, device="cpu")


def test_text_model_of_the_wrong_width_is_refused(text_model, tiny_model):
    model = Temos(dataclasses.replace(tiny_model.cfg, text_dim=768))
    with pytest.raises(CheckpointError, match="gives 384-d features; the checkpoint expects 768-d"):
        TemosGenerator(model, text_model, torch.device("cpu"))
