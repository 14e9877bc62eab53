"""The release an animator downloads: build the linux-x64 zip, install it into a fresh Blender whose Python has only
bpy and numpy, enable it, and generate two takes on an SMPL rig — with torch, transformers and the models all coming
out of the zip.

The Blender side runs in a subprocess (``release_check.py``) with a Python made for the test: a venv holding only
bpy and the packages bpy itself needs, linked from the project's environment, so the project's own torch cannot be
imported there. The zip carries the bundled model when ``vendor_models/temos-cmu-kitml`` exists; otherwise the check
uses a tiny random model from outside the zip, and says so.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

HERE = Path(__file__).resolve().parent
BPY_AND_ITS_DEPENDENCIES = ("bpy", "numpy", "requests", "idna", "urllib3", "certifi", "charset-normalizer", "zstandard")
"""What the test's Blender Python holds: bpy and what pip installs with it (as in Blender's bundled Python)."""
CHECK_TIMEOUT_S = 1800


def _top_level_entries(distribution: str) -> set[str]:
    dist = importlib.metadata.distribution(distribution)
    entries = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first not in ("..", "__pycache__") and not first.endswith(".pth"):
            entries.add(first)
    return entries


def make_bpy_only_python(folder: Path) -> Path:
    """A venv (no pip) whose site-packages links to bpy and its dependencies from this environment, and nothing else.

    Returns its python executable."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    here_site = Path(importlib.metadata.distribution("bpy").locate_file(""))
    for distribution in BPY_AND_ITS_DEPENDENCIES:
        for entry in _top_level_entries(distribution):
            if (here_site / entry).exists() and not (site / entry).exists():
                (site / entry).symlink_to(here_site / entry)
    return python


@pytest.fixture(scope="module")
def release_zip(build_module, tmp_path_factory):
    """The linux-x64 release, built like ``build.py --platform linux-x64`` (wheels cached in the repo's wheels/)."""
    started = time.perf_counter()
    zip_path = build_module.build_extension(tmp_path_factory.mktemp("dist"), platform="linux-x64")
    print(f"built {zip_path.name}: {zip_path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s")
    return zip_path


@pytest.fixture(scope="module")
def fallback_model_dir(repo_root, tmp_path_factory):
    """A tiny random model, for when the repository has no trained model to bundle (None when it has one)."""
    if (repo_root / "vendor_models" / "temos-cmu-kitml" / "config.json").is_file():
        return None
    import torch

    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.weights import save_model

    torch.manual_seed(0)
    cfg = TemosConfig(model_id="tiny-release-test", latent_dim=32, ff_size=64, num_layers=2, num_heads=2)
    return save_model(Temos(cfg).eval(), tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def findings(release_zip, fallback_model_dir, tmp_path_factory):
    """What ``release_check.py`` found, run in a Blender Python with no torch of its own."""
    python = make_bpy_only_python(tmp_path_factory.mktemp("bpy-only") / "venv")
    user = tmp_path_factory.mktemp("blender-user")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLENDER_USER_", "PYTHON"))}
    env["BLENDER_USER_RESOURCES"] = str(user)
    command = [str(python), str(HERE / "release_check.py"), str(release_zip)]
    if fallback_model_dir is not None:
        command.append(str(fallback_model_dir))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RELEASE-CHECK ")]
    assert result.returncode == 0 and lines, (
        f"release_check.py failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    found = json.loads(lines[-1].removeprefix("RELEASE-CHECK "))
    print(
        f"\nzip {found['zip_bytes'] / 1e6:.0f} MB, unpacked wheels {found['unpacked_bytes'] / 1e6:.0f} MB; wall (CPU) "
        f"seconds: install {found['install_s']:.1f} ({found['install_cpu_s']:.1f}), first enable "
        f"{found['enable_s']:.1f} ({found['enable_cpu_s']:.1f}), first generation of 2 takes incl. importing torch "
        f"{found['generate_s']:.1f} ({found['generate_cpu_s']:.1f}); model: {found['model']}"
    )
    if found["model"] == "fallback":
        warnings.warn(
            "vendor_models/temos-cmu-kitml is absent, so the release carries no model: the takes came from a tiny "
            "random model outside the zip (torch, transformers and the text model still came from the zip).",
            stacklevel=1,
        )
    return found


def test_blender_python_of_the_test_cannot_import_torch_or_transformers_before_the_extension(findings):
    assert findings["importable_before"] == {name: None for name in findings["importable_before"]}


def test_release_installs_and_enables_in_a_fresh_blender(findings):
    assert findings["install_result"] == ["FINISHED"]
    assert findings["enabled"]


def test_torch_and_transformers_come_from_the_wheels_blender_unpacked(findings):
    site = Path(findings["site_packages"])
    for name in ("torch", "transformers", "safetensors", "tokenizers"):
        module_file = findings["modules"][name]
        assert module_file is not None, f"{name} was never imported"
        assert Path(module_file).is_relative_to(site), f"{name} came from {module_file}, not {site}"


def test_text_model_is_the_copy_inside_the_extension(findings):
    folder = Path(findings["text_model_folder"])
    assert folder.is_relative_to(Path(findings["extension_dir"])), folder


def test_two_takes_are_generated_on_an_smpl_rig_from_the_model_in_use(findings, fallback_model_dir):
    assert findings["generate_result"] == ["FINISHED"]
    takes = findings["takes"]
    assert len(takes) == 2
    assert all(t["model_id"] == findings["expected_model_id"] for t in takes)
    assert [t["seed"] for t in takes] == [11, 12]
    assert all(t["keys"] > 0 for t in takes)
    assert takes[0]["checksum"] != takes[1]["checksum"], "two seeds gave identical keys"
    if fallback_model_dir is None:
        assert findings["model"] == "bundled"
        assert Path(findings["model_dir"]).is_relative_to(Path(findings["extension_dir"]))


def test_worker_process_of_blenders_python_runs_on_the_bundled_wheels_and_gives_the_same_takes(findings):
    site = Path(findings["site_packages"])
    assert Path(findings["worker_check"]["torch_file"]).is_relative_to(site)
    assert findings["worker_result"] == "Done"
    assert findings["worker_max_difference"] < 1e-4
