"""vocoder.models.rnn.gru: the compiled GRU loop against torch.nn.GRU."""
import pytest
import torch
from torch import nn

from vocoder.models import rnn
from vocoder.models.ddsp import DDSP


@pytest.mark.parametrize("batch,steps,inp,hidden", [(1, 300, 30, 128), (1, 50, 272, 256), (2, 40, 16, 7),
                                                    (4, 25, 5, 64), (1, 1, 3, 1)])
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_torch_gru(batch, steps, inp, hidden, with_state):
    torch.manual_seed(0)
    g = nn.GRU(inp, hidden, batch_first=True)
    x = torch.randn(batch, steps, inp)
    h0 = torch.randn(1, batch, hidden) if with_state else None
    with torch.no_grad():
        assert rnn.fast_path_applies(g, x, h0)
        want, want_h = g(x, h0)
        got, got_h = rnn.gru(g, x, h0)
    assert got.shape == want.shape and got_h.shape == want_h.shape
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(got_h, want_h, atol=2e-6, rtol=1e-5)
    assert torch.equal(got_h[0], got[:, -1])


def test_state_carries_across_chunks():
    torch.manual_seed(1)
    g = nn.GRU(10, 32, batch_first=True)
    x = torch.randn(1, 90, 10)
    with torch.inference_mode():
        whole, _ = rnn.gru(g, x)
        a, h = rnn.gru(g, x[:, :37])
        b, _ = rnn.gru(g, x[:, 37:], h)
    torch.testing.assert_close(torch.cat([a, b], dim=1), whole, atol=0, rtol=0)


def test_zero_frames_returns_the_state():
    g = nn.GRU(4, 8, batch_first=True)
    h0 = torch.randn(1, 1, 8)
    with torch.no_grad():
        out, h = rnn.gru(g, torch.zeros(1, 0, 4), h0)
    assert out.shape == (1, 0, 8)
    torch.testing.assert_close(h, h0)


def test_module_is_called_where_the_loop_does_not_apply(monkeypatch):
    torch.manual_seed(2)
    g = nn.GRU(6, 16, batch_first=True)
    x = torch.randn(1, 20, 6)
    # Training: an autograd graph is needed (the hand-written backward, not the loop).
    assert not rnn.fast_path_applies(g, x)
    assert rnn.train_path_applies(g, x)
    out, _ = rnn.gru(g, x)
    assert out.requires_grad
    out.sum().backward()
    assert g.weight_hh_l0.grad is not None
    with torch.no_grad():
        assert not rnn.fast_path_applies(g.double(), x.double())
        g.float()
        assert not rnn.fast_path_applies(nn.GRU(6, 16, batch_first=True, bidirectional=True), x)
        assert not rnn.fast_path_applies(nn.GRU(6, 16, num_layers=2, batch_first=True), x)
        assert not rnn.fast_path_applies(nn.GRU(6, 16), x)  # sequence-first layout
        assert not rnn.fast_path_applies(nn.GRU(6, 1024, batch_first=True), torch.randn(4, 20, 6))  # too large
        monkeypatch.setenv("VOCODER_FAST_GRU", "0")
        assert not rnn.fast_path_applies(g, x)
    assert not rnn.train_path_applies(g, x)


def test_ddsp_inference_unchanged(monkeypatch):
    """The whole speech model's output with the loop equals the one through torch's GRU."""
    torch.manual_seed(3)
    m = DDSP(sample_rate=16000, hop_length=160, n_harmonics=20, n_noise_bands=17, hidden_size=32, gru_size=64,
             mlp_layers=1, z_dim=8, n_mfcc=13, encoder_gru_size=32, reverb=False).eval()
    n = 60
    inputs = {"f0_hz": 120 + 20 * torch.rand(1, n), "vuv": torch.ones(1, n), "loudness": -40 + 5 * torch.randn(1, n),
              "mfcc": torch.randn(1, n, 13)}
    with torch.no_grad():
        fast = m.decode({"f0_continuous": inputs["f0_hz"], **inputs})
        monkeypatch.setenv("VOCODER_FAST_GRU", "0")
        slow = m.decode({"f0_continuous": inputs["f0_hz"], **inputs})
    for k in ("amplitude", "harmonic_distribution", "noise_magnitudes", "z", "gru_state"):
        torch.testing.assert_close(fast[k], slow[k], atol=1e-5, rtol=1e-4)


