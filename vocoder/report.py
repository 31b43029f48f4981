"""HTML report of an experiment: metrics tables, audio players, spectrograms, f0 and
loudness plots (the library side of ``vocoder report EXP``).

Input is ``EXP/metrics.json``, written by ``vocoder evaluate``::

    {"version": 1,
     "sets": {SET: {"systems": {SYSTEM: {
         "ref": REF, "hyp": HYP, "settings": {...},
         "summary": {metric: value, ..., "count": n},
         "per_utt": {utt: {metric: value}},
         "failed": {utt: reason}}}}}}

``REF`` and ``HYP`` name a directory of ``<utt>.wav`` (or other audio files), a Kaldi
``wav.scp`` file, a data dir holding ``wav.scp`` (and optionally ``segments``) or one
audio file, read as ``vocoder evaluate`` reads them; a relative path is looked up
against the current working directory first, then against ``EXP``.

Output is a self-contained folder (default ``EXP/report``) that can be zipped and
moved: ``index.html`` with relative links only, PNG figures in ``img/`` and the audio
as 16-bit WAV in ``audio/``. The folder is built beside the target and swapped in at
the end, so a failed run leaves the previous report as it was.

Figures use matplotlib's object-oriented API with the Agg canvas (no pyplot, so the
caller's backend is left alone)::

    plot_spectrograms(signals, sample_rate=..., hop_length=..., path=...)
    plot_f0(tracks, sample_rate=..., hop_length=..., path=...)
    plot_loudness(tracks, sample_rate=..., hop_length=..., path=...)
"""
from __future__ import annotations

import datetime
import hashlib
import html
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .audio import AudioError, save_audio
from .version import __version__

__all__ = [
    "METRIC_INFO",
    "ReportError",
    "write_report",
    "load_metrics",
    "AudioSource",
    "log_spectrogram_db",
    "plot_spectrograms",
    "plot_f0",
    "plot_loudness",
]

#: Known metrics: name -> (label, unit, "lower" | "higher" | None for which is better).
#: Other keys of a summary are shown as they are, with no unit and no "best" mark.
METRIC_INFO: dict[str, tuple[str, str, str | None]] = {
    "mcd_db": ("MCD", "dB", "lower"),
    "f0_rmse_cents": ("F0 RMSE", "cents", "lower"),
    "f0_gross_error_rate": ("F0 gross error", "fraction", "lower"),
    "vuv_error_rate": ("V/UV error", "fraction", "lower"),
    "f0_l1_midi": ("F0 L1", "semitones", "lower"),
    "f0_corr": ("F0 corr.", "", "higher"),
    "mssd": ("MSSD", "", "lower"),
    "loudness_l1_db": ("Loudness L1", "dB", "lower"),
    "rtf": ("RTF", "s/s", "lower"),
    "duration_s": ("duration", "s", None),
    # voice conversion / timbre transfer (vocoder evaluate-conversion)
    "mcd_source_db": ("MCD source-target", "dB", None),
    "mcd_reduction": ("MCD reduction", "fraction", "higher"),
    "log_f0_abs_diff_cents": ("|log-f0 - target|", "cents", "lower"),
    "log_f0_diff_cents": ("log-f0 - target", "cents", None),
    "source_log_f0_abs_diff_cents": ("|source log-f0 - target|", "cents", None),
    "f0_track_corr": ("f0 corr. with source", "", "higher"),
    "f0_track_rmse_cents": ("f0 tracking RMSE", "cents", "lower"),
    "f0_track_gross_error_rate": ("f0 tracking gross error", "fraction", "lower"),
    "f0_track_vuv_error_rate": ("f0 tracking V/UV error", "fraction", "lower"),
    "accuracy": ("classified as target", "fraction", "higher"),
    "classifier_check_accuracy": ("classifier check", "fraction", None),
}
_NOT_METRICS = ("count", "n_valid")  # summary entries that are not table columns

_REF_LABEL = "reference"
_REF_COLOR = "#222222"
_SYSTEM_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                  "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_DPI = 80
_WIDTH_IN = 9.6  # spectrogram width; f0 and loudness plots are half as wide
_HALF_WIDTH_IN = 4.8
_SPEC_MAX_COLUMNS = 2000  # coarser spectrogram hop for long files
_SPEC_RANGE_DB = 80.0
_ARK_OFFSET = re.compile(r"^.+:\d+(\[[^\]]*\])?$")  # Kaldi "file.ark:123" (as evaluate)


