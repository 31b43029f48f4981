#!/usr/bin/env bash
# TTS vocoder on LJSpeech 1.1 (one female reader, 13,100 clips, ~24 h, 22.05 kHz): the mel
# vocoder (mel_ddsp, default) or a DDSP autoencoder, in the TTS feature conventions
# (22.05 kHz, hop 256, 80 log10 mel bands 80-7600 Hz).
#
#   ./run.sh                                  # download, then every stage (GPU: see README.md)
#   ./run.sh --model ddsp                     # the DDSP autoencoder (conf/ddsp_speech.yaml)
#   ./run.sh --conf conf/my.yaml --tag my     # any config
#   ./run.sh --download_dir /data/lj          # the tarball fetched to (or put by hand in) that dir
#   ./run.sh --stage 0 --corpus_dir /data/LJSpeech-1.1   # corpus already unpacked
#   ./run.sh --stage 4 --stop_stage 6
#   ./run.sh --debug true                     # tiny config, 4/1/2 utterances (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#  -1 download     LJSpeech-1.1.tar.bz2 (2.6 GB, public domain) from data.keithito.com into
#                  $download_dir (resumable; SHA-256 from local/checksums), unpacked into
#                  $corpus_dir; skipped when the corpus is there. No network: put the
#                  tarball in $download_dir yourself.
#   0 data prep    metadata.csv + wavs/ -> data/{train,dev,eval} (text: the normalized
#                  transcription). Split by position in metadata.csv, the ESPnet /
#                  ParallelWaveGAN convention: eval the last 250 clips (LJ050-0029 ..
#                  LJ050-0278), dev the 250 before, train the other 12,600 (--n_dev, --n_eval)
#   1 features     vocoder extract --nj N -> dump/<conf>/{train,dev,eval} (one dump per
#                  config: the two models read different streams)
#   2 statistics   vocoder stats dump/<conf>/train (per-bin mel, log-f0, loudness)
#   3 training     vocoder train -> $expdir/model
#   4 synthesis    the eval set: mel_ddsp from its mel feats.scp alone, as behind a TTS
#                  front end (vocoder synth --feats); other models from the dump
#                  (vocoder synth --dump) -> $expdir/wav/eval
#   5 evaluation   WORLD copy-synthesis baseline (5 ms frames) + vocoder evaluate of both
#                  against the recordings, at 22.05 kHz with a 5 ms hop -> $expdir/metrics.json
#   6 report       vocoder report -> $expdir/report/index.html
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=-1
stop_stage=6
nj=8                    # parallel feature-extraction and evaluation jobs
debug=false             # true: conf/*.debug.yaml and a few utterances
model=mel               # mel (conf/mel_vocoder.yaml) or ddsp (conf/ddsp_speech.yaml)
conf=""                 # config (default: by --model); overrides --model
tag=""                  # experiment name (default: the config's name, + _debug with --debug true)
device=auto             # auto, cpu or cuda
n_dev=250               # dev: the n_dev clips before the eval ones
n_eval=250              # eval: the last n_eval clips of metadata.csv
download_dir=downloads  # where LJSpeech-1.1.tar.bz2 is downloaded to, or put by hand
corpus_dir=""           # the unpacked corpus (default: $download_dir/LJSpeech-1.1)
lj_url=https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2

help_message="Usage: $0 [options]
  --stage N            first stage to run (default $stage: download)
  --stop_stage N       last stage to run (default $stop_stage)
  --nj N               parallel jobs (default $nj)
  --debug BOOL         tiny debug config and data subset (default $debug)
  --model M            mel (mel_ddsp, conf/mel_vocoder.yaml) or ddsp (conf/ddsp_speech.yaml)
                       (default $model)
  --conf F             config; overrides --model (default: the --model one)
  --tag NAME           experiment name under exp/ (default: the config's file name, e.g.
                       mel_vocoder, or mel_vocoder_debug with --debug true)
  --device D           auto, cpu or cuda (default $device)
  --n_dev N            dev clips (default $n_dev)
  --n_eval N           eval clips, the last of metadata.csv (default $n_eval)
  --download_dir DIR   LJSpeech-1.1.tar.bz2 is downloaded to / looked for here (default $download_dir)
  --corpus_dir DIR     the unpacked corpus (default: \$download_dir/LJSpeech-1.1)
  --lj_url URL         where to download the tarball (default $lj_url)"
. utils/parse_options.sh

if [[ -z $conf ]]; then
  case $model in
    mel) conf=conf/mel_vocoder.yaml ;;
    ddsp) conf=conf/ddsp_speech.yaml ;;
    *) echo "$0: --model takes mel or ddsp, not '$model' (or give --conf FILE)" >&2; exit 1 ;;
  esac
