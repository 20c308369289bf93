"""Driver of the expert-parallel tests: one layer on R ranks vs one process.

usage:
  check_ranks.py family FAMILY STORAGE OUT --ranks 2,3,4 [--tokens 0,1,7,300]
  check_ranks.py example SPEC.json LAYER.mlir OUT --ranks 2,4
                 [--tokens 0,1,7,64]

`family` writes a random checkpoint of a model family (family_cases) and
imports its layer as users do (`moe_mlir import-hf`); `example` writes
random weights for an examples/routing layer and samples its inputs (`x`,
and `uniform` for random second-choice routing).

The layer is compiled once for one process and once per R with
`--pipeline-options=ranks=R`. For every T and R, `mpirun -np R moe-run` runs
the sharded module (each rank on rows [T r / R, T (r + 1) / R) of every
input, rank 0 writing the results), and the single-process module runs on
each rank's rows alone: the token result must equal their concatenation and
every statistic rank 0's (the layer's meaning under expert parallelism).
Where the routing is token-local (`--whole`), the output must also equal the
single-process run on all T tokens. Bounds: max|y - ref| <= 1e-5 * max|ref|,
statistics equal (counts) or within 1e-5 relative (losses). One line per
check; exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys

import numpy as np

PYTHON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          *[os.pardir] * 4, "python")
sys.path.insert(0, PYTHON_DIR)

from moe_mlir import family_cases  # noqa: E402

RTOL = 1e-5


def run(command: list[str], what: str) -> None:
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=600)
    if done.returncode:
        sys.exit(f"{what} failed ({done.returncode}): `{shlex.join(command)}`"
                 f": {(done.stderr or done.stdout).strip()}")


def prepare_family(args: argparse.Namespace
                   ) -> tuple[str, list[str], int, bool]:
    case = family_cases.make_case(args.family, args.storage, seed=0)
    ckpt = os.path.join(args.out, "ckpt")
    case.write(ckpt)
    layer = os.path.join(args.out, "layer.mlir")
    run([sys.executable, "-m", "moe_mlir", "import-hf", ckpt, "--layer",
         str(case.layer), "-o", layer], "import-hf")
    for tokens in args.tokens:
        np.save(os.path.join(args.out, f"x_{tokens}.npy"),
                case.sample_inputs(tokens))
    return layer, ["x"], 1, True


def prepare_example(args: argparse.Namespace
                    ) -> tuple[str, list[str], int, bool]:
    with open(args.spec, encoding="utf-8") as file:
        spec = json.load(file)
    run([sys.executable, "-m", "moe_mlir", "random-weights", "--spec",
         args.spec, "-o", os.path.join(args.out, "ckpt")], "random-weights")
    routing = spec["routing"]
    inputs = ["x"] + (["uniform"] if "second = random" in routing else [])
    for tokens in args.tokens:
        rng = np.random.default_rng(tokens)
        np.save(os.path.join(args.out, f"x_{tokens}.npy"),
                rng.standard_normal((tokens, spec["hidden"]))
                .astype(np.float32))
        if "uniform" in inputs:
            np.save(os.path.join(args.out, f"uniform_{tokens}.npy"),
                    rng.random((tokens, 1)).astype(np.float32))
    args.statistics = spec.get("statistics", [])
    return args.layer, inputs, 1 + len(args.statistics), False


def moe_run(module: str, ckpt: str, inputs: list[str],
            outputs: list[str]) -> list[str]:
    command = ["moe-run", module, "--weights", ckpt, "--quiet",
               "--threads", "1"]
    for path in inputs:
        command += ["--input", path]
    for path in outputs:
        command += ["--output", path]
    return command


def compare(where: str, got: np.ndarray, ref: np.ndarray) -> bool:
    if got.shape != ref.shape or got.dtype != ref.dtype:
        print(f"{where}: {got.dtype} {list(got.shape)}, expected "
              f"{ref.dtype} {list(ref.shape)}: MISMATCH")
        return False
    if np.issubdtype(ref.dtype, np.integer):
        ok = np.array_equal(got, ref)
        print(f"{where}: {'equal' if ok else 'MISMATCH'}")
        return ok
    peak = float(np.abs(ref).max()) if ref.size else 0.0
    err = float(np.abs(got.astype(np.float64) - ref).max()) if ref.size \
        else 0.0
    ok = err <= RTOL * peak + 1e-30 and bool(np.isfinite(got).all())
    print(f"{where}: max|y-ref| = {err:.3e}, bound {RTOL * peak:.3e}: "
          f"{'ok' if ok else 'MISMATCH'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    family = sub.add_parser("family")
    family.add_argument("family")
    family.add_argument("storage")
    example = sub.add_parser("example")
    example.add_argument("spec")
    example.add_argument("layer")
    for mode in (family, example):
        mode.add_argument("out")
        mode.add_argument("--ranks", required=True)
        mode.add_argument("--tokens", default="0,1,7,300")
        mode.add_argument("--mpirun", default="mpirun")
    args = parser.parse_args()
    args.tokens = [int(t) for t in args.tokens.split(",")]
    ranks = [int(r) for r in args.ranks.split(",")]
    os.makedirs(args.out, exist_ok=True)
    layer, input_names, results, whole = (
        prepare_family(args) if args.mode == "family"
        else prepare_example(args))
    ckpt = os.path.join(args.out, "ckpt")
    single = os.path.join(args.out, "single.so")
    run(["moe-compile", layer, "-o", single], "moe-compile")
    modules = {}
    for r in ranks:
        modules[r] = os.path.join(args.out, f"ranks{r}.so")
        run(["moe-compile", layer, f"--pipeline-options=ranks={r}", "-o",
             modules[r]], f"moe-compile ranks={r}")
    ok = True
    for tokens in args.tokens:
        inputs = [os.path.join(args.out, f"{name}_{tokens}.npy")
                  for name in input_names]
        arrays = [np.load(path) for path in inputs]
        for r in ranks:
            outs = [os.path.join(args.out, f"out{i}_{tokens}_r{r}.npy")
                    for i in range(results)]
            run(shlex.split(args.mpirun) + ["-np", str(r)] +
                moe_run(modules[r], ckpt, inputs, outs),
                f"mpirun -np {r} at T = {tokens}")
            # The single process on each rank's rows.
            pieces = []
            for rank in range(r):
                first, last = tokens * rank // r, tokens * (rank + 1) // r
                part_in = []
                for name, array in zip(input_names, arrays):
                    path = os.path.join(args.out, f"{name}_{tokens}_part.npy")
                    np.save(path, array[first:last])
                    part_in.append(path)
                part_out = [os.path.join(args.out, f"ref{i}_{rank}.npy")
                            for i in range(results)]
                run(moe_run(single, ckpt, part_in, part_out),
                    f"moe-run on rank {rank}'s rows")
                pieces.append([np.load(p) for p in part_out])
            where = f"T={tokens} R={r}"
            ok &= compare(f"{where} output",
                          np.load(outs[0]),
                          np.concatenate([p[0] for p in pieces]))
            for i in range(1, results):
                ok &= compare(f"{where} statistic {i}", np.load(outs[i]),
                              pieces[0][i])
            # Capacity routing: how many choices the ranks dropped.
            if "dropped_count" in getattr(args, "statistics", []):
                i = 1 + args.statistics.index("dropped_count")
                dropped = sum(int(p[i]) for p in pieces)
                print(f"{where}: {dropped} choices dropped")
            if whole:
                whole_out = os.path.join(args.out, f"whole_{tokens}.npy")
                run(moe_run(single, ckpt, inputs, [whole_out]),
                    "moe-run on all tokens")
                ok &= compare(f"{where} output vs one process on all tokens",
                              np.load(outs[0]), np.load(whole_out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