class ReportError(ValueError):
    """The report cannot be written; the message names the input and the cause."""


# --------------------------------------------------------------------------------------
# metrics.json


def load_metrics(path) -> dict:
    """Read and check ``metrics.json`` (format version 1).

    Returns:
        The parsed dict, with ``"sets"`` holding ``{SET: {"systems": {...}}}``.
    Raises:
        ReportError: unreadable JSON, unknown version or a wrongly shaped entry.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object at the top level")
    if data.get("version") != 1:
        raise ReportError(f"{path}: unsupported metrics format version {data.get('version')!r} "
                          "(this report reads version 1)")
    sets = data.get("sets")
    if not isinstance(sets, dict):
        raise ReportError(f"{path}: no 'sets' object")
    for set_name, entry in sets.items():
        systems = entry.get("systems") if isinstance(entry, dict) else None
        if not isinstance(systems, dict):
            raise ReportError(f"{path}: set {set_name!r} has no 'systems' object")
        for system, info in systems.items():
            if not isinstance(info, dict):
                raise ReportError(f"{path}: set {set_name!r}, system {system!r}: "
                                  "expected an object")
            for key in ("summary", "per_utt", "failed", "settings"):
                if not isinstance(info.get(key, {}), dict):
                    raise ReportError(f"{path}: set {set_name!r}, system {system!r}: "
                                      f"'{key}' must be an object")
    return data


# --------------------------------------------------------------------------------------
# Audio lookup: a dir of <utt>.wav, a wav.scp, or a data dir


def _resolve(value, bases: Sequence[Path]) -> Path | None:
    """First existing candidate of a path: as is when absolute, else under each base."""
    p = Path(os.path.expanduser(str(value)))
    if p.is_absolute():
        return p if p.exists() else None
    for base in bases:
        candidate = base / p
        if candidate.exists():
            return candidate
    return None


class AudioSource:
    """Utterances of a ``REF``/``HYP`` entry of metrics.json, listed and read as
    ``vocoder evaluate`` does (:func:`vocoder.cli.evaluate.list_audio` and
    :func:`~vocoder.cli.evaluate.load_item`).

    Args:
        value: a directory of audio files (``<utt>.wav``, ``.flac``, ...), a data dir
            with ``wav.scp`` (and optional ``segments``), a ``wav.scp`` file or a single
            audio file. A relative ``value`` is looked up in ``bases`` in order; relative
            paths inside ``wav.scp`` resolve as in ``vocoder evaluate`` (current
            directory, then the table's directory).
        bases: directories to resolve a relative ``value`` against (e.g. cwd, then EXP).
    A source that cannot be found or listed holds no utterances (``has`` is always
    False); ``problem`` says why.
    """

    def __init__(self, value, *, bases: Sequence[Path]):
        from .data.sources import list_audio

        self.value = str(value) if value is not None else ""
        self.path: Path | None = None  # where the value was found
        self.problem: str | None = None
        self._items: dict = {}
        if not self.value:
            self.problem = "no path given"
            return
        self.path = _resolve(self.value, [Path(b) for b in bases])
        if self.path is None:
            self.problem = "not found"
            return
        try:
            self._items = list_audio(self.path)
        except (OSError, ValueError) as exc:
            self.problem = _first_line(exc)

    def has(self, utt: str) -> bool:
        """Whether the utterance's audio can be found (a pipe or ark offset counts)."""
        item = self._items.get(utt)
        if item is None or item.error or not item.source:
            return False
        source = item.source.strip()
        return source.endswith("|") or os.path.exists(source) or bool(_ARK_OFFSET.match(source))

    def load(self, utt: str) -> tuple[np.ndarray, int]:
        """Read an utterance (cut to its segment) as mono float32 at its own rate.

        Raises:
            AudioError: the utterance is not in the source, or its audio is unreadable.
        """
        from .data.sources import load_item

        item = self._items.get(utt)
        if item is None:
            raise AudioError(f"{self.value}: no utterance {utt!r}")
        return load_item(item)

    def describe(self) -> str:
        """The value as given, where it was found, and what is wrong with it."""
        text = self.value
        if self.path is not None and str(self.path) != self.value:
            text += f" → {self.path}"
        return text + (f" ({self.problem})" if self.problem else "")


# --------------------------------------------------------------------------------------
# Plots


def log_spectrogram_db(audio, *, sample_rate: int, hop_length: int,
                       n_fft: int | None = None) -> np.ndarray:
    """Log-magnitude STFT (Hann window, frames centred on ``n * hop_length``).

    Args:
        audio: (samples,) mono signal.
        sample_rate: samples per second.
        hop_length: samples between frames.
        n_fft: FFT and window size; default the power of two nearest 32 ms.
    Returns:
        (frames, n_fft // 2 + 1) float32 magnitudes in dB (floored at -200 dB),
        ``frames = ceil(samples / hop_length)``.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if n_fft is None:
        n_fft = 1 << max(4, round(math.log2(0.032 * sample_rate)))
    n = -(-x.size // hop_length)
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + n * hop_length))
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    starts = np.arange(n) * hop_length
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[starts]
    mag = np.abs(np.fft.rfft(frames * window, axis=-1))
    return (20.0 * np.log10(np.maximum(mag, 1e-10))).astype(np.float32)


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=_DPI)


def _save(fig, path) -> tuple[int, int]:
    """Save a figure as PNG; return its (width, height) in pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=_DPI)
    w, h = fig.get_size_inches()
    return int(round(w * _DPI)), int(round(h * _DPI))


