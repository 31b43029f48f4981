"""The training loop: learning, checkpoints, exact resume, non-finite steps, DDP."""
from __future__ import annotations

import contextlib
import io
import os
import socket
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder.cli.main import main
from vocoder.data.dataset import CropDataset
from vocoder.models import build_model
from vocoder.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, load_model
from vocoder.training import trainer as trainer_module
from vocoder.training.trainer import NonFiniteLossError, TrainConfig, Trainer, cpu_has_native_bf16, resolve_device

SR, HOP = 16000, 80
STREAMS = ["f0", "vuv", "loudness", "mfcc"]
TINY = dict(sample_rate=SR, hop_length=HOP, n_harmonics=16, n_noise_bands=17, hidden_size=32, gru_size=32,
            mlp_layers=1, z_dim=4, n_mfcc=12, encoder_gru_size=16, reverb_duration_s=0.05)
FAST = dict(fft_sizes=(256, 128, 64), warmup_steps=1, log_interval=1, valid_interval=10 ** 6,
            audio_interval=10 ** 6, checkpoint_interval=10 ** 6, amp=False)


def tone(f0, seconds, seed=0):
    t = np.arange(int(round(seconds * SR))) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 3 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, int(0.45 * SR / f0)))
    x = 0.5 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    return x.astype(np.float32)


def make_dump(root: Path, utts) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    for i, (utt, f0, sec) in enumerate(utts):
        sf.write(root / f"{utt}.wav", tone(f0, sec, seed=i), SR)
    keys = sorted(u for u, _, _ in utts)
    (data / "wav.scp").write_text("".join(f"{u} {root / u}.wav\n" for u in keys))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u in keys))
    spks = sorted({u.split("_")[0] for u in keys})
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in keys if u.split('_')[0] == s)}\n"
                                          for s in spks))
    threads = torch.get_num_threads()
    with contextlib.redirect_stderr(io.StringIO()):
        rc = main(["extract", str(data), str(root / "dump"), "--streams", ",".join(STREAMS)])
    torch.set_num_threads(threads)
    assert rc == 0
    return root / "dump"


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    return make_dump(tmp_path_factory.mktemp("trainer"), [("a_1", 120.0, 0.6), ("b_1", 200.0, 0.5),
                                                          ("b_2", 160.0, 0.4)])


def make_trainer(dump, exp, *, crop_frames=20, epoch_size=None, model_kw=None, valid=False, **cfg):
    torch.manual_seed(0)
    model = build_model("ddsp", **{**TINY, **(model_kw or {})})
    train_set = CropDataset(dump, streams=STREAMS, crop_frames=crop_frames, seed=0, epoch_size=epoch_size)
    valid_set = CropDataset(dump, streams=STREAMS, crop_frames=crop_frames, fixed=True) if valid else None
    config = TrainConfig(**{"max_steps": 10, "batch_size": 2, **FAST, **cfg})
    return Trainer(model, train_set, valid_set, exp_dir=exp, config=config,
                   full_config={"model": {"name": "ddsp", **TINY, **(model_kw or {})}},
                   device=torch.device("cpu"), progress=False)


