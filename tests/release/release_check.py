"""Installs a release zip into a fresh Blender and generates two takes with it; prints one JSON line of findings.

Run by tests/release/test_release.py with a Python that has bpy and numpy and nothing else (no torch), and with
``BLENDER_USER_RESOURCES`` pointing at an empty folder::

    python release_check.py ZIP [FALLBACK_MODEL_DIR]

Everything the add-on needs beyond bpy and numpy must come out of the zip: the wheels Blender unpacks into the
extensions' ``.local`` site-packages, the bundled model (or ``FALLBACK_MODEL_DIR`` when the zip has none) and the
bundled text model. Exits with ``os._exit`` (bpy 4.5 can hang at interpreter exit).
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

HEAVY_MODULES = ("torch", "transformers", "safetensors", "tokenizers", "huggingface_hub")
MODULE = "bl_ext.user_default.temos_blender"


def importable_before(names) -> dict[str, str | None]:
    """Where each module would be imported from (None: not importable)."""
    found = {}
    for name in names:
        spec = importlib.util.find_spec(name)
        found[name] = spec.origin if spec is not None else None
    return found


def cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children (wall time depends on the machine's load)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(zip_path: str, fallback_model_dir: str | None) -> dict:
    report: dict = {"zip_bytes": os.path.getsize(zip_path)}
    report["importable_before"] = importable_before(HEAVY_MODULES)

    import bpy

    addon_utils = importlib.import_module("addon_utils")  # Blender's own module, importable once bpy is

    extensions = Path(bpy.utils.user_resource("EXTENSIONS"))
    report["extensions_dir"] = str(extensions)

    t, c = time.perf_counter(), cpu_s()
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=False)
    report["install_s"], report["install_cpu_s"] = time.perf_counter() - t, cpu_s() - c
    report["install_result"] = sorted(result)
    extension_dir = extensions / "user_default" / "temos_blender"
    report["extension_dir"] = str(extension_dir)

    t, c = time.perf_counter(), cpu_s()
    addon_utils.enable(MODULE, default_set=True, handle_error=lambda e: (_ for _ in ()).throw(e))
    report["enable_s"], report["enable_cpu_s"] = time.perf_counter() - t, cpu_s() - c
    local = extensions / ".local"
    report["unpacked_bytes"] = sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
    report["enabled"] = MODULE in bpy.context.preferences.addons

    package = sys.modules[MODULE]
    import_module = importlib.import_module

    weights_folder = Path(package.__file__).parent / "vendor_models" / "temos-cmu-kitml"
    prefs = bpy.context.preferences.addons[MODULE].preferences
    if (weights_folder / "config.json").is_file():
        report["model"] = "bundled"
        report["model_dir"] = str(weights_folder)
        expected_model_id = json.loads((weights_folder / "config.json").read_text(encoding="utf-8"))["model_id"]
    else:
        report["model"] = "fallback"
        report["model_dir"] = fallback_model_dir
        prefs.model_dir = fallback_model_dir
        expected_model_id = json.loads((Path(fallback_model_dir) / "config.json").read_text(encoding="utf-8"))[
            "model_id"
        ]

    bake = import_module(f"{MODULE}.blender.bake")
    compat = import_module(f"{MODULE}.blender.compat")

    t, c = time.perf_counter(), cpu_s()
    bpy.ops.temos.add_smpl_armature()
    obj = bpy.context.scene.temos.armature
    settings = bpy.context.scene.temos
    settings.prompt = settings_prompt = "a person walks forward and waves"
    settings.n_takes = 2
    settings.duration_s = 2.0
    settings.random_seed = False
    settings.seed = 11
    result = bpy.ops.temos.generate()
    report["generate_s"], report["generate_cpu_s"] = time.perf_counter() - t, cpu_s() - c
    report["generate_result"] = sorted(result)

    takes = bake.takes_of(obj)
    report["takes"] = []
    for take in takes:
        values = []
        for fcurve in compat.fcurves_of(take.action, compat.strip_slot(take.strip)):
            values += [k.co[1] for k in fcurve.keyframe_points]
        report["takes"].append(
            {
                "track": take.track.name,
                "model_id": take.metadata.model_id,
                "seed": take.metadata.seed,
                "keys": len(values),
                "checksum": float(sum(abs(v) for v in values)),
            }
        )
    report["expected_model_id"] = expected_model_id

    # The same generation in a worker process of this Python on the bundled wheels (the add-on's process runtime).
    jobs = import_module(f"{MODULE}.blender.jobs")
    worker_client = import_module(f"{MODULE}.blender.worker_client")
    paths = worker_client.bundled_runtime_paths()
    report["worker_paths"] = list(paths)
    report["worker_check"] = worker_client.check_python(sys.executable, paths)
    settings = jobs.ModelSettings(model_dir=prefs.model_dir, device="cpu")
    plan = jobs.GenerationPlan(
        prompt=settings_prompt, duration_s=2.0, seeds=(11, 12), diversity=1.0, model=settings, retarget=lambda t: None
    )
    t, c = time.perf_counter(), cpu_s()
    final = worker_client.ProcessJob(plan, sys.executable, paths).run_blocking()
    report["worker_generate_s"], report["worker_generate_cpu_s"] = time.perf_counter() - t, cpu_s() - c
    report["worker_result"] = type(final).__name__ + ("" if isinstance(final, jobs.Done) else f": {final.message}")
    if isinstance(final, jobs.Done):
        in_process = jobs.cached_generator(settings).generate(
            import_module(f"{MODULE}.core.generate").GenerateRequest(plan.prompt, 2.0, 2, 11, 1.0), seeds=[11, 12]
        )
        import numpy as np

        report["worker_max_difference"] = max(
            float(np.abs(a.rotations - b.rotations).max()) for (a, _), b in zip(final.result, in_process)
        )
    worker_client.shutdown()

    text_encoder = import_module(f"{MODULE}.core.text_encoder")
    report["text_model_folder"] = str(text_encoder.default_text_model_folder())
    report["modules"] = {name: getattr(sys.modules.get(name), "__file__", None) for name in HEAVY_MODULES}
    report["site_packages"] = str(extensions / ".local" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                                  / "site-packages")  # fmt: skip
    return report


if __name__ == "__main__":
    try:
        findings = main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
        print("RELEASE-CHECK " + json.dumps(findings), flush=True)
        code = 0
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
