"""Dense MLP against the MoE layers moefy makes of it, compiled, on the CPU.

usage: /usr/bin/python3 bench/dense_to_moe.py [--hidden 1024]
           [--intermediate 3584] [--experts 8] [--top-k 2] [--shared 0]
           [--tokens 1,32,512] [--dtypes f32,bf16] [--threads 2] [--runs 5]
           [--build build] [--out bench/results]

One run measures, in this order:
1. the machine's limits (bench/peak_probe.c, as bench/cpu.py): f32 FMA
   peak, bf16 dot peak where the CPU has it, DRAM read bandwidth;
2. for each weight dtype, a Llama-style dense checkpoint (make-checkpoint
   --family llama), its layer-0 MLP compiled in the dense-expert form
   (import-hf), and the MoE layers moefy makes of it, compiled:
   split (E experts, top-K, S shared neurons) and upcycle (E copies,
   top-K);
3. for each T: moe-run --bench --cold of each (median ms; weights from
   DRAM), and PyTorch's dense MLP (F.linear, SiLU) on the same weights;
4. per row: useful GFLOP/s (the neuron work the layer does: 3 * 2 * H per
   neuron slot a token runs), GB/s of the weights a run must read, the
   fraction of the measured peak of the unit the kernel runs on and of
   DRAM bandwidth, and the time against the compiled dense MLP.

A split layer runs S + K * ceil((I - S) / E) of the dense MLP's I neurons
per token: it should take that fraction of the dense time where compute
bounds it, and read all its weights where bandwidth does (T = 1 touches
only K experts). Writes OUT/dense_to_moe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import cpu  # noqa: E402  (the shared helpers: peaks, moe-run, PyTorch timing)

ROOT = cpu.ROOT


def _compile(source_dir: str, name: str, work: str, build: str) -> dict:
    layer = os.path.join(work, f"{name}.mlir")
    module = os.path.join(work, f"{name}.so")
    cpu._cli("import-hf", source_dir, "--layer", "0", "-o", layer)
    subprocess.run([os.path.join(build, "bin", "moe-compile"), layer, "-o",
                    module], check=True)
    return {"dir": source_dir, "module": module}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=3584)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--shared", type=int, default=0)
    parser.add_argument("--tokens", default="1,32,512")
    parser.add_argument("--dtypes", default="f32,bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench",
                                                      "results"))
    args = parser.parse_args()
    cpu._reexec_with_blas_env()

    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    peaks = cpu.peak_probe(args.build)
    print(f"peaks: {json.dumps(peaks)}", file=sys.stderr)
    threads = peaks["threads"]
    dram = peaks.get(f"dram_read_gbps_{threads}t")
    h, i = args.hidden, args.intermediate
    slots = -(-(i - args.shared) // args.experts)
    rows = []
    with tempfile.TemporaryDirectory(prefix="moe-bench-dense-") as work:
        for dtype in args.dtypes.split(","):
            dense_dir = os.path.join(work, f"dense-{dtype}")
            cpu._cli("make-checkpoint", "--family", "llama", "--hidden", str(h),
                 "--intermediate", str(i), "--layers", "1", "--dtype", dtype,
                 "--vocab", "256", "--quiet", "-o", dense_dir)
            calibration = os.path.join(work, "calibration.npy")
            np.save(calibration, np.random.default_rng(0).standard_normal(
                (256, h)).astype(np.float32))
            layers = {"dense": (_compile(dense_dir, f"dense-{dtype}", work,
                                         args.build), i)}
            for mode in ("split", "upcycle"):
                moe_dir = os.path.join(work, f"{mode}-{dtype}")
                shared = ["--shared", str(args.shared)] if mode == "split" \
                    else []
                cpu._cli("moefy", "--hf", dense_dir, "--layer", "0", "--mode",
                     mode, "--experts", str(args.experts), "--top-k",
                     str(args.top_k), *shared, "--calibration", calibration,
                     "-o", moe_dir)
                neurons = (args.shared + args.top_k * slots if mode == "split"
                           else args.top_k * i)
                layers[mode] = (_compile(moe_dir, f"{mode}-{dtype}", work,
                                         args.build), neurons)

            from moe_mlir import dense
            from moe_mlir.hf_import import read_config
            mlp = dense.read_dense_mlp(dense_dir, 0,
                                       read_config(dense_dir))
            torch_dtype = {"f32": torch.float32,
                           "bf16": torch.bfloat16}[dtype]
            weights = [torch.from_numpy(w).to(torch_dtype)
                       for w in (mlp.gate, mlp.up, mlp.down)]

            def torch_mlp(x):
                gate, up, down = weights
                return torch.nn.functional.linear(
                    torch.nn.functional.silu(
                        torch.nn.functional.linear(x, gate))
                    * torch.nn.functional.linear(x, up), down)

            peak = peaks.get(f"f32_fma_gflops_{threads}t")
            if dtype == "bf16" and peaks.get(f"bf16_dot_gflops_{threads}t"):
                peak = peaks[f"bf16_dot_gflops_{threads}t"]
            item = 4 if dtype == "f32" else 2
            for tokens in map(int, args.tokens.split(",")):
                x = np.random.default_rng(tokens).standard_normal(
                    (tokens, h)).astype(np.float32)
                x_path = os.path.join(work, f"x{tokens}.npy")
                np.save(x_path, x)
                dense_ms = None
                for name, (prepared, neurons) in layers.items():
                    ms = cpu.run_compiled(prepared, x_path, args.threads,
                                          args.runs, args.build)
                    dense_ms = dense_ms or ms
                    flops = tokens * 3 * 2 * h * neurons
                    # Weights a run reads at least once: the experts its
                    # tokens touch.
                    if name == "split":
                        touched = (args.shared + min(
                            args.experts, tokens * args.top_k) * slots)
                    elif name == "upcycle":
                        touched = min(args.experts, tokens * args.top_k) * i
                    else:
                        touched = i
                    gbps = touched * 3 * h * item / ms / 1e6
                    row = {"dtype": dtype, "layer": name, "tokens": tokens,
                           "ms": round(ms, 4),
                           "gflops": round(flops / ms / 1e6, 2),
                           "gbps": round(gbps, 2),
                           "peak_fraction": round(flops / ms / 1e6 / peak,
                                                  4) if peak else None,
                           "dram_fraction": round(gbps / dram, 4)
                           if dram else None,
                           "vs_dense": round(ms / dense_ms, 3)}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
                xt = torch.from_numpy(x).to(torch_dtype)
                torch_ms = cpu.time_torch(torch_mlp, xt, args.runs)
                rows.append({"dtype": dtype, "layer": "torch-dense",
                             "tokens": tokens, "ms": round(torch_ms, 4),
                             "vs_dense": round(torch_ms / dense_ms, 3)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    result = {"peaks": peaks, "torch": torch.__version__,
              "shape": {"hidden": h, "intermediate": i,
                        "experts": args.experts, "top_k": args.top_k,
                        "shared": args.shared, "expert_slots": slots},
              "threads": args.threads, "rows": rows}
    path = os.path.join(args.out, "dense_to_moe.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=1)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
