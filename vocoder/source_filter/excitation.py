"""Excitation sources for source-filter synthesis: band-limited pulse trains, glottal flow, noise.

Every periodic source is a sum of the harmonics of f0 that lie below Nyquist, so no
source aliases at any f0 up to Nyquist. Symbols in the shape docstrings:

    B   batch
    F   frames; frame ``n`` is centred on sample ``n * hop_length``
    N   samples, ``F * hop_length``
    K   harmonics

Phase and amplitude follow :func:`vocoder.dsp.oscillators.harmonic_synthesis`: the
phase ``phi`` of the fundamental is the exact integral of the linearly interpolated
f0 (accumulated in float64 per frame), and harmonic ``k`` is present in the segment
between frames ``n`` and ``n + 1`` iff ``k * max(f0[n], f0[n + 1]) < sample_rate / 2``.

Voicing. ``f0_hz = 0`` marks unvoiced frames, where every periodic source is silent.
The phase runs on through unvoiced frames at the f0 of the nearest voiced frame
(:func:`fill_unvoiced_f0`), so a voiced stretch fades out at its own pitch instead of
gliding down to 0 Hz; the voiced/unvoiced gate (1 voiced, 0 unvoiced) is interpolated
linearly between frame centres like the harmonic amplitudes.

Definitions (``phi`` the phase of the fundamental, ``K(t)`` the number of harmonics
below Nyquist):

- pulse train: ``sum_{k=1}^{K} cos(k phi)`` (equal-amplitude cosines), normalised per
  ``normalize``: ``"peak"`` divides by ``K`` (peak 1 at ``phi = 0``), ``"white"``
  multiplies by ``2 sqrt(f0 / sr)`` (each harmonic then carries the power that
  unit-variance white noise has in a band ``f0`` wide, WORLD's pulse level),
  ``"none"`` leaves amplitude 1 per harmonic. Evaluated in closed form
  (Dirichlet kernel), O(N) whatever K.
- combtooth: ``(f0 / sr) * (1 + 2 sum_{k=1}^{K} cos(k phi))``, the periodic sinc (the
  Fourier series of a comb of ``sinc(sr * t)`` pulses, one per period). DDSP-SVC's
  "combtooth" exciter (CombSub) is ``sinc(sr * tau)`` with ``tau`` the time to the
  nearest pulse, i.e. the same comb with each sinc cut at +-half a period; this is its
  alias-free limit: flat harmonics ``2 f0 / sr``, DC ``f0 / sr``, peak <= 1.
- sawtooth: ``-(2 / pi) sum_{k=1}^{K} sin(k phi) / k``, the band-limited Fourier series
  of the rising ramp ``phi / pi - 1`` on ``[0, 2 pi)`` (from -1 at the start of a period
  to +1 at its end, the jump at ``phi = 0``).
- glottal flow derivative: Liljencrants-Fant (LF) model shaped by Fant's ``Rd``,
  rendered from its exact Fourier series (see :func:`lf_harmonics`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..dsp.filters import frequency_sampling_fir, ltv_fir
from ..dsp.oscillators import harmonic_phase, harmonic_synthesis
from ..dsp.upsample import upsample_linear

__all__ = [
    "fill_unvoiced_f0",
    "harmonic_count",
    "pulse_train",
    "combtooth",
    "sawtooth",
    "RD_RANGE",
    "lf_parameters",
    "lf_harmonics",
    "lf_waveform",
    "glottal_flow_derivative",
    "white_noise",
    "mix_excitation",
]

TWO_PI = 2.0 * math.pi
_NORMALIZE = ("peak", "white", "none")
#: Range of Rd over which Fant's (1995) Rd -> (Ra, Rk, Rg) relations hold; Rd is clamped to it.
RD_RANGE = (0.3, 2.7)


# --------------------------------------------------------------------------- helpers


def _check_f0(f0_hz: torch.Tensor, sample_rate: float, hop_length: int, name: str) -> None:
    if not isinstance(f0_hz, torch.Tensor) or f0_hz.dim() != 2 or f0_hz.shape[1] < 1:
        shape = tuple(f0_hz.shape) if isinstance(f0_hz, torch.Tensor) else type(f0_hz).__name__
        raise ValueError(f"{name}: f0_hz must be a (batch, frames) tensor, got {shape}")
    if not f0_hz.is_floating_point():
        raise ValueError(f"{name}: f0_hz must be a floating tensor, got {f0_hz.dtype}")
    if sample_rate <= 0:
        raise ValueError(f"{name}: sample_rate must be positive, got {sample_rate}")
    if int(hop_length) != hop_length or hop_length < 1:
        raise ValueError(f"{name}: hop_length must be a positive integer, got {hop_length}")


def fill_unvoiced_f0(f0_hz: torch.Tensor) -> torch.Tensor:
    """f0 with every unvoiced frame (f0 <= 0) set to the nearest earlier voiced frame's f0.

    Leading unvoiced frames take the first voiced frame's f0; rows with no voiced frame
    stay 0. Values are gathered from the input, so gradients flow to the voiced frames.

    Args:
        f0_hz: (B, F) fundamental frequency, 0 where unvoiced.
    Returns:
        (B, F) f0 with unvoiced gaps filled.
    """
    voiced = f0_hz > 0
    n_frames = f0_hz.shape[1]
    idx = torch.arange(n_frames, device=f0_hz.device).expand_as(f0_hz)
    last = torch.where(voiced, idx, torch.full_like(idx, -1)).cummax(dim=1).values
    # Leading gaps: the first voiced frame (argmax of the bool row).
    first = voiced.to(torch.int8).argmax(dim=1, keepdim=True).expand_as(idx)
    source = torch.where(last >= 0, last, first)
    return torch.gather(f0_hz, 1, source)


def harmonic_count(f0_hz: torch.Tensor, *, sample_rate: float) -> torch.Tensor:
    """Harmonics below Nyquist in each frame segment (``segment_nyquist_mask`` counted).

    Segment ``n`` runs from frame ``n`` to frame ``n + 1`` (the last frame is held);
    harmonic ``k`` is kept iff ``k * max(f0[n], f0[n + 1]) < sample_rate / 2``.

    Args:
        f0_hz: (B, F) f0 in Hz.
    Returns:
        (B, F) integer-valued tensor (dtype of f0), 0 where both ends have f0 <= 0.
    """
    f = f0_hz.detach()
    peak = torch.maximum(f, torch.cat([f[:, 1:], f[:, -1:]], dim=1))
    nyquist = sample_rate / 2.0
    count = torch.ceil(nyquist / peak.clamp_min(1e-30)) - 1.0
    return torch.where(peak > 0, count.clamp_min(0.0), torch.zeros_like(count))


def _gate(f0_hz: torch.Tensor, hop_length: int) -> torch.Tensor:
    """(B, N) voicing gate: 1 at voiced frame centres, 0 at unvoiced, linear between."""
    return upsample_linear((f0_hz > 0).to(f0_hz.dtype), hop_length=hop_length)


def _dirichlet(phase: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``sum_{k=1}^{K} cos(k * phase)`` in closed form, stable near ``phase = 0``.

    ``sin((K + 1/2) psi) / (2 sin(psi / 2)) - 1/2`` with ``psi`` the phase wrapped to
    [-pi, pi); where ``|(K + 1/2) psi| < 0.1`` the Taylor series
    ``K - psi^2 S2 / 2 + psi^4 S4 / 24`` (``S2 = sum k^2``, ``S4 = sum k^4``) is used,
    whose truncation error there is below 1e-9 K.
    """
    psi = torch.where(phase >= math.pi, phase - TWO_PI, phase)
    half = count + 0.5
    x = half * psi
    small = x.abs() < 0.1
    # Double-where: keep the unused branch finite so its gradient is finite too.
    safe_psi = torch.where(small, torch.ones_like(psi), psi)
    closed = torch.sin(half * safe_psi) / (2.0 * torch.sin(0.5 * safe_psi)) - 0.5
    k, k1, k2 = count, count + 1.0, 2.0 * count + 1.0
    s2 = k * k1 * k2 / 6.0
    s4 = k * k1 * k2 * (3.0 * k * k + 3.0 * k - 1.0) / 30.0
    p2 = psi * psi
    taylor = k - 0.5 * p2 * s2 + p2 * p2 * s4 / 24.0
    return torch.where(small, taylor, closed)


