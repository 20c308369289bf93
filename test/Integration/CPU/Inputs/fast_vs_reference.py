"""The fast CPU pipeline equals the reference pipeline on awkward layers.

usage: fast_vs_reference.py OUT [--tokens 0,1,7,300,2049] [--cases a,b]

For every case below (shapes that are not multiples of the vector width or
the tiles, E = 1, K = E, experts without tokens, one expert taking every
token, bf16 and f16 weights, biases, a shared expert) this writes the layer
(moe_mlir.emit), compiles it with moe-compile as each of VARIANTS (the
default fast path on OpenMP threads, with openmp=0, with unpacked weights,
with odd weight panels and register tiles, and --reference),
writes random weights, and for every T and 1 and 2 threads runs the modules with moe-run on the same input; the outputs must agree
within 1e-4 * max|reference| (docs/Semantics.md, f32 accumulation in both).
Prints one line per case; exit status 1 on the first difference.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

PYTHON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          *[os.pardir] * 4, "python")
sys.path.insert(0, PYTHON_DIR)

from moe_mlir import safetensors_io  # noqa: E402
from moe_mlir.cli import random_weights  # noqa: E402
from moe_mlir.emit import LayerSpec, emit_module  # noqa: E402

GATED = {"router": "router.weight", "expert_gate": "experts.{e}.gate.weight",
         "expert_up": "experts.{e}.up.weight",
         "expert_down": "experts.{e}.down.weight"}
EXPERTS = ("expert_gate", "expert_up", "expert_down")

# name -> (LayerSpec arguments, how the router is set: "random" or
# "one_expert": every token routed to expert 0 first)
CASES = {
    # H and I not multiples of 16 or 4, experts left without tokens at T=7.
    "odd_sizes": (dict(hidden=100, intermediate=37, num_experts=8,
                       routing="<softmax, top_k = 2, renormalize>",
                       weights=GATED), "random"),
    # bf16 weights with odd H and I: an odd K in every projection (the
    # bf16 kernel's pairs of K end in a zero).
    "odd_sizes_bf16": (dict(hidden=101, intermediate=37, num_experts=8,
                            routing="<softmax, top_k = 2, renormalize>",
                            weights=GATED,
                            dtypes={op: "bf16" for op in EXPERTS}),
                       "random"),
    "one_expert_layer": (dict(hidden=33, intermediate=20, num_experts=1,
                              routing="<softmax, top_k = 1>",
                              weights=GATED), "random"),
    "k_equals_e": (dict(hidden=48, intermediate=24, num_experts=4,
                        routing="<softmax, top_k = 4>", weights=GATED),
                   "random"),
    "all_to_one_expert": (dict(hidden=64, intermediate=40, num_experts=4,
                               routing="<softmax, top_k = 1>",
                               weights=GATED), "one_expert"),
    "many_experts_bf16": (dict(hidden=64, intermediate=24, num_experts=64,
                               routing="<softmax, top_k = 8, renormalize>",
                               weights=GATED,
                               dtypes={op: "bf16" for op in EXPERTS}),
                          "random"),
    # Block-scaled FP8 experts (blocks of 16 x 12, H and I multiples of
    # neither): decoded on the fly by the panel kernel (panels of 16, or 8
    # with panel-cols=24), by the scalar loops unpacked.
    "fp8_block_scaled": (dict(hidden=100, intermediate=37, num_experts=8,
                              routing="<softmax, top_k = 2, renormalize>",
                              weights=dict(GATED, **{
                                  scale: GATED[op] + "_scale_inv"
                                  for scale, op in (
                                      ("gate_scale", "expert_gate"),
                                      ("up_scale", "expert_up"),
                                      ("down_scale", "expert_down"))}),
                              dtypes={op: "f8e4m3fn" for op in EXPERTS},
                              weight_block=[16, 12]), "random"),
    # MXFP4 experts (e2m1 pairs, e8m0 scales of [1, 32] blocks, K = 100
    # and an odd K = 37): scales per column, packed in the weights' panels.
    "mxfp4_column_scales": (dict(hidden=100, intermediate=37, num_experts=8,
                                 routing="<softmax, top_k = 2, renormalize>",
                                 weights=dict(GATED,
                                              gate_scale="gate.scales",
                                              up_scale="up.scales",
                                              down_scale="down.scales"),
                                 dtypes={op: "e2m1x2" for op in EXPERTS},
                                 formats={op: "e8m0" for op in (
                                     "gate_scale", "up_scale",
                                     "down_scale")},
                                 weight_block=[1, 32]), "random"),
    # e2m1 pairs with scales of [2, 16] blocks (one per 2 columns: panels
    # of 2) and a shared expert of them.
    "mxfp4_shared_blocks": (dict(hidden=64, intermediate=24, num_experts=4,
                                 routing="<softmax, top_k = 2>",
                                 weights=dict(
                                     GATED, up_scale="up.scales",
                                     down_scale="down.scales",
                                     gate_scale="gate.scales",
                                     shared_gate="shared.gate.weight",
                                     shared_up="shared.up.weight",
                                     shared_down="shared.down.weight",
                                     shared_gate_scale="shared.gate.scales",
                                     shared_up_scale="shared.up.scales",
                                     shared_down_scale="shared.down.scales"),
                                 shared_intermediate=20,
                                 dtypes={op: "e2m1x2" for op in EXPERTS + (
                                     "shared_gate", "shared_up",
                                     "shared_down")},
                                 formats={op: "e8m0" for op in (
                                     "gate_scale", "up_scale", "down_scale",
                                     "shared_gate_scale", "shared_up_scale",
                                     "shared_down_scale")},
                                 weight_block=[2, 16]), "random"),
    # Capacity routing (tokens over an expert's 5 slots dropped).
    "capacity_routing": (dict(hidden=40, intermediate=24, num_experts=4,
                              routing="<softmax, top_k = 2, "
                                      "capacity = fixed(5)>",
                              weights=GATED), "random"),
    "f16_weights": (dict(hidden=40, intermediate=72, num_experts=8,
                         routing="<softmax, top_k = 2>", weights=GATED,
                         dtypes={op: "f16" for op in EXPERTS + ("router",)}),
                    "random"),
    "relu_biases": (dict(hidden=24, intermediate=50, num_experts=4,
                         routing="<softmax, top_k = 2>", activation="relu",
                         weights={"router": "router.weight",
                                  "expert_up": "experts.{e}.fc1.weight",
                                  "up_bias": "experts.{e}.fc1.bias",
                                  "expert_down": "experts.{e}.fc2.weight",
                                  "down_bias": "experts.{e}.fc2.bias"}),
                    "random"),
    "shared_expert": (dict(hidden=64, intermediate=32, num_experts=16,
                           routing="<sigmoid, top_k = 4, renormalize, "
                                   "scale = 2.5, selection_bias, groups = 4, "
                                   "topk_groups = 2, group_score = sum_top2>",
                           weights=dict(GATED, score_bias="router.bias",
                                        shared_gate="shared.gate.weight",
                                        shared_up="shared.up.weight",
                                        shared_down="shared.down.weight"),
                           shared_intermediate=48), "random"),
}


def run(command: list[str], what: str, disabled: str = "") -> None:
    env = dict(os.environ, MOE_CPU_DISABLE=disabled)
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{what} failed: {(done.stderr or done.stdout).strip()}")


def write_weights(spec: LayerSpec, router: str, path: str) -> None:
    tensors, dtypes = random_weights(spec, seed=7)
    if router == "one_expert":
        # Tokens are made positive below: expert 0 has every logit largest.
        weight = -np.ones((spec.num_experts, spec.hidden), np.float32)
        weight[0] = 1.0
        tensors[spec.weights["router"]] = weight
    safetensors_io.save_file(path, tensors, dtypes)


# The capacity layout written out with the parts' ops: slots [E, C, H] with
# C = 5, batched expert matmuls (the batched transposed-B matmul path), a
# gated product without activation. Weights as GATED for H = 40, I = 24,
# E = 4.
CAPACITY_LAYOUT = """
func.func @forward(%x: tensor<?x40xf32>,
    %router: tensor<4x40xf32> {moe.weight = "router.weight"},
    %wg: tensor<4x24x40xf32> {moe.weight = "experts.{e}.gate.weight"},
    %wu: tensor<4x24x40xf32> {moe.weight = "experts.{e}.up.weight"},
    %wd: tensor<4x40x24xf32> {moe.weight = "experts.{e}.down.weight"})
    -> tensor<?x40xf32> {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x40xf32>
  %empty = tensor.empty(%t) : tensor<?x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%empty : tensor<?x4xf32>)
      -> tensor<?x4xf32>
  %logits = linalg.matmul indexing_maps = [
        affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>,
        affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %router : tensor<?x40xf32>, tensor<4x40xf32>)
      outs(%init : tensor<?x4xf32>) -> tensor<?x4xf32>
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %slots, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x40xf32>, tensor<?x2xi32>
      -> tensor<4x5x40xf32>, tensor<4xi64>, tensor<?x2xi32>
  %g = moe.expert_matmul %slots, %wg
      : tensor<4x5x40xf32>, tensor<4x24x40xf32> -> tensor<4x5x24xf32>
  %u = moe.expert_matmul %slots, %wu
      : tensor<4x5x40xf32>, tensor<4x24x40xf32> -> tensor<4x5x24xf32>
  %h = arith.mulf %g, %u : tensor<4x5x24xf32>
  %d = moe.expert_matmul %h, %wd
      : tensor<4x5x24xf32>, tensor<4x40x24xf32> -> tensor<4x5x40xf32>
  %y = moe.combine %d, %w, %map
      : tensor<4x5x40xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x40xf32>
  return %y : tensor<?x40xf32>
}
"""

# name -> the module's text, for cases written with the parts' ops (the
# weights follow the case's LayerSpec).
MODULES = {"capacity_layout": CAPACITY_LAYOUT}
CASES["capacity_layout"] = (dict(hidden=40, intermediate=24, num_experts=4,
                                 routing="<softmax, top_k = 2>",
                                 weights=GATED), "random")


# moe-compile flags of each compiled variant; "reference" is the oracle.
VARIANTS = {
    "fast": [],
    # The same module with the CPU's bf16 and AMX units turned off: the
    # runtime runs its f32-FMA floor variant.
    "fast-floor": [],
    "sequential": ["--pipeline-options=openmp=0"],
    "unpacked": ["--pipeline-options=pack-weights=0"],
    "odd-panels": ["--pipeline-options=panel-cols=24 panel-rows=5"],
    "unfused": ["--pipeline-options=fuse-activation=0 fuse-combine=0"],
    "portable": ["--mcpu=x86-64-v3"],
    # bf16 (and FP8) weights packed in pairs of K, rows rounded to bf16:
    # f32 FMAs on any CPU (FP8 decoded by widening; by byte-table lookups
    # by default where the CPU has AVX512_VBMI), vdpbf16ps where the CPU
    # has AVX512_BF16.
    "bf16-pairs": ["--pipeline-options=bf16-matmul=pairs-fma "
                   "fp8-byte-lookup=0"],
    "reference": ["--reference"],
}


# Variants run from another variant's module, with MOE_CPU_DISABLE set.
SAME_MODULE = {"fast-floor": "fast"}
DISABLED_FEATURES = {"fast-floor": "avx512bf16,amx-tile,amx-bf16"}


def host_has(flag: str) -> bool:
    """Whether /proc/cpuinfo lists `flag` for this CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return any(line.startswith("flags") and flag in line.split()
                       for line in cpuinfo)
    except OSError:
        return False


