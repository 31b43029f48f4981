"""Normalized lattice all-pole filter: time-varying, energy-bounded, with an exact adjoint.

Section ``m`` (``m = M .. 1``) of the lattice rotates the forward signal ``f_m`` and the
delayed backward signal ``b_{m-1}(t - 1)`` by the angle whose sine is the reflection
coefficient ``k_m`` (``c_m = sqrt(1 - k_m^2)``):

    f_{m-1}(t) = c_m f_m(t) - k_m b_{m-1}(t - 1)
    b_m(t)     = k_m f_m(t) + c_m b_{m-1}(t - 1)

with ``f_M(t) = x(t)`` and ``y(t) = f_0(t) = b_0(t)``. For fixed coefficients the
transfer function is ``prod_m c_m / A(z)`` with ``A`` the step-up polynomial of the
``k_m`` (so ``scipy.signal.lfilter([prod c], [1, *a], x)``). Every step is an orthogonal
map of (input, state) to (output, state, discarded ``b_M``), so the state energy obeys
``E(t) <= E(t - 1) + x(t)^2``: ``|y(t)| <= sqrt(sum_{s <= t} x(s)^2)`` for *any* time
variation of the coefficients in [-1, 1], where the direct form (``torchlpc``) can grow
without bound when high-order coefficients change quickly.

The loops run in numba (CPU, float64); the backward pass runs the transposed rotations
backward in time (also orthogonal, so just as stable) and is exact.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["normalized_lattice"]


@functools.lru_cache(maxsize=1)
def _kernels():
    try:
        import numba
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the lattice filter needs numba (pip install numba)") from err

    @numba.njit(parallel=True, cache=True)
    def forward(x, k, y, f_in, s_old):  # pragma: no cover - compiled
        batch, n_samples, order = k.shape
        for b in numba.prange(batch):
            state = np.zeros(order)
            for t in range(n_samples):
                f = x[b, t]
                for m in range(order - 1, -1, -1):
                    km = k[b, t, m]
                    cm = np.sqrt(max(0.0, 1.0 - km * km))
                    bo = state[m]
                    f_in[b, t, m] = f
                    s_old[b, t, m] = bo
                    fn = cm * f - km * bo
                    if m + 1 < order:
                        state[m + 1] = km * f + cm * bo
                    f = fn
                state[0] = f
                y[b, t] = f

    @numba.njit(parallel=True, cache=True)
    def backward(grad_y, k, f_in, s_old, grad_x, grad_k):  # pragma: no cover - compiled
        batch, n_samples, order = k.shape
        for b in numba.prange(batch):
            lam = np.zeros(order)  # adjoint of the state after step t
            for t in range(n_samples - 1, -1, -1):
                lf = grad_y[b, t] + lam[0]
                for m in range(order):
                    km = k[b, t, m]
                    cm = np.sqrt(max(0.0, 1.0 - km * km))
                    f = f_in[b, t, m]
                    bo = s_old[b, t, m]
                    gb = lam[m + 1] if m + 1 < order else 0.0
                    # d c / d k = -k / c
                    dc = -km / cm if cm > 0.0 else 0.0
                    grad_k[b, t, m] = lf * (dc * f - bo) + gb * (f + dc * bo)
                    lf_in = cm * lf + km * gb
                    lam[m] = -km * lf + cm * gb
                    lf = lf_in
                grad_x[b, t] = lf

    return forward, backward


class _Lattice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        forward, _ = _kernels()
        xd = x.detach().cpu().double().contiguous().numpy()
        kd = k.detach().cpu().double().contiguous().numpy()
        y = np.empty_like(xd)
        f_in = np.empty_like(kd)
        s_old = np.empty_like(kd)
        forward(xd, kd, y, f_in, s_old)
        ctx.save_for_backward(k)
        ctx.arrays = (kd, f_in, s_old)
        ctx.x_meta = (x.dtype, x.device)
        return torch.from_numpy(y).to(dtype=x.dtype, device=x.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        _, backward = _kernels()
        kd, f_in, s_old = ctx.arrays
        (k,) = ctx.saved_tensors
        gy = grad_y.detach().cpu().double().contiguous().numpy()
        grad_x = np.empty_like(gy)
        grad_k = np.empty_like(kd)
        backward(gy, kd, f_in, s_old, grad_x, grad_k)
        dtype, device = ctx.x_meta
        gx = torch.from_numpy(grad_x).to(dtype=dtype, device=device) if ctx.needs_input_grad[0] else None
        gk = torch.from_numpy(grad_k).to(dtype=k.dtype, device=k.device) if ctx.needs_input_grad[1] else None
        return gx, gk


def normalized_lattice(signal: torch.Tensor, reflection: torch.Tensor) -> torch.Tensor:
    """Per-sample normalized lattice all-pole filter (see the module docstring).

    Args:
        signal: (B, N) input.
        reflection: (B, N, M) reflection coefficients per sample in [-1, 1].
    Returns:
        (B, N) output; for constant coefficients ``prod(sqrt(1 - k^2)) / A(z)`` applied
        to the input. Computed in float64 on the CPU, returned in the input's dtype
        and device.
    """
    if signal.dim() != 2 or reflection.dim() != 3 or reflection.shape[:2] != signal.shape:
        raise ValueError(f"normalized_lattice: expected signal (B, N) and reflection (B, N, M), got "
                         f"{tuple(signal.shape)} and {tuple(reflection.shape)}")
    return _Lattice.apply(signal, reflection)