fi
corpus_dir=${corpus_dir:-$download_dir/LJSpeech-1.1}
conf_name=$(basename "$conf" .yaml)
if [[ "$debug" == true ]]; then
  conf=${conf%.yaml}.debug.yaml
  tag=${tag:-${conf_name}_debug}
  datadir=data_debug   # a few utterances: the whole run in a minute or two on a CPU
  dumpdir=dump_debug/$conf_name
else
  tag=${tag:-$conf_name}
  datadir=data
  dumpdir=dump/$conf_name
fi
[[ -f $conf ]] || { echo "$0: config $conf not found" >&2; exit 1; }
expdir=exp/$tag

if (( stage <= -1 && -1 <= stop_stage )); then
  log "stage -1: download and unpack LJSpeech 1.1 into $corpus_dir"
  local/download.sh --url "$lj_url" "$download_dir" "$corpus_dir"
fi

if (( stage <= 0 && 0 <= stop_stage )); then
  log "stage 0: data preparation ($n_dev dev, $n_eval eval clips)"
  local/data_prep.sh --n_dev "$n_dev" --n_eval "$n_eval" "$corpus_dir" data
  for s in train dev eval; do
    utils/validate_data_dir.sh --need-text "data/$s"
    if [[ "$debug" == true ]]; then
      # The first 4 (train), 1 (dev) or 2 (eval) utterances.
      case $s in train) n=4 ;; dev) n=1 ;; *) n=2 ;; esac
      utils/subset_data_dir.sh --first "data/$s" "$n" "$datadir/$s"
    fi
  done
fi

if (( stage <= 1 && 1 <= stop_stage )); then
  log "stage 1: feature extraction with $conf ($nj jobs)"
  for s in train dev eval; do
    mkdir -p "$dumpdir/$s/log"
    ${train_cmd} "$dumpdir/$s/log/extract.log" \
      vocoder extract --config "$conf" --nj "$nj" "$datadir/$s" "$dumpdir/$s"
  done
fi

if (( stage <= 2 && 2 <= stop_stage )); then
  log "stage 2: statistics"
  vocoder stats "$dumpdir/train"
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  log "stage 3: training -> $expdir/model (TensorBoard: tensorboard --logdir $expdir)"
  mkdir -p "$expdir/model/log"
  vocoder train --config "$conf" --train-dump "$dumpdir/train" --valid-dump "$dumpdir/dev" \
    --exp "$expdir/model" --device "$device" --resume \
    2> >(tee "$expdir/model/log/train.log" >&2)
fi

# The model's name (mel_ddsp, ddsp): how stage 4 feeds it, and the system name of stage 5.
if (( stage <= 5 && 4 <= stop_stage )); then
  model_name=$(python3 -c "import yaml, sys
print(yaml.safe_load(open(sys.argv[1]))['model']['name'])" "$conf")
fi

if (( stage <= 4 && 4 <= stop_stage )); then
  if [[ $model_name == mel_ddsp ]]; then
    log "stage 4: synthesis of the eval set from its mel feats.scp alone (f0 predicted by the model)"
    input=(--feats "$dumpdir/eval/mel.scp")
  else
    log "stage 4: synthesis of the eval set from its dump ($model_name)"
    input=(--dump "$dumpdir/eval")
  fi
  ${decode_cmd} "$expdir/log/synth_eval.log" \
    vocoder synth --checkpoint "$expdir/model" "${input[@]}" --out "$expdir/wav/eval" --device "$device"
fi

if (( stage <= 5 && 5 <= stop_stage )); then
  log "stage 5: evaluation against the recordings and WORLD copy-synthesis"
  # The baseline: WORLD analysis/synthesis at the dump's rate with WORLD's standard 5 ms
  # frame period. The metrics: at the same rate (LJSpeech's own 22.05 kHz) with a 5 ms hop.
  read -r sr f0min f0max < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['f0_min'], f['f0_max'])" "$dumpdir/eval/feats.yaml")
  hop=$(( (sr + 100) / 200 ))
  ${decode_cmd} "$expdir/log/copy_synth_eval.log" \
    vocoder copy-synth "$datadir/eval" "$expdir/world/eval" \
    --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj"
  for system in "$model_name" world; do
    if [[ $system == world ]]; then hyp=$expdir/world/eval; else hyp=$expdir/wav/eval; fi
    ${decode_cmd} "$expdir/log/evaluate_${system}_eval.log" \
      vocoder evaluate "$datadir/eval" "$hyp" --sample-rate "$sr" --hop-length "$hop" \
      --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
      --json "$expdir/eval/eval/${system}.json" \
      --update "$expdir/metrics.json" --set eval --system "$system"
  done
  python3 utils/compare_metrics.py --baseline world "$expdir/metrics.json"
fi

if (( stage <= 6 && 6 <= stop_stage )); then
  log "stage 6: report"
  vocoder report "$expdir"
  log "open $PWD/$expdir/report/index.html"
fi
log "done"
