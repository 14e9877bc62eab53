"""build.py's release parts without network or Blender: the wheel cache, the manifest's wheels and platforms, and
what a release stages besides the code (bundled model, text model, wheels).

Building, installing and running a real release is tests/release/test_release.py (``make test-release``).
"""

from __future__ import annotations

import tomllib
import zipfile

import pytest


def _fake_wheel(folder, filename):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("placeholder.txt", filename)
    return path


def _fill_cache(build_module, folder, platform):
    """A wheel file for every requirement of ``platform``, named as pip names them."""
    for requirement in build_module.requirements_for(platform):
        name, _, version = requirement.partition("==")
        _fake_wheel(folder / platform, f"{name.replace('-', '_')}-{version}-py3-none-any.whl")


def test_every_platform_bundles_torch_first_and_never_numpy(build_module):
    for platform in build_module.PLATFORMS:
        requirements = build_module.requirements_for(platform)
        assert requirements[0].startswith("torch==2.13.0")
        assert not any(r.split("==")[0].lower() in ("numpy", "idna") for r in requirements)
        assert all("==" in r for r in requirements), "every bundled dependency is pinned"
    assert build_module.requirements_for("linux-x64")[0] == "torch==2.13.0+cpu"


def test_unknown_platform_is_refused_with_the_choices(build_module):
    with pytest.raises(build_module.BuildError, match="linux-x64"):
        build_module.requirements_for("beos-x86")


def test_wheel_file_names_give_the_normalized_name_and_exact_version(build_module):
    assert build_module.wheel_name_and_version("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl") == (
        "torch",
        "2.13.0+cpu",
    )
    assert build_module.wheel_name_and_version("typing_extensions-4.16.0-py3-none-any.whl") == (
        "typing_extensions",
        "4.16.0",
    )
    with pytest.raises(ValueError):
        build_module.wheel_name_and_version("README.md")


def test_a_cached_wheel_satisfies_only_its_exact_version(build_module, tmp_path):
    _fake_wheel(tmp_path, "PyYAML-6.0.4-cp311-cp311-win_amd64.whl")
    _fake_wheel(tmp_path, "torch-2.13.0-cp311-cp311-win_amd64.whl")

    assert build_module.find_cached_wheel("pyyaml==6.0.4", tmp_path).name.startswith("PyYAML")
    assert build_module.find_cached_wheel("pyyaml==6.0.5", tmp_path) is None
    assert build_module.find_cached_wheel("torch==2.13.0+cpu", tmp_path) is None


def test_cached_wheels_are_not_downloaded_again(build_module, tmp_path, monkeypatch):
    _fill_cache(build_module, tmp_path, "windows-x64")
    monkeypatch.setattr(build_module, "pip_download", lambda *a: pytest.fail("pip was called for cached wheels"))

    wheels = build_module.collect_wheels("windows-x64", tmp_path, log=lambda _m: None)

    assert len(wheels) == len(build_module.requirements_for("windows-x64"))
    assert all(w.parent == tmp_path / "windows-x64" for w in wheels)


def test_only_the_missing_wheels_are_downloaded(build_module, tmp_path, monkeypatch):
    _fill_cache(build_module, tmp_path, "linux-x64")
    (tmp_path / "linux-x64" / "sympy-1.14.0-py3-none-any.whl").unlink()
    calls = []

    def fake_download(requirements, platform, folder):
        calls.append((requirements, platform))
        _fake_wheel(folder, "sympy-1.14.0-py3-none-any.whl")
        return build_module.subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(build_module, "pip_download", fake_download)

    build_module.collect_wheels("linux-x64", tmp_path, log=lambda _m: None)

    assert calls == [(["sympy==1.14.0"], "linux-x64")]


def test_wheels_that_cannot_be_fetched_are_named_in_the_error(build_module, tmp_path, monkeypatch):
    _fill_cache(build_module, tmp_path, "macos-x64")
    torch_wheel = next((tmp_path / "macos-x64").glob("torch-*.whl"))
    torch_wheel.unlink()

    def no_torch(requirements, platform, folder):
        stderr = "ERROR: No matching distribution found for torch==2.13.0"
        return build_module.subprocess.CompletedProcess([], 1, "", stderr)

    monkeypatch.setattr(build_module, "pip_download", no_torch)

    with pytest.raises(build_module.WheelsUnavailable, match=r"macos-x64(.|\n)*torch==2.13.0: ERROR: No matching") as e:
        build_module.collect_wheels("macos-x64", tmp_path, log=lambda _m: None)
    assert "no macOS x86-64 wheels after 2.2.2" in str(e.value)


def test_a_platform_without_wheels_is_skipped_and_the_others_are_built(build_module, tmp_path, monkeypatch):
    def fake_build(output_dir, platform, cache_dir, log):
        if platform == "macos-x64":
            raise build_module.WheelsUnavailable("no torch for macos-x64")
        return output_dir / build_module.zip_name("0.1.0", platform)

    monkeypatch.setattr(build_module, "build_extension", fake_build)

    built, skipped = build_module.build_releases(["linux-x64", "macos-x64"], tmp_path, tmp_path)

    assert list(built) == ["linux-x64"] and built["linux-x64"].name == "temos_blender-0.1.0-linux_x64.zip"
    assert skipped == {"macos-x64": "no torch for macos-x64"}