if host_has("avx512_bf16"):
    VARIANTS = {**{k: v for k, v in VARIANTS.items() if k != "reference"},
                "bf16-dot": ["--pipeline-options=bf16-matmul=avx512bf16"],
                "reference": VARIANTS["reference"]}

# Variants that round the rows of bf16 expert weights' matmuls to bf16:
# the bf16 kernels, and by default (moe-compile picks the fastest kernel)
# wherever the target has AVX512_BF16. docs/Semantics.md allows them
# 2e-2 * max |reference| on layers with bf16 expert weights; the explicit
# kernels must equal each other within the f32 bound.
BF16_VARIANTS = ("bf16-pairs", "bf16-dot")
F32_VARIANTS = ("fast-floor", "unpacked", "portable", "reference")


def computes_bf16(variant: str, spec: LayerSpec) -> bool:
    """Whether `variant` multiplies `spec`'s expert weights in bf16 (bf16
    weights, FP8 ones staged as bf16 pairs, MXFP4 ones)."""
    dtypes = spec.dtypes or {}
    # e2m1 pairs are multiplied as bf16 pairs wherever they are packed.
    if all(dtypes.get(op) == "e2m1x2" for op in EXPERTS):
        return variant not in ("unpacked", "reference")
    if not all(dtypes.get(op) in ("bf16", "f8e4m3fn") for op in EXPERTS):
        return False
    if variant in BF16_VARIANTS:
        return True
    return variant not in F32_VARIANTS and host_has("avx512_bf16")