def test_streams_load_the_loop_before_their_first_block(monkeypatch):
    from vocoder.streaming import StreamingSynth

    calls = []
    monkeypatch.setattr("vocoder.streaming.warm_up_gru", lambda modules, batch: calls.append((modules, batch)))
    m = DDSP(sample_rate=16000, hop_length=160, n_harmonics=8, n_noise_bands=9, hidden_size=16, gru_size=16,
             mlp_layers=1, z_dim=0, reverb=False).eval()
    StreamingSynth.from_model(m)
    assert calls == [([m.gru], 1)]
    # The real one: compiles or loads, then settles a large GRU's path (timed once).
    monkeypatch.setattr(rnn, "_faster", {})
    big = nn.GRU(5, 300, batch_first=True)
    rnn.warm_up_gru([big], 1)
    assert rnn._kernel is not None
    assert set(rnn._faster) == {(5, 300, 1, torch.get_num_threads())}


def _grads(g, x, h0, use_train_path, monkeypatch):
    """Output, final state and the gradients of a loss on both, through rnn.gru."""
    monkeypatch.setenv("VOCODER_FAST_GRU", "1" if use_train_path else "0")
    for t in [x, h0, *g.parameters()]:
        if t is not None:
            t.grad = None
    assert rnn.train_path_applies(g, x, h0) == use_train_path
    out, h_n = rnn.gru(g, x, h0)
    # Weights on every frame and on the final state, so that each gradient path is used.
    w = torch.linspace(-1, 2, out.shape[1], dtype=out.dtype).view(1, -1, 1)
    ((out * w).sin().sum() + h_n.square().sum()).backward()
    grads = [x.grad] + ([h0.grad] if h0 is not None else []) + [p.grad for p in g.parameters()]
    return [out.detach(), h_n.detach()] + [q.clone() for q in grads]


@pytest.mark.parametrize("batch,steps,inp,hidden", [(3, 17, 5, 7), (1, 1, 4, 3), (8, 40, 30, 16)])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("compiled", [True, False])
def test_training_path_gradients_equal_torch(batch, steps, inp, hidden, with_state, compiled, monkeypatch):
    """The hand-written backward against torch's autograd through nn.GRU, in float64: with
    the compiled loops and with torch's operators (the path without numba)."""
    if compiled:
        assert rnn._train_kernels_for(torch.float64) is not None
    else:
        monkeypatch.setattr(rnn, "_train_kernels_for", lambda dtype: None)
    torch.manual_seed(4)
    g = nn.GRU(inp, hidden, batch_first=True).double()
    x = torch.randn(batch, steps, inp, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, batch, hidden, dtype=torch.float64, requires_grad=True) if with_state else None
    want = _grads(g, x, h0, False, monkeypatch)
    got = _grads(g, x, h0, True, monkeypatch)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_training_loops_split_rows_between_threads_exactly():
    """The compiled training loops run the batch rows in as many threads as torch uses; a
    row's result does not depend on the split (5 rows in 1, 2 or 3 parts)."""
    torch.manual_seed(8)
    g = nn.GRU(6, 10, batch_first=True)
    x = torch.randn(5, 23, 6)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            xg = x.clone().requires_grad_(True)
            g.zero_grad()
            out, h_n = rnn.gru(g, xg)
            (out.sin().sum() + h_n.square().sum()).backward()
            results.append([out.detach(), xg.grad, g.weight_hh_l0.grad.clone()])
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(other, results[0]):  # equal but for the order of torch's sums
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_training_path_only_output_or_only_state_used(monkeypatch):
    """A loss on the output alone (no final-state gradient) or on the state alone (no
    output gradient), and frozen weights (only the input's gradient)."""
    torch.manual_seed(5)
    g = nn.GRU(6, 9, batch_first=True).double()
    x = torch.randn(2, 12, 6, dtype=torch.float64, requires_grad=True)
    for pick in (0, 1):
        res = []
        for flag in ("0", "1"):
            monkeypatch.setenv("VOCODER_FAST_GRU", flag)
            x.grad = None
            g.zero_grad()
            rnn.gru(g, x)[pick].cos().sum().backward()
            res.append([x.grad.clone(), g.weight_hh_l0.grad.clone(), g.bias_ih_l0.grad.clone()])
        for a, b in zip(*res):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    g.zero_grad(set_to_none=True)
    g.requires_grad_(False)
    x.grad = None
    assert rnn.train_path_applies(g, x)
    rnn.gru(g, x)[0].sum().backward()
    assert x.grad is not None and g.weight_hh_l0.grad is None


