"""Pure tensor functions: oscillators, filters, spectral ops, frame upsampling.

Nothing here holds state; the modules in :mod:`vocoder.synths` and
:mod:`vocoder.effects` are thin wrappers over these functions.
"""