def _cosine_sum(f0_hz, *, sample_rate, hop_length, initial_phase):
    """Per-sample phase-driven ``sum cos(k phi)`` over the harmonics below Nyquist.

    Returns (sum (B, N), count (B, N) harmonics per sample, filled f0 (B, F)).
    """
    filled = fill_unvoiced_f0(f0_hz)
    phase = harmonic_phase(filled, sample_rate=sample_rate, hop_length=hop_length,
                           initial_phase=initial_phase, dtype=f0_hz.dtype)  # (B, F, hop)
    count = harmonic_count(filled, sample_rate=sample_rate).unsqueeze(-1)  # (B, F, 1)
    total = _dirichlet(phase, count)
    batch = f0_hz.shape[0]
    return total.reshape(batch, -1), count.expand_as(phase).reshape(batch, -1), filled


# --------------------------------------------------------------------------- pulse sources


def pulse_train(
    f0_hz: torch.Tensor,
    *,
    sample_rate: float,
    hop_length: int,
    normalize: str = "peak",
    initial_phase: torch.Tensor | None = None,
) -> torch.Tensor:
    """Band-limited pulse train: equal-amplitude cosines of every harmonic below Nyquist.

    ``y = g(t) * s(t) * sum_{k=1}^{K} cos(k phi)`` with ``g`` the voicing gate and the
    scale ``s`` set by ``normalize``: ``"peak"`` ``1 / K`` (peak 1 at each pulse),
    ``"white"`` ``2 sqrt(f0(t) / sample_rate)`` (per-harmonic power ``2 f0 / sr``, that
    of unit-variance white noise in a band f0 wide: the level WORLD's synthesis gives a
    pulse, so filtering by ``sqrt(sp)`` reproduces WORLD's level), ``"none"`` 1. No DC.
    Evaluated in closed form (Dirichlet kernel), so the cost does not grow with K.

    Args:
        f0_hz: (B, F) fundamental frequency in Hz, 0 where unvoiced.
        sample_rate: samples per second.
        hop_length: samples per frame.
        normalize: "peak", "white" or "none".
        initial_phase: (B,) phase at sample 0 in radians (default 0).
    Returns:
        (B, F * hop_length) excitation.
    """
    _check_f0(f0_hz, sample_rate, hop_length, "pulse_train")
    if normalize not in _NORMALIZE:
        raise ValueError(f"pulse_train: normalize must be one of {_NORMALIZE}, got {normalize!r}")
    total, count, filled = _cosine_sum(f0_hz, sample_rate=sample_rate, hop_length=hop_length,
                                       initial_phase=initial_phase)
    gate = _gate(f0_hz, hop_length)
    if normalize == "peak":
        scale = 1.0 / count.clamp_min(1.0)
    elif normalize == "white":
        f = upsample_linear(filled, hop_length=hop_length)
        scale = 2.0 * torch.sqrt(f.clamp_min(0.0) / sample_rate)
    else:
        scale = torch.ones_like(total)
    return gate * scale * total


