"""Synthesize audio from a feature dump (or a mel feats.scp) with a trained model.

    vocoder synth --checkpoint EXP_OR_CKPT (--dump DUMP_DIR | --feats FEATS_SCP) --out OUT_DIR
                  [--f0-shift SEMITONES] [--loudness-shift DB] [--speaker NAME]
                  [--dry | --reverb-from CKPT_OR_WAV] [--device auto] [--utts N] [--seed 0]

`--feats` reads a Kaldi script file of (frames, n_mels) log10 mel spectrograms, e.g. the
feats.scp a TTS front end writes, for models that need the mel alone (mel_ddsp); the
mel must follow the model's analysis settings (rate, hop, bands; checked against a
feats.yaml beside the scp when there is one) and is normalised with the statistics
stored in the checkpoint. Each utterance gives frames * hop_length samples.

Writes OUT_DIR/<utt>.wav at the model's sample rate, one file per utterance of the dump,
and OUT_DIR/synth.json with the real-time factor (compute seconds per audio second,
with device and threads). `--f0-shift` transposes by semitones, `--loudness-shift` adds
dB to the loudness input, `--speaker` forces a speaker/instrument embedding, `--dry`
bypasses the learned reverb, `--reverb-from` replaces it with another checkpoint's
learned reverb or an impulse response file (resampled to the model's rate; e.g. one
written by `vocoder export-ir`), `--int8` quantises the network for faster CPU
inference. Existing outputs are skipped unless --overwrite, so a rerun after a crash
writes only the missing wavs (each is written to a hidden temporary file and renamed, so
a wav under its name is complete); an utterance that fails is reported and the others go
on, but an output that cannot be written (disk full, unwritable OUT_DIR) stops the command.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint file or experiment dir (newest checkpoint)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dump", help="feature dump directory (from `vocoder extract`)")
    src.add_argument("--feats", metavar="FEATS_SCP",
                     help="Kaldi feats.scp of (frames, n_mels) log10 mel spectrograms (e.g. from a TTS front end), "
                          "instead of --dump; for models that read the mel alone")
    p.add_argument("--out", required=True, help="output directory for wavs")
    p.add_argument("--f0-shift", type=float, default=0.0, help="transpose f0 by this many semitones")
    p.add_argument("--loudness-shift", type=float, default=0.0, help="add this many dB to the loudness input")
    p.add_argument("--speaker", help="speaker/instrument embedding to use (default: the utterance's own)")
    room = p.add_mutually_exclusive_group()
    room.add_argument("--dry", action="store_true", help="bypass the learned reverb")
    room.add_argument("--reverb-from", metavar="CKPT_OR_WAV",
                      help="instead of the model's reverb: another checkpoint's (file or experiment dir) learned "
                           "reverb, or an impulse response audio file")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--utts", type=int, help="only the first N utterances")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--overwrite", action="store_true", help="rewrite existing wavs")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing utterance")
    p.add_argument("--int8", action="store_true",
                   help="CPU: int8 dynamic quantisation of the network's Linear layers and of GRUs over 256 "
                        "units (faster for large networks; output differs from float32 by about -35 dB)")


def synthesize_utterance(model, feats: dict, *, speaker_index: int | None, f0_shift: float = 0.0,
                         loudness_shift: float = 0.0, dry: bool = False, device="cpu", seed: int = 0,
                         speaker_embedding=None, reverb=None):
    """Run the model on one utterance's streams (numpy) and return (samples,) numpy audio.

    ``speaker_embedding`` ((speaker_dim,) tensor, e.g. a blend of speakers) replaces the
    embedding of ``speaker_index``; ``reverb`` (a module, see vocoder/reverb_io.py)
    replaces the model's own reverb on its dry output.
    """
    import numpy as np
    import torch

    from ..data.dataset import utterance_inputs

    feats = utterance_inputs(feats)
    inputs = {k: torch.from_numpy(np.ascontiguousarray(v)).unsqueeze(0).to(device)
              for k, v in feats.items() if k != "wav"}
    ratio = 2.0 ** (f0_shift / 12.0)
    for key in ("f0", "f0_continuous"):
        if key in inputs:
            inputs[key] = inputs[key] * ratio
    if "loudness" in inputs:
        inputs["loudness"] = inputs["loudness"] + loudness_shift
    if getattr(model, "n_speakers", 0):
        inputs["speaker"] = torch.tensor([max(0, speaker_index or 0)], device=device)
        if speaker_embedding is not None:
            inputs["speaker_embedding"] = speaker_embedding.reshape(1, -1).to(device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    with torch.inference_mode():
        out = model(inputs, generator=g, dry=dry or reverb is not None)
        audio = out["audio"] if reverb is None else reverb(out["dry_audio"])
    return audio[0].float().cpu().numpy()


def quantize_dynamic_int8(model):
    """The model with its Linear layers, and GRUs over 256 units, quantised to int8 weights
    (CPU inference).

    GRUs of up to 256 units stay float32: batch-1 inference runs them in the compiled loop
    of :mod:`vocoder.models.rnn`, which is faster than torch's quantised GRU.
    """
    import warnings

    import torch
    from torch.ao.quantization import default_dynamic_qconfig

    spec = {torch.nn.Linear: default_dynamic_qconfig}
    for name, module in model.named_modules():
        if type(module) is torch.nn.GRU and module.hidden_size > 256:
            spec[name] = default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)


def _made_by_other_checkpoint(out_dir: Path, ckpt: Path, state: dict) -> bool:
    """True if OUT_DIR/synth.json says its wavs came from another checkpoint or step."""
    info_file = out_dir / "synth.json"
    if not info_file.is_file():
        return False
    try:
        info = json.loads(info_file.read_text())
    except ValueError:
        return True
    return info.get("checkpoint") != str(ckpt) or int(info.get("step", -1)) != int(state.get("step", 0))


def required_streams(model) -> list[str]:
    """The streams a model needs at synthesis: ``required_streams`` if it declares one
    (streams such as training targets may be optional), else all its ``input_streams``."""
    return list(getattr(model, "required_streams", None) or type(model).input_streams)


def check_feature_settings(model, settings: dict, where: str) -> None:
    """Raise ValueError if analysis ``settings`` (FeatureConfig names) disagree with the
    model's ``feature_settings()`` (models without that method are not checked)."""
    if not hasattr(model, "feature_settings"):
        return
    nyquist = model.sample_rate / 2.0
    bad = []
    for key, want in model.feature_settings().items():
        if key not in settings:
            continue
        have = settings[key]
        if key == "mel_f_max":
            have = nyquist if have is None else min(float(have), nyquist)
        same = (have == want) if isinstance(want, str) else abs(float(have) - float(want)) <= 1e-6 * max(1.0, abs(want))
        if not same:
            bad.append(f"{key}={have} (model: {want})")
    if bad:
        raise ValueError(f"{where}: features do not match the model's analysis: {', '.join(bad)}; "
                         "re-extract with the model's settings")


