"""Blend a model with one fine-tuned from it: every weight ``(1 − w)·A + w·B``, written as a model folder (float16).

    python -m temos_blender.blend vendor_models/temos-cmu-kitml runs/mine/snapshots/step000250 \\
        --weight 0.75 --out runs/mine/blend

A short fine-tuning moves a model a short way; the points on the straight line between the two models keep much of
what it taught at less of its cost elsewhere (weight-space ensembling: Wortsman et al., "Robust fine-tuning of
zero-shot models", CVPR 2022). `docs/MODEL_HISTORY.md` (Training, "Jumps at the captured height") measures such blends.
"""

from __future__ import annotations

import argparse
import sys

from .errors import TemosError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m temos_blender.blend", description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="model folder (config.json + model.safetensors): the start")
    p.add_argument("b", help="model folder fine-tuned from A")
    p.add_argument("--weight", type=float, required=True, help="share of B, in [0, 1] (0 = A, 1 = B)")
    p.add_argument("--out", required=True, help="folder to write the blend to (float16)")
    args = p.parse_args(argv)
    from .core.weights import blend_models, load_model, save_model

    try:
        save_model(blend_models(load_model(args.a), load_model(args.b), args.weight), args.out, half=True)
    except (TemosError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {1 - args.weight:g} × {args.a} + {args.weight:g} × {args.b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