def test_training_path_gradcheck():
    torch.manual_seed(6)
    g = nn.GRU(3, 4, batch_first=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    params = (g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
    assert torch.autograd.gradcheck(lambda *a: rnn._GRUTrain.apply(*a), (x, h0, *params))


def test_ddsp_training_gradients_unchanged(monkeypatch):
    """One training loss of the speech model (both GRUs on the training path): the same
    loss and parameter gradients as through torch's GRU, within float32 rounding."""
    torch.manual_seed(7)
    m = DDSP(sample_rate=16000, hop_length=160, n_harmonics=20, n_noise_bands=17, hidden_size=32, gru_size=64,
             mlp_layers=1, z_dim=8, n_mfcc=13, encoder_gru_size=32, reverb=False)
    n = 30
    inputs = {"f0": 120 + 20 * torch.rand(2, n), "vuv": torch.ones(2, n), "loudness": -40 + 5 * torch.randn(2, n),
              "mfcc": torch.randn(2, n, 13)}
    results = []
    for flag in ("0", "1"):
        monkeypatch.setenv("VOCODER_FAST_GRU", flag)
        m.zero_grad()
        audio = m(inputs, generator=torch.Generator().manual_seed(0))["audio"]
        audio.square().mean().backward()
        results.append((audio.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}))
    (a0, g0), (a1, g1) = results
    torch.testing.assert_close(a1, a0, atol=1e-5, rtol=1e-4)
    assert g0.keys() == g1.keys() and "gru.weight_hh_l0" in g1 and "encoder_gru.weight_ih_l0" in g1
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], atol=1e-6, rtol=1e-3, msg=k)


@pytest.mark.parametrize("loop_wins", [False, True])
def test_large_gru_takes_the_measured_faster_path(monkeypatch, loop_wins):
    """Over 256 units the loop runs where it was timed faster on this machine; the output
    equals torch's either way."""
    torch.manual_seed(4)
    g = nn.GRU(12, 320, batch_first=True)
    x = torch.randn(1, 40, 12)
    key = (12, 320, 1, torch.get_num_threads())
    monkeypatch.setitem(rnn._faster, key, loop_wins)
    called = []
    monkeypatch.setattr(rnn, "_run_loop", lambda *a: _loop_spy(called, *a))
    with torch.no_grad():
        assert rnn.fast_path_applies(g, x) == loop_wins
        got, got_h = rnn.gru(g, x)
        want, want_h = g(x)
    assert bool(called) == loop_wins
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(got_h, want_h, atol=2e-6, rtol=1e-5)


_real_run_loop = rnn._run_loop


def _loop_spy(called, *args):
    called.append(1)
    return _real_run_loop(*args)


def test_loop_is_faster_times_once_per_shape(monkeypatch):
    monkeypatch.setattr(rnn, "_faster", {})
    g = nn.GRU(8, 300, batch_first=True)
    calls = []
    monkeypatch.setattr(rnn, "_run_loop", lambda *a: _loop_spy(calls, *a))
    with torch.no_grad():
        first = rnn.loop_is_faster(g, 1)
        n = len(calls)
        assert n == 4  # a warm-up and three timed runs
        assert rnn.loop_is_faster(g, 1) is first and len(calls) == n  # kept, not timed again
        rnn.loop_is_faster(g, 2)
        assert len(calls) == 2 * n  # another batch size is timed on its own
    assert set(rnn._faster) == {(8, 300, 1, torch.get_num_threads()), (8, 300, 2, torch.get_num_threads())}


