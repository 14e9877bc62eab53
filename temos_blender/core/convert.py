"""Official TEMOS checkpoint → our model folder (``config.json`` + ``model.safetensors``).

    python -m temos_blender.core.convert last.ckpt --out DIR [--mean rfeats_mean.pt --std rfeats_std.pt]
        [--text-model distilbert-base-uncased] [--num-heads 4] [--model-id NAME] [--half]

The official Lightning ``last.ckpt`` holds ``state_dict`` (``textencoder.*`` with the frozen DistilBERT under
``textencoder.text_model.*``, ``motionencoder.*``, ``motiondecoder.*``) and trainer state; the feature
normalisation lives in two separate files (``deps/transforms/rots2rfeats/smplvelp/rot6d/kit-amass-rot/
rfeats_{mean,std}.pt`` in the official repository). Our modules use the official parameter names, so conversion
copies tensors; it drops the text model (loaded separately from its own folder) and the positional-encoding
buffers ``*.sequence_pos_encoding.pe`` (recomputed, identical values).

The hyper-parameters are read from the weight shapes (width, feed-forward size, layers, text width, features),
except the head count, which the shapes do not show: the official YAML's ``num_head`` key is misspelled, so its
modules were built with their default of 4 heads.

Reading never runs code from the file. First ``torch.load(weights_only=True)``. Lightning also pickles its
hyper-parameters (omegaconf containers, ``AttributeDict``) and trainer state, which that refuses. Registering
stand-ins with ``torch.serialization.safe_globals`` does not suffice: the names must be known beforehand, and
torch's restricted unpickler only fills plain ``dict``/``list`` objects, not stand-ins for dict-like containers.
So the second reader is :class:`RestrictedUnpickler`, given to ``torch.load`` as its pickle module (it reads the
zip format and the legacy format alike): it builds tensors, storages and plain containers; objects from known
metadata packages (omegaconf, Lightning, typing, pathlib, numpy, argparse, enum) become inert
:class:`OpaqueObject` placeholders — never imported, never called — which may not appear in the state dict; any
other global (``os.system``, ``builtins.exec``, an unknown class …) stops the load with a :class:`CheckpointError`
naming it, before it is resolved.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import builtins
import codecs
import json
import os
import pickle
import re
import sys
import types
from collections import Counter, OrderedDict, defaultdict
from pathlib import Path

import torch

from ..errors import CheckpointError
from .model import Temos, TemosConfig
from .weights import save_model

OFFICIAL_FPS = 12.5
"""Frame rate of the official ``kit-amass-rot`` features (``configs/data/kit-amass-rot.yaml``: framerate)."""
OFFICIAL_MIN_FRAMES = 10
OFFICIAL_MAX_FRAMES = 500
"""Clip lengths the official training sampler accepted (``configs/sampler/variable_conseq.yaml``)."""
OFFICIAL_TEXT_MODEL = "distilbert-base-uncased"
OFFICIAL_NUM_HEADS = 4

MODULES = ("textencoder", "motionencoder", "motiondecoder")
DROPPED = (re.compile(r"^textencoder\.text_model\."), re.compile(r"^[a-z]+\.sequence_pos_encoding\.pe$"))
"""Official keys with no counterpart in our model: the frozen text model, the positional-encoding tables."""

# ---------------------------------------------------------------------------------------------- safe reading
_SAFE_BUILTINS = frozenset(
    ("set", "frozenset", "slice", "complex", "bytearray", "bytes", "int", "float", "str", "bool", "dict", "list",
     "tuple", "range")
)  # fmt: skip
_METADATA_PACKAGES = frozenset(
    ("omegaconf", "pytorch_lightning", "lightning", "lightning_fabric", "typing", "pathlib", "numpy", "argparse",
     "enum")
)  # fmt: skip
"""Packages whose pickled objects only carry trainer metadata; read as placeholders, never imported."""


def _constructible_globals() -> dict[tuple[str, str], object]:
    u = torch._utils
    allowed = {
        ("collections", "OrderedDict"): OrderedDict,
        ("collections", "defaultdict"): defaultdict,
        ("collections", "Counter"): Counter,
        ("_codecs", "encode"): codecs.encode,  # how protocol 2 pickles ``bytes``
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):  # fmt: skip
        if hasattr(u, name):
            allowed[("torch._utils", name)] = getattr(u, name)
    for n in _SAFE_BUILTINS:
        allowed[("builtins", n)] = getattr(builtins, n)
    return allowed


_CONSTRUCTIBLE = _constructible_globals()
"""Globals the restricted reader resolves to the real object: tensor rebuilders, plain containers."""


class OpaqueObject:
    """Stand-in for a pickled metadata object: accepts whatever the pickle stream feeds it and keeps nothing."""

    global_name = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def __repr__(self) -> str:
        return f"<unread {self.global_name}>"


def _opaque(global_name: str) -> type:
    return type("OpaqueObject", (OpaqueObject,), {"global_name": global_name})


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only allow-listed globals (see the module docstring)."""

    source = "the checkpoint"

    def find_class(self, module: str, name: str):
        # Protocol 2 writes Python 2 names ('__builtin__.set'); map them as pickle's own find_class does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = (module, name)
        allowed = _CONSTRUCTIBLE
        if key in allowed:
            return allowed[key]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.split(".")[0] in _METADATA_PACKAGES:
            return _opaque(f"{module}.{name}")
        raise CheckpointError(
            f"{self.source} contains a pickled reference to '{module}.{name}', which is not a tensor, a plain "
            "container or trainer metadata; it was refused without being loaded, since unpickling it could run code.",
            "Only use checkpoints from a source you trust; the official TEMOS 'last.ckpt' contains no such object.",
        )


