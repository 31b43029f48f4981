"""Data handling: Kaldi data dirs (`vocoder.data.kaldi`), feature archives, datasets.

Keep this file light: `python -m vocoder.data.kaldi` runs from the recipe shell
scripts, so importing the package must not pull in torch or other heavy modules.
"""
