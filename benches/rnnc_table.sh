#!/bin/sh
# rnnc's side of ../shared/peers/bench_peers.py: the same cells and configurations
# (B, T, I=H), one JSON line each from `rnnc bench`. Usage: benches/rnnc_table.sh [extra rnnc bench flags]
set -e
RNNC=${RNNC:-target/release/rnnc}
for cell in lstm gru elman_rnn; do
  for cfg in "1 100 256" "64 100 256" "1 1000 128" "16 50 1024"; do
    set -- $cfg "$@"
    b=$1; t=$2; h=$3; shift 3
    "$RNNC" bench "models/$cell.rnn" --param input_size="$h" --param hidden_size="$h" \
      --batch "$b" --seq "$t" --json "$@"
  done
done
