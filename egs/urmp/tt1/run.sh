#!/usr/bin/env bash
# DDSP timbre transfer on URMP (University of Rochester Multi-Modal Music Performance
# dataset): one model of several instruments, driven by f0 and loudness only, plays the
# eval recordings of each instrument as every other one.
#
#   ./run.sh                                   # unpack, then every stage (GPU: see README.md)
#   ./run.sh --download_dir /data/urmp         # URMP.zip put there by hand (licence form)
#   ./run.sh --stage 0 --corpus_dir /data/urmp/Dataset   # corpus already unpacked
#   ./run.sh --instruments "vn va vc db"       # other instruments (codes), or all
#   ./run.sh --stage 4 --stop_stage 5
#   ./run.sh --debug true                      # tiny config, 3/1/1 segments per instrument (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#  -1 unpack       URMP is handed out through a request form, so it is not downloaded:
#                  $download_dir/URMP.zip (or --urmp_archive FILE), put there by hand, is
#                  checked (local/checksums, else a full archive test) and unpacked,
#                  resumably and without the videos, into $corpus_dir; with no archive,
#                  a message says where to get it and where to put it (exit status 1)
#   0 data prep    AuSep tracks of --instruments -> data/{train,dev,eval} with segments
#                  of 4-10 s cut at rests (local/data_prep.py; split by piece, pieces
#                  sharing a title and takes kept together; see README.md)
#   1 features     vocoder extract --nj N -> dump/{train,dev} (48 kHz read a segment at a
#                  time, analysed at the config's rate, 16 kHz)
#   2 statistics   vocoder stats dump/train (per instrument: f0 range and loudness)
#   3 training     vocoder train -> $expdir/model (f0 + loudness + instrument embedding)
#   4 transfer     every eval segment of every instrument into every other instrument,
#                  f0 folded by whole octaves into the target's range, loudness matched:
#                  the segments are first cut to wavs ($expdir/data/eval_<inst>/wav/),
#                  then vocoder convert --f0-transform fold -> $expdir/wav/<src>_to_<tgt>/
#   5 evaluation   vocoder evaluate-conversion: the output's f0 against the input's moved
#                  by the octaves applied, and an instrument classifier trained on the
#                  training segments -> $expdir/metrics.json
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=-1
stop_stage=5
nj=8                        # parallel feature-extraction and evaluation jobs
debug=false                 # true: conf/*.debug.yaml and 3/1/1 segments per instrument
conf=conf/ddsp_tt.yaml
tag=""                      # experiment name (default: ddsp_tt, or ddsp_tt_debug with --debug true)
device=auto                 # auto, cpu or cuda
instruments="vn vc fl tpt"  # URMP instrument codes (as the mini corpus: violin, cello, flute, trumpet), or all
download_dir=downloads      # where URMP.zip is put by hand
corpus_dir=""               # the unpacked Dataset/ dir, holding 01_Jupiter_vn_vc/ ... (default: $download_dir/Dataset)
urmp_archive=""             # the archive, if not $download_dir/URMP.zip (or Dataset.zip, URMP.tar.gz, ...)
with_video=false            # true: also unpack the videos (not used here)
eval_pieces=""              # piece numbers for eval, e.g. "2 11" (default: chosen by local/data_prep.py)
dev_pieces=""               # piece numbers for dev