def combtooth(
    f0_hz: torch.Tensor,
    *,
    sample_rate: float,
    hop_length: int,
    initial_phase: torch.Tensor | None = None,
) -> torch.Tensor:
    """Band-limited combtooth: the periodic sinc, one ``sinc(sr * t)`` pulse per period.

    ``y = g(t) * (f0(t) / sr) * (1 + 2 sum_{k=1}^{K} cos(k phi))``: DC ``f0 / sr`` and
    every harmonic below Nyquist at ``2 f0 / sr`` (the Fourier series of the sinc comb;
    see the module docstring for DDSP-SVC's truncated-sinc version). Peak
    ``(2K + 1) f0 / sr <= 1`` at each pulse.

    Args:
        f0_hz: (B, F) fundamental frequency in Hz, 0 where unvoiced.
        sample_rate: samples per second.
        hop_length: samples per frame.
        initial_phase: (B,) phase at sample 0 (default 0).
    Returns:
        (B, F * hop_length) excitation.
    """
    _check_f0(f0_hz, sample_rate, hop_length, "combtooth")
    total, _, filled = _cosine_sum(f0_hz, sample_rate=sample_rate, hop_length=hop_length,
                                   initial_phase=initial_phase)
    f = upsample_linear(filled, hop_length=hop_length)
    return _gate(f0_hz, hop_length) * (f / sample_rate) * (1.0 + 2.0 * total)


#: Default harmonic banks cover every harmonic below Nyquist for f0 down to this (Hz);
#: a lower f0 (e.g. a network's output early in training) loses its top harmonics
#: instead of making the bank arbitrarily large.
MIN_BANK_F0_HZ = 20.0


