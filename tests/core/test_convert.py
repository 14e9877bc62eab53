"""Official checkpoint conversion: equivalence with the official module layout, and safe reading.

``Official*`` below re-create the official modules' parameter layout and forward passes (sequence-first
``nn.Transformer*`` modules, a persistent ``pe`` buffer of shape (max_len, 1, d), tokens tiled per batch) so a
synthetic checkpoint has the real key names and shapes.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from temos_blender.core.convert import (
    convert_checkpoint,
    load_tensor_file,
    main,
    safe_torch_load,
    state_dict_from_checkpoint,
)
from temos_blender.core.generate import GenerateRequest, TemosGenerator
from temos_blender.core.model import lengths_to_mask
from temos_blender.core.text_encoder import default_text_model_folder
from temos_blender.core.weights import load_model
from temos_blender.errors import CheckpointError

D, FF, LAYERS, HEADS, TEXT_DIM, NFEATS = 32, 48, 2, 4, 384, 135  # MiniLM's width: see the end-to-end test


# ---------------------------------------------------------------------------------------------- official layout
class OfficialPositionalEncoding(nn.Module):
    def __init__(self, d: int, max_len: int = 300):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float)[:, None]
        div = torch.exp(torch.arange(0, d, 2).float() * (-np.log(10000.0) / d))
        pe = torch.zeros(max_len, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("pe", pe[:, None])  # (max_len, 1, d), saved in the checkpoint
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):  # (T, B, d)
        return self.dropout(x + self.pe[: x.shape[0]])


class OfficialEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.mu_token = nn.Parameter(torch.randn(D))
        self.logvar_token = nn.Parameter(torch.randn(D))
        self.sequence_pos_encoding = OfficialPositionalEncoding(D)
        self.seqTransEncoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(D, HEADS, FF, 0.1, "gelu"), LAYERS, enable_nested_tensor=False
        )

    def encode(self, x, mask):  # x (B, L, D) embedded
        bs = x.shape[0]
        x = x.permute(1, 0, 2)
        mu = torch.tile(self.mu_token, (bs,)).reshape(bs, -1)
        logvar = torch.tile(self.logvar_token, (bs,)).reshape(bs, -1)
        xseq = self.sequence_pos_encoding(torch.cat((mu[None], logvar[None], x), 0))
        aug_mask = torch.cat((torch.ones(bs, 2, dtype=torch.bool), mask), 1)
        final = self.seqTransEncoder(xseq, src_key_padding_mask=~aug_mask)
        return final[0], final[1]


class OfficialTextEncoder(OfficialEncoder):
    def __init__(self):
        super().__init__()
        self.text_model = nn.Embedding(10, TEXT_DIM)  # stands for the frozen DistilBERT, saved with the rest
        self.projection = nn.Sequential(nn.ReLU(), nn.Linear(TEXT_DIM, D))

    def forward(self, token_feats, mask):
        return self.encode(self.projection(token_feats), mask)


class OfficialMotionEncoder(OfficialEncoder):
    def __init__(self):
        super().__init__()
        self.skel_embedding = nn.Linear(NFEATS, D)

    def forward(self, feats, mask):
        return self.encode(self.skel_embedding(feats), mask)


class OfficialDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.sequence_pos_encoding = OfficialPositionalEncoding(D)
        self.seqTransDecoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, HEADS, FF, 0.1, "gelu"), LAYERS)
        self.final_layer = nn.Linear(D, NFEATS)

    def forward(self, z, mask):
        bs, nframes = mask.shape
        queries = self.sequence_pos_encoding(torch.zeros(nframes, bs, D))
        out = self.final_layer(self.seqTransDecoder(tgt=queries, memory=z[None], tgt_key_padding_mask=~mask))
        out[~mask.T] = 0
        return out.permute(1, 0, 2)


class OfficialTemos(nn.Module):
    def __init__(self):
        super().__init__()
        self.textencoder = OfficialTextEncoder()
        self.motionencoder = OfficialMotionEncoder()
        self.motiondecoder = OfficialDecoder()


class FakeDictConfig:
    """Pickles like omegaconf's DictConfig (NEWOBJ + BUILD with a state dict); must never be rebuilt."""

    __module__ = "omegaconf.dictconfig"
    __qualname__ = "DictConfig"
    rebuilt = False

    def __init__(self, content):
        self._content = content

    def __getstate__(self):
        return {"_content": self._content, "_metadata": None}

    def __setstate__(self, state):
        FakeDictConfig.rebuilt = True
        self.__dict__.update(state)


class FakeAttributeDict(dict):
    """Pickles like Lightning's AttributeDict (a dict subclass filled by SETITEMS)."""

    __module__ = "pytorch_lightning.utilities.parsing"
    __qualname__ = "AttributeDict"


@pytest.fixture
def fake_lightning_modules(monkeypatch):
    """Make the two fake classes picklable under omegaconf / pytorch_lightning names, as in a real checkpoint."""
    for module_name, cls, name in (
        ("omegaconf.dictconfig", FakeDictConfig, "DictConfig"),
        ("pytorch_lightning.utilities.parsing", FakeAttributeDict, "AttributeDict"),
    ):
        parts = module_name.split(".")
        for i in range(1, len(parts) + 1):
            monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        setattr(sys.modules[module_name], name, cls)
    # monkeypatch removes the fake modules after the test