def _restricted_pickle_module(source: str) -> types.ModuleType:
    """A module object with ``Unpickler`` and ``load``, as ``torch.load(pickle_module=...)`` expects."""
    unpickler = type("RestrictedUnpickler", (RestrictedUnpickler,), {"source": source})
    module = types.ModuleType("temos_restricted_pickle")
    module.Unpickler = unpickler
    module.load = lambda file, **kwargs: unpickler(file, **kwargs).load()
    module.UnpicklingError = pickle.UnpicklingError
    return module


def safe_torch_load(path: str | os.PathLike) -> object:
    """Read a ``torch.save`` file (zip or legacy format) without running code from it; tensors land on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"File '{path}' does not exist.")
    source = f"'{path.name}'"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # something besides tensors and plain containers: read again with our allow-list
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(
            f"Cannot read {source}: {e}", "The file is damaged or not a PyTorch checkpoint."
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle_module(source))
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(
            f"Cannot read {source}: {e}", "The file is damaged or not a PyTorch checkpoint."
        ) from None


def _find_opaque(obj, depth: int = 0) -> str | None:
    if isinstance(obj, OpaqueObject):
        return obj.global_name
    if depth < 4 and isinstance(obj, (dict, list, tuple)):
        for v in obj.values() if isinstance(obj, dict) else obj:
            found = _find_opaque(v, depth + 1)
            if found:
                return found
    return None


def state_dict_from_checkpoint(obj, source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint, or the object itself if it is a bare state dict."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{source} has no state_dict.", "Give the Lightning 'last.ckpt' of a TEMOS run.")
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            found = _find_opaque(v)
            what = f"an object of '{found}'" if found else f"a {type(v).__name__}"
            raise CheckpointError(f"{source}: state_dict entry {k!r} holds {what}, not a tensor.")
    return dict(state)


def load_tensor_file(path: str | os.PathLike) -> torch.Tensor:
    """A ``.pt`` file holding one tensor (the official ``rfeats_mean.pt`` / ``rfeats_std.pt``)."""
    obj = safe_torch_load(path)
    if not isinstance(obj, torch.Tensor):
        raise CheckpointError(f"'{Path(path).name}' holds a {type(obj).__name__}, not a tensor.")
    return obj.float()


# ---------------------------------------------------------------------------------------------- conversion
def _count_layers(state: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"\.layers\.(\d+)\.")
    indices = {int(m.group(1)) for k in state if (m := pattern.match(k))}
    if not indices or indices != set(range(len(indices))):
        raise CheckpointError(f"The checkpoint's '{prefix}' layers are {sorted(indices)}; expected 0, 1, 2, ….")
    return len(indices)


def _shape(state: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(
            f"The checkpoint has no '{key}'.", "It is not a TEMOS checkpoint with transformer (actor) modules."
        )
    return tuple(state[key].shape)


def official_config(
    state: dict[str, torch.Tensor],
    *,
    num_heads: int = OFFICIAL_NUM_HEADS,
    text_model: str = OFFICIAL_TEXT_MODEL,
    model_id: str = "temos-official",
    fps: float = OFFICIAL_FPS,
) -> TemosConfig:
    """Read a :class:`TemosConfig` off an official state dict's shapes (the head count is given, not read)."""
    d, text_dim = _shape(state, "textencoder.projection.1.weight")
    ff = _shape(state, "textencoder.seqTransEncoder.layers.0.linear1.weight")[0]
    nfeats = _shape(state, "motiondecoder.final_layer.weight")[0]
    layers = {
        p: _count_layers(state, p)
        for p in ("textencoder.seqTransEncoder", "motionencoder.seqTransEncoder", "motiondecoder.seqTransDecoder")
    }
    if len(set(layers.values())) != 1:
        raise CheckpointError(f"The checkpoint's modules have different depths {layers}; this model needs one depth.")
    if d % num_heads:
        raise CheckpointError(f"Width {d} is not divisible by {num_heads} heads.", "Pass the right --num-heads.")
    return TemosConfig(
        model_id=model_id,
        latent_dim=d,
        ff_size=ff,
        num_layers=next(iter(layers.values())),
        num_heads=num_heads,
        nfeats=nfeats,
        fps=fps,
        text_model=text_model,
        text_dim=text_dim,
        min_duration_s=OFFICIAL_MIN_FRAMES / fps,
        max_duration_s=OFFICIAL_MAX_FRAMES / fps,
    )


