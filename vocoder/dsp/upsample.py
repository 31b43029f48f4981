"""Frame-rate controls to sample rate.

Frame ``n`` is centred on sample ``n * hop_length`` (docs/architecture.md). Both
methods turn ``frames`` frames into ``frames * hop_length`` samples.
"""
from __future__ import annotations

import torch


__all__ = ["upsample_linear", "upsample_hann", "linear_weights"]


def linear_weights(hop_length: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Interpolation weight of the *next* frame for each sample offset within a hop.

    Returns:
        (hop_length,) tensor ``j / hop_length`` for ``j = 0 .. hop_length - 1``.
    """
    return torch.arange(hop_length, dtype=dtype, device=device) / hop_length


def upsample_linear(frames: torch.Tensor, *, hop_length: int) -> torch.Tensor:
    """Linear interpolation of frame values to samples.

    Sample ``t = n * hop_length + j`` gets ``(1 - j/hop) * x[n] + (j/hop) * x[n + 1]``;
    the last frame is held.

    Args:
        frames: (batch, frames) or (batch, frames, dims) frame values.
        hop_length: samples per frame.
    Returns:
        (batch, frames * hop_length) or (batch, frames * hop_length, dims).
    """
    if hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length}")
    squeeze = frames.dim() == 2
    x = frames.unsqueeze(-1) if squeeze else frames
    batch, n_frames, dims = x.shape
    nxt = torch.cat([x[:, 1:], x[:, -1:]], dim=1)
    w = linear_weights(hop_length, dtype=x.dtype, device=x.device).view(1, 1, hop_length, 1)
    y = x.unsqueeze(2) + (nxt - x).unsqueeze(2) * w  # (batch, frames, hop, dims)
    y = y.reshape(batch, n_frames * hop_length, dims)
    return y.squeeze(-1) if squeeze else y


def upsample_hann(frames: torch.Tensor, *, hop_length: int) -> torch.Tensor:
    """Hann-window overlap-add of frame values to samples.

    Each frame owns a periodic Hann window of ``2 * hop_length`` samples centred on its
    sample; neighbouring windows overlap by half and sum to one, so a constant
    control stays constant. Smoother than linear for amplitudes that jump.

    Args:
        frames: (batch, frames) or (batch, frames, dims).
        hop_length: samples per frame.
    Returns:
        (batch, frames * hop_length) or (batch, frames * hop_length, dims).
    """
    if hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length}")
    squeeze = frames.dim() == 2
    x = frames.unsqueeze(-1) if squeeze else frames
    batch, n_frames, dims = x.shape
    win = torch.hann_window(2 * hop_length, periodic=True, dtype=x.dtype, device=x.device)
    # Window sample i sits at offset i - hop from the frame centre. Within the hop
    # [n*hop, (n+1)*hop) frame n contributes win[hop:] and frame n+1 win[:hop].
    rising, falling = win[:hop_length], win[hop_length:]
    nxt = torch.cat([x[:, 1:], x[:, -1:]], dim=1)
    y = x.unsqueeze(2) * falling.view(1, 1, -1, 1) + nxt.unsqueeze(2) * rising.view(1, 1, -1, 1)
    y = y.reshape(batch, n_frames * hop_length, dims)
    return y.squeeze(-1) if squeeze else y


