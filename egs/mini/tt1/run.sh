#!/usr/bin/env bash
# DDSP timbre transfer on the embedded mini corpus: a voice or an instrument drives a
# model of another instrument with its f0 and loudness (the original DDSP demo).
#
#   ./run.sh                         # every stage with the default config
#   ./run.sh --stage 4 --stop_stage 5
#   ./run.sh --debug true            # tiny config: a run of a minute or two (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#   0 data prep      corpus FLAC -> data/{music,speech}_{train,dev,eval}
#   1 features       vocoder extract --nj N -> dump/music_{train,dev}
#   2 statistics     vocoder stats dump/music_train (per-instrument f0 range and loudness)
#   3 training       vocoder train -> $expdir/model (f0 + loudness + instrument embedding)
#   4 transfer       every eval phrase of every instrument into every other instrument, and
#                    every eval sentence of every voice into every instrument; f0 folded by
#                    whole octaves into the target's range, loudness matched to the target:
#                    vocoder convert --f0-transform fold -> $expdir/wav/<src>_to_<tgt>/<utt>.wav
#   5 evaluation     vocoder evaluate-conversion, per source domain: the output's f0 against
#                    the input's f0 moved by the octaves applied (cents; voices tracked with
#                    Praat in a voice's range), and an instrument classifier trained on the
#                    training split -> $expdir/eval/transfer_{music,speech}.json, metrics.json
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=0
stop_stage=5
nj=2                 # parallel feature-extraction and evaluation jobs
debug=false          # true: conf/*.debug.yaml (tiny model, a few steps, a few utterances)
conf=conf/ddsp_tt.yaml
sources="music speech"   # what drives the instrument model
tag=""               # experiment name (default: ddsp_tt, or ddsp_tt_debug with --debug true)
device=auto          # auto, cpu or cuda
speech_f0_method=praat_ac  # f0 analysis of the voice inputs (instruments: the model's, harvest 60-2200 Hz)
speech_f0_min=60
speech_f0_max=500
corpus=../corpus

help_message="Usage: $0 [options]
  --stage N          first stage to run (default $stage)
  --stop_stage N     last stage to run (default $stop_stage)
  --nj N             parallel jobs (default $nj)
  --debug BOOL       use the tiny debug config (default $debug)
  --conf F           config (default $conf)
  --sources LIST     \"music speech\", \"music\" or \"speech\": inputs to transfer (default \"$sources\")
  --tag NAME         experiment name under exp/ (default ddsp_tt or ddsp_tt_debug)
  --device D         auto, cpu or cuda (default $device)
  --speech_f0_method M   f0 estimator of the voice inputs, in conversion and scoring (default $speech_f0_method)
  --speech_f0_min HZ     lowest f0 of the voice inputs (default $speech_f0_min)
  --speech_f0_max HZ     highest f0 of the voice inputs (default $speech_f0_max)
  --corpus DIR       the mini corpus (default $corpus)"
. utils/parse_options.sh

if [[ "$debug" == true ]]; then
  conf=${conf%.yaml}.debug.yaml
  tag=${tag:-ddsp_tt_debug}
  datadir=data_debug   # a few utterances per voice and instrument: a minute or two
  dumpdir=dump_debug
else
  tag=${tag:-ddsp_tt}
  datadir=data
  dumpdir=dump
fi
expdir=exp/$tag

if (( stage <= 0 && 0 <= stop_stage )); then
  log "stage 0: data preparation"
  local/data_prep.sh "$corpus" data
  for d in music speech; do
    for s in train dev eval; do
      utils/validate_data_dir.sh "data/${d}_${s}"
      if [[ "$debug" == true ]]; then
        # First 3 (train) or 1 (dev, eval) utterances of every voice and instrument.
        if [[ $s == train ]]; then n=3; else n=1; fi
        utils/subset_data_dir.sh --per-spk "$n" "data/${d}_${s}" "$datadir/${d}_${s}"
      fi
    done
  done
fi

