"""Driver of the CPU integration tests: a family's layer, compiled and run.

usage:
  run_family.py generate FAMILY STORAGE OUT [--shards N] [--seed S]
                [--tokens 0,1,7,64,300] [--config KEY=JSON ...]
  run_family.py check OUT --module MODULE [--threads N] [--tag TAG]
                [--same-as TAG] [--moe-run PATH] [--tolerance R]

`generate` writes into OUT a random checkpoint of FAMILY (mixtral, qwen2_moe,
qwen3_moe, deepseek_v3, deepseek_v2) stored as STORAGE (f32, bf16, f16) in
OUT/ckpt (model.safetensors, or N shards + index, and config.json), one input
OUT/x_<T>.npy per token count, and OUT/case.json; --config overrides keys
of the family's config.json (sizes: `--config hidden_size=33`). The tests then import the
layer as users do: `python3 -m moe_mlir import-hf OUT/ckpt --layer 1 -o
OUT/layer.mlir`.

`check` runs `moe-run MODULE --weights OUT/ckpt --input OUT/x_<T>.npy
--output OUT/y_<T>[.TAG].npy [--threads N]` for every T (MODULE: the .so
from moe-compile or the .mlir itself) and compares each output with the
float64 reference computed from the checkpoint as stored (docs/Semantics.md, tolerances:
max|y - ref| <= 1e-4 * max|ref| (family_cases.tolerance); T = 0 gives
[0, H]). It also checks that the case's dead expert (if any) receives no
token and that every other expert receives one at the largest T. With
--same-as, outputs must also match those of an earlier check tagged TAG
(to 1e-6 * max|y|; bitwise equality is reported). Exit status 1 on any
mismatch, with one line per problem.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                *[os.pardir] * 4, "python"))

from moe_mlir import family_cases  # noqa: E402

SAME_RTOL = 1e-6


def config_override(text: str) -> tuple[str, object]:
    """`KEY=JSON` as (key, value)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=JSON")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"'{text}': the value is not JSON ({error.msg})") from None


