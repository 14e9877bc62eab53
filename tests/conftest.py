"""Shared test set-up for every room.

Blender isolation happens here, at the very start of the session and before any test module can import bpy:
``BLENDER_USER_RESOURCES`` points at a fresh temporary folder, so Blender's configuration, extensions and scripts
for the whole run live there and no test ever reads or writes a real user's Blender set-up.

bpy 4.5 can hang at interpreter exit (a timer left registered, or Rigify once imported). So when bpy was imported,
the session ends with ``os._exit`` after pytest has reported, keeping pytest's exit status. The Blender harness
still fails any test whose add-on leaves a timer behind (tests/blender/conftest.py); this is only the safety net.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

BLENDER_USER_RESOURCES = Path(tempfile.mkdtemp(prefix="temos-blender-user-"))
os.environ["BLENDER_USER_RESOURCES"] = str(BLENDER_USER_RESOURCES)
for _override in ("BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS", "BLENDER_USER_EXTENSIONS", "BLENDER_USER_DATAFILES"):
    os.environ.pop(_override, None)  # each would take precedence over BLENDER_USER_RESOURCES

_session_exit_status: list[int] = []


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def build_module():
    """The repository's ``build.py`` (it is a script at the root, not part of the package), imported by path."""
    spec = importlib.util.spec_from_file_location("temos_build", REPO_ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_sessionfinish(session, exitstatus):
    _session_exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    shutil.rmtree(BLENDER_USER_RESOURCES, ignore_errors=True)
    if "bpy" in sys.modules and _session_exit_status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_session_exit_status[-1])
