#!/usr/bin/env bash
# The test command (README): installs what the tests need where it is missing, then
# runs every test. Needs: the Rust toolchain; apt (Debian) for the rest:
#   - a C compiler: tests/aot.rs links generated object files with `cc`;
#   - a Vulkan driver: tests/wgsl_backend.rs runs the WGSL backend through wgpu, on
#     Mesa's software Vulkan (llvmpipe) where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v cc >/dev/null || missing+=(gcc libc6-dev)
ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Mesa's Vulkan loader complains without a runtime directory; give it one.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --workspace --locked "$@"
