"""ddsp-vocoder: differentiable DSP vocoder for speech, voice conversion and music."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "vocoder" / "version.py").read_text()).group(1)

setup(
    name="ddsp-vocoder",
    version=VERSION,
    description="Differentiable DSP (harmonic-plus-noise, source-filter, learned reverb) vocoder "
    "for speech, voice conversion and music, with Kaldi-style recipes",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["vocoder", "vocoder.*"]),
    install_requires=[
        "torch>=2.3",
        "numpy",
        # pyworld 0.3.5 imports pkg_resources at import time, which setuptools>=81 removed.
        "pyworld",
        "setuptools<81",
        "praat-parselmouth",
        "einops",
        "tensorboard",
        "soundfile",
        "soxr",
        "PyYAML",
        "tqdm",
        "matplotlib",
        "kaldiio",
        # JIT for the normalized-lattice all-pole filter (vocoder.source_filter.lattice).
        "numba",
    ],
    extras_require={
        "test": ["pytest", "scipy", "librosa"],
        # Direct-form time-varying LPC filtering (source_filter structure="direct").
        "lpc": ["torchlpc>=0.7.2"],
    },
    entry_points={"console_scripts": ["vocoder=vocoder.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Speech",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