def plot_spectrograms(signals: Sequence[tuple[str, np.ndarray | None]], *, sample_rate: int,
                      hop_length: int, path, title: str | None = None) -> tuple[int, int]:
    """Stacked log-magnitude spectrograms with shared time and frequency axes.

    Args:
        signals: ``(label, audio)`` rows, top to bottom; audio (samples,) at
            ``sample_rate``, or None to draw a "missing" panel.
        sample_rate: samples per second of every signal.
        hop_length: STFT hop in samples (made coarser for long files).
        path: PNG file to write.
        title: optional figure title.
    Returns:
        (width, height) of the image in pixels.
    """
    from matplotlib.ticker import MaxNLocator

    present = [a for _, a in signals if a is not None]
    longest = max((a.size for a in present), default=sample_rate)
    hop = max(int(hop_length), -(-longest // _SPEC_MAX_COLUMNS))
    specs = [None if a is None else log_spectrogram_db(a, sample_rate=sample_rate, hop_length=hop)
             for _, a in signals]
    vmax = max((float(s.max()) for s in specs if s is not None and s.size), default=0.0)
    rows = max(1, len(signals))
    fig = _figure(_WIDTH_IN, 0.3 + 1.05 * rows + (0.25 if title else 0.0))
    axes = fig.subplots(rows, 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    duration = longest / sample_rate
    image = None
    for ax, (label, _), spec in zip(axes, signals, specs):
        if spec is None:
            ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes,
                    color="#a00", fontsize=11)
            ax.set_facecolor("#f4f4f4")
        else:
            t_end = spec.shape[0] * hop / sample_rate
            image = ax.imshow(spec.T, origin="lower", aspect="auto", cmap="magma",
                              vmin=vmax - _SPEC_RANGE_DB, vmax=vmax, interpolation="nearest",
                              extent=(0.0, t_end, 0.0, sample_rate / 2000.0))
        ax.text(0.005, 0.94, label, ha="left", va="top", transform=ax.transAxes, fontsize=9,
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="none", pad=1.5))
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, prune="upper"))
    axes[0].set_xlim(0.0, duration)
    axes[0].set_ylim(0.0, sample_rate / 2000.0)
    axes[-1].set_xlabel("time (s)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.065, right=0.9, bottom=0.3 / fig.get_size_inches()[1] + 0.02,
                        top=1.0 - (0.35 if title else 0.1) / fig.get_size_inches()[1], hspace=0.08)
    if image is not None:
        cax = fig.add_axes((0.91, axes[-1].get_position().y0, 0.012,
                            axes[0].get_position().y1 - axes[-1].get_position().y0))
        cbar = fig.colorbar(image, cax=cax)
        cbar.set_label("dB", fontsize=8)
        cbar.ax.tick_params(labelsize=7)
    return _save(fig, path)


def _line_plot(tracks, *, sample_rate, hop_length, path, ylabel, title):
    fig = _figure(_HALF_WIDTH_IN, 2.4)
    ax = fig.add_subplot(1, 1, 1)
    t_max = 0.0
    has_ref = bool(tracks) and tracks[0][0] == _REF_LABEL
    for i, (label, values) in enumerate(tracks):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        t = np.arange(values.size) * hop_length / sample_rate
        t_max = max(t_max, float(t[-1]) if t.size else 0.0)
        ref = has_ref and i == 0
        ax.plot(t, values, label=label, color=_REF_COLOR if ref else _color(i - has_ref),
                linewidth=2.4 if ref else 1.2, alpha=0.55 if ref else 0.95)
    ax.set_xlim(0.0, t_max if t_max > 0 else 1.0)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    fig.tight_layout(pad=0.4)
    return _save(fig, path)


