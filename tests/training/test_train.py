"""Training: losses, determinism across an interruption, export, and DDP with two CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from temos_blender.core.features import canonicalize, smpl_to_features
from temos_blender.core.weights import load_model
from temos_blender.rotations import axis_angle_to_matrix
from temos_blender.train import dynamics_explained, kl_normal, main, masked_smooth_l1

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny.json"


def _write_cache(folder: Path, n_clips: int = 12, seed: int = 0) -> Path:
    """A small data cache in the pipeline's format: smooth random motions with two kinds of text."""
    rng = np.random.default_rng(seed)
    feats, records = [], []
    for i in range(n_clips):
        t = int(rng.integers(20, 40))
        phase = np.linspace(0, 2 * np.pi, t)[:, None, None]
        aa = 0.3 * np.sin(phase + rng.normal(size=(1, 22, 3)))
        rots = torch.from_numpy(axis_angle_to_matrix(aa)).float()
        trans = torch.from_numpy(np.stack([0 * phase[:, 0, 0], 0.9 + 0 * phase[:, 0, 0], np.linspace(0, i % 3, t)], -1)).float()
        rots, trans = canonicalize(rots, trans)
        feats.append(smpl_to_features(rots, trans).numpy())
        split = "val" if i % 4 == 0 else "train"
        text = "a person walks forward" if i % 2 else "a person waves the right hand"
        records.append({"id": f"clip{i}", "split": split, "texts": [text, text + " slowly"], "sample_weight": 1.0})
    offsets = np.cumsum([0] + [f.shape[0] for f in feats])
    allf = np.concatenate(feats).astype(np.float32)
    path = folder / "cache.npz"
    np.savez(path, features=allf, offsets=offsets, mean=allf.mean(0), std=np.maximum(allf.std(0), 1e-3))
    path.with_suffix(".json").write_text(json.dumps({"meta": {}, "clips": records}))
    return path


def _state(folder: Path) -> dict:
    return torch.load(folder / "last.pt", weights_only=True)["model"]


def test_kl_of_identical_gaussians_is_zero_and_positive_otherwise():
    mu, logvar = torch.randn(3, 8), torch.randn(3, 8)
    assert kl_normal(mu, logvar, mu, logvar).abs() < 1e-6
    assert kl_normal(mu, logvar, mu + 1, logvar) > 0


def test_kl_is_the_papers_mean_over_batch_and_latent_dimensions():
    """TEMOS' KLLoss is ``kl_divergence(q, p).mean()`` on per-dimension Normals, so a weight of 1e-5 means the same
    for any latent width; a sum over dimensions would weigh it latent_dim times more."""
    mu_p, logvar_p, mu_q, logvar_q = (torch.randn(4, 16, dtype=torch.float64) for _ in range(4))
    p = torch.distributions.Normal(mu_p, torch.exp(0.5 * logvar_p))
    q = torch.distributions.Normal(mu_q, torch.exp(0.5 * logvar_q))
    expected = torch.distributions.kl_divergence(p, q).mean()
    assert torch.allclose(kl_normal(mu_p, logvar_p, mu_q, logvar_q), expected, rtol=1e-12)
    wide = [torch.cat([t, t], dim=1) for t in (mu_p, logvar_p, mu_q, logvar_q)]  # twice the width, same per-dim KLs
    assert torch.allclose(kl_normal(*wide), expected, rtol=1e-12)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.json")), ids=lambda p: p.name)
def test_every_training_config_reads_and_fine_tuning_ones_keep_the_bundled_model(path):
    from temos_blender.train import TrainConfig

    cfg = TrainConfig.from_json(path)
    assert cfg.kl_weight > 0 and cfg.max_steps > cfg.warmup_steps
    if "finetune" in path.name:  # continues the bundled model: --init-from refuses another architecture
        assert cfg.model == json.loads((ROOT / "configs" / "bundled.json").read_text())["model"]


def test_masked_reconstruction_ignores_padding():
    target = torch.zeros(2, 5, 4)
    pred = torch.zeros(2, 5, 4)
    pred[:, 3:] = 100.0  # garbage beyond the valid length
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    assert masked_smooth_l1(pred, target, mask) == 0


def test_dynamics_explained_is_0_for_a_held_mean_pose_1_for_the_motion_and_ignores_padding():
    t = torch.linspace(0, 6.28, 20)
    motion = torch.stack([torch.sin(t) + 3, torch.cos(2 * t) - 1], -1)[None]  # (1, 20, 2), off-centre
    mask = torch.ones(1, 20, dtype=torch.bool)
    mean_pose = motion.mean(1, keepdim=True).expand_as(motion)
    assert abs(dynamics_explained(mean_pose, motion, mask)) < 1e-6
    assert abs(dynamics_explained(motion + 5, motion, mask) - 1) < 1e-6  # an offset is not dynamics
    half = mean_pose + 0.5 * (motion - mean_pose)
    assert abs(dynamics_explained(half, motion, mask) - 0.75) < 1e-5
    padded = torch.cat([motion, torch.full((1, 5, 2), 99.0)], 1)  # garbage in the prediction's padding
    pmask = torch.cat([mask, torch.zeros(1, 5, dtype=torch.bool)], 1)
    assert abs(dynamics_explained(padded, padded * pmask[..., None], pmask) - 1) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("setting", [{"bf16": False}, {"bf16": True}, {"length_groups": 2}],
                         ids=["float32", "bf16", "length-groups"])