def official_state_to_model(
    state: dict[str, torch.Tensor],
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    num_heads: int = OFFICIAL_NUM_HEADS,
    text_model: str = OFFICIAL_TEXT_MODEL,
    model_id: str = "temos-official",
) -> Temos:
    """Build our :class:`Temos` (eval mode) from an official state dict and its normalisation statistics."""
    cfg = official_config(state, num_heads=num_heads, text_model=text_model, model_id=model_id)
    ours = {}
    for k, v in state.items():
        if not k.startswith(tuple(m + "." for m in MODULES)) or any(p.match(k) for p in DROPPED):
            continue  # text model, positional tables, and trainer-side modules (losses, metrics)
        ours[k] = v.detach().float()
    for name, stat in (("mean", mean), ("std", std)):
        if tuple(stat.shape) != (cfg.nfeats,):
            raise CheckpointError(
                f"The normalisation {name} has shape {tuple(stat.shape)}; the model has {cfg.nfeats} features.",
                "Give the rfeats_mean.pt / rfeats_std.pt of the dataset the checkpoint was trained on.",
            )
    ours["mean"], ours["std"] = mean.float(), std.float()
    model = Temos(cfg)
    try:
        missing, unexpected = model.load_state_dict(ours, strict=False)
    except RuntimeError as e:
        raise CheckpointError(
            f"The checkpoint's tensors do not fit the model: {str(e).splitlines()[-1].strip()}"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"The checkpoint does not match TEMOS' layout: missing {sorted(missing)[:4]}, "
            f"unexpected {sorted(unexpected)[:4]}.",
            "Only the transformer ('actor') variant of TEMOS can be converted.",
        )
    return model.eval()


