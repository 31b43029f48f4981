"""Run a model exported by `vocoder export` with PyTorch alone (no `vocoder` package).

    python examples/run_exported.py model.ts out.wav [features.npz] [--block-frames 4]

features.npz holds arrays f0 (frames,) Hz, vuv (frames,), loudness (frames,) dB and
mfcc (frames, n_mfcc), e.g. saved from a feature dump; without it a 3 s glide is played.
The features are fed a few frames at a time, as an audio callback would, and the
output (delayed by the model's `delay_samples`) is trimmed and written as 16-bit WAV.
"""
import argparse
import time
import wave

import numpy as np
import torch


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("features", nargs="?")
    p.add_argument("--block-frames", type=int, default=4)
    p.add_argument("--sample-rate", type=int, default=16000, help="the model's rate (written into the WAV)")
    p.add_argument("--n-mfcc", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    m = torch.jit.load(args.model)
    if args.features:
        z = np.load(args.features)
        f0, vuv, loud, mfcc = (torch.from_numpy(z[k]).float()[None] for k in ("f0", "vuv", "loudness", "mfcc"))
    else:
        n = 300
        t = torch.arange(n, dtype=torch.float32)
        vuv = torch.ones(1, n)
        f0 = 110.0 * 2.0 ** (t / n)[None]
        loud = torch.full((1, n), -30.0)
        mfcc = torch.zeros(1, n, args.n_mfcc)
    m.reset()
    outs, times = [], []
    with torch.no_grad():
        for a in range(0, f0.shape[1], args.block_frames):
            b = a + args.block_frames
            t0 = time.perf_counter()
            outs.append(m(f0[:, a:b], vuv[:, a:b], loud[:, a:b], mfcc[:, a:b]))
            times.append(time.perf_counter() - t0)
        outs.append(m.flush())
    audio = torch.cat(outs, dim=1)[0, m.delay_samples:].numpy()
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(args.out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(args.sample_rate)
        w.writeframes(pcm.tobytes())
    ms = sorted(1000.0 * t for t in times)
    print(f"{args.out}: {audio.size} samples; per call of {args.block_frames} frames: "
          f"median {ms[len(ms) // 2]:.2f} ms, max {ms[-1]:.2f} ms")


if __name__ == "__main__":
    main()