def record_losses(trainer) -> list:
    """Record the loss of every forward pass of the trainer."""
    losses = []
    orig = trainer._forward_loss

    def wrapped(batch, generator=None):
        loss, out = orig(batch, generator=generator)
        losses.append(float(loss.detach()))
        return loss, out

    trainer._forward_loss = wrapped
    return losses


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train several times faster on one thread (and do not fight other jobs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def params(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- learning

def test_loss_decreases_on_a_repeated_tone(tmp_path):
    one = make_dump(tmp_path / "one", [("a_1", 150.0, 0.5)])
    tr = make_trainer(one, tmp_path / "exp", max_steps=40, learning_rate=3e-3, final_lr_ratio=1.0,
                      model_kw={"z_dim": 0})
    losses = record_losses(tr)
    summary = tr.train()
    assert summary["steps"] == 40 and summary["skipped_steps"] == 0
    assert len(losses) == 40 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert np.mean(losses[-5:]) < 0.8 * losses[0], losses
    assert summary["last_loss"] == pytest.approx(losses[-1])


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_train_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown train settings.*'max_step'"):
        TrainConfig.from_dict({"max_step": 3})
    assert TrainConfig.from_dict({"fft_sizes": [64, 32]}).fft_sizes == (64, 32)


def test_adamw_is_fused_on_the_cpu_and_updates_as_the_loop_does():
    from vocoder.training.trainer import adamw

    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    start = nets[0][0].weight.detach().clone()
    fused = adamw(nets[0].parameters(), lr=1e-2, weight_decay=0.1)
    loop = torch.optim.AdamW(nets[1].parameters(), lr=1e-2, weight_decay=0.1)
    assert fused.param_groups[0]["fused"] and not loop.param_groups[0]["fused"]
    x = torch.randn(16, 7)
    for _ in range(5):
        for net, opt in zip(nets, (fused, loop)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert (nets[0][0].weight - start).abs().max() > 1e-3  # the steps moved the weights


# ---------------------------------------------------------------- bfloat16 on the CPU

def test_cpu_has_native_bf16_reads_the_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert not cpu_has_native_bf16(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_native_bf16(str(info))
    info.write_text("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert cpu_has_native_bf16(str(info))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))


def _first_batch(tr):
    batch = tr._to_device(next(iter(tr._loader(0))))
    return batch, tr._generators(0, 0)


def test_cpu_amp_runs_the_network_in_bfloat16_and_the_synthesizers_in_float32(dump, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning where the CPU has native bfloat16
        tr = make_trainer(dump, tmp_path / "amp", cpu_amp=True)
    assert tr.amp
    assert not make_trainer(dump, tmp_path / "fp32").amp  # off by default
    linear_dtypes = []
    hooks = [m.register_forward_hook(lambda m, i, o: linear_dtypes.append(o.dtype))
             for m in tr.model.modules() if isinstance(m, torch.nn.Linear)]
    batch, gens = _first_batch(tr)
    loss, out = tr._forward_loss(batch, generator=gens)
    for h in hooks:
        h.remove()
    assert linear_dtypes and set(linear_dtypes) == {torch.bfloat16}
    for key in ("audio", "dry_audio", "harmonic", "noise", "harmonic_amplitudes", "noise_magnitudes"):
        assert out[key].dtype == torch.float32, key
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())


def test_cpu_amp_loss_and_gradient_follow_float32(dump, tmp_path, monkeypatch):
    """One step's loss within 1% of float32's and the gradient pointing the same way:
    bfloat16 rounds the network's products (8 bits of mantissa), nothing else. (With a
    loss_eps of 1e-3: at 1e-7 the log-magnitude terms of near-silent bins dominate this
    untrained model's gradient and amplify any rounding, float32's own included.)"""
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: True)
    results = []
    for amp in (False, True):
        tr = make_trainer(dump, tmp_path / f"exp{amp}", cpu_amp=amp, loss_eps=1e-3)
        batch, gens = _first_batch(tr)
        loss, _ = tr._forward_loss(batch, generator=gens)
        tr.model.zero_grad()
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in tr.model.parameters() if p.grad is not None])
        results.append((float(loss.detach()), grad))
    (l32, g32), (l16, g16) = results
    assert l16 == pytest.approx(l32, rel=0.01)
    assert float(torch.nn.functional.cosine_similarity(g32, g16, dim=0)) > 0.999
    assert not torch.equal(g32, g16)  # the autocast did act


def test_cpu_amp_warns_without_native_bf16(dump, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        tr = make_trainer(dump, tmp_path / "exp", cpu_amp=True)
    assert tr.amp  # still honoured: the user asked for it


def test_cpu_amp_trains(dump, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: True)
    tr = make_trainer(dump, tmp_path / "exp", cpu_amp=True, max_steps=20, learning_rate=3e-3,
                      final_lr_ratio=1.0, model_kw={"z_dim": 0})
    losses = record_losses(tr)
    summary = tr.train()
    assert summary["skipped_steps"] == 0 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:3]), losses


def test_batch_size_must_divide_by_processes(dump, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)  # no process group here
    with pytest.raises(ValueError, match="batch_size 3 is not divisible by the 2 processes"):
        make_trainer(dump, tmp_path, batch_size=3)


def test_dataset_smaller_than_the_batch_still_trains(dump, tmp_path):
    tr = make_trainer(dump, tmp_path / "exp", max_steps=3, batch_size=8, epoch_size=3)
    assert tr.steps_per_epoch() == 1
    assert tr.train()["steps"] == 3


# ---------------------------------------------------------------- checkpoints

def test_checkpoints_every_n_keep_last(dump, tmp_path):
    tr = make_trainer(dump, tmp_path / "exp", max_steps=7, checkpoint_interval=2, keep_last=2, valid=True)
    summary = tr.train()
    ckpts = list_checkpoints(tmp_path / "exp" / "checkpoints")
    # saved at 2, 4, 6 and at the end (7); the last two are kept
    assert [p.name for p in ckpts] == ["step_00000006.pt", "step_00000007.pt"]
    assert not [p for p in (tmp_path / "exp" / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    for p in ckpts:
        state = torch.load(p, map_location="cpu", weights_only=True)
        assert {"model", "optimizer", "scheduler", "step", "config", "version", "format"} <= set(state)
        assert state["step"] == int(p.stem.split("_")[1])
        assert state["config"]["model"]["name"] == "ddsp"
    final = torch.load(ckpts[-1], weights_only=True)
    for k, v in tr.model.state_dict().items():
        assert torch.equal(final["model"][k], v), k
    assert np.isfinite(summary["valid_loss"])
    assert any((tmp_path / "exp" / "tensorboard").iterdir())
    model, state = load_model(tmp_path / "exp")
    assert state["step"] == 7 and not model.training
    for k, v in tr.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def run_to(dump, exp, *, max_steps, stop_at=None, resume=False, **cfg):
    """Train (optionally resuming); with stop_at, interrupt right after that checkpoint."""
    tr = make_trainer(dump, exp, max_steps=max_steps, **cfg)
    if resume:
        assert tr.resume()
    if stop_at is not None:
        save = tr.save

        def save_then_stop():
            path = save()
            if tr.step == stop_at:
                raise KeyboardInterrupt
            return path

        tr.save = save_then_stop
        with pytest.raises(KeyboardInterrupt):
            tr.train()
    else:
        tr.train()
    return tr


def test_resume_matches_an_uninterrupted_run(dump, tmp_path):
    """Noise is drawn per example from (seed, epoch, index) and the data position is saved,
    so an interrupted and resumed run is bit-identical to an uninterrupted one."""
    cfg = dict(checkpoint_interval=5, keep_last=3, batch_size=2)
    full = run_to(dump, tmp_path / "full", max_steps=20, **cfg)
    run_to(dump, tmp_path / "cut", max_steps=20, stop_at=10, **cfg)
    assert [p.name for p in list_checkpoints(tmp_path / "cut" / "checkpoints")] == [
        "step_00000005.pt", "step_00000010.pt"]
    tr = make_trainer(dump, tmp_path / "cut", max_steps=20, **cfg)
    assert tr.resume() and tr.step == 10 and tr.batches_seen == 10
    assert tr.train()["steps"] == 20
    a, b = params(full.model), params(tr.model)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert tr.scheduler.get_last_lr() == full.scheduler.get_last_lr()
    assert tr.optimizer.state_dict()["state"][0]["step"] == 20


def test_resume_crosses_epochs_and_extends_max_steps(dump, tmp_path):
    # 2 batches per epoch here: the runs pass several epoch boundaries
    cfg = dict(checkpoint_interval=3, batch_size=4, final_lr_ratio=1.0, epoch_size=8)
    full = run_to(dump, tmp_path / "full", max_steps=9, **cfg)
    assert full.steps_per_epoch() == 2
    run_to(dump, tmp_path / "cut", max_steps=3, **cfg)  # finished, then trained further
    tr = run_to(dump, tmp_path / "cut", max_steps=9, resume=True, **cfg)
    a, b = params(full.model), params(tr.model)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_latest_checkpoint_skips_corrupt_files(dump, tmp_path):
    tr = make_trainer(dump, tmp_path / "exp", max_steps=4, checkpoint_interval=2, keep_last=5)
    tr.train()
    ckdir = tmp_path / "exp" / "checkpoints"
    assert latest_checkpoint(ckdir).name == "step_00000004.pt"
    newest = ckdir / "step_00000004.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # truncated (e.g. disk full)
    torch.save({"something": 1}, ckdir / "step_00000009.pt")  # not a checkpoint
    (ckdir / "notes.txt").write_text("ignored")
    assert [p.name for p in list_checkpoints(ckdir)] == ["step_00000002.pt", "step_00000004.pt", "step_00000009.pt"]
    with pytest.raises(ValueError, match="step_00000004.pt: not a readable checkpoint"):
        load_checkpoint(newest)
    with pytest.raises(ValueError, match="no 'model' entry"):
        load_checkpoint(ckdir / "step_00000009.pt")
    assert latest_checkpoint(ckdir).name == "step_00000002.pt"
    resumed = make_trainer(dump, tmp_path / "exp", max_steps=4)
    assert resumed.resume() and resumed.step == 2
    assert latest_checkpoint(tmp_path / "nowhere") is None


def test_checkpoint_rejects_unsafe_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"model": {}, "x": Evil()}, tmp_path / "step_00000001.pt")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "step_00000001.pt")