def _color(i: int) -> str:
    return _SYSTEM_COLORS[i % len(_SYSTEM_COLORS)]


def plot_f0(tracks: Sequence[tuple[str, np.ndarray | None, np.ndarray | None]], *,
            sample_rate: int, hop_length: int, path, title: str = "f0") -> tuple[int, int]:
    """f0 contours overlaid, in Hz, with unvoiced frames left as gaps.

    Args:
        tracks: ``(label, f0_hz, vuv)``, each (frames,), or None arrays to skip a
            row; the first track labelled "reference" is drawn thick and grey, the
            others in the system colours (by position).
        sample_rate, hop_length: the frame grid (frame ``n`` at ``n * hop / sr`` s).
        path: PNG file to write.
    Returns:
        (width, height) of the image in pixels.
    """
    lines = []
    for label, f0_hz, vuv in tracks:
        if f0_hz is None:
            lines.append((label, None))
            continue
        f0 = np.asarray(f0_hz, dtype=np.float64)
        voiced = np.asarray(vuv, dtype=bool) if vuv is not None else f0 > 0
        lines.append((label, np.where(voiced & (f0 > 0), f0, np.nan)))
    return _line_plot(lines, sample_rate=sample_rate, hop_length=hop_length, path=path,
                      ylabel="f0 (Hz)", title=title)


def plot_loudness(tracks: Sequence[tuple[str, np.ndarray | None]], *, sample_rate: int,
                  hop_length: int, path, title: str = "A-weighted loudness") -> tuple[int, int]:
    """Loudness contours (dB) overlaid; same conventions as :func:`plot_f0`."""
    return _line_plot(tracks, sample_rate=sample_rate, hop_length=hop_length, path=path,
                      ylabel="loudness (dB)", title=title)


# --------------------------------------------------------------------------------------
# The report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _slug(name: str) -> str:
    """A file-name-safe, URL-safe form of a key; distinct keys give distinct slugs."""
    s = re.sub(r"[^A-Za-z0-9._-]", "_", str(name))
    if s != name or not s or s.startswith("."):
        s = f"{s.lstrip('.') or 'x'}-{hashlib.sha1(str(name).encode()).hexdigest()[:8]}"
    return s


def _href(out_dir: Path, path: Path) -> str:
    rel = path.relative_to(out_dir)
    return "/".join(quote(part) for part in rel.parts)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a" if math.isnan(v) else str(v)
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3f}" if abs(v) >= 1 else f"{v:.4f}"
    return str(v)


def _metric_keys(summaries: Sequence[Mapping]) -> list[str]:
    """Metric names (numeric or null entries): known ones in METRIC_INFO order, then the
    others as first seen."""
    seen: list[str] = []
    for s in summaries:
        for k, v in s.items():
            if k not in _NOT_METRICS and k not in seen and (v is None or _is_number(v)):
                seen.append(k)
    known = [k for k in METRIC_INFO if k in seen]
    return known + [k for k in seen if k not in METRIC_INFO]


def _unit(key: str) -> str:
    if key in METRIC_INFO:
        return METRIC_INFO[key][1]
    for suffix, unit in (("_db", "dB"), ("_cents", "cents"), ("_hz", "Hz"), ("_midi", "semitones")):
        if key.endswith(suffix):
            return unit
    return ""


def _best(values: Mapping[str, object], direction: str | None) -> set[str]:
    """Systems holding the best value of a metric (ties included); empty when fewer than
    two systems have a finite value or the direction is unknown."""
    finite = {k: float(v) for k, v in values.items() if _is_number(v) and math.isfinite(v)}
    if direction not in ("lower", "higher") or len(finite) < 2:
        return set()
    target = min(finite.values()) if direction == "lower" else max(finite.values())
    return {k for k, v in finite.items() if v == target}


def _header_cells(keys: Sequence[str]) -> str:
    cells = []
    for k in keys:
        label, _, direction = METRIC_INFO.get(k, (k, "", None))
        unit = _unit(k)
        arrow = {"lower": "&nbsp;↓", "higher": "&nbsp;↑"}.get(direction or "", "")
        tip = k + (f" ({unit})" if unit else "") + (f", {direction} is better" if direction else "")
        cells.append(f'<th title="{html.escape(tip)}">{html.escape(label)}{arrow}'
                     + (f'<br><span class="unit">{html.escape(unit)}</span>' if unit else "")
                     + "</th>")
    return "".join(cells)


