"""``temos-blender`` end to end: each run is a real subprocess on a tiny random-weight model, and every file it
writes is read back with Blender's own importers. The motions mean nothing; the plumbing is what is checked.

Argument checks run in-process (they never start Blender); everything else runs the command as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from temos_blender import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a person walks forward and waves"
CLI_TIMEOUT_S = 540


def run_cli(*args: str, driver: str | None = None, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """``python -m temos_blender ARGS`` (or ``python -c DRIVER ARGS``) with its own Blender user folder."""
    env = dict(os.environ)
    if driver is None:
        env.pop("BLENDER_USER_RESOURCES", None)  # the command isolates Blender itself
    # else: a driver imports bpy before the command can, so it shares this session's temporary Blender folder
    cmd = [sys.executable, "-m", "temos_blender", *args] if driver is None else [sys.executable, "-c", driver, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO_ROOT)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("temos-blender:")]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.weights import save_model

    torch.manual_seed(0)
    config = TemosConfig(latent_dim=32, ff_size=64, num_layers=1, num_heads=2, model_id="tiny-test")
    folder = save_model(Temos(config), tmp_path_factory.mktemp("tiny-model"))
    limits = {"limits": [{"action": "sitting down", "words": ["sit", "sits"], "measured": "no clip sits down"}]}
    (folder / "limits.json").write_text(json.dumps(limits), encoding="utf-8")
    return folder


# Arguments (no Blender) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["generate", "", "--out", "{out}"], "The prompt is empty"),
        (["generate", PROMPT, "--out", "{out}", "--takes", "0"], "--takes: must be at least 1"),
        (["generate", PROMPT, "--out", "{out}", "--takes", "17"], "--takes must be between 1 and 16"),
        (["generate", PROMPT, "--out", "{out}", "--duration", "-1"], "--duration: must be more than 0"),
        (["generate", PROMPT, "--out", "{out}", "--diversity", "4"], "--diversity must be between 0 and 3"),
        (["generate", PROMPT, "--out", "{out}", "--export", "bvh,obj"], "got 'obj'"),
        (["generate", PROMPT, "--out", "{out}", "--preview", "avi"], "invalid choice: 'avi'"),
        (["generate", PROMPT, "--out", "{out}", "--rig", "missing.fbx"], "Rig file 'missing.fbx' does not exist"),
        (["generate", PROMPT, "--out", "{out}", "--rig", "character.obj"], "--rig must be 'smpl' or a .blend, .fbx"),
        (["generate", PROMPT, "--out", "{out}", "--armature", "Armature"], "--armature picks an armature"),
        (["generate", PROMPT, "--out", "{out}", "--model", "{out}"], "has no config.json"),
        (["generate", PROMPT, "--out", "{out}", "--prompts", "missing.txt"], "Give either a PROMPT or --prompts"),
        (["generate", "--out", "{out}", "--prompts", "missing.txt"], "Prompts file 'missing.txt' does not exist"),
        (["generate", PROMPT], "the following arguments are required: --out"),
        (["rigs", "character.obj"], "PATH must be a .blend, .fbx or .bvh file"),
        (["dance"], "invalid choice: 'dance'"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_reason(args, reason, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.run([a.format(out=out) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_USAGE
    assert len(err) == 1 and err[0].startswith("temos-blender: "), err
    assert reason in err[0]
    assert not out.exists()


def test_bad_arguments_give_exit_status_2_and_json_from_the_command(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("generate", PROMPT, "--takes", "x", "--json", "--out", str(out), timeout=60)
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {
        "ok": False,
        "exit_code": 2,
        "error": "argument --takes: expected a whole number; got 'x'",
    }
    assert error_lines(proc) == ["temos-blender: argument --takes: expected a whole number; got 'x'"]
    assert not out.exists()


def test_an_outdir_with_files_is_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.run(["generate", PROMPT, "--out", str(out)]) == cli.EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_prompts_file_skips_blank_and_comment_lines(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# walking\na person walks\n\n   a person   jumps  \n", encoding="utf-8")
    args = cli.build_parser().parse_args(["generate", "--prompts", str(prompts), "--out", str(tmp_path / "o")])
    options = cli.check_generate_args(args)
    assert options.prompts == ("a person walks", "a person jumps")
    assert options.batch


def test_the_summary_names_the_files_and_the_prompt_warnings():
    manifest = {"folder": ".", "blend": "takes.blend", "preview": None, "prompt": "a person sits down",
                "model_id": "m", "takes": [{"files": {"bvh": "take_01.bvh"}}], "warnings": ["No sitting here."]}  # fmt: skip
    text = cli._summary({"out": "out", "timings_s": {"generate": 1.0}, "results": [manifest]})

    assert text.splitlines()[:3] == [
        '1 take of "a person sits down" (m) in out:',
        "  takes.blend, take_01.bvh",
        "  warning: No sitting here.",
    ]
    two = dict(manifest, takes=manifest["takes"] * 2, warnings=[])
    assert "2 takes of" in cli._summary({"out": "out", "timings_s": {}, "results": [two]})
    assert "warning" not in cli._summary({"out": "out", "timings_s": {}, "results": [two]})


def test_rigs_lists_the_bone_map_presets(capsys):
    assert cli.run(["rigs", "--json"]) == cli.EXIT_OK
    result = json.loads(capsys.readouterr().out)
    names = [p["name"] for p in result["presets"]]
    assert {"mixamo", "rigify", "smpl"} <= set(names)
    assert all(p["label"] for p in result["presets"])


# One full run ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(tiny_model, tmp_path_factory):
    """2 takes × 2 s on the SMPL rig, every export, an MP4 preview; returns (outdir, printed result, manifest)."""
    out = tmp_path_factory.mktemp("cli") / "walk"
    proc = run_cli(
        "generate", PROMPT, "--takes", "2", "--duration", "2", "--seed", "7", "--model", str(tiny_model),
        "--device", "cpu", "--threads", "2", "--export", "bvh,fbx,glb", "--preview", "mp4", "--json", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    manifest = json.loads((out / "takes.json").read_text(encoding="utf-8"))
    return out, result, manifest


@pytest.mark.slow
def test_generate_writes_every_file_the_manifest_lists(full_run):
    out, result, manifest = full_run
    assert result["ok"] and Path(result["out"]) == out
    assert result["results"][0]["takes"] == manifest["takes"]
    assert manifest["prompt"] == PROMPT
    assert manifest["model_id"] == "tiny-test"
    assert manifest["seeds"] == [7, 8]
    assert manifest["addon_version"] == cli.__version__
    assert manifest["warnings"] == []
    listed = {manifest["blend"], manifest["preview"], "takes.json"}
    for take in manifest["takes"]:
        assert set(take["files"]) == {"bvh", "fbx", "glb"}
        assert take["frames"] == take["frame_end"] - take["frame_start"] + 1
        # 2 s made at the model's 12.5 fps, keyed at the scene's 30 fps: within one model frame of 2 s
        assert abs(take["frames"] / manifest["fps"] - 2.0) <= 1 / 12.5
        listed |= set(take["files"].values())
    on_disk = {p.name for p in out.iterdir()}
    assert on_disk == listed  # nothing missing, nothing extra (no temporary files left)
    assert all((out / name).stat().st_size > 0 for name in on_disk)
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]
    assert {"load", "generate", "export", "preview"} <= set(result["timings_s"])


@pytest.mark.slow
def test_preview_is_an_mp4_video(full_run):
    out, _, manifest = full_run
    data = (out / manifest["preview"]).read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1000
    assert manifest["preview_engine"] in ("workbench", "cycles")


@pytest.mark.slow
def test_blend_reopens_with_one_action_and_one_nla_strip_per_take(full_run):
    import bpy

    from temos_blender.blender import bake

    out, _, manifest = full_run
    bpy.ops.wm.open_mainfile(filepath=str(out / manifest["blend"]), load_ui=False)
    obj = bpy.data.objects[manifest["rig"]["armature"]]
    takes = bake.takes_of(obj)
    assert [t.action.name for t in takes] == [t["name"] for t in manifest["takes"]]
    assert [t.metadata.seed for t in takes] == manifest["seeds"]
    assert len(bpy.data.actions) == 2
    assert [len(track.strips) for track in obj.animation_data.nla_tracks] == [1, 1]


def _import_into_empty_file(path: Path):
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = 30
    if path.suffix == ".bvh":
        bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False, update_scene_duration=False)
    elif path.suffix == ".fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
    else:
        bpy.ops.import_scene.gltf(filepath=str(path))
    armatures = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(armatures) == 1, [o.name for o in bpy.data.objects]
    return armatures[0]


@pytest.mark.slow
def test_bvh_reimports_with_the_take_frame_count(full_run):
    out, _, manifest = full_run
    for take in manifest["takes"]:
        text = (out / take["files"]["bvh"]).read_text()
        assert f"Frames: {take['frames']}\n" in text
        obj = _import_into_empty_file(out / take["files"]["bvh"])
        start, end = obj.animation_data.action.frame_range
        assert round(end - start) + 1 == take["frames"]
        assert len(obj.data.bones) == 22


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["fbx", "glb"])
def test_fbx_and_glb_reimport_as_an_animated_armature(full_run, fmt):
    import bpy

    out, _, manifest = full_run
    take = manifest["takes"][1]
    obj = _import_into_empty_file(out / take["files"][fmt])
    assert len(obj.data.bones) >= 22
    action = obj.animation_data.action if obj.animation_data else None
    assert action is not None, f"{fmt}: the imported armature has no animation"
    start, end = action.frame_range
    assert abs((end - start + 1) - take["frames"]) <= 1
    assert len(bpy.data.actions) == 1  # only this take, not every take of the file


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bvh", "fbx"])
def test_rigs_detects_the_smpl_bone_map_of_an_exported_take(full_run, fmt):
    out, _, manifest = full_run
    proc = run_cli("rigs", str(out / manifest["takes"][0]["files"][fmt]), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rig = json.loads(proc.stdout)["rigs"][0]
    assert rig["source"] == "preset:smpl"
    assert len(rig["bone_map"]["joints"]) == 22
    assert rig["problems"] == []


# Batches, rigs from files, failures ------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_on_a_blend_rig_writes_one_folder_per_prompt(full_run, tiny_model, tmp_path):
    src, _, manifest = full_run
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person jumps\na person sits down\n", encoding="utf-8")
    out = tmp_path / "batch"
    proc = run_cli(
        "generate", "--prompts", str(prompts), "--rig", str(src / "takes.blend"), "--armature", "SMPL",
        "--takes", "1", "--duration", "1.5", "--model", str(tiny_model), "--device", "cpu", "--export", "bvh",
        "--preview", "none", "--json", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["model_loads"] == 1  # the model is loaded once for the whole batch
    batch = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert [p["prompt"] for p in batch["prompts"]] == ["a person jumps", "a person sits down"]
    import bpy

    for entry in batch["prompts"]:
        folder = out / entry["folder"]
        sub = json.loads((folder / "takes.json").read_text(encoding="utf-8"))
        assert sub["prompt"] == entry["prompt"]
        assert sub["rig"] == {"source": "takes.blend", "armature": "SMPL"}
        assert sub["preview"] is None
        sits = entry["prompt"] == "a person sits down"
        assert sub["warnings"] == (["This model was measured not to make sitting down (no clip sits down); the takes "
                                    "may leave it out."] if sits else [])  # fmt: skip
        assert {p.name for p in folder.iterdir()} == {"takes.blend", "takes.json", "take_01.bvh"}
        bpy.ops.wm.open_mainfile(filepath=str(folder / "takes.blend"), load_ui=False)
        # the rig file's own two takes were dropped: only this prompt's take is in the file
        assert [a.name for a in bpy.data.actions] == [sub["takes"][0]["name"]]
        assert any(o.type == "MESH" and o.parent == bpy.data.objects["SMPL"] for o in bpy.data.objects)


@pytest.mark.slow
def test_input_errors_found_in_blender_exit_2_and_write_nothing(tiny_model, tmp_path):
    out = tmp_path / "out"
    too_short = run_cli("generate", PROMPT, "--duration", "0.5", "--model", str(tiny_model), "--out", str(out))
    assert too_short.returncode == 2, too_short.stderr[-2000:]
    assert error_lines(too_short) == ["temos-blender: Duration must be between 1 and 10 s; got 0.5 s."]
    bad_rig = tmp_path / "broken.bvh"
    bad_rig.write_text("HIERARCHY\nROOT hips\n{\n  OFFSET 0 0\n", encoding="utf-8")
    unreadable = run_cli("generate", PROMPT, "--rig", str(bad_rig), "--model", str(tiny_model), "--out", str(out))
    assert unreadable.returncode == 2, unreadable.stderr[-2000:]
    assert len(error_lines(unreadable)) == 1 and "Cannot read rig file 'broken.bvh'" in error_lines(unreadable)[0]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad_rig]


FAILING_EXPORT = """
import sys
from temos_blender.blender import export
original = export.EXPORTERS["bvh"]
def failing(obj, action, path):
    original(obj, action, path)
    raise OSError("No space left on device (simulated)")
export.EXPORTERS["bvh"] = failing
from temos_blender.cli import main
sys.argv[0] = "temos-blender"
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_failure_half_way_leaves_no_partial_outdir(tiny_model, tmp_path):
    out = tmp_path / "deeper" / "out"
    proc = run_cli(
        "generate", PROMPT, "--takes", "1", "--duration", "1", "--model", str(tiny_model), "--device", "cpu",
        "--export", "bvh", "--preview", "none", "--out", str(out), driver=FAILING_EXPORT,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = error_lines(proc)
    assert len(lines) == 1 and "internal error: OSError: No space left on device (simulated)" in lines[0]
    assert list(tmp_path.iterdir()) == []  # no OUTDIR, no temporary folder, not even the parent it created
