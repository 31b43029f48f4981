"""Voice conversion / timbre transfer: resynthesize audio as another speaker or instrument.

    vocoder convert --checkpoint EXP_OR_CKPT (--target NAME | --mix "spk1:0.7,spk2:0.3") IN OUT
                    [--f0-transform stats|fold|shift|none] [--f0-shift SEMITONES]
                    [--loudness-transform stats|none] [--loudness-shift DB] [--stats STATS_JSON]
                    [--source-speaker NAME] [--vtln none|auto|FACTOR]
                    [--f0-method METHOD] [--f0-min HZ] [--f0-max HZ]
                    [--dry | --reverb-from CKPT_OR_WAV] [--device auto]

IN is one audio file (OUT: the output wav, or a directory for OUT/<name>.wav), or a Kaldi
data dir, wav.scp, directory of audio files or feature dump (OUT: a directory of
<utt>.wav). Features are computed with the checkpoint's analysis settings (a feature
dump must match them; --f0-method, --f0-min and --f0-max change the f0 analysis of
audio input: e.g. a voice into an instrument model trained with a 60-2200 Hz range is
better analysed in a voice's range), played
through the model with the target's embedding (--mix: a weighted blend of embeddings,
weights scaled to sum to 1), at the model's rate and the input's length.

f0 (--f0-transform): `stats` maps log-f0 by mean and std, (logf0 - mu_src) / sd_src *
sd_tgt + mu_tgt; `fold` shifts by whole octaves so that the source's median f0 falls in
the target's 5th-95th percentile range (instruments); `shift` and `none` change
nothing; --f0-shift then adds semitones in every case. Loudness (--loudness-transform
stats) is shifted so that its mean over non-silent frames matches the target's;
--loudness-shift then adds dB. Target statistics are the per-speaker section of
--stats (a `vocoder stats` JSON), by default the training statistics the checkpoint
carries (blended with the --mix weights); source statistics are those of
--source-speaker in the same file, else measured on each input utterance.

--vtln (vocal tract length normalisation; models with an MFCC content encoder): the
MFCCs are warped in frequency by FACTOR (above 1: formants up) before the encoder.
`auto` takes the geometric mean of the target's over the source's F1-F3 medians (the
statistics of `vocoder stats --formants`; the source's from --source-speaker, else
measured on each input utterance), clipped to 0.8-1.25. The model never saw the source
voice's formant positions with the target's embedding; warping moves them to where the
target's are (docs/voice_conversion.md has the measurements).

--dry bypasses the learned reverb; --reverb-from uses another checkpoint's learned
reverb or an impulse response file (resampled to the model's rate) instead.

With many inputs, an utterance that fails is reported (file and cause) and the others
go on; the failures are listed at the end and the exit status is 1 (--fail-fast stops
at the first). Outputs are written atomically. A directory output gets OUT/convert.json:
the checkpoint, step and conversion settings, and per utterance the f0 shift applied
(median over voiced frames, semitones; e.g. the octaves `fold` chose), the loudness
offset and the --vtln factor. Rerunning with the same checkpoint and settings skips the wavs already there
(recipes rerun a stage after a crash); other settings, or --overwrite, rewrite them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..analysis.f0 import F0_METHODS
from ..conversion import F0_TRANSFORMS


def add_arguments(p) -> None:
    p.add_argument("input", metavar="IN",
                   help="audio file, Kaldi data dir, wav.scp, directory of audio files or feature dump")
    p.add_argument("output", metavar="OUT", help="output wav (IN one file) or directory of <utt>.wav")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or experiment dir (newest checkpoint)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--target", metavar="NAME", help="target speaker/instrument (one of the model's speakers)")
    who.add_argument("--mix", metavar="SPK:W,...",
                     help='blend of speakers\' embeddings and statistics, e.g. "spk1:0.7,spk2:0.3"')
    p.add_argument("--f0-transform", choices=F0_TRANSFORMS, default="stats",
                   help="stats: log-f0 mean/std mapping (default); fold: whole octaves into the target's range; "
                        "shift, none: only --f0-shift")
    p.add_argument("--f0-shift", type=float, default=0.0, metavar="SEMITONES",
                   help="transpose by this many semitones after the transform")
    p.add_argument("--loudness-transform", choices=("stats", "none"), default="stats",
                   help="stats: match the target's mean loudness over non-silent frames (default)")
    p.add_argument("--loudness-shift", type=float, default=0.0, metavar="DB",
                   help="add this many dB to the loudness after the transform")
    p.add_argument("--stats", metavar="STATS_JSON",
                   help="per-speaker statistics from `vocoder stats` (default: those stored in the checkpoint)")
    p.add_argument("--source-speaker", metavar="NAME",
                   help="take the source statistics of this speaker in the statistics (default: measured on "
                        "each input utterance)")
    p.add_argument("--f0-method", choices=F0_METHODS, default=None,
                   help="f0 estimator for audio input (default: the checkpoint's); the model reads f0 in Hz, "
                   "so any estimator serves; praat_ac leaves fewer stray f0 values at voicing edges than "
                   "harvest (docs/voice_conversion.md)")
    p.add_argument("--f0-min", type=float, default=None, metavar="HZ",
                   help="lowest f0 searched in audio input (default: the checkpoint's)")
    p.add_argument("--f0-max", type=float, default=None, metavar="HZ",
                   help="highest f0 searched in audio input (default: the checkpoint's)")
    p.add_argument("--vtln", default="none", type=_vtln_arg, metavar="none|auto|FACTOR",
                   help="warp the content MFCCs in frequency: none (default), auto (target's / source's "
                        "formants, from `vocoder stats --formants`) or a factor such as 1.15")
    room = p.add_mutually_exclusive_group()
    room.add_argument("--dry", action="store_true", help="bypass the learned reverb")
    room.add_argument("--reverb-from", metavar="CKPT_OR_WAV",
                      help="instead of the model's reverb: another checkpoint's learned reverb, or an impulse "
                           "response audio file")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing utterance")
    p.add_argument("--overwrite", action="store_true",
                   help="rewrite existing wavs of a directory output even if made with the same settings")
    p.add_argument("--allow-pipes", action="store_true", help="run `cmd |` entries of an IN wav.scp")


def _vtln_arg(text: str):
    import argparse
    import math

    if text in ("none", "auto"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.5 <= value <= 2.0):
        raise argparse.ArgumentTypeError(f"expected none, auto or a factor between 0.5 and 2, got {text!r}")
    return value


def load_speaker_stats(path, state: dict, ckpt) -> tuple[dict | None, str]:
    """The statistics to convert with and where they come from: ``path`` (a ``vocoder
    stats`` JSON) if given, else those stored in the checkpoint, else the checkpoint's
    training statistics file if it still exists (checkpoints written before they carried
    them); (None, "") when there are none."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{path}: statistics file not found (run `vocoder stats DUMP`)")
        try:
            return json.loads(p.read_text(encoding="utf-8")), str(path)
        except ValueError as exc:
            raise ValueError(f"{path}: not a statistics JSON ({exc})") from None
    cfg = state.get("config") or {}
    if cfg.get("stats"):
        return cfg["stats"], f"{ckpt} (training statistics)"
    old = (cfg.get("data") or {}).get("stats")
    if old and Path(old).is_file():
        return json.loads(Path(old).read_text(encoding="utf-8")), old
    return None, ""