def test_manifest_gets_platforms_and_wheels_as_top_level_keys(build_module):
    text = build_module.MANIFEST_PATH.read_text(encoding="utf-8")
    wheels = ["./wheels/a-1.0-py3-none-any.whl", "./wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"]

    data = tomllib.loads(build_module.manifest_with(text, ["linux-x64"], wheels))

    assert data["platforms"] == ["linux-x64"]
    assert data["wheels"] == wheels
    assert data["permissions"] == tomllib.loads(text)["permissions"]


def test_manifest_permissions_ask_for_files_and_never_network(build_module):
    permissions = tomllib.loads(build_module.MANIFEST_PATH.read_text(encoding="utf-8"))["permissions"]

    assert set(permissions) == {"files"}


def test_release_stages_the_model_the_text_model_and_the_wheels(build_module, tmp_path, monkeypatch):
    model = tmp_path / "vendor" / "temos-cmu-kitml"
    for name in ("model.safetensors", "config.json", "MODEL_CARD.md", "limits.json", "training_log.txt"):
        model.mkdir(parents=True, exist_ok=True)
        (model / name).write_text(name)
    monkeypatch.setattr(build_module, "VENDOR_MODELS_DIR", model.parent)
    wheel = _fake_wheel(tmp_path / "cache", "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")

    stage = build_module.stage_extension(tmp_path / "stage", build_module.release_passes("linux-x64", [wheel]))

    staged_model = sorted(p.name for p in (stage / "vendor_models" / "temos-cmu-kitml").iterdir())
    assert staged_model == ["MODEL_CARD.md", "config.json", "limits.json", "model.safetensors"]
    text_model = sorted(p.name for p in (stage / "text_models" / "all-MiniLM-L6-v2").iterdir())
    assert text_model == sorted(build_module.TEXT_MODEL_FILES)
    manifest = tomllib.loads((stage / "blender_manifest.toml").read_text(encoding="utf-8"))
    assert manifest["wheels"] == [f"./wheels/{wheel.name}"] and manifest["platforms"] == ["linux-x64"]
    assert (stage / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()


def test_release_without_a_trained_model_builds_with_a_warning(build_module, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(build_module, "VENDOR_MODELS_DIR", tmp_path / "empty")

    stage = build_module.stage_extension(tmp_path / "stage", build_module.release_passes("linux-x64", []))

    assert not (stage / "vendor_models").exists()
    assert "No bundled model" in capsys.readouterr().err


def test_text_model_staging_leaves_out_the_sentence_transformers_files(build_module, tmp_path):
    build_module.copy_text_model(tmp_path)

    copied = {p.name for p in (tmp_path / build_module.TEXT_MODEL_FOLDER).iterdir()}
    assert "modules.json" not in copied and "1_Pooling" not in copied
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "README.md"} <= copied


def test_code_only_build_stages_no_wheels_and_no_models(build_module, tmp_path):
    stage = build_module.stage_extension(tmp_path / "stage")

    assert not (stage / "wheels").exists() and not (stage / "text_models").exists()
    assert "wheels" not in tomllib.loads((stage / "blender_manifest.toml").read_text(encoding="utf-8"))


def test_pure_python_wheels_are_shared_between_platforms_and_binary_ones_are_not(build_module, tmp_path, monkeypatch):
    _fill_cache(build_module, tmp_path, "linux-x64")
    binary = tmp_path / "linux-x64" / "pyyaml-6.0.4-py3-none-any.whl"
    binary.rename(tmp_path / "linux-x64" / "pyyaml-6.0.4-cp311-cp311-manylinux_2_17_x86_64.whl")
    calls = []

    def fake_download(requirements, platform, folder):
        calls.append(requirements)
        for requirement in requirements:
            name, _, version = requirement.partition("==")
            _fake_wheel(folder, f"{name}-{version}-cp311-cp311-win_amd64.whl")
        return build_module.subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(build_module, "pip_download", fake_download)

    build_module.collect_wheels("windows-x64", tmp_path, log=lambda _m: None)

    assert calls == [["torch==2.13.0", "pyyaml==6.0.4"]]


def test_building_all_succeeds_with_the_platforms_it_could_build_and_names_the_skipped(
    build_module, tmp_path, monkeypatch, capsys
):
    zip_path = tmp_path / "temos_blender-0.1.0-linux_x64.zip"
    zip_path.write_bytes(b"zip")
    monkeypatch.setattr(
        build_module, "build_releases", lambda *a: ({"linux-x64": zip_path}, {"macos-x64": "no torch here"})
    )

    assert build_module.main(["--all", "--output-dir", str(tmp_path)]) == 0
    assert "skipped macos-x64. no torch here" in capsys.readouterr().err

    monkeypatch.setattr(build_module, "build_releases", lambda *a: ({}, {"macos-x64": "no torch here"}))
    assert build_module.main(["--platform", "macos-x64", "--output-dir", str(tmp_path)]) == 1
