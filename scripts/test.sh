#!/usr/bin/env bash
# The test command (README): installs what the tests need where it is missing, then
# runs every test. Needs: the Rust toolchain; apt (Debian) for the rest:
#   - a C compiler: tests/aot.rs links generated object files with `cc`;
#   - a Vulkan driver: tests/wgsl_backend.rs runs the WGSL backend through wgpu, on
#     Mesa's software Vulkan (llvmpipe) where there is no GPU;
#   - clang-16, NVRTC and ptxas: tests/cuda_compile.rs compiles the CUDA backend's
#     source with both compilers and assembles the PTX (NVRTC and ptxas come from
#     NVIDIA's PyPI wheels, installed with pip under target/cuda-tools);
#   - NumPy: tests/random_cells.rs generates random cells and their reference
#     outputs with tests/tools/cellgen.py (pip, under target/py-tools);
#   - Chromium (Debian's `chromium`): tests/explore_browser.rs opens the page
#     `rnnc explore` writes in a headless browser and checks its DOM;
#   - maturin and pytest (pip, under target/py-build): the Python package
#     (crates/rnnc-python) is built as a wheel, installed under target/py-rnnc and
#     its tests run after cargo's.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v cc >/dev/null || missing+=(gcc libc6-dev)
ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
command -v clang-16 >/dev/null || missing+=(clang-16)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends "${missing[@]}"
fi

cuda_tools=target/cuda-tools
if [ ! -x "$cuda_tools/nvidia/cuda_nvcc/bin/ptxas" ]; then
  echo "installing NVRTC and ptxas (NVIDIA's PyPI wheels) into $cuda_tools"
  python3 -m pip install --quiet --disable-pip-version-check --target "$cuda_tools" \
    nvidia-cuda-nvrtc-cu12==12.9.86 nvidia-cuda-nvcc-cu12==12.9.86
fi
export PATH="$PWD/$cuda_tools/nvidia/cuda_nvcc/bin:$PATH"

# NumPy for tests/tools/cellgen.py (tests/random_cells.rs), under target/py-tools.
py_tools=target/py-tools
if ! python3 -c "import numpy" 2>/dev/null && [ ! -d "$py_tools/numpy" ]; then
  echo "installing NumPy into $py_tools"
  python3 -m pip install --quiet --disable-pip-version-check --target "$py_tools" "numpy>=1.24,<3"
fi
export PYTHONPATH="$PWD/$py_tools${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$PWD/$cuda_tools/nvidia/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Mesa's Vulkan loader complains without a runtime directory; give it one.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --workspace --locked "$@"

# The Python package: a wheel built by maturin (dev profile: it reuses the test
# build above), installed under target/py-rnnc, tested with pytest on this Python.
py_build=target/py-build
if [ ! -x "$py_build/bin/maturin" ] || ! PYTHONPATH="$PWD/$py_build" python3 -c "import pytest" 2>/dev/null; then
  echo "installing maturin and pytest into $py_build"
  python3 -m pip install --quiet --disable-pip-version-check --target "$py_build" \
    "maturin>=1.9,<2" "pytest>=7"
fi
rm -rf target/wheels target/py-rnnc
"$py_build/bin/maturin" build --quiet -m crates/rnnc-python/Cargo.toml --profile dev \
  --locked -i python3 -o target/wheels
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target target/py-rnnc \
  target/wheels/rnnc-*.whl
PYTHONPATH="$PWD/target/py-rnnc:$PYTHONPATH:$PWD/$py_build" python3 -m pytest -q crates/rnnc-python/tests
