"""Filtering: FFT convolution, frequency-sampling FIR design, minimum phase, LTV-FIR.

Pure tensor functions, differentiable in every tensor argument. Symbols used in the
shape docstrings:

    N   signal length (samples)
    K   kernel / impulse-response length (samples)
    B   number of bands of a magnitude response, sampled linearly from 0 Hz to
        Nyquist inclusive (an rfft of size ``2 * (B - 1)`` has ``B`` bins)
    F   number of frames; frame ``n`` is centred on sample ``n * hop_length``
    ... any leading (batch) dimensions

Frequency responses are linear magnitudes (not dB) and must be non-negative.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Union

import torch
import torch.nn.functional as F

__all__ = [
    "next_fast_len",
    "fft_convolve",
    "frequency_sampling_fir",
    "minimum_phase",
    "ltv_fir",
    "filtered_noise",
]

_CONV_MODES = ("full", "same", "causal")


@functools.lru_cache(maxsize=1024)
def next_fast_len(n: int) -> int:
    """Smallest even 5-smooth integer (``2**a * 3**b * 5**c`` with ``a >= 1``) that is ``>= n``.

    FFTs of such sizes are fast on the CPU and with cuFFT (GPU). Odd sizes are not on the
    CPU: torch's real FFT of 177147 (3**11) samples took 3x the time of 180000 (the next
    even one) on a 2-core AMD EPYC VM, 3-4x at other odd sizes (docs/benchmarks.md), so
    the factor 2 is kept even where an odd 5-smooth size would be smaller.
    """
    if n < 1:
        raise ValueError(f"next_fast_len: n must be >= 1, got {n}")
    return 2 * _next_5_smooth((n + 1) // 2)


def _next_5_smooth(n: int) -> int:
    """Smallest 5-smooth integer (``2**a * 3**b * 5**c``) that is ``>= n``."""
    best = 1 << (n - 1).bit_length()  # next power of two
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            candidate = p35
            while candidate < n:
                candidate *= 2
            best = min(best, candidate)
            p35 *= 3
        p5 *= 5
    return best


def fft_convolve(signal: torch.Tensor, kernel: torch.Tensor, *, mode: str = "full") -> torch.Tensor:
    """Linear convolution of the last axes by FFT, batched over leading dimensions.

    Matches ``scipy.signal.fftconvolve(signal, kernel, mode=..., axes=-1)`` for
    ``"full"`` and ``"same"``.

    Args:
        signal: (..., N) real signal.
        kernel: (..., K) real kernel; leading dimensions broadcast against ``signal``'s.
        mode: ``"full"`` -> N + K - 1 samples; ``"same"`` -> N samples centred on the
            full output (scipy's convention: starting at index ``(K - 1) // 2``);
            ``"causal"`` -> the first N samples of the full output (what a causal
            filter or a reverb produces).
    Returns:
        (..., N + K - 1) for ``"full"``, else (..., N).
    """
    if mode not in _CONV_MODES:
        raise ValueError(f"fft_convolve: mode must be one of {_CONV_MODES}, got {mode!r}")
    if signal.ndim < 1 or kernel.ndim < 1:
        raise ValueError("fft_convolve: signal and kernel need at least one dimension")
    n, k = signal.shape[-1], kernel.shape[-1]
    if n == 0 or k == 0:
        raise ValueError(f"fft_convolve: empty input (signal length {n}, kernel length {k})")
    if signal.is_complex() or kernel.is_complex():
        raise ValueError("fft_convolve: signal and kernel must be real")
    dtype = torch.promote_types(signal.dtype, kernel.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    signal, kernel = signal.to(dtype), kernel.to(dtype)

    full = n + k - 1
    n_fft = next_fast_len(full)
    spectrum = torch.fft.rfft(signal, n=n_fft) * torch.fft.rfft(kernel, n=n_fft)
    out = torch.fft.irfft(spectrum, n=n_fft)
    if mode == "full":
        return out[..., :full]
    if mode == "causal":
        return out[..., :n]
    start = (k - 1) // 2
    return out[..., start:start + n]


def _check_magnitudes(magnitudes: torch.Tensor, name: str) -> int:
    if magnitudes.ndim < 1:
        raise ValueError(f"{name}: magnitudes need a last (band) dimension, got a scalar")
    if not magnitudes.is_floating_point():
        raise ValueError(f"{name}: magnitudes must be a real floating tensor, got {magnitudes.dtype}")
    n_bands = magnitudes.shape[-1]
    if n_bands < 2:
        raise ValueError(f"{name}: magnitudes need at least 2 bands (0 Hz and Nyquist), got {n_bands}")
    return n_bands


def frequency_sampling_fir(
    magnitudes: torch.Tensor,
    *,
    ir_length: Optional[int] = None,
    window: Optional[str] = "hann",
    zero_phase_centre: bool = True,
) -> torch.Tensor:
    """Windowed linear-phase FIR filters from sampled magnitude responses.

    The frequency-sampling method (as magenta/ddsp ``frequency_impulse_response``):
    the zero-phase impulse response ``irfft(magnitudes)`` (``n_fft = 2 * (B - 1)``
    taps, time zero at index 0) is read at lags ``k = -(L // 2) ... L - L // 2 - 1``,
    multiplied by a Hann window ``0.5 * (1 + cos(2 pi k / W))`` (``W = min(L, n_fft)``,
    zero for ``|k| >= W / 2``) and, with ``zero_phase_centre=True``, laid out so
    that lag ``k`` sits at index ``L // 2 + k``. The result is symmetric about
    ``L // 2`` (for even ``L`` the first tap is zero), i.e. exactly linear phase
    with a delay of ``L // 2`` samples; its magnitude response is the requested one
    smoothed by the window's spectrum. ``L > n_fft`` zero-pads both ends.

    Args:
        magnitudes: (..., B) non-negative linear magnitudes at ``B`` frequencies
            spaced linearly from 0 Hz to Nyquist inclusive.
        ir_length: L, taps of the filter; default ``n_fft = 2 * (B - 1)``.
        window: ``"hann"`` or ``None`` (plain truncation, rectangular window).
        zero_phase_centre: True -> centred (causal, delay ``L // 2``) layout;
            False -> zero-phase layout (lag ``k`` at index ``k mod L``, negative lags
            wrapped to the end), for circular use.
    Returns:
        (..., L) real impulse responses, dtype of ``magnitudes``.
    """
    n_bands = _check_magnitudes(magnitudes, "frequency_sampling_fir")
    n_fft = 2 * (n_bands - 1)
    length = n_fft if ir_length is None else int(ir_length)
    if length < 1:
        raise ValueError(f"frequency_sampling_fir: ir_length must be >= 1, got {ir_length}")
    if window not in ("hann", None):
        raise ValueError(f"frequency_sampling_fir: window must be 'hann' or None, got {window!r}")

    zero_phase = torch.fft.irfft(magnitudes, n=n_fft)
    device, dtype = zero_phase.device, zero_phase.dtype
    centre = length // 2
    lags = torch.arange(length, device=device) - centre
    valid = lags.abs() < (n_fft + 1) // 2 if length > n_fft else torch.ones_like(lags, dtype=torch.bool)
    # Lag +-n_fft/2 (only reachable when L >= n_fft) is the Nyquist-bin alias; the Hann
    # window is zero there, and the rectangular window keeps it once (at -n_fft/2).
    if window is None and length > n_fft:
        valid = valid | (lags == -(n_fft // 2))
    taper = valid.to(dtype)
    if window == "hann":
        width = min(length, n_fft)
        lag_f = lags.to(dtype)
        hann = 0.5 * (1.0 + torch.cos(2.0 * math.pi * lag_f / width))
        taper = torch.where(lag_f.abs() <= width / 2, hann, torch.zeros_like(hann)) * taper
    index = torch.remainder(lags, n_fft)
    ir = zero_phase.index_select(-1, index) * taper
    if not zero_phase_centre:
        ir = torch.roll(ir, shifts=-centre, dims=-1)
    return ir


def minimum_phase(
    magnitudes: torch.Tensor,
    *,
    n_fft: Optional[int] = None,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Minimum-phase impulse responses from magnitude responses (real cepstrum).

    Homomorphic method: real cepstrum ``c = irfft(log |H|)``, folded onto positive
    quefrencies (``c[0]``, ``2 c[1 : n/2]``, ``c[n/2]``, zeros), then
    ``h = irfft(exp(rfft(folded)))``. The DFT magnitude of the returned ``n_fft``
    taps equals the (floored) input exactly; the phase is the minimum phase up to
    cepstral aliasing, which shrinks as ``n_fft`` grows. Energy is front-loaded, so
    the filter is causal with no bulk delay (use with ``ltv_fir(centred=False)``).

    Args:
        magnitudes: (..., B) non-negative linear magnitudes from 0 Hz to Nyquist.
        n_fft: FFT size and output length; default ``2 * (B - 1)``. If it differs,
            the log magnitude is linearly interpolated onto ``n_fft // 2 + 1`` bins
            (a larger ``n_fft`` reduces cepstral and time aliasing).
        eps: magnitudes are floored at ``eps`` before the logarithm.
    Returns:
        (..., n_fft) real minimum-phase impulse responses.
    """
    n_bands = _check_magnitudes(magnitudes, "minimum_phase")
    n_fft = 2 * (n_bands - 1) if n_fft is None else int(n_fft)
    if n_fft < 2:
        raise ValueError(f"minimum_phase: n_fft must be >= 2, got {n_fft}")
    log_mag = torch.log(magnitudes.clamp_min(eps))
    n_bins = n_fft // 2 + 1
    if n_bins != n_bands:
        lead = log_mag.shape[:-1]
        log_mag = F.interpolate(
            log_mag.reshape(-1, 1, n_bands), size=n_bins, mode="linear", align_corners=True
        ).reshape(*lead, n_bins)
    cepstrum = torch.fft.irfft(log_mag, n=n_fft)
    fold = torch.zeros(n_fft, dtype=cepstrum.dtype, device=cepstrum.device)
    fold[0] = 1.0
    fold[1:(n_fft + 1) // 2] = 2.0
    if n_fft % 2 == 0:
        fold[n_fft // 2] = 1.0
    spectrum = torch.exp(torch.fft.rfft(cepstrum * fold))
    return torch.fft.irfft(spectrum, n=n_fft)


def _hann_ola_window(hop_length: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(2 * hop_length,) periodic Hann window; shifted copies by ``hop_length`` sum to 1."""
    k = torch.arange(2 * hop_length, dtype=dtype, device=device)
    return 0.5 - 0.5 * torch.cos(math.pi * k / hop_length)


def ltv_fir(
    signal: torch.Tensor,
    impulse_responses: torch.Tensor,
    *,
    hop_length: int,
    centred: bool = False,
) -> torch.Tensor:
    """Linear time-varying FIR filtering by framed FFT convolution and overlap-add.

    Frame ``n`` owns the Hann window of ``2 * hop_length`` samples centred on sample
    ``n * hop_length`` (windows sum to one). The output is
    ``sum_n h_n * (w_n . x)``: each windowed input segment is convolved with its
    frame's impulse response and the results are overlap-added. A constant impulse
    response therefore gives exactly the plain convolution ``h * x``. The last frame
    is held when the signal runs past ``(F - 1) * hop_length`` (frames past the
    signal are ignored), so synthesis from ``F`` frames into ``F * hop_length``
    samples is fully covered. All frames are transformed in one batched FFT.

    Args:
        signal: (batch, N) input audio.
        impulse_responses: (batch, F, K) one impulse response per frame (batch 1
            broadcasts).
        hop_length: samples between frame centres.
        centred: False -> causal output ``y[t] = sum_k h[k] x[t - k]`` (minimum-phase
            or causal IRs); True -> advance by ``K // 2`` samples to cancel the delay
            of centred linear-phase IRs (``frequency_sampling_fir``).
    Returns:
        (batch, N) filtered audio.
    """
    if signal.ndim != 2:
        raise ValueError(f"ltv_fir: signal must be (batch, samples), got shape {tuple(signal.shape)}")
    if impulse_responses.ndim != 3:
        raise ValueError(
            "ltv_fir: impulse_responses must be (batch, frames, ir_length), "
            f"got shape {tuple(impulse_responses.shape)}"
        )
    hop_length = int(hop_length)
    if hop_length < 1:
        raise ValueError(f"ltv_fir: hop_length must be >= 1, got {hop_length}")
    batch, n_samples = signal.shape
    ir_batch, n_frames, ir_length = impulse_responses.shape
    if n_samples == 0 or n_frames == 0 or ir_length == 0:
        raise ValueError(
            f"ltv_fir: empty input (samples {n_samples}, frames {n_frames}, ir_length {ir_length})"
        )
    if ir_batch != batch:
        if ir_batch != 1:
            raise ValueError(
                f"ltv_fir: batch of impulse_responses ({ir_batch}) does not match the signal's ({batch})"
            )
        impulse_responses = impulse_responses.expand(batch, n_frames, ir_length)
    dtype = torch.promote_types(signal.dtype, impulse_responses.dtype)
    signal, impulse_responses = signal.to(dtype), impulse_responses.to(dtype)

    # Frames whose windows overlap [0, N): 0 .. floor((N - 1) / hop) + 1.
    n_used = (n_samples - 1) // hop_length + 2
    if n_frames >= n_used:
        impulse_responses = impulse_responses[:, :n_used]
    else:
        held = impulse_responses[:, -1:].expand(batch, n_used - n_frames, ir_length)
        impulse_responses = torch.cat([impulse_responses, held], dim=1)

    # Segment n covers samples [(n - 1) * hop, (n + 1) * hop).
    seg = 2 * hop_length
    padded = F.pad(signal, (hop_length, (n_used + 1) * hop_length - hop_length - n_samples))
    frames = padded.unfold(-1, seg, hop_length)  # (batch, n_used, 2 * hop)
    frames = frames * _hann_ola_window(hop_length, dtype=dtype, device=signal.device)

    conv_length = seg + ir_length - 1
    n_fft = next_fast_len(conv_length)
    spectrum = torch.fft.rfft(frames, n=n_fft) * torch.fft.rfft(impulse_responses, n=n_fft)
    pieces = torch.fft.irfft(spectrum, n=n_fft)[..., :conv_length]  # (batch, n_used, conv_length)

    out_length = (n_used - 1) * hop_length + conv_length
    summed = F.fold(
        pieces.transpose(1, 2),
        output_size=(1, out_length),
        kernel_size=(1, conv_length),
        stride=(1, hop_length),
    ).reshape(batch, out_length)
    start = hop_length + (ir_length // 2 if centred else 0)
    return summed[:, start:start + n_samples]


def filtered_noise(
    magnitudes: torch.Tensor,
    *,
    hop_length: int,
    generator: Union[torch.Generator, int, None] = None,
    ir_length: Optional[int] = None,
    n_samples: Optional[int] = None,
) -> torch.Tensor:
    """Uniform noise shaped by per-frame frequency-sampling FIR filters.

    The noise is ``2 * torch.rand(batch, n_samples, generator=generator) - 1``
    (uniform in [-1, 1), drawn on the generator's device, in the magnitudes' dtype),
    filtered by ``frequency_sampling_fir(magnitudes, ir_length=ir_length)`` through
    ``ltv_fir(..., centred=True)``. With all magnitudes equal to 1 the output is the
    noise itself.

    Args:
        magnitudes: (batch, F, B) non-negative linear magnitudes per frame, bands
            linear from 0 Hz to Nyquist.
        hop_length: samples per frame.
        generator: ``torch.Generator`` or integer seed for repeatable noise; None
            uses the global RNG.
        ir_length: taps of each filter, default ``2 * (B - 1)``.
        n_samples: output length, default ``F * hop_length``.
    Returns:
        (batch, n_samples) filtered noise.
    """
    if magnitudes.ndim != 3:
        raise ValueError(
            f"filtered_noise: magnitudes must be (batch, frames, n_bands), got shape {tuple(magnitudes.shape)}"
        )
    batch, n_frames, _ = magnitudes.shape
    n_samples = n_frames * int(hop_length) if n_samples is None else int(n_samples)
    if n_samples < 1:
        raise ValueError(f"filtered_noise: n_samples must be >= 1, got {n_samples}")
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    noise_device = generator.device if generator is not None else magnitudes.device
    noise = torch.rand(
        batch, n_samples, generator=generator, dtype=magnitudes.dtype, device=noise_device
    ).to(magnitudes.device)
    noise = 2.0 * noise - 1.0
    irs = frequency_sampling_fir(magnitudes, ir_length=ir_length)
    return ltv_fir(noise, irs, hop_length=hop_length, centred=True)