def _default_model_id(ckpt: Path) -> str:
    """'…/kit-amass-rot/1cp6dwpa/checkpoints/last.ckpt' → 'temos-1cp6dwpa-last'; 'mine.ckpt' → 'temos-mine'."""
    parent = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
    parts = ["temos"] + ([parent.name] if parent is not None and parent.name else []) + [ckpt.stem]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts))


def _find_stat(ckpt: Path, name: str) -> Path | None:
    for folder in [ckpt.parent, *list(ckpt.parents)[1:4]]:
        if (folder / name).is_file():
            return folder / name
    return None


def convert_checkpoint(
    ckpt: str | os.PathLike,
    out: str | os.PathLike,
    mean: str | os.PathLike | None = None,
    std: str | os.PathLike | None = None,
    *,
    text_model: str = OFFICIAL_TEXT_MODEL,
    num_heads: int = OFFICIAL_NUM_HEADS,
    model_id: str | None = None,
    half: bool = False,
) -> Path:
    """Convert an official checkpoint and its statistics (found beside it when not given) into folder ``out``."""
    ckpt = Path(ckpt)
    stats = {}
    for name, given in (("mean", mean), ("std", std)):
        path = Path(given) if given else _find_stat(ckpt, f"rfeats_{name}.pt")
        if path is None:
            raise CheckpointError(
                f"No normalisation {name} (rfeats_{name}.pt) was given or found beside '{ckpt.name}'.",
                f"Pass --{name}: the official file is deps/transforms/rots2rfeats/smplvelp/rot6d/kit-amass-rot/"
                f"rfeats_{name}.pt in the TEMOS repository.",
            )
        stats[name] = load_tensor_file(path)
    state = state_dict_from_checkpoint(safe_torch_load(ckpt), f"'{ckpt.name}'")
    model = official_state_to_model(
        state, stats["mean"], stats["std"], num_heads=num_heads, text_model=text_model,
        model_id=model_id or _default_model_id(ckpt),
    )  # fmt: skip
    return save_model(model, out, half=half)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m temos_blender.core.convert",
        description="Convert an official TEMOS Lightning checkpoint into a temos-blender model folder.",
    )
    parser.add_argument("ckpt", help="the official last.ckpt")
    parser.add_argument("--out", required=True, help="folder to write config.json and model.safetensors into")
    parser.add_argument("--mean", help="rfeats_mean.pt (default: looked for beside the checkpoint)")
    parser.add_argument("--std", help="rfeats_std.pt (default: looked for beside the checkpoint)")
    parser.add_argument("--text-model", default=OFFICIAL_TEXT_MODEL, help="text model the checkpoint was trained with")
    parser.add_argument("--num-heads", type=int, default=OFFICIAL_NUM_HEADS, help="attention heads (official: 4)")
    parser.add_argument("--model-id", help="name stored on every take (default: from the checkpoint's path)")
    parser.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    args = parser.parse_args(argv)
    try:
        folder = convert_checkpoint(
            args.ckpt, args.out, args.mean, args.std, text_model=args.text_model, num_heads=args.num_heads,
            model_id=args.model_id, half=args.half,
        )  # fmt: skip
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    cfg = TemosConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    print(
        f"Wrote {folder}: {cfg.model_id}, d={cfg.latent_dim}, ff={cfg.ff_size}, {cfg.num_layers} layers, "
        f"{cfg.num_heads} heads, text model {cfg.text_model} ({cfg.text_dim}-d), {cfg.nfeats} features at {cfg.fps:g} fps."
    )
    if cfg.text_model != "sentence-transformers/all-MiniLM-L6-v2":
        print(f"This model needs a local copy of '{cfg.text_model}'; set its folder as the text-model folder.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