class _Inputs:
    """The utterances of IN: ``utts``, ``load(utt) -> (streams, n_samples)``, ``label(utt)``."""

    def __init__(self, path, *, model, feature_config, streams, allow_pipes=False):
        from ..data.features import FeatureDump
        from ..data.sources import list_audio
        from .synth import check_feature_settings

        p = Path(path)
        self.cfg, self.streams, self.dump, self.items = feature_config, streams, None, {}
        self._wav_dump = None
        if p.is_dir() and (p / "feats.yaml").is_file():
            dump = FeatureDump(p, streams=streams)
            if dump.sample_rate != model.sample_rate or dump.hop_length != model.hop_length:
                raise ValueError(f"{path}: features at {dump.sample_rate} Hz / hop {dump.hop_length}, but the model "
                                 f"expects {model.sample_rate} Hz / hop {model.hop_length}; re-extract with the "
                                 "model's settings")
            check_feature_settings(model, dump.config.to_dict(), str(path))
            self.dump, self.utts = dump, list(dump.utts)
        else:
            self.items = list_audio(p, allow_pipes=allow_pipes)
            self.utts = list(self.items)
        if not self.utts:
            raise ValueError(f"{path}: no utterances")
        self.single = p.is_file() and p.suffix != ".scp"

    def formants(self, utt: str, vuv):
        """F1-F3 medians over the voiced frames of one input utterance (``--vtln auto``
        without ``--source-speaker``)."""
        from ..analysis.formants import formant_medians, formant_tracks
        from ..data.sources import load_item

        if self.dump is not None:
            from ..data.features import FeatureDump

            if not (self.dump.path / "wav.scp").is_file():
                raise ValueError(f"{self.dump.path}: no audio in the dump to measure formants on; "
                                 "pass --source-speaker")
            if self._wav_dump is None:
                self._wav_dump = FeatureDump(self.dump.path, streams=["wav"])
            audio = self._wav_dump.load(utt, ["wav"])["wav"]
        else:
            audio, _ = load_item(self.items[utt], sample_rate=self.cfg.sample_rate)
        tracks = formant_tracks(audio, sample_rate=self.cfg.sample_rate, hop_length=self.cfg.hop_length,
                                name=self.label(utt))
        medians, _ = formant_medians(tracks, vuv)
        if medians is None:
            raise ValueError(f"{self.label(utt)}: no voiced frame with formants to measure (--vtln auto)")
        return medians

    def label(self, utt: str) -> str:
        return self.items[utt].source if self.items else f"{self.dump.path}:{utt}"

    def load(self, utt: str):
        from ..data.features import compute_features
        from ..data.sources import load_item

        if self.dump is not None:
            feats = self.dump.load(utt, self.streams)
            n = feats[self.streams[0]].shape[0] * self.cfg.hop_length
            return feats, min(n, self.dump.utt2num_samples.get(utt, n))
        audio, _ = load_item(self.items[utt], sample_rate=self.cfg.sample_rate)
        return compute_features(audio, self.cfg, name=self.label(utt)), audio.size


