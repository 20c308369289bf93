#!/usr/bin/python3
"""The main job's demo: a Mixtral-style MoE layer compiled, run and checked.

Writes a random Hugging Face-format Mixtral-style checkpoint (deterministic
seed; 8 SwiGLU experts, softmax top-2 renormalized) and an input, imports
the layer with `python3 -m moe_mlir import-hf`, compiles it with
moe-compile, runs it with moe-run (--bench), and prints the max abs error
against the float64 numpy reference, the tolerance, pass/fail and the time.
Exit status: 0 pass, 1 mismatch, 2 tool failure.

  /usr/bin/python3 utils/demo.py --build build --out build/demo
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

PYTHON_DIR = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "python"))
sys.path.insert(0, PYTHON_DIR)
from moe_mlir import family_cases  # noqa: E402


def run(command: list) -> str:
    print("$", " ".join(command), flush=True)
    if not os.access(command[0], os.X_OK):
        print(f"error: {command[0]} not found (build it first)",
              file=sys.stderr)
        sys.exit(2)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"error: {os.path.basename(command[0])} failed "
              f"({done.returncode}): {done.stderr.strip()}", file=sys.stderr)
        sys.exit(2)
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build", help="build directory")
    parser.add_argument("--out", help="output directory (BUILD/demo)")
    parser.add_argument("--dtype", choices=family_cases.STORAGES, default="f32",
                        help="storage dtype of the weights")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    out = args.out or os.path.join(args.build, "demo")
    tools = os.path.join(args.build, "bin")

    case = family_cases.make_case(
        "mixtral", args.dtype, seed=args.seed, layer=0, dead_expert=False,
        hidden_size=64, intermediate_size=128, num_local_experts=8)
    ckpt = os.path.join(out, "ckpt")
    case.write(ckpt)
    layer_ir = os.path.join(out, "layer.mlir")
    x = case.sample_inputs(args.tokens)
    np.save(os.path.join(out, "x.npy"), x)
    spec = case.spec
    print(f"layer: H = {spec.hidden}, I = {spec.intermediate}, "
          f"E = {spec.num_experts}, routing "
          f"{spec.routing.to_mlir(prefix=False)}, {args.dtype} weights, "
          f"T = {args.tokens}; files in {out}")

    module = os.path.join(out, "layer.so")
    os.environ["PYTHONPATH"] = PYTHON_DIR
    run([sys.executable, "-m", "moe_mlir", "import-hf", ckpt, "--layer", "0",
         "-o", layer_ir])
    run([os.path.join(tools, "moe-compile"), layer_ir, "--target", "cpu",
         "-o", module])
    command = [os.path.join(tools, "moe-run"), module,
               "--weights", ckpt,
               "--input", os.path.join(out, "x.npy"),
               "--output", os.path.join(out, "y.npy"), "--bench", "10"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    stdout = run(command)
    bench = None
    for line in stdout.splitlines():
        try:
            value = json.loads(line)
            bench = value if isinstance(value, dict) else bench
        except json.JSONDecodeError:
            continue

    y = np.load(os.path.join(out, "y.npy"))
    err, peak = family_cases.max_error(y, case.reference(x))
    ok = err <= case.tolerance * peak
    print(f"max |y - ref| = {err:.3e}; tolerance {case.tolerance:g} * "
          f"max|ref| = {case.tolerance * peak:.3e}: "
          f"{'PASS' if ok else 'FAIL'}")
    if bench is None:
        print("time: no bench JSON line in moe-run's output")
    else:
        times = [f"{k[:-3]} {v:.3f} ms" for k, v in bench.items()
                 if k.endswith("_ms") and isinstance(v, (int, float))]
        print(f"time over {bench.get('runs', '?')} runs:", ", ".join(times)
              if times else json.dumps(bench))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
