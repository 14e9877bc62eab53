"""The "Python Environment" preference: Generate runs in a worker process of that Python and bakes the same takes
as the in-Blender thread does. The worker here runs this test environment's own Python (it has torch)."""

import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")


pytestmark = pytest.mark.timeout(600, method="thread")  # a worker imports torch and transformers: slow when busy


@pytest.fixture
def addon_modules(tiny_addon):
    prefs = tiny_addon.prefs
    modules = tiny_addon.modules({n: f"blender.{n}" for n in ("bake", "compat", "worker_client")})
    yield type("Modules", (), {**modules, "prefs": prefs})
    prefs.python_env = ""
    modules["worker_client"].shutdown()


def _generate_on_new_rig(seed=7, takes=2):
    assert bpy.ops.temos.add_smpl_armature() == {"FINISHED"}
    props = bpy.context.scene.temos
    props.prompt, props.n_takes, props.duration_s, props.random_seed, props.seed = (
        "a person jumps",
        takes,
        2.0,
        False,
        seed,
    )
    return props.armature, bpy.ops.temos.generate()


def _keys(m, obj):
    out = []
    for take in m.bake.takes_of(obj):
        for fc in sorted(m.compat.fcurves_of(take.action), key=lambda f: (f.data_path, f.array_index)):
            co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
            fc.keyframe_points.foreach_get("co", co)
            out.append(co)
    return out


def test_generate_with_a_python_environment_bakes_the_takes_the_thread_bakes(addon_modules):
    m = addon_modules
    in_blender, result = _generate_on_new_rig()
    assert result == {"FINISHED"}

    m.prefs.python_env = sys.executable
    in_worker, result = _generate_on_new_rig()

    assert result == {"FINISHED"}
    worker = m.worker_client._worker
    assert worker is not None and worker.alive and worker.python == sys.executable
    assert [t.metadata.seed for t in m.bake.takes_of(in_worker)] == [7, 8]
    thread_keys, worker_keys = _keys(m, in_blender), _keys(m, in_worker)
    assert len(thread_keys) == len(worker_keys) > 0
    for a, b in zip(thread_keys, worker_keys):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_a_python_environment_that_does_not_exist_is_reported_and_adds_nothing(addon_modules, tmp_path):
    m = addon_modules
    m.prefs.python_env = str(tmp_path / "no-such-python")

    with pytest.raises(RuntimeError, match="does not exist. Set Python Environment"):  # the operator's error report
        _generate_on_new_rig()

    rig = bpy.context.scene.temos.armature
    assert rig is not None and m.bake.takes_of(rig) == []
