from pathlib import Path

import numpy as np
import pytest
import torch

from vocoder.analysis.world import world_features, world_synthesize
from vocoder.metrics import mcd, multiscale_spectral_distance
from vocoder.source_filter.world_synth import WorldSynth, world_filters, world_synthesis

SR, HOP = 16000, 80
SPEECH = Path(__file__).resolve().parents[2] / "egs" / "mini" / "corpus" / "speech"


def vowel(seconds=1.0, seed=0):
    """An /a/-like vowel: harmonics of a vibrato f0 under three formants, plus breath noise.

    Written with numpy alone. Returns (audio, f0 per frame on the analysis grid).
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = 130.0 + 8.0 * np.sin(2 * np.pi * 4.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = np.zeros(n)
    for k in range(1, int(SR / 2 / 140)):
        fk = k * f0
        amp = 1.0 / k  # source tilt
        for centre, bw, gain in ((700, 110, 1.0), (1220, 120, 0.5), (2600, 160, 0.25)):
            amp = amp * (1 + gain * 8 / (1 + ((fk - centre) / bw) ** 2))
        y += amp * np.sin(k * phase) * (fk < SR / 2)
    y = 0.3 * y / np.abs(y).max() + 3e-3 * rng.standard_normal(n)
    frames = -(-n // HOP)
    return y, f0[np.minimum(np.arange(frames) * HOP, n - 1)]


def as_batch(*arrays):
    return [torch.from_numpy(np.asarray(a, dtype=np.float64))[None] for a in arrays]


def rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.square(x))))


@pytest.fixture(scope="module")
def vowel_features():
    x, f0 = vowel()
    feats = world_features(x, sample_rate=SR, hop_length=HOP, f0_hz=f0)
    return x, feats


def test_level_and_spectral_distance_match_pyworld_on_a_vowel(vowel_features):
    x, feats = vowel_features
    f0, sp, ap = feats["f0_hz"], feats["sp"], feats["ap"]
    ref = world_synthesize(f0, sp, ap, sample_rate=SR, hop_length=HOP)[: x.size]
    for method in ("filter", "harmonic"):
        y = world_synthesis(*as_batch(f0, sp, ap), sample_rate=SR, hop_length=HOP, method=method,
                            generator=0)[0, : x.size].numpy()
        assert abs(rms_db(y) - rms_db(ref)) < 1.0, method
        assert multiscale_spectral_distance(x, y) <= multiscale_spectral_distance(x, ref), method


def test_methods_agree_on_stationary_frames():
    # f0 on an FFT bin multiple (125 Hz = 8 bins of 15.625 Hz): both methods are exact.
    n_frames, n_bins = 40, 513
    freqs = np.linspace(0, SR / 2, n_bins)
    sp = 1e-4 * (1 + 10 * np.exp(-0.5 * ((freqs - 700) / 150) ** 2) + 3 * np.exp(-0.5 * ((freqs - 2500) / 300) ** 2))
    sp = np.tile(sp, (n_frames, 1))
    ap = np.full_like(sp, 0.3)
    f0 = np.full(n_frames, 125.0)
    args = as_batch(f0, sp, ap)
    noise = torch.zeros(1, n_frames * HOP, dtype=torch.float64)
    a = world_synthesis(*args, sample_rate=SR, hop_length=HOP, noise=noise)
    b = world_synthesis(*args, sample_rate=SR, hop_length=HOP, noise=noise, method="harmonic")
    mid = slice(10 * HOP, 30 * HOP)
    assert torch.allclose(a[0, mid], b[0, mid], atol=1e-6 * a.abs().max().item())


def test_unvoiced_frames_are_all_noise():
    rng = np.random.default_rng(1)
    n_frames = 30
    sp = rng.uniform(1e-5, 1e-3, (n_frames, 257))
    ap = rng.uniform(0.0, 0.5, (n_frames, 257))
    f0 = np.r_[np.zeros(10), np.full(10, 200.0), np.zeros(10)]
    args = as_batch(f0, sp, ap)
    silent = torch.zeros(1, n_frames * HOP, dtype=torch.float64)
    periodic_only = world_synthesis(*args, sample_rate=SR, hop_length=HOP, noise=silent)[0]
    assert periodic_only[: 9 * HOP].abs().max() == 0  # no pulses where unvoiced
    assert periodic_only[12 * HOP:18 * HOP].abs().max() > 0
    periodic, aperiodic = world_filters(*as_batch(sp, ap), torch.from_numpy(f0 > 0)[None], n_fft=512)
    assert periodic[0, :10].abs().max() == 0 and periodic[0, 10:20].abs().min() > 0
    # Unvoiced noise gets the whole envelope, voiced noise the aperiodic share.
    np.testing.assert_allclose(aperiodic[0, :10].abs().numpy(), np.sqrt(sp[:10]), rtol=1e-9)
    np.testing.assert_allclose(aperiodic[0, 10:20].abs().numpy(),
                               np.sqrt(sp[10:20]) * np.clip(ap[10:20], 1e-3, 1), rtol=1e-9)
    np.testing.assert_allclose(periodic[0, 10:20].abs().numpy(),
                               np.sqrt(sp[10:20] * (1 - np.clip(ap[10:20], 1e-3, 1) ** 2)), rtol=1e-9)


@pytest.mark.parametrize("chunk_elements", [None, 2 * 9])
def test_gradients_in_all_three_inputs(chunk_elements, monkeypatch):
    from vocoder.source_filter import world_synth

    if chunk_elements is not None:  # 2 frames per chunk: the overlap-add crosses chunk boundaries
        monkeypatch.setattr(world_synth, "_CHUNK_ELEMENTS", chunk_elements)
    rng = np.random.default_rng(2)
    n_frames, n_bins, hop = 4, 9, 4
    # Away from k * f0 = Nyquist, where the number of harmonics (a step) changes.
    f0 = torch.tensor([[1050.0, 1100.0, 1150.0, 1120.0]], dtype=torch.float64, requires_grad=True)
    sp = torch.from_numpy(rng.uniform(0.5, 2.0, (1, n_frames, n_bins))).requires_grad_()
    ap = torch.from_numpy(rng.uniform(0.1, 0.9, (1, n_frames, n_bins))).requires_grad_()
    noise = torch.from_numpy(rng.standard_normal((1, n_frames * hop)))
    for method in ("filter", "harmonic"):
        def fn(f, s, a, method=method):
            return world_synthesis(f, s, a, sample_rate=8000, hop_length=hop, noise=noise, method=method)

        assert torch.autograd.gradcheck(fn, (f0, sp, ap)), method
    # Float32 with unvoiced frames: finite gradients everywhere.
    f0 = torch.tensor([[0.0, 120.0, 130.0, 0.0, 0.0]], requires_grad=True)
    sp = torch.rand(1, 5, 257).add(1e-6).requires_grad_()
    ap = torch.rand(1, 5, 257).requires_grad_()
    world_synthesis(f0, sp, ap, sample_rate=SR, hop_length=HOP, generator=0).pow(2).sum().backward()
    for g in (f0.grad, sp.grad, ap.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_module_and_batch():
    rng = np.random.default_rng(3)
    f0 = torch.from_numpy(np.r_[np.zeros(3), rng.uniform(100, 300, 17)])[None].repeat(2, 1)
    sp = torch.from_numpy(rng.uniform(1e-5, 1e-3, (2, 20, 513)))
    ap = torch.from_numpy(rng.uniform(0, 1, (2, 20, 513)))
    synth = WorldSynth(sample_rate=SR, hop_length=HOP, fft_size=1024)
    y = synth(f0, sp, ap, generator=5)
    assert y.shape == (2, 20 * HOP)
    one = world_synthesis(f0[1:], sp[1:], ap[1:], sample_rate=SR, hop_length=HOP,
                          noise=torch.randn(2, 20 * HOP, generator=torch.Generator().manual_seed(5),
                                            dtype=torch.float64)[1:])
    torch.testing.assert_close(y[1:], one)
    with pytest.raises(ValueError, match="bins"):
        synth(f0, sp[..., :257], ap[..., :257])
    with pytest.raises(ValueError, match="shapes disagree"):
        world_synthesis(f0, sp, ap[:, :10], sample_rate=SR, hop_length=HOP)
    with pytest.raises(ValueError, match="method"):
        world_synthesis(f0, sp, ap, sample_rate=SR, hop_length=HOP, method="wavetable")


@pytest.mark.parametrize("voice", ["slt"])
def test_real_speech_no_worse_than_pyworld(voice):
    sf = pytest.importorskip("soundfile")
    x, sr = sf.read(str(SPEECH / voice / f"{voice}_s045.flac"))
    assert sr == SR
    feats = world_features(x, sample_rate=SR, hop_length=HOP)
    f0, sp, ap = feats["f0_hz"], feats["sp"], feats["ap"]
    ref = world_synthesize(f0, sp, ap, sample_rate=SR, hop_length=HOP)[: x.size]
    y = world_synthesis(*as_batch(f0, sp, ap), sample_rate=SR, hop_length=HOP, generator=0)[0, : x.size].numpy()
    assert abs(rms_db(y) - rms_db(ref)) < 0.5
    assert multiscale_spectral_distance(x, y) <= multiscale_spectral_distance(x, ref)
    assert mcd(x, y, sample_rate=SR, hop_length=HOP) <= mcd(x, ref, sample_rate=SR, hop_length=HOP)


def test_default_synthesis_fft():
    from vocoder.source_filter.world_synth import default_synthesis_fft

    assert default_synthesis_fft(513, sample_rate=16000, hop_length=80) == 512
    assert default_synthesis_fft(1025, sample_rate=24000, hop_length=120) == 1024
    assert default_synthesis_fft(2049, sample_rate=48000, hop_length=240) == 2048
    assert default_synthesis_fft(257, sample_rate=16000, hop_length=400) == 1024  # two hops win
    assert WorldSynth(sample_rate=16000, hop_length=80, fft_size=1024).n_fft == 512


def _reference_synthesis(f0, sp, ap, noise, *, n_fft, initial_phase=None):
    """The filter method from public pieces, unchunked: pulse_train ("white") and noise,
    each through minimum_phase_spectrum(log sqrt(sp)) times WORLD's gains, by
    ltv_spectral_filter (which holds the last frame)."""
    from vocoder.source_filter import (
        fill_unvoiced_f0,
        ltv_spectral_filter,
        minimum_phase_spectrum,
        pulse_train,
    )

    response = minimum_phase_spectrum(0.5 * torch.log(sp), n_fft=n_fft)
    ap = _resample(ap.clamp(1e-3, 1.0 - 1e-12), n_fft // 2 + 1)
    v = (f0 > 0).to(sp.dtype).unsqueeze(-1)
    periodic = response * torch.sqrt(1.0 - ap * ap) * v
    aperiodic = response * (ap * v + 1.0 - v)
    pulses = pulse_train(fill_unvoiced_f0(f0), sample_rate=SR, hop_length=HOP, normalize="white",
                         initial_phase=initial_phase)
    return (ltv_spectral_filter(noise, aperiodic, hop_length=HOP)
            + ltv_spectral_filter(pulses, periodic, hop_length=HOP))


def _resample(x, n_bins):
    step = (x.shape[-1] - 1) // (n_bins - 1)
    return x[..., ::step]


@pytest.mark.parametrize("chunk_elements", [None, 257 * 7])
def test_filter_method_equals_reference_from_public_pieces(chunk_elements, monkeypatch):
    # Float64; voiced and unvoiced stretches, f0 up to 3 kHz (few harmonics), a jump
    # in K inside a segment, an initial phase, batch 2. Small chunks (7 frames) put
    # chunk boundaries everywhere, including the held frame alone in the last chunk.
    from vocoder.source_filter import world_synth

    if chunk_elements is not None:
        monkeypatch.setattr(world_synth, "_CHUNK_ELEMENTS", chunk_elements)
    rng = np.random.default_rng(4)
    n_frames = 43
    f0 = np.r_[np.zeros(5), np.linspace(90, 400, 20), np.full(6, 3000.0), np.zeros(4), rng.uniform(100, 300, 8)]
    f0 = np.stack([f0, f0[::-1]])
    sp = np.exp(rng.normal(-8, 2, (2, n_frames, 513)))
    ap = rng.uniform(0, 1, (2, n_frames, 513))
    noise = rng.standard_normal((2, n_frames * HOP))
    args = [torch.from_numpy(a) for a in (f0, sp, ap, noise)]
    phase0 = torch.tensor([0.0, 2.5], dtype=torch.float64)
    y = world_synthesis(*args[:3], sample_rate=SR, hop_length=HOP, noise=args[3], initial_phase=phase0)
    ref = _reference_synthesis(*args, n_fft=512, initial_phase=phase0)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-9 * ref.abs().max().item())


def test_pulse_excitation_equals_pulse_train_and_has_exact_gradients():
    from vocoder.source_filter import pulse_train
    from vocoder.source_filter.world_synth import _pulse_excitation

    # Voiced throughout (pulse_train's voicing gate is then 1); K changes between
    # frames (f0 crossing sr / 2k), very low and very high f0.
    f0 = torch.tensor([[60.0, 61.0, 250.0, 2600.0, 2700.0, 2680.0, 1333.0, 1334.0, 7000.0, 7000.0, 35.0, 40.0]],
                      dtype=torch.float64)
    for phase0 in (None, torch.tensor([1.0], dtype=torch.float64)):
        y = _pulse_excitation(f0, sample_rate=SR, hop_length=HOP, initial_phase=phase0, dtype=torch.float64)
        ref = pulse_train(f0, sample_rate=SR, hop_length=HOP, normalize="white", initial_phase=phase0)
        torch.testing.assert_close(y, ref, rtol=0, atol=1e-10 * ref.abs().max().item())
    # Float32 stays close to the float64 reference, near the pulses too.
    y32 = _pulse_excitation(f0.float(), sample_rate=SR, hop_length=HOP, initial_phase=None, dtype=torch.float32)
    ref = pulse_train(f0, sample_rate=SR, hop_length=HOP, normalize="white")
    assert (y32.double() - ref).abs().max() < 2e-5 * ref.abs().max()
    # Gradient in f0 (pulse centres at sample 0 and inside segments included).
    f0 = torch.tensor([[1050.0, 1100.0, 1150.0, 1120.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda f: _pulse_excitation(f, sample_rate=8000, hop_length=16, initial_phase=None, dtype=torch.float64),
        (f0,))
