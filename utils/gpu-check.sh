#!/usr/bin/env bash
# The GPU check: the CUDA execution tests and a short benchmark, run on a
# machine with an NVIDIA GPU and the project's build outputs, but no
# LLVM/MLIR (the compiler stays on the machine that builds).
#
#   utils/gpu-check.sh prepare [DIR]      where the project is built:
#       compiles the test layers and the benchmark layer for CUDA
#       (moe-compile --target cuda) into DIR (default build/gpu-check),
#       with their checkpoints and inputs (the bf16 ones also with
#       mma=wgmma, three of them with mma=wgmma-specialized, two of those
#       also on a persistent grid and in 2-CTA clusters, two with the
#       combine by atomic adds, three with mma=wgmma-pingpong), copies
#       moe-run (the runtime linked in) to DIR/bin, and
#       prepares bench/gpu.py's layers in DIR/gpu-bench (about 90 MiB),
#       then packs DIR into DIR.tar.xz (about 15 MiB): what the GPU machine
#       needs besides the working tree (carry the archive: the device
#       tool's working tree and carried paths are limited to 64 MiB).
#       `run` and `bench` unpack DIR.tar.xz when DIR is not there.
#   utils/gpu-check.sh run [DIR] [LOG]    on the GPU machine: the GPU name
#       and driver, the execution tests (every routing family, f32, bf16,
#       f16 and FP8, T = 0, 1, 7, 300, 4096, against the numpy reference;
#       the device-io layers on device buffers and in a CUDA graph),
#       then moe-run --bench of a Mixtral-style bf16 layer, and its
#       mma=wgmma form at T = 1, 8, 64 against the reference; everything goes
#       to LOG (default DIR/gpu-check.log) and to stdout. Exit status 1 if
#       a test fails. Needs python3 with numpy there.
#   utils/gpu-check.sh bench [DIR] [OUT.json] [-- bench/gpu.py run options]
#                                         on the GPU machine: bench/gpu.py
#       run on DIR/gpu-bench (the issue's shapes against PyTorch; needs
#       PyTorch with CUDA), results to OUT.json (default DIR/gpu.json),
#       rewritten after every row; no measurement starts after 480 s
#       unless the options give another --budget-s; a measurement with no
#       result in 90 s (--hang-s) is recorded as hung and the run goes on
#       without that form.
#   Each execution test has 120 s (MOE_GPU_CASE_TIMEOUT_S): a kernel that
#   never ends fails its case, not the whole call.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECK="$ROOT/test/Integration/CUDA/Inputs/cuda_check.py"
PYTHON="${PYTHON:-python3}"
[ -x /usr/bin/python3 ] && [ "$PYTHON" = python3 ] &&
  /usr/bin/python3 -c "import numpy" 2>/dev/null && PYTHON=/usr/bin/python3
# The benchmark layer: Mixtral's routing at a size the GPU machine writes
# the checkpoint of in seconds.
BENCH_ARGS=(--family mixtral --hidden 2048 --intermediate 4096 --experts 8
  --top-k 2 --layers 2 --dtype bf16 --seed 1)
BENCH_TOKENS=(1 8 64 512 4096)

# One line per moe-run --bench result: time, expert TFLOP/s (2 T K 3 H I
# flops) and the GB/s of the expert weights a call touches (min(E, T K)
# experts of 3 H I bf16 weights).
BENCH_SUMMARY='
import json, sys
r = json.loads(sys.stdin.read())
t, h, i, e, k = r["tokens"], 2048, 4096, 8, 2
s = r["median_ms"] / 1e3
flops = 2 * t * k * 3 * h * i
touched = min(e, t * k) * 3 * h * i * 2
print(f"T = {t}: {r[\"median_ms\"]:.3f} ms (min {r[\"min_ms\"]:.3f}), "
      f"{flops / s / 1e12:.2f} TFLOP/s, {touched / s / 1e9:.1f} GB/s of touched "
      f"expert weights")
'

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}

