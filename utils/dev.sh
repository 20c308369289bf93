#!/usr/bin/env bash
# One entry point for developers and CI on Debian 12:
#
#   utils/dev.sh deps    install what is missing (apt; through sudo when not root)
#   utils/dev.sh build   deps + configure + build (build/)
#   utils/dev.sh demo    build + the main job: an example MoE layer compiled,
#                        run with generated weights and checked
#   utils/dev.sh test    build + every test (lit suite, Python tests; then the
#                        whole project built with ASan + UBSan in build-asan/,
#                        the lit suite again against it, and a short run of
#                        every fuzz harness)
#   utils/dev.sh fuzz [SECONDS] [TARGET...]
#                        long fuzzing runs (default 600 s per harness)
#   utils/dev.sh bench [ARGS]
#                        the CPU benchmark (bench/cpu.py --help)
#
# Every step is idempotent and quiet when there is nothing to do.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOE_BUILD_DIR:-$ROOT/build}"
LLVM_PREFIX=/usr/lib/llvm-22
PACKAGES=(
  cmake ninja-build ccache git python3 python3-numpy python3-pytest python3-torch
  python3-matplotlib
  python3-pip python3-setuptools
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22
  libclang-rt-22-dev liblld-22-dev libomp-22-dev zlib1g-dev libzstd-dev
  openmpi-bin libopenmpi-dev
)

log() { printf '== %s\n' "$*" >&2; }

install_deps() {
  local missing=()
  for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
        grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "error: missing packages (${missing[*]}) and not root and no sudo" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  log "installing: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure DIR [CMAKE ARGS...]: configures DIR once.
configure() {
  local dir="$1"
  shift
  [ -f "$dir/build.ninja" ] && return 0
  log "configuring $dir"
  cmake -G Ninja -S "$ROOT" -B "$dir" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$LLVM_PREFIX/bin/clang" \
    -DCMAKE_CXX_COMPILER="$LLVM_PREFIX/bin/clang++" \
    -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
    -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/bin/lit" "$@" >/dev/null
}

build() {
  install_deps
  configure "$BUILD"
  ninja -C "$BUILD" -j "${MOE_JOBS:-2}" all mlir-doc | grep -v '^\[' || true
  test -x "$BUILD/bin/moe-opt"
}

# The whole project (dialect, passes, tools, runtime) built with ASan +
# UBSan, plus the libFuzzer harnesses, in $BUILD-asan.
build_sanitized() {
  local dir="$BUILD-asan"
  configure "$dir" -DMOE_SANITIZE=ON -DMOE_FUZZ=ON
  ninja -C "$dir" -j "${MOE_JOBS:-2}" all mlir-doc | grep -v '^\[' || true
  test -x "$dir/bin/moe-fuzz-json"
}

# run_fuzzers SECONDS [TARGET...]: runs each harness for SECONDS from a copy
# of its committed corpus (new inputs are kept in $BUILD-asan/fuzz/corpus),
# with its dictionary; a finding is saved in $BUILD-asan/fuzz/findings and
# fails the run.
run_fuzzers() {
  local seconds="$1"
  shift
  local dir="$BUILD-asan/fuzz"
  local targets=("$@")
  [ ${#targets[@]} -eq 0 ] && targets=(json safetensors sharded npy manifest
    binding moe-opt ptx)
  mkdir -p "$dir/findings"
  local failed=()
  for target in "${targets[@]}"; do
    local corpus="$dir/corpus/$target"
    mkdir -p "$corpus"
    local seed
    for seed in "$ROOT/fuzz/corpus/$target/"*; do
      [ -e "$corpus/${seed##*/}" ] || cp "$seed" "$corpus/"
    done
    log "fuzzing $target for ${seconds}s"
    if ! "$BUILD-asan/bin/moe-fuzz-$target" -max_total_time="$seconds" \
        -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
        -dict="$ROOT/fuzz/dict/$target.dict" \
        -artifact_prefix="$dir/findings/$target-" "$corpus" \
        > "$dir/$target.log" 2>&1; then
      tail -n 40 "$dir/$target.log" >&2
      failed+=("$target")
    else
      grep -E '^stat::number_of_executed_units' "$dir/$target.log" |
        sed "s/^/   $target: /" >&2 || true
    fi
  done
  if [ ${#failed[@]} -ne 0 ]; then
    echo "error: findings in: ${failed[*]} (inputs in $dir/findings)" >&2
    return 1
  fi
}

demo() {
  build
  log "the main job: a Mixtral-style Hugging Face checkpoint (generated"
  log "weights) imported by moe_mlir import-hf, compiled by moe-compile, run"
  log "by moe-run, checked against numpy"
  /usr/bin/python3 "$ROOT/utils/demo.py" --build "$BUILD" --out "$BUILD/demo"
}

run_tests() {
  build
  log "running the lit suite"
  "$LLVM_PREFIX/bin/lit" -sv "$BUILD/test"
  # Debian's interpreter: the one with numpy and pytest.
  log "running the Python tests"
  MOE_OPT="$BUILD/bin/moe-opt" /usr/bin/python3 -m pytest -q "$ROOT/python/tests"
  build_sanitized
  log "running the lit suite against the ASan + UBSan build"
  "$LLVM_PREFIX/bin/lit" -sv "$BUILD-asan/test"
  log "fuzzing each harness for a short smoke run"
  run_fuzzers "${MOE_FUZZ_SECONDS:-20}"
}

# utils/dev.sh bench [ARGS]: the CPU benchmark (bench/cpu.py ARGS) with the
# packages its PyTorch baselines and plot need.
bench() {
  PACKAGES+=(libopenblas0-pthread)
  build
  /usr/bin/python3 "$ROOT/bench/cpu.py" --build "$BUILD" "$@"
}

# utils/dev.sh fuzz [SECONDS] [TARGET...]: the long runs (default 600 s
# each, every harness).
fuzz() {
  install_deps
  build_sanitized
  local seconds="${1:-600}"
  [ $# -gt 0 ] && shift
  run_fuzzers "$seconds" "$@"
}

case "${1:-}" in
  deps) install_deps ;;
  build) build ;;
  demo) demo ;;
  test) run_tests ;;
  fuzz)
    shift
    fuzz "$@"
    ;;
  bench)
    shift
    bench "$@"
    ;;
  *)
    echo "usage: $0 {deps|build|demo|test|fuzz [SECONDS] [TARGET...]|bench [ARGS]}" >&2
    exit 2
    ;;
esac