if (( stage <= 1 && 1 <= stop_stage )); then
  log "stage 1: feature extraction ($nj jobs)"
  for s in train dev; do
    mkdir -p "$dumpdir/music_${s}/log"
    ${train_cmd} "$dumpdir/music_${s}/log/extract.log" \
      vocoder extract --config "$conf" --nj "$nj" "$datadir/music_${s}" "$dumpdir/music_${s}"
  done
fi

if (( stage <= 2 && 2 <= stop_stage )); then
  log "stage 2: statistics (per instrument: f0 range and loudness)"
  vocoder stats "$dumpdir/music_train"
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  log "stage 3: training -> $expdir/model (TensorBoard: tensorboard --logdir $expdir)"
  mkdir -p "$expdir/model/log"
  vocoder train --config "$conf" --train-dump "$dumpdir/music_train" \
    --valid-dump "$dumpdir/music_dev" --exp "$expdir/model" --device "$device" --resume \
    2> >(tee "$expdir/model/log/train.log" >&2)
fi

instruments=$(cut -d' ' -f1 "$datadir/music_train/spk2utt")

if (( stage <= 4 && 4 <= stop_stage )); then
  log "stage 4: timbre transfer of the eval sets ($sources) into every instrument"
  for d in $sources; do
    src_labels=$(cut -d' ' -f1 "$datadir/${d}_eval/spk2utt")
    f0_opt=()
    if [[ $d == speech ]]; then
      f0_opt=(--f0-method "$speech_f0_method" --f0-min "$speech_f0_min" --f0-max "$speech_f0_max")
    fi
    for src in $src_labels; do
      src_dir=$expdir/data/eval_$src
      if [[ ! -s $src_dir/wav.scp ]]; then
        mkdir -p "$expdir/data"
        grep "^$src " "$datadir/${d}_eval/spk2utt" | tr ' ' '\n' | tail -n +2 | sort > "$expdir/data/eval_$src.list"
        utils/subset_data_dir.sh --utt-list "$expdir/data/eval_$src.list" "$datadir/${d}_eval" "$src_dir"
      fi
      for tgt in $instruments; do
        [[ $src == "$tgt" ]] && continue
        ${decode_cmd} "$expdir/log/convert_${src}_to_${tgt}.log" \
          vocoder convert --checkpoint "$expdir/model" --target "$tgt" --device "$device" "${f0_opt[@]}" \
          --f0-transform fold --loudness-transform stats "$src_dir" "$expdir/wav/${src}_to_${tgt}"
      done
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
  read -r sr hop f0method f0min f0max < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['hop_length'], f['f0_method'], f['f0_min'], f['f0_max'])" "$dumpdir/music_train/feats.yaml")
  # Scored per source domain, each with the f0 analysis its inputs were converted with.
  # A voice's output is searched in the voice range moved by the octaves convert applied
  # (the instruments' 60-2200 Hz range already holds every instrument output).
  for d in $sources; do
    if [[ $d == speech ]]; then
      track=(--f0-track-method "$speech_f0_method" --f0-track-min "$speech_f0_min"
             --f0-track-max "$speech_f0_max" --shift-f0-range)
    else
      track=()
    fi
    labels=$(cut -d' ' -f1 "$datadir/${d}_eval/spk2utt" | tr '\n' ' ')
    awk -v labels="$labels" 'BEGIN { n = split(labels, l, " "); for (i = 1; i <= n; i++) keep[l[i]] = 1 }
      $4 in keep' "$pairs" > "$expdir/eval/pairs_$d.txt"
    ${decode_cmd} "$expdir/log/evaluate_conversion_$d.log" \
      vocoder evaluate-conversion --pairs "$expdir/eval/pairs_$d.txt" --train-data "$datadir/music_train" \
      --check-data "$datadir/music_eval" \
      --sample-rate "$sr" --hop-length "$hop" --f0-method "$f0method" --f0-min "$f0min" --f0-max "$f0max" \
      "${track[@]}" --nj "$nj" \
      --json "$expdir/eval/transfer_$d.json" \
      --update "$expdir/metrics.json" --set "transfer_from_$d" --system ddsp_tt
    grep -v '^#' "$expdir/log/evaluate_conversion_$d.log" || true
  done
fi
log "done"