prepare() {
  local dir="${1:-$ROOT/build/gpu-check}"
  local compile="$ROOT/build/bin/moe-compile"
  [ -x "$compile" ] || { echo "gpu-check: build first (utils/dev.sh build)" >&2; exit 1; }
  rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/bench"
  "$PYTHON" "$CHECK" prepare "$dir/tests" --moe-compile "$compile"
  # The bf16 layers' wgmma forms again with specialized tiles (128-row
  # blocks: a producer and two consumer warpgroups).
  "$PYTHON" "$CHECK" prepare "$dir/tests-specialized" --moe-compile "$compile" \
    --only mixtral-bf16,qwen3_moe-bf16,deepseek_v3-bf16 --wgmma wgmma-specialized
  # Two of them on a persistent grid: the ring and the roles span each
  # block's walk over tiles, the roles moving registers (setmaxnreg).
  "$PYTHON" "$CHECK" prepare "$dir/tests-specialized-persistent" \
    --moe-compile "$compile" --only mixtral-bf16,qwen3_moe-bf16 \
    --wgmma wgmma-specialized --fast-options "persistent=1"
  # And in 2-CTA clusters: one expert's pairs of row blocks share their
  # weight boxes (TMA multicast).
  "$PYTHON" "$CHECK" prepare "$dir/tests-specialized-cluster" \
    --moe-compile "$compile" --only mixtral-bf16,qwen3_moe-bf16 \
    --wgmma wgmma-specialized --wgmma-options "cluster=2"
  "$PYTHON" "$CHECK" prepare "$dir/tests-specialized-persistent-cluster" \
    --moe-compile "$compile" --only mixtral-bf16,deepseek_v3-bf16 \
    --wgmma wgmma-specialized --wgmma-options "cluster=2" --fast-options "persistent=1"
  # Two consumers taking 64-row blocks in turns (ping-pong, on a
  # persistent grid), with the gather and the atomic combine.
  "$PYTHON" "$CHECK" prepare "$dir/tests-pingpong" --moe-compile "$compile" \
    --only mixtral-bf16,qwen3_moe-bf16,deepseek_v3-bf16 --wgmma wgmma-pingpong
  "$PYTHON" "$CHECK" prepare "$dir/tests-pingpong-atomic" \
    --moe-compile "$compile" --only qwen3_moe-bf16 --wgmma wgmma-pingpong \
    --fast-options "atomic-combine=1"
  # The combine in the down projection's write-back by atomic adds.
  "$PYTHON" "$CHECK" prepare "$dir/tests-atomic-combine" \
    --moe-compile "$compile" \
    --only qwen3_moe-bf16,deepseek_v3-bf16,example-switch_top1 \
    --wgmma wgmma-specialized --fast-options "atomic-combine=1"
  # The benchmark layer's IR from a checkpoint of its shape (a small
  # vocabulary keeps it quick); the GPU machine writes the same checkpoint.
  PYTHONPATH="$ROOT/python" "$PYTHON" -m moe_mlir make-checkpoint \
    "${BENCH_ARGS[@]}" --vocab 64 --quiet -o "$dir/bench/shape"
  PYTHONPATH="$ROOT/python" "$PYTHON" -m moe_mlir import-hf \
    "$dir/bench/shape" --layer 1 -o "$dir/bench/layer.mlir"
  "$compile" "$dir/bench/layer.mlir" --target cuda -o "$dir/bench/layer.so"
  # Its wgmma form: K of 32 and 64 steps, whose narrow decode tiles take
  # eight-row stages (the wgmmas' A read through a stride of 0) and keep
  # several wgmma groups in flight.
  "$compile" "$dir/bench/layer.mlir" --target cuda \
    --pipeline-options="mma=wgmma" -o "$dir/bench/layer-wgmma.so"
  rm -rf "$dir/bench/shape"
  cp "$ROOT/build/bin/moe-run" "$dir/bin/"
  # The runtime library, for the device-io checks through the Python binding.
  mkdir -p "$dir/lib" && cp -L "$ROOT/build/lib/libMoERuntime.so" "$dir/lib/"
  "$PYTHON" "$ROOT/bench/gpu.py" prepare --out "$dir/gpu-bench"
  rm -f "$dir.tar.xz"
  "$PYTHON" -c 'import os, sys, tarfile
with tarfile.open(sys.argv[1] + ".tar.xz", "w:xz") as archive:
    archive.add(sys.argv[1], arcname=os.path.basename(sys.argv[1]))' "$dir"
  du -sh "$dir" "$dir.tar.xz"
}

# DIR from DIR.tar.xz (what prepare packed) where DIR is not there.
unpack() {
  local dir="$1"
  [ -d "$dir" ] || [ ! -f "$dir.tar.xz" ] && return 0
  "$PYTHON" -c 'import os, sys, tarfile
with tarfile.open(sys.argv[1] + ".tar.xz") as archive:
    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    archive.extractall(os.path.dirname(sys.argv[1]) or ".", **kwargs)' "$dir"
}

