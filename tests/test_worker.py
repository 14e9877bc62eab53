"""The worker process (``temos_blender/worker.py``) and its client (``blender/worker_client.py``): generation in
another Python, over JSON lines, giving the same takes as generation in-process.

The client lives in the bpy room (its package imports bpy), so these tests need bpy importable; the worker
itself never imports bpy. Each worker here runs this test environment's Python.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial

import numpy as np
import pytest

pytest.importorskip("bpy")

from temos_blender.blender import jobs, worker_client  # noqa: E402

pytestmark = pytest.mark.slow  # each worker imports torch and transformers: seconds, not milliseconds

TINY = dict(model_id="tiny-worker-test", latent_dim=32, ff_size=64, num_layers=1, num_heads=2)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    import torch

    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.core.weights import save_model

    torch.manual_seed(0)
    return save_model(Temos(TemosConfig(**TINY)), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True, scope="module")
def stop_workers():
    yield
    worker_client.shutdown()


def _plan(model_dir, prompt="a person waves with the right hand", seeds=(5, 6), duration_s=2.0):
    return jobs.GenerationPlan(
        prompt=prompt,
        duration_s=duration_s,
        seeds=tuple(seeds),
        diversity=1.0,
        model=jobs.ModelSettings(model_dir=str(model_dir), device="cpu", threads=1),
        retarget=lambda take: ("curves of", take.seed),
    )


def _run_collecting(plan):
    progress = []
    work = partial(worker_client.generate_and_retarget, plan, python=sys.executable)
    result = work(lambda step, total, label: progress.append((step, total, label)), lambda: False)
    return result, progress


def test_worker_gives_the_same_takes_as_generating_in_process(tiny_model_dir):
    from temos_blender.core.generate import GenerateRequest, TemosGenerator

    plan = _plan(tiny_model_dir)
    final = worker_client.ProcessJob(plan, python=sys.executable).run_blocking()

    assert isinstance(final, jobs.Done), final
    expected = TemosGenerator.load(tiny_model_dir, device="cpu").generate(
        GenerateRequest(plan.prompt, plan.duration_s, 2, 5, 1.0), seeds=[5, 6]
    )
    assert [curves for _take, curves in final.result] == [("curves of", 5), ("curves of", 6)]
    for (take, _curves), want in zip(final.result, expected):
        assert (take.prompt, take.seed, take.fps, take.model_id) == (
            want.prompt,
            want.seed,
            want.fps,
            "tiny-worker-test",
        )
        # The worker runs torch on 1 thread, this process on its default: sums may differ in the last bits.
        np.testing.assert_allclose(take.rotations, want.rotations, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(take.root_translation, want.root_translation, rtol=1e-5, atol=1e-5)


def test_second_generation_reuses_the_worker_and_its_loaded_model(tiny_model_dir):
    plan = _plan(tiny_model_dir, seeds=(1,))
    _first, first_progress = _run_collecting(plan)
    pid = worker_client.get_worker(sys.executable).pid

    assert worker_client.stage_count(plan, sys.executable) == 4 + len(jobs.STAGES_AFTER_CORE)
    _second, second_progress = _run_collecting(plan)

    assert worker_client.get_worker(sys.executable).pid == pid
    assert "load model" not in [label for _s, _t, label in second_progress]
    assert [label for _s, _t, label in second_progress] == ["encode text", "sample", "decode", "convert", "retarget"]
    assert all(total == 6 for _s, total, _l in second_progress)
    assert len(first_progress) in (5, 6)  # "load model" first unless an earlier test loaded this model


def test_a_bad_request_fails_with_the_message_and_hint_and_the_worker_keeps_serving(tiny_model_dir):
    final = worker_client.ProcessJob(_plan(tiny_model_dir, prompt="   "), python=sys.executable).run_blocking()

    assert isinstance(final, jobs.Failed) and not final.cancelled
    assert final.message == "The prompt is empty."
    assert "Type what the character should do" in final.hint
    assert isinstance(worker_client.ProcessJob(_plan(tiny_model_dir), python=sys.executable).run_blocking(), jobs.Done)


def test_a_missing_model_folder_is_reported_by_the_worker(tmp_path):
    final = worker_client.ProcessJob(_plan(tmp_path / "nowhere"), python=sys.executable).run_blocking()

    assert isinstance(final, jobs.Failed)
    assert "does not exist" in final.message


def test_cancelling_ends_the_job_as_cancelled_and_the_worker_serves_the_next_one(tiny_model_dir):
    job = worker_client.ProcessJob(_plan(tiny_model_dir, seeds=(3, 4, 5, 6)), python=sys.executable)
    job.cancel()
    final = job.run_blocking()

    assert isinstance(final, jobs.Failed) and final.cancelled
    assert isinstance(worker_client.ProcessJob(_plan(tiny_model_dir), python=sys.executable).run_blocking(), jobs.Done)


def test_a_dead_worker_is_replaced_by_a_new_one(tiny_model_dir):
    worker = worker_client.get_worker(sys.executable)
    os.kill(worker.pid, signal.SIGKILL)
    worker._process.wait()

    final = worker_client.ProcessJob(_plan(tiny_model_dir), python=sys.executable).run_blocking()

    assert isinstance(final, jobs.Done)
    assert worker_client.get_worker(sys.executable).pid != worker.pid


def test_check_reports_torch_and_its_devices():
    found = worker_client.check_python(sys.executable)

    import torch

    assert found["torch"] == torch.__version__
    assert found["cuda"] == torch.cuda.is_available()


def test_check_of_a_python_without_torch_says_what_to_install(tmp_path):
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)

    with pytest.raises(worker_client.TemosError, match="cannot import 'torch'") as error:
        worker_client.check_python(str(tmp_path / "venv" / "bin" / "python"))
    assert "pip install torch" in error.value.hint


def test_a_python_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(worker_client.WorkerError, match="does not exist") as error:
        worker_client.WorkerProcess(str(tmp_path / "no-python"))
    assert "preferences" in error.value.hint


def test_worker_stdout_carries_only_protocol_lines_even_when_libraries_print():
    script = (
        "import os, sys; from temos_blender import worker; channel = worker.claim_stdout(); "
        "print('a library prints'); os.write(1, b'C code writes\\n'); channel.send({'type': 'x'})"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"type": "x"}]
    assert "a library prints" in result.stderr and "C code writes" in result.stderr
