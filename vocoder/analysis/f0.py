"""Fundamental frequency (f0) and voicing on the vocoder's frame grid.

Four estimators share one interface, :func:`estimate_f0`:

``"harvest"``
    WORLD Harvest (``pyworld.harvest``): robust, voices generously; the default.
``"dio"``
    WORLD DIO refined by StoneMask (``pyworld.dio`` + ``pyworld.stonemask``): fast.
``"praat_ac"``
    Praat's autocorrelation method (``parselmouth.Sound.to_pitch_ac``).
``"praat_cc"``
    Praat's cross-correlation method (``parselmouth.Sound.to_pitch_cc``).

Every method returns values on the grid of docs/architecture.md: frame ``n`` is
centred on sample ``n * hop_length`` (time ``n * hop_length / sample_rate`` seconds),
and ``N`` samples give exactly ``ceil(N / hop_length)`` frames. WORLD analyses on that
axis directly (``frame_period = 1000 * hop_length / sample_rate`` ms). Praat places
its frames on an axis of its own (centred in the signal, half an analysis window in
from each end); the signal is padded with silence by half a window on each side so
that Praat's frames cover the whole grid, and the track is then sampled at the grid
times (see :func:`estimate_f0`).
"""
from __future__ import annotations

import math

import numpy as np

from ..audio import AudioError, check_audio

__all__ = [
    "F0_METHODS",
    "estimate_f0",
    "interpolate_log_f0",
    "min_f0_samples",
    "check_f0_audio",
    "check_f0_range",
    "check_rate_and_hop",
]

#: Names accepted by ``estimate_f0(method=...)``.
F0_METHODS = ("harvest", "dio", "praat_ac", "praat_cc")

# Shortest input, in periods of f0_min: one full Praat autocorrelation window
# (3 periods), which is also enough for Harvest and DIO to see the lowest f0 repeat.
_MIN_PERIODS = 3.0

# Praat analysis window in periods of pitch_floor: "ac" uses 3 periods; "cc" uses one
# period plus the longest lag (one more period).
_PRAAT_WINDOW_PERIODS = {"praat_ac": 3.0, "praat_cc": 2.0}


def min_f0_samples(*, sample_rate: int, f0_min: float) -> int:
    """Shortest signal :func:`estimate_f0` accepts: three periods of ``f0_min``.

    Example: 739 samples (46 ms) at 16 kHz with ``f0_min = 65``.
    """
    return int(math.ceil(_MIN_PERIODS * sample_rate / f0_min))


