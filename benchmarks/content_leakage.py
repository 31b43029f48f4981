"""How much speaker identity the DDSP content encoder lets through (voice conversion).

    python benchmarks/content_leakage.py --train-dump DUMP --eval-dump DUMP \\
        --checkpoint NAME=EXP_OR_CKPT [--checkpoint NAME=...] [--quick]

For each checkpoint (a ``ddsp`` model with an MFCC encoder), the encoder's z is computed
for every utterance of both dumps (which must hold ``mfcc`` and ``loudness`` with the
model's analysis settings, e.g. egs/mini/vc1/dump/speech_{train,dev}). A speaker probe, a
multinomial logistic regression on standardised frame vectors, is trained on the
training dump's frames and tested on the other dump's (unseen sentences): frame accuracy,
and utterance accuracy (sum of frame log-probabilities). The same probe on the encoder's
own input (the MFCCs it reads, after its normalisation: per utterance for
``encoder_norm: instance``) shows how much identity the input carries; chance is
1 / speakers. Only frames within 40 dB of their utterance's loudest are used (silence
says nothing about a speaker).

A lower probe accuracy on z means less speaker identity in the content path, so the
speaker embedding, not z, decides the voice. The last line printed is JSON.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import emit  # noqa: E402

from vocoder.data.features import FeatureDump  # noqa: E402
from vocoder.training.checkpoint import load_model  # noqa: E402

SILENCE_DB = 40.0


def frames_of(dump: FeatureDump, model, n_mfcc: int, limit: int | None):
    """Per utterance: (speaker, encoder input frames, z frames), speech frames only."""
    out = []
    utts = list(dump.utts)
    if limit and len(utts) > limit:  # evenly spaced: every speaker (utts sort by speaker)
        utts = [utts[i] for i in np.linspace(0, len(utts) - 1, limit).round().astype(int)]
    for utt in utts:
        d = dump.load(utt, ["mfcc", "loudness"])
        keep = d["loudness"] >= d["loudness"].max() - SILENCE_DB
        mfcc = torch.from_numpy(np.asarray(d["mfcc"][:, :n_mfcc], dtype=np.float32)).unsqueeze(0)
        with torch.no_grad():
            x = mfcc
            if getattr(model, "encoder_norm", "layer") == "instance":
                x = (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True).clamp_min(1e-3)
            z = model.encode(mfcc)[0].numpy()
        out.append((dump.speaker(utt), x[0].numpy()[keep], z[keep]))
    return out


def probe(train, test, which: int, *, steps: int = 300, seed: int = 0) -> dict:
    """Logistic-regression speaker probe on item[which] (1: encoder input, 2: z)."""
    speakers = sorted({s for s, *_ in train})
    index = {s: i for i, s in enumerate(speakers)}
    x = torch.from_numpy(np.concatenate([u[which] for u in train])).double()
    y = torch.cat([torch.full((len(u[which]),), index[u[0]]) for u in train])
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    torch.manual_seed(seed)
    lin = torch.nn.Linear(x.shape[1], len(speakers)).double()
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(x), y) + 1e-4 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    frame_hits = frames = utt_hits = utts = 0
    with torch.no_grad():
        for spk, *feats in test:
            if spk not in index:
                continue
            logp = torch.log_softmax(lin((torch.from_numpy(feats[which - 1]).double() - mean) / std), -1)
            frame_hits += int((logp.argmax(-1) == index[spk]).sum())
            frames += logp.shape[0]
            utt_hits += int(int(logp.sum(0).argmax()) == index[spk])
            utts += 1
    return {"frame_accuracy": frame_hits / max(frames, 1), "utterance_accuracy": utt_hits / max(utts, 1),
            "frames": frames, "utterances": utts, "chance": 1.0 / len(speakers)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-dump", required=True, help="dump to train the probe on (training split)")
    p.add_argument("--eval-dump", required=True, help="dump to test it on (unseen sentences)")
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=EXP_OR_CKPT",
                   help="model to measure (repeatable)")
    p.add_argument("--quick", action="store_true", help="a few utterances per dump (under a minute)")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    train_dump, eval_dump = FeatureDump(args.train_dump), FeatureDump(args.eval_dump)
    limit = 24 if args.quick else None
    results = {}
    print(f"{'model':<16} {'encoder':<24} {'probe on':<10} {'frame acc':>9} {'utt acc':>8} {'chance':>7}")
    for spec in args.checkpoint:
        name, _, path = spec.partition("=")
        if not path:
            p.error(f"--checkpoint {spec!r}: expected NAME=EXP_OR_CKPT")
        model, _ = load_model(path)
        if not getattr(model, "z_dim", 0):
            p.error(f"{path}: the model has no content encoder (z_dim 0)")
        train = frames_of(train_dump, model, model.n_mfcc, limit)
        test = frames_of(eval_dump, model, model.n_mfcc, limit)
        enc = f"{model.encoder_norm} norm, z {model.z_dim}"
        entry = {"encoder_norm": model.encoder_norm, "z_dim": model.z_dim, "n_mfcc": model.n_mfcc}
        for label, which in (("input", 1), ("z", 2)):
            r = probe(train, test, which)
            entry[label] = r
            print(f"{name:<16} {enc:<24} {label:<10} {r['frame_accuracy']:9.3f} {r['utterance_accuracy']:8.3f} "
                  f"{r['chance']:7.3f}")
        results[name] = entry
    emit({"benchmark": "content_leakage", "quick": args.quick, "results": results})
    return 0 if all(math.isfinite(v["z"]["frame_accuracy"]) for v in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
