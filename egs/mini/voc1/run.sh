#!/usr/bin/env bash
# DDSP vocoder on the embedded mini corpus: speech (4 TTS voices) and music (4 instruments).
#
#   ./run.sh                         # every stage with the default (demo) configs
#   ./run.sh --stage 3 --stop_stage 4
#   ./run.sh --debug true            # tiny configs: a run of a minute or two (CI)
#
# Stages (each one idempotent: rerunning skips finished work, nothing is deleted):
#   0 data prep      corpus FLAC -> data/{speech,music}_{train,dev,eval}
#   1 features       vocoder extract --nj N -> dump/<set>
#   2 statistics     vocoder stats dump/<domain>_train
#   3 training       vocoder train -> $expdir/<domain>
#   4 synthesis      vocoder synth (eval sets) -> $expdir/wav/<domain>_eval
#   5 evaluation     WORLD copy-synthesis baseline + vocoder evaluate -> $expdir/metrics.json
#   6 report         vocoder report -> $expdir/report/index.html
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/job_lib.sh

stage=0
stop_stage=6
nj=2                 # parallel feature-extraction jobs
domains="speech music"
debug=false          # true: conf/*.debug.yaml (tiny models, a few steps)
conf_speech=conf/ddsp_speech.yaml
conf_music=conf/ddsp_music.yaml
tag=""               # experiment name (default: ddsp, or ddsp_debug with --debug true)
device=auto          # auto, cpu or cuda
train_parallel=auto  # train the domains' models at once, splitting the CPU's cores (auto: on a CPU)
corpus=../corpus

help_message="Usage: $0 [options]
  --stage N          first stage to run (default $stage)
  --stop_stage N     last stage to run (default $stop_stage)
  --nj N             parallel feature-extraction jobs (default $nj)
  --domains LIST     \"speech music\", \"speech\" or \"music\" (default \"$domains\")
  --debug BOOL       use the tiny debug configs (default $debug)
  --conf_speech F    speech config (default $conf_speech)
  --conf_music F     music config (default $conf_music)
  --tag NAME         experiment name under exp/ (default ddsp or ddsp_debug)
  --device D         auto, cpu or cuda (default $device)
  --train_parallel B auto, true or false: train the speech and music models at once,
                     each on half the cores (default $train_parallel; auto: when the
                     training runs on a CPU of 2 or more cores)"
. utils/parse_options.sh

if [[ "$debug" == true ]]; then
  conf_speech=${conf_speech%.yaml}.debug.yaml
  conf_music=${conf_music%.yaml}.debug.yaml
  tag=${tag:-ddsp_debug}
  datadir=data_debug   # a few utterances per speaker: the whole run in a minute or two
  dumpdir=dump_debug
else
  tag=${tag:-ddsp}
  datadir=data
  dumpdir=dump
fi
expdir=exp/$tag
conf_for() { if [[ "$1" == speech ]]; then echo "$conf_speech"; else echo "$conf_music"; fi; }

if (( stage <= 0 && 0 <= stop_stage )); then
  log "stage 0: data preparation"
  local/data_prep.sh "$corpus" data
  for d in $domains; do
    for s in train dev eval; do
      utils/validate_data_dir.sh "data/${d}_${s}"
      if [[ "$debug" == true ]]; then
        # First 3 (train) or 1 (dev, eval) utterances of every speaker.
        if [[ $s == train ]]; then n=3; else n=1; fi
        utils/subset_data_dir.sh --per-spk "$n" "data/${d}_${s}" "$datadir/${d}_${s}"
      fi
    done
  done
fi

if (( stage <= 1 && 1 <= stop_stage )); then
  log "stage 1: feature extraction ($nj jobs)"
  for d in $domains; do
    for s in train dev eval; do
      mkdir -p "$dumpdir/${d}_${s}/log"
      ${train_cmd} "$dumpdir/${d}_${s}/log/extract.log" \
        vocoder extract --config "$(conf_for "$d")" --nj "$nj" "$datadir/${d}_${s}" "$dumpdir/${d}_${s}"
    done
  done
fi

if (( stage <= 2 && 2 <= stop_stage )); then
  log "stage 2: statistics"
  for d in $domains; do
    vocoder stats "$dumpdir/${d}_train"
  done
fi