@pytest.mark.parametrize("hidden,frames", [(512, 300), (301, 200), (13, 70), (8, 1)])
def test_split_recurrence_equals_torch(hidden, frames):
    """Batch 1 split over two threads (half the units each, a barrier per frame): the
    output and final state equal torch's, from a given state, at any unit count."""
    torch.manual_seed(hidden)
    g = nn.GRU(6, hidden, batch_first=True)
    x = torch.randn(1, frames, 6)
    h0 = torch.randn(1, 1, hidden)
    with torch.no_grad():
        want, want_h = g(x, h0)
        for _ in range(3):  # a race between the halves would show as a changing result
            got, got_h = rnn._run_split(g, x, h0)
            torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
            torch.testing.assert_close(got_h, want_h, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("frames,split", [(256, True), (255, False)])
def test_loop_runs_split_where_timed_faster(monkeypatch, frames, split):
    """Where the split was timed faster (batch 1), the loop hands utterances of 256 frames
    or more to it; shorter calls (a stream's blocks) stay on one thread."""
    torch.manual_seed(5)
    g = nn.GRU(4, 320, batch_first=True)
    x = torch.randn(1, frames, 4)
    monkeypatch.setitem(rnn._faster, rnn._key(g, 1), True)
    monkeypatch.setitem(rnn._split_faster, rnn._key(g, 1), True)
    called = []
    real = rnn._run_split
    monkeypatch.setattr(rnn, "_run_split", lambda *a: called.append(1) or real(*a))
    with torch.no_grad():
        got, got_h = rnn.gru(g, x)
        want, want_h = g(x)
    assert bool(called) == split
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(got_h, want_h, atol=2e-6, rtol=1e-5)


def test_loop_is_faster_times_the_split_at_batch_one(monkeypatch):
    monkeypatch.setattr(rnn, "_faster", {})
    monkeypatch.setattr(rnn, "_split_faster", {})
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = nn.GRU(8, 300, batch_first=True)
        with torch.no_grad():
            rnn.loop_is_faster(g, 1)
            rnn.loop_is_faster(g, 2)
        assert set(rnn._split_faster) == {(8, 300, 1, 2), (8, 300, 2, 2)}
        assert rnn._split_faster[(8, 300, 2, 2)] is False  # never at batch 2
    finally:
        torch.set_num_threads(threads)


def test_split_needs_two_usable_cpus(monkeypatch):
    """On one CPU (an affinity mask, a container's cpuset) the split is not even timed."""
    g = nn.GRU(4, 300, batch_first=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(rnn, "_usable_cpus", lambda: 1)
        assert not rnn._split_possible(g, 1)
        monkeypatch.setattr(rnn, "_usable_cpus", lambda: 2)
        assert rnn._split_possible(g, 1) == (rnn._compile_split() is not None)
        assert not rnn._split_possible(g, 2)
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- CPU autocast (train.cpu_amp)

def test_mm_rounds_operands_to_the_low_dtype():
    torch.manual_seed(11)
    a, b, bias = torch.randn(7, 5), torch.randn(5, 6), torch.randn(6)
    torch.testing.assert_close(rnn._mm(a, b, None, bias=bias), torch.addmm(bias, a, b), atol=0, rtol=0)
    want = (a.bfloat16() @ b.bfloat16()).float() + bias
    got = rnn._mm(a, b, torch.bfloat16, bias=bias)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    assert not torch.equal(got, torch.addmm(bias, a, b))


def test_autocast_training_keeps_the_compiled_float32_recurrence(monkeypatch):
    """Under CPU bfloat16 autocast the GRU runs _GRUTrain with bfloat16 products outside
    the recurrence (not torch's bfloat16 GRU): float32 output and gradients within
    bfloat16 rounding of the float32 ones; without a gradient, the float32 loop exactly."""
    calls = []
    apply = rnn._GRUTrain.apply
    monkeypatch.setattr(rnn._GRUTrain, "apply", lambda *a: calls.append(a[-1]) or apply(*a))
    torch.manual_seed(12)
    g = nn.GRU(24, 32, batch_first=True)
    x = torch.randn(4, 30, 24)

    def run(amp):
        xg = x.clone().requires_grad_(True)
        g.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out, h_n = rnn.gru(g, xg)
        assert out.dtype == h_n.dtype == torch.float32
        (out.sin().sum() + h_n.square().sum()).backward()
        return out.detach(), torch.cat([xg.grad.flatten()] + [p.grad.flatten() for p in g.parameters()])

    out32, grad32 = run(False)
    out16, grad16 = run(True)
    assert calls == [None, torch.bfloat16]
    err = (out16 - out32).abs().max()
    assert 0 < err < 0.05  # rounded, by bfloat16's 8 bits, no more
    assert float(torch.nn.functional.cosine_similarity(grad16, grad32, dim=0)) > 0.999
    with torch.no_grad():  # a bfloat16 input, as from a Linear under autocast
        plain = rnn.gru(g, x.bfloat16().float())[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = rnn.gru(g, x.bfloat16())[0]
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, plain, atol=0, rtol=0)