def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch, setting):
    monkeypatch.chdir(tmp_path)  # text-feature cache goes under the run's own .cache
    data = _write_cache(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(TINY.read_text()), **setting}))
    common = ["--config", str(config), "--data", str(data), "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--out", str(tmp_path / "split"), "--stop-after", "3"]) == 0
    assert main([*common, "--out", str(tmp_path / "split"), "--resume"]) == 0
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs after resume")


@pytest.mark.slow
@pytest.mark.parametrize("flag, setting", [(["--bf16"], {"bf16": True}), (["--lr", "0.003"], {"lr": 0.003}),
                                           (["--length-groups", "2"], {"length_groups": 2})],
                         ids=["bf16", "lr", "length-groups"])
def test_a_command_line_override_trains_as_the_config_with_that_setting_does(tmp_path, monkeypatch, flag, setting):
    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(TINY.read_text()), **setting}))
    common = ["--data", str(data), "--threads", "1", "--max-steps", "2"]
    assert main([*common, "--config", str(TINY), "--out", str(tmp_path / "plain")]) == 0
    assert main([*common, "--config", str(TINY), "--out", str(tmp_path / "flag"), *flag]) == 0
    assert main([*common, "--config", str(config), "--out", str(tmp_path / "config")]) == 0
    flagged, cfg, plain = (_state(tmp_path / run) for run in ("flag", "config", "plain"))
    for k in cfg:
        torch.testing.assert_close(flagged[k], cfg[k], rtol=0, atol=0, msg=k)
    assert any(not torch.equal(cfg[k], plain[k]) for k in cfg), "the setting changes the trained weights"


@pytest.mark.slow
def test_export_writes_a_loadable_half_precision_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    export = tmp_path / "export"
    assert main(["--config", str(TINY), "--data", str(data), "--out", str(tmp_path / "run"), "--export", str(export)]) == 0
    model = load_model(export)
    assert model.cfg.model_id == "tiny-test"
    stats = np.load(data)
    torch.testing.assert_close(model.mean, torch.from_numpy(stats["mean"]))


@pytest.mark.slow
@pytest.mark.parametrize("groups", [1, 2], ids=["one-pass", "length-groups"])
def test_ddp_with_two_cpu_processes_trains_and_exports(tmp_path, groups):
    """With length groups each rank holds its gradient back until its last group (``no_sync``); the trainer checks
    at the end that both replicas hold the same weights."""
    data = _write_cache(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads(TINY.read_text()), "length_groups": groups}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "temos_blender.train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "ddp"),
        "--export", str(tmp_path / "ddp_export"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    # The first lines that name an error say why a rank died; the launcher's own traceback only says that it did.
    why = [ln for ln in proc.stderr.splitlines() if any(k in ln for k in ("Error", "what()", "terminate", "enforce"))]
    assert proc.returncode == 0, "\n".join(why[:20]) + "\n...\n" + proc.stderr[-1500:]
    assert (tmp_path / "ddp_export" / "model.safetensors").is_file()
    state = json.loads(torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)["state"])
    assert state["step"] == 6


def test_crops_of_clips_that_fit_start_at_the_first_frame_and_long_clips_are_cropped_anywhere():
    from temos_blender.train import ClipBatcher, TrainConfig

    def clip(n: int) -> dict:
        f = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3) + 1  # row i holds i + 1: 0 is padding
        return {"features": f, "texts": ["t"], "weight": 1.0, "crop": lambda s, k, f=f: f[s : s + k]}

    cfg = TrainConfig(model={}, min_frames=4, max_frames=20)
    _, short, mask, _ = ClipBatcher([clip(15)], cfg, torch.Generator().manual_seed(0)).sample(64)
    assert (short[:, 0, 0] == 1).all(), "a clip that fits must be cropped from its first frame"
    assert mask.sum(1).max() == 15 and mask.sum(1).min() < 15, "lengths vary, the whole clip included"
    _, long, mask, _ = ClipBatcher([clip(60)], cfg, torch.Generator().manual_seed(0)).sample(64)
    assert mask.sum(1).max() <= 20 and len(set(long[:, 0, 0].tolist())) > 5, "long clips: random starts"
    cfg_random = TrainConfig(model={}, min_frames=4, max_frames=20, crop_from_start=False)
    _, anywhere, _, _ = ClipBatcher([clip(15)], cfg_random, torch.Generator().manual_seed(0)).sample(64)
    assert (anywhere[:, 0, 0] > 1).any()


