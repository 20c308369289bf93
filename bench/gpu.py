"""GPU benchmark: compiled MoE layers against PyTorch on the same GPU.

Three steps, on two machines:

  bench/gpu.py prepare [--out build/gpu-bench]        (the build machine)
      For Mixtral-8x7B (H 4096, I 14336, E 8, K 2), Qwen3-30B-A3B (2048,
      768, 128, 8) and DeepSeek-V3 (7168, 2048, 256, 8, groups 8/4, one
      shared expert) MoE layers with bf16 weights: the layer IR from the
      family's config at the model's sizes, compiled by moe-compile
      --target cuda in each form of MMA_MODES (below: mma=sync, mma.sync
      on sm_90; mma=wgmma, wgmma fed by TMA on sm_90a, and its persistent,
      specialized, ping-pong, cluster, atomic-combine, 64-row-stages and
      device-io variants), and the runtime library; about 30 MiB, what the GPU
      machine needs besides the working tree (it has no LLVM/MLIR;
      utils/gpu-check.sh prepare packs it with its tests into one
      archive).

  bench/gpu.py structure [--models M,...] [--out JSON]
      What the build machine can check of the kernels (no GPU): per layer
      and kernel, its wgmma/TMA/mma.sync instructions in the PTX, and ptxas
      -v's registers, spills and shared memory.

  bench/gpu.py run [--dir build/gpu-bench] [--out JSON] [--tokens 1,8,...]
      On the GPU machine (PyTorch with CUDA, numpy): the machine's ceilings
      first (copy bandwidth, a dense bf16 GEMM), then per layer and T:
      - PyTorch eager, a Hugging Face-style block (the router, top-k, a
        loop over the hit experts);
      - PyTorch `torch._grouped_mm`: tokens sorted by expert, one grouped
        GEMM per projection;
      - the compiled layer (each mma mode, loaded one at a time: each
        binds its own copy of the weights on the device), called through
        the runtime in this process on the same weights (written as a
        checkpoint and bound), its kernels timed by the PyTorch profiler
        (CUPTI): the experts' matmul tiles and the rest (router, routing,
        plan, combine) apart, and the whole call (which copies the [T, H]
        f32 input in and the output out) on the wall clock; the
        wgmma-cores-router form (the router's logits on the CUDA cores)
        only where the default puts them on the tensor cores (Qwen3 and
        DeepSeek-V3 from 512 tokens).
      Each row: time, TFLOP/s (2 T K 3 H I, plus the shared expert), GB/s
      of the weights the call touches (the hit experts', the shared
      expert's, the router's), and those as fractions of the dense GEMM
      rate and of the copy bandwidth measured in the same run.

  bench/gpu.py plot JSON [--out PNG]

The exact command, the GPU name and driver go into the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

# The models' MoE blocks (their Hugging Face configs' keys; the rest takes
# the family's defaults). first_k_dense_replace 0: layer 0 is a MoE block.
MODELS = {
    "mixtral-8x7b": {
        "model_type": "mixtral", "hidden_size": 4096,
        "intermediate_size": 14336, "num_local_experts": 8,
        "num_experts_per_tok": 2, "num_hidden_layers": 1},
    "qwen3-30b-a3b": {
        "model_type": "qwen3_moe", "hidden_size": 2048,
        "moe_intermediate_size": 768, "num_experts": 128,
        "num_experts_per_tok": 8, "norm_topk_prob": True,
        "num_hidden_layers": 1},
    "deepseek-v3": {
        "model_type": "deepseek_v3", "hidden_size": 7168,
        "moe_intermediate_size": 2048, "n_routed_experts": 256,
        "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4,
        "n_shared_experts": 1, "routed_scaling_factor": 2.5,
        "first_k_dense_replace": 0, "norm_topk_prob": True,
        "num_hidden_layers": 1},
}
# The compiled forms: name -> CUDA pipeline options, in the order a run
# measures them (each over every model before the next: the defaults
# and the forms the GPU run decides on first).
MMA_MODES = {
    "wgmma": "mma=wgmma",
    # On PyTorch's device tensors and stream, and replayed from a CUDA graph.
    "wgmma-device": "mma=wgmma device-io",
    "wgmma-specialized": "mma=wgmma-specialized",
    # Specialized tiles on a persistent grid, whose producer fills the next
    # tile's stages during the consumers' epilogue.
    "wgmma-specialized-persistent": "mma=wgmma-specialized persistent=1",
    # Two consumers taking 64-row blocks in turns on a persistent grid: one
    # consumer's epilogue runs under the other's wgmmas (the specialized
    # forms' consumers stall theirs during their epilogue).
    "wgmma-pingpong": "mma=wgmma-pingpong",
    # The combine in the down projection's write-back by atomic adds into
    # the [T, H] result (which stays in L2 at these shapes) instead of
    # [T*K, H] f32 rows written and gathered back by a combine kernel: the
    # GPU run's evidence for atomic-combine (at Qwen3's and DeepSeek-V3's
    # T = 4096 those rows are 268 MB and 940 MB each way).
    "wgmma-atomic-combine": "mma=wgmma atomic-combine=1",
    "wgmma-persistent": "mma=wgmma persistent=1",
    # Every row block's ring in stages of 64 rows, where the default gives
    # blocks of at most 8 filled rows stages of 8 (more stages of weights
    # in the same shared memory), at decode only, where such blocks are:
    # the GPU run's evidence for eight-row-stages.
    "wgmma-64-row-stages": "mma=wgmma eight-row-stages=0",
    # Each tile waiting for a step's wgmma group before the next one's,
    # where the default keeps up to 4 in flight in narrow tiles, at decode
    # only, where the narrow tiles are: the GPU run's evidence for
    # max-groups-in-flight.
    "wgmma-one-group": "mma=wgmma max-groups-in-flight=1",
    # Specialized tiles in 2-CTA clusters: one expert's pairs of row blocks
    # load each weight box once for both (TMA multicast), halving the L2
    # reads of the weights at prefill.
    "wgmma-specialized-cluster": "mma=wgmma-specialized cluster=2",
    # Both: clusters walking their pairs of row blocks on a persistent grid.
    "wgmma-specialized-persistent-cluster":
        "mma=wgmma-specialized persistent=1 cluster=2",
    "sync": "mma=sync",
    # The router's logits on the CUDA cores at every T, for the rows where
    # the default puts them on the tensor cores (from 512 tokens, routers
    # of 32 experts or more): the GPU run's evidence for that threshold.
    "wgmma-cores-router": "mma=wgmma tensor-core-router-min-tokens=-1",
    # The device form with each kernel launched once the one before it has
    # ended (no programmatic launches), at decode only, where the gaps
    # between kernels are a share of a call: the GPU run's evidence for
    # moe-programmatic-launches.
    "wgmma-device-plain": "mma=wgmma device-io programmatic-launches=0",
    # Every token's top-k on one thread (no warp per token), where the
    # default routes tokens on warps: the GPU run's evidence for
    # lane-routing-max-tokens.
    "wgmma-thread-routing": "mma=wgmma lane-routing-max-tokens=0",
}
TOKENS = (1, 8, 64, 512, 4096)
# Where the default CUDA pipeline computes the router's logits on the
# tensor cores (its tensor-core-router-min-tokens, and the narrowest tile's
# columns).
TENSOR_CORE_ROUTER_MIN_TOKENS = 512
TENSOR_CORE_ROUTER_MIN_EXPERTS = 32


# The most tokens at which the 64-row-stages and one-group forms run
# (Qwen3's and DeepSeek-V3's experts average 4 and 2 rows at T = 64).
DECODE_FORMS_MAX_TOKENS = 64
DECODE_FORMS = ("wgmma-64-row-stages", "wgmma-one-group")
# The most tokens at which the plain-launch form runs.
PLAIN_LAUNCHES_MAX_TOKENS = 64
# The fewest tokens at which the cluster forms run: a cluster's two CTAs
# share weight boxes only where an expert has more than one 128-row block
# (at decode none has), so below prefill they would only repeat the
# specialized forms' rows.
CLUSTER_MIN_TOKENS = 512
CLUSTER_MODES = ("wgmma-specialized-cluster",
                 "wgmma-specialized-persistent-cluster")
# The most tokens the default CUDA pipeline routes a warp per token (16
# warps of the routing kernel's 512-thread blocks x 132 multiprocessors).
LANE_ROUTING_MAX_TOKENS = 16 * 132


def mode_applies(mode: str, experts: int, tokens: int | None = None) -> bool:
    """Whether `mode` runs for a layer of `experts` routed experts (at
    `tokens`): the CUDA-core router form only where it differs from the
    default, the plain-launch, 64-row-stages and one-group forms at
    decode, the cluster forms at prefill."""
    if mode in CLUSTER_MODES:
        return tokens is None or tokens >= CLUSTER_MIN_TOKENS
    if mode == "wgmma-device-plain":
        return tokens is None or tokens <= PLAIN_LAUNCHES_MAX_TOKENS
    if mode in DECODE_FORMS:
        return tokens is None or tokens <= DECODE_FORMS_MAX_TOKENS
    if mode == "wgmma-thread-routing":
        return tokens is None or tokens <= LANE_ROUTING_MAX_TOKENS
    if mode != "wgmma-cores-router":
        return True
    return experts >= TENSOR_CORE_ROUTER_MIN_EXPERTS and (
        tokens is None or tokens >= TENSOR_CORE_ROUTER_MIN_TOKENS)


def layer_spec(model: str):
    from moe_mlir.families import layer_spec as family_spec
    return family_spec(MODELS[model], 0, dtype="bf16")


def prepare(args) -> None:
    from moe_mlir.emit import emit_module
    out = os.path.abspath(args.out)
    compile_tool = os.path.join(ROOT, "build", "bin", "moe-compile")
    runtime = os.path.join(ROOT, "build", "lib", "libMoERuntime.so")
    for path in (compile_tool, runtime):
        if not os.path.exists(path):
            sys.exit(f"gpu.py: {path} is missing: build first "
                     "(utils/dev.sh build)")
    os.makedirs(os.path.join(out, "lib"), exist_ok=True)
    shutil.copy(runtime, os.path.join(out, "lib"))
    for model in args.models.split(","):
        ir = os.path.join(out, f"{model}.mlir")
        with open(ir, "w", encoding="utf-8") as f:
            f.write(emit_module(layer_spec(model)))
        for mode, options in MMA_MODES.items():
            if not mode_applies(mode, layer_spec(model).num_experts):
                continue
            start = time.perf_counter()
            subprocess.run(
                [compile_tool, ir, "--target", "cuda",
                 f"--pipeline-options={options}",
                 "-o", os.path.join(out, f"{model}-{mode}.so")], check=True)
            print(f"{model} {mode}: compiled in "
                  f"{time.perf_counter() - start:.1f} s")
    subprocess.run(["du", "-sh", out], check=False)


def structure(args) -> None:
    """ptxas -v and the PTX's instructions of every kernel (no GPU)."""
    objects = os.path.join(ROOT, "test", "Pipelines", "Inputs",
                           "gpu_objects.py")
    opt = os.path.join(ROOT, "build", "bin", "moe-opt")
    toolkit = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    ptxas = os.path.join(toolkit, "bin", "ptxas")
    report = {"command": " ".join(sys.argv), "ptxas": _ptxas_version(ptxas),
              "layers": {}}
    from moe_mlir.emit import emit_module
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models.split(","):
            ir = os.path.join(scratch, f"{model}.mlir")
            with open(ir, "w", encoding="utf-8") as f:
                f.write(emit_module(layer_spec(model)))
            for mode, options in MMA_MODES.items():
                # device-io changes the host code, not the kernels; the
                # CUDA-core router's kernels are wgmma's less the router's
                # prefill ones.
                if "device-io" in options or mode in (
                        "wgmma-cores-router", "wgmma-thread-routing"):
                    continue
                arch = "sm_90a" if "wgmma" in options else "sm_90"
                lowered = os.path.join(scratch, f"{model}-{mode}.isa.mlir")
                subprocess.run(
                    [opt, ir, f"--moe-lower-to-cuda=toolkit={toolkit} "
                     f"{options} format=isa", "-o", lowered], check=True)
                listing = subprocess.run(
                    [sys.executable, objects, lowered,
                     os.path.join(scratch, f"{model}-{mode}"), "--ptxas",
                     ptxas, "--arch", arch, "--resources"],
                    check=True, capture_output=True, text=True).stdout
                kernels = {}
                for line in listing.splitlines():
                    found = re.match(r"(\w+): (wgmma .*)", line)
                    if found:
                        kernels[found.group(1)] = {
                            key: int(value) for key, value in re.findall(
                                r"(\w+) (\d+)", found.group(2))}
                    elif line.strip().startswith("ptxas:"):
                        kernels[list(kernels)[-1]].setdefault(
                            "warnings", []).append(line.strip())
                with open(lowered, encoding="utf-8") as f:
                    shared = _dynamic_shared_memory(f.read())
                for kernel, size in shared.items():
                    kernels.setdefault(kernel, {})["dynamic_smem"] = size
                report["layers"][f"{model} {options}"] = kernels
                tiles = {k: v for k, v in kernels.items() if "_tiles_" in k}
                print(f"{model} {options} ({arch}): {len(kernels)} kernels; "
                      "tiles: " + "; ".join(
                          f"{k}: {v['wgmma']} wgmma, {v['tma']} TMA, "
                          f"{v.get('cp_async', 0)} cp.async, "
                          f"{v['mma_sync']} mma.sync, {v['registers']} regs, "
                          f"{v['spill_stores']} B spilled, "
                          f"{v.get('dynamic_smem', 0)} B dynamic smem"
                          for k, v in tiles.items()))
    _write_json(args.out, report)


