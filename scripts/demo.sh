#!/usr/bin/env bash
# The main job on an example prompt with the bundled model (what `make demo` runs once .venv exists):
# render libraries for the preview when missing and installable, then `temos-blender generate`.
# Usage: scripts/demo.sh [PROMPT] [OUTDIR]   (PYTHON=path/to/python to use another interpreter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-.venv/bin/python}
PROMPT=${1:-"a person walks forward and waves"}
OUT=${2:-out/demo}

bash scripts/ensure_render_libs.sh
"$PYTHON" -m temos_blender generate "$PROMPT" --takes 4 --duration 6 --seed 7 --rig smpl \
    --export bvh,fbx,glb --preview mp4 --out "$OUT" --overwrite
