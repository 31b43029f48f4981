"""recipes/utils/fetch_archive.sh: take an archive that is there, or download it (resumable), and check it.

curl and wget are stand-ins on PATH: nothing touches the network.
"""
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FETCH = ROOT / "recipes" / "utils" / "fetch_archive.sh"
URL = "http://example.invalid/corpus.tar.gz"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

# curl that "serves" $SERVE: writes it (or, with --continue-at -, the rest of it) to --output.
SERVING_CURL = """#!/usr/bin/env bash
echo "curl $*" >> "$CALLS"
out=""; resume=false
while [[ $# -gt 0 ]]; do
  case $1 in
    --output) out=$2; shift 2 ;;
    --continue-at) resume=true; shift 2 ;;
    *) shift ;;
  esac
done
if [[ $resume == true && -s $out ]]; then
  tail -c +$(( $(stat -c %s "$out") + 1 )) "$SERVE" >> "$out"
else
  cat "$SERVE" > "$out"
fi
"""


def tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = os.urandom(20000)
        info = tarfile.TarInfo("corpus/data.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def env(tmp_path):
    """bin/curl serving tmp_path/served; CALLS logs each call."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "curl").write_text(SERVING_CURL)
    (bindir / "curl").chmod(0o755)
    served = tmp_path / "served"
    served.write_bytes(tarball())
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "SERVE": str(served),
            "CALLS": str(tmp_path / "calls")}


def fetch(*args, env, cwd):
    return subprocess.run(["bash", str(FETCH), *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True)


def sums_for(tmp_path, data: bytes, name="corpus.tar.gz", algo="sha256") -> Path:
    p = tmp_path / "checksums"
    digest = hashlib.new(algo, data).hexdigest()
    p.write_text(f"# a comment\n{algo} {digest} {name}\nsha256 {'0' * 64} other.zip\n")
    return p


def test_downloads_checks_and_renames(tmp_path, env):
    served = Path(env["SERVE"]).read_bytes()
    out = tmp_path / "dl" / "corpus.tar.gz"
    r = fetch("--checksums", sums_for(tmp_path, served), URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == served and not Path(f"{out}.part").exists()
    assert "downloaded and checked" in r.stderr
    # there and intact: nothing fetched again
    calls = (tmp_path / "calls").read_text()
    r = fetch("--checksums", sums_for(tmp_path, served, algo="md5"), URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "passes the check; nothing to fetch" in r.stderr
    assert (tmp_path / "calls").read_text() == calls


def test_resumes_a_partial_download(tmp_path, env):
    served = Path(env["SERVE"]).read_bytes()
    out = tmp_path / "corpus.tar.gz"
    Path(f"{out}.part").write_bytes(served[:5000])
    r = fetch("--checksums", sums_for(tmp_path, served), URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "--continue-at -" in (tmp_path / "calls").read_text()
    assert out.read_bytes() == served


def test_a_file_put_there_by_hand_is_checked_not_fetched(tmp_path, env):
    served = Path(env["SERVE"]).read_bytes()
    out = tmp_path / "corpus.tar.gz"
    out.write_bytes(served[:-100] + b"x" * 100)
    r = fetch("--checksums", sums_for(tmp_path, served), URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 1 and "fails the check: sha256 mismatch" in r.stderr
    # no checksum listed: a warning and an integrity test, which a truncated archive fails
    out.write_bytes(served[: len(served) // 2])
    r = fetch(URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 1 and "no checksum known for corpus.tar.gz" in r.stderr
    assert "truncated or corrupt (gzip -tq failed)" in r.stderr
    out.write_bytes(served)
    r = fetch(URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "nothing to fetch" in r.stderr
    assert not (tmp_path / "calls").exists()


def test_no_network_or_no_download_says_where_to_put_the_file(tmp_path, env):
    out = tmp_path / "corpus.tar.gz"
    r = fetch("--no-download", "--page", "http://example.invalid/page", URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 1 and not (tmp_path / "calls").exists()
    assert f"download it by hand (from http://example.invalid/page) and put it at {out}" in r.stderr
    bindir = Path(env["PATH"].split(":")[0])
    (bindir / "curl").write_text('#!/usr/bin/env bash\necho "curl $*" >> "$CALLS"\nexit 6\n')
    r = fetch(URL, out, env=env, cwd=tmp_path)
    assert r.returncode == 1
    assert f"could not download {URL} (curl exit status 6" in r.stderr and "put it at" in r.stderr
    assert not out.exists()


def test_usage(tmp_path, env):
    r = fetch("--help", env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("Usage: ")
    r = fetch(env=env, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("Usage: ")
    bad = tmp_path / "bad"
    bad.write_text("sha1 abc corpus.tar.gz\n")
    r = fetch("--checksums", bad, URL, tmp_path / "corpus.tar.gz", env=env, cwd=tmp_path)
    assert r.returncode == 1 and "unknown checksum type 'sha1'" in r.stderr
