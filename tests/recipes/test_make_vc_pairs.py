"""recipes/utils/make_vc_pairs.py: the --pairs file of evaluate-conversion from a parallel eval data dir."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "recipes" / "utils" / "make_vc_pairs.py"


def write_eval_dir(d: Path, texts: dict) -> None:
    """texts: {utt: text}; utt = <spk>_<sentence>; the speaker is the part before the first '_'."""
    d.mkdir(parents=True)
    utts = sorted(texts)
    (d / "wav.scp").write_text("".join(f"{u} /corpus/{u}.wav\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u in utts))
    (d / "text").write_text("".join(f"{u} {texts[u]}\n" for u in utts))


def run(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True)


def test_pairs_of_every_two_speakers_with_the_same_sentence(tmp_path):
    write_eval_dir(tmp_path / "eval", {
        "bdl_arctic_b0508": "Then he went back.", "slt_arctic_b0508": "Then, he went back!",
        "rms_arctic_b0508": "Then he went back.",
        "bdl_arctic_b0509": "Another one.", "slt_arctic_b0509": "A different text under the same id.",
    })
    r = run("eval", "exp/wav", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("bdl_to_rms_arctic_b0508 exp/wav/bdl_to_rms/bdl_arctic_b0508.wav "
                        "/corpus/bdl_arctic_b0508.wav bdl rms /corpus/rms_arctic_b0508.wav")
    keys = [line.split()[0] for line in lines]
    assert keys == sorted(keys)
    # b0508: all 6 ordered pairs (punctuation and case do not matter); b0509: rms lacks it,
    # and slt's b0509 has another text, so it is no reference for bdl (nor bdl for slt)
    assert len(lines) == 6 and all("b0508" in k for k in keys)
    assert "2 conversion(s) left out: the target's recording with the same sentence id has another text" in r.stderr
    assert "2 conversion(s) left out: the target did not record the sentence" in r.stderr
    r = run("--speakers", "bdl,slt", "--out", "pairs/p.txt", "eval", "exp/wav", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "pairs/p.txt").read_text().count("\n") == 2


def test_errors_name_the_problem(tmp_path):
    write_eval_dir(tmp_path / "eval", {"kal_s045": "a", "slt_s045": "a"})
    r = run("--speakers", "kal nobody", "eval", "w", cwd=tmp_path)
    assert r.returncode == 1 and "speaker(s) nobody not in eval/utt2spk (it has: kal slt)" in r.stderr
    (tmp_path / "eval" / "utt2spk").write_text("kal_s045 kal\nslt_s045 kal\n")
    r = run("eval", "w", cwd=tmp_path)
    assert r.returncode == 1 and "'slt_s045' is not <speaker>_<sentence> for its speaker 'kal'" in r.stderr
    r = run("missing", "w", cwd=tmp_path)
    assert r.returncode == 1 and "missing/wav.scp not found" in r.stderr


def test_f0_shifts_from_convert_json(tmp_path):
    import json

    write_eval_dir(tmp_path / "eval", {"kal_s045": "a", "slt_s045": "a"})
    for pair, utt, shift in (("kal_to_slt", "kal_s045", 9.25), ("slt_to_kal", "slt_s045", None)):
        d = tmp_path / "w" / pair
        d.mkdir(parents=True)
        (d / "convert.json").write_text(json.dumps(
            {"settings": {}, "utterances": {utt: {"f0_shift_semitones": shift, "loudness_shift_db": 1.0}}}))
    r = run("--f0-shifts", "eval", "w", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[-1] == "9.2500" and len(lines[0].split()) == 7
    assert lines[1].split()[-1] == "0.0000"  # nothing voiced: no shift recorded
    (tmp_path / "w" / "slt_to_kal" / "convert.json").write_text('{"settings": {}, "utterances": {}}')
    r = run("--f0-shifts", "eval", "w", cwd=tmp_path)
    assert r.returncode == 1 and "w/slt_to_kal/convert.json has no entry for 'slt_s045'" in r.stderr
    (tmp_path / "w" / "slt_to_kal" / "convert.json").unlink()
    r = run("--f0-shifts", "eval", "w", cwd=tmp_path)
    assert r.returncode == 1 and "w/slt_to_kal/convert.json not found" in r.stderr
