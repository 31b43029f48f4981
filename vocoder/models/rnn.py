"""GRU inference without per-step operator overhead, and a faster CPU training path.

At batch 1 a GRU's recurrence is a chain of small operators per frame (a matrix-vector
product, three gates): ``torch.nn.GRU`` spends about 13 us per frame at 128 units and
22 us at 256 on a 2-core CPU, most of it dispatch, not arithmetic. The DDSP speech model
runs two GRUs over every frame, so at 22.05 kHz / hop 256 they took over half of the
whole model's inference time.

:func:`gru` runs the same recurrence as ``torch.nn.GRU`` (gate order r, z, n;
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``): the input
projections of all frames are one matrix product in torch, and the recurrence is one
compiled loop (numba). The output equals torch's within float32 rounding (the products
are summed in another order); ``tests/models/test_rnn.py`` checks it.

The fast path is taken only where it changes nothing but speed: CPU float32 tensors, no
autograd graph to build (inference or ``torch.no_grad``), a plain single-layer
unidirectional ``nn.GRU`` (a quantised or scripted GRU is called as it is). Up to 256
units at batch 1 (512 units in all) the loop always wins. Beyond that it depends on the
machine: the loop reads the recurrent weights once per frame on one core, torch's
product multi-threads it, and which is faster turns on the caches (a 512-unit GRU at
batch 1: the loop took half torch's time on a 2-core AMD EPYC VM, torch half the loop's
on a 2-core Intel Xeon VM). There, up to 2048 units in all, the first call of each
(input size, hidden size, batch, threads) times both on 32 frames and keeps the faster, as cuDNN's
benchmark mode does (:func:`loop_is_faster`); larger GRUs call the module. At batch 1
with two or more torch threads that timing also tries the loop split over two threads
(each keeps half the units and so reads half the recurrent weights per frame, with a
barrier per frame; :func:`_compile_split`), used from 256 frames on where it was faster.
The reference-size model's 512-unit decoder GRU over 1000 frames (10 s), with its
input projection: 49-51 ms against 64-68 ms on one thread, and the whole model's
inference of 10 s 107-112 ms against 122-126 ms (2-core AMD EPYC VM,
``benchmarks/train_speed.py --phases``). The output equals the one-thread loop's (each unit's sums
run in the same order).

Training on CPU (an autograd graph to build) takes a second path, :class:`_GRUTrain`:
the same recurrence with a hand-written backward. torch's CPU GRU records every gate
operator of every frame for autograd and, in backward, replays them one by one and
multiplies each frame's weight gradient separately. Here the forward keeps only the
gates, and both recurrences (forward, and the gradient's way back) are compiled loops
(numba) over the batch rows, split between as many threads as torch uses (the rows are
independent over the whole sequence); the input projection and the gradients of the
weights and the input are large matrix products outside the loops. Without numba (or for
another dtype than float32/float64) the loops are torch operators, one matrix product
and a few element-wise operators per frame. With the demo speech model's GRUs (batch 8,
200 frames, 784 -> 256 and 30 -> 128 units), forward plus backward on 2 cores take
62 and 14 ms, against 77 and 26 ms with the operator loops and 86 and 33 ms through
``torch.nn.GRU`` (2-core AMD EPYC VM; the whole demo speech training step is about 10%
faster than with the operator loops). The gradients equal torch's within rounding
(``tests/models/test_rnn.py`` checks them in float64, on both paths). CUDA keeps
cuDNN's fused GRU. ``VOCODER_FAST_GRU=0`` turns both paths off.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from .._threads import over_rows, thread_pool

_kernel = None
_unavailable = False


def _compile():
    global _kernel, _unavailable
    if _kernel is not None or _unavailable:
        return _kernel
    try:
        import numba
    except ImportError:  # numba is a dependency; without it the module path is used
        _unavailable = True
        return None

    @numba.njit(cache=True, fastmath=True, nogil=True)
    def gru_recurrence(gi, w_hh, b_hh, h0, out, h_n):  # pragma: no cover - compiled
        batch, steps, h3 = gi.shape
        hidden = h3 // 3
        gh = np.empty(h3, np.float32)
        h = np.empty(hidden, np.float32)
        one, two = np.float32(1.0), np.float32(2.0)
        blocked = h3 - h3 % 4
        for b in range(batch):
            for j in range(hidden):
                h[j] = h0[b, j]
            for t in range(steps):
                # W_hh h + b_hh, four rows at a time (each row's sum vectorises over k).
                for j in range(0, blocked, 4):
                    a0 = np.float32(0.0)
                    a1 = np.float32(0.0)
                    a2 = np.float32(0.0)
                    a3 = np.float32(0.0)
                    for k in range(hidden):
                        hk = h[k]
                        a0 += w_hh[j, k] * hk
                        a1 += w_hh[j + 1, k] * hk
                        a2 += w_hh[j + 2, k] * hk
                        a3 += w_hh[j + 3, k] * hk
                    gh[j] = a0 + b_hh[j]
                    gh[j + 1] = a1 + b_hh[j + 1]
                    gh[j + 2] = a2 + b_hh[j + 2]
                    gh[j + 3] = a3 + b_hh[j + 3]
                for j in range(blocked, h3):
                    acc = np.float32(0.0)
                    for k in range(hidden):
                        acc += w_hh[j, k] * h[k]
                    gh[j] = acc + b_hh[j]
                for j in range(hidden):
                    r = one / (one + np.exp(-(gi[b, t, j] + gh[j])))
                    z = one / (one + np.exp(-(gi[b, t, hidden + j] + gh[hidden + j])))
                    # tanh(a) as 2 sigmoid(2a) - 1: one exp instead of libm's slower tanhf.
                    n = two / (one + np.exp(-two * (gi[b, t, 2 * hidden + j] + r * gh[2 * hidden + j]))) - one
                    h[j] = (one - z) * n + z * h[j]
                    out[b, t, j] = h[j]
            for j in range(hidden):
                h_n[b, j] = h[j]

    _kernel = gru_recurrence
    return _kernel


_split_kernel = None


def _compile_split():
    """The batch-1 recurrence split over two threads (numba), or None without numba.

    Each thread owns half the hidden units: it computes their three gates' rows of
    ``W_hh h + b_hh`` (so each core reads only half the recurrent weights every frame) and
    their new state, then waits at a barrier until the other half of the frame's state
    is there. The state is double-buffered (frame ``t`` reads ``hbuf[t % 2]``, writes
    ``hbuf[(t + 1) % 2]``), so one barrier per frame is enough: a thread past the barrier
    of frame ``t`` overwrites only the buffer that both have finished reading. The
    barrier is a counter per thread, written with release and read with acquire
    ordering (atomic loads and stores emitted through llvmlite)."""
    global _split_kernel
    if _split_kernel is not None:
        return _split_kernel or None
    try:
        import numba
        from numba import types
        from numba.core import cgutils
        from numba.extending import intrinsic
    except ImportError:
        _split_kernel = ()
        return None

    def _element_pointer(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        return cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])

    @intrinsic
    def load_acquire(typingctx, arr, idx):
        def codegen(context, builder, sig, args):
            return builder.load_atomic(_element_pointer(context, builder, sig, args), "acquire", 8)
        return types.int64(arr, idx), codegen

    @intrinsic
    def store_release(typingctx, arr, idx, val):
        def codegen(context, builder, sig, args):
            builder.store_atomic(args[2], _element_pointer(context, builder, sig, args), "release", 8)
            return context.get_dummy_value()
        return types.void(arr, idx, val), codegen

    @numba.njit(cache=True, fastmath=True, nogil=True)
    def gru_half(gi, w_hh, b_hh, hbuf, out, flags, me, other, lo, hi):  # pragma: no cover - compiled
        # gi (steps, 3H); hbuf (2, H), hbuf[0] the initial state; this thread owns units lo..hi-1
        # and writes flags[me] after each frame; flags[other] is its partner's counter.
        steps, h3 = gi.shape
        hidden = h3 // 3
        m = hi - lo
        blocked = m - m % 4
        gh = np.empty(3 * m, np.float32)
        one, two = np.float32(1.0), np.float32(2.0)
        for t in range(steps):
            h = hbuf[t % 2]
            h_next = hbuf[(t + 1) % 2]
            for g in range(3):
                base = g * hidden + lo
                for jj in range(0, blocked, 4):
                    j = base + jj
                    a0 = np.float32(0.0)
                    a1 = np.float32(0.0)
                    a2 = np.float32(0.0)
                    a3 = np.float32(0.0)
                    for k in range(hidden):
                        hk = h[k]
                        a0 += w_hh[j, k] * hk
                        a1 += w_hh[j + 1, k] * hk
                        a2 += w_hh[j + 2, k] * hk
                        a3 += w_hh[j + 3, k] * hk
                    gh[g * m + jj] = a0 + b_hh[j]
                    gh[g * m + jj + 1] = a1 + b_hh[j + 1]
                    gh[g * m + jj + 2] = a2 + b_hh[j + 2]
                    gh[g * m + jj + 3] = a3 + b_hh[j + 3]
                for jj in range(blocked, m):
                    j = base + jj
                    acc = np.float32(0.0)
                    for k in range(hidden):
                        acc += w_hh[j, k] * h[k]
                    gh[g * m + jj] = acc + b_hh[j]
            for jj in range(m):
                j = lo + jj
                r = one / (one + np.exp(-(gi[t, j] + gh[jj])))
                z = one / (one + np.exp(-(gi[t, hidden + j] + gh[m + jj])))
                n = two / (one + np.exp(-two * (gi[t, 2 * hidden + j] + r * gh[2 * m + jj]))) - one
                v = (one - z) * n + z * h[j]
                h_next[j] = v
                out[t, j] = v
            store_release(flags, me, t + 1)
            while load_acquire(flags, other) < t + 1:
                pass

    _split_kernel = gru_half
    return _split_kernel


_train_kernels = None


def _compile_train():
    """The training path's two recurrences as compiled loops (numba), or None without numba.

    Both work on time-major arrays, (frames, batch, ...), for the batch rows ``lo`` to
    ``hi`` (the last two arguments), so that rows can run in separate threads (they are
    independent over the whole sequence). ``one``/``two`` carry the dtype (float32 or
    float64)."""
    global _train_kernels
    if _train_kernels is not None:
        return _train_kernels or None
    try:
        import numba
    except ImportError:
        _train_kernels = ()
        return None

    @numba.njit(cache=True, fastmath=True, nogil=True)
    def forward(gi, w_hh, b_hh, ghn, rz, n, hs, one, two, lo, hi):  # pragma: no cover - compiled
        # ghn: out, the n part of W_hh h + b_hh per frame (the only part backward reads);
        # the whole product of one frame lives in the scratch gh.
        steps = gi.shape[0]
        hidden = hs.shape[2]
        h3 = 3 * hidden
        zero = one - one
        blocked = h3 - h3 % 4
        gh = np.empty((hi - lo, h3), hs.dtype)
        for t in range(steps):
            # W_hh h + b_hh of every row, four weight rows at a time: each weight row is
            # read once per frame for all the rows here.
            for j in range(0, blocked, 4):
                for b in range(lo, hi):
                    a0 = zero
                    a1 = zero
                    a2 = zero
                    a3 = zero
                    for k in range(hidden):
                        hk = hs[t, b, k]
                        a0 += w_hh[j, k] * hk
                        a1 += w_hh[j + 1, k] * hk
                        a2 += w_hh[j + 2, k] * hk
                        a3 += w_hh[j + 3, k] * hk
                    gh[b - lo, j] = a0 + b_hh[j]
                    gh[b - lo, j + 1] = a1 + b_hh[j + 1]
                    gh[b - lo, j + 2] = a2 + b_hh[j + 2]
                    gh[b - lo, j + 3] = a3 + b_hh[j + 3]
            for j in range(blocked, h3):
                for b in range(lo, hi):
                    acc = zero
                    for k in range(hidden):
                        acc += w_hh[j, k] * hs[t, b, k]
                    gh[b - lo, j] = acc + b_hh[j]
            for b in range(lo, hi):
                for j in range(hidden):
                    r = one / (one + np.exp(-(gi[t, b, j] + gh[b - lo, j])))
                    z = one / (one + np.exp(-(gi[t, b, hidden + j] + gh[b - lo, hidden + j])))
                    # tanh(a) as 2 sigmoid(2a) - 1 (one exp), as the inference loop
                    a = gi[t, b, 2 * hidden + j] + r * gh[b - lo, 2 * hidden + j]
                    nt = two / (one + np.exp(-two * a)) - one
                    rz[t, b, j] = r
                    rz[t, b, hidden + j] = z
                    n[t, b, j] = nt
                    ghn[t, b, j] = gh[b - lo, 2 * hidden + j]
                    hs[t + 1, b, j] = nt + z * (hs[t, b, j] - nt)

    @numba.njit(cache=True, fastmath=True, nogil=True)
    def backward(go, w_t, ghn, rz, n, hs, dgh, dgi, dh, one, lo, hi):  # pragma: no cover - compiled
        # w_t: W_hh transposed (hidden, 3 hidden), contiguous; ghn: the forward's. Out: dgh and dgi, the
        # gradients of W_hh h + b_hh and of W_ih x + b_ih per frame (they share the r and z
        # parts). dh (batch, hidden): in, the gradient of the last frame's h; out, that of h0.
        steps = n.shape[0]
        hidden = n.shape[2]
        h3 = 3 * hidden
        blocked = hidden - hidden % 4
        carry = np.empty((hi - lo, hidden), dh.dtype)
        for t in range(steps - 1, -1, -1):
            for b in range(lo, hi):
                for j in range(hidden):
                    r = rz[t, b, j]
                    z = rz[t, b, hidden + j]
                    nt = n[t, b, j]
                    d = dh[b, j]
                    dn = d * (one - z) * (one - nt * nt)
                    dr = dn * ghn[t, b, j] * r * (one - r)
                    dz = d * (hs[t, b, j] - nt) * z * (one - z)
                    dgh[t, b, j] = dr
                    dgh[t, b, hidden + j] = dz
                    dgh[t, b, 2 * hidden + j] = dn * r
                    dgi[t, b, j] = dr
                    dgi[t, b, hidden + j] = dz
                    dgi[t, b, 2 * hidden + j] = dn
                    c = d * z
                    if t > 0:
                        c += go[t - 1, b, j]
                    carry[b - lo, j] = c
            # the gradient of h_t: carry + dgh W_hh, from W_hh's transpose four columns at
            # a time (each sum over the 3 hidden gate rows vectorises)
            for k in range(0, blocked, 4):
                for b in range(lo, hi):
                    a0 = carry[b - lo, k]
                    a1 = carry[b - lo, k + 1]
                    a2 = carry[b - lo, k + 2]
                    a3 = carry[b - lo, k + 3]
                    for j in range(h3):
                        g = dgh[t, b, j]
                        a0 += w_t[k, j] * g
                        a1 += w_t[k + 1, j] * g
                        a2 += w_t[k + 2, j] * g
                        a3 += w_t[k + 3, j] * g
                    dh[b, k] = a0
                    dh[b, k + 1] = a1
                    dh[b, k + 2] = a2
                    dh[b, k + 3] = a3
            for k in range(blocked, hidden):
                for b in range(lo, hi):
                    acc = carry[b - lo, k]
                    for j in range(h3):
                        acc += w_t[k, j] * dgh[t, b, j]
                    dh[b, k] = acc

    _train_kernels = (forward, backward)
    return _train_kernels


def _plain_gru(module: nn.Module) -> bool:
    """Whether both paths may replace ``module``: ``VOCODER_FAST_GRU`` is not 0 and it is a
    plain ``nn.GRU`` (one layer, unidirectional, batch-first, biases, no projection)."""
    if os.environ.get("VOCODER_FAST_GRU", "1") == "0":
        return False
    if type(module) is not nn.GRU or module.num_layers != 1 or module.bidirectional or not module.batch_first:
        return False
    return bool(module.bias) and not getattr(module, "proj_size", 0)


def fast_path_applies(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None = None) -> bool:
    """Whether :func:`gru` will run ``module`` on ``x`` with the compiled loop."""
    if not _plain_gru(module):
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 3:
        return False
    if module.weight_hh_l0.dtype != torch.float32 or module.weight_hh_l0.device.type != "cpu":
        return False
    if h0 is not None and (h0.dtype != torch.float32 or h0.device.type != "cpu"):
        return False
    units = x.shape[0] * module.hidden_size
    if units > _CALIBRATED_UNITS:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or (h0 is not None and h0.requires_grad)
                                    or any(p.requires_grad for p in module.parameters())):
        return False
    if _compile() is None:
        return False
    # Measured on 2 cores: the loop wins up to 256 units at batch 1 (and small batches of
    # small GRUs); beyond that it depends on the machine (module docstring).
    if module.hidden_size <= 256 and units <= 512:
        return True
    return loop_is_faster(module, x.shape[0])


_CALIBRATED_UNITS = 2048
_faster: dict[tuple[int, int, int, int], bool] = {}
# Batch 1: whether the recurrence split over two threads beat the one-thread loop (timed
# beside it by loop_is_faster), and the fewest frames worth a thread hand-off.
_split_faster: dict[tuple[int, int, int, int], bool] = {}
_SPLIT_MIN_FRAMES = 256


def _key(module: nn.Module, batch: int) -> tuple[int, int, int, int]:
    return (module.input_size, module.hidden_size, int(batch), torch.get_num_threads())


def _run_loop(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    batch, steps, _ = x.shape
    if batch == 1 and steps >= _SPLIT_MIN_FRAMES and _split_faster.get(_key(module, 1)):
        return _run_split(module, x, h0)
    return _run_one(module, x, h0)


def _run_one(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop on one thread."""
    batch, steps, _ = x.shape
    hidden = module.hidden_size
    with torch.no_grad():
        gi = torch.nn.functional.linear(x, module.weight_ih_l0, module.bias_ih_l0).contiguous()
        out = torch.empty(batch, steps, hidden, dtype=torch.float32)
        h_n = torch.empty(batch, hidden, dtype=torch.float32)
        start = (torch.zeros(batch, hidden, dtype=torch.float32) if h0 is None
                 else h0.reshape(batch, hidden).contiguous())
        _kernel(gi.numpy(), module.weight_hh_l0.detach().contiguous().numpy(),
                module.bias_hh_l0.detach().contiguous().numpy(), start.numpy(), out.numpy(), h_n.numpy())
    return out, h_n.unsqueeze(0)


