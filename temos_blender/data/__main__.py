"""``python -m temos_blender.data``: build the cached training set (see :mod:`.build`)."""

from __future__ import annotations

import argparse

from .build import DEFAULT_FPS, build, cache_matches_features, cache_stem, default_data_dir, default_out_dir


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m temos_blender.data", description=__doc__)
    p.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help=f"frame rate of the cached motions (default {DEFAULT_FPS})"
    )
    p.add_argument(
        "--data-dir", default=None, help=f"source data folder (default $TEMOS_DATA_DIR or {default_data_dir()})"
    )
    p.add_argument("--out-dir", default=None, help=f"cache folder (default {default_out_dir()})")
    p.add_argument("--workers", type=int, default=None, help="processes for conversion (default min(2, CPUs))")
    p.add_argument("--force", action="store_true", help="rebuild even when the cache file exists")
    a = p.parse_args(argv)
    out = default_out_dir() if a.out_dir is None else a.out_dir
    from pathlib import Path

    path = Path(out) / f"{cache_stem(a.fps)}.npz"
    if path.exists() and path.with_suffix(".json").exists() and not a.force:
        if cache_matches_features(path):
            print(f"{path} is up to date (use --force to rebuild)")
            return
        print(f"{path} was built with another feature layout: rebuilding")
    build(a.fps, data_dir=a.data_dir, out_dir=a.out_dir, workers=a.workers)


if __name__ == "__main__":
    main()