class MelScp:
    """Utterances of a Kaldi feats.scp of (frames, n_mels) log mel spectrograms, read lazily.

    A ``feats.yaml`` beside the scp (as in a feature dump) is checked against the model.
    """

    def __init__(self, path, model):
        import kaldiio
        import yaml

        from ..data.features import refuse_pipes

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: feats.scp not found")
        refuse_pipes(self.path)
        self.scp = kaldiio.load_scp(str(self.path))
        self.utts = sorted(self.scp.keys(), key=lambda u: u.encode())
        if not self.utts:
            raise ValueError(f"{self.path}: no utterances")
        self.n_mels = getattr(model, "n_mels", None)
        meta = self.path.parent / "feats.yaml"
        if meta.is_file():
            features = (yaml.safe_load(meta.read_text()) or {}).get("features") or {}
            check_feature_settings(model, features, str(meta))

    def load(self, utt: str) -> dict:
        import numpy as np

        mel = np.array(self.scp[utt], dtype=np.float32)
        if mel.ndim != 2 or (self.n_mels and mel.shape[1] != self.n_mels) or mel.shape[0] < 1:
            raise ValueError(f"{self.path}: {utt} has shape {mel.shape}, expected (frames, {self.n_mels or 'n_mels'})")
        return {"mel": mel}


