#!/usr/bin/env bash
# Any-to-many voice conversion (multi-speaker DDSP) on the voices of the embedded mini corpus.
#
#   ./run.sh                         # every stage with the default config
#   ./run.sh --stage 4 --stop_stage 5
#   ./run.sh --debug true            # tiny config: a run of a minute or two (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#   0 data prep      corpus FLAC -> data/speech_{train,dev,eval}
#   1 features       vocoder extract --nj N -> dump/speech_<set>
#   2 statistics     vocoder stats dump/speech_train --formants (per-voice log-f0, loudness, formants)
#   3 training       vocoder train -> $expdir/model (one embedding per voice)
#   4 conversion     every eval sentence of every voice into every other voice:
#                    vocoder convert --target T --vtln auto -> $expdir/wav/<src>_to_<tgt>/<utt>.wav
#   5 evaluation     vocoder evaluate-conversion: DTW MCD against the target voice's
#                    recording of the same sentence (next to source vs target), log-f0
#                    mean against the target's, f0 correlation with the source, and a
#                    speaker classifier trained on the training split -> $expdir/metrics.json;
#                    and, as the measurement's own floor, the same metrics of WORLD
#                    copy-synthesis of each source (system world_copy: source -> itself)
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=0
stop_stage=5
nj=2                 # parallel feature-extraction and evaluation jobs
debug=false          # true: conf/*.debug.yaml (tiny model, a few steps, a few utterances)
conf=conf/ddsp_vc.yaml
tag=""               # experiment name (default: ddsp_vc, or ddsp_vc_debug with --debug true)
device=auto          # auto, cpu or cuda
convert_f0_method="" # f0 estimator of the conversion's input (default: the model's, harvest)
f0_track_method=praat_ac  # f0 estimator of the f0-tracking metrics (docs/metrics.md)
corpus=../corpus

help_message="Usage: $0 [options]
  --stage N          first stage to run (default $stage)
  --stop_stage N     last stage to run (default $stop_stage)
  --nj N             parallel jobs (default $nj)
  --debug BOOL       use the tiny debug config (default $debug)
  --conf F           config (default $conf)
  --tag NAME         experiment name under exp/ (default ddsp_vc or ddsp_vc_debug)
  --device D         auto, cpu or cuda (default $device)
  --convert_f0_method M  f0 estimator of the conversion input: harvest, dio, praat_ac, praat_cc
  --f0_track_method M    f0 estimator of the f0-tracking metrics (default $f0_track_method)
  --corpus DIR       the mini corpus (default $corpus)"
. utils/parse_options.sh

if [[ "$debug" == true ]]; then
  conf=${conf%.yaml}.debug.yaml
  tag=${tag:-ddsp_vc_debug}
  datadir=data_debug   # a few utterances per voice: the whole run in a minute or two
  dumpdir=dump_debug
else
  tag=${tag:-ddsp_vc}
  datadir=data
  dumpdir=dump
fi
expdir=exp/$tag
d=speech

if (( stage <= 0 && 0 <= stop_stage )); then
  log "stage 0: data preparation"
  local/data_prep.sh "$corpus" data
  for s in train dev eval; do
    utils/validate_data_dir.sh "data/${d}_${s}"
    if [[ "$debug" == true ]]; then
      # First 3 (train) or 1 (dev, eval) utterances of every voice; the eval sentence is
      # the same for all voices (parallel data), so every pair can be scored.
      if [[ $s == train ]]; then n=3; else n=1; fi
      utils/subset_data_dir.sh --per-spk "$n" "data/${d}_${s}" "$datadir/${d}_${s}"
    fi
  done
fi

if (( stage <= 1 && 1 <= stop_stage )); then
  log "stage 1: feature extraction ($nj jobs)"
  for s in train dev; do
    mkdir -p "$dumpdir/${d}_${s}/log"
    ${train_cmd} "$dumpdir/${d}_${s}/log/extract.log" \
      vocoder extract --config "$conf" --nj "$nj" "$datadir/${d}_${s}" "$dumpdir/${d}_${s}"
  done
fi