run() {
  local dir="${1:-$ROOT/build/gpu-check}"
  local log="${2:-$dir/gpu-check.log}"
  local moe_run="$dir/bin/moe-run"
  unpack "$dir"
  [ -x "$moe_run" ] || { echo "gpu-check: $dir holds no prepared run (gpu-check.sh prepare)" >&2; exit 1; }
  exec > >(tee "$log") 2>&1
  echo "# gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  "$moe_run" --devices
  "$PYTHON" -c "import numpy; print('numpy', numpy.__version__)"
  local status=0
  local start=$SECONDS
  local forms
  for forms in tests tests-specialized tests-specialized-persistent \
    tests-specialized-cluster tests-specialized-persistent-cluster \
    tests-pingpong tests-pingpong-atomic tests-atomic-combine; do
    MOE_RUNTIME_LIBRARY="$dir/lib/libMoERuntime.so" \
      "$PYTHON" "$CHECK" check "$dir/$forms" --moe-run "$moe_run" \
      --case-timeout-s "${MOE_GPU_CASE_TIMEOUT_S:-120}" || status=1
  done
  echo "# tests: $((SECONDS - start)) s"

  echo "# bench: ${BENCH_ARGS[*]}"
  PYTHONPATH="$ROOT/python" "$PYTHON" -m moe_mlir make-checkpoint \
    "${BENCH_ARGS[@]}" --vocab 64 --quiet -o "$dir/bench/ckpt"
  for tokens in "${BENCH_TOKENS[@]}"; do
    "$PYTHON" -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(0).standard_normal((int(sys.argv[2]), 2048)).astype(np.float32))" \
      "$dir/bench/x.npy" "$tokens"
    timeout -s KILL "${MOE_GPU_CASE_TIMEOUT_S:-120}" \
      "$moe_run" "$dir/bench/layer.so" --weights "$dir/bench/ckpt" \
      --input "$dir/bench/x.npy" --output "$dir/bench/y.npy" --bench 10 --quiet |
      "$PYTHON" -c "$BENCH_SUMMARY" || status=1
  done
  # The wgmma form of the bench layer against the float64 reference: at
  # T <= 8 every row block takes eight-row stages.
  for tokens in 1 8 64; do
    "$PYTHON" -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).standard_normal((int(sys.argv[2]), 2048)).astype(np.float32))" \
      "$dir/bench/x.npy" "$tokens"
    echo "# bench layer, mma=wgmma, T = $tokens:"
    timeout -s KILL "${MOE_GPU_CASE_TIMEOUT_S:-120}" \
      "$moe_run" "$dir/bench/layer-wgmma.so" --weights "$dir/bench/ckpt" \
      --input "$dir/bench/x.npy" --output "$dir/bench/y.npy" --quiet &&
      PYTHONPATH="$ROOT/python" "$PYTHON" -m moe_mlir reference --hf \
        "$dir/bench/ckpt" --layer 1 --input "$dir/bench/x.npy" \
        --check "$dir/bench/y.npy" --rtol 2e-2 || status=1
  done
  echo "# gpu-check: $([ $status = 0 ] && echo passed || echo FAILED) in $SECONDS s"
  return $status
}

bench() {
  local dir="${1:-$ROOT/build/gpu-check}"
  local out="${2:-$dir/gpu.json}"
  shift $(($# < 2 ? $# : 2))
  [ "${1:-}" = "--" ] && shift
  unpack "$dir"
  [ -d "$dir/gpu-bench" ] || { echo "gpu-check: $dir holds no prepared benchmark (gpu-check.sh prepare)" >&2; exit 1; }
  # The Python with PyTorch and numpy.
  local python
  for python in "$PYTHON" python3 /usr/bin/python3; do
    "$python" -c "import torch, numpy" 2>/dev/null && break
  done
  # The GPU machine stops a command after 10 minutes: unless told
  # otherwise, no measurement starts after 8 (the JSON keeps every row
  # measured, the others listed as skipped).
  local budget=(--budget-s 480)
  case " $* " in *" --budget-s"*) budget=() ;; esac
  # A measurement that hangs ends gpu.py with status 3 (its row recorded
  # as hung); it goes on from the file without that form, the budget
  # still counted from the first start.
  local resume=() status
  while :; do
    status=0
    "$python" "$ROOT/bench/gpu.py" run --dir "$dir/gpu-bench" --out "$out" \
      --scratch "$dir" "${budget[@]}" "${resume[@]}" "$@" || status=$?
    [ "$status" = 3 ] || return "$status"
    resume=(--resume)
  done
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  bench) shift; bench "$@" ;;
  *) usage ;;
esac