def _default_harmonics(f0_hz: torch.Tensor, sample_rate: float) -> int:
    count = harmonic_count(fill_unvoiced_f0(f0_hz), sample_rate=sample_rate)
    largest = int(count.max().item()) if count.numel() else 1
    return max(1, min(largest, math.ceil(sample_rate / 2.0 / MIN_BANK_F0_HZ)))


def sawtooth(
    f0_hz: torch.Tensor,
    *,
    sample_rate: float,
    hop_length: int,
    n_harmonics: int | None = None,
    initial_phase: torch.Tensor | None = None,
) -> torch.Tensor:
    """Band-limited rising sawtooth: ``-(2 / pi) sum_{k=1}^{K} sin(k phi) / k``.

    The Fourier series of ``phi / pi - 1`` for ``phi`` in ``[0, 2 pi)``: it ramps up from
    -1 to +1 over each period and jumps down at ``phi = 0``. Harmonic ``k`` has
    amplitude ``2 / (pi k)`` and phase ``-pi/2`` relative to a sine (sign ``-1``), and
    every harmonic below Nyquist is kept. Rendered by the harmonic bank.

    Args:
        f0_hz: (B, F) fundamental frequency in Hz, 0 where unvoiced.
        sample_rate: samples per second.
        hop_length: samples per frame.
        n_harmonics: harmonics in the bank; default enough for the lowest voiced f0
            down to ``MIN_BANK_F0_HZ`` = 20 Hz (fewer drops the top harmonics, still
            without aliasing).
        initial_phase: (B,) phase at sample 0 (default 0).
    Returns:
        (B, F * hop_length) excitation.
    """
    _check_f0(f0_hz, sample_rate, hop_length, "sawtooth")
    n_harm = _default_harmonics(f0_hz, sample_rate) if n_harmonics is None else int(n_harmonics)
    if n_harm < 1:
        raise ValueError(f"sawtooth: n_harmonics must be >= 1, got {n_harmonics}")
    k = torch.arange(1, n_harm + 1, dtype=f0_hz.dtype, device=f0_hz.device)
    voiced = (f0_hz > 0).to(f0_hz.dtype).unsqueeze(-1)
    amps = voiced * (-2.0 / math.pi) / k
    return harmonic_synthesis(fill_unvoiced_f0(f0_hz), amps, sample_rate=sample_rate,
                              hop_length=hop_length, initial_phase=initial_phase)


# --------------------------------------------------------------------------- LF glottal model


def _bisect(fn, lo: torch.Tensor, hi: torch.Tensor, iterations: int = 64) -> torch.Tensor:
    """Root of a function that is positive at ``lo`` and negative at ``hi`` (elementwise)."""
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        positive = fn(mid) > 0
        lo = torch.where(positive, mid, lo)
        hi = torch.where(positive, hi, mid)
    return 0.5 * (lo + hi)


def _implicit(root: torch.Tensor, residual, step: float = 1e-6) -> torch.Tensor:
    """Attach the implicit-function gradient to a root found without autograd.

    ``root - G(root) / G'(root)`` with ``G'`` a detached central difference: its value
    is ``root`` (``G(root) = 0``) and its derivative w.r.t. the parameters inside ``G``
    is ``-dG/dtheta / G'``, the implicit-function theorem.
    """
    root = root.detach()
    with torch.no_grad():
        slope = (residual(root + step) - residual(root - step)) / (2.0 * step)
    return root - residual(root) / slope