def estimate_f0(
    audio,
    *,
    sample_rate: int,
    hop_length: int,
    method: str = "harvest",
    f0_min: float = 65.0,
    f0_max: float = 800.0,
    mix_channels: bool = False,
    voicing_threshold: float | None = None,
    name: str = "audio",
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate f0 and voicing of a mono signal on the frame grid.

    Frame ``n`` is centred on sample ``n * hop_length``. WORLD methods analyse at
    exactly those times. For Praat methods the signal is padded with silence by half
    an analysis window (plus one hop) on each side, Praat runs with
    ``time_step = hop_length / sample_rate``, and its track is sampled at the grid
    times: a grid frame is voiced when the nearest Praat frame is voiced, and its f0
    interpolates linearly between the two Praat frames around it (or takes the nearest
    one's value when only that one is voiced). Praat's analysis window is three
    periods of ``f0_min`` for ``"praat_ac"`` and two for ``"praat_cc"``; the
    cross-correlation estimate refers to a point about ``(1/f0_min - 1/f0) / 2``
    seconds before the frame centre (Praat's own convention, left as is: about 5 ms
    with the default ``f0_min``, a bias of well under 1% on ordinary glides).

    Args:
        audio: (samples,) mono signal, numpy array or tensor, any amplitude scale.
            A 2-D (samples, channels) or (channels, samples) array is averaged to mono
            when ``mix_channels`` is True and rejected otherwise.
        sample_rate: samples per second of ``audio`` (any rate; an integer).
        hop_length: samples between frames (an integer; 5 ms is WORLD's default).
        method: one of :data:`F0_METHODS`.
        f0_min: lowest f0 searched, Hz (> 0). Also sets the shortest accepted signal,
            :func:`min_f0_samples` (three periods of ``f0_min``).
        f0_max: highest f0 searched, Hz; above ``f0_min`` and below Nyquist.
        mix_channels: average multichannel input instead of rejecting it.
        voicing_threshold: Praat methods only: Praat's voicing threshold in [0, 1]
            (higher gives fewer voiced frames); None uses Praat's default, 0.45.
            WORLD methods make their own voicing decision and reject a value here.
        name: how the input is named in error messages (e.g. a file path).
    Returns:
        ``(f0_hz, vuv)``: ``f0_hz`` is a (frames,) float32 array in Hz, 0 where
        unvoiced; ``vuv`` is a (frames,) bool array, True where voiced
        (``vuv == (f0_hz > 0)``); ``frames = ceil(samples / hop_length)``.
    Raises:
        AudioError: (a ValueError) empty, non-finite, all-silent, multichannel
            (unless mixed) or too short audio.
        ValueError: unknown method, bad f0 range, sample rate, hop or threshold.
    """
    sample_rate, hop_length = check_rate_and_hop(sample_rate, hop_length)
    method = _check_method(method)
    f0_min, f0_max = check_f0_range(f0_min, f0_max, sample_rate=sample_rate)
    if voicing_threshold is not None:
        if not method.startswith("praat_"):
            raise ValueError(
                f"voicing_threshold applies to the Praat methods (praat_ac, praat_cc); "
                f"{method!r} makes its own voicing decision, so leave it as None"
            )
        if not 0.0 <= float(voicing_threshold) <= 1.0:
            raise ValueError(f"voicing_threshold must lie in [0, 1], got {voicing_threshold}")
    x = check_f0_audio(
        audio, sample_rate=sample_rate, f0_min=f0_min, mix_channels=mix_channels, name=name
    )
    n_frames = -(-x.size // hop_length)
    if method in ("harvest", "dio"):
        f0 = _world_f0(x, sample_rate, hop_length, method, f0_min, f0_max)
        f0 = _fit_length(f0, n_frames)
    else:
        f0 = _praat_f0(x, sample_rate, hop_length, n_frames, method, f0_min, f0_max,
                       voicing_threshold)
    f0 = np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0).astype(np.float32)
    return f0, f0 > 0


def interpolate_log_f0(f0_hz, vuv, *, fill_hz: float | None = None) -> np.ndarray:
    """Continuous natural-log f0 for model inputs.

    Voiced frames keep ``log(f0_hz)``; unvoiced gaps are filled by linear
    interpolation in the log domain between the voiced frames around them, and
    leading / trailing unvoiced frames hold the first / last voiced value.

    Args:
        f0_hz: (frames,) or (batch, frames) f0 in Hz; must be > 0 where ``vuv``.
        vuv: bool array of the same shape, True where voiced.
        fill_hz: f0 (Hz) used for a row with no voiced frame. None (default) raises
            instead, since there is nothing to interpolate from.
    Returns:
        float32 array shaped like ``f0_hz``: log f0 in log-Hz, finite everywhere.
    Raises:
        ValueError: shapes differ, non-finite f0, f0 <= 0 on a voiced frame, or a
            row without voiced frames when ``fill_hz`` is None.
    """
    f0 = _as_numpy(f0_hz).astype(np.float64)
    voiced = _as_numpy(vuv)
    if voiced.dtype != np.bool_:
        voiced = voiced.astype(bool)
    if f0.shape != voiced.shape:
        raise ValueError(f"f0_hz has shape {f0.shape} but vuv has shape {voiced.shape}")
    if f0.ndim not in (1, 2) or f0.shape[-1] == 0:
        raise ValueError(f"f0_hz must be (frames,) or (batch, frames) with frames > 0, "
                         f"got shape {f0.shape}")
    if not np.all(np.isfinite(f0)):
        raise ValueError("f0_hz contains NaN/inf values")
    if np.any(voiced & (f0 <= 0)):
        raise ValueError(f"f0_hz is <= 0 on {int(np.sum(voiced & (f0 <= 0)))} frames "
                         "marked voiced in vuv")
    if fill_hz is not None and not float(fill_hz) > 0:
        raise ValueError(f"fill_hz must be positive, got {fill_hz}")
    rows_f0 = f0.reshape(-1, f0.shape[-1])
    rows_v = voiced.reshape(-1, f0.shape[-1])
    out = np.empty_like(rows_f0)
    frames = np.arange(rows_f0.shape[1])
    for i, (row, v) in enumerate(zip(rows_f0, rows_v)):
        if not v.any():
            if fill_hz is None:
                where = "" if f0.ndim == 1 else f" (row {i})"
                raise ValueError(f"no voiced frame to interpolate log-f0 from{where}; "
                                 "pass fill_hz to use a constant instead")
            out[i] = math.log(fill_hz)
        else:
            out[i] = np.interp(frames, frames[v], np.log(row[v]))
    return out.reshape(f0.shape).astype(np.float32)


def check_rate_and_hop(sample_rate, hop_length) -> tuple[int, int]:
    """Validate ``sample_rate`` and ``hop_length`` as positive integers; return them as int."""
    out = []
    for label, value in (("sample_rate", sample_rate), ("hop_length", hop_length)):
        try:
            as_int = int(value)
            ok = as_int == value and as_int > 0 and not isinstance(value, bool)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
        out.append(as_int)
    return out[0], out[1]


def check_f0_range(f0_min, f0_max, *, sample_rate: int) -> tuple[float, float]:
    """Validate the f0 search range: ``0 < f0_min < f0_max < sample_rate / 2``."""
    f0_min, f0_max = float(f0_min), float(f0_max)
    if not (math.isfinite(f0_min) and f0_min > 0):
        raise ValueError(f"f0_min must be a positive number of Hz, got {f0_min}")
    if not (math.isfinite(f0_max) and f0_max > f0_min):
        raise ValueError(f"f0_max ({f0_max} Hz) must be greater than f0_min ({f0_min} Hz)")
    if f0_max >= sample_rate / 2:
        raise ValueError(f"f0_max ({f0_max} Hz) must be below Nyquist "
                         f"({sample_rate / 2} Hz at sample_rate={sample_rate})")
    return f0_min, f0_max


def check_f0_audio(audio, *, sample_rate: int, f0_min: float, mix_channels: bool = False,
                   name: str = "audio") -> np.ndarray:
    """Validate audio for f0 analysis and return it as a (samples,) float64 array.

    Rejects (with :class:`~vocoder.audio.AudioError`) empty, non-finite, multichannel
    (unless ``mix_channels``), all-silent audio, and audio shorter than
    :func:`min_f0_samples`, saying how long it must be and why.
    """
    x = check_audio(audio, name=name, mix_channels=mix_channels, allow_silent=False)
    need = min_f0_samples(sample_rate=sample_rate, f0_min=f0_min)
    if x.size < need:
        raise AudioError(
            f"{name}: audio too short for f0 analysis: {x.size} samples "
            f"({1000 * x.size / sample_rate:.1f} ms), need at least {need} "
            f"({1000 * need / sample_rate:.1f} ms, three periods of f0_min={f0_min:g} Hz "
            f"at sample_rate={sample_rate})"
        )
    return x.astype(np.float64)


def _check_method(method) -> str:
    if method not in F0_METHODS:
        raise ValueError(f"unknown f0 method {method!r}; choose one of {', '.join(F0_METHODS)}")
    return method


def _world_f0(x, sample_rate, hop_length, method, f0_min, f0_max) -> np.ndarray:
    import pyworld

    frame_period = 1000.0 * hop_length / sample_rate  # ms; frame n at n * hop samples
    if method == "harvest":
        f0, _ = pyworld.harvest(x, sample_rate, f0_floor=f0_min, f0_ceil=f0_max,
                                frame_period=frame_period)
    else:
        f0, times = pyworld.dio(x, sample_rate, f0_floor=f0_min, f0_ceil=f0_max,
                                frame_period=frame_period)
        f0 = pyworld.stonemask(x, f0, times, sample_rate)
    return f0


def _praat_f0(x, sample_rate, hop_length, n_frames, method, f0_min, f0_max,
              voicing_threshold) -> np.ndarray:
    import parselmouth

    window = _PRAAT_WINDOW_PERIODS[method] / f0_min  # seconds
    pad = int(math.ceil(0.5 * window * sample_rate)) + hop_length
    padded = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    sound = parselmouth.Sound(padded, sampling_frequency=sample_rate)
    options = dict(time_step=hop_length / sample_rate, pitch_floor=f0_min, pitch_ceiling=f0_max)
    if voicing_threshold is not None:
        options["voicing_threshold"] = float(voicing_threshold)
    if method == "praat_ac":
        pitch = sound.to_pitch_ac(**options)
    else:
        pitch = sound.to_pitch_cc(**options)
    # Praat's sample i of the padded sound sits at time x1 + i / sample_rate.
    positions = (np.asarray(pitch.xs()) - sound.x1) * sample_rate - pad  # in samples of x
    track = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    return _sample_track(positions, track, np.arange(n_frames) * float(hop_length))


def _sample_track(positions, track, targets) -> np.ndarray:
    """Resample an f0 track (0 = unvoiced) given at ``positions`` onto ``targets``.

    Voicing follows the nearest source frame; f0 interpolates linearly between the two
    source frames around a target when both are voiced, else takes the nearest one's.
    Targets outside the source range hold the edge frame.
    """
    if track.size == 1:
        return np.full(targets.shape, track[0])
    left = np.clip(np.searchsorted(positions, targets, side="right") - 1, 0, track.size - 2)
    frac = np.clip((targets - positions[left]) / (positions[left + 1] - positions[left]), 0, 1)
    a, b = track[left], track[left + 1]
    nearest = np.where(frac < 0.5, a, b)
    both = (a > 0) & (b > 0)
    out = np.where(both, a + (b - a) * frac, nearest)
    return np.where(nearest > 0, out, 0.0)


def _fit_length(values: np.ndarray, n_frames: int) -> np.ndarray:
    """Trim, or pad by holding the last frame, to exactly ``n_frames`` frames."""
    if values.shape[0] >= n_frames:
        return values[:n_frames]
    pad = np.repeat(values[-1:], n_frames - values.shape[0], axis=0)
    return np.concatenate([values, pad], axis=0)


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
