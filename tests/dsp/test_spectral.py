"""vocoder.dsp.spectral against librosa / scipy references."""
import math

import librosa
import numpy as np
import pytest
import scipy.fft
import torch

from vocoder.dsp import spectral as sp


def _rel_err(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    return np.abs(actual - expected).max() / np.abs(expected).max()


def _noise(n, *, seed=0, batch=None):
    rng = np.random.default_rng(seed)
    shape = (n,) if batch is None else (batch, n)
    return rng.standard_normal(shape) * 0.1


# ---------------------------------------------------------------- frame grid / STFT


@pytest.mark.parametrize("n_samples", [1, 255, 256, 257, 1000, 4096])
@pytest.mark.parametrize("hop_length", [64, 80, 256])
def test_stft_frame_count_is_ceil(n_samples, hop_length):
    audio = torch.zeros(2, n_samples)
    spec = sp.stft(audio, n_fft=512, hop_length=hop_length)
    assert sp.n_frames(n_samples, hop_length) == math.ceil(n_samples / hop_length)
    assert spec.shape == (2, math.ceil(n_samples / hop_length), 257)


def test_stft_frames_option_and_center_false():
    audio = torch.zeros(1024)
    assert sp.stft(audio, n_fft=256, hop_length=256, frames=5).shape == (5, 129)
    assert sp.stft(audio, n_fft=256, hop_length=256, frames=4).shape == (4, 129)
    with pytest.raises(ValueError, match="frames"):
        sp.stft(audio, n_fft=256, hop_length=256, frames=6)
    assert sp.stft(audio, n_fft=256, hop_length=64, center=False).shape == (13, 129)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize("win_length", [None, 300])
def test_stft_matches_librosa(pad_mode, win_length):
    x = _noise(3000)
    ours = sp.stft(
        torch.from_numpy(x), n_fft=512, hop_length=128, win_length=win_length, pad_mode=pad_mode,
        frames=1 + 3000 // 128,
    ).numpy()
    ref = librosa.stft(x, n_fft=512, hop_length=128, win_length=win_length, pad_mode=pad_mode).T
    assert ours.shape == ref.shape
    assert _rel_err(ours, ref) < 1e-10


def test_stft_frame_centred_on_sample_and_sine_peak():
    sr, n_fft, hop = 16000, 512, 160
    impulse = torch.zeros(4000, dtype=torch.float64)
    impulse[7 * hop] = 1.0
    energy = sp.magnitude_spectrogram(impulse, n_fft=n_fft, hop_length=hop, power=2).sum(-1)
    assert int(energy.argmax()) == 7  # frame 7 is centred on sample 7 * hop

    amp, k = 0.5, 32  # a sine exactly at bin k
    t = torch.arange(8000, dtype=torch.float64)
    sine = amp * torch.sin(2 * math.pi * k * sr / n_fft * t / sr)
    mag = sp.magnitude_spectrogram(sine, n_fft=n_fft, hop_length=hop)
    window_sum = sp.get_window("hann", n_fft, dtype=torch.float64).sum()
    assert torch.allclose(mag[10, k], amp * window_sum / 2, rtol=1e-9)


def test_stft_parseval_rectangular_window():
    x = torch.from_numpy(_noise(1024))
    spec = sp.stft(x, n_fft=256, hop_length=256, window="rectangular", center=False)
    frames = x.reshape(4, 256)
    # one-sided spectrum: double every bin except DC and Nyquist
    power = spec.abs().square()
    total = power[:, 0] + power[:, -1] + 2 * power[:, 1:-1].sum(-1)
    assert torch.allclose(total / 256, frames.square().sum(-1), rtol=1e-10)


def test_stft_batch_consistency_and_leading_dims():
    x = torch.from_numpy(_noise(2000, batch=3))
    batched = sp.stft(x, n_fft=256, hop_length=100)
    for i in range(3):
        assert torch.allclose(batched[i], sp.stft(x[i], n_fft=256, hop_length=100))
    assert sp.stft(x.reshape(1, 3, 2000), n_fft=256, hop_length=100).shape == (1, 3, 20, 129)


def test_stft_errors():
    with pytest.raises(ValueError, match="reflect"):
        sp.stft(torch.zeros(100), n_fft=512, hop_length=128, pad_mode="reflect")
    with pytest.raises(ValueError, match="n_fft"):
        sp.stft(torch.zeros(100), n_fft=0, hop_length=128)
    with pytest.raises(ValueError, match="floating"):
        sp.stft(torch.zeros(100, dtype=torch.int16), n_fft=64, hop_length=16)
    with pytest.raises(ValueError, match="win_length"):
        sp.stft(torch.zeros(100), n_fft=64, hop_length=16, win_length=128)


# ---------------------------------------------------------------- mel scale / filterbank


@pytest.mark.parametrize("htk", [False, True])
def test_hz_mel_conversions_match_librosa(htk):
    freqs = np.array([0.0, 10.0, 200.0, 999.0, 1000.0, 1001.0, 4000.0, 11025.0, 24000.0])
    mels = sp.hz_to_mel(freqs, htk=htk).numpy()
    np.testing.assert_allclose(mels, librosa.hz_to_mel(freqs, htk=htk), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sp.mel_to_hz(mels, htk=htk).numpy(), freqs, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        sp.mel_frequencies(n_mels=40, f_min=30.0, f_max=8000.0, htk=htk).numpy(),
        librosa.mel_frequencies(n_mels=40, fmin=30.0, fmax=8000.0, htk=htk),
        rtol=1e-12,
    )


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None])
@pytest.mark.parametrize(
    "sr, n_fft, n_mels, f_min, f_max",
    [(22050, 1024, 80, 80.0, 7600.0), (16000, 512, 40, 0.0, None), (44100, 2048, 128, 20.0, 16000.0)],
)
def test_mel_filterbank_matches_librosa(htk, norm, sr, n_fft, n_mels, f_min, f_max):
    ours = sp.mel_filterbank(
        sample_rate=sr, n_fft=n_fft, n_mels=n_mels, f_min=f_min, f_max=f_max, htk=htk, norm=norm,
        dtype=torch.float64,
    ).numpy()
    ref = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=htk, norm=norm,
        dtype=np.float64,
    ).T
    assert ours.shape == (n_fft // 2 + 1, n_mels)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    ours32 = sp.mel_filterbank(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, f_min=f_min, f_max=f_max,
                               htk=htk, norm=norm)
    assert ours32.dtype == torch.float32