# ---------------------------------------------------------------- non-finite losses

def nan_on_calls(model, calls):
    """Make the model's output NaN on the given forward calls (1-based)."""
    count = {"n": 0}
    forward = model.forward

    def patched(inputs, **kw):
        count["n"] += 1
        out = forward(inputs, **kw)
        if count["n"] in calls:
            out = {**out, "audio": out["audio"] * float("nan")}
        return out

    model.forward = patched
    return count


def test_nonfinite_step_is_skipped_and_reported(dump, tmp_path, capsys):
    tr = make_trainer(dump, tmp_path / "exp", max_steps=5)
    nan_on_calls(tr.model, {2})
    seen = []
    orig = tr._forward_loss

    def spy(batch, generator=None):
        seen.append(list(batch["utt"]))
        return orig(batch, generator=generator)

    tr._forward_loss = spy
    summary = tr.train()
    err = capsys.readouterr().err
    assert summary["steps"] == 5 and summary["skipped_steps"] == 1
    assert len(seen) == 6
    line = [x for x in err.splitlines() if "non-finite" in x]
    assert len(line) == 1
    assert "at step 2 " in line[0] and "step skipped (1 in a row, 1 in total)" in line[0]
    assert f"batch utterances: {', '.join(seen[1])}" in line[0]
    assert all(np.isfinite(v).all() for v in (p.detach().numpy() for p in tr.model.parameters()))
    assert torch.load(list_checkpoints(tmp_path / "exp" / "checkpoints")[-1],
                      weights_only=True)["skipped_steps"] == 1