def run(args) -> int:
    import torch

    from ..audio import save_audio
    from ..data.features import FeatureDump
    from ..outputs import OutputError, remove_stale_temps, write_atomic
    from ..training.checkpoint import load_model, resolve_checkpoint
    from ..training.trainer import resolve_device

    device = resolve_device(args.device)
    ckpt = resolve_checkpoint(args.checkpoint).resolve()  # absolute: synth.json compares it across runs
    model, state = load_model(ckpt, device=device)
    name = state["config"]["model"]["name"]
    streams = required_streams(model)
    if args.f0_shift and "f0" not in streams:
        raise ValueError(f"--f0-shift: model {name!r} takes no f0 input at synthesis (it reads {', '.join(streams)})")
    if args.loudness_shift and "loudness" not in streams:
        raise ValueError(f"--loudness-shift: model {name!r} takes no loudness input at synthesis "
                         f"(it reads {', '.join(streams)})")
    if args.speaker and not hasattr(model, "speaker_index"):
        raise ValueError(f"--speaker: model {name!r} has no speaker/instrument embedding")
    if args.int8:
        if device.type != "cpu":
            raise ValueError("--int8 is a CPU option; use --device cpu")
        model = quantize_dynamic_int8(model)
    if args.feats:
        if set(streams) != {"mel"}:
            raise ValueError(f"--feats: model {name!r} needs the streams {', '.join(streams)}, not a mel alone; "
                             "use --dump")
        source = MelScp(args.feats, model)
        utt2num_samples = {}
    else:
        dump = FeatureDump(args.dump, streams=streams)
        if dump.sample_rate != model.sample_rate or dump.hop_length != model.hop_length:
            raise ValueError(f"{args.dump}: features at {dump.sample_rate} Hz / hop {dump.hop_length}, but the model "
                             f"expects {model.sample_rate} Hz / hop {model.hop_length}; re-extract with the model's settings")
        check_feature_settings(model, dump.config.to_dict(), args.dump)
        source, utt2num_samples = dump, dump.utt2num_samples
    forced = model.speaker_index(args.speaker) if args.speaker else None
    reverb = None
    if args.reverb_from:
        from ..reverb_io import load_reverb
        reverb = load_reverb(args.reverb_from, sample_rate=model.sample_rate, device=device)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir, "*.wav")  # wavs a killed run was writing (never under their names)
    utts = source.utts[: args.utts] if args.utts else source.utts
    overwrite = args.overwrite or _made_by_other_checkpoint(out_dir, ckpt, state)
    failed, done, compute, audio_s = {}, 0, 0.0, 0.0
    from tqdm import tqdm
    for utt in tqdm(utts, desc="synth", unit="utt", file=sys.stderr, disable=not sys.stderr.isatty()):
        path = out_dir / f"{utt}.wav"
        if path.exists() and not overwrite:
            continue
        try:
            if args.feats:
                feats = source.load(utt)
                spk = forced
            else:
                feats = source.load(utt, streams)
                spk = forced
                if spk is None and getattr(model, "speakers", None):
                    spk_name = source.speaker(utt)
                    spk = model.speakers.index(spk_name) if spk_name in model.speakers else 0
            t = time.perf_counter()
            audio = synthesize_utterance(model, feats, speaker_index=spk, f0_shift=args.f0_shift,
                                         loudness_shift=args.loudness_shift, dry=args.dry, device=device,
                                         seed=args.seed, reverb=reverb)
            compute += time.perf_counter() - t
            n = feats[streams[0]].shape[0] * model.hop_length
            n = min(n, utt2num_samples.get(utt, n))  # the source's length
            audio_s += n / model.sample_rate
            save_audio(path, audio[:n], model.sample_rate)
            done += 1
        except OutputError:
            raise  # disk full or unwritable OUT: every item would fail; stop with the cause
        except (ValueError, OSError, RuntimeError) as exc:
            failed[utt] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"vocoder synth: {utt}: {failed[utt]}", file=sys.stderr)
            if args.fail_fast:
                break
    info = {"checkpoint": str(ckpt), "step": int(state.get("step", 0)), "utterances": done,
            "failed": failed, "compute_seconds": compute, "audio_seconds": audio_s,
            "rtf": compute / audio_s if audio_s else None, "device": str(device),
            "threads": torch.get_num_threads(), "batch": 1}
    write_atomic(out_dir / "synth.json", json.dumps(info, indent=1), what="the synthesis summary")
    rtf = f"RTF {info['rtf']:.4f}" if info["rtf"] else "nothing new synthesized"
    print(f"vocoder synth: {out_dir}: {done} written, {len(failed)} failed; {rtf} on {device}", file=sys.stderr)
    if failed and (args.fail_fast or done == 0):
        return 1
    return 0
