#!/usr/bin/env bash
# Mel-spectrogram vocoder (model mel_ddsp) on the speech of the embedded mini corpus,
# with the TTS feature conventions: 22.05 kHz, hop 256, 80 log10 mel bands 80-7600 Hz.
#
#   ./run.sh                         # every stage with the default config
#   ./run.sh --stage 3 --stop_stage 4
#   ./run.sh --debug true            # tiny config: a run of a minute or two (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#   0 data prep      corpus FLAC -> data/speech_{train,dev,eval}
#   1 features       vocoder extract --nj N -> dump/<set> (audio resampled to 22.05 kHz)
#   2 statistics     vocoder stats dump/speech_train (per-bin mel mean/std)
#   3 training       vocoder train -> $expdir/speech
#   4 synthesis      vocoder synth --feats dump/speech_eval/mel.scp: from the mel alone,
#                    as behind a TTS front end -> $expdir/wav/speech_eval (frames * 256
#                    samples each, up to one hop longer than the source; evaluate trims)
#   5 evaluation     WORLD copy-synthesis baseline + vocoder evaluate (at 16 kHz, the
#                    corpus's rate) -> $expdir/metrics.json
#   6 report         vocoder report -> $expdir/report/index.html
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=0
stop_stage=6
nj=2                 # parallel feature-extraction and evaluation jobs
debug=false          # true: conf/*.debug.yaml (tiny model, a few steps, a few utterances)
conf=conf/mel_vocoder.yaml
tag=""               # experiment name (default: mel_ddsp, or mel_ddsp_debug with --debug true)
device=auto          # auto, cpu or cuda
eval_sr=16000        # rate of the metrics (the mini corpus's own; see stage 5)
corpus=../corpus

help_message="Usage: $0 [options]
  --stage N          first stage to run (default $stage)
  --stop_stage N     last stage to run (default $stop_stage)
  --nj N             parallel jobs (default $nj)
  --debug BOOL       use the tiny debug config (default $debug)
  --conf F           config (default $conf)
  --tag NAME         experiment name under exp/ (default mel_ddsp or mel_ddsp_debug)
  --device D         auto, cpu or cuda (default $device)
  --eval_sr HZ       sample rate at which the metrics are computed (default $eval_sr)
  --corpus DIR       the mini corpus (default $corpus)"
. utils/parse_options.sh

if [[ "$debug" == true ]]; then
  conf=${conf%.yaml}.debug.yaml
  tag=${tag:-mel_ddsp_debug}
  datadir=data_debug   # a few utterances per speaker: the whole run in a minute or two
  dumpdir=dump_debug
else
  tag=${tag:-mel_ddsp}
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
      # First 3 (train) or 1 (dev, eval) utterances of every speaker.
      if [[ $s == train ]]; then n=3; else n=1; fi
      utils/subset_data_dir.sh --per-spk "$n" "data/${d}_${s}" "$datadir/${d}_${s}"
    fi
  done
fi

if (( stage <= 1 && 1 <= stop_stage )); then
  log "stage 1: feature extraction ($nj jobs)"
  for s in train dev eval; do
    mkdir -p "$dumpdir/${d}_${s}/log"
    ${train_cmd} "$dumpdir/${d}_${s}/log/extract.log" \
      vocoder extract --config "$conf" --nj "$nj" "$datadir/${d}_${s}" "$dumpdir/${d}_${s}"
  done
fi

if (( stage <= 2 && 2 <= stop_stage )); then
  log "stage 2: statistics"
  vocoder stats "$dumpdir/${d}_train"
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  log "stage 3: training -> $expdir/$d (TensorBoard: tensorboard --logdir $expdir)"
  mkdir -p "$expdir/$d/log"
  vocoder train --config "$conf" --train-dump "$dumpdir/${d}_train" \
    --valid-dump "$dumpdir/${d}_dev" --exp "$expdir/$d" --device "$device" --resume \
    2> >(tee "$expdir/$d/log/train.log" >&2)
fi

if (( stage <= 4 && 4 <= stop_stage )); then
  log "stage 4: synthesis of the eval set from its mel feats.scp (f0 predicted by the model)"
  ${decode_cmd} "$expdir/log/synth_${d}_eval.log" \
    vocoder synth --checkpoint "$expdir/$d" --feats "$dumpdir/${d}_eval/mel.scp" \
    --out "$expdir/wav/${d}_eval" --device "$device"
fi

if (( stage <= 5 && 5 <= stop_stage )); then
  log "stage 5: evaluation against the references and WORLD copy-synthesis"
  # The baseline: WORLD analysis/synthesis at the vocoder's rate (the dump's) with WORLD's
  # standard 5 ms frame period. The metrics are computed at $eval_sr Hz with a 5 ms hop:
  # the mini corpus is 16 kHz audio, so above 8 kHz the references hold nothing and
  # metrics at 22.05 kHz would mostly score how each system renders that empty band.
  read -r sr f0min f0max < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['f0_min'], f['f0_max'])" "$dumpdir/${d}_eval/feats.yaml")
  world_hop=$(( (sr + 100) / 200 ))
  eval_hop=$(( (eval_sr + 100) / 200 ))
  ${decode_cmd} "$expdir/log/copy_synth_${d}_eval.log" \
    vocoder copy-synth "$datadir/${d}_eval" "$expdir/world/${d}_eval" \
    --sample-rate "$sr" --hop-length "$world_hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj"
  for system in ddsp world; do
    if [[ $system == ddsp ]]; then hyp=$expdir/wav/${d}_eval; else hyp=$expdir/world/${d}_eval; fi
    ${decode_cmd} "$expdir/log/evaluate_${system}_${d}_eval.log" \
      vocoder evaluate "$datadir/${d}_eval" "$hyp" --sample-rate "$eval_sr" --hop-length "$eval_hop" \
      --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
      --json "$expdir/eval/${d}_eval/${system}.json" \
      --update "$expdir/metrics.json" --set "${d}_eval" --system "$system"
  done
  python3 utils/compare_metrics.py --baseline world "$expdir/metrics.json"
fi

if (( stage <= 6 && 6 <= stop_stage )); then
  log "stage 6: report"
  vocoder report "$expdir"
  log "open $PWD/$expdir/report/index.html"
fi
log "done"