def _run_split(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch 1: the recurrence split over two threads (:func:`_compile_split`), this one
    and a pool thread."""
    kernel = _compile_split()
    _, steps, _ = x.shape
    hidden = module.hidden_size
    with torch.no_grad():
        gi = torch.nn.functional.linear(x[0], module.weight_ih_l0, module.bias_ih_l0).contiguous()
        hbuf = torch.zeros(2, hidden, dtype=torch.float32)
        if h0 is not None:
            hbuf[0] = h0.reshape(hidden)
        out = torch.empty(1, steps, hidden, dtype=torch.float32)
        flags = np.zeros(32, np.int64)  # the two counters 128 bytes apart: separate cache lines
        half = max(4, hidden // 2 // 4 * 4)
        args = (gi.numpy(), module.weight_hh_l0.detach().contiguous().numpy(),
                module.bias_hh_l0.detach().contiguous().numpy(), hbuf.numpy(), out[0].numpy(), flags)
        # The partner is queued first: if that fails, this thread never waits for it.
        partner = thread_pool(1).submit(kernel, *args, 16, 0, half, hidden)
        kernel(*args, 0, 16, 0, half)
        partner.result()
        h_n = hbuf[steps % 2].clone()
    return out, h_n.view(1, 1, hidden)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _split_possible(module: nn.Module, batch: int) -> bool:
    """Batch 1, two or more torch threads and two CPUs this process may run on (on one,
    the barrier would wait for the other thread's time slice every frame)."""
    return (batch == 1 and torch.get_num_threads() >= 2 and module.hidden_size >= 8 and _usable_cpus() >= 2
            and _compile_split() is not None)


def loop_is_faster(module: nn.Module, batch: int) -> bool:
    """Whether the compiled loop runs ``module`` (a plain float32 CPU GRU) at ``batch``
    faster than ``module`` itself on this machine: both timed on 32 frames (best of
    three, after a warm-up) at the first call for each (input size, hidden size, batch,
    torch threads); the answer is kept for the process. At batch 1 with two or more
    torch threads the loop split over two threads (:func:`_compile_split`) is timed against
    the one-thread loop on 512 frames (shorter runs time the hand-off to the second
    thread and its cold caches more than the recurrence), and the loop then runs that way
    from 256 frames on where it was the faster."""
    import time

    def best_of_three(run) -> float:
        run()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        return min(times)

    key = _key(module, batch)
    if key not in _faster:
        x = torch.randn(batch, 32, module.input_size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            loop, torch_time = best_of_three(lambda: _run_loop(module, x)), best_of_three(lambda: module(x))
            split_wins = False
            if _split_possible(module, batch):
                x = torch.randn(batch, 512, module.input_size, generator=torch.Generator().manual_seed(0))
                one, split = best_of_three(lambda: _run_one(module, x)), best_of_three(lambda: _run_split(module, x))
                split_wins = split < one
                loop = loop * split / one if split_wins else loop
        _split_faster[key] = split_wins
        _faster[key] = loop < torch_time
    return _faster[key]


_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _train_kernels_for(dtype: torch.dtype):
    """The compiled training loops for a float32/float64 GRU, else None (torch's operators)."""
    return _compile_train() if dtype in _NP_DTYPES else None


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _mm(a: torch.Tensor, b: torch.Tensor, low: torch.dtype | None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``bias + a @ b`` in ``a``'s dtype, the product computed in ``low`` precision
    when given (as autocast would), accumulated and returned in ``a``'s dtype."""
    if low is None:
        return a @ b if bias is None else torch.addmm(bias, a, b)
    out = (a.to(low) @ b.to(low)).to(a.dtype)
    return out if bias is None else out.add_(bias)


class _GRUTrain(torch.autograd.Function):
    """A one-layer batch-first GRU, torch's gate order and equations, with a hand-written
    backward (see the module docstring). Inputs: x (batch, frames, input), h0 (batch,
    hidden), the four parameters and ``low``: None, or the dtype (bfloat16 under CPU
    autocast) of the products outside the recurrence (the input projection and, in
    backward, the input and weight gradients), which then round their operands to it;
    the recurrence stays in x's dtype. Outputs (batch, frames, hidden) and (batch, hidden)."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, low=None):
        batch, steps, _ = x.shape
        hidden = w_hh.shape[1]
        h2 = 2 * hidden
        xt = x.transpose(0, 1).contiguous()  # (frames, batch, input): one frame is one block
        ctx.low = low
        gi = _mm(xt.view(steps * batch, -1), w_ih.t(), low, bias=b_ih).view(steps, batch, 3 * hidden)
        ghn = x.new_empty(steps, batch, hidden)      # n part of W_hh h + b_hh, kept for backward
        rz = x.new_empty(steps, batch, h2)           # r and z after the sigmoid
        n = x.new_empty(steps, batch, hidden)        # n after the tanh
        hs = x.new_empty(steps + 1, batch, hidden)   # h0, h1, ..., h_T
        hs[0] = h0
        kernels = _train_kernels_for(x.dtype)
        if kernels is not None:
            one = _NP_DTYPES[x.dtype](1)
            over_rows(kernels[0], batch, gi.detach().numpy(), _np(w_hh), _np(b_hh), ghn.numpy(), rz.numpy(),
                       n.numpy(), hs.numpy(), one, one + one)
        else:
            diff = x.new_empty(batch, hidden)
            gh = x.new_empty(batch, 3 * hidden)  # one frame's W_hh h + b_hh
            w_hh_t = w_hh.t()
            for t in range(steps):
                torch.addmm(b_hh, hs[t], w_hh_t, out=gh)
                torch.add(gi[t, :, :h2], gh[:, :h2], out=rz[t])
                rz[t].sigmoid_()
                ghn[t] = gh[:, h2:]
                torch.addcmul(gi[t, :, h2:], rz[t, :, :hidden], gh[:, h2:], out=n[t])
                n[t].tanh_()
                torch.sub(hs[t], n[t], out=diff)
                torch.addcmul(n[t], rz[t, :, hidden:], diff, out=hs[t + 1])  # h' = n + z (h - n)
        ctx.save_for_backward(xt, w_ih, w_hh, ghn, rz, n, hs)
        return hs[1:].transpose(0, 1), hs[steps].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_hn):
        xt, w_ih, w_hh, ghn, rz, n, hs = ctx.saved_tensors
        steps, batch, hidden = n.shape
        h2 = 2 * hidden
        go = grad_out.transpose(0, 1) if grad_out is not None else n.new_zeros(steps, batch, hidden)
        dgh = n.new_empty(steps, batch, 3 * hidden)  # gradient of W_hh h + b_hh per frame
        dh = go[steps - 1].clone()                   # of h_{t+1}, the frame's output
        if grad_hn is not None:
            dh += grad_hn
        kernels = _train_kernels_for(n.dtype)
        if kernels is not None:
            dgi = n.new_empty(steps, batch, 3 * hidden)  # of W_ih x + b_ih
            over_rows(kernels[1], batch, go.contiguous().numpy(), _np(w_hh.t()), ghn.numpy(), rz.numpy(), n.numpy(),
                       hs.numpy(), dgh.numpy(), dgi.numpy(), dh.numpy(), _NP_DTYPES[n.dtype](1))
        else:
            dgin = n.new_empty(steps, batch, hidden)  # of the n part of W_ih x + b_ih
            r, z = rz[..., :hidden], rz[..., hidden:]
            # The factors off the recurrent chain, for all frames at once:
            a = (1 - z) * (1 - n * n)              # dh'/d(n's pre-activation)
            bz = (hs[:-1] - n) * z * (1 - z)       # dh'/d(z's pre-activation)
            c = ghn * r * (1 - r)                  # d(n's pre-activation)/d(r's pre-activation)
            for t in range(steps - 1, -1, -1):
                torch.mul(dh, a[t], out=dgin[t])
                torch.mul(dh, bz[t], out=dgh[t, :, hidden:h2])
                torch.mul(dgin[t], c[t], out=dgh[t, :, :hidden])
                torch.mul(dgin[t], r[t], out=dgh[t, :, h2:])
                carry = torch.addcmul(go[t - 1], dh, z[t]) if t else dh * z[t]
                dh = torch.addmm(carry, dgh[t], w_hh)  # now the gradient of h_t
            dgi = torch.cat([dgh[..., :h2], dgin], dim=-1)
        need = ctx.needs_input_grad
        low = ctx.low
        dgi = dgi.view(steps * batch, 3 * hidden)
        dgh = dgh.view(steps * batch, 3 * hidden)
        dx = _mm(dgi, w_ih, low).view(steps, batch, -1).transpose(0, 1) if need[0] else None
        dw_ih = _mm(dgi.t(), xt.view(steps * batch, -1), low) if need[2] else None
        dw_hh = _mm(dgh.t(), hs[:-1].reshape(steps * batch, hidden), low) if need[3] else None
        return (dx, dh if need[1] else None, dw_ih, dw_hh,
                dgi.sum(0) if need[4] else None, dgh.sum(0) if need[5] else None, None)


def train_path_applies(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None = None) -> bool:
    """Whether :func:`gru` will run ``module`` on ``x`` with :class:`_GRUTrain` (CPU, an
    autograd graph to build, a plain one-layer batch-first GRU, at least one frame, no
    CPU autocast: :func:`gru` handles that case itself)."""
    if not _plain_gru(module) or x.dim() != 3 or x.shape[1] == 0:
        return False
    params = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    tensors = (x, *params) + ((h0,) if h0 is not None else ())
    if any(t.device.type != "cpu" or t.dtype != x.dtype for t in tensors) or not x.is_floating_point():
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _train_gru(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None, low: torch.dtype | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    batch = x.shape[0]
    start = x.new_zeros(batch, module.hidden_size) if h0 is None else h0.reshape(batch, module.hidden_size)
    out, h_n = _GRUTrain.apply(x, start, module.weight_ih_l0, module.weight_hh_l0,
                               module.bias_ih_l0, module.bias_hh_l0, low)
    return out, h_n.unsqueeze(0)


def gru(module: nn.Module, x: torch.Tensor, h0: torch.Tensor | None = None
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``module(x, h0)`` for a batch-first GRU: (batch, frames, input) and (1, batch, hidden)
    state in, (batch, frames, hidden) output and (1, batch, hidden) final state out.

    Under CPU autocast (``train.cpu_amp``) a plain float32 GRU keeps its recurrence in
    float32 on the compiled loops, and only the products outside it (the input
    projection; in backward the input and weight gradients) round their operands to
    the autocast dtype: torch's own bfloat16 GRU is 1.6-5x slower than the loops at the
    demo models' sizes. The output is float32."""
    if (x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and _plain_gru(module)
            and module.weight_hh_l0.dtype == torch.float32):
        low = torch.get_autocast_dtype("cpu")
        with torch.autocast("cpu", enabled=False):
            x = x.float()
            h0 = None if h0 is None else h0.float()
            if train_path_applies(module, x, h0):
                return _train_gru(module, x, h0, low)
            return gru(module, x, h0)
    if train_path_applies(module, x, h0):
        return _train_gru(module, x, h0)
    if not fast_path_applies(module, x, h0):
        return module(x, h0)
    return _run_loop(module, x, h0)


def warm_up_gru(modules: Iterable[nn.Module] = (), batch: int = 1) -> None:
    """Compile the loop, or load it from numba's cache (about 1 s in a new process), and
    settle which path runs each GRU of ``modules`` at ``batch`` (over 256 units that is
    timed once, :func:`loop_is_faster`), so that a real-time caller pays for neither in
    its first block."""
    if os.environ.get("VOCODER_FAST_GRU", "1") == "0" or _compile() is None:
        return
    one = np.zeros((1, 3), np.float32)
    _kernel(np.zeros((1, 1, 3), np.float32), np.zeros((3, 1), np.float32), np.zeros(3, np.float32), one[:, :1],
            np.zeros((1, 1, 1), np.float32), np.zeros((1, 1), np.float32))
    with torch.no_grad():
        for module in modules:
            if _plain_gru(module):
                fast_path_applies(module, torch.zeros(batch, 1, module.input_size))