def test_action_balance_gives_each_action_its_share_of_the_draws_however_few_clips_it_has():
    from temos_blender.train import ClipBatcher, TrainConfig

    def clip(action: str, weight: float) -> dict:
        f = torch.ones(8, 3)
        return {"features": f, "texts": [action], "weight": weight, "action": action, "crop": lambda s, k, f=f: f[s : s + k]}

    # 90 walks and 10 kicks; the cache's weights (power 0.5: 3× more per kick clip) are what None uses.
    clips = [clip("walk", 1.0) for _ in range(90)] + [clip("kick", 3.0) for _ in range(10)]

    def kick_share(balance) -> float:
        cfg = TrainConfig(model={}, min_frames=4, max_frames=8, action_balance=balance)
        texts, _, _, _ = ClipBatcher(clips, cfg, torch.Generator().manual_seed(0)).sample(4000)
        return texts.count("kick") / len(texts)

    assert abs(kick_share(None) - 30 / 120) < 0.03, "None keeps the cache's weights"
    assert abs(kick_share(0.5) - 30 / 120) < 0.03, "power 0.5 is what the cache holds"
    assert abs(kick_share(1.0) - 0.5) < 0.03, "power 1: every action the same share"
    assert abs(kick_share(0.0) - 0.1) < 0.02, "power 0: uniform over clips"


def test_root_weight_charges_a_missed_jump_and_leaves_the_rotation_terms_alone():
    from temos_blender.train import TrainConfig, feature_weights

    target = torch.zeros(1, 20, 135)
    target[0, 8:12, 0] = 5.0  # a jump: the root height 5 standard deviations up for 4 frames
    flat = target.clone()
    flat[..., 0] = 0.0  # the decoder's crouch back to standing height
    arm = target.clone()
    arm[0, 8:12, 60] = 5.0  # the same error on one rotation feature instead
    mask = torch.ones(1, 20, dtype=torch.bool)
    assert feature_weights(TrainConfig(model={}), 135) is None, "weight 1 = the paper's plain mean"
    w = feature_weights(TrainConfig(model={}, root_weight=10.0), 135)
    assert w[:3].tolist() == [10.0] * 3 and (w[3:] == 1).all()
    plain = masked_smooth_l1(flat, target, mask)
    assert torch.allclose(masked_smooth_l1(flat, target, mask, torch.ones(135)), plain)
    assert torch.allclose(masked_smooth_l1(flat, target, mask, w), 10 * plain), "a missed jump costs 10×"
    assert torch.allclose(masked_smooth_l1(arm, target, mask, w), masked_smooth_l1(arm, target, mask)), \
        "rotation errors cost what they did"


def test_root_weight_content_charges_a_missed_rise_on_the_named_contents_clips_only():
    from temos_blender.train import TrainConfig, feature_weights

    target = torch.zeros(2, 20, 135)
    target[:, 8:12, 0] = 5.0  # both clips rise 5 standard deviations for 4 frames
    flat = target.clone()
    flat[..., 0] = 0.0
    mask = torch.ones(2, 20, dtype=torch.bool)
    cfg = TrainConfig(model={}, root_weight=2.0, root_weight_content={"jump": 20.0}, joint_weights={"head": 2.0})
    w = feature_weights(cfg, 135, contents=["jump", "walk"])
    assert w.shape == (2, 1, 135)
    assert w[0, 0, :3].tolist() == [20.0] * 3 and w[1, 0, :3].tolist() == [2.0] * 3, "the walk keeps root_weight"
    assert torch.equal(w[0, 0, 3:], w[1, 0, 3:]) and int((w[:, 0, 3:] == 2).sum()) == 12, "joint weights for every clip"
    plain = [masked_smooth_l1(flat[i : i + 1], target[i : i + 1], mask[i : i + 1]) for i in range(2)]
    weighted = [masked_smooth_l1(flat[i : i + 1], target[i : i + 1], mask[i : i + 1], w[i : i + 1]) for i in range(2)]
    assert torch.allclose(weighted[0], 20 * plain[0]) and torch.allclose(weighted[1], 2 * plain[1])
    only = feature_weights(TrainConfig(model={}, root_weight_content={"jump": 20.0}), 135, contents=["walk", None])
    assert only is not None and (only == 1).all(), "root_weight 1 elsewhere: the other clips as in the paper"
    both = masked_smooth_l1(flat, target, mask, w)
    assert torch.allclose(both, (weighted[0] + weighted[1]) / 2), "a batch mixes them clip by clip"
    try:
        feature_weights(cfg, 135)
    except ValueError as e:
        assert "content" in str(e)
    else:
        raise AssertionError("root_weight_content without the clips' contents must fail")


