"""build.py without Blender: the version check and what staging puts into the extension.

Building and validating the zip with Blender's own tool is tested in tests/blender/test_extension.py.
"""

import pytest


def test_version_is_the_same_in_pyproject_manifest_and_package(build_module):
    versions = build_module.read_versions()

    assert len(set(versions.values())) == 1, versions
    assert build_module.check_version() == versions["pyproject.toml"]


def test_mismatched_manifest_version_stops_the_build(build_module, tmp_path, monkeypatch):
    manifest = tmp_path / "blender_manifest.toml"
    text = build_module.MANIFEST_PATH.read_text(encoding="utf-8")
    manifest.write_text(text.replace(f'version = "{build_module.check_version()}"', 'version = "9.9.9"'))
    monkeypatch.setattr(build_module, "MANIFEST_PATH", manifest)

    with pytest.raises(build_module.BuildError, match="9.9.9"):
        build_module.check_version()


def test_staging_leaves_out_tests_and_caches(build_module, tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    for relative in (
        "__init__.py",
        "core/model.py",
        "core/README.md",
        "core/__pycache__/model.cpython-311.pyc",
        "tests/test_model.py",
        "core/tests/test_inner.py",
        "conftest.py",
        ".pytest_cache/v/cache",
        "stray.pyc",
    ):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text("x = 1\n")
    monkeypatch.setattr(build_module, "PACKAGE_DIR", package)

    stage = build_module.stage_extension(tmp_path / "stage")

    staged = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    assert staged == ["__init__.py", "blender_manifest.toml", "core/README.md", "core/model.py"]


def test_staged_package_is_the_extension_root(build_module, tmp_path):
    stage = build_module.stage_extension(tmp_path / "stage")

    assert (stage / "blender_manifest.toml").is_file()
    assert (stage / "__init__.py").is_file() and (stage / "blender" / "panel.py").is_file()
    assert not list(stage.rglob("__pycache__"))


def test_staging_refuses_a_folder_that_already_exists(build_module, tmp_path):
    with pytest.raises(FileExistsError):
        build_module.stage_extension(tmp_path)
