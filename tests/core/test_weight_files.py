"""A model folder (config.json + model.safetensors) that is damaged or wrong is refused with a message naming the
problem, never a crash inside torch or a model built from defaults. test_generate.py already covers float16 weights,
an unknown config key and a config whose sizes disagree with the weights."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from temos_blender.core.weights import REQUIRED_CONFIG_KEYS, load_model, save_model
from temos_blender.errors import CheckpointError

WEIGHT = "motiondecoder.final_layer.weight"
"""A (nfeats, latent_dim) = (135, 32) tensor of the tiny model."""


@pytest.fixture
def folder(tiny_model, tmp_path):
    return save_model(tiny_model, tmp_path / "model")


def _edit_weights(folder, edit) -> None:
    state = load_file(str(folder / "model.safetensors"))
    edit(state)
    save_file(state, str(folder / "model.safetensors"))


def _edit_config(folder, edit) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def _refused(folder) -> str:
    with pytest.raises(CheckpointError) as err:
        load_model(folder)
    return str(err.value)


# -- model.safetensors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.5, 0.01, 0.0], ids=["cut in half", "only the header start", "empty file"])
def test_truncated_weights_file_is_refused_as_damaged(folder, keep):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])

    message = _refused(folder)

    assert message.startswith(f"Cannot read {path}: ")
    assert "The file is damaged or not a safetensors file." in message


def test_tensor_of_the_wrong_shape_is_refused_naming_it_and_both_shapes(folder):
    _edit_weights(folder, lambda s: s.update({WEIGHT: torch.zeros(135, 16)}))

    message = _refused(folder)

    assert "does not match config.json: size mismatch for motiondecoder.final_layer.weight" in message
    assert "[135, 16]" in message and "[135, 32]" in message


def test_missing_and_extra_tensors_are_refused_naming_them(folder):
    _edit_weights(folder, lambda s: s.pop(WEIGHT))
    assert f"missing ['{WEIGHT}']" in _refused(folder)

    _edit_weights(folder, lambda s: s.update({WEIGHT: torch.zeros(135, 32), "textencoder.gru.weight": torch.zeros(3)}))
    assert "unexpected ['textencoder.gru.weight']" in _refused(folder)


@pytest.mark.parametrize(("dtype", "name"), [(torch.int32, "int32"), (torch.int64, "int64"), (torch.bool, "bool")])
def test_tensor_that_is_not_floating_point_is_refused_naming_it_and_its_dtype(folder, dtype, name):
    _edit_weights(folder, lambda s: s.update({WEIGHT: s[WEIGHT].to(dtype)}))

    message = _refused(folder)

    assert f"tensor '{WEIGHT}' is {name}; weights must be floating point." in message


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64], ids=["bfloat16", "float64"])
def test_other_float_precisions_load_as_float32(tiny_model, folder, dtype):
    _edit_weights(folder, lambda s: s.update({k: v.to(dtype) for k, v in s.items()}))

    loaded = load_model(folder)

    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values())
    torch.testing.assert_close(loaded.state_dict()[WEIGHT], tiny_model.state_dict()[WEIGHT], atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["NaN", "infinity"])
def test_weights_holding_nan_or_infinity_are_refused(folder, bad):
    def poison(state):
        state[WEIGHT][3, 4] = bad

    _edit_weights(folder, poison)

    assert f"tensor '{WEIGHT}' holds NaN or infinite values." in _refused(folder)


def test_folder_without_weights_is_refused(folder):
    (folder / "model.safetensors").unlink()

    assert f"Model folder '{folder}' has no model.safetensors." in _refused(folder)


# -- config.json -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["latent_dim", "num_heads", "text_dim"])
def test_config_missing_a_required_key_is_refused_naming_it(folder, key):
    assert key in REQUIRED_CONFIG_KEYS
    _edit_config(folder, lambda cfg: cfg.pop(key))

    message = _refused(folder)

    assert f"config.json lacks the required key '{key}'." in message
    assert "Regenerate config.json" in message


def test_config_missing_several_required_keys_names_them_all(folder):
    _edit_config(folder, lambda cfg: [cfg.pop(k) for k in ("ff_size", "nfeats", "fps")])

    assert "lacks the required key 'ff_size' (and 'nfeats', 'fps')." in _refused(folder)


def test_config_missing_an_optional_key_loads_with_its_default(folder):
    _edit_config(folder, lambda cfg: [cfg.pop(k) for k in ("model_id", "dropout", "min_duration_s")])

    cfg = load_model(folder).cfg

    assert (cfg.model_id, cfg.dropout, cfg.min_duration_s) == ("untrained", 0.1, 1.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"latent_dim: 32\nnum_heads: 2\n", "is not valid JSON: Expecting value", id="YAML"),
        pytest.param(b'{"latent_dim": 32, "num_heads"', "is not valid JSON: Expecting ':' delimiter", id="cut short"),
        pytest.param(b"\xff\xfe\x00\x01garbage", "is not valid JSON: it is not UTF-8 text", id="binary"),
        pytest.param(b"", "is not valid JSON: Expecting value", id="empty"),
        pytest.param(b"[32, 64, 2]", "must hold a JSON object of settings; got a list", id="a JSON list"),
    ],
)
def test_config_that_is_not_a_json_object_is_refused(folder, content, message):
    (folder / "config.json").write_bytes(content)

    assert f"{folder / 'config.json'} {message}" in _refused(folder)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("latent_dim", "32", "'latent_dim' must be a whole number; got '32'"),
        ("num_layers", 2.5, "'num_layers' must be a whole number; got 2.5"),
        ("num_heads", True, "'num_heads' must be a whole number; got True"),
        ("fps", None, "'fps' must be a finite number; got None"),
        ("max_duration_s", float("nan"), "'max_duration_s' must be a finite number; got nan"),
        ("text_model", 7, "'text_model' must be text; got 7"),
        ("decoder_layers", 0, "'decoder_layers' must be a whole number of at least 1, or null; got 0"),
        ("decoder_layers", "7", "'decoder_layers' must be a whole number of at least 1, or null; got '7'"),
    ],
)
def test_config_value_of_the_wrong_type_is_refused_naming_the_key(folder, key, value, message):
    _edit_config(folder, lambda cfg: cfg.update({key: value}))

    assert f"config.json key {message}." in _refused(folder)


# -- the folder --------------------------------------------------------------------------------------------------


def test_model_folder_that_does_not_exist_is_refused(tmp_path):
    assert f"Model folder '{tmp_path / 'nowhere'}' does not exist." in _refused(tmp_path / "nowhere")


def test_model_folder_that_is_a_file_is_refused(folder):
    path = folder / "model.safetensors"

    assert f"Model folder '{path}' is not a folder." in _refused(path)


def test_model_folder_without_config_is_refused(folder):
    (folder / "config.json").unlink()

    assert f"Model folder '{folder}' has no config.json." in _refused(folder)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_config_without_read_permission_is_refused(folder):
    path = folder / "config.json"
    path.chmod(0)
    try:
        message = _refused(folder)
    finally:
        path.chmod(0o644)

    assert f"Cannot read {path}: permission denied." in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_weights_without_read_permission_are_refused(folder):
    path = folder / "model.safetensors"
    path.chmod(0)
    try:
        message = _refused(folder)
    finally:
        path.chmod(0o644)

    assert f"Cannot read {path}" in message


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_weights_are_readable_like_any_new_file(tiny_model, tmp_path):
    save_model(tiny_model, tmp_path / "m", half=True)
    (tmp_path / "plain").write_text("x")
    mode = (tmp_path / "m" / "model.safetensors").stat().st_mode & 0o777
    assert (
        mode == (tmp_path / "plain").stat().st_mode & 0o777 == (tmp_path / "m" / "config.json").stat().st_mode & 0o777
    )
