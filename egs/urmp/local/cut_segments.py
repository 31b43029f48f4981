#!/usr/bin/env python3
"""Write the segments of a data dir as wav files: a data dir without segments.

    local/cut_segments.py [--sample-rate SR] DATA_DIR OUT_DIR

Each utterance of DATA_DIR (wav.scp + segments) is read on its own (the reader seeks to
the segment: one segment in memory at a time), resampled to --sample-rate if given,
and written to OUT_DIR/wav/<utt>.wav (16-bit PCM); OUT_DIR gets wav.scp (absolute
paths), utt2spk and spk2utt for them. The timbre transfer stages take their inputs
from it: `vocoder evaluate-conversion` pairs each output with its input file. A wav
already there is kept (a rerun writes only what is missing).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "cut_segments.py"


def main(argv=None) -> int:
    from vocoder.audio import save_audio
    from vocoder.data.kaldi import read_table, utt2spk_to_spk2utt, write_table
    from vocoder.data.sources import list_audio, load_item

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p.add_argument("--sample-rate", "--sample_rate", type=int, default=None,
                   help="resample to this rate (default: the recording's)")
    args = p.parse_args(argv)
    data, out = Path(args.data_dir), Path(args.out_dir)
    try:
        items = list_audio(data)
        utt2spk = read_table(data / "utt2spk")
    except (OSError, ValueError) as exc:
        print(f"{PROG}: {data}: {exc}", file=sys.stderr)
        return 1
    wavs, written = {}, 0
    for utt, item in items.items():
        wav = (out / "wav" / f"{utt}.wav").resolve()
        if not wav.is_file():
            try:
                audio, sr = load_item(item, sample_rate=args.sample_rate)
            except ValueError as exc:
                print(f"{PROG}: {utt}: {exc}", file=sys.stderr)
                return 1
            save_audio(wav, audio, sr)
            written += 1
        wavs[utt] = str(wav)
    write_table(out / "wav.scp", wavs)
    utt2spk = {u: utt2spk[u] for u in wavs}
    write_table(out / "utt2spk", utt2spk)
    write_table(out / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    print(f"{PROG}: {out}: {len(wavs)} utterances ({written} written, {len(wavs) - written} already there)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
