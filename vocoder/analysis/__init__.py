"""Feature analysis: f0 and voicing, loudness, mel, WORLD envelope and aperiodicity.

Import the submodules directly (``from vocoder.analysis.f0 import estimate_f0``);
the package itself imports nothing heavy, so pyworld and parselmouth load only
when an analysis that needs them is used.
"""
