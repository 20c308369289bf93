"""Expert-parallel benchmark: one layer on R MPI ranks of this machine.

usage: /usr/bin/python3 bench/expert_parallel.py [--ranks 1,2,4]
           [--tokens 512] [--hidden 1024] [--intermediate 2048]
           [--experts 8] [--top-k 2] [--dtype bf16] [--runs 10]
           [--build build] [--out bench/results/expert_parallel.json]

One run measures, in this order:
1. the machine's exchange limit: MPI_Alltoall of the same bytes per rank
   pair as the layer sends, between R ranks (bench/mpi_bandwidth.c), in GB/s
   sent per rank;
2. a Mixtral-style checkpoint (moe_mlir make-checkpoint), its layer imported
   and compiled once without expert parallelism (one process, the baseline)
   and once per R with `--pipeline-options=ranks=R`;
3. for each R: `mpirun -np R moe-run --bench RUNS` on the same T tokens
   (split over the ranks), with an MPI profiling shim preloaded
   (bench/mpi_profile.c, the PMPI interface) that times every
   MPI_Alltoallv of the layer, after a barrier that it times apart, and
   counts the bytes each rank sends to the others. Reported: the median
   time per call (rank 0's); averaged over ranks, the wait at the barriers
   (for slower ranks: the load imbalance of the experts' rows) and the
   exchange itself (inside MPI_Alltoallv), each with its share; the compute
   time (the rest); the bytes sent per token per layer measured and from
   the formula
   2 K H s (R - 1) / R (s the activations' element size; rows go to their
   expert's rank and back), and the exchange's rate against the measured
   limit.

Each rank runs max(1, cores / R) OpenMP threads, bound to as many cores
where R <= cores (unbound otherwise). On a machine with fewer
cores than ranks the ranks share cores, so the compute time grows with R:
the numbers show the exchange's cost, not a speed-up, which needs a core
(or a machine) per rank. Writes the JSON to --out and prints a table.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(ROOT, "python")


def run(command: list[str], env: dict | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True,
                          env=env or dict(os.environ, PYTHONPATH=PYTHON))
    if done.returncode:
        sys.exit(f"`{' '.join(command)}` failed ({done.returncode}): "
                 f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


def mpirun_command(ranks: int) -> list[str]:
    # Each rank on its own cores where there are enough (its OpenMP threads
    # on them), unbound otherwise.
    cores = os.cpu_count() or 1
    if 1 < ranks <= cores:
        placement = ["--map-by", f"slot:PE={cores // ranks}",
                     "--bind-to", "core"]
    else:
        placement = ["--bind-to", "none"]
    command = ["mpirun", "--oversubscribe", *placement,
               "--mca", "btl", "self,vader",
               "--mca", "btl_vader_single_copy_mechanism", "none",
               "-np", str(ranks)]
    if os.geteuid() == 0:
        command.insert(1, "--allow-run-as-root")
    return command


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", default="1,2,4")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=2048)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(
        ROOT, "bench", "results", "expert_parallel.json"))
    args = parser.parse_args()
    ranks = [int(r) for r in args.ranks.split(",")]
    bin_dir = os.path.join(args.build, "bin")
    cores = os.cpu_count() or 1
    work = tempfile.mkdtemp(prefix="moe-ep-bench-")
    try:
        return measure(args, ranks, bin_dir, cores, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, ranks, bin_dir, cores, work) -> int:
    shim = os.path.join(work, "libmpiprofile.so")
    run(["mpicc", "-shared", "-fPIC", "-O2", "-o", shim,
         os.path.join(ROOT, "bench", "mpi_profile.c")])
    probe = os.path.join(work, "mpi_bandwidth")
    run(["mpicc", "-O2", "-o", probe,
         os.path.join(ROOT, "bench", "mpi_bandwidth.c")])

    ckpt = os.path.join(work, "ckpt")
    run([sys.executable, "-m", "moe_mlir", "make-checkpoint", "--family",
         "mixtral", "--hidden", str(args.hidden), "--intermediate",
         str(args.intermediate), "--experts", str(args.experts), "--top-k",
         str(args.top_k), "--layers", "1", "--dtype", args.dtype, "--quiet",
         "-o", ckpt])
    layer = os.path.join(work, "layer.mlir")
    run([sys.executable, "-m", "moe_mlir", "import-hf", ckpt, "--layer", "0",
         "-o", layer])
    with open(layer, encoding="utf-8") as file:
        element = re.search(r"tensor<\?x\d+x(f32|bf16|f16)>", file.read())
    element_size = {"f32": 4, "bf16": 2, "f16": 2}[element.group(1)]
    x = os.path.join(work, "x.npy")
    np.save(x, np.random.default_rng(0).standard_normal(
        (args.tokens, args.hidden), dtype=np.float32))
    moe_compile = os.path.join(bin_dir, "moe-compile")
    moe_run = os.path.join(bin_dir, "moe-run")

    def bench(module: str, count: int | None) -> tuple[float, list[dict]]:
        """Rank 0's median ms, and every rank's profile."""
        profile = os.path.join(work, f"profile-{count}")
        os.makedirs(profile, exist_ok=True)
        threads = max(1, cores // (count or 1))
        command = [moe_run, module, "--weights", ckpt, "--input", x,
                   "--output", os.path.join(work, "y.npy"), "--bench",
                   str(args.runs), "--quiet", "--threads", str(threads)]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if count:
            command = mpirun_command(count) + [
                "-x", f"LD_PRELOAD={shim}", "-x", f"MOE_MPI_PROFILE={profile}",
                "-x", f"OMP_NUM_THREADS={threads}"] + command
        out = run(command, env)
        line = json.loads(out.strip().splitlines()[-1])
        profiles = []
        for path in sorted(glob.glob(os.path.join(profile, "rank-*.json"))):
            with open(path, encoding="utf-8") as file:
                profiles.append(json.load(file))
        return line["median_ms"], profiles

    single = os.path.join(work, "single.so")
    run([moe_compile, layer, "-o", single])
    baseline_ms, _ = bench(single, None)
    calls = args.runs + 1  # the warm-up call, then the timed ones
    results = []
    for count in ranks:
        module = os.path.join(work, f"ranks{count}.so")
        run([moe_compile, layer, f"--pipeline-options=ranks={count}", "-o",
             module])
        median_ms, profiles = bench(module, count)
        wait_ms = statistics.mean(
            p["wait_seconds"] * 1e3 / calls for p in profiles)
        exchange_ms = statistics.mean(
            p["alltoallv_seconds"] * 1e3 / calls for p in profiles)
        sent = sum(p["bytes_to_others"] for p in profiles) / calls
        formula = (2 * args.top_k * args.hidden * element_size *
                   (count - 1) / count)
        # The machine's exchange rate for the bytes a rank sends per call.
        per_pair = int(sent / count / max(count - 1, 1)) if count > 1 else 0
        limit_gbs = None
        if count > 1 and per_pair > 0:
            out = run(mpirun_command(count) + [probe, str(per_pair), "50"])
            limit_gbs = json.loads(out.strip().splitlines()[-1])["gbs_per_rank"]
        rate_gbs = (sent / count / (exchange_ms * 1e-3) / 1e9
                    if exchange_ms > 0 and count > 1 else None)
        results.append({
            "ranks": count, "median_ms": median_ms,
            "wait_ms": wait_ms, "exchange_ms": exchange_ms,
            "compute_ms": median_ms - exchange_ms - wait_ms,
            "wait_share": wait_ms / median_ms if median_ms else 0,
            "exchange_share": exchange_ms / median_ms if median_ms else 0,
            "bytes_per_token": sent / args.tokens if args.tokens else 0,
            "bytes_per_token_formula": formula,
            "exchange_gbs_per_rank": rate_gbs,
            "alltoall_limit_gbs_per_rank": limit_gbs,
            "threads_per_rank": max(1, cores // count)})
    report = {"shape": {"hidden": args.hidden,
                        "intermediate": args.intermediate,
                        "experts": args.experts, "top_k": args.top_k,
                        "dtype": args.dtype, "tokens": args.tokens,
                        "activation_bytes": element_size},
              "cores": cores, "runs": args.runs,
              "one_process_ms": baseline_ms, "ranks": results,
              "command": " ".join(sys.argv)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2)
    print(f"one process: {baseline_ms:.3f} ms for {args.tokens} tokens "
          f"({cores} cores)")
    print("R | ms/call | compute ms | wait ms (share) | exchange ms (share) "
          "| bytes/token (formula) | exchange GB/s per rank (alltoall limit)")
    for r in results:
        rate = (f"{r['exchange_gbs_per_rank']:.2f} "
                f"({r['alltoall_limit_gbs_per_rank']:.2f})"
                if r["exchange_gbs_per_rank"] and
                r["alltoall_limit_gbs_per_rank"] else "-")
        print(f"{r['ranks']} | {r['median_ms']:.3f} | {r['compute_ms']:.3f} | "
              f"{r['wait_ms']:.3f} ({100 * r['wait_share']:.1f}%) | "
              f"{r['exchange_ms']:.3f} ({100 * r['exchange_share']:.1f}%) | "
              f"{r['bytes_per_token']:.0f} ({r['bytes_per_token_formula']:.0f})"
              f" | {rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