train_domain() {  # train_domain DOMAIN [LOG]: vocoder train, its stderr appended to LOG, else to
  # $expdir/DOMAIN/log/train.log and the terminal (with LOG it replaces the calling shell:
  # `train_domain d log &` makes $! the training's pid)
  local d=$1
  local args=(--config "$(conf_for "$d")" --train-dump "$dumpdir/${d}_train" --valid-dump "$dumpdir/${d}_dev"
              --exp "$expdir/$d" --device "$device" --resume)
  mkdir -p "$expdir/$d/log"
  if [[ $# -ge 2 ]]; then
    exec vocoder train "${args[@]}" >> "$2" 2>&1
  else
    vocoder train "${args[@]}" 2> >(tee -a "$expdir/$d/log/train.log" >&2)
  fi
}

if (( stage <= 3 && 3 <= stop_stage )); then
  read -r -a doms <<< "$domains"
  ncpu=$(num_cpus)
  if [[ $train_parallel == auto ]]; then
    # Two small models on one core each finish sooner than one after the other on both
    # cores (a training step scales by about 1.45x from 1 to 2 threads). On a GPU they
    # would share the device: one at a time there.
    train_parallel=false
    if (( ${#doms[@]} > 1 && ncpu >= 2 )) && [[ $device == cpu || ( $device == auto &&
        $(python3 -c 'import torch; print(int(torch.cuda.is_available()))') == 0 ) ]]; then
      train_parallel=true
    fi
  fi
  [[ $train_parallel == true || $train_parallel == false ]] \
    || { echo "$0: --train_parallel must be auto, true or false, got '$train_parallel'" >&2; exit 1; }
  if [[ $train_parallel == false || ${#doms[@]} -le 1 ]]; then
    for d in "${doms[@]}"; do
      log "stage 3: training the $d model -> $expdir/$d (TensorBoard: tensorboard --logdir $expdir)"
      train_domain "$d"
    done
  else
    threads=$(( ncpu / ${#doms[@]} > 0 ? ncpu / ${#doms[@]} : 1 ))
    log "stage 3: training the ${domains// / and } models at once, $threads thread(s) each -> $expdir/{${domains// /,}}" \
        "(logs: $expdir/<domain>/log/train.log; TensorBoard: tensorboard --logdir $expdir)"
    pids=()
    for d in "${doms[@]}"; do
      # progress bar updates in the log every 20 s, not ten times a second
      OMP_NUM_THREADS=$threads TQDM_MININTERVAL=20 train_domain "$d" "$expdir/$d/log/train.log" &
      pids+=($!)
    done
    trap 'kill "${pids[@]}" 2>/dev/null; exit 130' INT TERM
    progress() {  # the latest progress-bar state of each training
      local d line
      for d in "${doms[@]}"; do
        line=$(tail -c 2000 "$expdir/$d/log/train.log" 2>/dev/null | tr '\r' '\n' | grep -a '^train:' | tail -n 1 || true)
        [[ -z $line ]] || log "  $d: $line"
      done
    }
    alive() { local pid; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
    while alive; do  # report progress every minute until both have finished
      for _ in {1..60}; do sleep 1; alive || break; done
      if alive; then progress; fi
    done
    failed=""
    for i in "${!doms[@]}"; do
      d=${doms[$i]}
      if wait "${pids[$i]}"; then
        log "stage 3: $d: $(grep -a 'vocoder train: ' "$expdir/$d/log/train.log" | tail -n 1 || echo "trained")"
      else
        failed+=" $d"
        echo "$0: training the $d model failed; the end of $expdir/$d/log/train.log:" >&2
        tail -c 4000 "$expdir/$d/log/train.log" | tr '\r' '\n' | tail -n 20 >&2
      fi
    done
    trap - INT TERM
    [[ -z $failed ]] || { echo "$0: stage 3 failed for:$failed (rerun continues from the last checkpoints)" >&2; exit 1; }
  fi
fi

if (( stage <= 4 && 4 <= stop_stage )); then
  log "stage 4: synthesis of the eval sets"
  for d in $domains; do
    ${decode_cmd} "$expdir/log/synth_${d}_eval.log" \
      vocoder synth --checkpoint "$expdir/$d" --dump "$dumpdir/${d}_eval" \
      --out "$expdir/wav/${d}_eval" --device "$device"
  done
fi

if (( stage <= 5 && 5 <= stop_stage )); then
  log "stage 5: evaluation against the references and WORLD copy-synthesis"
  for d in $domains; do
    # Analysis settings of the dump (rate, hop, f0 range) for the baseline and the metrics.
    read -r sr hop f0min f0max < <(python3 -c "import yaml, sys
f = yaml.safe_load(open(sys.argv[1]))['features']
print(f['sample_rate'], f['hop_length'], f['f0_min'], f['f0_max'])" "$dumpdir/${d}_eval/feats.yaml")
    ${decode_cmd} "$expdir/log/copy_synth_${d}_eval.log" \
      vocoder copy-synth "$datadir/${d}_eval" "$expdir/world/${d}_eval" \
      --sample-rate "$sr" --hop-length "$hop" --f0-min "$f0min" --f0-max "$f0max" --nj "$nj"
    for system in ddsp world; do
      if [[ $system == ddsp ]]; then hyp=$expdir/wav/${d}_eval; else hyp=$expdir/world/${d}_eval; fi
      ${decode_cmd} "$expdir/log/evaluate_${system}_${d}_eval.log" \
        vocoder evaluate "$datadir/${d}_eval" "$hyp" --sample-rate "$sr" --hop-length "$hop" \
        --f0-min "$f0min" --f0-max "$f0max" --nj "$nj" \
        --json "$expdir/eval/${d}_eval/${system}.json" \
        --update "$expdir/metrics.json" --set "${d}_eval" --system "$system"
    done
  done
  python3 utils/compare_metrics.py --baseline world "$expdir/metrics.json"
fi

if (( stage <= 6 && 6 <= stop_stage )); then
  log "stage 6: report"
  vocoder report "$expdir"
  log "open $PWD/$expdir/report/index.html"
fi
log "done"
