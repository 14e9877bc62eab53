"""Fixtures for the data-pipeline tests: the real training data folder, or a skip that says where it is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from temos_blender.data.build import default_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    folder = default_data_dir()
    if not (folder / "bandai_namco" / "dataset-2").is_dir():
        pytest.skip(f"training data not found at {folder} (put it at ../shared/data or set TEMOS_DATA_DIR)")
    return folder


@pytest.fixture(scope="session")
def bandai_clips(data_dir):
    from temos_blender.data import bandai

    clips, _ = bandai.list_clips(data_dir)
    return {c.clip_id: c for c in clips}
