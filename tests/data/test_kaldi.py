"""Kaldi data dirs: tables, validation (each error names its line), split, subset, fix."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vocoder.data import kaldi
from vocoder.data.kaldi import (
    DataDirError,
    TableError,
    c_sorted,
    check_data_dir,
    fix_data_dir,
    read_data_dir,
    read_segments,
    read_table,
    spk2utt_to_utt2spk,
    split_data_dir,
    subset_data_dir,
    utt2spk_to_spk2utt,
    validate_data_dir,
    write_table,
)

ROOT = Path(__file__).resolve().parents[2]


def make_dir(path: Path, files: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def good_files(n_spk=2, n_utt=3):
    utts = [(f"s{s}_u{u}", f"s{s}") for s in range(n_spk) for u in range(n_utt)]
    return {
        "wav.scp": "".join(f"{u} /audio/{u}.wav\n" for u, _ in utts),
        "utt2spk": "".join(f"{u} {s}\n" for u, s in utts),
        "spk2utt": "".join(f"s{s} " + " ".join(f"s{s}_u{u}" for u in range(n_utt)) + "\n"
                           for s in range(n_spk)),
        "text": "".join(f"{u} hello world {u}\n" for u, _ in utts),
    }


def segmented_files():
    return {
        "wav.scp": "recA /a.wav\nrecB /b.wav\n",
        "segments": "u1 recA 0.0 1.5\nu2 recA 1.5 3.0\nu3 recB 0 2\n",
        "utt2spk": "u1 spk1\nu2 spk1\nu3 spk2\n",
        "spk2utt": "spk1 u1 u2\nspk2 u3\n",
    }


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "vocoder.data.kaldi", *map(str, args)],
                          capture_output=True, text=True, env=env)


# ---------------------------------------------------------------- tables

def test_read_table_keeps_file_order_and_rest_of_line(tmp_path):
    p = tmp_path / "text"
    p.write_text("b  two words \na one\n")
    assert list(read_table(p).items()) == [("b", "two words"), ("a", "one")]


@pytest.mark.parametrize("text, needle", [
    ("a 1\n\nb 2\n", ":2: empty line"),
    ("a 1\nb\n", ":2: key 'b' has no value"),
    ("a 1\nb 2\na 3\n", ":3: duplicate key 'a' (also on line 1)"),
])
def test_read_table_errors_name_the_line(tmp_path, text, needle):
    p = tmp_path / "t"
    p.write_text(text)
    with pytest.raises(TableError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        read_table(p)


def test_write_table_sorts_in_c_order_and_is_atomic(tmp_path):
    p = tmp_path / "spk2utt"
    write_table(p, {"b": ["x", "y"], "B": "z", "a-1": "q", "a": "r", "é": "e"})
    assert p.read_text() == "B z\na r\na-1 q\nb x y\né e\n"
    assert [f.name for f in tmp_path.iterdir()] == ["spk2utt"]  # no temp file left
    assert c_sorted(["b", "B", "_", "a"]) == ["B", "_", "a", "b"]
    with pytest.raises(ValueError, match="whitespace"):
        write_table(p, {"a b": "c"})
    with pytest.raises(ValueError, match="empty value"):
        write_table(p, {"a": ""})
    assert p.read_text().startswith("B z")  # untouched by the failed writes


def test_spk2utt_round_trip():
    utt2spk = {"u3": "s2", "u1": "s1", "u2": "s1"}
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"s1": ["u1", "u2"], "s2": ["u3"]}
    assert spk2utt_to_utt2spk(spk2utt) == {"u1": "s1", "u2": "s1", "u3": "s2"}
    assert spk2utt_to_utt2spk({"s1": "u1 u2"}) == {"u1": "s1", "u2": "s1"}
    with pytest.raises(ValueError, match="'u1'"):
        spk2utt_to_utt2spk({"s1": ["u1"], "s2": ["u1"]})


# ---------------------------------------------------------------- validation

def test_valid_dirs_have_no_problems(tmp_path):
    assert validate_data_dir(make_dir(tmp_path / "a", good_files()), need_text=True) == []
    assert validate_data_dir(make_dir(tmp_path / "b", segmented_files())) == []
    check_data_dir(tmp_path / "a")
    d = read_data_dir(tmp_path / "b")
    assert d.utt_ids == ["u1", "u2", "u3"]
    assert d.segments["u2"] == kaldi.Segment("recA", 1.5, 3.0)
    assert d.spk2utt == {"spk1": ["u1", "u2"], "spk2": ["u3"]}


def problems_for(tmp_path, base, **changes):
    files = dict(base)
    for name, text in changes.items():
        if text is None:
            files.pop(name.replace("_", "."))
        else:
            files[name.replace("__", ".")] = text
    d = tmp_path / "d"
    return validate_data_dir(make_dir(d, files), need_text="text" in files)


CASES = [
    # (changes to good_files(), expected substring of one problem)
    (dict(utt2spk=None), "utt2spk: missing"),
    (dict(spk2utt=None), "spk2utt: missing"),
    (dict(wav_scp=None), "wav.scp: missing"),
    (dict(utt2spk="s0_u0 s0\ns0_u2 s0\ns0_u1 s0\ns1_u0 s1\ns1_u1 s1\ns1_u2 s1\n"),
     "utt2spk:3: key 's0_u1' is out of LC_ALL=C order (it follows 's0_u2' on line 2)"),
    (dict(wav__scp="s0_u0 /a\ns0_u1 /b\ns0_u1 /c\ns0_u2 /d\ns1_u0 /e\ns1_u1 /f\ns1_u2 /g\n"),
     "wav.scp:3: duplicate key 's0_u1' (also on line 2)"),
    (dict(text="s0_u0 a\ns0_u1 b\n\ns0_u2 c\ns1_u0 d\ns1_u1 e\ns1_u2 f\n"), "text:3: empty line"),
    (dict(text="s0_u0 a\ns0_u1\ns0_u2 c\ns1_u0 d\ns1_u1 e\ns1_u2 f\n"),
     "text:2: key 's0_u1' has no value"),
    (dict(wav__scp="s0_u0 /a\ns0_u1 /b\ns0_u2 /c\ns1_u0 /d\ns1_u1 /e\n"),
     "utt2spk:6: 1 utterance not in"),
    (dict(utt2spk="s0_u0 s0\ns0_u1 s0\ns0_u2 s0\ns1_u0 s1\ns1_u1 s1\n"),
     "utt2spk: lacks 1 utterance of"),
    (dict(spk2utt="s0 s0_u0 s0_u1\ns1 s1_u0 s1_u1 s1_u2\n"), "spk2utt:1: speaker 's0' lacks 's0_u2'"),
    (dict(spk2utt="s0 s0_u0 s0_u1 s0_u2\ns1 s1_u0 s1_u1 s1_u2\ns2 x\n"),
     "spk2utt:3: speaker 's2' has no utterances"),
    (dict(spk2utt="s0 s0_u0 s0_u1 s0_u2\n"), "spk2utt: lacks 1 speaker of"),
    (dict(text="s0_u0 a\ns0_u1 b\ns0_u2 c\ns1_u0 d\ns1_u1 e\ns1_u2 f\nzz g\n"),
     "text:7: 1 utterance not in"),
    (dict(wav__scp="s0_u0 /a\ns0_u1 sox /b -t wav - |\ns0_u2 /c\ns1_u0 /d\ns1_u1 /e\ns1_u2 /f\n"),
     "wav.scp:2: 's0_u1' is a command ending in '|'"),
    (dict(utt2spk="s0_u0 s0\r\ns0_u1 s0\ns0_u2 s0\ns1_u0 s1\ns1_u1 s1\ns1_u2 s1\n"),
     "utt2spk:1: Windows line ending"),
]


@pytest.mark.parametrize("changes, needle", CASES)
def test_validator_names_the_bad_line(tmp_path, changes, needle):
    problems = problems_for(tmp_path, good_files(), **changes)
    assert any(needle in p for p in problems), problems
    with pytest.raises(DataDirError) as err:
        check_data_dir(tmp_path / "d", need_text=True)
    assert needle in str(err.value)


def test_mismatch_names_a_few_keys_and_the_count(tmp_path):
    files = good_files(n_spk=3, n_utt=4)
    files["wav.scp"] = "".join(line + "\n" for line in files["wav.scp"].splitlines()[:3])
    problems = validate_data_dir(make_dir(tmp_path / "d", files))
    line = next(p for p in problems if "not in" in p and "wav.scp" in p)
    assert "utt2spk:4: 9 utterances not in" in line
    assert "'s0_u3' (line 4)" in line and "(4 more)" in line


@pytest.mark.parametrize("segments, needle", [
    ("u1 recA 0.0 1.5\nu2 recA 3.0 3.0\nu3 recB 0 2\n", "segments:2: 'u2': start time 3.0 is not before end time 3.0"),
    ("u1 recA 0.0 1.5\nu2 recA 1.5 x\nu3 recB 0 2\n", "segments:2: 'u2': times '1.5' 'x' are not numbers"),
    ("u1 recA 0.0 1.5\nu2 recA 1.5 3.0\nu3 recC 0 2\n", "segments:3: 'u3': recording 'recC' not in wav.scp"),
    ("u1 recA 0.0\nu2 recA 1.5 3.0\nu3 recB 0 2\n", "segments:1: 'u1': expected"),
    ("u1 recA 0.0 -1\nu2 recA 1.5 3.0\nu3 recB 0 2\n", "segments:1: 'u1': start time 0.0 is not before end time -1"),
])
def test_validator_checks_segments(tmp_path, segments, needle):
    files = {**segmented_files(), "segments": segments}
    problems = validate_data_dir(make_dir(tmp_path / "d", files))
    assert any(needle in p for p in problems), problems
    (tmp_path / "d" / "segments").write_text(segments)
    if "not numbers" in needle:
        with pytest.raises(TableError, match="segments:2:"):
            read_segments(tmp_path / "d" / "segments")


def test_pipes_allowed_on_request(tmp_path):
    files = good_files()
    files["wav.scp"] = files["wav.scp"].replace("/audio/s0_u1.wav", "sox /x.flac -t wav - |")
    d = make_dir(tmp_path / "d", files)
    assert len(validate_data_dir(d)) == 1
    assert validate_data_dir(d, allow_pipes=True) == []


def test_many_bad_lines_are_capped(tmp_path):
    files = good_files(n_spk=1, n_utt=20)
    files["text"] = "".join(f"{line}\n\n" for line in files["text"].splitlines())
    problems = validate_data_dir(make_dir(tmp_path / "d", files))
    assert sum(p.endswith(": empty line") for p in problems) == 5
    assert any("and 15 more lines with empty lines" in p for p in problems)


# ---------------------------------------------------------------- split / subset / fix

def test_split_gives_valid_parts_whose_union_is_the_original(tmp_path):
    files = good_files(n_spk=3, n_utt=4)
    files["utt2dur"] = "".join(f"{line.split()[0]} 1.0\n" for line in files["utt2spk"].splitlines())
    files["spk2gender"] = "s0 f\ns1 m\ns2 f\n"
    src = make_dir(tmp_path / "data", files)
    parts = split_data_dir(src, 5)
    assert parts == [src / "split5" / str(i) for i in range(1, 6)]
    sizes = []
    union = {name: {} for name in files}
    for part in parts:
        assert validate_data_dir(part, need_text=True) == []
        for name in files:
            if name != "spk2utt":
                union[name].update(read_table(part / name))
        sizes.append(len(read_table(part / "utt2spk")))
    assert sizes == [3, 3, 2, 2, 2]
    for name in files:
        if name != "spk2utt":
            assert union[name] == read_table(src / name), name
    # contiguous chunks of the sorted keys
    assert list(read_table(parts[0] / "utt2spk")) == ["s0_u0", "s0_u1", "s0_u2"]
    with pytest.raises(ValueError, match="into 13 parts"):
        split_data_dir(src, 13)


def test_split_with_segments_keeps_needed_recordings(tmp_path):
    src = make_dir(tmp_path / "data", segmented_files())
    p1, p2 = split_data_dir(src, 2, out=tmp_path / "parts")
    assert read_table(p1 / "wav.scp") == {"recA": "/a.wav"}
    assert read_table(p2 / "segments") == {"u3": "recB 0 2"}
    assert read_table(p2 / "wav.scp") == {"recB": "/b.wav"}
    assert validate_data_dir(p1) == [] and validate_data_dir(p2) == []


def test_split_refuses_an_invalid_dir(tmp_path):
    src = make_dir(tmp_path / "data", {**good_files(), "utt2spk": "b x\na x\n"})
    with pytest.raises(DataDirError, match="out of LC_ALL=C order"):
        split_data_dir(src, 2)


def test_subset(tmp_path):
    src = make_dir(tmp_path / "data", good_files())
    out = subset_data_dir(src, tmp_path / "sub", speakers=["s1"])
    assert list(read_table(out / "utt2spk")) == ["s1_u0", "s1_u1", "s1_u2"]
    assert validate_data_dir(out, need_text=True) == []
    out = subset_data_dir(src, tmp_path / "sub", first=2)
    assert list(read_table(out / "text")) == ["s0_u0", "s0_u1"]
    out = subset_data_dir(src, tmp_path / "sub", utts=["s1_u2", "s0_u1"])
    assert list(read_table(out / "wav.scp")) == ["s0_u1", "s1_u2"]
    with pytest.raises(ValueError, match="'nope'"):
        subset_data_dir(src, tmp_path / "sub", utts=["nope"])


def test_fix_drops_inconsistent_utterances(tmp_path, capsys):
    files = {
        "wav.scp": "u3 /c\nu1 /a\nu2 /b\nu4 /d\n",          # unsorted
        "utt2spk": "u1 s1\nu2 s1\n\nu3 s2\nu5 s2\nu1 s1\n",   # empty line, u5 has no audio, repeat
        "text": "u1 hi\nu2 yo\nu4 no speaker\n",            # u3 has no text
        "spk2utt": "s1 u1\n",                               # stale
    }
    d = make_dir(tmp_path / "d", files)
    assert validate_data_dir(d)
    dropped = fix_data_dir(d)
    assert dropped == {"not in wav.scp": ["u5"], "not in text": ["u3"]}
    out = capsys.readouterr().out
    assert "dropped 1 utterance(s) not in wav.scp: 'u5'" in out
    assert "kept 2 of 4 utterances" in out
    assert validate_data_dir(d, need_text=True) == []
    assert read_table(d / "wav.scp") == {"u1": "/a", "u2": "/b"}
    assert read_table(d / "spk2utt") == {"s1": "u1 u2"}
    assert (d / ".backup" / "wav.scp").read_text() == files["wav.scp"]
    assert fix_data_dir(d, log=None) == {}  # idempotent


def test_fix_refuses_conflicting_duplicates(tmp_path):
    d = make_dir(tmp_path / "d", {"wav.scp": "u1 /a\nu1 /b\n", "utt2spk": "u1 s\n"})
    with pytest.raises(DataDirError, match=r"wav.scp:2: key 'u1' is also on line 1"):
        fix_data_dir(d, log=None)
    assert (d / "wav.scp").read_text() == "u1 /a\nu1 /b\n"


def test_fix_with_segments_drops_bad_segments_and_unused_recordings(tmp_path):
    files = {**segmented_files(), "segments": "u1 recA 0.0 1.5\nu2 recA 2 1\nu3 recB 0 2\n",
             "spk2utt": "spk1 u1 u2\nspk2 u3\n"}
    d = make_dir(tmp_path / "d", files)
    (d / "wav.scp").write_text("recA /a.wav\nrecB /b.wav\nrecC /c.wav\n")
    dropped = fix_data_dir(d, log=None)
    assert dropped == {"bad line in segments": ["u2"]}
    assert list(read_table(d / "wav.scp")) == ["recA", "recB"]
    assert validate_data_dir(d) == []


# ---------------------------------------------------------------- command line

def test_cli(tmp_path):
    d = make_dir(tmp_path / "d", good_files())
    r = run_cli("validate", "--need-text", d)
    assert r.returncode == 0 and "OK (6 utterances, 2 speakers)" in r.stdout
    (d / "utt2spk").write_text("s0_u0 s0\ns0_u0 s0\n")
    r = run_cli("validate", d)
    assert r.returncode == 1
    assert "utt2spk:2: duplicate key 's0_u0' (also on line 1)" in r.stderr
    r = run_cli("split", tmp_path / "missing", 2)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a directory" in r.stderr
    r = run_cli("utt2spk-to-spk2utt", tmp_path / "nofile")
    assert r.returncode == 1 and "No such file" in r.stderr and r.stderr.count("\n") == 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "vocoder.data.kaldi", "utt2spk-to-spk2utt"],
                       input="b s2\na s1\nc s1\n", capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout == "s1 a c\ns2 b\n"