def lf_parameters(rd: torch.Tensor) -> dict[str, torch.Tensor]:
    """LF model timing and shape parameters from Fant's Rd, per period ``T0 = 1``.

    Fant (1995), "The LF-model revisited": ``Ra = (-1 + 4.8 Rd) / 100``,
    ``Rk = (22.4 + 11.8 Rd) / 100``, and ``Rg`` from
    ``Rd = (1 / 0.11) (0.5 + 1.2 Rk) (Rk / (4 Rg) + Ra)``; then ``tp = 1 / (2 Rg)``,
    ``te = tp (1 + Rk)``, ``ta = Ra``. With ``Ee = 1`` the flow derivative is

        E(t) = E0 exp(alpha t) sin(wg t),                       0 <= t <= te
        E(t) = -(exp(-eps (t - te)) - exp(-eps (1 - te))) / (eps ta),  te < t <= 1

    with ``wg = pi / tp``, ``E0 = -1 / (exp(alpha te) sin(wg te))`` (so ``E(te) = -1``),
    ``eps`` solving ``eps ta = 1 - exp(-eps (1 - te))`` and ``alpha`` the zero-net-flow
    condition ``integral_0^1 E = 0``. Both roots are found by bisection in float64 and
    carry implicit-function gradients, so everything is differentiable in Rd.

    Args:
        rd: (...) Rd; clamped to ``RD_RANGE`` = [0.3, 2.7], where Fant's relations hold
            (its gradient is zero outside).
    Returns:
        dict of (...) float64 tensors: ``rd`` (clamped), ``tp``, ``te``, ``ta``,
        ``alpha``, ``epsilon``, ``e0``, ``wg``.
    """
    rd = torch.as_tensor(rd).double().clamp(*RD_RANGE)
    ra = (-1.0 + 4.8 * rd) / 100.0
    rk = (22.4 + 11.8 * rd) / 100.0
    rg = rk / (4.0 * (0.11 * rd / (0.5 + 1.2 * rk) - ra))
    tp = 1.0 / (2.0 * rg)
    te = tp * (1.0 + rk)
    ta = ra
    closed = 1.0 - te

    # eps: u = eps * ta solves u = 1 - exp(-u * closed / ta), a unique root in (0, 1).
    def eps_residual(u):
        return 1.0 - torch.exp(-u * closed / ta) - u

    with torch.no_grad():
        u0 = _bisect(eps_residual, torch.full_like(rd, 1e-9), torch.ones_like(rd))
    u = _implicit(u0, eps_residual)
    eps = u / ta

    wg = math.pi / tp
    s, c = torch.sin(wg * te), torch.cos(wg * te)
    decay = torch.exp(-eps * closed)
    area_return = -((1.0 - decay) / eps - closed * decay) / (eps * ta)

    def area(alpha):
        # integral_0^te E0 exp(alpha t) sin(wg t) dt with E0 = -exp(-alpha te) / s.
        open_part = -((alpha * s - wg * c) + wg * torch.exp(-alpha * te)) / ((alpha * alpha + wg * wg) * s)
        return open_part + area_return

    with torch.no_grad():
        a0 = _bisect(area, torch.full_like(rd, -20.0), torch.full_like(rd, 60.0))
    alpha = _implicit(a0, area)
    e0 = -torch.exp(-alpha * te) / s
    return {"rd": rd, "tp": tp, "te": te, "ta": ta, "alpha": alpha, "epsilon": eps,
            "e0": e0, "wg": wg}


