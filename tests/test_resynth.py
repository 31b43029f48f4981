"""vocoder.resynth: WORLD analysis into the differentiable synthesizer, refinement, chunking."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch

import vocoder.analysis.world as world_module
from vocoder.analysis.world import world_features, world_synthesize
from vocoder.metrics import multiscale_spectral_distance
from vocoder.resynth import block_noise, chunk_layout, resynthesize, resynthesize_segment

SPEECH = Path(__file__).resolve().parents[1] / "egs" / "mini" / "corpus" / "speech"


@pytest.fixture(autouse=True)
def one_thread():
    """Short signals run faster on one thread (and do not fight other jobs for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def vowel(sample_rate, seconds=0.4, f0=140.0, vibrato=0.02, seed=0):
    """Synthetic /a/: a glottal-ish pulse train through three formant resonators, plus noise."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f = f0 * (1.0 + vibrato * np.sin(2 * np.pi * 4 * t))
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    k = np.arange(1, int(0.45 * sample_rate / f0))
    x = (np.sin(np.outer(phase, k)) / k).sum(axis=1)
    for fc, bw in ((700, 110), (1220, 120), (2600, 160)):
        r = np.exp(-np.pi * bw / sample_rate)
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sample_rate), r * r], x)
    x += 1e-3 * np.random.default_rng(seed).standard_normal(n)
    return 0.5 * x / np.max(np.abs(x))


@pytest.mark.parametrize("sample_rate", [16000, 22050])
def test_output_length_equals_input(sample_rate):
    x = vowel(sample_rate)[: int(0.4 * sample_rate) - 37]  # not a whole number of hops
    y, info = resynthesize(x, sample_rate=sample_rate, generator=0, f0_method="dio")
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert info["hop_length"] == sample_rate // 200 and len(info["chunks"]) == 1
    assert info["voiced_fraction"] > 0.8
    # the same as synthesizing the same analysis segment-wise with the same seed
    feats = world_features(x, sample_rate=sample_rate, hop_length=info["hop_length"], f0_method="dio")
    z, _ = resynthesize_segment(x, feats, sample_rate=sample_rate, hop_length=info["hop_length"],
                                seed=info["seed"])
    assert np.array_equal(y, z)
    level = 20 * np.log10(np.std(y[1000:-1000]) / np.std(x[1000:-1000]))
    assert abs(level) < 2.0


def test_quality_close_to_world_on_speech():
    """No refinement: within 3% of pyworld.synthesize's spectral distance (same analysis)."""
    x, sr = sf.read(str(SPEECH / "slt" / "slt_s045.flac"))
    feats = world_features(x, sample_rate=sr, hop_length=80)
    ref = world_synthesize(feats["f0_hz"], feats["sp"], feats["ap"], sample_rate=sr, hop_length=80)
    world = multiscale_spectral_distance(x, ref[: x.size])
    y, info = resynthesize_segment(x, feats, sample_rate=sr, hop_length=80, seed=0)
    ours = multiscale_spectral_distance(x, y)
    assert y.shape == x.shape and info["loss_initial"] is None
    assert ours < 1.03 * world, (ours, world)


def test_refinement_reduces_the_loss():
    x, sr = sf.read(str(SPEECH / "kal" / "kal_s045.flac"))
    x = x[4000:12000]
    losses = []
    y, info = resynthesize(x, sample_rate=sr, refine_steps=20, generator=0,
                           progress=lambda e: e["stage"] == "refine" and losses.append(e["loss"]))
    assert y.shape == x.shape and len(losses) == 20
    first, last = info["loss_initial"][0], info["loss_final"][0]
    assert first == pytest.approx(losses[0])
    assert last < 0.9 * first, (first, last)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert multiscale_spectral_distance(x, y) < 0.92 * multiscale_spectral_distance(
        x, resynthesize(x, sample_rate=sr, generator=0)[0])


def test_refinement_is_repeatable_and_f0_correction_is_bounded():
    x = vowel(16000, seconds=0.3)
    feats = world_features(x, sample_rate=16000, hop_length=80, f0_method="dio")
    kw = dict(sample_rate=16000, hop_length=80, refine_steps=3, refine_f0=True, seed=3)
    a, info = resynthesize_segment(x, feats, **kw)
    b, _ = resynthesize_segment(x, feats, **kw)
    assert np.array_equal(a, b)
    voiced = feats["f0_hz"] > 0
    ratio = info["f0_hz"][voiced] / feats["f0_hz"][voiced]
    assert np.all(np.abs(np.log(ratio)) <= 0.05 + 1e-6)
    assert np.all(info["f0_hz"][~voiced] == 0)


def test_chunks_are_seamless_and_bounded_on_a_steady_tone(monkeypatch):
    """A 2.4 s steady tone in chunks of 0.8 s: each analysed segment is at most chunk + 2
    contexts long, and the output equals the unchunked one (no dip at the crossfades): the noise
    is drawn by absolute sample position and each chunk continues the pulse phase."""
    sr = 16000
    x = vowel(sr, seconds=2.4, vibrato=0.0)
    lengths = []
    original = world_module.world_features

    def recording(audio, **kw):
        lengths.append(len(audio))
        return original(audio, **kw)

    monkeypatch.setattr(world_module, "world_features", recording)
    kw = dict(sample_rate=sr, generator=7, f0_method="harvest")
    whole, info_whole = resynthesize(x, **kw)
    assert lengths == [x.size] and len(info_whole["chunks"]) == 1
    lengths.clear()
    chunked, info = resynthesize(x, chunk_seconds=0.8, context_seconds=0.2, crossfade_seconds=0.1, **kw)
    assert chunked.shape == x.shape
    assert len(info["chunks"]) == 3 and len(lengths) == 3
    assert max(lengths) <= 0.8 * sr + 2 * 0.2 * sr
    cores = [c[:2] for c in info["chunks"]]
    assert cores[0][0] == 0 and cores[-1][1] == x.size
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
    # Away from the file's ends the two agree closely, crossfades included.
    inner = slice(int(0.1 * sr), x.size - int(0.1 * sr))
    err = chunked[inner] - whole[inner]
    rms = np.sqrt(np.mean(whole[inner] ** 2))
    assert np.sqrt(np.mean(err ** 2)) < 1e-3 * rms
    # ... and 10 ms levels around each boundary stay within 0.05 dB.
    for boundary in (b for _, b in cores[:-1]):
        for start in range(boundary - 800, boundary + 800, 160):
            seg_c, seg_w = chunked[start:start + 160], whole[start:start + 160]
            assert abs(10 * np.log10(np.mean(seg_c ** 2) / np.mean(seg_w ** 2))) < 0.05


def test_chunk_layout_tiles_the_signal():
    layout = chunk_layout(100_000, hop_length=80, chunk_samples=16_000, context_samples=4000)
    assert len(layout) == 7
    assert layout[0][0] == 0 and layout[-1][1] == 100_000
    for (a, b, sa, sb), nxt in zip(layout, layout[1:] + [None]):
        assert a % 80 == 0 and sa % 80 == 0 and b - a <= 16_000
        assert sa == max(0, a - 4000) and sb == min(100_000, b + 4000)
        if nxt is not None:
            assert nxt[0] == b
    assert chunk_layout(500, hop_length=80, chunk_samples=16_000, context_samples=4000) == [(0, 500, 0, 500)]


def test_block_noise_windows_agree():
    whole = block_noise(5, 0, 30_000)
    part = block_noise(5, 12_345, 10_000)
    assert torch.equal(whole[:, 12_345:22_345], part)
    assert not torch.equal(block_noise(6, 0, 100), whole[:, :100])
    assert abs(float(whole.std()) - 1.0) < 0.02


def test_silent_chunks_and_bad_settings():
    sr = 16000
    x = np.concatenate([vowel(sr, seconds=0.5), np.zeros(2 * sr), vowel(sr, seconds=0.5)])
    y, info = resynthesize(x, sample_rate=sr, chunk_seconds=0.5, context_seconds=0.1,
                           crossfade_seconds=0.05, f0_method="dio", generator=0)
    assert y.shape == x.shape and info["silent_chunks"] >= 2
    assert np.abs(y[int(0.7 * sr):int(2.3 * sr)]).max() < 1e-5
    with pytest.raises(ValueError, match="unknown f0 method"):
        resynthesize(x, sample_rate=sr, f0_method="yin")
    with pytest.raises(ValueError, match="refine_steps"):
        resynthesize(x, sample_rate=sr, refine_steps=-1)
    with pytest.raises(ValueError, match="chunk_seconds"):
        resynthesize(x, sample_rate=sr, chunk_seconds=0.1)
    with pytest.raises(ValueError, match="clip.wav"):
        resynthesize(np.zeros(4000), sample_rate=sr, name="clip.wav")