def compare(name: str, count: int, threads: int, outputs: dict[str, str],
            variant: str, oracle: str, tolerance: float) -> None:
    """Exits unless `variant`'s output is within `tolerance` * max |oracle|
    of `oracle`'s."""
    fast = np.load(outputs[variant]).astype(np.float64)
    ref = np.load(outputs[oracle]).astype(np.float64)
    if fast.shape != ref.shape:
        sys.exit(f"{name} T = {count}: shapes {fast.shape} and "
                 f"{ref.shape} differ")
    scale = np.abs(ref).max() if ref.size else 0.0
    error = np.abs(fast - ref).max() if ref.size else 0.0
    if not np.isfinite(fast).all() or error > tolerance * max(scale, 1e-30):
        sys.exit(f"{name} T = {count} threads = {threads}: {variant} "
                 f"differs from {oracle} by {error:.3g} (max |{oracle}| "
                 f"{scale:.3g})")


def check_case(name: str, out: str, tokens: list[int]) -> None:
    arguments, router = CASES[name]
    spec = LayerSpec(**arguments)
    directory = os.path.join(out, name)
    os.makedirs(directory, exist_ok=True)
    layer = os.path.join(directory, "layer.mlir")
    with open(layer, "w", encoding="utf-8") as file:
        file.write(MODULES.get(name) or emit_module(spec))
    modules = {}
    # The fast path on OpenMP threads (default) and sequential, the runtime
    # splitting the tokens instead (openmp=0); with the weights in the
    # checkpoint layout (the dot-product kernel) and in panels whose width
    # is not a multiple of the vector width, with odd register tiles; and
    # with the gate and up projections, their activation and the combine
    # each on their own (fuse-activation=0 fuse-combine=0); and for a
    # portable x86 level (AVX2) instead of this machine's CPU.
    # The floor variant exists in layers with bf16 expert weights only:
    # elsewhere the module has one kernel, compiled for all of this CPU.
    variants = [variant for variant in VARIANTS
                if variant not in SAME_MODULE or computes_bf16("fast", spec)]
    for variant in variants:
        flags = VARIANTS[variant]
        if variant in SAME_MODULE:
            modules[variant] = modules[SAME_MODULE[variant]]
            continue
        modules[variant] = os.path.join(directory, f"{variant}.so")
        run(["moe-compile", layer, *flags, "-o", modules[variant]],
            f"{name}: moe-compile {' '.join(flags)}")
    ckpt = os.path.join(directory, "ckpt")
    os.makedirs(ckpt, exist_ok=True)
    write_weights(spec, router, os.path.join(ckpt, "model.safetensors"))
    for count in tokens:
        x = np.random.default_rng(count).standard_normal((count, spec.hidden))
        if router == "one_expert":
            x = np.abs(x) + 0.1
        x_path = os.path.join(directory, f"x_{count}.npy")
        np.save(x_path, x.astype(np.float32))
        for threads in (1, 2):
            outputs = {}
            for variant, module in modules.items():
                outputs[variant] = os.path.join(
                    directory, f"y_{variant}_{count}_{threads}.npy")
                run(["moe-run", module, "--weights", ckpt, "--input", x_path,
                     "--output", outputs[variant], "--threads", str(threads),
                     "--quiet"],
                    f"{name}: moe-run {variant} at T = {count}",
                    DISABLED_FEATURES.get(variant, ""))
            for variant in variants:
                if variant == "reference":
                    continue
                compare(name, count, threads, outputs, variant, "reference",
                        2e-2 if computes_bf16(variant, spec) else 1e-4)
                # The two bf16 kernels form the same products of bf16 (and
                # decoded FP8) weights.
                if variant in BF16_VARIANTS[1:]:
                    compare(name, count, threads, outputs, variant,
                            BF16_VARIANTS[0], 1e-4)
    print(f"{name}: {' = '.join(variants)} at T = {tokens}, "
          f"threads 1 and 2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--tokens", default="0,1,7,300,2049")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    tokens = [int(t) for t in args.tokens.split(",")]
    for name in args.cases.split(","):
        check_case(name, args.out, tokens)


if __name__ == "__main__":
    main()