if (( stage <= 2 && 2 <= stop_stage )); then
  log "stage 2: statistics (per voice: log-f0 and loudness for the conversion)"
  vocoder stats --formants "$dumpdir/${d}_train"
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  log "stage 3: training -> $expdir/model (TensorBoard: tensorboard --logdir $expdir)"
  mkdir -p "$expdir/model/log"
  vocoder train --config "$conf" --train-dump "$dumpdir/${d}_train" \
    --valid-dump "$dumpdir/${d}_dev" --exp "$expdir/model" --device "$device" --resume \
    2> >(tee "$expdir/model/log/train.log" >&2)
fi

voices=$(cut -d' ' -f1 "$datadir/${d}_eval/spk2utt")

if (( stage <= 4 && 4 <= stop_stage )); then
  log "stage 4: conversion of the eval sentences into every other voice"
  for src in $voices; do
    src_dir=$expdir/data/eval_$src
    if [[ ! -s $src_dir/wav.scp ]]; then
      mkdir -p "$expdir/data"
      grep "^$src " "$datadir/${d}_eval/spk2utt" | tr ' ' '\n' | tail -n +2 | sort > "$expdir/data/eval_$src.list"
      utils/subset_data_dir.sh --utt-list "$expdir/data/eval_$src.list" "$datadir/${d}_eval" "$src_dir"
    fi
    for tgt in $voices; do
      [[ $src == "$tgt" ]] && continue
      ${decode_cmd} "$expdir/log/convert_${src}_to_${tgt}.log" \
        vocoder convert --checkpoint "$expdir/model" --target "$tgt" --source-speaker "$src" --vtln auto --device "$device" \
        ${convert_f0_method:+--f0-method "$convert_f0_method"} \
        --stats "$dumpdir/${d}_train/stats.json" "$src_dir" "$expdir/wav/${src}_to_${tgt}"
    done
  done
fi

if (( stage <= 5 && 5 <= stop_stage )); then
  log "stage 5: evaluation of every source-target pair"
  # One line per converted utterance: key converted source source_voice target_voice
  # target_reference (the target voice's recording of the same sentence: utt ids are
  # <voice>_<sentence>).
  pairs=$expdir/eval/pairs.txt
  utils/make_vc_pairs.py --speakers "$voices" --f0-shifts --out "$pairs" "$datadir/${d}_eval" "$expdir/wav"
  read -r sr hop f0min f0max f0method < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['hop_length'], f['f0_min'], f['f0_max'], f['f0_method'])" "$dumpdir/${d}_train/feats.yaml")
  ${decode_cmd} "$expdir/log/evaluate_conversion.log" \
    vocoder evaluate-conversion --pairs "$pairs" --train-data "$datadir/${d}_train" \
    --check-data "$datadir/${d}_eval" --stats "$dumpdir/${d}_train/stats.json" \
    --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
    ${f0_track_method:+--f0-track-method "$f0_track_method"} \
    --json "$expdir/eval/conversion.json" --save-classifier "$expdir/eval/classifier.json" \
    --update "$expdir/metrics.json" --set "${d}_eval" --system ddsp_vc
  grep -v '^#' "$expdir/log/evaluate_conversion.log" || true
  # The floor of these measurements: WORLD analysis/synthesis of each source scored as a
  # "conversion" into its own voice. Its f0 correlation with the source shows how far
  # the f0 estimator itself agrees with itself after resynthesis on these voices.
  ${decode_cmd} "$expdir/log/copy_synth.log" \
    vocoder copy-synth "$datadir/${d}_eval" "$expdir/world/${d}_eval" --f0-method "$f0method" \
    --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj"
  awk -v w="$expdir/world/${d}_eval" 'NR == FNR { spk[$1] = $2; next }
    { print $1, w "/" $1 ".wav", $2, spk[$1], spk[$1] }' \
    "$datadir/${d}_eval/utt2spk" "$datadir/${d}_eval/wav.scp" > "$expdir/eval/pairs_world.txt"
  ${decode_cmd} "$expdir/log/evaluate_world_copy.log" \
    vocoder evaluate-conversion --pairs "$expdir/eval/pairs_world.txt" \
    --classifier "$expdir/eval/classifier.json" --stats "$dumpdir/${d}_train/stats.json" \
    --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
    ${f0_track_method:+--f0-track-method "$f0_track_method"} \
    --json "$expdir/eval/world_copy.json" \
    --update "$expdir/metrics.json" --set "${d}_eval" --system world_copy
  python3 utils/compare_metrics.py --baseline world_copy "$expdir/metrics.json"
fi
log "done"