def test_too_many_nonfinite_steps_raise(dump, tmp_path, capsys):
    tr = make_trainer(dump, tmp_path / "exp", max_steps=10, max_nonfinite_in_row=3)
    before = params(tr.model)
    nan_on_calls(tr.model, set(range(1, 100)))
    with pytest.raises(NonFiniteLossError, match=r"at step 1 .*stopping after 3 in a row"):
        tr.train()
    assert tr.step == 0 and tr.skipped_steps == 3
    after = params(tr.model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # no update from a NaN batch
    assert capsys.readouterr().err.count("non-finite") == 3


def test_nonfinite_gradient_is_skipped(dump, tmp_path, capsys):
    tr = make_trainer(dump, tmp_path / "exp", max_steps=3)
    calls = {"n": 0}

    def poison(grad):
        calls["n"] += 1
        return grad * float("inf") if calls["n"] == 1 else grad

    tr.model.out.bias.register_hook(poison)
    summary = tr.train()
    assert summary["skipped_steps"] == 1 and summary["steps"] == 3
    assert "non-finite loss/gradient at step 1 " in capsys.readouterr().err


# ---------------------------------------------------------------- DDP

class RecordingCrops(CropDataset):
    """A CropDataset that records the indices it is asked for."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []

    def __getitem__(self, index):
        self.seen.append(int(index))
        return super().__getitem__(index)


def _ddp_run(dump, exp, steps, batch_size, log_weight=0.0, nan_calls=()):
    """Train for ``steps`` steps; return params, indices, audio and gradients per step."""
    torch.manual_seed(0)
    model = build_model("ddsp", **TINY)
    if nan_calls:
        nan_on_calls(model, set(nan_calls))
    ds = RecordingCrops(dump, streams=STREAMS, crop_frames=20, seed=0, epoch_size=8)
    cfg = TrainConfig(max_steps=steps, batch_size=batch_size, checkpoint_interval=2, log_weight=log_weight, **{
        k: v for k, v in FAST.items() if k != "checkpoint_interval"})
    tr = Trainer(model, ds, None, exp_dir=exp, config=cfg, full_config={"model": {"name": "ddsp", **TINY}},
                 device=torch.device("cpu"), progress=False)
    audio = []
    orig = tr._forward_loss

    def spy(batch, generator=None):
        audio.append(batch["audio"].clone())
        return orig(batch, generator=generator)

    tr._forward_loss = spy
    grads = []
    step = tr.optimizer.step

    def record_step(*a, **kw):
        grads.append({n: p.grad.detach().clone() for n, p in tr.model.named_parameters()})
        return step(*a, **kw)

    tr.optimizer.step = record_step
    with warnings.catch_warnings():  # "optimizer.step() has been overridden" (by record_step)
        warnings.simplefilter("ignore", UserWarning)
        tr.train()
    local = tr.local_batch
    seen = [ds.seen[i:i + local] for i in range(0, len(ds.seen), local)]
    return {"params": params(tr.model), "seen": seen, "audio": audio, "grads": grads,
            "skipped_steps": tr.skipped_steps}


def _ddp_worker(rank, world, port, dump, root, steps, batch_size, nan_rank=None):
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    try:
        nan_calls = (2,) if rank == nan_rank else ()
        torch.save(_ddp_run(dump, Path(root) / f"rank{rank}", steps, batch_size, nan_calls=nan_calls),
                   Path(root) / f"result{rank}.pt")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_matches_single_process(dump, tmp_path):
    """2 gloo processes with batch_size 4 (2 each) follow the 1-process run with batch 4.

    Each rank takes its contiguous half of the same global batch, with the same
    per-example noise, so the averaged gradients equal the single-process ones up to
    float32 rounding. The loss here is the linear spectral term only: the log term on
    near-silent bins is so ill-conditioned that float32 rounding alone moves the
    gradient of a batch split in two by ~1% even within one process (in float64 the
    split agrees to 1e-12), which would hide real mistakes behind a loose tolerance.
    """
    steps, batch = 3, 4
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(dump), str(tmp_path), steps, batch),
                                nprocs=2, join=True)
    single = _ddp_run(dump, tmp_path / "single", steps, batch)
    results = [torch.load(tmp_path / f"result{r}.pt", weights_only=True) for r in range(2)]
    # epoch_size 8: 2 batches per epoch
    assert single["seen"] == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3]]
    for r, res in enumerate(results):
        # rank r sees the r-th half of every global batch
        assert res["seen"] == [s[2 * r:2 * r + 2] for s in single["seen"]]
        assert len(res["audio"]) == steps
        for a, b in zip(res["audio"], single["audio"]):
            assert torch.equal(a, b[2 * r:2 * r + 2])
        # the all-reduced gradients of every step match the single-process ones
        assert len(res["grads"]) == steps
        for step, (g, ref) in enumerate(zip(res["grads"], single["grads"])):
            for k, v in ref.items():
                assert torch.equal(g[k], results[0]["grads"][step][k]), k  # same on every rank
                scale = float(v.abs().max()) + 1e-12
                assert float((g[k] - v).abs().max()) <= 1e-4 * scale, f"step {step + 1}: {k}"
        # parameters: Adam normalises each element's step, so an element whose gradient is
        # at rounding level may move differently; all others agree to float32 precision
        diff = torch.cat([(res["params"][k] - v).flatten() for k, v in single["params"].items()
                          if v.is_floating_point()])
        assert float(diff.abs().max()) < 2.5e-3  # never more than about one lr-sized step
        assert float((diff.abs() > 1e-5).float().mean()) < 1e-3
        for k, v in single["params"].items():
            torch.testing.assert_close(res["params"][k].norm(), v.norm(), rtol=1e-4, atol=1e-6, msg=k)
    # only rank 0 writes checkpoints (and TensorBoard)
    assert [p.name for p in list_checkpoints(tmp_path / "rank0" / "checkpoints")] == [
        "step_00000002.pt", "step_00000003.pt"]
    assert not (tmp_path / "rank1").exists()


def test_ddp_nonfinite_on_one_rank_is_skipped_by_all(dump, tmp_path):
    """A NaN loss on one rank only: every rank skips the step (no hang in DDP's all-reduce)."""
    ctx = torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, _free_port(), str(dump), str(tmp_path), 3, 4, 1), nprocs=2, join=False,
        start_method="spawn")
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("DDP training hung after a non-finite loss on one rank")
    results = [torch.load(tmp_path / f"result{r}.pt", weights_only=True) for r in range(2)]
    for res in results:
        assert res["skipped_steps"] == 1 and len(res["grads"]) == 3
    for k, v in results[0]["params"].items():
        assert torch.equal(v, results[1]["params"][k]), k


