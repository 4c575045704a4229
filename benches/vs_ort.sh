#!/bin/sh
# The performance table of docs/performance.md: ONNX Runtime and rnnc interleaved in
# one run (LSTM, GRU and RNN at four shapes, 1 and 2 threads, and a streaming LSTM
# step), each row's ratio (ORT time / rnnc time) against its target. The script is
# the team's shared one, ../shared/peers/table_vs_ort.py; this builds rnnc and runs it.
# Usage: benches/vs_ort.sh [--quick] [--targets]   (VENV: the peers' Python environment,
# made by ../shared/peers/setup.sh; default $HOME/.rnnc-peers)
set -e
cd "$(dirname "$0")/.."
VENV=${VENV:-${RNNC_PEERS_VENV:-$HOME/.rnnc-peers}}
if [ ! -x "$VENV/bin/python" ]; then
  echo "no peers environment at $VENV: run sh ../shared/peers/setup.sh $VENV first" >&2
  exit 1
fi
cargo build --release --locked -p rnnc-cli
lscpu | sed -n 's/^Model name: *//p'
"$VENV/bin/python" ../shared/peers/table_vs_ort.py target/release/rnnc "$@"