help_message="Usage: $0 [options]
  --stage N             first stage to run (default $stage: unpack)
  --stop_stage N        last stage to run (default $stop_stage)
  --nj N                parallel jobs (default $nj)
  --debug BOOL          tiny debug config and data subset (default $debug)
  --conf F              config (default $conf)
  --tag NAME            experiment name under exp/ (default ddsp_tt or ddsp_tt_debug)
  --device D            auto, cpu or cuda (default $device)
  --instruments \"C ...\" instrument codes (vn va vc db fl ob cl sax bn tpt hn tbn tba) or all
                        (default \"$instruments\")
  --download_dir DIR    where URMP.zip is put by hand (default $download_dir)
  --corpus_dir DIR      the unpacked Dataset/ dir (default: \$download_dir/Dataset)
  --urmp_archive FILE   the archive, under another name or place
  --with_video BOOL     also unpack the videos (default $with_video)
  --eval_pieces \"N ...\" piece numbers for eval (default: the data prep's rule)
  --dev_pieces \"N ...\"  piece numbers for dev"
. utils/parse_options.sh

corpus_dir=${corpus_dir:-$download_dir/Dataset}
if [[ "$debug" == true ]]; then
  conf=${conf%.yaml}.debug.yaml
  tag=${tag:-ddsp_tt_debug}
  datadir=data_debug   # a few segments per instrument: the whole run in a minute or two
  dumpdir=dump_debug
else
  tag=${tag:-ddsp_tt}
  datadir=data
  dumpdir=dump
fi
expdir=exp/$tag

if (( stage <= -1 && -1 <= stop_stage )); then
  log "stage -1: check and unpack URMP into $corpus_dir"
  args=(--with_video "$with_video")
  [[ -n $urmp_archive ]] && args+=(--archive "$urmp_archive")
  local/download.sh "${args[@]}" "$download_dir" "$corpus_dir"
fi

if (( stage <= 0 && 0 <= stop_stage )); then
  log "stage 0: data preparation ($instruments)"
  python3 local/data_prep.py --instruments "$instruments" --eval_pieces "$eval_pieces" \
    --dev_pieces "$dev_pieces" "$corpus_dir" data
  for s in train dev eval; do
    utils/validate_data_dir.sh "data/$s"
    if [[ "$debug" == true ]]; then
      # The first 3 (train) or 1 (dev, eval) segments of every instrument.
      if [[ $s == train ]]; then n=3; else n=1; fi
      utils/subset_data_dir.sh --per-spk "$n" "data/$s" "$datadir/$s"
    fi
  done
fi

if (( stage <= 1 && 1 <= stop_stage )); then
  log "stage 1: feature extraction ($nj jobs)"
  for s in train dev; do
    mkdir -p "$dumpdir/$s/log"
    ${train_cmd} "$dumpdir/$s/log/extract.log" \
      vocoder extract --config "$conf" --nj "$nj" "$datadir/$s" "$dumpdir/$s"
  done
fi

if (( stage <= 2 && 2 <= stop_stage )); then
  log "stage 2: statistics (per instrument: f0 range and loudness)"
  vocoder stats "$dumpdir/train"
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  log "stage 3: training -> $expdir/model (TensorBoard: tensorboard --logdir $expdir)"
  mkdir -p "$expdir/model/log"
  vocoder train --config "$conf" --train-dump "$dumpdir/train" \
    --valid-dump "$dumpdir/dev" --exp "$expdir/model" --device "$device" --resume \
    2> >(tee "$expdir/model/log/train.log" >&2)
fi

if (( stage <= 5 && 4 <= stop_stage )); then
  # The analysis settings of the dump: the rate the eval segments are cut at, and stage 5's.
  read -r sr hop f0min f0max < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['hop_length'], f['f0_min'], f['f0_max'])" "$dumpdir/train/feats.yaml")
  targets=$(cut -d' ' -f1 "$datadir/train/spk2utt")
fi

if (( stage <= 4 && 4 <= stop_stage )); then
  log "stage 4: timbre transfer of the eval segments into every other instrument"
  mkdir -p "$expdir/data"
  sources=$(cut -d' ' -f1 "$datadir/eval/spk2utt")
  for src in $sources; do
    src_dir=$expdir/data/eval_$src
    if [[ ! -s $src_dir/wav.scp ]]; then
      echo "$src" > "$expdir/data/eval_$src.spk"
      utils/subset_data_dir.sh --spk-list "$expdir/data/eval_$src.spk" "$datadir/eval" "$expdir/data/eval_${src}_segments"
      python3 local/cut_segments.py --sample-rate "$sr" "$expdir/data/eval_${src}_segments" "$src_dir"
    fi
    for tgt in $targets; do
      [[ $src == "$tgt" ]] && continue
      ${decode_cmd} "$expdir/log/convert_${src}_to_${tgt}.log" \
        vocoder convert --checkpoint "$expdir/model" --target "$tgt" --device "$device" \
        --f0-transform fold --loudness-transform stats "$src_dir" "$expdir/wav/${src}_to_${tgt}"
    done
  done
fi

if (( stage <= 5 && 5 <= stop_stage )); then
  log "stage 5: evaluation (f0 tracking, instrument classifier)"
  # One line per output: key converted source source_label target_label - f0_shift, the
  # shift (whole octaves) that convert applied, read from its convert.json.
  pairs=$expdir/eval/pairs.txt
  mkdir -p "$expdir/eval"
  python3 - "$expdir" > "$pairs.tmp" <<'EOF'
import json, sys
from pathlib import Path
exp = Path(sys.argv[1])
for out in sorted((exp / "wav").glob("*_to_*")):
    src, tgt = out.name.split("_to_")
    record = json.loads((out / "convert.json").read_text())["utterances"]
    wavs = dict(line.split(None, 1) for line in (exp / "data" / f"eval_{src}" / "wav.scp").read_text().splitlines())
    for utt, entry in sorted(record.items()):
        if entry.get("f0_shift_semitones") is None:
            continue
        print(f"{out.name}_{utt} {out / (utt + '.wav')} {wavs[utt].strip()} {src} {tgt} - "
              f"{entry['f0_shift_semitones']:.3f}")
EOF
  mv "$pairs.tmp" "$pairs"
  ${decode_cmd} "$expdir/log/evaluate_conversion.log" \
    vocoder evaluate-conversion --pairs "$pairs" --train-data "$datadir/train" \
    --check-data "$datadir/eval" \
    --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
    --json "$expdir/eval/transfer.json" \
    --update "$expdir/metrics.json" --set transfer_eval --system ddsp_tt
  grep -v '^#' "$expdir/log/evaluate_conversion.log" || true
fi
log "done"
