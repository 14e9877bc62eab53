"""Build the Blender extension: ``python build.py`` → ``dist/temos_blender-<version>.zip``.

The add-on's files are laid out in a temporary staging folder (the ``temos_blender`` package without tests and
caches, plus ``blender_manifest.toml``), then Blender's own extension command-line tool builds the zip from it and
validates the result. That tool, ``blender_ext.py``, ships inside the ``bpy`` wheel
(``bpy/<version>/scripts/addons_core/bl_pkg/cli/``), so no Blender installation is needed.

Use from Python (the test harness does)::

    import build
    zip_path = build.build_extension(output_dir)
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = REPO_ROOT / "temos_blender"
MANIFEST_PATH = REPO_ROOT / "blender_manifest.toml"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
DIST_DIR = REPO_ROOT / "dist"

EXTENSION_ID = "temos_blender"

PLATFORMS = ("windows-x64", "windows-arm64", "macos-x64", "macos-arm64", "linux-x64")
"""Platform names as Blender's extension manifest spells them."""

EXCLUDED_PATTERNS = (
    "__pycache__",
    "*.pyc",
    "*.pyo",
    "tests",
    "conftest.py",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.egg-info",
    ".DS_Store",
)
"""Names (glob patterns) never copied into the extension, at any depth of the package."""


class BuildError(RuntimeError):
    """The extension could not be built; the message says why and what to do."""


def read_versions() -> dict[str, str]:
    """The version as each of the three files that state it says it: {file name: version}."""
    pyproject = tomllib.loads(PYPROJECT_PATH.read_text(encoding="utf-8"))
    manifest = tomllib.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    init_path = PACKAGE_DIR / "__init__.py"
    init_version = None
    for node in ast.parse(init_path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            init_version = ast.literal_eval(node.value)
    return {
        "pyproject.toml": pyproject["project"]["version"],
        "blender_manifest.toml": manifest["version"],
        "temos_blender/__init__.py": init_version,
    }


def check_version() -> str:
    """The project's version; raises BuildError unless pyproject, manifest and package agree on it."""
    versions = read_versions()
    if len(set(versions.values())) != 1:
        stated = ", ".join(f"{name}: {version!r}" for name, version in versions.items())
        raise BuildError(f"The version must be the same in all three files; got {stated}. Make them equal.")
    return versions["pyproject.toml"]


def find_extension_cli() -> Path:
    """Path of Blender's ``blender_ext.py`` inside the installed ``bpy`` package (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(
            f"Blender's extension tool comes with the bpy package, which {sys.executable} cannot import. "
            "Run `make venv` and build with .venv/bin/python, or `pip install 'bpy==4.5.*'`."
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise BuildError(f"No bl_pkg/cli/blender_ext.py under {list(spec.submodule_search_locations)}; reinstall bpy.")


def run_extension_cli(*args: str | Path) -> str:
    """Run ``blender_ext.py`` with ``args``; returns its output, raises BuildError with that output on failure."""
    command = [sys.executable, str(find_extension_cli()), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise BuildError(f"Blender's extension tool failed ({' '.join(command[2:])}):\n{output}")
    return output


# Staging: each pass adds one kind of content to the staging folder. Bundled model folders (from vendor_models/)
# and dependency wheels are added as further passes of the same shape, appended to STAGING_PASSES.


def copy_package(stage_dir: Path) -> None:
    """The package's own files become the extension's root (Blender imports it as ``bl_ext.<repo>.temos_blender``)."""
    shutil.copytree(PACKAGE_DIR, stage_dir, ignore=shutil.ignore_patterns(*EXCLUDED_PATTERNS), dirs_exist_ok=True)


def copy_manifest(stage_dir: Path) -> None:
    """``blender_manifest.toml`` sits at the extension's root."""
    shutil.copy2(MANIFEST_PATH, stage_dir / MANIFEST_PATH.name)


STAGING_PASSES: tuple[Callable[[Path], None], ...] = (copy_package, copy_manifest)


def stage_extension(stage_dir: Path) -> Path:
    """Lay out everything the extension ships in ``stage_dir`` (created; must not exist yet) and return it."""
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True)
    for staging_pass in STAGING_PASSES:
        staging_pass(stage_dir)
    return stage_dir


def validate_extension(path: Path) -> str:
    """Run Blender's validator on a built zip (or a staged folder); returns its report, raises BuildError if invalid."""
    return run_extension_cli("validate", Path(path))


def build_extension(output_dir: Path = DIST_DIR) -> Path:
    """Build ``<output_dir>/temos_blender-<version>.zip`` (pure Python, every platform), validate it, return its path."""
    version = check_version()
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    zip_path = output_dir / f"{EXTENSION_ID}-{version}.zip"
    zip_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="temos-blender-stage-") as tmp:
        stage_dir = stage_extension(Path(tmp) / EXTENSION_ID)
        run_extension_cli("build", "--source-dir", stage_dir, "--output-filepath", zip_path)
    if not zip_path.is_file():
        raise BuildError(f"Blender's extension tool reported success but wrote no {zip_path}.")
    validate_extension(zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=DIST_DIR, help="where the zip goes (default: dist/)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--platform", choices=PLATFORMS, help="build the package for one platform")
    target.add_argument("--all", action="store_true", help="build the packages for every platform")
    args = parser.parse_args(argv)

    if args.platform or args.all:
        print(
            "Dependency wheels are not bundled yet, so every platform gets the same pure-Python package; "
            "torch, transformers and safetensors must be importable from Blender's Python."
        )
    try:
        zip_path = build_extension(args.output_dir)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    size_kib = zip_path.stat().st_size / 1024
    print(f"Built and validated {zip_path} ({size_kib:.0f} KiB).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