def lightning_checkpoint(official: OfficialTemos) -> dict:
    hparams = FakeAttributeDict(nfeats=NFEATS, latent_dim=D, textencoder=FakeDictConfig({"num_head": 6}),
                                tags={"kit", "rot"}, blob=b"\x00\x01", shape=torch.Size([2, 3]))  # fmt: skip
    return {
        "epoch": 999,
        "pytorch-lightning_version": "1.5.0",
        "state_dict": official.state_dict(),
        "hyper_parameters": hparams,
        "callbacks": {"ModelCheckpoint": {"dirpath": pathlib.PurePosixPath("outputs/ckpts"), "best": np.float64(0.5)}},
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-4}]}],
    }


@pytest.fixture
def official_files(tmp_path, fake_lightning_modules):
    torch.manual_seed(0)
    official = OfficialTemos().eval()
    ckpt = tmp_path / "run1" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save(lightning_checkpoint(official), ckpt)
    mean, std = torch.randn(NFEATS), torch.rand(NFEATS) + 0.1
    std[60] = 0.0  # the official statistics have a constant feature
    torch.save(mean, tmp_path / "rfeats_mean.pt")
    torch.save(std, tmp_path / "rfeats_std.pt")
    return official, ckpt, mean, std


# ---------------------------------------------------------------------------------------------- equivalence
def test_converted_model_gives_the_official_layout_outputs(official_files, tmp_path):
    official, ckpt, mean, std = official_files
    folder = convert_checkpoint(ckpt, tmp_path / "out", tmp_path / "rfeats_mean.pt", tmp_path / "rfeats_std.pt")
    ours = load_model(folder)
    torch.manual_seed(1)
    lengths = torch.tensor([9, 5, 1])
    mask = lengths_to_mask(lengths)
    tokens, motion = torch.randn(3, 9, TEXT_DIM), torch.randn(3, 9, NFEATS)
    z = torch.randn(3, D)
    with torch.inference_mode():
        for got, want in (
            (ours.encode_text(tokens, mask), official.textencoder(tokens, mask)),
            (ours.encode_motion(motion, mask), official.motionencoder(motion, mask)),
        ):
            torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.decode(z, mask), official.motiondecoder(z, mask), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.mean, mean)
    torch.testing.assert_close(ours.std, std)


def test_converted_config_is_read_from_the_weights(official_files, tmp_path):
    _, ckpt, _, _ = official_files
    folder = convert_checkpoint(ckpt, tmp_path / "out", tmp_path / "rfeats_mean.pt", tmp_path / "rfeats_std.pt")
    cfg = json.loads((folder / "config.json").read_text())
    assert (cfg["latent_dim"], cfg["ff_size"], cfg["num_layers"], cfg["num_heads"]) == (D, FF, LAYERS, 4)
    assert (cfg["text_dim"], cfg["nfeats"], cfg["fps"]) == (TEXT_DIM, NFEATS, 12.5)
    assert cfg["text_model"] == "distilbert-base-uncased"
    assert cfg["model_id"] == "temos-run1-last"
    assert (cfg["min_duration_s"], cfg["max_duration_s"]) == (0.8, 40.0)


def test_conversion_drops_the_text_model_and_positional_tables(official_files, tmp_path):
    from safetensors.torch import load_file

    _, ckpt, _, _ = official_files
    folder = convert_checkpoint(ckpt, tmp_path / "out", tmp_path / "rfeats_mean.pt", tmp_path / "rfeats_std.pt")
    keys = set(load_file(str(folder / "model.safetensors")))
    assert not any("text_model" in k or k.endswith(".pe") for k in keys)
    assert "textencoder.projection.1.weight" in keys and "motiondecoder.final_layer.bias" in keys


def test_normalisation_files_beside_the_checkpoint_are_found(official_files, tmp_path):
    _, ckpt, mean, _ = official_files
    for name in ("rfeats_mean.pt", "rfeats_std.pt"):
        (tmp_path / name).rename(ckpt.parent / name)
    assert torch.equal(load_model(convert_checkpoint(ckpt, tmp_path / "out")).mean, mean)


def test_missing_normalisation_is_a_clear_error(official_files, tmp_path):
    _, ckpt, _, _ = official_files
    (tmp_path / "rfeats_std.pt").unlink()
    with pytest.raises(CheckpointError, match="rfeats_std.pt") as err:
        convert_checkpoint(ckpt, tmp_path / "out", mean=tmp_path / "rfeats_mean.pt")
    assert "--std" in err.value.hint


def test_head_count_comes_from_the_argument(official_files, tmp_path):
    _, ckpt, _, _ = official_files
    folder = convert_checkpoint(ckpt, tmp_path / "out", num_heads=8, mean=tmp_path / "rfeats_mean.pt",
                                std=tmp_path / "rfeats_std.pt")  # fmt: skip
    assert load_model(folder).cfg.num_heads == 8