def _dynamic_shared_memory(host_ir: str) -> dict:
    """Each launched kernel's dynamic shared memory in the lowered host code
    (the launch's size, an llvm.mlir.constant)."""
    constants = dict(re.findall(
        r"(%\w+) = llvm\.mlir\.constant\((\d+) : i32\)", host_ir))
    sizes = {}
    for kernel, value in re.findall(
            r"gpu\.launch_func .*?@(\w+)::@\w+ .*?"
            r"dynamic_shared_memory_size (%\w+)", host_ir):
        if value in constants:
            sizes[kernel] = max(sizes.get(kernel, 0), int(constants[value]))
    return sizes


def _ptxas_version(ptxas: str) -> str:
    try:
        text = subprocess.run([ptxas, "--version"], capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        sys.exit(f"gpu.py: {ptxas}: {err}")
    return text.strip().splitlines()[-1]


def _write_json(path: str | None, data: dict, quiet: bool = False) -> None:
    text = json.dumps(data, indent=1)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # Whole or not at all: a run killed while writing keeps the last
        # complete file.
        with open(path + ".partial", "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(path + ".partial", path)
        if not quiet:
            print(f"wrote {path}")
    elif not quiet:
        print(text)


# --- The GPU machine ---------------------------------------------------------


def _timed(torch, function, runs: int) -> float:
    """Median milliseconds of `function` over `runs` calls after one
    warm-up, each bracketed by CUDA events."""
    function()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def ceilings(torch) -> dict:
    """The GPU's copy bandwidth (read + write bytes of a 4 GiB copy) and
    dense bf16 GEMM rate (8192^3), measured now."""
    n = 1 << 30
    a = torch.empty(n, dtype=torch.float32, device="cuda")
    b = torch.empty_like(a)
    copy_ms = _timed(torch, lambda: b.copy_(a), 10)
    del a, b
    m = 8192
    x = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    y = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    gemm_ms = _timed(torch, lambda: x @ y, 20)
    return {"copy_GBps": 2 * 4 * n / copy_ms / 1e6,
            "dense_bf16_TFLOPs": 2 * m ** 3 / gemm_ms / 1e9}


class TorchMoE:
    """The layer in PyTorch on the GPU: weights (bf16, fan-in scaled),
    routing as the spec says, the two formulations."""

    def __init__(self, torch, spec, seed: int, device: str = "cuda"):
        self.torch, self.spec = torch, spec
        generator = torch.Generator(device=device).manual_seed(seed)
        self.tensors = {}
        for name, (shape, dtype) in spec.checkpoint_tensors().items():
            value = torch.randn(shape, generator=generator, device=device)
            if len(shape) == 1:
                value = 0.1 * value
            else:
                value = value / shape[-1] ** 0.5
            self.tensors[name] = value.to(
                torch.bfloat16 if dtype == "bf16" else torch.float32)
        w = spec.weights

        def stacked(role):
            return torch.stack([self.tensors[w[role].format(e=e)]
                                for e in range(spec.num_experts)])
        self.router = self.tensors[w["router"]]
        self.bias = self.tensors.get(w.get("score_bias", ""), None)
        self.gate, self.up = stacked("expert_gate"), stacked("expert_up")
        self.down = stacked("expert_down")
        self.shared = ([self.tensors[w[r]] for r in
                        ("shared_gate", "shared_up", "shared_down")]
                       if "shared_gate" in w else None)

    def route(self, x):
        """(weights [T, K] f32, experts [T, K]) as the spec's routing."""
        torch, r = self.torch, self.spec.routing
        logits = (x @ self.router.t()).float()
        scores = (torch.sigmoid(logits) if r.scoring == "sigmoid"
                  else torch.softmax(logits, dim=-1))
        choice = scores + self.bias if r.selection_bias else scores
        if r.num_groups > 1:
            grouped = choice.view(x.shape[0], r.num_groups, -1)
            group_scores = grouped.topk(2, dim=-1).values.sum(-1)
            keep = group_scores.topk(r.topk_groups, dim=-1).indices
            mask = torch.zeros_like(group_scores).scatter_(1, keep, 1.0)
            choice = choice.masked_fill(
                mask.repeat_interleave(grouped.shape[-1], 1) == 0,
                float("-inf"))
        experts = choice.topk(r.top_k, dim=-1).indices
        weights = scores.gather(1, experts)
        if r.renormalize != "none":
            weights = weights / weights.sum(-1, keepdim=True)
        return weights * r.scale, experts

    def _shared(self, x):
        g, u, d = self.shared
        F = self.torch.nn.functional
        return (F.silu(x @ g.t()) * (x @ u.t())) @ d.t()

    def eager(self, x):
        """A Hugging Face-style block: a loop over the hit experts."""
        torch, F = self.torch, self.torch.nn.functional
        weights, experts = self.route(x)
        out = torch.zeros_like(x)
        for e in experts.unique().tolist():
            token, slot = torch.where(experts == e)
            h = x[token]
            y = (F.silu(h @ self.gate[e].t()) * (h @ self.up[e].t())) @ \
                self.down[e].t()
            out.index_add_(0, token,
                           (y * weights[token, slot, None]).to(x.dtype))
        return out + self._shared(x) if self.shared else out

    def grouped(self, x):
        """Tokens sorted by expert, torch._grouped_mm per projection."""
        torch, F = self.torch, self.torch.nn.functional
        weights, experts = self.route(x)
        flat = experts.flatten()
        order = flat.argsort()
        token = order // experts.shape[1]
        counts = torch.bincount(flat, minlength=self.spec.num_experts)
        offsets = counts.cumsum(0).to(torch.int32)
        h = x[token]
        gate = torch._grouped_mm(h, self.gate.transpose(-2, -1), offs=offsets)
        up = torch._grouped_mm(h, self.up.transpose(-2, -1), offs=offsets)
        y = torch._grouped_mm(F.silu(gate) * up,
                              self.down.transpose(-2, -1), offs=offsets)
        y = y * weights.flatten()[order, None]
        out = torch.zeros_like(x).index_add_(0, token, y.to(x.dtype))
        return out + self._shared(x) if self.shared else out

    def work(self, x) -> tuple[float, float]:
        """(flops, touched weight bytes) of one call on `x`."""
        spec = self.spec
        t, h, i = x.shape[0], spec.hidden, spec.intermediate
        k = spec.routing.top_k
        flops = 2 * t * k * 3 * h * i
        hit = self.route(x)[1].unique().numel()
        touched = hit * 3 * h * i * 2 + self.router.numel() * 2
        if self.shared:
            si = spec.shared_intermediate
            flops += 2 * t * 3 * h * si
            touched += 3 * h * si * 2
        return float(flops), float(touched)

    def write_checkpoint(self, directory: str) -> None:
        import numpy as np
        from moe_mlir import safetensors_io
        tensors, dtypes = {}, {}
        for name, value in self.tensors.items():
            if value.dtype == self.torch.bfloat16:
                tensors[name] = value.view(self.torch.int16).cpu().numpy() \
                    .view(np.uint16)
                dtypes[name] = "BF16"
            else:
                tensors[name] = value.cpu().numpy()
                dtypes[name] = "F32"
        safetensors_io.save_file(os.path.join(directory, "model.safetensors"),
                                 tensors, dtypes)


def _profile_kernels(torch, call) -> dict:
    """Device milliseconds of the compiled layer's kernels in one call
    (CUPTI, through the PyTorch profiler): the experts' matmul tiles (with
    the rounding of their token rows to bf16, "rows") and the rest
    (router, routing, plan, combine). Kernels up to the routing block (the
    last "routing" kernel) are the router's: at prefill its logits are
    tiles too (a dense grouped matmul, moe-linears-to-bf16-terms)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    kernels = [event for event in prof.events() if re.match(
        r"forward_(tiles|rows|routing|loop|team|serial)_\d+$", event.name)]
    # (Stable: a profiler without start times keeps its own order.)
    kernels.sort(key=lambda event: getattr(
        getattr(event, "time_range", None), "start", 0))
    return split_kernel_times(
        [(event.name, event.device_time_total / 1e3) for event in kernels])


def split_kernel_times(kernels) -> dict:
    """(name, ms) of a call's kernels in launch order, as the experts'
    tiles (tiles and rows kernels after the routing block, the last
    "routing" kernel) and the rest."""
    routing = [i for i, (name, _) in enumerate(kernels) if "_routing_" in name]
    first_routed = routing[-1] if routing else 0
    tiles = rest = 0.0
    for i, (name, ms) in enumerate(kernels):
        if i >= first_routed and ("_tiles_" in name or "_rows_" in name):
            tiles += ms
        else:
            rest += ms
    return {"tiles_ms": tiles, "other_ms": rest}


def _device_rows(torch, entry, x, reference, mode, row, runs: int) -> None:
    """A device-io layer on PyTorch's tensors and current stream: enqueued
    by a call (its time includes the host's launches), then captured into a
    CUDA graph and replayed (one launch)."""
    t = x.shape[0]
    y = torch.empty(t, entry.output_size, device="cuda")

    def call():
        entry.run_cuda([x.data_ptr()], t, [y.data_ptr()],
                       torch.cuda.current_stream().cuda_stream)
    call()
    torch.cuda.synchronize()
    extra = {}
    if reference is not None:
        extra["max_abs_error"] = float(
            (y.cpu() - torch.from_numpy(reference)).abs().max())
    kernels = _profile_kernels(torch, call)
    device_ms = kernels["tiles_ms"] + kernels["other_ms"]
    extra.update(kernels, other_share=kernels["other_ms"] /
                 max(device_ms, 1e-9))
    row(f"compiled {mode}", _timed(torch, call, runs), **extra)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    graph.replay()
    torch.cuda.synchronize()
    row(f"compiled {mode} graph", _timed(torch, graph.replay, runs),
        **extra)


def run(args) -> None:
    import numpy as np
    import torch
    if not torch.cuda.is_available():
        sys.exit("gpu.py run: no CUDA device (run it on the GPU machine)")
    from moe_mlir import runtime
    lib = os.path.join(args.dir, "lib", "libMoERuntime.so")
    runtime.library(lib)
    for mode in args.modes.split(","):
        if mode not in MMA_MODES:
            sys.exit(f"gpu.py: unknown mode '{mode}' (one of "
                     f"{', '.join(MMA_MODES)})")
    progress = Progress.start(args, torch)
    tokens = [int(t) for t in args.tokens.split(",")]
    order = args.modes.split(",")
    with contextlib.ExitStack() as scratch:
        # PyTorch's rows first, every model and T, each model's layer and
        # checkpoint kept (DeepSeek-V3's bf16 experts are 22.5 GB, the
        # three models' 26.5 GB together), then each compiled form over
        # every model in --modes order: a budget spent before the last
        # forms leaves the first ones measured at all three shapes.
        layers = []
        for model in args.models.split(","):
            layer = _torch_rows(args, torch, np, progress, model, tokens,
                                scratch)
            if layer is not None:
                layers.append(layer)
        for mode in order:
            for layer in layers:
                _compiled_rows(args, torch, runtime, progress, layer, mode)
    progress.finish()


class _Layer:
    """A model's layer in a run: its PyTorch block, its checkpoint, and
    per T not yet measured its inputs, reference and row recorder."""

    def __init__(self, model: str, spec, block, checkpoint: str):
        self.model, self.spec = model, spec
        self.block, self.checkpoint = block, checkpoint
        self.cases = []


def _measured(progress, model: str, spec, modes, t: int) -> bool:
    """Whether every row of (model, T) is in the file (a resumed run), or
    its form hung on this model."""
    return all(progress.done(model, t, impl)
               for impl in ("torch eager", "torch _grouped_mm")) and \
        all(not mode_applies(mode, spec.num_experts, t)
            or progress.hung(model, f"compiled {mode}")
            or progress.done(model, t, f"compiled {mode}")
            for mode in modes)


def _torch_rows(args, torch, np, progress, model: str, tokens, scratch):
    """PyTorch's rows of `model` at each T not measured yet; its layer
    (None when nothing is left to measure or no time is)."""
    spec = layer_spec(model)
    modes = [mode for mode in args.modes.split(",")
             if mode_applies(mode, spec.num_experts)]
    if all(_measured(progress, model, spec, modes, t) for t in tokens):
        return None
    if progress.out_of_time():
        progress.record({"model": model, "skipped": "time budget"})
        return None
    block = TorchMoE(torch, spec, seed=1)
    checkpoint = scratch.enter_context(
        tempfile.TemporaryDirectory(dir=args.scratch))
    block.write_checkpoint(checkpoint)
    layer = _Layer(model, spec, block, checkpoint)
    for t in tokens:
        if _measured(progress, model, spec, modes, t):
            continue
        if progress.out_of_time():
            progress.record({"model": model, "T": t,
                             "skipped": "time budget"})
            continue
        gen = torch.Generator(device="cuda").manual_seed(t)
        x = torch.randn(t, spec.hidden, generator=gen, device="cuda")
        xb = x.to(torch.bfloat16)
        flops, touched = block.work(xb)
        base = {"model": model, "T": t, "flops": flops,
                "touched_bytes": touched}
        row = _row_recorder(base, progress.info, progress.record)
        if not progress.done(model, t, "torch eager"):
            with progress.watch(base, "torch eager"):
                row("torch eager", _timed(
                    torch, lambda: block.eager(xb), args.runs))
        if not progress.done(model, t, "torch _grouped_mm"):
            with progress.watch(base, "torch _grouped_mm"):
                try:
                    row("torch _grouped_mm", _timed(
                        torch, lambda: block.grouped(xb), args.runs))
                except (RuntimeError, AttributeError) as err:
                    progress.record(dict(
                        base, impl="torch _grouped_mm",
                        error=str(err).splitlines()[0]))
        host = x.cpu().numpy().astype(np.float32)
        reference = block.grouped(xb).float().cpu().numpy() \
            if t <= 512 else None
        layer.cases.append((t, x, host, reference, base, row))
    return layer


def _compiled_rows(args, torch, runtime, progress, layer: _Layer,
                   mode: str) -> None:
    """The compiled form `mode` of `layer`'s model at each of its T not
    measured yet, loaded alone and closed after its rows (it binds its own
    copy of the weights on the device, beside PyTorch's)."""
    model, spec = layer.model, layer.spec
    impl = f"compiled {mode}"
    wanted = [case for case in layer.cases
              if mode_applies(mode, spec.num_experts, case[0])
              and not progress.done(model, case[0], impl)]
    if (not mode_applies(mode, spec.num_experts) or not wanted
            or progress.hung(model, impl)):
        return
    if progress.out_of_time():
        progress.record({"model": model, "impl": impl,
                         "skipped": "time budget"})
        return
    path = os.path.join(args.dir, f"{model}-{mode}.so")
    try:
        entry = runtime.load_layer(path, layer.checkpoint, device=0)
    except runtime.MoeRuntimeError as err:
        progress.record({"model": model, "impl": impl, "error": str(err)})
        return
    try:
        for t, x, host, reference, base, row in wanted:
            if progress.out_of_time():
                progress.record({"model": model, "T": t, "impl": impl,
                                 "skipped": "time budget"})
                continue
            with progress.watch(base, impl):
                if entry.device_io:
                    _device_rows(torch, entry, x, reference, mode, row,
                                 args.runs)
                else:
                    _compiled_row(torch, entry, host, reference, mode, row,
                                  args.runs)
    finally:
        entry.close()
        torch.cuda.empty_cache()


class Progress:
    """A run's rows, written to --out after each one, with what guards the
    GPU machine's few minutes: the time budget (counted from the first
    start of a resumed run), and a watchdog per measurement. A kernel that
    never ends (a pipeline's deadlock the emulator did not reach) would
    hold the call until the machine's limit: after --hang-s seconds the
    watchdog records the row as hung and ends the process with status
    HUNG_STATUS, and `--resume` starts again from the file, skipping every
    row it holds and every compiled form that hung on that model."""

    def __init__(self, args, info: dict, rows: list):
        self.args, self.info, self.rows = args, info, rows
        self.lock = threading.Lock()

    @classmethod
    def start(cls, args, torch) -> "Progress":
        previous = None
        if args.resume and args.out and os.path.exists(args.out):
            with open(args.out, encoding="utf-8") as f:
                previous = json.load(f)
        if previous is not None:
            info = previous["machine"]
            info["resumed"] = info.get("resumed", 0) + 1
            # Rows skipped for time are tried again; the rest stand.
            rows = [r for r in previous["rows"] if "skipped" not in r]
        else:
            info = {"command": " ".join(sys.argv),
                    "gpu": torch.cuda.get_device_name(0),
                    "driver": _nvidia_smi("driver_version"),
                    "torch": torch.__version__, "host": platform.node(),
                    "started": time.time()}
            info.update(ceilings(torch))
            rows = []
        print(json.dumps(info))
        return cls(args, info, rows)

    def out_of_time(self) -> bool:
        return (self.args.budget_s > 0 and
                time.time() - self.info.setdefault("started", time.time())
                > self.args.budget_s)

    def done(self, model: str, tokens: int, impl: str) -> bool:
        return any(r.get("model") == model and r.get("T") == tokens and
                   r.get("impl") == impl for r in self.rows)

    def hung(self, model: str, impl: str) -> bool:
        return any(r.get("model") == model and r.get("impl") == impl and
                   r.get("hung") for r in self.rows)

    def record(self, r: dict) -> None:
        # Each row is in the file as soon as it is measured: a run stopped
        # from outside (the GPU machine's time limit) keeps what it did.
        with self.lock:
            self.rows.append(r)
            self.info["complete"] = False
            _write_json(self.args.out, {"machine": self.info,
                                        "rows": self.rows}, quiet=True)

    def watch(self, base: dict, impl: str) -> "_Watchdog":
        return _Watchdog(self, dict(base, impl=impl), self.args.hang_s)

    def finish(self) -> None:
        # A form that hung left its other rows of that model unmeasured.
        self.info["complete"] = not any("skipped" in r or r.get("hung")
                                        for r in self.rows)
        self.info["seconds"] = round(
            time.time() - self.info.setdefault("started", time.time()), 1)
        _write_json(self.args.out, {"machine": self.info, "rows": self.rows})


# gpu.py run's exit status when a measurement hung (gpu-check.sh bench
# starts it again with --resume).
HUNG_STATUS = 3


class _Watchdog:
    """Records `what` as hung and ends the process unless the block it
    guards ends within `seconds` (0: no watchdog). The process must end:
    the hung call holds the main thread inside the driver."""

    def __init__(self, progress: Progress, what: dict, seconds: float):
        self.progress, self.what, self.seconds = progress, what, seconds
        self.timer = None

    def _fire(self) -> None:
        self.progress.record(dict(
            self.what, hung=True,
            error=f"no result after {self.seconds:g} s (a kernel that "
            "does not end?)"))
        print(f"gpu.py: {self.what['impl']} on {self.what['model']}"
              + (f" at T = {self.what['T']}" if "T" in self.what else "")
              + f" hung (no result after {self.seconds:g} s)", flush=True)
        sys.stderr.flush()
        os._exit(HUNG_STATUS)

    def __enter__(self) -> "_Watchdog":
        if self.seconds > 0:
            self.timer = threading.Timer(self.seconds, self._fire)
            self.timer.daemon = True
            self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.timer is not None:
            self.timer.cancel()


def _row_recorder(base: dict, info: dict, record):
    """A function recording one implementation's row of a (model, T):
    its time, TFLOP/s and GB/s of touched weights, and those as fractions
    of the dense GEMM rate and of the HBM bound measured in the run."""
    flops, touched = base["flops"], base["touched_bytes"]

    def row(impl, ms, **extra):
        r = dict(base, impl=impl, ms=ms, TFLOPs=flops / ms / 1e9,
                 weight_GBps=touched / ms / 1e6,
                 of_dense=flops / ms / 1e9 / info["dense_bf16_TFLOPs"],
                 hbm_bound_ms=touched / info["copy_GBps"] / 1e6, **extra)
        r["of_hbm_bound"] = r["hbm_bound_ms"] / ms
        record(r)
        print(json.dumps(r))
    return row


def _compiled_row(torch, entry, host, reference, mode, row, runs: int):
    """A host-io layer called through the runtime: its kernels' device time
    (the experts' tiles and the rest apart) and the call's wall time."""
    import numpy as np
    call = lambda: entry(host)  # noqa: E731
    wall = []
    call()
    for _ in range(runs):
        start = time.perf_counter()
        call()
        wall.append((time.perf_counter() - start) * 1e3)
    wall.sort()
    kernels = _profile_kernels(torch, call)
    device_ms = kernels["tiles_ms"] + kernels["other_ms"]
    extra = {"call_ms": wall[len(wall) // 2], **kernels,
             "other_share": kernels["other_ms"] / max(device_ms, 1e-9)}
    if reference is not None:
        got = call()
        extra["max_abs_error"] = float(np.max(np.abs(got - reference)))
    row(f"compiled {mode}", device_ms, **extra)


def _nvidia_smi(field: str) -> str:
    try:
        return subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
            capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def plot(args) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with open(args.json, encoding="utf-8") as f:
        data = json.load(f)
    rows = [r for r in data["rows"] if "ms" in r]
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4))
    for ax, model in zip(axes if len(models) > 1 else [axes], models):
        for impl in sorted({r["impl"] for r in rows if r["model"] == model}):
            points = sorted((r["T"], r["of_hbm_bound"] if r["T"] <= 64
                             else r["of_dense"]) for r in rows
                            if r["model"] == model and r["impl"] == impl)
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-",
                    label=impl)
        ax.set_xscale("log", base=2)
        ax.set_title(model)
        ax.set_xlabel("T")
        ax.set_ylabel("fraction of HBM bound (T<=64) / dense rate")
        ax.legend(fontsize=7)
    fig.suptitle(f"{data['machine']['gpu']}, bf16")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "gpu-bench"))
    p.add_argument("--models", default=",".join(MODELS))
    p.set_defaults(function=prepare)
    s = commands.add_parser("structure")
    s.add_argument("--out")
    s.add_argument("--models", default=",".join(MODELS))
    s.set_defaults(function=structure)
    r = commands.add_parser("run")
    r.add_argument("--dir", default=os.path.join(ROOT, "build", "gpu-bench"))
    r.add_argument("--out")
    r.add_argument("--models", default=",".join(MODELS))
    r.add_argument("--tokens", default=",".join(map(str, TOKENS)))
    r.add_argument("--modes", default=",".join(MMA_MODES),
                   help="the compiled forms to run (prepare builds all)")
    r.add_argument("--runs", type=int, default=10)
    r.add_argument("--budget-s", type=float, default=0,
                   help="stop starting new measurements after this many "
                   "seconds (the rows not run are listed as skipped; 0: no "
                   "limit); with --out the file is rewritten after each row")
    r.add_argument("--hang-s", type=float, default=90,
                   help="a measurement with no result after this many "
                   "seconds is recorded as hung and the run ends with "
                   f"status {HUNG_STATUS} (0: wait forever)")
    r.add_argument("--resume", action="store_true",
                   help="go on from --out: keep its ceilings and rows, run "
                   "the rest (not the forms that hung); the time budget "
                   "counts from its first start")
    r.add_argument("--scratch", default=None,
                   help="where the checkpoints are written (default: TMPDIR)")
    r.set_defaults(function=run)
    g = commands.add_parser("plot")
    g.add_argument("json")
    g.add_argument("--out", default="gpu.png")
    g.set_defaults(function=plot)
    args = parser.parse_args()
    for model in getattr(args, "models", "").split(","):
        if model and model not in MODELS:
            parser.error(f"unknown model '{model}' (known: "
                         f"{', '.join(MODELS)})")
    args.function(args)


if __name__ == "__main__":
    main()
