# shellcheck shell=bash
# path.sh: the environment of a recipe; run.sh sources it first (`. ./path.sh`).
#
# Copy (or symlink) this file into egs/<corpus>/<task>/. It finds the repository root
# by walking up from its own location to the directory holding vocoder/__init__.py,
# then:
#   - puts <root>/.venv/bin first on PATH if it exists (the `vocoder` command, python),
#   - puts <root> on PYTHONPATH (so `python -m vocoder...` works without installing),
#   - exports VOCODER_ROOT=<root>, LC_ALL=C (Kaldi's byte-order sorting) and
#     PYTHONUNBUFFERED=1 (logs appear as they are written).

VOCODER_ROOT=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
while [[ "$VOCODER_ROOT" != / && ! -f "$VOCODER_ROOT/vocoder/__init__.py" ]]; do
  VOCODER_ROOT=$(dirname "$VOCODER_ROOT")
done
if [[ ! -f "$VOCODER_ROOT/vocoder/__init__.py" ]]; then
  echo "path.sh: no vocoder/__init__.py above $(dirname "${BASH_SOURCE[0]}"); is this file inside the repository?" >&2
  return 1
fi
export VOCODER_ROOT
if [[ -d "$VOCODER_ROOT/.venv/bin" ]]; then
  export PATH="$VOCODER_ROOT/.venv/bin:$PATH"
fi
export PYTHONPATH="$VOCODER_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C
export PYTHONUNBUFFERED=1