def test_command_line_converts_and_reports(official_files, tmp_path, capsys):
    _, ckpt, _, _ = official_files
    argv = [str(ckpt), "--out", str(tmp_path / "cli"), "--mean", str(tmp_path / "rfeats_mean.pt"),
            "--std", str(tmp_path / "rfeats_std.pt"), "--model-id", "temos-official-kit"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "temos-official-kit" in out and "distilbert-base-uncased" in out
    assert load_model(tmp_path / "cli").cfg.model_id == "temos-official-kit"
    assert main([str(tmp_path / "absent.ckpt"), "--out", str(tmp_path / "x"), "--mean", str(tmp_path / "rfeats_mean.pt"),
                 "--std", str(tmp_path / "rfeats_std.pt")]) == 1  # fmt: skip


def test_converted_model_generates_takes_with_a_user_text_model_folder(official_files, tmp_path):
    _, ckpt, _, _ = official_files
    folder = convert_checkpoint(ckpt, tmp_path / "out", tmp_path / "rfeats_mean.pt", tmp_path / "rfeats_std.pt")
    # The config names DistilBERT; the user points at a local folder with the same width (here MiniLM, 384-d).
    gen = TemosGenerator.load(folder, text_model_folder=default_text_model_folder(), device="cpu")
    takes = gen.generate(GenerateRequest("a person jumps", duration_s=2.0, n_takes=2, seed=0))
    assert [t.rotations.shape for t in takes] == [(25, 22, 4)] * 2
    assert takes[0].model_id == "temos-run1-last"


# ---------------------------------------------------------------------------------------------- safe reading
def test_lightning_metadata_is_read_without_rebuilding_it(official_files):
    _, ckpt, _, _ = official_files
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)  # what the converter's first attempt meets
    FakeDictConfig.rebuilt = False
    state = state_dict_from_checkpoint(safe_torch_load(ckpt))
    assert not FakeDictConfig.rebuilt
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert "textencoder.seqTransEncoder.layers.1.linear1.weight" in state


def test_legacy_format_checkpoint_is_read(tmp_path, fake_lightning_modules):
    torch.manual_seed(0)
    official = OfficialTemos()
    path = tmp_path / "legacy.ckpt"
    torch.save(lightning_checkpoint(official), path, _use_new_zipfile_serialization=False)
    state = state_dict_from_checkpoint(safe_torch_load(path))
    assert torch.equal(state["motiondecoder.final_layer.weight"], official.motiondecoder.final_layer.weight)


class WritesAFile:
    """A pickle payload that would create a file when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class ExecsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload, global_name", [(WritesAFile, "posix.system"), (ExecsCode, "builtins.exec")])
@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("where", ["hyper_parameters", "state_dict"])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload, global_name, legacy, where):
    if global_name == "posix.system" and os.name != "posix":
        pytest.skip("os.system lives in 'nt' on Windows")
    marker = tmp_path / "pwned"
    state = OrderedDict(w=torch.zeros(2))
    ckpt = {"state_dict": state, "hyper_parameters": {"x": 1}}
    if where == "state_dict":
        state["evil"] = payload(marker)
    else:
        ckpt["hyper_parameters"]["evil"] = payload(marker)
    path = tmp_path / "evil.ckpt"
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError, match=global_name.replace(".", r"\.")) as err:
        state_dict_from_checkpoint(safe_torch_load(path))
    assert "refused" in err.value.message
    assert not marker.exists()


def test_metadata_object_inside_the_state_dict_is_refused(tmp_path):
    path = tmp_path / "odd.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1), "path": pathlib.PurePosixPath("x")}}, path)
    with pytest.raises(CheckpointError, match="'path' holds an object of 'pathlib.PurePosixPath'"):
        state_dict_from_checkpoint(safe_torch_load(path), "odd.ckpt")


def test_plain_state_dict_and_tensor_files_load_with_weights_only(tmp_path):
    torch.save({"a": torch.arange(3.0)}, tmp_path / "s.pt")
    assert torch.equal(state_dict_from_checkpoint(safe_torch_load(tmp_path / "s.pt"))["a"], torch.arange(3.0))
    torch.save(torch.full((4,), math.pi), tmp_path / "t.pt")
    assert torch.equal(load_tensor_file(tmp_path / "t.pt"), torch.full((4,), math.pi))
    torch.save([1, 2], tmp_path / "l.pt")
    with pytest.raises(CheckpointError, match="not a tensor"):
        load_tensor_file(tmp_path / "l.pt")


def test_damaged_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="Cannot read 'bad.ckpt'"):
        safe_torch_load(tmp_path / "bad.ckpt")


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "gru.ckpt"
    torch.save({"state_dict": {"textencoder.gru.weight": torch.zeros(3)}}, path)
    torch.save(torch.zeros(NFEATS), tmp_path / "stat.pt")
    with pytest.raises(CheckpointError, match="textencoder.projection.1.weight"):
        convert_checkpoint(path, tmp_path / "out", mean=tmp_path / "stat.pt", std=tmp_path / "stat.pt")