def run(args) -> int:
    import torch
    from tqdm import tqdm

    from ..audio import save_audio
    from ..conversion import (
        VoiceStats,
        blend_stats,
        loudness_offset,
        parse_mix,
        speaker_stats,
        transform_f0,
        vtln_factor,
        warp_mfcc,
    )
    from ..data.features import FRAME_STREAMS, FeatureConfig
    from ..outputs import OutputError, remove_stale_temps
    from ..training.checkpoint import load_model, resolve_checkpoint
    from ..training.trainer import resolve_device
    from .synth import required_streams, synthesize_utterance

    device = resolve_device(args.device)
    ckpt = resolve_checkpoint(args.checkpoint)
    model, state = load_model(ckpt, device=device)
    name = state["config"]["model"]["name"]
    if not getattr(model, "speakers", None):
        raise ValueError(f"{ckpt}: model {name!r} has no speakers or instruments to convert to "
                         "(train it with `speakers: auto`)")
    streams = required_streams(model)
    for stream in ("f0", "vuv", "loudness"):
        if stream not in streams:
            raise ValueError(f"{ckpt}: model {name!r} takes no {stream} input; it cannot be converted")
    parts = [(args.target, 1.0)] if args.target else parse_mix(args.mix)
    indices = [model.speaker_index(spk) for spk, _ in parts]  # unknown names: a clear error
    embedding = None
    if args.mix:
        table = getattr(model, "speaker_embedding", None)
        if table is None:
            raise ValueError(f"--mix: model {name!r} has no speaker embedding table to blend")
        with torch.no_grad():
            embedding = sum(w * table.weight[i] for (_, w), i in zip(parts, indices)).detach()
    speaker_index = indices[max(range(len(parts)), key=lambda i: parts[i][1])]
    target_name = args.target or args.mix

    need_stats = (args.f0_transform in ("stats", "fold") or args.loudness_transform == "stats"
                  or args.vtln == "auto")
    stats, stats_from = load_speaker_stats(args.stats, state, ckpt)
    if stats is None and (need_stats or args.source_speaker):
        raise ValueError(f"{ckpt}: no per-speaker statistics in the checkpoint; pass --stats DUMP/stats.json "
                         "(from `vocoder stats`), or use --f0-transform shift/none and --loudness-transform none")
    target = source = None
    if need_stats:
        target = blend_stats([(speaker_stats(stats, spk, where=stats_from), w) for spk, w in parts])
    if args.source_speaker:
        source = speaker_stats(stats, args.source_speaker, where=stats_from)
    if args.vtln != "none":
        if "mfcc" not in streams:
            raise ValueError(f"{ckpt}: model {name!r} has no MFCC content encoder; --vtln has nothing to warp")
        if args.vtln == "auto":
            missing = [who for who, st in ((target_name, target), (args.source_speaker, source))
                       if who and st is not None and st.formants_hz is None]
            if missing:
                raise ValueError(f"{stats_from}: no formant statistics for {', '.join(missing)}; "
                                 "run `vocoder stats --formants DUMP` and pass --stats")

    features = (state.get("config") or {}).get("features")
    if not features:
        raise ValueError(f"{ckpt}: checkpoint has no feature settings (`features:` in its config)")
    analysis = {k: v for k, v in (("f0_method", args.f0_method), ("f0_min", args.f0_min),
                                  ("f0_max", args.f0_max)) if v is not None}
    features = {**features, **analysis}
    feature_config = FeatureConfig.from_dict({**features, "streams": [s for s in streams if s in FRAME_STREAMS]})
    if analysis:
        from ..analysis.f0 import check_f0_range

        check_f0_range(feature_config.f0_min, feature_config.f0_max, sample_rate=feature_config.sample_rate)
    inputs = _Inputs(args.input, model=model, feature_config=feature_config, streams=streams,
                     allow_pipes=args.allow_pipes)
    if analysis and inputs.dump is not None:
        raise ValueError(f"{args.input}: --f0-method/--f0-min/--f0-max apply to audio input; this feature "
                         "dump already holds its f0 (extract it with the analysis wanted)")
    out = Path(args.output)
    if inputs.single:
        paths = {inputs.utts[0]: out / f"{inputs.utts[0]}.wav" if out.is_dir() else out}
    else:
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out}: exists and is not a directory (IN {args.input} holds several utterances)")
        paths = {utt: out / f"{utt}.wav" for utt in inputs.utts}

    reverb = None
    if args.reverb_from:
        from ..reverb_io import load_reverb
        reverb = load_reverb(args.reverb_from, sample_rate=model.sample_rate, device=device)

    settings = {"checkpoint": str(ckpt), "step": int(state.get("step", 0)), "target": args.target,
                "mix": args.mix, "f0_transform": args.f0_transform, "f0_shift": args.f0_shift,
                "loudness_transform": args.loudness_transform, "loudness_shift": args.loudness_shift,
                "stats": str(Path(args.stats).resolve()) if args.stats else None,
                "source_speaker": args.source_speaker, "vtln": args.vtln, "dry": args.dry,
                "reverb_from": args.reverb_from, "seed": args.seed}
    settings.update(analysis)
    record: dict[str, dict] = {}
    if not inputs.single:
        record = _previous_record(out / "convert.json", settings) if not args.overwrite else {}
        remove_stale_temps(out, "*.wav")  # wavs a killed run was writing (never under their names)
    failed: dict[str, str] = {}
    done = skipped = 0
    for utt in tqdm(inputs.utts, desc="convert", unit="utt", file=sys.stderr,
                    disable=inputs.single or not sys.stderr.isatty()):
        if not inputs.single and utt in record and paths[utt].exists():
            skipped += 1
            continue
        try:
            feats, n = inputs.load(utt)
            src = source or VoiceStats.from_features(feats["f0"], feats["vuv"], feats["loudness"])
            f0_in = feats["f0"]
            feats["f0"] = transform_f0(f0_in, feats["vuv"], method=args.f0_transform, source=src, target=target,
                                       shift_semitones=args.f0_shift)
            gain = args.loudness_shift
            if args.loudness_transform == "stats":
                gain += loudness_offset(source=src, target=target)
            alpha = 1.0
            if args.vtln == "auto":
                src_formants = source.formants_hz if source is not None else inputs.formants(utt, feats["vuv"])
                alpha = vtln_factor(src_formants, target.formants_hz)
            elif args.vtln != "none":
                alpha = float(args.vtln)
            if alpha != 1.0:
                feats["mfcc"] = warp_mfcc(feats["mfcc"], alpha, sample_rate=feature_config.sample_rate,
                                          n_mels=feature_config.mfcc_n_mels)
            audio = synthesize_utterance(model, feats, speaker_index=speaker_index, loudness_shift=gain,
                                         dry=args.dry, device=device, seed=args.seed,
                                         speaker_embedding=embedding, reverb=reverb)
            save_audio(paths[utt], audio[:n], model.sample_rate)
            if not inputs.single:
                # Kept up to date item by item: after a crash, a rerun skips what was done.
                record[utt] = {"f0_shift_semitones": _applied_shift(f0_in, feats), "loudness_shift_db": gain,
                               "vtln_alpha": alpha}
                _write_record(out / "convert.json", settings, record)
            done += 1
            if inputs.single:
                print(f"vocoder convert: {paths[utt]}: to {target_name}; {_f0_summary(f0_in, feats)}, "
                      f"loudness {gain:+.1f} dB" + (f", vtln x{alpha:.3f}" if args.vtln != "none" else ""),
                      file=sys.stderr)
        except OutputError:
            raise  # disk full or unwritable output: every item would fail; stop with the cause
        except (ValueError, OSError, RuntimeError) as exc:
            if inputs.single:
                raise
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            label = inputs.label(utt)
            failed[utt] = cause if label in cause else f"{label}: {cause}"
            tqdm.write(f"vocoder convert: {utt}: {failed[utt]}", file=sys.stderr)
            if args.fail_fast:
                break
    if inputs.single:
        return 0
    print(f"vocoder convert: {out}: {done} written to {target_name}"
          + (f", {skipped} already there" if skipped else "") + f", {len(failed)} failed", file=sys.stderr)
    if failed:
        print("vocoder convert: failed items:", file=sys.stderr)
        for utt, cause in failed.items():
            print(f"  {utt}: {cause}", file=sys.stderr)
        return 1
    return 0


