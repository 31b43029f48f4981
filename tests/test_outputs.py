"""vocoder.outputs: atomic writes, their errors, and the temporary files of killed writes."""
import errno
import os
import pickle
import stat

import pytest

from vocoder import outputs
from vocoder.outputs import OutputError, remove_stale_temps, write_atomic


def test_write_atomic_writes_whole_file_with_usual_permissions(tmp_path):
    path = tmp_path / "sub" / "table"
    assert write_atomic(path, "a 1\nb 2\n") == path  # str as UTF-8, parent created
    assert path.read_text() == "a 1\nb 2\n"
    write_atomic(path, b"\x00\x01")  # replaces the old content
    assert path.read_bytes() == b"\x00\x01"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["table"]  # no temporary file left


def test_failed_write_names_the_file_and_cause_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    path.write_bytes(b"old")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "fsync", full_disk)
    with pytest.raises(OutputError) as info:
        write_atomic(path, b"new", what="audio")
    assert str(info.value) == f"{path}: cannot write audio (No space left on device)"
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == b"old"  # the old file stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_unwritable_directory_is_an_output_error(tmp_path):
    parent = tmp_path / "file"
    parent.write_text("not a directory")
    with pytest.raises(OutputError, match=r"cannot write checkpoint \("):
        write_atomic(parent / "x.pt", b"", what="checkpoint")


def test_output_error_crosses_processes_and_wraps_once(tmp_path):
    err = OutputError.wrap(tmp_path / "a", "table", OSError(errno.EFBIG, "File too large"))
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) == f"{tmp_path / 'a'}: cannot write table (File too large)"
    assert back.errno == errno.EFBIG and isinstance(back, OSError)
    assert OutputError.wrap(tmp_path / "b", "other", err) is err  # not wrapped twice
    plain = OutputError.wrap("p", "x", RuntimeError("disk gone\nmore"))
    assert str(plain) == "p: cannot write x (disk gone)"


def test_remove_stale_temps_removes_only_matching_temporaries(tmp_path):
    kept = [tmp_path / "step_1.pt", tmp_path / ".other.abc.tmp", tmp_path / ".step_2.pt.x"]
    stale = [tmp_path / ".step_2.pt.k3j9.tmp", tmp_path / ".step_3.pt.zz.tmp"]
    for p in kept + stale:
        p.write_bytes(b"")
    assert sorted(remove_stale_temps(tmp_path, "step_*.pt")) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)
    assert remove_stale_temps(tmp_path / "missing") == []
