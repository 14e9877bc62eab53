"""The release test builds the linux-x64 release (hundreds of MB) and installs it into a fresh Blender: minutes,
not seconds. It runs with ``make test-release`` (which sets ``TEMOS_RELEASE_TEST=1``); plain ``pytest`` and
``make test`` skip it."""

from __future__ import annotations

import os

import pytest

RELEASE_ENV = "TEMOS_RELEASE_TEST"


def pytest_collection_modifyitems(config, items):
    if os.environ.get(RELEASE_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"release test: run `make test-release` (or set {RELEASE_ENV}=1)")
    here = str(config.rootpath / "tests" / "release")
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(skip)
