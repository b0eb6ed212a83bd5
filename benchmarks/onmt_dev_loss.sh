#!/usr/bin/env bash
# OpenNMT-py's dev loss after given updates of the peer-benchmark model, to set beside
# `benchmark.py --train-steps N --dev-loss-at ...` (criterion 1: equal dev loss after the same
# target tokens). Trains the peers' own OpenNMT-py config for the largest N updates, keeping a
# checkpoint at each, then scores each on the benchmark's dev verses with `onmt_translate -tgt`:
# its GOLD SCORE is the summed log-probability per sentence, </s> included, so the loss per
# target token is -GOLD SCORE x sentences / (pieces + sentences).
#
#   bash benchmarks/onmt_dev_loss.sh PEERS 200 400 577   # PEERS: docs/performance.md, Protocol
#
# Uses the peers' venvs and data (BENCH_VENVS, BENCH_WORK as in the folder's common.sh; run
# benchmark.py --peers once first to make them). Takes about as long as that many OpenNMT-py
# updates (about 10 minutes for 577 on 2 cores).
set -euo pipefail
PEERS="$(cd "$1" && pwd)"; shift
STEPS=("$@")
source "$PEERS/common.sh"
V="$BENCH_VENVS/onmt/bin"
RUN="$BENCH_WORK/runs/onmt_dev_loss"
rm -rf "$RUN"; mkdir -p "$RUN"
LAST="${STEPS[-1]}"
sed -e "s#@DATA@#$DATA#g; s#@RUN@#$RUN#g; s#@STEPS@#$LAST#g" \
  "$PEERS/opennmt/train.yaml.in" > "$RUN/train.yaml"
# OpenNMT-py saves every K updates and at the last one: K = the gcd of the others, all kept
EVERY=$("$REF_PY" -c "import math, sys; print(math.gcd(*map(int, sys.argv[1:])) or $LAST)" "${STEPS[@]:0:${#STEPS[@]}-1}")
sed -i "s/^save_checkpoint_steps: .*/save_checkpoint_steps: $EVERY/; s/^keep_checkpoint: .*/keep_checkpoint: -1/" \
  "$RUN/train.yaml"
pin "$V/onmt_train" -config "$RUN/train.yaml" > "$RUN/train.stdout" 2>&1
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1  # OpenNMT-py's own checkpoints hold a Namespace
sentences=$(wc -l < "$DATA/dev.sp.fr")
pieces=$(wc -w < "$DATA/dev.sp.fr")
for s in "${STEPS[@]}"; do
  score=$(pin "$V/onmt_translate" -model "$RUN/model_step_$s.pt" -src "$DATA/dev.sp.en" \
    -tgt "$DATA/dev.sp.fr" -output "$RUN/dev.$s.hyp" -beam_size 1 -batch_size 64 \
    -batch_type sents -max_length 100 -gpu -1 2>&1 | sed -n 's/.*GOLD SCORE: \([-0-9.]*\).*/\1/p')
  "$REF_PY" -c "print(f'updates $s: dev loss {-$score * $sentences / ($pieces + $sentences):.3f}')"
done
