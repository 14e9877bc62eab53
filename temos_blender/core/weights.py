"""Our checkpoint format: a folder with ``config.json`` (→ :class:`TemosConfig`) and ``model.safetensors``.

Loading never unpickles anything. Weights may be stored in float16 (half the download); they are
computed in float32.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields
from pathlib import Path

import torch

from ..errors import CheckpointError
from .model import Temos, TemosConfig

BUNDLED_MODEL_ID = "temos-cmu-kitml"


def bundled_model_folder() -> Path | None:
    """The model shipped with the project: inside the extension, else in the source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "vendor_models" / BUNDLED_MODEL_ID, package.parent / "vendor_models" / BUNDLED_MODEL_ID):
        if (candidate / "config.json").is_file():
            return candidate
    return None


REQUIRED_CONFIG_KEYS = ("latent_dim", "ff_size", "num_layers", "num_heads", "nfeats", "fps", "text_model", "text_dim")
"""Keys config.json must state: they decide the network's shapes, its heads and its inputs, so a default would only
hide a mismatch (the official TEMOS YAML lost its head count that way). The other keys default."""


def _config_value_problem(name: str, value, default) -> str:
    """Why ``value`` cannot be the config field ``name`` whose default is ``default`` (empty when it can)."""
    if default is None:  # optional whole number (decoder_layers): absent/null, or at least 1
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        return "" if ok else f"config.json key {name!r} must be a whole number of at least 1, or null; got {value!r}."
    if isinstance(default, bool) or isinstance(value, bool):
        ok = type(value) is type(default)
    elif isinstance(default, int):
        ok = isinstance(value, int)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and math.isfinite(value)
    else:
        ok = isinstance(value, type(default))
    kind = {int: "a whole number", float: "a finite number", str: "text"}.get(type(default), type(default).__name__)
    return "" if ok else f"config.json key {name!r} must be {kind}; got {value!r}."


def read_config(folder: str | os.PathLike) -> TemosConfig:
    """``folder/config.json`` as a :class:`TemosConfig`; a :class:`CheckpointError` saying what is wrong with it."""
    folder = Path(folder)
    if not folder.exists():
        raise CheckpointError(
            f"Model folder '{folder}' does not exist.", "Choose a folder with config.json and model.safetensors."
        )
    if not folder.is_dir():
        raise CheckpointError(
            f"Model folder '{folder}' is not a folder.", "Choose a folder with config.json and model.safetensors."
        )
    path = folder / "config.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(
            f"Model folder '{folder}' has no config.json.", "Choose a folder made by training or by the converter."
        ) from None
    except PermissionError:
        raise CheckpointError(
            f"Cannot read {path}: permission denied.", "Give your user read access to the model folder."
        ) from None
    except UnicodeDecodeError:
        raise CheckpointError(
            f"{path} is not valid JSON: it is not UTF-8 text.", "Fix or regenerate config.json."
        ) from None
    except OSError as e:
        raise CheckpointError(f"Cannot read {path}: {e.strerror or e}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}.") from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{path} must hold a JSON object of settings; got a {type(data).__name__}.",
            "Fix or regenerate config.json.",
        )
    try:
        cfg = TemosConfig.from_dict(data)  # unknown keys first: a misspelled key also looks like a missing one
    except TypeError as e:
        raise CheckpointError(str(e), "Fix or regenerate config.json.") from None
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in data]
    if missing:
        raise CheckpointError(
            f"{path} lacks the required key {missing[0]!r}"
            + (f" (and {', '.join(map(repr, missing[1:]))})" if missing[1:] else "")
            + ".",
            "Regenerate config.json with the model (training and the converter write every key).",
        )
    for f in fields(TemosConfig):
        problem = _config_value_problem(f.name, getattr(cfg, f.name), f.default)
        if problem:
            raise CheckpointError(problem, "Fix or regenerate config.json.")
    return cfg


def _normal_file_mode(path: Path) -> None:
    """Give ``path`` the permissions of any new file under the process umask (safetensors writes owner-only files,
    which other users — a render farm, a shared install — cannot read)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def save_model(model: Temos, folder: str | os.PathLike, half: bool = False) -> Path:
    """Write ``config.json`` + ``model.safetensors``; ``half`` stores float16 (buffers stay float32)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point() and k not in ("mean", "std"):
            v = v.half()
        state[k] = v
    weights = folder / "model.safetensors"
    save_file(state, str(weights), metadata={"format": "temos-blender", "model_id": model.cfg.model_id})
    _normal_file_mode(weights)
    (folder / "config.json").write_text(json.dumps(model.cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
    return folder


def load_model(folder: str | os.PathLike, device: str | torch.device = "cpu") -> Temos:
    """Rebuild a :class:`Temos` from a folder written by :func:`save_model`; eval mode, float32."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    cfg = read_config(folder)
    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"Model folder '{folder}' has no model.safetensors.")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"Cannot read {path}: {e}.", "The file is damaged or not a safetensors file.") from None
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"{path}: tensor {name!r} is {str(tensor.dtype).removeprefix('torch.')}; weights must be floating point.",
                "The file was not written by this project; convert the checkpoint again.",
            )
        if not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"{path}: tensor {name!r} holds NaN or infinite values.",
                "The weights are damaged; train or convert again.",
            )
    model = Temos(cfg)
    state = {k: v.float() for k, v in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor whose shape disagrees with config.json
        raise CheckpointError(
            f"{path} does not match config.json: {str(e).splitlines()[-1].strip()}",
            "The weights and config come from different models.",
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match config.json: missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}.",
            "The weights and config come from different models.",
        )
    return model.to(device).eval()


def blend_models(a: Temos, b: Temos, weight: float) -> Temos:
    """A model whose every weight is ``(1 − weight)·a + weight·b`` (``weight`` in [0, 1]): a point on the straight
    line between a model and one fine-tuned from it. Both must have the same configuration and the same
    normalisation (``mean``, ``std``: the features both were trained on)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight {weight} is outside [0, 1]")
    if a.cfg.to_dict() != b.cfg.to_dict():
        changed = sorted(k for k, v in a.cfg.to_dict().items() if b.cfg.to_dict().get(k) != v)
        raise CheckpointError(f"The two models differ in {', '.join(changed)}.", "Blend only a model with one fine-tuned from it.")
    sa, sb = a.state_dict(), b.state_dict()
    for name in ("mean", "std"):
        if not torch.equal(sa[name], sb[name]):
            raise CheckpointError(
                f"The two models normalise their features differently ({name}).",
                "They were trained on different data; blend only a model with one fine-tuned from it.",
            )
    out = Temos(a.cfg)
    out.load_state_dict({k: (1.0 - weight) * sa[k].float() + weight * sb[k].float() for k in sa})
    return out.eval()
