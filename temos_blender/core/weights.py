"""Our checkpoint format: a folder with ``config.json`` (→ :class:`TemosConfig`) and ``model.safetensors``.

Loading never unpickles anything. Weights may be stored in float16 (half the download); they are
computed in float32.
"""

from __future__ import annotations

import json
import os
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


def read_config(folder: str | os.PathLike) -> TemosConfig:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"Model folder '{folder}' has no config.json.", "Choose a folder made by training or by the converter.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}.") from None
    try:
        return TemosConfig.from_dict(data)
    except TypeError as e:
        raise CheckpointError(str(e), "Fix or regenerate config.json.") from None


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
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "temos-blender", "model_id": model.cfg.model_id})
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