def test_joint_weights_content_charges_a_missed_bend_on_the_named_contents_clips_only():
    from temos_blender.skeleton import JOINT_INDEX
    from temos_blender.train import TrainConfig, feature_weights

    spine, head, knee = (3 + 6 * JOINT_INDEX[j] for j in ("spine1", "head", "right_knee"))
    target = torch.zeros(2, 20, 135)
    target[:, 6:14, spine] = 3.0  # both clips bend the torso
    upright = target.clone()
    upright[..., spine] = 0.0  # the decoder keeps it upright
    mask = torch.ones(2, 20, dtype=torch.bool)
    cfg = TrainConfig(model={}, joint_weights={"spine1": 3.0, "head": 2.0},
                      joint_weights_content={"bow": {"spine1": 10.0}, "kick": {"right_knee": 10.0}})  # fmt: skip
    w = feature_weights(cfg, 135, contents=["bow", "walk"])
    assert w.shape == (2, 1, 135)
    assert (w[0, 0, spine : spine + 6] == 10).all() and (w[1, 0, spine : spine + 6] == 3).all(), \
        "the bow's torso weighs 10, the walk's keeps joint_weights"
    assert (w[:, 0, head : head + 6] == 2).all(), "joints the content does not name keep joint_weights"
    assert (w[:, 0, knee : knee + 6] == 1).all(), "another content's joints are not touched"
    plain = [masked_smooth_l1(upright[i : i + 1], target[i : i + 1], mask[i : i + 1]) for i in range(2)]
    weighted = [masked_smooth_l1(upright[i : i + 1], target[i : i + 1], mask[i : i + 1], w[i : i + 1]) for i in range(2)]
    assert torch.allclose(weighted[0], 10 * plain[0]) and torch.allclose(weighted[1], 3 * plain[1])
    with pytest.raises(ValueError, match="Spine"):  # a misspelt joint is named
        feature_weights(TrainConfig(model={}, joint_weights_content={"bow": {"Spine": 2.0}}), 135, contents=["bow"])
    with pytest.raises(ValueError, match="content label"):  # the weights need each clip's content
        feature_weights(cfg, 135)


def test_joint_weights_charge_the_named_joints_rotations_only():
    from temos_blender.skeleton import JOINT_INDEX
    from temos_blender.train import TrainConfig, feature_weights

    w = feature_weights(TrainConfig(model={}, joint_weights={"spine1": 3.0, "head": 2.0}), 135)
    spine, head = 3 + 6 * JOINT_INDEX["spine1"], 3 + 6 * JOINT_INDEX["head"]
    assert (w[spine : spine + 6] == 3).all() and (w[head : head + 6] == 2).all()
    assert int((w == 1).sum()) == 135 - 12, "every other feature, the root's included, keeps weight 1"
    assert feature_weights(TrainConfig(model={}, joint_weights={"head": 1.0}), 135) is None
    try:
        feature_weights(TrainConfig(model={}, joint_weights={"Spine": 2.0}), 135)
    except ValueError as e:
        assert "Spine" in str(e) and "spine1" in str(e), "a misspelt joint is named with the valid ones"
    else:
        raise AssertionError("an unknown joint name must not be ignored")


def _fake_pass(from_text: torch.Tensor, from_motion: torch.Tensor):
    """A training pass that returns these reconstructions and zero latents (the loss terms alone under test)."""
    zeros = torch.zeros(len(from_text), 4)
    return lambda *_: {"mu_t": zeros, "logvar_t": zeros, "mu_m": zeros, "logvar_m": zeros, "z_t": zeros,
                       "z_m": zeros, "from_text": from_text, "from_motion": from_motion}  # fmt: skip


def test_velocity_term_charges_a_still_pose_and_not_the_true_motion():
    from temos_blender.train import TrainConfig, temos_losses

    motion = torch.cumsum(torch.randn(2, 10, 6), dim=1)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    still = motion[:, :1].expand_as(motion).clone()

    cfg = TrainConfig(model={}, velocity_weight=2.0)
    exact = temos_losses(_fake_pass(motion, motion), None, None, motion, mask, cfg)
    assert exact["velocity"] == 0 and exact["total"] == 0
    frozen = temos_losses(_fake_pass(motion, still), None, None, motion, mask, cfg)
    assert frozen["velocity"] > 0 and frozen["total"] == pytest.approx(frozen["rec_motion"] + 2.0 * frozen["velocity"])
    assert "velocity" not in temos_losses(_fake_pass(motion, still), None, None, motion, mask, TrainConfig(model={}))


def _waving_joints(t: int, shift: float, amplitude: float = 1.0) -> torch.Tensor:
    """(1, t, 135) features whose 22 joints' 6-D values oscillate with a period of 8 frames, started ``shift``
    periods late."""
    phase = 2 * np.pi * (torch.arange(t, dtype=torch.float32)[:, None] / 8 + shift)
    rot = amplitude * torch.sin(phase + torch.arange(132.0) / 7)
    return torch.cat([torch.zeros(t, 3), rot], -1)[None]


