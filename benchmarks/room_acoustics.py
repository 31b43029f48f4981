#!/usr/bin/env python
"""Blind dereverberation and the learned room (the DDSP paper's room-acoustics experiment).

Data: the speech utterances of the mini corpus train and eval splits
(egs/mini/corpus/speech/*/*.flac, splits/{train,eval}; 16 kHz, dry) are convolved with
one synthetic room impulse response (vocoder.effects.synthetic_rir: unit direct path,
exponentially decaying Gaussian tail; RT60 ``--rt60`` = 0.5 s, direct-to-reverberant
ratio ``--drr-db`` = 0 dB, 1 s long), the tail kept; all files are scaled by one gain
(peak 0.9) and get a white noise floor at ``--noise-db`` (-70 dBFS: a recording has
one, and without it the 16-bit dump ends every file in digital silence, where the
loss's log-magnitude term punishes any reverberant tail and drives the learned decay
too short). The files go into temporary Kaldi data dirs; features come from
``vocoder extract`` and ``vocoder stats`` with the debug speech config's settings
(harvest, 5 ms hop, f0/vuv/loudness/MFCC).

Model: the debug speech config's DDSP network (egs/mini/voc1/conf/ddsp_speech.debug.yaml:
hidden 32, GRU 32, z 8, speaker embeddings) with a 1 s reverb, trained on the
reverberant audio by the project's Trainer (multi-scale spectral loss, AdamW, lr 2e-3;
1.5 s crops, batch 8, ``--steps`` 600). The reverb is chosen by ``--reverb``:
``room`` (default) is ExpDecayReverb(trainable_noise=True, lr_scale=10): free taps
under a learned exponential envelope; ``exp_decay`` the same with fixed noise;
``fir`` the model's built-in Reverb (free taps, dry/wet mix). Every reverb starts
from RT60 ``--init-rt60`` = 0.2 s and a wet level of -20 dB, not from the true room.

Figures:

* RT60 of the learned reverb: ``rt60_from_ir`` (Schroeder T20) of the model's wet
  impulse response, against the true RT60 measured the same way on the wet part of
  the synthetic response; target: within 20 %.
* Late-reverberant energy (vocoder.metrics.late_reverb_energy_db): the energy 50 to
  150 ms after the speech offsets of the dry original, relative to the signal's own
  speech energy, in dB; mean over the eval utterances, for the reverberant reference,
  the model's ``dry=True`` output (blind dereverberation), its normal (wet) output and
  the dry original (the floor). Target: the dry output at least 10 dB below the
  reverberant reference.

    python benchmarks/room_acoustics.py            # full run (about 5 minutes on 2 cores)
    python benchmarks/room_acoustics.py --quick    # about 30 s; the targets are not expected

``--workdir DIR`` keeps the data, features and model (features are reused when the
data settings are the same). Figures go to stderr; the last line on stdout is one
JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _common import emit, machine_info

from vocoder.audio import load_audio, save_audio
from vocoder.data.kaldi import utt2spk_to_spk2utt, write_table
from vocoder.effects import ExpDecayReverb, Reverb, rt60_from_ir, synthetic_rir
from vocoder.metrics import late_reverb_energy_db

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "egs" / "mini" / "corpus"
DEBUG_CONFIG = ROOT / "egs" / "mini" / "voc1" / "conf" / "ddsp_speech.debug.yaml"
SR = 16000
VOICES = ("f3", "kal", "ked", "slt")
REVERBS = ("room", "exp_decay", "fir")
SIGNALS = ("original_dry", "reverberant_ref", "model_wet", "model_dry")


def log(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def speech_ids(split: str) -> list[str]:
    ids = (CORPUS / "splits" / split).read_text().split()
    return [u for u in ids if u.split("_")[0] in VOICES]


def load_dry(utt: str) -> np.ndarray:
    x, sr = load_audio(CORPUS / "speech" / utt.split("_")[0] / f"{utt}.flac")
    assert sr == SR, (utt, sr)
    return x.astype(np.float64)


def reverberate(utts: dict[str, list[str]], rir: np.ndarray, work: Path, *, noise_db: float, seed: int) -> dict:
    """Convolve every utterance with ``rir`` (tail kept), scale all by one gain (peak 0.9),
    add white noise at ``noise_db`` dBFS; write the files and the Kaldi data dirs.

    Returns:
        {"dry": {utt: dry original}, "wet": {utt: reverberant file}, "gain": the gain}.
    """
    from scipy.signal import fftconvolve

    dry = {u: load_dry(u) for split in utts.values() for u in split}
    wet = {u: fftconvolve(x, rir) for u, x in dry.items()}
    gain = 0.9 / max(np.abs(y).max() for y in wet.values())
    rng = np.random.default_rng(seed)
    wet = {u: gain * y + 10.0 ** (noise_db / 20.0) * rng.standard_normal(y.size) for u, y in wet.items()}
    for split, ids in utts.items():
        data = work / "data" / split
        data.mkdir(parents=True, exist_ok=True)
        for u in ids:
            save_audio(work / "wav" / f"{u}.wav", wet[u].astype(np.float32), SR, subtype="FLOAT")
        write_table(data / "wav.scp", {u: str(work / "wav" / f"{u}.wav") for u in ids})
        utt2spk = {u: u.split("_")[0] for u in ids}
        write_table(data / "utt2spk", utt2spk)
        write_table(data / "spk2utt", {k: " ".join(v) for k, v in utt2spk_to_spk2utt(utt2spk).items()})
    return {"dry": dry, "wet": wet, "gain": gain}


def vocoder_cli(*args: str) -> None:
    """Run ``vocoder ARGS`` in a child process; on failure raise with its stderr's tail."""
    cmd = [sys.executable, "-m", "vocoder.cli.main", *args]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{tail}")


