"""CropDataset: crop shapes, determinism by (seed, epoch, index), padding, fixed crops."""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder.cli.main import main
from vocoder.data.dataset import CropDataset, crop_frames_for, utterance_inputs
from vocoder.data.features import FeatureDump

SR, HOP = 16000, 80
STREAMS = ["f0", "vuv", "loudness", "mfcc"]
# (utt, f0, seconds, unvoiced gap (start_s, end_s) or None)
UTTS = (("spkA_long", 130.0, 1.0, (0.4, 0.55)), ("spkA_mid", 180.0, 0.6, None), ("spkB_short", 220.0, 0.15, None))


def tone(f0, seconds, sr, seed=0, gap=None):
    t = np.arange(int(round(seconds * sr))) / sr
    f = f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, int(0.45 * sr / f0)))
    x = 0.5 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    if gap:
        x[int(gap[0] * sr):int(gap[1] * sr)] = 1e-3 * np.random.default_rng(seed + 1).standard_normal(
            int(gap[1] * sr) - int(gap[0] * sr))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    data = root / "data"
    data.mkdir()
    for i, (utt, f0, sec, gap) in enumerate(UTTS):
        sf.write(root / f"{utt}.wav", tone(f0, sec, SR, seed=i, gap=gap), SR)
    utts = sorted(u for u, *_ in UTTS)
    (data / "wav.scp").write_text("".join(f"{u} {root / u}.wav\n" for u in utts))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u in utts))
    (data / "spk2utt").write_text("spkA spkA_long spkA_mid\nspkB spkB_short\n")
    threads = torch.get_num_threads()
    with contextlib.redirect_stderr(io.StringIO()):
        rc = main(["extract", str(data), str(root / "dump"), "--streams", ",".join(STREAMS)])
    torch.set_num_threads(threads)
    assert rc == 0
    return FeatureDump(root / "dump")


def make(dump, **kw):
    kw = {"streams": STREAMS, "crop_frames": 40, "speakers": ["spkA", "spkB"], "seed": 3, **kw}
    return CropDataset(dump, **kw)


def test_crop_shapes_and_types(dump):
    ds = make(dump)
    total = sum(math.ceil(round(sec * SR) / HOP) for _, _, sec, _ in UTTS)
    assert ds.total_frames == total
    assert len(ds) == total // 40
    for i in range(len(ds)):
        item = ds[i]
        assert item["audio"].shape == (40 * HOP,) and item["audio"].dtype == torch.float32
        for key in ("f0", "vuv", "loudness", "f0_continuous"):
            assert item[key].shape == (40,) and item[key].dtype == torch.float32, key
        assert item["mfcc"].shape == (40, 30)
        assert item["speaker"].dtype == torch.long and item["speaker"].shape == ()
        assert item["utt"] in ds.utts
        assert int(item["speaker"]) == ["spkA", "spkB"].index(item["utt"].split("_")[0])
        assert all(torch.isfinite(v).all() for k, v in item.items() if torch.is_tensor(v))
    assert make(dump, epoch_size=7).__len__() == 7


def test_crop_matches_the_utterance(dump):
    """A crop's frames and audio are the slices of the utterance at the same start."""
    ds = make(dump)
    for i in range(6):
        item = ds[i]
        full = dump.load(item["utt"])
        f0 = full["f0"]
        if f0.size < 40:
            continue
        starts = [s for s in range(f0.size - 40 + 1)
                  if np.array_equal(full["loudness"][s:s + 40], item["loudness"].numpy())]
        assert starts, item["utt"]
        s = starts[0]
        np.testing.assert_array_equal(item["f0"].numpy(), f0[s:s + 40])
        np.testing.assert_array_equal(item["mfcc"].numpy(), full["mfcc"][s:s + 40])
        np.testing.assert_array_equal(item["audio"].numpy(), full["wav"][s * HOP:(s + 40) * HOP])


def test_deterministic_per_seed_epoch_index(dump):
    a, b = make(dump), make(dump)
    for ds in (a, b):
        ds.set_epoch(2)
    order = [5, 0, 3, 1]
    for i in order:
        x, y = a[i], b[i]
        assert x["utt"] == y["utt"]
        for key in ("audio", "f0", "mfcc"):
            assert torch.equal(x[key], y[key])
    # the same index again, after other items, gives the same crop
    assert torch.equal(a[5]["audio"], b[5]["audio"])


def test_epochs_and_seeds_differ(dump):
    ds = make(dump)
    epoch0 = [ds[i]["audio"] for i in range(len(ds))]
    ds.set_epoch(1)
    epoch1 = [ds[i]["audio"] for i in range(len(ds))]
    assert any(x.shape != y.shape or not torch.equal(x, y) for x, y in zip(epoch0, epoch1))
    other = make(dump, seed=4)
    assert any(not torch.equal(x, other[i]["audio"]) for i, x in enumerate(epoch0))