def test_mel_filterbank_errors():
    with pytest.raises(ValueError, match="norm"):
        sp.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40, norm="l2")
    with pytest.raises(ValueError, match="f_min"):
        sp.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=40, f_min=9000.0)


# ---------------------------------------------------------------- mel spectrogram / MFCC


def test_mel_spectrogram_tts_convention_matches_librosa():
    """ParallelWaveGAN / HiFi-GAN style: 22.05 kHz, 1024/256, 80 mels, 80-7600 Hz,
    log10 of the magnitude mel floored at 1e-10, reflect padding."""
    sr, n_fft, hop = 22050, 1024, 256
    x = _noise(sr // 2, seed=1)
    x[:2000] = 0.0  # silence exercises the floor
    ours = sp.mel_spectrogram(
        torch.from_numpy(x), sample_rate=sr, n_fft=n_fft, hop_length=hop, n_mels=80,
        f_min=80.0, f_max=7600.0, power=1.0, log="log10", eps=1e-10, pad_mode="reflect",
    ).numpy()
    spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", pad_mode="reflect"))
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=80, fmin=80, fmax=7600)
    ref = np.log10(np.maximum(1e-10, basis.astype(np.float64) @ spec)).T
    assert ours.shape == (math.ceil(x.size / hop), 80)
    assert _rel_err(ours, ref[: ours.shape[0]]) < 1e-4


