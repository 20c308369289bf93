"""CPU benchmark of compiled MoE layers against PyTorch and the machine.

usage: utils/dev.sh bench [ARGS]   (builds, then runs this with ARGS)
       /usr/bin/python3 bench/cpu.py [--shapes mixtral-s,...] [--tokens 1,8]
              [--dtypes f32,bf16] [--threads 2] [--runs 5] [--build build]

One run measures, in this order:
1. the machine's limits with bench/peak_probe.c: f32 FMA, bf16 dot
   (vdpbf16ps) and AMX bf16 peaks where the CPU has them, DRAM read
   bandwidth;
2. for each shape and weight dtype: a Hugging Face-format checkpoint
   (moe_mlir make-checkpoint), imported, compiled by moe-compile (timed), and
   for each token count T: moe-run --bench --cold (median ms), and on the
   same weights and inputs two PyTorch formulations: the Hugging Face loop over
   experts and tokens sorted by expert, padded, one bmm per projection
   (fp8: the checkpoint in DeepSeek-V3's FP8 layout, make-checkpoint --dtype
   fp8, against PyTorch bf16 on its dequantized weights; mxfp4: the bf16
   checkpoint's routed experts quantized to MXFP4 (gpt-oss's layout: e2m1
   blocks and e8m0 scales per 32), bound as stored and decoded by the
   kernels, against PyTorch bf16 on the dequantized experts). Every timed run,
   ours and PyTorch's, follows a write of twice the last-level cache: the
   weights come from DRAM, as a layer's do in a model whose other layers
   run between its calls (decode would otherwise read weights cached by the
   previous run);
3. useful GFLOP/s (T*K*3*2*H*I for the routed experts, plus the shared
   expert), GB/s of touched expert weights, the fraction of the measured f32
   peak (and DRAM bandwidth for decode), the ratio to the faster PyTorch,
   and the share of routing + dispatch + combine: the time of the layer
   without its experts (the layer's IR after moe-decompose up to its
   dispatch, then a combine of zero rows) over the time of the layer.

Writes bench/results/cpu.json and bench/results/cpu.png (throughput vs T).
PyTorch from Debian needs libopenblas0-pthread and OPENBLAS_CORETYPE for a
fair f32 baseline: utils/dev.sh bench installs the package, and this script
sets the variable (then prints which BLAS torch uses).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

# (family, H, I, E, K, config overrides)
SHAPES = {
    "mixtral-s": ("mixtral", 1024, 3584, 8, 2, {}),
    "qwen3-s": ("qwen3_moe", 1024, 384, 64, 8, {}),
    "deepseek-s": ("deepseek_v3", 1024, 512, 64, 6,
                   {"n_group": 8, "topk_group": 3, "n_shared_experts": 1}),
}
TOKENS = (1, 8, 32, 128, 512, 2048)


def _cpu_flags() -> set[str]:
    with open("/proc/cpuinfo", encoding="utf-8") as file:
        for line in file:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def _reexec_with_blas_env() -> None:
    """OpenBLAS must see OPENBLAS_CORETYPE before torch loads it."""
    if os.environ.get("MOE_BENCH_BLAS_SET"):
        return
    env = dict(os.environ, MOE_BENCH_BLAS_SET="1")
    env["OPENBLAS_CORETYPE"] = ("SkylakeX" if "avx512f" in _cpu_flags()
                                else "Haswell")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def peak_probe(build: str) -> dict:
    clang = "/usr/lib/llvm-22/bin/clang"
    binary = os.path.join(build, "bench", "peak_probe")
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    subprocess.run([clang, "-O2", "-march=native", "-pthread", "-o", binary,
                    os.path.join(ROOT, "bench", "peak_probe.c")], check=True)
    return json.loads(subprocess.run([binary], check=True, text=True,
                                     capture_output=True).stdout)


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "moe_mlir", *args], check=True,
                   env=dict(os.environ, PYTHONPATH=os.path.join(ROOT,
                                                                "python")),
                   stdout=subprocess.DEVNULL)


def prepare(shape: str, dtype: str, work: str, build: str) -> dict:
    """Checkpoint, layer IR and module of one shape; the compile time."""
    from moe_mlir import checkpoints
    family, hidden, inter, experts, top_k, extra = SHAPES[shape]
    directory = os.path.join(work, f"{shape}-{dtype}")
    stored = "bf16" if dtype == "mxfp4" else dtype
    config = checkpoints.hf_config(family, hidden=hidden, intermediate=inter,
                                   experts=experts, top_k=top_k, layers=1,
                                   dtype=stored, vocab=256)
    config.update(extra)
    checkpoints.write_checkpoint(directory, config, stored, seed=0)
    layer = os.path.join(directory, "layer.mlir")
    _cli("import-hf", directory, "--layer", "0", "-o", layer)
    if dtype == "mxfp4":
        quantize_experts(directory, layer)
    module = os.path.join(directory, "layer.so")
    start = time.perf_counter()
    subprocess.run([os.path.join(build, "bin", "moe-compile"), layer, "-o",
                    module], check=True)
    return {"dir": directory, "module": module, "config": config,
            "compile_s": time.perf_counter() - start}


def quantize_experts(directory: str, layer: str) -> None:
    """The imported layer's routed experts as MXFP4: each stacked [E, N, K]
    projection quantized (mxfp4.quantize) into one ``<operand>.blocks``
    [E, N, K/32, 16] and ``<operand>.scales`` [E, N, K/32] U8 tensor, bound
    as e2m1 pairs (a reshape view) with e8m0 scales of [1, 32] blocks; the
    bf16 tensors are overwritten with the dequantized values (exact in
    bf16), which the PyTorch baselines read."""
    import numpy as np
    from moe_mlir import mxfp4, safetensors_io
    from moe_mlir.emit import EXPERT, emit_module
    from moe_mlir.hf_import import import_hf
    from moe_mlir.views import View
    spec = import_hf(directory, 0).spec
    headers = safetensors_io.read_checkpoint_headers(directory)
    tensors = safetensors_io.load_checkpoint(directory)
    dtypes = {name: dtype for name, (dtype, _) in headers.items()}
    weights, views = dict(spec.weights), dict(spec.views)
    formats, element_types = dict(spec.formats), dict(spec.dtypes)
    for operand, scale in (("expert_gate", "gate_scale"),
                           ("expert_up", "up_scale"),
                           ("expert_down", "down_scale")):
        if operand not in weights:
            continue
        name = weights[operand]
        names = [name.replace(EXPERT, str(e))
                 for e in range(spec.num_experts)]
        blocks, scales = mxfp4.quantize(np.stack([tensors[n] for n in names]))
        decoded = mxfp4.decode(blocks, scales)
        for e, expert_name in enumerate(names):
            tensors[expert_name] = decoded[e].astype(np.float32)
        tensors[operand + ".blocks"] = blocks
        dtypes[operand + ".blocks"] = "U8"
        tensors[operand + ".scales"] = scales
        dtypes[operand + ".scales"] = "U8"
        weights[operand] = operand + ".blocks"
        weights[scale] = operand + ".scales"
        views[operand] = View(source=blocks.shape,
                              reshape=blocks.shape[:2] +
                              (blocks.shape[2] * blocks.shape[3],))
        formats[scale] = "e8m0"
        element_types[operand], element_types[scale] = "e2m1x2", "f32"
    path = os.path.join(directory, safetensors_io.SINGLE_NAME)
    safetensors_io.save_file(path, tensors, dtypes)
    quantized = dataclasses.replace(
        spec, weights=weights, views=views, formats=formats,
        dtypes=element_types, weight_block=(1, mxfp4.GROUP))
    with open(layer, "w", encoding="utf-8") as out:
        out.write(emit_module(quantized))


_GATE = re.compile(r"^\s*(%[\w.]+), (%[\w.]+) = moe\.gate .*-> "
                   r"(tensor<[^>]*>), (tensor<[^>]*>)$")
_DISPATCH = re.compile(r"^\s*(%[\w.]+), (%[\w.]+), (%[\w.]+) = "
                       r"moe\.dispatch .*-> (tensor<[^>]*>), "
                       r"(tensor<[^>]*>), (tensor<[^>]*>)$")


def prepare_routing_only(prepared: dict, build: str) -> dict:
    """The layer without its experts: the router's logits, the gate and the
    routing plan of its ids (fused as in the layer: moe-fuse-routing),
    compiled like the layer. The combine has no pass of its own in the
    layer (each row, times its combine weight, is added to its token's row
    in the down projection's write-back), so its cost is part of the
    experts' time. Its time is the routing part of the layer's."""
    layer = os.path.join(prepared["dir"], "layer.mlir")
    # The fast path pads each expert's rows to its block-rows (16).
    text = subprocess.run(
        [os.path.join(build, "bin", "moe-opt"), layer,
         "--moe-decompose=row-align=16"],
        check=True, text=True, capture_output=True).stdout
    lines = text.splitlines()
    gate = dispatch = None
    # The gate's dispatch (a shared expert's, which depends on T alone,
    # comes before the gate).
    for index, line in enumerate(lines):
        gate = gate or _GATE.match(line)
        dispatch = _DISPATCH.match(line) if gate else None
        if dispatch:
            break
    if not gate or not dispatch:
        sys.exit(f"{layer}: no moe.gate followed by moe.dispatch after "
                 "moe-decompose")
    weights, ids, weights_type, ids_type = gate.groups()
    _, _, _, _, offsets_type, map_type = dispatch.groups()
    experts = int(re.match(r"tensor<(\d+)xi64>", offsets_type).group(1)) - 1
    # The layer's routing: the plan of the gate's ids in blocks of 16 (what
    # moe-form-grouped-matmul builds), fused with the gate. One element of
    # each of its results (and of the weights) makes the result, so that
    # all of it is computed (the benchmark's T >= 1: every result has one).
    lines = lines[:index] + [
        "    %bench_offsets, %bench_blocks, %bench_sizes, %bench_sources, "
        f"%bench_map = moe.routing_plan {ids} block_rows(16) align(16) : "
        f"{ids_type} -> {offsets_type}, tensor<?xi32>, tensor<?xi32>, "
        f"tensor<?xi32>, {map_type}",
        "    %bench_c0 = arith.constant 0 : index",
        f"    %bench_last = arith.constant {experts} : index",
        "    %bench_used = tensor.extract %bench_offsets[%bench_last] : "
        f"{offsets_type}",
        "    %bench_used32 = arith.trunci %bench_used : i64 to i32",
        "    %bench_block = tensor.extract %bench_blocks[%bench_c0] : "
        "tensor<?xi32>",
        "    %bench_size = tensor.extract %bench_sizes[%bench_c0] : "
        "tensor<?xi32>",
        "    %bench_source = tensor.extract %bench_sources[%bench_c0] : "
        "tensor<?xi32>",
        "    %bench_row = tensor.extract %bench_map[%bench_c0, %bench_c0] : "
        f"{map_type}",
        "    %bench_s0 = arith.addi %bench_used32, %bench_block : i32",
        "    %bench_s1 = arith.addi %bench_s0, %bench_size : i32",
        "    %bench_s2 = arith.addi %bench_s1, %bench_source : i32",
        "    %bench_s3 = arith.addi %bench_s2, %bench_row : i32",
        "    %bench_f = arith.sitofp %bench_s3 : i32 to f32",
        f"    %bench_w = tensor.extract {weights}[%bench_c0, %bench_c0] : "
        f"{weights_type}",
        "    %bench_sum = arith.addf %bench_f, %bench_w : f32",
        "    %routed = tensor.from_elements %bench_sum : tensor<1x1xf32>",
        "    return %routed : tensor<1x1xf32>", "  }", "}"]
    # The entry returns that one value.
    for i, line in enumerate(lines):
        if "func.func @" in line:
            lines[i] = re.sub(r"-> tensor<[^>]*> \{$", "-> tensor<1x1xf32> {",
                              line)
            break
    directory = prepared["dir"] + "-routing"
    os.makedirs(directory, exist_ok=True)
    routing_layer = os.path.join(directory, "layer.mlir")
    with open(routing_layer, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    module = os.path.join(directory, "layer.so")
    subprocess.run([os.path.join(build, "bin", "moe-compile"), routing_layer,
                    "-o", module], check=True)
    # The same checkpoint: the expert weights are bound but never read.
    return {"dir": prepared["dir"], "module": module}


def run_compiled(prepared: dict, x_path: str, threads: int, runs: int,
                 build: str) -> float:
    out = x_path + ".y.npy"
    done = subprocess.run(
        [os.path.join(build, "bin", "moe-run"), prepared["module"],
         "--weights", prepared["dir"], "--input", x_path, "--output", out,
         "--threads", str(threads), "--bench", str(runs), "--cold",
         "--quiet"],
        check=True, text=True, capture_output=True)
    return json.loads(done.stdout.splitlines()[-1])["median_ms"]


# -- PyTorch baselines ---------------------------------------------------------

class TorchLayer:
    """The layer in PyTorch, on the checkpoint's weights in their dtype."""

    def __init__(self, prepared: dict, dtype: str):
        import torch
        import numpy as np
        from moe_mlir import float8, safetensors_io
        from moe_mlir.families import layer_spec
        self.torch = torch
        config = prepared["config"]
        spec = layer_spec(config, 0,
                          dtype="bf16" if dtype in ("fp8", "mxfp4")
                          else dtype)
        tensors = safetensors_io.load_checkpoint(prepared["dir"])
        # FP8 layers: PyTorch bf16 on the dequantized weights (PyTorch 1.13
        # has no FP8 matmul).
        self.dtype = {"f32": torch.float32, "bf16": torch.bfloat16,
                      "f16": torch.float16, "fp8": torch.bfloat16,
                      "mxfp4": torch.bfloat16}[dtype]
        block = config.get("quantization_config", {}).get("weight_block_size")

        def stored(name: str):
            value = tensors[name]
            if block and name + "_scale_inv" in tensors:
                value = float8.dequantize_blocks(
                    value, tensors[name + "_scale_inv"], tuple(block))
            return torch.from_numpy(np.asarray(value, dtype=np.float32))
        self.routing = spec.routing
        weights = spec.weights

        def load(role: str):
            name = weights.get(role)
            if name is None:
                return None
            if "{e}" in name:
                return torch.stack([
                    stored(name.format(e=e)).to(self.dtype)
                    for e in range(spec.num_experts)])
            value = stored(name)
            return value if role == "score_bias" else value.to(self.dtype)

        self.router = load("router")
        self.gate, self.up, self.down = (load("expert_gate"),
                                         load("expert_up"),
                                         load("expert_down"))
        self.bias = load("score_bias")
        self.shared = [load(r) for r in ("shared_gate", "shared_up",
                                         "shared_down")]
        self.experts, self.k = spec.num_experts, self.routing.top_k

    def route(self, x):
        torch, r = self.torch, self.routing
        logits = (x @ self.router.T).float()
        scores = (torch.sigmoid(logits) if r.scoring == "sigmoid"
                  else torch.softmax(logits, dim=-1))
        select = scores + self.bias if self.bias is not None else scores
        if r.num_groups > 1:
            grouped = select.view(x.shape[0], r.num_groups, -1)
            group_scores = (grouped.topk(2, dim=-1).values.sum(-1)
                            if r.group_score == "sum_top2"
                            else grouped.max(-1).values)
            keep = group_scores.topk(r.topk_groups, dim=-1).indices
            mask = torch.zeros_like(group_scores).scatter_(1, keep, 1.0)
            select = select.masked_fill(
                ~mask.bool().repeat_interleave(grouped.shape[-1], dim=1),
                float("-inf"))
        ids = select.topk(self.k, dim=-1).indices
        weights = scores.gather(1, ids)
        if r.renormalize != "none":
            weights = weights / weights.sum(-1, keepdim=True)
        return ids, (weights * r.scale).to(x.dtype)

    def _shared(self, x):
        gate, up, down = self.shared
        if up is None:
            return 0
        torch = self.torch
        return (torch.nn.functional.silu(x @ gate.T) * (x @ up.T)) @ down.T

    def hf_loop(self, x):
        """The Hugging Face formulation: a loop over the hit experts."""
        torch = self.torch
        ids, weights = self.route(x)
        out = torch.zeros_like(x)
        hit = torch.nn.functional.one_hot(ids, self.experts).permute(2, 1, 0)
        for e in range(self.experts):
            slot, token = torch.where(hit[e])
            if token.numel() == 0:
                continue
            h = x[token]
            y = (torch.nn.functional.silu(h @ self.gate[e].T)
                 * (h @ self.up[e].T)) @ self.down[e].T
            out.index_add_(0, token, y * weights[token, slot, None])
        return out + self._shared(x)

    def sorted_bmm(self, x):
        """Tokens sorted by expert, padded to the busiest expert, one bmm
        per projection."""
        torch = self.torch
        ids, weights = self.route(x)
        flat = ids.reshape(-1)
        order = flat.argsort()
        counts = torch.bincount(flat, minlength=self.experts)
        width = int(counts.max())
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(flat.numel()) - starts[flat[order]]
        padded = x.new_zeros(self.experts, width, x.shape[1])
        tokens = order // self.k
        padded[flat[order], slot] = x[tokens]
        h = (torch.nn.functional.silu(torch.bmm(padded, self.gate.transpose(
            1, 2))) * torch.bmm(padded, self.up.transpose(1, 2)))
        y = torch.bmm(h, self.down.transpose(1, 2))[flat[order], slot]
        out = torch.zeros_like(x)
        out.index_add_(0, tokens, y * weights.reshape(-1)[order, None])
        return out + self._shared(x)


def eviction_bytes() -> int:
    """Twice the last-level cache, within [64 MiB, 1 GiB]: moe-run --cold's
    rule."""
    cache = 0
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            cache = os.sysconf(name)
        except (ValueError, OSError):
            cache = 0
        if cache > 0:
            break
    return min(max(2 * cache, 64 << 20), 1 << 30)


def time_torch(function, x, runs: int) -> float:
    import numpy as np
    evictor = np.zeros(eviction_bytes(), dtype=np.uint8)
    with __import__("torch").no_grad():
        function(x)
        times = []
        for run in range(runs):
            evictor.fill(run & 0xFF)
            start = time.perf_counter()
            function(x)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


# -- the run -------------------------------------------------------------------

def useful_flops(prepared: dict, tokens: int) -> float:
    config = prepared["config"]
    family, hidden, inter, experts, top_k, _ = SHAPES[prepared["shape"]]
    flops = tokens * top_k * 3 * 2 * hidden * inter
    shared = config.get("n_shared_experts", 0) * config.get(
        "moe_intermediate_size", 0)
    shared = shared or config.get("shared_expert_intermediate_size", 0)
    return flops + tokens * 3 * 2 * hidden * shared


def touched_bytes(prepared: dict, tokens: int, dtype: str) -> float:
    """Bytes of the expert weights a run must read at least once."""
    family, hidden, inter, experts, top_k, _ = SHAPES[prepared["shape"]]
    touched = min(experts, tokens * top_k)
    # MXFP4: half a byte per weight and an f32 scale per 32.
    item = {"f32": 4, "fp8": 1, "mxfp4": 0.5 + 4 / 32}.get(dtype, 2)
    return touched * 3 * hidden * inter * item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--tokens", default=",".join(map(str, TOKENS)))
    parser.add_argument("--dtypes", default="f32,bf16,f16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="fewer runs of a point whose first run takes "
                        "longer than this over --runs")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench",
                                                      "results"))
    args = parser.parse_args()
    _reexec_with_blas_env()

    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    blas = re.findall(r"BLAS_INFO=(\w+)", torch.__config__.show())
    print(f"torch {torch.__version__}, BLAS {blas[0] if blas else '?'}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, "
          f"{args.threads} threads", file=sys.stderr)

    peaks = peak_probe(args.build)
    print(f"peaks: {json.dumps(peaks)}", file=sys.stderr)
    threads = peaks["threads"]
    f32_peak = peaks.get(f"f32_fma_gflops_{threads}t")
    # The unit bf16 expert weights are multiplied on: moe-compile's default
    # for this CPU is the vdpbf16ps kernel where it has AVX512_BF16.
    bf16_peak = peaks.get(f"bf16_dot_gflops_{threads}t")
    dram = peaks.get(f"dram_read_gbps_{threads}t")

    rows = []
    with tempfile.TemporaryDirectory(prefix="moe-bench-") as work:
        for shape in args.shapes.split(","):
            for dtype in args.dtypes.split(","):
                prepared = prepare(shape, dtype, work, args.build)
                prepared["shape"] = shape
                routing_only = prepare_routing_only(prepared, args.build)
                layer = TorchLayer(prepared, dtype)
                hidden = SHAPES[shape][1]
                for tokens in map(int, args.tokens.split(",")):
                    x = np.random.default_rng(tokens).standard_normal(
                        (tokens, hidden)).astype(np.float32)
                    x_path = os.path.join(work, "x.npy")
                    np.save(x_path, x)
                    probe = run_compiled(prepared, x_path, args.threads, 1,
                                         args.build)
                    runs = max(1, min(args.runs, int(
                        args.max_seconds * 1e3 / max(probe, 1e-3))))
                    ours = run_compiled(prepared, x_path, args.threads, runs,
                                        args.build)
                    y = np.load(x_path + ".y.npy")
                    # Right after the layer, before PyTorch runs in this
                    # process: its threads keep spinning on both cores for a
                    # while after each call, which slowed the short routing
                    # runs 10-fold at T = 1.
                    routing = run_compiled(routing_only, x_path,
                                           args.threads, runs, args.build)
                    xt = torch.from_numpy(x).to(layer.dtype)
                    # The baselines compute the same layer: checked against
                    # the compiled output before they are timed.
                    scale = max(float(np.abs(y).max()), 1e-30)
                    bound = 1e-3 if dtype == "f32" else 5e-2
                    with torch.no_grad():
                        for name, function in (("loop", layer.hf_loop),
                                               ("bmm", layer.sorted_bmm)):
                            error = np.abs(function(xt).float().numpy() - y)
                            # PyTorch routes bf16/f16 layers on logits in that
                            # type: a token near a top-k tie may pick another
                            # expert there. A few such tokens are allowed.
                            bad = (error.max(axis=1) > bound * scale
                                   if tokens else np.zeros(0, bool))
                            allowed = 0 if dtype == "f32" else 0.1 * tokens
                            if bad.sum() > allowed:
                                sys.exit(f"torch {name} differs from moe-run "
                                         f"on {shape} {dtype} T={tokens}: "
                                         f"{int(bad.sum())} tokens off by up "
                                         f"to {float(error.max()):.3e} > "
                                         f"{bound} * {scale:.3e}")
                    loop = time_torch(layer.hf_loop, xt, runs)
                    bmm = time_torch(layer.sorted_bmm, xt, runs)
                    flops = useful_flops(prepared, tokens)
                    row = {
                        "shape": shape, "dtype": dtype, "tokens": tokens,
                        "ms": ours, "torch_loop_ms": loop,
                        "torch_bmm_ms": bmm,
                        "gflops": flops / ours / 1e6,
                        "weight_gbps": touched_bytes(prepared, tokens, dtype)
                        / ours / 1e6,
                        "speedup_vs_best_torch": min(loop, bmm) / ours,
                        # The layer without its experts: router, gate,
                        # dispatch and combine.
                        "routing_ms": routing,
                        "routing_share": min(1.0, routing / ours),
                        "compile_s": prepared["compile_s"], "runs": runs}
                    if f32_peak:
                        row["fraction_of_f32_peak"] = row["gflops"] / f32_peak
                    unit, unit_peak = "f32 FMA", f32_peak
                    # bf16 and FP8 weights (staged as bf16 pairs) are
                    # multiplied on the unit moe-compile picks for them.
                    if dtype in ("bf16", "fp8", "mxfp4") and bf16_peak:
                        unit, unit_peak = "bf16 dot", bf16_peak
                    if unit_peak:
                        row["peak_unit"] = unit
                        row["fraction_of_unit_peak"] = (row["gflops"] /
                                                        unit_peak)
                    if dram:
                        row["fraction_of_dram"] = row["weight_gbps"] / dram
                    rows.append(row)
                    print(f"{shape:10} {dtype:4} T={tokens:5}: {ours:10.3f} ms"
                          f" ({row['gflops']:7.2f} GFLOP/s), torch loop "
                          f"{loop:9.3f} ms, bmm {bmm:9.3f} ms, routing "
                          f"{100 * row['routing_share']:4.1f}%",
                          file=sys.stderr)

    os.makedirs(args.out, exist_ok=True)
    result = {"peaks": peaks, "torch": torch.__version__,
              "blas": blas[0] if blas else None, "threads": args.threads,
              "rows": rows}
    with open(os.path.join(args.out, "cpu.json"), "w",
              encoding="utf-8") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    plot(rows, os.path.join(args.out, "cpu.png"))


def plot(rows: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # One row of panels per shape, one column per weight dtype.
    shapes = sorted({r["shape"] for r in rows})
    dtypes = sorted({r["dtype"] for r in rows})
    fig, axes = plt.subplots(len(shapes), len(dtypes),
                             figsize=(4.5 * len(dtypes), 4 * len(shapes)),
                             squeeze=False)
    for (i, shape), (j, dtype) in itertools.product(enumerate(shapes),
                                                    enumerate(dtypes)):
        axis = axes[i][j]
        points = sorted((r for r in rows if (r["shape"], r["dtype"]) ==
                         (shape, dtype)), key=lambda r: r["tokens"])
        if not points:
            axis.set_visible(False)
            continue
        t = [p["tokens"] for p in points]
        for label, key in (("moe-mlir", "ms"), ("torch loop", "torch_loop_ms"),
                           ("torch sorted bmm", "torch_bmm_ms")):
            axis.plot(t, [p["tokens"] / p[key] * 1e3 for p in points],
                      marker="o", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("tokens T")
        axis.set_ylabel("tokens / s")
        axis.set_title(f"{shape} {dtype}")
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
