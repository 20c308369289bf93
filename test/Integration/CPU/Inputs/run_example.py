"""Driver of the routing-example tests: one examples/routing layer, run.

usage: run_example.py EXAMPLE.json MODULE.so OUT [--tokens 0,1,37,130]

Writes random weights for the layer (`moe_mlir random-weights`), then for
every T samples the tokens (and the layer's noise [T,E] / uniform [T,1]
inputs), runs `moe-run MODULE --weights OUT/ckpt --input ... --output y
--output <statistic> ...` and checks the output and every statistic with
`moe_mlir reference --spec EXAMPLE.json --check ...` (output within 1e-4 *
max|ref|, counts equal, losses within 1e-4 relative). Prints one line per T;
exit status 1 on the first failure, with the failing command's message.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

PYTHON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          *[os.pardir] * 4, "python")


def moe_mlir(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    return subprocess.run([sys.executable, "-m", "moe_mlir", *args],
                          capture_output=True, text=True, env=env)


def fail(what: str, done: subprocess.CompletedProcess) -> None:
    sys.exit(f"{what} failed: {(done.stderr or done.stdout).strip()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("module")
    parser.add_argument("out")
    parser.add_argument("--tokens", default="0,1,37,130")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as file:
        spec = json.load(file)
    name = os.path.splitext(os.path.basename(args.spec))[0]
    ckpt = os.path.join(args.out, "ckpt")
    done = moe_mlir("random-weights", "--spec", args.spec, "-o", ckpt)
    if done.returncode:
        fail("random-weights", done)
    experts, sampled = spec["num_experts"], []
    routing = spec["routing"]
    if "noisy" in routing:
        sampled.append(("noise", experts))
    if "second = random" in routing:
        sampled.append(("uniform", 1))
    for tokens in (int(t) for t in args.tokens.split(",")):
        rng = np.random.default_rng([tokens, len(name)])
        inputs = [("x", rng.standard_normal((tokens, spec["hidden"])))]
        for sample, width in sampled:
            value = (rng.standard_normal((tokens, width)) if sample == "noise"
                     else rng.random((tokens, width)))
            inputs.append((sample, value))
        input_args = []
        for label, value in inputs:
            path = os.path.join(args.out, f"{label}_{tokens}.npy")
            np.save(path, value.astype(np.float32))
            input_args += ["--input", path]
        results = ["y"] + spec.get("statistics", [])
        outputs = [os.path.join(args.out, f"{r}_{tokens}.npy")
                   for r in results]
        command = ["moe-run", args.module, "--weights", ckpt, *input_args]
        for path in outputs:
            command += ["--output", path]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            fail(f"moe-run at T = {tokens}", done)
        checks = [arg for path in outputs for arg in ("--check", path)]
        done = moe_mlir("reference", "--spec", args.spec, "--weights", ckpt,
                        *input_args, *checks)
        if done.returncode:
            fail(f"reference --check at T = {tokens}", done)
        print(f"{name} T = {tokens}: {len(results)} results ok")


if __name__ == "__main__":
    main()