@pytest.mark.parametrize("log", ["ln", "db"])
def test_mel_spectrogram_power_db_matches_librosa(log):
    sr = 16000
    x = _noise(8000, seed=2)
    ours = sp.mel_spectrogram(
        torch.from_numpy(x), sample_rate=sr, n_fft=512, hop_length=128, n_mels=40, power=2.0,
        htk=True, norm=None, log=log, top_db=80.0 if log == "db" else None,
        frames=1 + 8000 // 128,
    ).numpy()
    mel = librosa.feature.melspectrogram(
        y=x, sr=sr, n_fft=512, hop_length=128, n_mels=40, htk=True, norm=None, power=2.0
    )
    ref = librosa.power_to_db(mel, top_db=80.0) if log == "db" else np.log(np.maximum(mel, 1e-10))
    assert _rel_err(ours, ref.T) < 1e-4


@pytest.mark.parametrize("kwargs", [{}, {"htk": True, "n_mels": 40, "lifter": 22, "n_mfcc": 13}])
def test_mfcc_matches_librosa(kwargs):
    sr = 22050
    x = _noise(sr // 2, seed=3)
    ours = sp.mfcc(torch.from_numpy(x), sample_rate=sr, frames=1 + x.size // 512, **kwargs).numpy()
    ref = librosa.feature.mfcc(y=x, sr=sr, **kwargs).T
    assert ours.shape == ref.shape
    assert _rel_err(ours, ref) < 1e-4
    ours32 = sp.mfcc(torch.from_numpy(x).float(), sample_rate=sr, **kwargs)
    assert ours32.dtype == torch.float32
    assert _rel_err(ours32.numpy(), ref[: ours32.shape[0]]) < 1e-4


def test_dct_matrix_matches_scipy():
    x = np.random.default_rng(4).standard_normal((5, 24))
    for norm in ("ortho", None):
        basis = sp.dct_matrix(24, norm=norm, dtype=torch.float64).numpy()
        np.testing.assert_allclose(x @ basis, scipy.fft.dct(x, type=2, norm=norm, axis=-1),
                                   rtol=1e-10, atol=1e-10)
    ortho = sp.dct_matrix(24, dtype=torch.float64)
    assert torch.allclose(ortho.T @ ortho, torch.eye(24, dtype=torch.float64), atol=1e-12)
    assert sp.dct_matrix(24, n_out=13).shape == (24, 13)


def test_spectral_ops_have_finite_gradients():
    x = torch.zeros(2, 2048, requires_grad=True)
    y = sp.mel_spectrogram(x, sample_rate=16000, n_fft=512, hop_length=128, n_mels=40, log="log10")
    y.sum().backward()
    assert torch.isfinite(x.grad).all()

    small = torch.randn(200, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: sp.mel_spectrogram(a, sample_rate=8000, n_fft=64, hop_length=32, n_mels=8,
                                     power=2.0, log="ln"),
        (small,),
    )


# ---------------------------------------------------------------- A-weighting


def test_a_weighting_matches_librosa():
    freqs = np.concatenate([np.geomspace(10.5, 24000.0, 500), [1000.0]])
    np.testing.assert_allclose(sp.a_weighting_db(freqs).numpy(), librosa.A_weighting(freqs),
                               rtol=0, atol=1e-4)
    assert abs(float(sp.a_weighting_db(torch.tensor([1000.0]))[0])) < 0.01
    assert float(sp.a_weighting_db(torch.tensor([100.0]))[0]) == pytest.approx(-19.1, abs=0.1)


def test_a_weighting_floor():
    freqs = torch.tensor([0.0, 1.0, 10.0, 1000.0], dtype=torch.float64)
    floored = sp.a_weighting_db(freqs, min_db=-60.0)
    assert floored[0] == -60.0 and floored[1] == -60.0 and floored[2] > -71.0
    assert sp.a_weighting_db(freqs)[0] == -80.0
    assert torch.isneginf(sp.a_weighting_db(freqs, min_db=None)[0])
    assert sp.a_weighting_db(freqs.float()).dtype == torch.float32