def extract_features(work: Path, data_stamp: dict, *, nj: int) -> None:
    """``vocoder extract`` of both splits and ``vocoder stats``; redone when the data changed."""
    stamp_file = work / "dump" / "data_stamp.json"
    stamp = json.dumps(data_stamp, sort_keys=True)
    fresh = stamp_file.is_file() and stamp_file.read_text() == stamp
    for split in ("train", "eval"):
        vocoder_cli("extract", "--config", str(work / "conf.yaml"), "--nj", str(nj),
                    *([] if fresh else ["--overwrite"]), str(work / "data" / split), str(work / "dump" / split))
    vocoder_cli("stats", str(work / "dump" / "train"))
    stamp_file.write_text(stamp)


def make_reverb(kind: str, *, duration_s: float, rt60_s: float, lr_scale: float, seed: int) -> torch.nn.Module:
    if kind == "fir":
        return Reverb(sample_rate=SR, duration_s=duration_s, rt60_s=rt60_s, seed=seed)
    return ExpDecayReverb(sample_rate=SR, duration_s=duration_s, rt60_s=rt60_s, lr_scale=lr_scale,
                          trainable_noise=kind == "room", seed=seed)


def train(work: Path, cfg: dict, reverb: torch.nn.Module) -> tuple[torch.nn.Module, dict]:
    """What `vocoder train` does, through the Python API, with ``reverb`` as the model's room."""
    from vocoder.data.dataset import CropDataset, crop_frames_for
    from vocoder.data.features import FeatureDump
    from vocoder.models import build_model, get_model_class
    from vocoder.training.trainer import TrainConfig, Trainer

    dump = FeatureDump(work / "dump" / "train")
    tcfg = TrainConfig.from_dict(cfg["train"])
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "name"}
    model_cfg.update(sample_rate=dump.sample_rate, hop_length=dump.hop_length,
                     speakers=sorted(set(dump.utt2spk.values())))
    torch.manual_seed(tcfg.seed)
    model = build_model(cfg["model"]["name"], **model_cfg)
    model.reverb = reverb
    model.set_statistics(json.loads((work / "dump" / "train" / "stats.json").read_text()))
    streams = list(get_model_class(cfg["model"]["name"]).input_streams)
    crop = crop_frames_for(tcfg.crop_seconds, sample_rate=model.sample_rate, hop_length=model.hop_length)
    train_set = CropDataset(dump, streams=streams, crop_frames=crop, speakers=model.speakers, seed=tcfg.seed)
    shutil.rmtree(work / "exp", ignore_errors=True)
    trainer = Trainer(model, train_set, None, exp_dir=work / "exp", config=tcfg, full_config=cfg,
                      device=torch.device("cpu"), progress=False)
    summary = trainer.train()
    return model.eval(), summary


@torch.no_grad()
def synthesize(model, feats: dict, speaker: int, *, dry: bool, seed: int = 0) -> np.ndarray:
    """One utterance's audio from its dump features (``dry``: without the reverb)."""
    from vocoder.data.dataset import utterance_inputs

    feats = utterance_inputs(feats)
    inputs = {k: torch.from_numpy(v).unsqueeze(0) for k, v in feats.items() if k != "wav"}
    inputs["speaker"] = torch.tensor([speaker])
    out = model(inputs, generator=torch.Generator().manual_seed(seed), dry=dry)
    return out["audio"][0].double().numpy()


