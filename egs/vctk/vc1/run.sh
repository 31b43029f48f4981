#!/usr/bin/env bash
# Any-to-many voice conversion (multi-speaker DDSP) on the CSTR VCTK Corpus 0.92.
#
#   ./run.sh                                       # download, then every stage (GPU: see README.md)
#   ./run.sh --download_dir /data/vctk             # the zip fetched to (or put by hand in) that dir
#   ./run.sh --stage 0 --corpus_dir /data/VCTK-Corpus-0.92   # corpus already unzipped
#   ./run.sh --speakers "p225 p226 p227 p228 p229 p230"      # train on a subset
#   ./run.sh --vc_speakers "p225 p226 p227 p228"   # the voices converted into each other
#   ./run.sh --debug true                          # tiny config, 3/1/1 utterances per voice (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#  -1 download     VCTK-Corpus-0.92.zip (~11 GB) from the Edinburgh DataShare into
#                  $download_dir (resumable; SHA-256 from local/checksums), unzipped into
#                  $corpus_dir; skipped when the corpus is there. No network: put the zip
#                  in $download_dir yourself.
#   0 data prep    wav48_silence_trimmed/<spk>/<spk>_NNN_mic1.flac -> data/{train,dev,eval};
#                  split by sentence number: eval 001-024 (the elicitation paragraph and
#                  rainbow passage every speaker reads: parallel), dev 025-034, train the
#                  rest minus any utterance whose text is an eval/dev sentence
#   1 features     vocoder extract --nj N -> dump/{train,dev} (48 kHz FLAC -> 24 kHz)
#   2 statistics   vocoder stats dump/train --formants (per-speaker log-f0, loudness, formants)
#   3 training     vocoder train -> $expdir/model (one embedding per speaker)
#   4 conversion   every eval sentence of every --vc_speakers voice into every other one:
#                  vocoder convert --target T --vtln auto -> $expdir/wav/<src>_to_<tgt>/<utt>.wav
#   5 evaluation   vocoder evaluate-conversion against the target's recording of the same
#                  sentence (utils/make_vc_pairs.py; the speaker classifier is trained on
#                  the --vc_speakers' training utterances) -> $expdir/metrics.json
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=-1
stop_stage=5
nj=8                    # parallel feature-extraction and evaluation jobs
debug=false             # true: conf/*.debug.yaml and a few utterances per voice
conf=conf/ddsp_vc.yaml
tag=""                  # experiment name (default: ddsp_vc, or ddsp_vc_debug with --debug true)
device=auto             # auto, cpu or cuda
speakers=all            # training speakers: all (every one with transcripts) or a list
vc_speakers="p225 p226 p227 p228"   # converted into each other: 2 female (p225, p228), 2 male (p226, p227)
mic=mic1                # mic1 or mic2
download_dir=downloads  # where VCTK-Corpus-0.92.zip is downloaded to, or put by hand
corpus_dir=""           # the unzipped corpus (default: $download_dir/VCTK-Corpus-0.92)
vctk_url=https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip

help_message="Usage: $0 [options]
  --stage N             first stage to run (default $stage: download)
  --stop_stage N        last stage to run (default $stop_stage)
  --nj N                parallel jobs (default $nj)
  --debug BOOL          tiny debug config and data subset (default $debug)
  --conf F              config (default $conf)
  --tag NAME            experiment name under exp/ (default ddsp_vc or ddsp_vc_debug)
  --device D            auto, cpu or cuda (default $device)
  --speakers \"S ...\"    training speakers, or all (default $speakers)
  --vc_speakers \"S ...\" speakers converted into each other, or all (default \"$vc_speakers\")
  --mic M               mic1 or mic2 (default $mic)
  --download_dir DIR    VCTK-Corpus-0.92.zip is downloaded to / looked for here (default $download_dir)
  --corpus_dir DIR      the unzipped corpus (default: \$download_dir/VCTK-Corpus-0.92)
  --vctk_url URL        where to download the zip (default $vctk_url)"
. utils/parse_options.sh

corpus_dir=${corpus_dir:-$download_dir/VCTK-Corpus-0.92}
if [[ "$debug" == true ]]; then
  conf=${conf%.yaml}.debug.yaml
  tag=${tag:-ddsp_vc_debug}
  datadir=data_debug   # a few utterances per voice: the whole run in minutes on a CPU
  dumpdir=dump_debug
else
  tag=${tag:-ddsp_vc}
  datadir=data
  dumpdir=dump
fi
expdir=exp/$tag
# shellcheck disable=SC2206  # the speakers are words
speaker_list=($speakers)