def test_crops_follow_utterance_length(dump):
    ds = make(dump, epoch_size=400)
    counts = {u: 0 for u in ds.utts}
    for i in range(len(ds)):
        counts[ds[i]["utt"]] += 1
    # spkA_long has 200 frames, spkA_mid 120, spkB_short 30
    assert counts["spkA_long"] > counts["spkA_mid"] > counts["spkB_short"] > 0


def test_short_utterance_is_padded(dump):
    ds = make(dump, crop_frames=60, fixed=True)
    short = ds[ds.utts.index("spkB_short")]
    full = dump.load("spkB_short")
    n = full["f0"].size
    assert n == math.ceil(round(0.15 * SR) / HOP) < 60
    assert short["audio"].shape == (60 * HOP,)
    np.testing.assert_array_equal(short["audio"][: full["wav"].size].numpy(), full["wav"])
    assert torch.all(short["audio"][full["wav"].size:] == 0)
    np.testing.assert_array_equal(short["f0"][:n].numpy(), full["f0"])
    assert torch.all(short["f0"][n:] == 0) and torch.all(short["vuv"][n:] == 0)
    # loudness, mfcc and f0_continuous hold their last frame
    assert torch.all(short["loudness"][n:] == float(full["loudness"][-1]))
    assert torch.equal(short["mfcc"][n:], torch.from_numpy(full["mfcc"][-1:]).expand(60 - n, -1))
    assert torch.all(short["f0_continuous"][n:] == short["f0_continuous"][n - 1])
    # a random crop of the short utterance is padded the same way
    rnd = make(dump, crop_frames=60, epoch_size=200)
    items = [rnd[i] for i in range(200)]
    shorts = [it for it in items if it["utt"] == "spkB_short"]
    assert shorts and all(torch.equal(it["audio"], short["audio"]) for it in shorts)


def test_fixed_gives_first_crop_of_every_utterance(dump):
    ds = make(dump, fixed=True, epoch_size=99)
    assert len(ds) == len(dump.utts) == 3
    for i, utt in enumerate(ds.utts):
        item = ds[i]
        full = dump.load(utt)
        assert item["utt"] == utt
        k = min(40, full["f0"].size)
        np.testing.assert_array_equal(item["f0"][:k].numpy(), full["f0"][:k])
        np.testing.assert_array_equal(item["audio"][: k * HOP].numpy(), full["wav"][: k * HOP])
    ds.set_epoch(5)
    assert torch.equal(ds[0]["audio"], make(dump, fixed=True)[0]["audio"])


def test_f0_continuous_positive_without_gaps(dump):
    full = utterance_inputs(dump.load("spkA_long"))
    vuv, f0, fc = full["vuv"] > 0.5, full["f0"], full["f0_continuous"]
    assert (~vuv).sum() >= 10, "the test tone should have an unvoiced gap"
    assert np.all(fc > 0) and np.all(np.isfinite(fc))
    np.testing.assert_allclose(fc[vuv], f0[vuv], rtol=1e-5)
    # inside the gap the value lies between its voiced neighbours (log-linear interpolation)
    gap = np.flatnonzero(~vuv)
    inner = gap[(gap > np.flatnonzero(vuv)[0]) & (gap < np.flatnonzero(vuv)[-1])]
    assert inner.size
    for g in inner:
        left = f0[np.flatnonzero(vuv[:g])[-1]]
        right = f0[g + np.flatnonzero(vuv[g:])[0]]
        assert min(left, right) - 1e-3 <= fc[g] <= max(left, right) + 1e-3
    ds = make(dump, crop_frames=50, epoch_size=30)
    for i in range(len(ds)):
        assert torch.all(ds[i]["f0_continuous"] > 0)
    # no voiced frame at all: a constant 100 Hz
    silent = utterance_inputs({"f0": np.zeros(5, np.float32), "vuv": np.zeros(5, np.float32)})
    np.testing.assert_array_equal(silent["f0_continuous"], np.full(5, 100.0, np.float32))


def test_unknown_speaker_and_helpers(dump):
    ds = make(dump, speakers=["spkB"])
    assert ds.speaker_id("spkA_mid") == -1 and ds.speaker_id("spkB_short") == 0
    assert crop_frames_for(1.0, sample_rate=16000, hop_length=80) == 200
    assert crop_frames_for(0.501, sample_rate=16000, hop_length=80) == 101
    with pytest.raises(FileNotFoundError):
        CropDataset(dump.path / "nope", streams=STREAMS, crop_frames=10)
