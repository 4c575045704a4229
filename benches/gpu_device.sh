#!/usr/bin/env bash
# benches/gpu_device.sh: the CUDA checks and timings for a machine with an NVIDIA
# GPU (issue 19), as one script: the CUDA compile tests, every model through
# `--backend cuda` against the interpreter (each scan strategy, B = 1, 5, 64), the
# CLI's CUDA test, and `rnnc bench --backend cuda` for LSTM and GRU at B = 1 and 64,
# T = 100, H = 256 and 1024. Results go to $OUT (default target/gpu-device).
#
# With cargo (and the crates fetched) it builds what it runs. Without, build here
# first and carry the binaries (they are what it looks for under target/gpu-bin):
#   cargo build --release -p rnnc-cli && mkdir -p target/gpu-bin
#   cp target/release/rnnc target/gpu-bin/
#   cp "$(cargo test --release --test cuda_compile --no-run --message-format=json \
#        | jq -r 'select(.executable != null) | .executable')" target/gpu-bin/cuda_compile
# NVRTC must be loadable (a CUDA toolkit, or NVIDIA's pip wheel on LD_LIBRARY_PATH).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-target/gpu-device}"
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >> "$out/nvidia-smi.txt"

if command -v cargo >/dev/null && cargo build --release -p rnnc-cli > "$out/build.txt" 2>&1; then
  rnnc=target/release/rnnc
  cargo test --release --test cuda_compile -- --nocapture > "$out/cuda_compile.txt" 2>&1
  echo "cuda_compile: exit $?" >> "$out/summary.txt"
  cargo test --release -p rnnc-cli --test cli cuda > "$out/cli_cuda.txt" 2>&1
  echo "cli cuda test: exit $?" >> "$out/summary.txt"
else
  rnnc=target/gpu-bin/rnnc
  if [ -x target/gpu-bin/cuda_compile ]; then
    target/gpu-bin/cuda_compile --nocapture > "$out/cuda_compile.txt" 2>&1
    echo "cuda_compile: exit $?" >> "$out/summary.txt"
  fi
fi

for cell in lstm gru; do
  for h in 256 1024; do
    for b in 1 64; do
      "$rnnc" bench "models/$cell.rnn" --param input_size=$h --param hidden_size=$h \
        --backend cuda --batch $b --seq 100 --json > "$out/bench_${cell}_H${h}_B${b}.json" \
        2> "$out/bench_${cell}_H${h}_B${b}.err"
      echo "bench $cell H=$h B=$b: exit $? $(cat "$out/bench_${cell}_H${h}_B${b}.json")" \
        >> "$out/summary.txt"
    done
  done
done
cat "$out/summary.txt"
