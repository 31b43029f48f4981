"""Statistics of a feature dump: normalisation and per-speaker values.

    vocoder stats DUMP_DIR [--out DUMP_DIR/stats.json] [--formants [--formant-utts N]]

Writes JSON with global and per-speaker mean/std of log-f0 (voiced frames), loudness
(dB) and mel bins, and per speaker the f0 percentiles (5th, 50th, 95th) and the
loudness of the non-silent frames (within 40 dB of each utterance's loudest frame),
used by `vocoder convert` for f0 transforms, instrument range folding and loudness
matching. Models store the global values in their buffers; checkpoints carry the
per-speaker values.

--formants adds per speaker the medians of F1-F3 over voiced frames (Praat's Burg
analysis of the dump's audio, the first --formant-utts utterances of each speaker in
sorted order), the vocal-tract-length summary that `vocoder convert --vtln auto` uses.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..analysis.loudness import active_frames
from ..data.features import FeatureDump
from ..outputs import write_atomic

STATS_VERSION = 1


def add_arguments(p) -> None:
    p.add_argument("dump_dir", help="feature dump directory (from `vocoder extract`)")
    p.add_argument("--out", help="output JSON (default DUMP_DIR/stats.json)")
    p.add_argument("--formants", action="store_true",
                   help="also per-speaker median formant frequencies F1-F3 (for `vocoder convert --vtln auto`)")
    p.add_argument("--formant-utts", type=int, default=50, metavar="N",
                   help="utterances per speaker analysed for --formants (default 50)")


class _Acc:
    """Running mean/variance (per dimension) by sums, in float64."""

    def __init__(self):
        self.n, self.s, self.ss = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return
        self.n += x.shape[0]
        self.s = self.s + x.sum(axis=0)
        self.ss = self.ss + (x * x).sum(axis=0)

    def result(self) -> dict:
        if self.n == 0:
            return {"mean": None, "std": None, "count": 0}
        mean = self.s / self.n
        std = np.sqrt(np.maximum(self.ss / self.n - mean * mean, 0.0))
        conv = (lambda v: v.tolist()) if np.ndim(mean) else float
        return {"mean": conv(mean), "std": conv(std), "count": int(self.n)}


def compute_stats(dump: FeatureDump) -> dict:
    streams = [s for s in ("f0", "vuv", "loudness", "mel") if s in dump.streams]
    glob = {k: _Acc() for k in ("logf0", "loudness", "mel")}
    per_spk: dict[str, dict] = {}
    f0_values: dict[str, list] = {}
    for utt in dump.utts:
        d = dump.load(utt, streams)
        spk = dump.speaker(utt)
        acc = per_spk.setdefault(spk, {"logf0": _Acc(), "loudness": _Acc(), "loudness_active": _Acc()})
        if "f0" in d:
            voiced = d["f0"][(d["f0"] > 0) & (d.get("vuv", d["f0"] > 0) > 0.5)]
            lf = np.log(voiced)
            glob["logf0"].add(lf)
            acc["logf0"].add(lf)
            f0_values.setdefault(spk, []).append(voiced)
        if "loudness" in d:
            glob["loudness"].add(d["loudness"])
            acc["loudness"].add(d["loudness"])
            acc["loudness_active"].add(d["loudness"][active_frames(d["loudness"])])
        if "mel" in d:
            glob["mel"].add(d["mel"])
    speakers = {}
    for spk, acc in sorted(per_spk.items()):
        entry = {k: v.result() for k, v in acc.items()}
        vals = np.concatenate(f0_values.get(spk, [np.zeros(0)]))
        if vals.size:
            q = np.percentile(vals, [5, 50, 95])
            entry["f0_percentiles_hz"] = {"p5": float(q[0]), "p50": float(q[1]), "p95": float(q[2])}
        speakers[spk] = entry
    return {"version": STATS_VERSION, "dump": str(dump.path), "n_utts": len(dump.utts),
            "global": {k: v.result() for k, v in glob.items() if v.n}, "speakers": speakers}


def formant_stats(dump: FeatureDump, *, max_utts: int = 50) -> dict[str, dict]:
    """speaker -> {"median_hz": [F1, F2, F3], "frames": n, "utts": n} over voiced frames
    of the speaker's first ``max_utts`` utterances (sorted ids)."""
    from ..analysis.formants import formant_medians, formant_tracks

    if "wav" not in dump.streams or "vuv" not in dump.streams:
        raise ValueError(f"{dump.path}: --formants needs the dump's audio (wav.scp) and voicing (vuv.scp)")
    if max_utts < 1:
        raise ValueError(f"--formant-utts must be at least 1, got {max_utts}")
    by_spk: dict[str, list[str]] = {}
    for utt in sorted(dump.utts):
        by_spk.setdefault(dump.speaker(utt), []).append(utt)
    out = {}
    for spk, utts in sorted(by_spk.items()):
        tracks, vuv = [], []
        for utt in utts[:max_utts]:
            d = dump.load(utt, ["wav", "vuv"])
            t = formant_tracks(d["wav"], sample_rate=dump.sample_rate, hop_length=dump.hop_length,
                               name=f"{dump.path}:{utt}")
            n = min(len(t), len(d["vuv"]))
            tracks.append(t[:n])
            vuv.append(d["vuv"][:n])
        medians, frames = formant_medians(np.concatenate(tracks), np.concatenate(vuv))
        out[spk] = {"median_hz": medians, "frames": frames, "utts": min(len(utts), max_utts)}
    return out


def run(args) -> int:
    dump = FeatureDump(args.dump_dir)
    stats = compute_stats(dump)
    if args.formants:
        for spk, entry in formant_stats(dump, max_utts=args.formant_utts).items():
            stats["speakers"].setdefault(spk, {})["formants"] = entry
    out = Path(args.out or Path(args.dump_dir) / "stats.json")
    write_atomic(out, json.dumps(stats, indent=1), what="statistics")
    g = stats["global"]
    print(f"vocoder stats: {out}: {stats['n_utts']} utterances, {len(stats['speakers'])} speakers; "
          f"log-f0 mean {g.get('logf0', {}).get('mean', float('nan')):.3f}, "
          f"loudness mean {g.get('loudness', {}).get('mean', float('nan')):.1f} dB", file=sys.stderr)
    if args.formants:
        for spk, entry in stats["speakers"].items():
            med = (entry.get("formants") or {}).get("median_hz")
            text = " ".join(f"F{k + 1} {v:.0f}" for k, v in enumerate(med)) if med else "no voiced frames"
            print(f"vocoder stats:   {spk}: {text} Hz", file=sys.stderr)
    return 0