def test_energy_term_charges_a_held_pose_but_not_the_same_motion_at_another_timing():
    from temos_blender.train import TrainConfig, energy_loss, motion_energy, temos_losses

    t = 40
    mask = torch.ones(1, t, dtype=torch.bool)
    wave = _waving_joints(t, 0.0)
    late = _waving_joints(t, 0.37)  # the same strokes, a third of a period later
    held = wave[:, :1].expand_as(wave).clone()
    energy, inside = motion_energy(wave, mask, 8)
    assert energy.shape == (1, 8, 22) and inside.all()
    assert energy_loss(late, wave, mask, 8) < 0.01 * energy_loss(held, wave, mask, 8)
    assert masked_smooth_l1(late[:, 1:] - late[:, :-1], wave[:, 1:] - wave[:, :-1], mask[:, 1:]) > 0.2, \
        "the frame-by-frame velocity term does charge the shifted timing"
    # a smaller stroke is charged in proportion; padding and clips shorter than a window add nothing
    half = energy_loss(_waving_joints(t, 0.0, 0.5), wave, mask, 8)
    assert 0 < half < energy_loss(held, wave, mask, 8)
    padded = mask.clone()
    padded[:, 20:] = False
    noisy_tail = torch.where(padded[..., None], late, 100 * torch.randn_like(late))
    assert energy_loss(noisy_tail, wave, padded, 8) < 0.01
    assert energy_loss(held[:, :6], wave[:, :6], mask[:, :6], 8) == 0

    cfg = TrainConfig(model={}, energy_weight=2.0, energy_window=8)
    losses = temos_losses(_fake_pass(wave, held), None, None, wave, mask, cfg)
    assert losses["energy"] > 0 and losses["total"] == pytest.approx(losses["rec_motion"] + 2.0 * losses["energy"])
    assert "energy" not in temos_losses(_fake_pass(wave, held), None, None, wave, mask, TrainConfig(model={}))


def test_acceleration_energy_charges_jitter_the_data_lacks_but_not_another_timing():
    from temos_blender.train import TrainConfig, energy_loss, motion_energy, temos_losses

    t = 40
    mask = torch.ones(1, t, dtype=torch.bool)
    wave = _waving_joints(t, 0.0)
    late = _waving_joints(t, 0.37)
    jitter = torch.zeros_like(wave)
    jitter[..., 3:] = 0.2 * torch.where(torch.arange(t)[:, None] % 2 == 0, 1.0, -1.0)  # a two-frame shake
    shaky = wave + jitter
    accel, inside = motion_energy(wave, mask, 8, order=2)
    assert accel.shape == (1, 8, 22) and inside.all()
    # the second difference of a sine of period 8 frames is (2 sin(pi/8))^2 = 0.586 of its first difference's size
    speed, _ = motion_energy(wave, mask, 8)
    assert (accel / speed).mean().item() == pytest.approx(2 * np.sin(np.pi / 8), rel=0.05)
    assert energy_loss(late, wave, mask, 8, order=2) < 0.01 * energy_loss(shaky, wave, mask, 8, order=2)
    # frames past the clip's end are never read: a window's accelerations use the frames its changes span
    padded = mask.clone()
    padded[:, 17:] = False
    noisy_tail = torch.where(padded[..., None], wave, 100 * torch.randn_like(wave))
    assert energy_loss(noisy_tail, wave, padded, 8, order=2) == 0

    cfg = TrainConfig(model={}, accel_energy_weight=3.0, energy_window=8)
    losses = temos_losses(_fake_pass(wave, shaky), None, None, wave, mask, cfg)
    assert losses["accel_energy"] > 0
    assert losses["total"] == pytest.approx(losses["rec_motion"] + 3.0 * losses["accel_energy"])
    assert "accel_energy" not in temos_losses(_fake_pass(wave, shaky), None, None, wave, mask, TrainConfig(model={}))


def test_best_of_many_trains_only_the_draw_nearest_each_clip():
    from temos_blender.train import TrainConfig, TrainingPass, best_text_sample, temos_losses

    motion = torch.cumsum(torch.randn(3, 8, 5), dim=1)
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[2, 5:] = False
    near, far = motion + 0.01, motion + 1.0
    # draw-major: draw 0 is near for clips 0 and 2, draw 1 for clip 1; a velocity-only miss loses too
    wobble = motion + 0.3 * torch.randn_like(motion)
    from_text = torch.cat([torch.stack([near[0], far[1], near[2]]), torch.stack([wobble[0], near[1], far[2]])])
    z_t = torch.arange(6.0)[:, None].expand(6, 4)
    best = best_text_sample(from_text, z_t, motion, mask, velocity_weight=1.0)
    torch.testing.assert_close(best["from_text"], near)
    assert best["z_t"][:, 0].tolist() == [0.0, 4.0, 2.0], "each clip keeps the latent of its own chosen draw"

    # through the real model: K draws decode in one call, the loss is the chosen draws' and still differentiable
    from temos_blender.core.model import Temos, TemosConfig

    torch.manual_seed(0)
    model = Temos(TemosConfig(latent_dim=16, ff_size=32, num_layers=1, num_heads=2, nfeats=5, text_dim=8))
    tf, tm = torch.randn(3, 4, 8), torch.ones(3, 4, dtype=torch.bool)
    out = TrainingPass(model)(tf, tm, motion, mask, text_samples=4)
    assert out["from_text"].shape == (12, 8, 5) and out["z_t"].shape == (12, 16)
    four = temos_losses(TrainingPass(model), tf, tm, motion, mask, TrainConfig(model={}, text_samples=4))
    four["total"].backward()
    assert torch.isfinite(four["total"]) and all(p.grad is not None for p in model.textencoder.parameters())