def _previous_record(path: Path, settings: dict) -> dict:
    """Per-utterance entries of an earlier run with the same settings, else {}."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("settings") != settings:
        return {}
    return dict(doc.get("utterances") or {})


def _write_record(path: Path, settings: dict, record: dict) -> None:
    from ..outputs import OutputError
    from .evaluate import write_json_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"settings": settings, "utterances": dict(sorted(record.items()))})
    except OSError as exc:
        raise OutputError.wrap(path, "the conversion record", exc) from None


def _applied_shift(f0_before, feats) -> float | None:
    """Median over voiced frames of the f0 change, in semitones (None if none voiced)."""
    import numpy as np

    before = np.asarray(f0_before, dtype=np.float64)
    after = np.asarray(feats["f0"], dtype=np.float64)
    voiced = (np.asarray(feats["vuv"]) > 0.5) & (before > 0) & (after > 0)
    if not voiced.any():
        return None
    return float(np.median(12.0 * np.log2(after[voiced] / before[voiced])))


def _f0_summary(f0_before, feats) -> str:
    import numpy as np

    voiced = (np.asarray(feats["vuv"]) > 0.5) & (np.asarray(f0_before) > 0)
    if not voiced.any():
        return "no voiced frames"
    return (f"median f0 {np.median(f0_before[voiced]):.1f} -> {np.median(feats['f0'][voiced]):.1f} Hz")
