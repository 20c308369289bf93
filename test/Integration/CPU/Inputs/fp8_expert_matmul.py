"""Block-scaled FP8 expert weights, compiled and run against numpy.

usage: fp8_expert_matmul.py OUT

Writes a layer built from the parts' ops whose up and down projections read
f8E4M3FN weights with DeepSeek-V3 block scales (``weight_scale_inv``,
blocks of 16 x 16 here: H = 40 and I = 24 are not multiples), a checkpoint
of F8_E4M3 weights and F32 scales made by moe_mlir.float8, compiles it with
moe-compile (fast path and --reference), runs both with moe-run for
T = 0, 1, 7, 300 and compares them with the float64 numpy layer of the
dequantized weights (f32 bound, 1e-4 * max |reference|). Then the capacity
layout ([E, C, H] slots, batched expert matmuls) on the same FP8 weights
must equal it on the f32 weights they stand for, within 1e-6. Prints one
line per layout; exits 1 on the first difference.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                *[os.pardir] * 4, "python"))

from moe_mlir import float8, safetensors_io  # noqa: E402

E, H, I, BLOCK = 4, 40, 24, (16, 16)

# The router's logits and the gate, shared by both layouts.
ROUTING = """\
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
"""

LAYER = """
func.func @forward(%x: tensor<?x40xf32>,
    %router: tensor<4x40xf32> {moe.weight = "router.weight"},
    %wu: tensor<4x24x40xf8E4M3FN> {moe.weight = "experts.{e}.up.weight"},
    %su: tensor<4x2x3xf32> {moe.weight = "experts.{e}.up.weight_scale_inv"},
    %wd: tensor<4x40x24xf8E4M3FN> {moe.weight = "experts.{e}.down.weight"},
    %sd: tensor<4x3x2xf32> {moe.weight = "experts.{e}.down.weight_scale_inv"})
    -> tensor<?x40xf32> {
{routing}  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x40xf32>, tensor<?x2xi32>
      -> tensor<?x40xf32>, tensor<5xi64>, tensor<?x2xi32>
  %u = moe.expert_matmul %rows, %wu offsets(%off : tensor<5xi64>)
      scale(%su : tensor<4x2x3xf32>) block [16, 16]
      : tensor<?x40xf32>, tensor<4x24x40xf8E4M3FN> -> tensor<?x24xf32>
  %d = moe.expert_matmul %u, %wd offsets(%off : tensor<5xi64>)
      scale(%sd : tensor<4x3x2xf32>) block [16, 16]
      : tensor<?x24xf32>, tensor<4x40x24xf8E4M3FN> -> tensor<?x40xf32>
  %y = moe.combine %d, %w, %map
      : tensor<?x40xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x40xf32>
  return %y : tensor<?x40xf32>
}
""".replace("{routing}", ROUTING)


# The capacity layout ([E, C, H] slots, C = 5: tokens beyond an expert's
# slots dropped) with the weights' types and scale clauses as parameters:
# the FP8 module and the same layer on f32 weights.
CAPACITY = """
func.func @forward(%x: tensor<?x40xf32>,
    %router: tensor<4x40xf32> {{moe.weight = "router.weight"}},
    %wu: tensor<4x24x40x{wtype}> {{moe.weight = "experts.{{e}}.up.weight"}},
    %wd: tensor<4x40x24x{wtype}> {{moe.weight = "experts.{{e}}.down.weight"}}{scale_args})
    -> tensor<?x40xf32> {{
{routing}  %slots, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x40xf32>, tensor<?x2xi32>
      -> tensor<4x5x40xf32>, tensor<4xi64>, tensor<?x2xi32>
  %u = moe.expert_matmul %slots, %wu{up_scale}
      : tensor<4x5x40xf32>, tensor<4x24x40x{wtype}> -> tensor<4x5x24xf32>
  %d = moe.expert_matmul %u, %wd{down_scale}
      : tensor<4x5x24xf32>, tensor<4x40x24x{wtype}> -> tensor<4x5x40xf32>
  %y = moe.combine %d, %w, %map
      : tensor<4x5x40xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x40xf32>
  return %y : tensor<?x40xf32>
}}
"""
CAPACITY_FP8 = CAPACITY.format(
    routing=ROUTING, wtype="f8E4M3FN",
    scale_args=""",
    %su: tensor<4x2x3xf32> {moe.weight = "experts.{e}.up.weight_scale_inv"},
    %sd: tensor<4x3x2xf32> {moe.weight = "experts.{e}.down.weight_scale_inv"}""",
    up_scale=" scale(%su : tensor<4x2x3xf32>) block [16, 16]",
    down_scale=" scale(%sd : tensor<4x3x2xf32>) block [16, 16]")
CAPACITY_F32 = CAPACITY.format(routing=ROUTING, wtype="f32", scale_args="",
                               up_scale="", down_scale="")


def run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{what} failed: {(done.stderr or done.stdout).strip()}")


def reference(x: np.ndarray, router: np.ndarray, up: np.ndarray,
              down: np.ndarray) -> np.ndarray:
    """Softmax top-2 (not renormalized) over linear experts, float64."""
    logits = x @ router.T
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    y = np.zeros((x.shape[0], H))
    for t in range(x.shape[0]):
        for e in top[t]:
            y[t] += probs[t, e] * (down[e] @ (up[e] @ x[t]))
    return y


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    layer = os.path.join(out, "layer.mlir")
    with open(layer, "w", encoding="utf-8") as file:
        file.write(LAYER)
    rng = np.random.default_rng(3)
    router = rng.standard_normal((E, H)).astype(np.float32)
    up_bits, up_scale = float8.quantize_blocks(
        rng.standard_normal((E, I, H)) / 4, BLOCK)
    down_bits, down_scale = float8.quantize_blocks(
        rng.standard_normal((E, H, I)) / 4, BLOCK)
    tensors = {"router.weight": router}
    dtypes = {"router.weight": "F32"}
    for e in range(E):
        for name, bits, scale in (("up", up_bits, up_scale),
                                  ("down", down_bits, down_scale)):
            tensors[f"experts.{e}.{name}.weight"] = bits[e]
            dtypes[f"experts.{e}.{name}.weight"] = "F8_E4M3"
            tensors[f"experts.{e}.{name}.weight_scale_inv"] = scale[e]
            dtypes[f"experts.{e}.{name}.weight_scale_inv"] = "F32"
    ckpt = os.path.join(out, "ckpt")
    os.makedirs(ckpt, exist_ok=True)
    safetensors_io.save_file(os.path.join(ckpt, "model.safetensors"),
                             tensors, dtypes)
    up = float8.dequantize_blocks(up_bits, up_scale, BLOCK)
    down = float8.dequantize_blocks(down_bits, down_scale, BLOCK)
    variants = {"fast": [], "reference": ["--reference"]}
    for variant, flags in variants.items():
        run(["moe-compile", layer, *flags, "-o",
             os.path.join(out, f"{variant}.so")], f"moe-compile {variant}")
    tokens = (0, 1, 7, 300)
    for count in tokens:
        x = rng.standard_normal((count, H)).astype(np.float32)
        x_path = os.path.join(out, f"x_{count}.npy")
        np.save(x_path, x)
        ref = reference(x.astype(np.float64), router.astype(np.float64), up,
                        down)
        for variant in variants:
            y_path = os.path.join(out, f"y_{variant}_{count}.npy")
            run(["moe-run", os.path.join(out, f"{variant}.so"), "--weights",
                 ckpt, "--input", x_path, "--output", y_path, "--quiet"],
                f"moe-run {variant} at T = {count}")
            y = np.load(y_path).astype(np.float64)
            if y.shape != ref.shape:
                sys.exit(f"{variant} T = {count}: shape {y.shape}, expected "
                         f"{ref.shape}")
            scale = np.abs(ref).max() if ref.size else 0.0
            error = np.abs(y - ref).max() if ref.size else 0.0
            if not np.isfinite(y).all() or error > 1e-4 * max(scale, 1e-30):
                sys.exit(f"{variant} T = {count}: differs from numpy by "
                         f"{error:.3g} (max |reference| {scale:.3g})")
    print(f"fp8 block-scaled: fast = reference = numpy at T = {list(tokens)}")
    check_capacity(out, router, up_bits, up_scale, down_bits, down_scale,
                   tokens, rng)


def check_capacity(out: str, router: np.ndarray, up_bits: np.ndarray,
                   up_scale: np.ndarray, down_bits: np.ndarray,
                   down_scale: np.ndarray, tokens: tuple[int, ...],
                   rng: np.random.Generator) -> None:
    """The capacity layout on FP8 weights equals it on the f32 weights the
    FP8 ones stand for (bytes times scales, rounded to f32 as the compiled
    code rounds them), on the fast path and the reference one."""
    directory = os.path.join(out, "capacity")
    os.makedirs(directory, exist_ok=True)
    modules = {}
    for name, text in (("fp8", CAPACITY_FP8), ("f32", CAPACITY_F32)):
        path = os.path.join(directory, f"{name}.mlir")
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        for variant, flags in (("fast", []), ("reference", ["--reference"])):
            modules[name, variant] = os.path.join(directory,
                                                  f"{name}-{variant}.so")
            run(["moe-compile", path, *flags, "-o", modules[name, variant]],
                f"moe-compile capacity {name} {variant}")
    checkpoints = {"fp8": os.path.join(directory, "ckpt-fp8"),
                   "f32": os.path.join(directory, "ckpt-f32")}
    fp8_tensors, fp8_dtypes = {"router.weight": router}, {
        "router.weight": "F32"}
    f32_tensors, f32_dtypes = dict(fp8_tensors), dict(fp8_dtypes)
    for name, bits, scale in (("up", up_bits, up_scale),
                              ("down", down_bits, down_scale)):
        expanded = float8.expand_block_scales(scale, BLOCK, bits.shape)
        dequantized = (float8.decode(bits).astype(np.float32) *
                       expanded.astype(np.float32))
        for e in range(E):
            key = f"experts.{e}.{name}.weight"
            fp8_tensors[key], fp8_dtypes[key] = bits[e], "F8_E4M3"
            fp8_tensors[key + "_scale_inv"] = scale[e]
            fp8_dtypes[key + "_scale_inv"] = "F32"
            f32_tensors[key], f32_dtypes[key] = dequantized[e], "F32"
    for name, tensors, dtypes in (("fp8", fp8_tensors, fp8_dtypes),
                                  ("f32", f32_tensors, f32_dtypes)):
        os.makedirs(checkpoints[name], exist_ok=True)
        safetensors_io.save_file(
            os.path.join(checkpoints[name], "model.safetensors"), tensors,
            dtypes)
    for count in tokens:
        x_path = os.path.join(directory, f"x_{count}.npy")
        np.save(x_path, rng.standard_normal((count, H)).astype(np.float32))
        outputs = {}
        for (name, variant), module in modules.items():
            outputs[name, variant] = os.path.join(
                directory, f"y_{name}_{variant}_{count}.npy")
            run(["moe-run", module, "--weights", checkpoints[name], "--input",
                 x_path, "--output", outputs[name, variant], "--quiet"],
                f"moe-run capacity {name} {variant} at T = {count}")
        for variant in ("fast", "reference"):
            y = np.load(outputs["fp8", variant]).astype(np.float64)
            ref = np.load(outputs["f32", variant]).astype(np.float64)
            scale = np.abs(ref).max() if ref.size else 0.0
            error = np.abs(y - ref).max() if ref.size else 0.0
            if y.shape != ref.shape or error > 1e-6 * max(scale, 1e-30):
                sys.exit(f"capacity {variant} T = {count}: FP8 differs from "
                         f"its f32 weights by {error:.3g} (max {scale:.3g})")
    print(f"fp8 capacity layout: fp8 = f32 of its weights, fast and "
          f"reference, at T = {list(tokens)}")


if __name__ == "__main__":
    main()