@pytest.mark.slow
def test_init_from_a_model_folder_starts_from_its_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    common = ["--config", str(TINY), "--data", str(data)]
    assert main([*common, "--out", str(tmp_path / "first"), "--export", str(tmp_path / "exported")]) == 0
    assert main([*common, "--out", str(tmp_path / "second"), "--init-from", str(tmp_path / "exported"), "--max-steps", "0"]) == 0
    start = load_model(tmp_path / "exported").state_dict()
    second = _state(tmp_path / "second")
    for k, v in start.items():
        torch.testing.assert_close(second[k], v.float(), rtol=0, atol=0, msg=k)


@pytest.mark.slow
def test_init_from_a_smaller_decoder_grows_it_into_the_same_function_then_trains_and_exports(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    tiny = json.loads(TINY.read_text())
    tiny["model"]["norm_first"] = True  # a post-norm layer is never the identity (refused below)
    (tmp_path / "pre.json").write_text(json.dumps(tiny))
    first = ["--config", str(tmp_path / "pre.json"), "--data", str(data), "--out", str(tmp_path / "first")]
    assert main([*first, "--export", str(tmp_path / "small")]) == 0
    layers = tiny["model"]["num_layers"]
    tiny["model"]["decoder_layers"] = layers + 2
    grown_cfg = tmp_path / "grown.json"
    grown_cfg.write_text(json.dumps(tiny))
    common = ["--config", str(grown_cfg), "--data", str(data), "--init-from", str(tmp_path / "small")]
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "grown"), "--max-steps", "0", "--export", str(tmp_path / "grown0")]) == 0
    assert f"Decoder grown from {layers} to {layers + 2} layers" in capsys.readouterr().err

    small, grown = load_model(tmp_path / "small"), load_model(tmp_path / "grown0")
    assert grown.cfg.decoder_layers == layers + 2 and len(grown.motiondecoder.seqTransDecoder.layers) == layers + 2
    assert json.loads((tmp_path / "grown0" / "config.json").read_text())["decoder_layers"] == layers + 2
    assert "decoder_layers" not in json.loads((tmp_path / "small" / "config.json").read_text())
    z, mask = torch.randn(3, small.cfg.latent_dim), torch.ones(3, 20, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(grown.decode(z, mask), small.decode(z, mask), rtol=0, atol=1e-6)

    # decoder_layers equal to num_layers is the same network: a plain start
    tiny["model"]["decoder_layers"] = layers
    (tmp_path / "same.json").write_text(json.dumps(tiny))
    assert main(["--config", str(tmp_path / "same.json"), "--data", str(data), "--init-from", str(tmp_path / "small"),
                 "--out", str(tmp_path / "same"), "--max-steps", "0"]) == 0  # fmt: skip
    for k, v in small.state_dict().items():
        torch.testing.assert_close(_state(tmp_path / "same")[k], v.float(), rtol=0, atol=0, msg=k)
    tiny["model"]["decoder_layers"] = layers + 2

    # the new layers learn: a few steps move them and the decoded motion away from the start
    assert main([*common, "--out", str(tmp_path / "trained"), "--max-steps", "3", "--export", str(tmp_path / "grown3")]) == 0
    trained = load_model(tmp_path / "grown3")
    with torch.no_grad():
        assert trained.motiondecoder.seqTransDecoder.layers[-1].linear2.weight.abs().max() > 0
        assert not torch.allclose(trained.decode(z, mask), small.decode(z, mask), atol=1e-4)

    tiny["model"]["norm_first"] = False
    (tmp_path / "post.json").write_text(json.dumps(tiny))
    assert main(["--config", str(tmp_path / "post.json"), "--data", str(data), "--out", str(tmp_path / "p"), "--export", str(tmp_path / "post")]) == 0
    tiny["model"]["decoder_layers"] += 1
    (tmp_path / "post-grown.json").write_text(json.dumps(tiny))
    with pytest.raises(SystemExit, match="can grow a pre-norm decoder only"):
        main(["--config", str(tmp_path / "post-grown.json"), "--data", str(data), "--out", str(tmp_path / "pg"),
              "--init-from", str(tmp_path / "post")])  # fmt: skip


@pytest.mark.slow
def test_trainable_updates_the_named_parameters_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    tiny = json.loads(TINY.read_text())
    tiny["model"]["norm_first"] = True
    (tmp_path / "pre.json").write_text(json.dumps(tiny))
    assert main(["--config", str(tmp_path / "pre.json"), "--data", str(data), "--out", str(tmp_path / "first"),
                 "--export", str(tmp_path / "small")]) == 0  # fmt: skip
    new_layer = f"motiondecoder.seqTransDecoder.layers.{tiny['model']['num_layers']}."
    tiny["model"]["decoder_layers"] = tiny["model"]["num_layers"] + 1
    tiny["trainable"] = [new_layer]
    (tmp_path / "adapter.json").write_text(json.dumps(tiny))
    common = ["--config", str(tmp_path / "adapter.json"), "--data", str(data), "--init-from", str(tmp_path / "small")]
    assert main([*common, "--out", str(tmp_path / "adapter"), "--max-steps", "3"]) == 0

    start = {k: v.float() for k, v in load_model(tmp_path / "small").state_dict().items()}
    after = _state(tmp_path / "adapter")
    for k, v in after.items():
        if k.startswith(new_layer):
            continue
        torch.testing.assert_close(v, start[k], rtol=0, atol=0, msg=f"{k} is frozen")
    assert after[new_layer + "linear2.weight"].abs().max() > 0, "the new layer trains"

    tiny["trainable"] = ["decoder.nothing."]
    (tmp_path / "none.json").write_text(json.dumps(tiny))
    with pytest.raises(SystemExit, match="no parameter name starts with any of trainable"):
        main(["--config", str(tmp_path / "none.json"), "--data", str(data), "--out", str(tmp_path / "n")])


@pytest.mark.slow
def test_init_from_refuses_a_model_that_differs_in_more_than_the_decoder_depth(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    assert main(["--config", str(TINY), "--data", str(data), "--out", str(tmp_path / "first"), "--export", str(tmp_path / "small")]) == 0
    tiny = json.loads(TINY.read_text())
    tiny["model"]["ff_size"] = 2 * tiny["model"].get("ff_size", 64)
    other = tmp_path / "wider.json"
    other.write_text(json.dumps(tiny))
    with pytest.raises(SystemExit, match="differs .* in \\['ff_size'\\]"):
        main(["--config", str(other), "--data", str(data), "--out", str(tmp_path / "w"), "--init-from", str(tmp_path / "small")])


@pytest.mark.slow
def test_resuming_says_so_and_that_init_from_is_not_used(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    common = ["--config", str(TINY), "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "2"]
    assert main(common) == 0
    capsys.readouterr()
    assert main([*common, "--resume", "--init-from", str(tmp_path / "elsewhere")]) == 0

    err = capsys.readouterr().err
    assert f"Resuming {tmp_path / 'run'} at step 2 from its last.pt; --init-from {tmp_path / 'elsewhere'} is not used" in err


@pytest.mark.slow
def test_a_stop_between_validations_leaves_a_snapshot_and_a_log_row_of_the_last_step(tmp_path, monkeypatch):
    from temos_blender.evaluate.select import snapshots, validation_log

    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    run = tmp_path / "run"
    common = ["--config", str(TINY), "--data", str(data), "--out", str(run), "--threads", "1"]
    assert main([*common, "--stop-after", "4"]) == 0  # validations every 3 steps: 3, then the stop at 4
    assert [s for s, _ in snapshots(run)] == [3, 4]
    assert sorted(validation_log(run)) == [3, 4]
    torch.testing.assert_close(
        load_model(run / "snapshots" / "step000004").state_dict()["textencoder.mu_token"],
        _state(run)["textencoder.mu_token"],
        rtol=0,
        atol=0,
    )
    assert main([*common, "--resume"]) == 0  # runs to max_steps = 6: no second row for step 4
    assert [s for s, _ in snapshots(run)] == [3, 4, 6]
    assert sorted(validation_log(run)) == [3, 4, 6]


@pytest.mark.slow
def test_stop_at_cuts_the_run_at_the_same_step_across_a_resume(tmp_path, monkeypatch):
    from temos_blender.evaluate.select import snapshots

    monkeypatch.chdir(tmp_path)
    data = _write_cache(tmp_path)
    common = ["--config", str(TINY), "--data", str(data), "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "straight"), "--stop-at", "5"]) == 0
    split = ["--out", str(tmp_path / "split"), "--stop-at", "5"]
    assert main([*common, *split, "--stop-after", "2"]) == 0  # interrupted at step 2
    assert main([*common, *split, "--resume"]) == 0  # continues to 5, not 2 + 5
    assert main([*common, *split, "--resume"]) == 0  # already there: trains nothing
    assert [s for s, _ in snapshots(tmp_path / "straight")] == [3, 5]  # validations every 3 steps, then the stop
    assert [s for s, _ in snapshots(tmp_path / "split")] == [2, 3, 5]
    for run in ("straight", "split"):
        assert json.loads(torch.load(tmp_path / run / "last.pt", weights_only=True)["state"])["step"] == 5
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs")


def test_bf16_training_pass_keeps_losses_and_gradients_in_float32():
    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.train import TrainConfig, TrainingPass, temos_losses

    torch.manual_seed(0)
    model = Temos(TemosConfig(latent_dim=32, ff_size=64, num_layers=2, num_heads=2, nfeats=135, text_dim=8))
    tf, tm = torch.randn(4, 5, 8), torch.ones(4, 5, dtype=torch.bool)
    lengths = torch.tensor([20, 14, 9, 20])
    mask = torch.arange(20)[None] < lengths[:, None]
    motion = torch.randn(4, 20, 135).cumsum(1) * 0.1 * mask[..., None]
    cfg = TrainConfig(model={}, velocity_weight=3.0, energy_weight=1.0, energy_window=4)

    def losses_and_grads(bf16: bool):
        model.zero_grad()
        torch.manual_seed(1)  # the same latent noise in both passes
        out = TrainingPass(model, bf16=bf16)(tf, tm, motion, mask)
        losses = temos_losses(TrainingPass(model, bf16=bf16), tf, tm, motion, mask, cfg)
        losses["total"].backward()
        return out, losses, [p.grad.clone() for p in model.parameters() if p.grad is not None]

    out32, l32, g32 = losses_and_grads(False)
    out16, l16, g16 = losses_and_grads(True)
    assert all(out16[k].dtype == torch.float32 for k in ("mu_t", "mu_m", "z_t", "from_text", "from_motion"))
    assert all(v.dtype == torch.float32 for v in l16.values())
    for k in ("rec_text", "rec_motion"):
        assert abs(l16[k].item() - l32[k].item()) <= 0.03 * l32[k].item(), k
    assert len(g16) == len(g32) and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in g16)
    cos = torch.nn.functional.cosine_similarity(torch.cat([g.flatten() for g in g16]), torch.cat([g.flatten() for g in g32]), dim=0)
    assert cos > 0.95, f"bf16 gradient direction {cos:.3f}"
    # outside training (no autocast) the model is exactly what it was: float32 in, float32 out
    assert model.decode(torch.randn(2, 32), mask[:2]).dtype == torch.float32


@pytest.mark.parametrize("root_content", [None, {"jump": 30.0}])
def test_length_groups_give_the_whole_batchs_losses_and_gradient(root_content):
    """Each group is padded only to its own longest crop; weighted by their shares, the groups' terms and summed
    gradients are the whole padded batch's (the random draws held equal: no dropout, latent noise off)."""
    from unittest import mock

    from temos_blender.core.model import Temos, TemosConfig
    from temos_blender.train import TrainConfig, TrainingPass, grouped_step, length_groups

    torch.manual_seed(0)
    model = Temos(TemosConfig(latent_dim=16, ff_size=32, num_layers=2, num_heads=2, nfeats=135, text_dim=8, dropout=0.0))
    lengths = torch.tensor([30, 7, 18, 30, 12, 25, 9])
    mask = torch.arange(30)[None] < lengths[:, None]
    motion = torch.randn(7, 30, 135).cumsum(1) * 0.1 * mask[..., None]
    tf, tm = torch.randn(7, 5, 8), torch.ones(7, 5, dtype=torch.bool)
    tm[1, 3:] = False
    cfg = TrainConfig(model={}, velocity_weight=3.0, energy_weight=1.0, energy_window=8, root_weight=10.0,
                      kl_weight=1e-2, latent_weight=0.03, root_weight_content=root_content,
                      accel_energy_weight=2.0)  # fmt: skip
    contents = ["jump", "walk", None, "walk", "jump", "run", "jump"]  # the root weighed per clip with root_content

    assert [p.tolist() for p in length_groups(lengths, 3)] == [[1, 6, 4], [2, 5], [0, 3]]
    assert len(length_groups(lengths[:2], 3)) == 2

    def run(groups: int):
        model.zero_grad()
        with mock.patch("torch.randn", lambda *a, **k: torch.zeros(*a[0] if isinstance(a[0], tuple) else a, **k)):
            losses = grouped_step(TrainingPass(model), tf, tm, motion, mask, TrainConfig(**{**cfg.__dict__, "length_groups": groups}), 0.0,
                                  contents=contents)  # fmt: skip
        return losses, [p.grad.clone() for p in model.parameters()]

    whole, g1 = run(1)
    for groups in (2, 3, 7):
        parts, g = run(groups)
        assert parts.keys() == whole.keys()
        for k in whole:
            torch.testing.assert_close(parts[k], whole[k], rtol=1e-5, atol=1e-7, msg=f"{k} with {groups} groups")
        for a, b in zip(g, g1):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
