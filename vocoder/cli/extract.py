"""Extract frame features of a Kaldi data dir into a feature dump.

    vocoder extract [options] DATA_DIR DUMP_DIR

Reads DATA_DIR/wav.scp (and segments, if present), resamples to the configured rate and
writes per-stream Kaldi archives (f0, vuv, loudness, mfcc, mel and the resampled
audio) to DUMP_DIR; see vocoder/data/features.py for the layout. Settings come from the
`features:` section of --config, overridden by the flags. `--nj N` runs N jobs in
parallel, each on a contiguous slice of the sorted utterances and each with one thread
(OMP_NUM_THREADS=1 and friends, torch.set_num_threads(1)), so N jobs use N cores.

A job whose output is complete (marker DUMP_DIR/arks/.done.J for the same utterances and
settings) is skipped when the command is run again, so a rerun after a crash redoes only
the missing jobs; --overwrite redoes everything. DUMP_DIR/feats.yaml, which readers of
a dump require, is written last. An utterance that cannot be processed is listed in
DUMP_DIR/failed with its reason and the others go on (--fail-fast stops). An output that
cannot be written (disk full, unwritable DUMP_DIR) fails its job, whose files are
deleted; the other jobs finish and keep their markers, and the command stops with one
error line naming the file and the cause.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

from ..data.features import (
    FRAME_STREAMS,
    FeatureConfig,
    compute_features,
    read_wav_entry,
    write_meta,
)
from ..data.features import _read_kv as _read_scp
from ..data.kaldi import read_data_dir, utt2spk_to_spk2utt, write_table
from ..outputs import OutputError, write_atomic


def add_arguments(p) -> None:
    p.add_argument("data_dir", help="Kaldi data dir with wav.scp and utt2spk")
    p.add_argument("dump_dir", help="output feature dump directory")
    p.add_argument("--config", help="YAML file whose `features:` section gives the settings")
    p.add_argument("--sample-rate", type=int, help="resample audio to this rate (Hz)")
    p.add_argument("--hop-length", type=int, help="frame hop in samples")
    p.add_argument("--f0-method", choices=["harvest", "dio", "praat_ac", "praat_cc"], help="f0 estimator")
    p.add_argument("--f0-min", type=float, help="lowest f0 searched (Hz)")
    p.add_argument("--f0-max", type=float, help="highest f0 searched (Hz)")
    p.add_argument("--streams", help=f"comma-separated streams (default all: {','.join(FRAME_STREAMS)})")
    p.add_argument("--nj", type=int, default=1, help="parallel jobs (default 1)")
    p.add_argument("--overwrite", action="store_true", help="redo jobs that are already complete")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first utterance that fails")
    p.add_argument("--allow-pipes", action="store_true", help="run `cmd |` entries of wav.scp")


def resolve_config(args) -> FeatureConfig:
    settings: dict = {}
    if args.config:
        from .train import read_yaml

        doc = read_yaml(args.config) or {}
        settings.update(doc.get("features", {}) or {})
    for flag, key in [("sample_rate", "sample_rate"), ("hop_length", "hop_length"), ("f0_method", "f0_method"),
                      ("f0_min", "f0_min"), ("f0_max", "f0_max")]:
        value = getattr(args, flag)
        if value is not None:
            settings[key] = value
    if args.streams:
        settings["streams"] = [s.strip() for s in args.streams.split(",") if s.strip()]
    return FeatureConfig.from_dict(settings)


def _job_signature(cfg: FeatureConfig, items: list) -> str:
    h = hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for item in items:
        h.update(json.dumps(item).encode())
    return h.hexdigest()


# Thread-pool sizes of the numerical libraries (OpenMP, MKL, OpenBLAS, Accelerate, numexpr).
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def _single_threaded_children():
    """Let processes started inside the block use one thread each (N jobs on N cores).

    Spawned workers read these variables when they import numpy and torch; each job also
    calls ``torch.set_num_threads(1)`` (what counts for forked workers). The parent's environment
    is restored on exit.
    """
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet_wave_writer_finalizers():
    """Drop "Exception ignored in Wave_write.__del__" reports while a job writes.

    When a write to a wav archive fails (disk full), kaldiio's wav writer tries to fix
    its header again when it is collected and fails the same way; that second failure is
    reported on stderr as an "exception ignored" traceback, beside the job's one error
    line. Other unraisable exceptions are reported as usual.
    """
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, OSError) and "Wave_write" in repr(unraisable.object):
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _run_job(job: int, items: list, cfg_dict: dict, dump_dir: str, allow_pipes: bool, fail_fast: bool,
             show_progress: bool) -> dict:
    """Process one slice of utterances; returns {"ok": n, "failed": {utt: reason}}."""
    with _quiet_wave_writer_finalizers():
        return _job(job, items, cfg_dict, dump_dir, allow_pipes, fail_fast, show_progress)


def _job(job: int, items: list, cfg_dict: dict, dump_dir: str, allow_pipes: bool, fail_fast: bool,
         show_progress: bool) -> dict:
    import kaldiio
    import numpy as np
    import torch

    torch.set_num_threads(1)
    cfg = FeatureConfig.from_dict(cfg_dict)
    arks = Path(dump_dir) / "arks"
    streams = ["wav"] + list(cfg.streams)
    failed: dict[str, str] = {}
    frames: dict[str, int] = {}
    samples: dict[str, int] = {}
    it = items
    if show_progress:
        from tqdm import tqdm
        it = tqdm(items, desc="extract", unit="utt", file=sys.stderr)
    writers = {}
    target = arks / f"{streams[0]}.{job}.ark"  # the file being written, for the error message
    try:
        for s in streams:
            target = arks / f"{s}.{job}.ark"
            writers[s] = kaldiio.WriteHelper(f"ark,scp:{target},{arks / f'{s}.{job}.scp.tmp'}")
        for utt, value, seg in it:
            try:
                start, end = (seg[1], seg[2]) if seg else (None, None)
                audio, _ = read_wav_entry(value, sample_rate=cfg.sample_rate, allow_pipes=allow_pipes,
                                          start_s=start, end_s=end, name=f"{utt} ({value})")
                feats = compute_features(audio, cfg, name=f"{utt} ({value})")
            except (ValueError, OSError, RuntimeError) as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                failed[utt] = reason
                print(f"vocoder extract: {utt}: {reason}", file=sys.stderr)
                if fail_fast:
                    break
                continue
            pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
            target = arks / f"wav.{job}.ark"
            writers["wav"][utt] = (cfg.sample_rate, pcm)
            for s in cfg.streams:
                target = arks / f"{s}.{job}.ark"
                writers[s][utt] = feats[s]
            frames[utt] = int(feats[cfg.streams[0]].shape[0])
            samples[utt] = int(audio.shape[0])
        for s in streams:
            target = arks / f"{s}.{job}.ark"
            writers.pop(s).close()  # flushes: a full disk may show only here
    except OSError as exc:
        # Disk full or unwritable: nothing of this job is kept (its marker is not written,
        # so a rerun redoes it) and the error names the file and the cause.
        error = OutputError.wrap(getattr(exc, "filename", None) or target, f"job {job}'s archive", exc)
        _discard_job(exc, writers, [arks / f"{s}.{job}{ext}" for s in streams for ext in (".ark", ".scp.tmp")])
        raise error from None
    finally:
        for w in writers.values():
            with contextlib.suppress(Exception):
                w.close()
    for s in streams:
        os.replace(arks / f"{s}.{job}.scp.tmp", arks / f"{s}.{job}.scp")
    # surrogateescape, like the Kaldi tables: a reason may quote a non-UTF-8 path.
    text = {"frames": frames, "samples": samples, "failed": failed}
    for kind, table in text.items():
        write_atomic(arks / f"{kind}.{job}", "".join(f"{u} {v}\n" for u, v in table.items())
                     .encode("utf-8", errors="surrogateescape"), what=f"job {job}'s {kind} table")
    return {"ok": len(frames), "failed": failed}


def _discard_job(exc: BaseException, writers: dict, files: list[Path]) -> None:
    """Close a failed job's archives and delete its files, quietly.

    kaldiio's half-written wav writer, held by the traceback's frames, rewrites its header
    when collected and complains on stderr if the file is gone: free it first, with
    "exception ignored" reports silenced, so the command's one error line stays alone.
    """
    import gc
    import traceback

    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        traceback.clear_frames(exc.__traceback__)
        exc.__traceback__ = None
        gc.collect()
        for w in writers.values():
            with contextlib.suppress(Exception):
                w.close()
        gc.collect()
    finally:
        sys.unraisablehook = hook
    for f in files:
        with contextlib.suppress(OSError):
            f.unlink()


def run(args) -> int:
    cfg = resolve_config(args)
    data = read_data_dir(args.data_dir, allow_pipes=args.allow_pipes)
    if not data.utt_ids:
        raise ValueError(f"{args.data_dir}: no utterances")
    items = []
    for utt in data.utt_ids:
        if data.segments is not None:
            seg = data.segments[utt]
            items.append((utt, data.wav_scp[seg.recording], [seg.recording, seg.start_s, seg.end_s]))
        else:
            items.append((utt, data.wav_scp[utt], None))
    dump = Path(args.dump_dir).resolve()
    if "," in str(dump):
        raise ValueError(f"{dump}: the dump dir's path holds ',', which Kaldi 'ark,scp:' specifiers "
                         "cannot carry; choose a path without commas")
    arks = dump / "arks"
    arks.mkdir(parents=True, exist_ok=True)
    nj = max(1, min(args.nj, len(items)))
    # Round-robin: job j takes utterances j, j + nj, ... A data dir is sorted by speaker,
    # and contiguous blocks would give one job the slow voices (long utterances, low f0)
    # and the other the fast ones.
    slices = [items[j::nj] for j in range(nj)]
    todo = []
    for j, part in enumerate(slices, start=1):
        marker = arks / f".done.{j}"
        sig = _job_signature(cfg, part)
        if not args.overwrite and marker.is_file() and marker.read_text().strip() == sig:
            continue
        marker.unlink(missing_ok=True)
        todo.append((j, part, sig))
    if todo:
        # feats.yaml, written last, marks a complete dump: none while its tables change
        (dump / "feats.yaml").unlink(missing_ok=True)
    t0 = time.time()
    if not todo:
        print(f"vocoder extract: {dump}: all {nj} jobs already complete, skipping (use --overwrite to redo)",
              file=sys.stderr)
    elif len(todo) == 1:
        j, part, sig = todo[0]
        _run_job(j, part, cfg.to_dict(), str(dump), args.allow_pipes, args.fail_fast, True)
        write_atomic(arks / f".done.{j}", sig, what=f"job {j}'s completion marker")
    else:
        # Fork on Linux: a job starts at once instead of importing torch again (seconds
        # per job, which ate the whole gain of --nj 2 on small sets). The parent has run
        # no torch or numpy thread pool by now, so the children inherit no busy threads.
        # Elsewhere (macOS, Windows) the jobs are spawned.
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with _single_threaded_children(), ctx.Pool(processes=len(todo)) as pool:
            pending = {j: (pool.apply_async(_run_job, (j, part, cfg.to_dict(), str(dump), args.allow_pipes,
                                                       args.fail_fast, False)), sig)
                       for j, part, sig in todo}
            errors = []
            for j, (res, sig) in pending.items():
                try:
                    r = res.get()
                except Exception as exc:  # noqa: BLE001 - raised below, once every job has ended
                    errors.append(exc)  # the other jobs finish (or clean up) and keep their markers
                    continue
                write_atomic(arks / f".done.{j}", sig, what=f"job {j}'s completion marker")
                print(f"vocoder extract: job {j}/{nj}: {r['ok']} done, {len(r['failed'])} failed", file=sys.stderr)
            if errors:
                raise errors[0]
    # Merge the per-job tables of the current partition.
    streams = ["wav"] + list(cfg.streams)
    merged = {s: {} for s in streams}
    frames: dict[str, str] = {}
    samples: dict[str, str] = {}
    failed: dict[str, str] = {}
    for j in range(1, nj + 1):
        for s in streams:
            merged[s].update(_read_scp(arks / f"{s}.{j}.scp"))
        frames.update(_read_scp(arks / f"frames.{j}"))
        samples.update(_read_scp(arks / f"samples.{j}"))
        failed.update(_read_scp(arks / f"failed.{j}"))
    for s in streams:
        write_table(dump / f"{s}.scp", merged[s])
    write_table(dump / "utt2num_frames", frames)
    write_table(dump / "utt2num_samples", samples)
    ok_utts = [u for u in data.utt_ids if u in frames]
    utt2spk = {u: data.utt2spk[u] for u in ok_utts}
    write_table(dump / "utt2spk", utt2spk)
    write_table(dump / "spk2utt", {k: " ".join(v) for k, v in utt2spk_to_spk2utt(utt2spk).items()})
    if failed:
        write_table(dump / "failed", failed)
    elif (dump / "failed").exists():
        (dump / "failed").unlink()
    write_meta(dump / "feats.yaml", cfg, source=str(Path(args.data_dir).resolve()))
    took = time.time() - t0
    print(f"vocoder extract: {dump}: {len(ok_utts)} utterances, {len(failed)} failed ({took:.1f} s)",
          file=sys.stderr)
    if failed:
        print(f"vocoder extract: failed items (see {dump / 'failed'}):", file=sys.stderr)
        for utt, reason in list(failed.items())[:20]:
            print(f"  {utt}: {reason}", file=sys.stderr)
        if len(failed) > 20:
            print(f"  ... and {len(failed) - 20} more", file=sys.stderr)
    if not ok_utts:
        raise RuntimeError(f"{args.data_dir}: every utterance failed")
    if failed and args.fail_fast:
        return 1
    return 0

