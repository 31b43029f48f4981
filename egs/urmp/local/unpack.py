#!/usr/bin/env python3
"""Unpack a URMP archive into a directory, resumably.

    local/unpack.py [--with-video] ARCHIVE DEST

ARCHIVE is a .zip or a tar (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz). Each member is
written to <name>.part and renamed when complete, so an interrupted run leaves whole
files and at most one .part; running it again skips every file already there with the
member's size and writes the rest. The videos (Vid_*.mp4, most of the archive's size)
are skipped unless --with-video: the recipe does not use them. Members with absolute
paths or '..' are refused. Prints what it wrote and skipped.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

PROG = "unpack.py"


def safe_target(dest: Path, name: str) -> Path:
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts or not parts:
        raise ValueError(f"unsafe member name {name!r}")
    return dest.joinpath(*parts)


def wanted(name: str, with_video: bool) -> bool:
    base = PurePosixPath(name).name
    return with_video or not (base.startswith("Vid_") and base.lower().endswith(".mp4"))


def copy_member(src, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with open(part, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    os.replace(part, target)


def unpack(archive: Path, dest: Path, *, with_video: bool = False) -> dict[str, int]:
    counts = {"written": 0, "kept": 0, "skipped videos": 0}
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                target = safe_target(dest, info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif not wanted(info.filename, with_video):
                    counts["skipped videos"] += 1
                elif target.is_file() and target.stat().st_size == info.file_size:
                    counts["kept"] += 1
                else:
                    with z.open(info) as src:
                        copy_member(src, target)
                    counts["written"] += 1
    else:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                target = safe_target(dest, info.name)
                if info.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif not info.isfile():
                    continue  # links and devices: URMP has none
                elif not wanted(info.name, with_video):
                    counts["skipped videos"] += 1
                elif target.is_file() and target.stat().st_size == info.size:
                    counts["kept"] += 1
                else:
                    src = tar.extractfile(info)
                    copy_member(src, target)
                    counts["written"] += 1
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("archive")
    p.add_argument("dest")
    p.add_argument("--with-video", "--with_video", action="store_true", help="also unpack Vid_*.mp4")
    args = p.parse_args(argv)
    archive = Path(args.archive)
    try:
        counts = unpack(archive, Path(args.dest), with_video=args.with_video)
    except (OSError, ValueError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        print(f"{PROG}: {archive}: cannot unpack ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})",
              file=sys.stderr)
        return 1
    print(f"{PROG}: {archive} -> {args.dest}: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