def lf_harmonics(rd: torch.Tensor, n_harmonics: int) -> torch.Tensor:
    """Fourier coefficients of the LF flow derivative, computed analytically.

    ``c_k = integral_0^1 E(t) exp(-2 pi i k t) dt`` for ``k = 1 .. n_harmonics`` (one
    period ``T0 = 1``, ``Ee = 1``; ``c_0 = 0`` by the zero-net-flow condition), so the
    periodic waveform is ``E(phi) = sum_k 2 Re(c_k exp(i k phi))`` with ``phi = 2 pi t``
    (opening at ``phi = 0``, the main excitation at ``phi = 2 pi te``).

    Why analytic rather than the FFT of one sampled period: the integrals of
    exponentials times sines have closed forms, so the coefficients are exact at any
    k (an FFT of a sampled period aliases, since E has a corner at ``te`` and its
    spectrum decays only as 1/k^2), cost O(K) per frame with no FFT size to choose,
    and are differentiable in Rd through :func:`lf_parameters`.

    Args:
        rd: (...) Rd per frame (clamped to ``RD_RANGE``).
        n_harmonics: K.
    Returns:
        (..., K) complex128 coefficients.
    """
    p = lf_parameters(rd)
    te, ta, alpha, eps, wg, e0 = (p[key].unsqueeze(-1) for key in ("te", "ta", "alpha", "epsilon", "wg", "e0"))
    k = torch.arange(1, int(n_harmonics) + 1, dtype=torch.float64, device=te.device)
    beta = TWO_PI * k
    j = torch.complex(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
    sg = torch.sin(wg * te)
    # Open phase: E0/(2i) [ (exp(s1 te) - 1)/s1 - (exp(s2 te) - 1)/s2 ],
    # s1 = alpha + i (wg - beta), s2 = alpha - i (wg + beta); E0 exp(alpha te) = -1/sg.
    s1 = alpha + j * (wg - beta)
    s2 = alpha - j * (wg + beta)
    term1 = (-torch.exp(j * (wg - beta) * te) / sg - e0) / s1
    term2 = (-torch.exp(-j * (wg + beta) * te) / sg - e0) / s2
    open_part = (term1 - term2) / (2.0 * j)
    # Return phase: -(exp(-i beta te) / (eps ta)) [ (1 - exp(-(eps + i beta) D)) / (eps + i beta)
    #                                              - exp(-eps D) (1 - exp(-i beta D)) / (i beta) ].
    closed = 1.0 - te
    r = eps + j * beta
    ret = (1.0 - torch.exp(-r * closed)) / r - torch.exp(-eps * closed) * (1.0 - torch.exp(-j * beta * closed)) / (j * beta)
    return_part = -torch.exp(-j * beta * te) * ret / (eps * ta)
    return open_part + return_part


def lf_waveform(t: torch.Tensor, rd: torch.Tensor) -> torch.Tensor:
    """The continuous LF flow derivative at times ``t`` (in periods, ``Ee = 1``); reference only.

    Args:
        t: (..., T) times in [0, 1); values outside are wrapped.
        rd: (...) Rd (broadcast against ``t``'s leading dimensions).
    Returns:
        (..., T) float64 E(t), not band-limited.
    """
    p = {key: v.unsqueeze(-1) for key, v in lf_parameters(rd).items()}
    t = torch.remainder(torch.as_tensor(t, dtype=torch.float64), 1.0)
    open_part = p["e0"] * torch.exp(p["alpha"] * t) * torch.sin(p["wg"] * t)
    closing = -(torch.exp(-p["epsilon"] * (t - p["te"])) - torch.exp(-p["epsilon"] * (1.0 - p["te"])))
    closing = closing / (p["epsilon"] * p["ta"])
    return torch.where(t <= p["te"], open_part, closing)


def glottal_flow_derivative(
    f0_hz: torch.Tensor,
    rd: torch.Tensor | float,
    *,
    sample_rate: float,
    hop_length: int,
    n_harmonics: int | None = None,
    initial_phase: torch.Tensor | None = None,
) -> torch.Tensor:
    """Band-limited LF glottal flow derivative with per-frame Rd.

    ``y = g(t) * sum_{k=1}^{K} 2 Re(c_k(Rd) exp(i k phi))`` with ``c_k`` from
    :func:`lf_harmonics` (``Ee = 1``: the continuous waveform is -1 at the main
    excitation ``te``),
    every harmonic below Nyquist kept, rendered by the harmonic bank with sine and
    cosine terms. Differentiable in f0 and Rd.

    Args:
        f0_hz: (B, F) fundamental frequency in Hz, 0 where unvoiced.
        rd: (B, F) Rd per frame or a float (clamped to ``RD_RANGE``; larger is laxer
            phonation: more open quotient, steeper spectral tilt).
        sample_rate: samples per second.
        hop_length: samples per frame.
        n_harmonics: harmonics in the bank; default enough for the lowest voiced f0
            down to ``MIN_BANK_F0_HZ`` = 20 Hz.
        initial_phase: (B,) phase at sample 0 (default 0).
    Returns:
        (B, F * hop_length) excitation in the dtype of ``f0_hz``.
    """
    _check_f0(f0_hz, sample_rate, hop_length, "glottal_flow_derivative")
    rd = torch.as_tensor(rd, dtype=f0_hz.dtype, device=f0_hz.device)
    if rd.dim() == 0:
        rd = rd.expand_as(f0_hz)
    if rd.shape != f0_hz.shape:
        raise ValueError(f"glottal_flow_derivative: rd must be a float or (batch, frames) "
                         f"{tuple(f0_hz.shape)}, got {tuple(rd.shape)}")
    n_harm = _default_harmonics(f0_hz, sample_rate) if n_harmonics is None else int(n_harmonics)
    if n_harm < 1:
        raise ValueError(f"glottal_flow_derivative: n_harmonics must be >= 1, got {n_harmonics}")
    coeffs = lf_harmonics(rd, n_harm)
    voiced = (f0_hz > 0).to(torch.float64).unsqueeze(-1)
    sin_amps = (-2.0 * coeffs.imag * voiced).to(f0_hz.dtype)
    cos_amps = (2.0 * coeffs.real * voiced).to(f0_hz.dtype)
    return harmonic_synthesis(fill_unvoiced_f0(f0_hz), sin_amps, sample_rate=sample_rate,
                              hop_length=hop_length, initial_phase=initial_phase,
                              cos_amplitudes=cos_amps)


# --------------------------------------------------------------------------- noise and mixing


def white_noise(
    batch: int,
    n_samples: int,
    *,
    distribution: str = "gaussian",
    generator: torch.Generator | int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """White noise excitation: ``"gaussian"`` (unit variance) or ``"uniform"`` in [-1, 1).

    Args:
        batch, n_samples: output shape.
        distribution: "gaussian" or "uniform".
        generator: ``torch.Generator`` or integer seed for repeatable noise; None uses
            the global RNG. The noise is drawn on the generator's device.
        dtype, device: of the result.
    Returns:
        (batch, n_samples) noise.
    """
    if distribution not in ("gaussian", "uniform"):
        raise ValueError(f"white_noise: distribution must be 'gaussian' or 'uniform', got {distribution!r}")
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    draw_device = generator.device if generator is not None else device
    if distribution == "gaussian":
        x = torch.randn(batch, n_samples, generator=generator, dtype=dtype, device=draw_device)
    else:
        x = 2.0 * torch.rand(batch, n_samples, generator=generator, dtype=dtype, device=draw_device) - 1.0
    return x.to(device) if device is not None else x


def mix_excitation(
    harmonic: torch.Tensor,
    noise: torch.Tensor,
    aperiodicity: torch.Tensor,
    *,
    hop_length: int,
    n_fft: int | None = None,
) -> torch.Tensor:
    """Voiced/unvoiced mixing per frequency band, WORLD's convention.

    ``harmonic`` is filtered by ``sqrt(1 - ap^2)`` and ``noise`` by ``ap`` (``ap`` is an
    amplitude ratio, as in WORLD's synthesis, so the two gains are power-complementary)
    with zero-phase, Hann-windowed frequency-sampling FIRs through :func:`ltv_fir`, and
    the two are summed. The synthesizer in :mod:`.world_synth` does the same mixing on
    the spectral envelope directly.

    Args:
        harmonic: (B, N) periodic excitation.
        noise: (B, N) noise excitation.
        aperiodicity: (B, F, A) aperiodicity in [0, 1] at ``A >= 2`` bands spaced
            linearly from 0 Hz to Nyquist (e.g. WORLD's ``ap``).
        hop_length: samples per frame.
        n_fft: FIR length; the bands are interpolated linearly onto ``n_fft // 2 + 1``
            bins. Default ``2 * (A - 1)``, at least 64.
    Returns:
        (B, N) mixed excitation.
    """
    if harmonic.shape != noise.shape or harmonic.dim() != 2:
        raise ValueError(f"mix_excitation: harmonic {tuple(harmonic.shape)} and noise "
                         f"{tuple(noise.shape)} must be equal (batch, samples) shapes")
    if aperiodicity.dim() != 3 or aperiodicity.shape[-1] < 2:
        raise ValueError(f"mix_excitation: aperiodicity must be (batch, frames, bands >= 2), "
                         f"got {tuple(aperiodicity.shape)}")
    n_bands = aperiodicity.shape[-1]
    n_fft = max(64, 2 * (n_bands - 1)) if n_fft is None else int(n_fft)
    ap = aperiodicity.clamp(0.0, 1.0)
    n_bins = n_fft // 2 + 1
    if n_bins != n_bands:
        lead = ap.shape[:-1]
        ap = F.interpolate(ap.reshape(-1, 1, n_bands), size=n_bins, mode="linear",
                           align_corners=True).reshape(*lead, n_bins)
    periodic_gain = torch.sqrt((1.0 - ap * ap).clamp_min(1e-12))
    fir_h = frequency_sampling_fir(periodic_gain, ir_length=n_fft)
    fir_n = frequency_sampling_fir(ap, ir_length=n_fft)
    return (ltv_fir(harmonic, fir_h, hop_length=hop_length, centred=True)
            + ltv_fir(noise, fir_n, hop_length=hop_length, centred=True))