def room_figures(reverb: torch.nn.Module) -> tuple[float, float]:
    """(RT60 of the wet impulse response, direct-to-reverberant energy ratio in dB)."""
    with torch.no_grad():
        ir = reverb.impulse_response().detach().double()
    rt60 = float(rt60_from_ir(ir[1:], sample_rate=SR))
    drr = 10.0 * math.log10(float(ir[0]) ** 2 / max(float(ir[1:].pow(2).sum()), 1e-300))
    return rt60, drr


def late_energies(model, work: Path, data: dict) -> dict[str, dict[str, float]]:
    """late_reverb_energy_db of every signal of every eval utterance (offsets of the dry original)."""
    from vocoder.data.features import FeatureDump

    dump = FeatureDump(work / "dump" / "eval")
    rows = {}
    for u in dump.utts:
        feats = dump.load(u)
        ref = data["dry"][u]
        wet = data["wet"][u]
        signals = {"original_dry": np.pad(ref, (0, wet.size - ref.size)), "reverberant_ref": wet,
                   "model_wet": synthesize(model, feats, model.speaker_index(dump.speaker(u)), dry=False),
                   "model_dry": synthesize(model, feats, model.speaker_index(dump.speaker(u)), dry=True)}
        rows[u] = {k: late_reverb_energy_db(v, ref, SR) for k, v in signals.items()}
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer utterances and steps (about a minute)")
    p.add_argument("--steps", type=int, help="training steps (default 600; quick 60)")
    p.add_argument("--reverb", choices=REVERBS, default="room", help="the model's reverb (default room)")
    p.add_argument("--rt60", type=float, default=0.5, help="RT60 of the synthetic room, s (default 0.5)")
    p.add_argument("--drr-db", type=float, default=0.0, help="its direct-to-reverberant ratio, dB (default 0)")
    p.add_argument("--noise-db", type=float, default=-70.0, help="white noise floor added to the reverberant "
                   "audio, dBFS (default -70)")
    p.add_argument("--init-rt60", type=float, default=0.2, help="RT60 of the model's initial reverb, s (0.2)")
    p.add_argument("--reverb-s", type=float, default=1.0, help="length of the true and learned IRs, s (1.0)")
    p.add_argument("--lr-scale", type=float, default=10.0, help="ExpDecayReverb lr_scale (default 10)")
    p.add_argument("--crop-s", type=float, default=1.5, help="training crop length, s (default 1.5)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training (default 1: the debug "
                   "network's operations are too small to gain from more, and lose badly on a loaded machine)")
    p.add_argument("--nj", type=int, default=2, help="feature extraction jobs (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="keep the data, features and model here (default: a temporary dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train.learning_rate=0.003")
    args = p.parse_args()
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    torch.set_num_threads(args.threads)

    train_ids, eval_ids = speech_ids("train"), speech_ids("eval")
    if args.quick:
        train_ids, eval_ids = train_ids[::8], eval_ids[::4]
    steps = args.steps or (60 if args.quick else 600)

    from vocoder.cli.train import apply_overrides

    cfg = yaml.safe_load(DEBUG_CONFIG.read_text())
    cfg["model"]["reverb_duration_s"] = args.reverb_s
    cfg["train"].update(max_steps=steps, batch_size=args.batch, crop_seconds=args.crop_s, warmup_steps=min(50, steps // 4),
                        checkpoint_interval=10**9, valid_interval=10**9, audio_interval=10**9, log_interval=50,
                        amp=False, seed=args.seed)
    cfg = apply_overrides(cfg, args.set)

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="room_acoustics."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rir = synthetic_rir(args.rt60, SR, duration_s=args.reverb_s, drr_db=args.drr_db, seed=args.seed)
        true_rt60 = float(rt60_from_ir(rir[1:], sample_rate=SR))
        t = time.perf_counter()
        data = reverberate({"train": train_ids, "eval": eval_ids}, rir.double().numpy(), work,
                           noise_db=args.noise_db, seed=args.seed)
        log(f"room: RT60 {args.rt60:g} s (T20 of the response: {true_rt60:.3f} s), DRR {args.drr_db:g} dB, "
            f"{args.reverb_s:g} s; noise floor {args.noise_db:g} dBFS; {len(train_ids)} train + {len(eval_ids)} "
            f"eval utterances ({time.perf_counter() - t:.1f} s)")

        (work / "conf.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        t = time.perf_counter()
        extract_features(work, {"rt60": args.rt60, "drr_db": args.drr_db, "noise_db": args.noise_db,
                                "reverb_s": args.reverb_s, "seed": args.seed, "utts": train_ids + eval_ids,
                                "features": cfg["features"]}, nj=args.nj)
        t_features = time.perf_counter() - t
        log(f"features: {t_features:.0f} s")

        reverb = make_reverb(args.reverb, duration_s=args.reverb_s, rt60_s=args.init_rt60,
                             lr_scale=args.lr_scale, seed=args.seed)
        init_rt60, init_drr = room_figures(reverb)
        t = time.perf_counter()
        model, summary = train(work, cfg, reverb)
        t_train = time.perf_counter() - t
        log(f"training: {summary['steps']} steps in {t_train:.0f} s ({summary['steps'] / t_train:.2f} steps/s), "
            f"last loss {summary['last_loss']:.3f}")
        learned_rt60, learned_drr = room_figures(model.reverb)
        rows = late_energies(model, work, data)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    means = {k: float(np.nanmean([r[k] for r in rows.values()])) for k in SIGNALS}
    n_valid = int(sum(math.isfinite(r["reverberant_ref"]) for r in rows.values()))
    rt60_error = abs(learned_rt60 - true_rt60) / true_rt60
    dry_vs_ref = means["model_dry"] - means["reverberant_ref"]
    log()
    log(f"{'utterance':10s} " + " ".join(f"{n:>16s}" for n in SIGNALS))
    for u, r in rows.items():
        log(f"{u:10s} " + " ".join(f"{r[n]:16.1f}" for n in SIGNALS))
    log(f"{'mean':10s} " + " ".join(f"{means[n]:16.1f}" for n in SIGNALS))
    log(f"(late-reverberant energy 50-150 ms after the dry offsets, dB re the signal's speech energy; "
        f"{n_valid} utterances with offsets)")
    log()
    log("| figure | value | target |\n|---|---|---|\n"
        f"| true RT60 (T20 of the synthetic response) | {true_rt60:.3f} s | |\n"
        f"| learned RT60 (initial {init_rt60:.3f} s) | {learned_rt60:.3f} s | |\n"
        f"| RT60 error | {100 * rt60_error:.1f} % | <= 20 % |\n"
        f"| learned DRR (true {args.drr_db:g} dB, initial {init_drr:.1f} dB) | {learned_drr:.1f} dB | |\n"
        f"| late energy, reverberant reference | {means['reverberant_ref']:.1f} dB | |\n"
        f"| late energy, model wet output | {means['model_wet']:.1f} dB | |\n"
        f"| late energy, model dry output | {means['model_dry']:.1f} dB | |\n"
        f"| late energy, dry original | {means['original_dry']:.1f} dB | |\n"
        f"| dry output - reverberant reference | {dry_vs_ref:+.1f} dB | <= -10 dB |")
    targets = {"rt60_within_20pct": bool(rt60_error <= 0.2), "dry_10db_below_ref": bool(dry_vs_ref <= -10.0)}
    result = {
        "benchmark": "room_acoustics", "quick": args.quick, "reverb": args.reverb, "steps": summary["steps"],
        "true_rt60_s": true_rt60, "requested_rt60_s": args.rt60, "initial_rt60_s": init_rt60,
        "learned_rt60_s": learned_rt60, "rt60_error": rt60_error,
        "true_drr_db": args.drr_db, "initial_drr_db": init_drr, "learned_drr_db": learned_drr,
        "late_energy_dry_db": means["model_dry"], "late_energy_reverberant_ref_db": means["reverberant_ref"],
        "late_energy_wet_db": means["model_wet"], "late_energy_original_dry_db": means["original_dry"],
        "dry_vs_ref_db": dry_vs_ref, "targets": targets, "targets_met": all(targets.values()),
        "per_utt": rows, "eval_utterances": len(rows), "eval_utterances_with_offsets": n_valid,
        "train_utterances": len(train_ids), "last_loss": summary["last_loss"], "noise_db": args.noise_db,
        "lr_scale": args.lr_scale if args.reverb != "fir" else None, "reverb_duration_s": args.reverb_s,
        "train": {k: cfg["train"][k] for k in ("batch_size", "crop_seconds", "learning_rate", "max_steps")},
        "seconds_features": t_features, "seconds_training": t_train,
        "wall_seconds": time.perf_counter() - t_start,
        "load_average_1min_start": load_start, "load_average_1min_end": os.getloadavg()[0],
        **machine_info(args.threads),
    }
    emit(result)


if __name__ == "__main__":
    main()