def _metrics_table(rows: Mapping[str, Mapping], keys: Sequence[str], *,
                   extra: Mapping[str, Sequence[str]] | None = None,
                   extra_header: Sequence[str] = (), css: str = "metrics") -> str:
    """Systems x metrics table; best value per metric marked."""
    best = {k: _best({s: r.get(k) for s, r in rows.items()}, METRIC_INFO.get(k, ("", "", None))[2])
            for k in keys}
    out = [f'<div class="scroll"><table class="{css}"><thead><tr><th>system</th>',
           _header_cells(keys)]
    out += [f"<th>{html.escape(h)}</th>" for h in extra_header]
    out.append("</tr></thead><tbody>")
    for system, row in rows.items():
        out.append(f'<tr><th scope="row">{html.escape(system)}</th>')
        for k in keys:
            v = row.get(k)
            cls = ' class="best"' if system in best[k] else ""
            n_valid = row.get("n_valid")
            undefined = v is None or (isinstance(v, float) and math.isnan(v))
            tip = "undefined" if undefined else (repr(v) if _is_number(v) else "")
            if isinstance(n_valid, Mapping) and k in n_valid:
                tip += f" (mean of {n_valid[k]} utterances)"
            tip = f' title="{html.escape(tip)}"' if tip else ""
            out.append(f"<td{cls}{tip}>{html.escape(_fmt(v))}</td>")
        for cell in (extra or {}).get(system, ()):
            out.append(f"<td>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _default_hop(sample_rate: int, settings: Mapping) -> int:
    """The evaluation's hop when its settings give one (scaled to ``sample_rate``), else 5 ms."""
    hop, sr = settings.get("hop_length"), settings.get("sample_rate")
    if _is_number(hop) and hop > 0:
        if _is_number(sr) and sr > 0:
            return max(1, int(round(hop * sample_rate / sr)))
        return int(hop)
    return max(1, int(sample_rate) // 200)


def _choose_utts(systems: Mapping[str, Mapping], max_utts: int) -> tuple[list[str], int]:
    """Sorted utterances scored in every system (else in any), first ``max_utts``; and
    how many there were."""
    keysets = [set(info.get("per_utt") or {}) for info in systems.values()]
    common = set.intersection(*keysets) if keysets else set()
    if not common:
        common = set().union(*keysets) if keysets else set()
    utts = sorted(common)
    return utts[:max_utts], len(utts)


class _Page:
    """Collects HTML pieces and the files they point to."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)


def _audio_cell(page: _Page, source: AudioSource, utt: str,
                dest: Path) -> tuple[str, np.ndarray | None, int | None]:
    """Convert one utterance's audio into the report; return (player HTML, audio, rate)."""
    if not source.has(utt):
        return '<span class="missing">missing</span>', None, None
    try:
        x, sr = source.load(utt)
        save_audio(dest, x, sr, subtype="PCM_16")
    except (OSError, ValueError) as exc:
        msg = html.escape(_first_line(exc))
        return f'<span class="missing" title="{msg}">unreadable</span>', None, None
    src = html.escape(_href(page.out_dir, dest))
    return f'<audio controls preload="none" src="{src}"></audio>', x, sr


def _to_rate(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return x
    import soxr

    return soxr.resample(x, sr, target).astype(np.float32)


def _utterance_section(page: _Page, *, set_slug: str, utt: str,
                       systems: Mapping[str, Mapping], sources: Mapping[str, AudioSource],
                       ref: AudioSource, metric_keys: Sequence[str], f0_method: str,
                       hop_length: int | None) -> None:
    from .analysis.f0 import estimate_f0
    from .analysis.loudness import a_weighted_loudness

    u = _slug(utt)
    audio_dir = page.out_dir / "audio" / set_slug
    img_dir = page.out_dir / "img" / set_slug
    anchor = f"{set_slug}--{u}"
    page.add(f'<article class="utt" id="{html.escape(anchor)}">'
             f'<h4><a href="#{html.escape(anchor)}">{html.escape(utt)}</a></h4>')

    labels = [_REF_LABEL] + list(systems)
    players, signals = [], []
    cell, x, sr = _audio_cell(page, ref, utt, audio_dir / "ref" / f"{u}.wav")
    players.append((_REF_LABEL, cell, _REF_COLOR))
    signals.append((x, sr))
    for i, system in enumerate(systems):
        dest = audio_dir / f"hyp-{_slug(system)}" / f"{u}.wav"
        cell, x, sr = _audio_cell(page, sources[system], utt, dest)
        players.append((system, cell, _color(i)))
        signals.append((x, sr))

    page.add('<div class="players">')
    for label, cell, color in players:
        page.add(f'<div class="player"><span class="swatch" style="background:{color}"></span>'
                 f'<span class="who">{html.escape(label)}</span>{cell}</div>')
    page.add("</div>")

    rows, failed_notes = {}, []
    for system, info in systems.items():
        rows[system] = info.get("per_utt", {}).get(utt, {}) or {}
        reason = (info.get("failed", {}) or {}).get(utt)
        if reason is not None:
            failed_notes.append(f"failed: {system}: {reason}")
        warning = rows[system].get("warning") if isinstance(rows[system], Mapping) else None
        if warning:
            failed_notes.append(f"warning: {system}: {warning}")
    if any(rows.values()):
        page.add(_metrics_table(rows, metric_keys, css="metrics small"))
    for note in failed_notes:
        page.add(f'<p class="note">{html.escape(str(note))}</p>')

    rates = [s for _, s in signals if s]
    if not rates:
        page.add('<p class="note">no audio found for this utterance</p></article>')
        return
    rate = rates[0]  # the reference's rate when it is there; others are resampled to it
    settings = next(iter(systems.values()), {}).get("settings", {}) or {}
    hop = int(hop_length) if hop_length else _default_hop(rate, settings)
    f0_range = {k: float(settings[k]) for k in ("f0_min", "f0_max") if _is_number(settings.get(k))}
    average = settings.get("loudness_average")
    average = average if average in ("db", "power") else "power"  # as vocoder.metrics
    audio = [None if x is None else _to_rate(x, s, rate) for x, s in signals]

    notes, figures = [], []
    spec_path = img_dir / f"{u}-spec.png"
    w, h = plot_spectrograms(list(zip(labels, audio)), sample_rate=rate, hop_length=hop,
                             path=spec_path)
    figures.append((spec_path, w, h, f"spectrograms of {utt}", "wide"))

    f0_tracks, loud_tracks = [], []
    for label, x in zip(labels, audio):
        if x is None:
            f0_tracks.append((label, None, None))
            loud_tracks.append((label, None))
            continue
        try:
            f0_hz, vuv = estimate_f0(x, sample_rate=rate, hop_length=hop, method=f0_method,
                                     name=f"{label}:{utt}", **f0_range)
            f0_tracks.append((label, f0_hz, vuv))
        except Exception as exc:  # noted on the page; one bad signal spoils no report
            f0_tracks.append((label, None, None))
            notes.append(f"f0 of {label}: {_first_line(exc)}")
        try:
            loud_tracks.append((label, a_weighted_loudness(
                x, sample_rate=rate, hop_length=hop, average=average, name=f"{label}:{utt}")))
        except Exception as exc:
            loud_tracks.append((label, None))
            notes.append(f"loudness of {label}: {_first_line(exc)}")
    f0_path = img_dir / f"{u}-f0.png"
    w, h = plot_f0(f0_tracks, sample_rate=rate, hop_length=hop, path=f0_path,
                   title=f"f0 ({f0_method})")
    figures.append((f0_path, w, h, f"f0 contours of {utt}", "half"))
    loud_path = img_dir / f"{u}-loudness.png"
    w, h = plot_loudness(loud_tracks, sample_rate=rate, hop_length=hop, path=loud_path,
                         title=f"A-weighted loudness ({average} average)")
    figures.append((loud_path, w, h, f"A-weighted loudness of {utt}", "half"))

    page.add('<div class="figures">')
    for path, w, h, alt, css in figures:
        page.add(f'<img class="{css}" src="{html.escape(_href(page.out_dir, path))}" '
                 f'width="{w}" height="{h}" alt="{html.escape(alt)}" loading="lazy">')
    page.add("</div>")
    for note in notes:
        page.add(f'<p class="note">{html.escape(note)}</p>')
    page.add("</article>")


def _set_section(page: _Page, set_name: str, entry: Mapping, *, bases: Sequence[Path],
                 max_utts: int, f0_method: str, hop_length: int | None) -> None:
    systems: Mapping[str, Mapping] = entry.get("systems", {})
    set_slug = _slug(set_name)
    page.add(f'<section class="set" id="set-{html.escape(set_slug)}">'
             f"<h2>{html.escape(set_name)}</h2>")
    if not systems:
        page.add('<p class="note">no systems in this set</p></section>')
        return
    summaries = {s: info.get("summary", {}) or {} for s, info in systems.items()}
    keys = _metric_keys(list(summaries.values()))
    extra = {s: [html.escape(_fmt(summaries[s].get("count"))),
                 html.escape(str(len(info.get("failed", {}) or {})))]
             for s, info in systems.items()}
    page.add(_metrics_table(summaries, keys, extra=extra, extra_header=("utts", "failed")))
    page.add('<p class="legend">↓ lower is better, ↑ higher is better; the best system per '
             'metric is highlighted. Hover a value for full precision.</p>')

    sources = {s: AudioSource(info.get("hyp"), bases=bases) for s, info in systems.items()}
    first = next(iter(systems.values()))
    ref = AudioSource(first.get("ref"), bases=bases)

    page.add("<details><summary>Systems: audio locations and settings</summary>"
             '<table class="systems"><thead><tr><th>system</th><th>reference</th>'
             "<th>hypothesis</th><th>settings</th></tr></thead><tbody>")
    for s, info in systems.items():
        settings = info.get("settings", {}) or {}
        settings_text = ", ".join(f"{k}={_fmt(v)}" for k, v in settings.items()) or "–"
        ref_text = AudioSource(info.get("ref"), bases=bases).describe() \
            if info.get("ref") != first.get("ref") else ref.describe()
        page.add(f'<tr><th scope="row">{html.escape(s)}</th><td><code>{html.escape(ref_text)}'
                 f"</code></td><td><code>{html.escape(sources[s].describe())}</code></td>"
                 f"<td>{html.escape(settings_text)}</td></tr>")
    page.add("</tbody></table></details>")

    failures = [(s, utt, reason) for s, info in systems.items()
                for utt, reason in sorted((info.get("failed", {}) or {}).items())]
    if failures:
        page.add(f"<details><summary>Failed utterances ({len(failures)})</summary><ul>")
        for s, utt, reason in failures:
            page.add(f"<li><b>{html.escape(s)}</b> {html.escape(utt)}: "
                     f"{html.escape(str(reason))}</li>")
        page.add("</ul></details>")

    utts, total = _choose_utts(systems, max_utts)
    if utts:
        page.add(f'<h3>Utterances <span class="count">({len(utts)} of {total})</span></h3>'
                 '<p class="toc">')
        page.add(" · ".join(f'<a href="#{html.escape(set_slug)}--{html.escape(_slug(u))}">'
                            f"{html.escape(u)}</a>" for u in utts))
        page.add("</p>")
    for utt in utts:
        _utterance_section(page, set_slug=set_slug, utt=utt,
                           systems=systems, sources=sources, ref=ref, metric_keys=keys,
                           f0_method=f0_method, hop_length=hop_length)
    page.add("</section>")


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
 max-width:1040px;margin:0 auto;padding:16px 20px 40px;background:#fff}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:19px;margin:28px 0 8px;
 border-bottom:2px solid #ddd;padding-bottom:3px}h3{font-size:16px;margin:20px 0 6px}
h4{font-size:15px;margin:0 0 8px}h4 a{color:inherit;text-decoration:none}
.meta{color:#555;margin:0 0 10px}code{font-size:12.5px;background:#f4f4f4;padding:0 3px;
 border-radius:3px}nav a,.toc a{margin-right:4px}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8d8d8;padding:3px 7px;text-align:right}
thead th{background:#f2f2f2;font-weight:600;text-align:center;vertical-align:bottom}
tbody th{text-align:left;background:#fafafa}
td.best{background:#d9f2d9;font-weight:700}
table.small{font-size:12.5px}.unit{font-weight:400;color:#666;font-size:11px}
table.systems td{text-align:left;font-size:12.5px}
.legend,.note,.count{color:#666;font-size:12.5px}.note{margin:4px 0}
details{margin:8px 0}summary{cursor:pointer;color:#333}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:8px;overflow:auto;font-size:12px;
 max-height:480px}
article.utt{border:1px solid #e0e0e0;border-radius:6px;padding:10px 12px;margin:14px 0}
.players{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));
 gap:4px 16px;margin-bottom:6px}
.player{display:flex;align-items:center;gap:6px}
.player audio{height:32px;width:230px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px}
.who{font-weight:600;min-width:84px}
.missing{color:#a00;font-style:italic;display:inline-block;width:230px}
.figures{margin-top:6px;line-height:0}.figures img{max-width:100%;height:auto;vertical-align:top}
.scroll{overflow-x:auto}
footer{margin-top:30px;color:#888;font-size:12px}
"""


def _prepare_out_dir(out_dir: Path) -> Path:
    """A fresh build dir beside ``out_dir``; refuse to replace a folder that is not a report."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ReportError(f"{out_dir}: exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / "index.html").is_file():
            raise ReportError(f"{out_dir}: not empty and holds no index.html; "
                              "refusing to replace it (choose another --out)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))


def _swap_in(build: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        os.rmdir(old)
        os.replace(out_dir, old)
    os.replace(build, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_report(exp_dir, *, out_dir=None, max_utts: int = 6, title: str | None = None,
                 f0_method: str = "harvest", hop_length: int | None = None) -> Path:
    """Write the HTML report of an experiment and return the path of its ``index.html``.

    Args:
        exp_dir: the experiment dir holding ``metrics.json`` (and maybe ``config.yaml``,
            shown verbatim).
        out_dir: report folder; default ``exp_dir/report``. It is replaced as a whole
            (a folder that is non-empty and holds no ``index.html`` is refused).
        max_utts: utterances shown per set with players and figures: the first ones,
            sorted, scored in every system.
        title: page title; default "ddsp-vocoder report: <experiment name>".
        f0_method: f0 estimator for the plots (see ``vocoder.analysis.f0.F0_METHODS``).
        hop_length: analysis hop in samples at the reference's rate; default the
            evaluation's ``settings["hop_length"]`` when given, else 5 ms.
    Returns:
        Path of the written ``index.html``.
    Raises:
        FileNotFoundError: ``exp_dir`` or ``exp_dir/metrics.json`` is missing.
        ReportError: malformed metrics.json or an unusable ``out_dir``.
        ValueError: bad arguments.
    """
    from .analysis.f0 import F0_METHODS

    exp_dir = Path(exp_dir)
    if f0_method not in F0_METHODS:
        raise ValueError(f"f0_method must be one of {', '.join(F0_METHODS)}; got {f0_method!r}")
    if isinstance(max_utts, bool) or int(max_utts) != max_utts or max_utts < 0:
        raise ValueError(f"max_utts must be a non-negative integer, got {max_utts!r}")
    if hop_length is not None and (isinstance(hop_length, bool) or int(hop_length) != hop_length
                                   or hop_length < 1):
        raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: no such experiment directory")
    metrics_path = exp_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path} not found: run the evaluation stage first")
    metrics = load_metrics(metrics_path)
    out_dir = Path(out_dir) if out_dir is not None else exp_dir / "report"
    exp_name = exp_dir.resolve().name
    title = title or f"ddsp-vocoder report: {exp_name}"
    bases = [Path.cwd(), exp_dir]

    build = _prepare_out_dir(out_dir)
    try:
        page = _Page(build)
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        page.add(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                 f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                 f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>")
        page.add(f"<header><h1>{html.escape(title)}</h1>"
                 f'<p class="meta">experiment <code>{html.escape(exp_name)}</code> · generated '
                 f'<time datetime="{now}">{now}</time> · ddsp-vocoder {html.escape(__version__)}'
                 "</p></header>")
        sets = metrics["sets"]
        if len(sets) > 1:
            page.add("<nav>sets: " + " · ".join(
                f'<a href="#set-{html.escape(_slug(s))}">{html.escape(s)}</a>' for s in sets)
                + "</nav>")
        config = exp_dir / "config.yaml"
        if config.is_file():
            text = config.read_text(encoding="utf-8", errors="replace")
            page.add("<details><summary>configuration (config.yaml)</summary>"
                     f"<pre>{html.escape(text)}</pre></details>")
        if not sets:
            page.add('<p class="note">metrics.json holds no sets</p>')
        for set_name, entry in sets.items():
            _set_section(page, set_name, entry, bases=bases, max_utts=int(max_utts),
                         f0_method=f0_method, hop_length=hop_length)
        page.add(f"<footer>metrics from <code>{html.escape(str(metrics_path))}</code>; "
                 f"f0 plots by {html.escape(f0_method)}; spectrograms are log-magnitude STFTs "
                 "(32 ms Hann window), loudness is A-weighted (DDSP).</footer></body></html>\n")
        (build / "index.html").write_text("".join(page.parts), encoding="utf-8")
        _swap_in(build, out_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return out_dir / "index.html"