if (( stage <= -1 && -1 <= stop_stage )); then
  log "stage -1: download and unzip VCTK 0.92 into $corpus_dir"
  local/download.sh --url "$vctk_url" "$download_dir" "$corpus_dir"
fi

if (( stage <= 0 && 0 <= stop_stage )); then
  log "stage 0: data preparation ($mic)"
  local/data_prep.sh --mic "$mic" "$corpus_dir" data "${speaker_list[@]}"
  for s in train dev eval; do
    utils/validate_data_dir.sh --need-text "data/$s"
    if [[ "$debug" == true ]]; then
      # The first 3 (train) or 1 (dev, eval) utterances of every speaker; the first eval
      # sentence (001) is the same for all speakers, so every pair can be scored.
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
  log "stage 2: statistics (per speaker: log-f0 and loudness for the conversion)"
  vocoder stats --formants "$dumpdir/train"
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  log "stage 3: training -> $expdir/model (TensorBoard: tensorboard --logdir $expdir)"
  mkdir -p "$expdir/model/log"
  vocoder train --config "$conf" --train-dump "$dumpdir/train" --valid-dump "$dumpdir/dev" \
    --exp "$expdir/model" --device "$device" --resume \
    2> >(tee "$expdir/model/log/train.log" >&2)
fi

# The conversion speakers, checked against the eval set: $expdir/data/vc_speakers.
if (( stage <= 5 && 4 <= stop_stage )); then
  mkdir -p "$expdir/data"
  cut -d' ' -f1 "$datadir/eval/spk2utt" > "$expdir/data/eval_speakers"
  if [[ $vc_speakers == all ]]; then
    cp "$expdir/data/eval_speakers" "$expdir/data/vc_speakers"
  else
    # shellcheck disable=SC2086  # the speakers are words
    printf '%s\n' $vc_speakers | sort -u > "$expdir/data/vc_speakers"
    missing=$(join -v 1 "$expdir/data/vc_speakers" "$expdir/data/eval_speakers" | paste -sd' ')
    if [[ -n $missing ]]; then
      echo "$0: speaker(s) $missing of --vc_speakers not in $datadir/eval (it has: $(paste -sd' ' "$expdir/data/eval_speakers"))" >&2
      exit 1
    fi
  fi
  voices=$(cat "$expdir/data/vc_speakers")
  if [[ -s $datadir/eval/spk2gender ]]; then
    log "conversion speakers (gender): $(join "$expdir/data/vc_speakers" "$datadir/eval/spk2gender" | tr '\n' ' ')"
  fi
fi

if (( stage <= 4 && 4 <= stop_stage )); then
  log "stage 4: conversion of the eval sentences into every other voice"
  for src in $voices; do
    src_dir=$expdir/data/eval_$src
    if [[ ! -s $src_dir/wav.scp ]]; then
      echo "$src" > "$expdir/data/eval_$src.spk"
      utils/subset_data_dir.sh --spk-list "$expdir/data/eval_$src.spk" "$datadir/eval" "$src_dir"
    fi
    for tgt in $voices; do
      [[ $src == "$tgt" ]] && continue
      ${decode_cmd} "$expdir/log/convert_${src}_to_${tgt}.log" \
        vocoder convert --checkpoint "$expdir/model" --target "$tgt" --source-speaker "$src" --vtln auto \
        --stats "$dumpdir/train/stats.json" --device "$device" "$src_dir" "$expdir/wav/${src}_to_${tgt}"
    done
  done
fi

if (( stage <= 5 && 5 <= stop_stage )); then
  log "stage 5: evaluation of every source-target pair"
  # One line per converted utterance, with the target's recording of the same sentence
  # (same number and same text) as the reference.
  pairs=$expdir/eval/pairs.txt
  utils/make_vc_pairs.py --speakers "$voices" --f0-shifts --out "$pairs" "$datadir/eval" "$expdir/wav"
  # The speaker classifier tells the conversion speakers apart: their training and eval
  # utterances only.
  for s in train eval; do
    utils/subset_data_dir.sh --spk-list "$expdir/data/vc_speakers" "$datadir/$s" "$expdir/data/${s}_vc"
  done
  read -r sr hop f0min f0max < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['hop_length'], f['f0_min'], f['f0_max'])" "$dumpdir/train/feats.yaml")
  ${decode_cmd} "$expdir/log/evaluate_conversion.log" \
    vocoder evaluate-conversion --pairs "$pairs" --train-data "$expdir/data/train_vc" \
    --check-data "$expdir/data/eval_vc" --stats "$dumpdir/train/stats.json" \
    --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
    --json "$expdir/eval/conversion.json" \
    --update "$expdir/metrics.json" --set eval --system ddsp_vc
  grep -v '^#' "$expdir/log/evaluate_conversion.log" || true
fi
log "done"
