"""Source-filter synthesis for speech: excitation sources, time-varying filters, WORLD synthesis.

- :mod:`.excitation`: band-limited pulse train, combtooth, sawtooth, LF glottal flow
  derivative (Rd), white noise, per-band voiced/unvoiced mixing.
- :mod:`.filters`: minimum-phase filters from spectral envelopes and (mel-)cepstra,
  stable all-pole filters from reflection coefficients (normalized lattice or
  ``torchlpc``), and their ``nn.Module`` forms.
- :mod:`.world_synth`: :func:`world_synthesis` / :class:`WorldSynth`, WORLD's synthesis
  model made differentiable in f0, spectral envelope and aperiodicity.

Shapes follow the project: audio (batch, samples), frame controls (batch, frames, dims),
f0 (batch, frames) with 0 where unvoiced. Optional back ends (``numba`` for the lattice,
``torchlpc`` for the direct form) are imported only when used.
"""
from .excitation import (
    RD_RANGE,
    combtooth,
    fill_unvoiced_f0,
    glottal_flow_derivative,
    harmonic_count,
    lf_harmonics,
    lf_parameters,
    lf_waveform,
    mix_excitation,
    pulse_train,
    sawtooth,
    white_noise,
)
from .filters import (
    AllPoleFilter,
    CepstrumFilter,
    EnvelopeFilter,
    allpole_filter,
    cepstrum_filter,
    cepstrum_to_spectrum,
    envelope_filter,
    lpc_to_reflection,
    ltv_spectral_filter,
    minimum_phase_spectrum,
    reflection_filter,
    reflection_from_raw,
    reflection_to_lpc,
)
from .world_synth import (
    WorldSynth,
    default_synthesis_fft,
    world_filters,
    world_synthesis,
)

__all__ = [
    "RD_RANGE",
    "combtooth",
    "fill_unvoiced_f0",
    "glottal_flow_derivative",
    "harmonic_count",
    "lf_harmonics",
    "lf_parameters",
    "lf_waveform",
    "mix_excitation",
    "pulse_train",
    "sawtooth",
    "white_noise",
    "AllPoleFilter",
    "CepstrumFilter",
    "EnvelopeFilter",
    "allpole_filter",
    "cepstrum_filter",
    "cepstrum_to_spectrum",
    "envelope_filter",
    "lpc_to_reflection",
    "ltv_spectral_filter",
    "minimum_phase_spectrum",
    "reflection_filter",
    "reflection_from_raw",
    "reflection_to_lpc",
    "WorldSynth",
    "default_synthesis_fft",
    "world_filters",
    "world_synthesis",
]
