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
    # Training: an autograd graph is needed.
    assert not rnn.fast_path_applies(g, x)
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
        assert not rnn.fast_path_applies(nn.GRU(6, 512, batch_first=True), x)  # torch is faster there
        assert not rnn.fast_path_applies(nn.GRU(6, 128, batch_first=True), torch.randn(8, 20, 6))  # and here
        monkeypatch.setenv("VOCODER_FAST_GRU", "0")
        assert not rnn.fast_path_applies(g, x)


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
    monkeypatch.setattr("vocoder.streaming.warm_up_gru", lambda: calls.append(1))
    m = DDSP(sample_rate=16000, hop_length=160, n_harmonics=8, n_noise_bands=9, hidden_size=16, gru_size=16,
             mlp_layers=1, z_dim=0, reverb=False).eval()
    StreamingSynth.from_model(m)
    assert calls == [1]
    rnn.warm_up_gru()  # the real one: compiles or loads, then runs
    assert rnn._kernel is not None