def test_mel_loss_weight_adds_the_log_mel_term(dump, tmp_path):
    """``mel_loss_weight`` adds w x LogMelLoss (64 ms FFT by default) to the training loss."""
    from vocoder.losses import LogMelLoss

    plain = make_trainer(dump, tmp_path / "a")
    tr = make_trainer(dump, tmp_path / "b", mel_loss_weight=2.5)
    assert plain.mel_loss_fn is None
    assert tr.mel_loss_fn.n_fft == 1024  # 16 kHz: 64 ms is 1024 points
    gen = torch.Generator().manual_seed(0)
    target = 0.1 * torch.randn(2, 4000, generator=gen)
    audio = target + 0.05 * torch.randn(2, 4000, generator=gen)
    want = plain.loss_fn(audio, target) + 2.5 * LogMelLoss(sample_rate=16000, n_fft=1024)(audio, target)
    assert float(tr.spectral_loss(audio, target)) == pytest.approx(float(want), rel=1e-6)
    assert float(plain.spectral_loss(audio, target)) == pytest.approx(float(plain.loss_fn(audio, target)))
    summary = tr.train()
    assert summary["steps"] == 10 and np.isfinite(summary["last_loss"])


def test_loss_eps_reaches_the_multiscale_loss(dump, tmp_path):
    """``loss_eps`` is the eps inside the multi-scale loss's log: on a target with digital
    silence it sets the log term there (log(p + eps) - log(eps))."""
    from vocoder.losses import multiscale_spectral_loss

    default = make_trainer(dump, tmp_path / "a")
    tr = make_trainer(dump, tmp_path / "b", loss_eps=1e-4)
    assert default.loss_fn.eps == 1e-7 and tr.loss_fn.eps == 1e-4
    gen = torch.Generator().manual_seed(0)
    target = 0.1 * torch.randn(2, 4000, generator=gen)
    target[:, 1000:3000] = 0.0  # digital silence, as in the synthetic voices' pauses
    audio = target + 1e-6 * torch.randn(2, 4000, generator=gen)
    want = multiscale_spectral_loss(audio, target, fft_sizes=FAST["fft_sizes"], eps=1e-4)
    assert float(tr.spectral_loss(audio, target)) == pytest.approx(float(want), rel=1e-6)
    # the same tiny error costs far more with the tiny default eps
    assert float(default.spectral_loss(audio, target)) > 3 * float(want)
