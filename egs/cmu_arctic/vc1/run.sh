#!/usr/bin/env bash
# Any-to-many voice conversion (multi-speaker DDSP) between CMU ARCTIC voices.
#
#   ./run.sh                                    # download, then every stage (GPU: see README.md)
#   ./run.sh --download_dir /data/arctic        # archives fetched to (or put by hand in) that dir
#   ./run.sh --stage 0 --corpus_dir /data/arctic  # corpus already unpacked: cmu_us_<spk>_arctic/
#   ./run.sh --speakers "bdl slt clb rms jmk"   # other voices (all pairs are converted)
#   ./run.sh --stage 4 --stop_stage 5
#   ./run.sh --debug true                       # tiny config, 3/1/1 utterances per voice (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#  -1 download     cmu_us_<spk>_arctic-0.95-release.tar.bz2 from festvox.org into
#                  $download_dir (resumable; checked against local/checksums, else an
#                  archive test), unpacked into $corpus_dir; voices already there are
#                  skipped. No network: put the tarballs in $download_dir yourself.
#   0 data prep    $corpus_dir/cmu_us_<spk>_arctic -> data/{train,dev,eval}; split by
#                  sentence, parallel across voices: eval arctic_b0508..b0539 (the last 32),
#                  dev arctic_b0476..b0507 (the 32 before), train the other 1068
#   1 features     vocoder extract --nj N -> dump/{train,dev}
#   2 statistics   vocoder stats dump/train --formants (per-voice log-f0, loudness, formants)
#   3 training     vocoder train -> $expdir/model (one embedding per voice)
#   4 conversion   every eval sentence of every voice into every other voice:
#                  vocoder convert --target T --vtln auto -> $expdir/wav/<src>_to_<tgt>/<utt>.wav
#   5 evaluation   vocoder evaluate-conversion against the target voice's recording of the
#                  same sentence (utils/make_vc_pairs.py) -> $expdir/metrics.json
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=-1
stop_stage=5
nj=8                          # parallel feature-extraction and evaluation jobs
debug=false                   # true: conf/*.debug.yaml and a few utterances per voice
conf=conf/ddsp_vc.yaml
tag=""                        # experiment name (default: ddsp_vc, or ddsp_vc_debug with --debug true)
device=auto                   # auto, cpu or cuda
speakers="bdl slt clb rms"    # 2 male (bdl, rms), 2 female (slt, clb) US English voices
download_dir=downloads        # where the archives are downloaded to, or put by hand
corpus_dir=""                 # holds cmu_us_<spk>_arctic/ (default: $download_dir)
arctic_version=0.95-release   # tarball cmu_us_<spk>_arctic-<version>.tar.bz2; none: cmu_us_<spk>_arctic.tar.bz2

help_message="Usage: $0 [options]
  --stage N            first stage to run (default $stage: download)
  --stop_stage N       last stage to run (default $stop_stage)
  --nj N               parallel jobs (default $nj)
  --debug BOOL         tiny debug config and data subset (default $debug)
  --conf F             config (default $conf)
  --tag NAME           experiment name under exp/ (default ddsp_vc or ddsp_vc_debug)
  --device D           auto, cpu or cuda (default $device)
  --speakers \"S ...\"   CMU ARCTIC voices (default \"$speakers\")
  --download_dir DIR   archives are downloaded to / looked for here (default $download_dir)
  --corpus_dir DIR     dir holding cmu_us_<spk>_arctic/ (default: the download dir)
  --arctic_version V   0.95-release (default), another release (0.90-release), or none
                       (the unversioned tarballs, all 18 voices, known checksums)"
. utils/parse_options.sh

corpus_dir=${corpus_dir:-$download_dir}
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
# shellcheck disable=SC2206  # the voices are words
speaker_list=($speakers)

if (( stage <= -1 && -1 <= stop_stage )); then
  log "stage -1: download and unpack ${speaker_list[*]} into $corpus_dir"
  local/download.sh --version "$arctic_version" "$download_dir" "$corpus_dir" "${speaker_list[@]}"
fi

if (( stage <= 0 && 0 <= stop_stage )); then
  log "stage 0: data preparation"
  local/data_prep.sh "$corpus_dir" data "${speaker_list[@]}"
  for s in train dev eval; do
    utils/validate_data_dir.sh --need-text "data/$s"
    if [[ "$debug" == true ]]; then
      # The first 3 (train) or 1 (dev, eval) utterances of every voice; the eval sentence
      # is the same for all voices (parallel data), so every pair can be scored.
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
  log "stage 2: statistics (per voice: log-f0 and loudness for the conversion)"
  vocoder stats --formants "$dumpdir/train"
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  log "stage 3: training -> $expdir/model (TensorBoard: tensorboard --logdir $expdir)"
  mkdir -p "$expdir/model/log"
  vocoder train --config "$conf" --train-dump "$dumpdir/train" --valid-dump "$dumpdir/dev" \
    --exp "$expdir/model" --device "$device" --resume \
    2> >(tee "$expdir/model/log/train.log" >&2)
fi

if (( stage <= 4 && 4 <= stop_stage )); then
  log "stage 4: conversion of the eval sentences into every other voice"
  voices=$(cut -d' ' -f1 "$datadir/eval/spk2utt")
  mkdir -p "$expdir/data"
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
  # One line per converted utterance, with the target voice's recording of the same
  # sentence as the reference (utt ids are <voice>_<sentence>).
  pairs=$expdir/eval/pairs.txt
  utils/make_vc_pairs.py --f0-shifts --out "$pairs" "$datadir/eval" "$expdir/wav"
  read -r sr hop f0min f0max < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['hop_length'], f['f0_min'], f['f0_max'])" "$dumpdir/train/feats.yaml")
  ${decode_cmd} "$expdir/log/evaluate_conversion.log" \
    vocoder evaluate-conversion --pairs "$pairs" --train-data "$datadir/train" \
    --check-data "$datadir/eval" --stats "$dumpdir/train/stats.json" \
    --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
    --json "$expdir/eval/conversion.json" \
    --update "$expdir/metrics.json" --set eval --system ddsp_vc
  grep -v '^#' "$expdir/log/evaluate_conversion.log" || true
fi
log "done"
