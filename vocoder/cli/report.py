"""HTML report of an experiment: metrics table, audio players, spectrograms, f0 and
loudness plots.

Reads EXP/metrics.json (written by `vocoder evaluate`) and EXP/config.yaml if present,
and writes a self-contained folder (default EXP/report): index.html with relative
links, PNG figures in img/ and 16-bit WAV copies of the audio in audio/, so the
folder can be zipped and moved. A rerun replaces the folder.

Example:
    vocoder report exp/ddsp_vctk --max-utts 4 --title "DDSP on VCTK"
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..analysis.f0 import F0_METHODS

    parser.add_argument("exp", metavar="EXP", help="experiment dir holding metrics.json")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="report folder (default: EXP/report; replaced on each run)")
    parser.add_argument("--max-utts", type=int, default=6, metavar="N",
                        help="utterances per set shown with players and figures (default: 6)")
    parser.add_argument("--title", default=None, help="page title (default: from EXP's name)")
    parser.add_argument("--f0-method", default="harvest", choices=F0_METHODS,
                        help="f0 estimator for the plots (default: harvest)")
    parser.add_argument("--hop-length", type=int, default=None, metavar="N",
                        help="analysis hop in samples (default: the evaluation's, else 5 ms)")


def run(args: argparse.Namespace) -> int:
    from ..report import write_report

    index = write_report(args.exp, out_dir=args.out, max_utts=args.max_utts, title=args.title,
                         f0_method=args.f0_method, hop_length=args.hop_length)
    print(index)
    return 0