def generate(args: argparse.Namespace) -> int:
    reserved = {"family", "storage", "seed", "layer", "dead_expert"}
    for key, _ in args.config:
        if key in reserved:
            print(f"run_family.py: --config {key}: not a config.json key "
                  "(a make_case parameter)", file=sys.stderr)
            return 2
    case = family_cases.make_case(args.family, args.storage, seed=args.seed,
                                  **dict(args.config))
    out = args.out
    os.makedirs(out, exist_ok=True)
    case.write(os.path.join(out, "ckpt"), shards=args.shards)
    for tokens in args.tokens:
        np.save(os.path.join(out, f"x_{tokens}.npy"),
                case.sample_inputs(tokens))
    info = {"family": args.family, "storage": args.storage,
            "layer": case.layer, "seed": args.seed, "tokens": args.tokens,
            "dead_expert": case.dead_expert, "hidden": case.spec.hidden}
    with open(os.path.join(out, "case.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    spec = case.spec
    print(f"{args.family}/{args.storage}: E = {spec.num_experts}, "
          f"routing {spec.routing.to_mlir(prefix=False)}, "
          f"{len(case.tensors)} tensors, shards {args.shards}")
    return 0


def run_moe_run(args: argparse.Namespace, x_path: str,
                y_path: str) -> str | None:
    """Runs moe-run; the problem as one line, or None."""
    command = [args.moe_run, args.module, "--weights",
               os.path.join(args.out, "ckpt"), "--input", x_path,
               "--output", y_path]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    if os.path.exists(y_path):
        os.remove(y_path)
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=600)
    except FileNotFoundError:
        return f"cannot run {args.moe_run} (not on PATH?)"
    if done.returncode != 0:
        return (f"`{' '.join(command)}` exited with {done.returncode}: "
                f"{done.stderr.strip()}")
    return None


def check(args: argparse.Namespace) -> int:
    with open(os.path.join(args.out, "case.json"), encoding="utf-8") as f:
        info = json.load(f)
    case = family_cases.load_case(os.path.join(args.out, "ckpt"),
                              info["storage"], info["layer"],
                              info["dead_expert"])
    name = f"{info['family']}/{info['storage']}"
    tol = args.tolerance if args.tolerance is not None else case.tolerance
    hidden = case.spec.hidden
    suffix = f".{args.tag}" if args.tag else ""
    problems = []
    for tokens in info["tokens"]:
        x_path = os.path.join(args.out, f"x_{tokens}.npy")
        y_path = os.path.join(args.out, f"y_{tokens}{suffix}.npy")
        where = f"{name} T={tokens}"
        problem = run_moe_run(args, x_path, y_path)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        x = np.load(x_path)
        y = np.load(y_path)
        if y.dtype != np.float32 or y.shape != (tokens, hidden):
            problems.append(f"{where}: output is {y.dtype} {list(y.shape)}, "
                            f"expected float32 [{tokens}, {hidden}]")
            continue
        ref = case.reference(x)
        err, peak = family_cases.max_error(y, ref)
        ok = err <= tol * peak and np.isfinite(y).all()
        counts = case.tokens_per_expert(x)
        print(f"{where}: max|y-ref| = {err:.3e}, bound {tol:g} * max|ref| = "
              f"{tol * peak:.3e}: {'ok' if ok else 'MISMATCH'}; tokens per "
              f"expert {counts.tolist()}")
        if not ok:
            problems.append(f"{where}: max|y-ref| = {err:.3e} exceeds "
                            f"{tol:g} * {peak:.3e}")
        dead = info["dead_expert"]
        if dead is not None and counts[dead] != 0:
            problems.append(f"{where}: expert {dead} should receive no token, "
                            f"got {counts[dead]}")
        if tokens == max(info["tokens"]):
            idle = [e for e in range(len(counts))
                    if counts[e] == 0 and e != dead]
            if idle:
                problems.append(f"{where}: experts {idle} receive no token; "
                                "the test would not cover them")
        if args.same_as:
            other_path = os.path.join(args.out,
                                      f"y_{tokens}.{args.same_as}.npy")
            if not os.path.exists(other_path):
                problems.append(f"{where}: no output of run {args.same_as}")
                continue
            other = np.load(other_path)
            diff, scale = family_cases.max_error(y, other)
            same = "bitwise equal" if np.array_equal(y, other) else \
                f"max diff {diff:.3e}"
            print(f"{where}: vs {args.same_as}: {same}")
            if diff > SAME_RTOL * scale:
                problems.append(f"{where}: differs from run {args.same_as} "
                                f"by {diff:.3e} (> {SAME_RTOL:g} * "
                                f"{scale:.3e})")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write checkpoint, IR and inputs")
    gen.add_argument("family", choices=sorted(family_cases.FAMILIES))
    gen.add_argument("storage", choices=family_cases.STORAGES)
    gen.add_argument("out")
    gen.add_argument("--shards", type=int, default=1)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--tokens", default="0,1,7,64,300",
                     type=lambda s: [int(t) for t in s.split(",")])
    gen.add_argument("--config", action="append", default=[],
                     type=config_override, metavar="KEY=JSON",
                     help="a config.json key's value (repeatable)")
    run = sub.add_parser("check", help="run moe-run and compare")
    run.add_argument("out")
    run.add_argument("--module", required=True)
    run.add_argument("--threads", type=int)
    run.add_argument("--tag", default="")
    run.add_argument("--same-as", default="")
    run.add_argument("--moe-run", default="moe-run")
    run.add_argument("--tolerance", type=float,
                     help="the bound of max|y - ref| / max|ref| instead of "
                          "the storage's (e.g. for f16 tensor cores)")
    args = parser.parse_args()
    return generate(args) if args.command == "generate" else check(args)


if __name__ == "__main__":
    sys.exit(main())
