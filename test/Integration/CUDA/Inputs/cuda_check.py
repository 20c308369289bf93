"""The CUDA execution tests: layers compiled for the GPU, run and checked.

usage:
  cuda_check.py prepare DIR [--moe-compile PATH] [--only PREFIX,...]
                           [--pipeline-options OPTS] [--fast-options OPTS]
                           [--wgmma-options OPTS] [--tokens T,...]
                           [--wgmma wgmma|wgmma-specialized|wgmma-pingpong]
  cuda_check.py check DIR [--moe-run PATH] [--only PREFIX,...]

`prepare` (on a machine with the compiler) writes into DIR, for every case:
a family layer (run_family.py generate, `moe_mlir import-hf`) or a routing
example of examples/routing, compiled with `moe-compile --target cuda`
(the fast path, and the reference lowering for two cases), and gpt-oss
with MXFP4 experts, to
DIR/<case>/layer.so; the bf16 and FP8 fast-path layers and gpt-oss also
with mma=wgmma (Hopper's warpgroup MMA fed by TMA, sm_90a; block-scaled
weights on mma.sync tiles of the form's row blocks) to
DIR/<case>/layer-wgmma.so, checked as <case>-wgmma, the bf16 ones with
mma=wgmma device-io to
DIR/<case>/layer-device-io.so, checked as <case>-device-io against
layer-wgmma.so on device buffers, called and replayed from a CUDA graph
(device_io_check.py). `check` (on a machine with a GPU and the runtime,
no compiler needed) runs each module with moe-run for T = 0, 1, 7, 300,
4096 and compares with the numpy reference: run_family.py check (float64
reference of the stored weights; bf16 and FP8 within 2e-2 * max|ref|,
f16 tensor cores 2e-3, f32 1e-4) and run_example.py (outputs and every
statistic). One line per check; exit status 1 if any fails.
`--pipeline-options` adds CUDA pipeline options to every compilation
(`format=isa` embeds PTX text, which the CUDA emulator of
test/CUDAEmulator runs without a GPU), `--fast-options` to the fast path's
(not the reference lowering's, which refuses them), `--wgmma-options` to
the wgmma and device-io forms' only (e.g. `cluster=2`, which mma=sync
refuses), and `--tokens` replaces the T
values (kept in DIR/cases.json for `check`); `--wgmma wgmma-specialized`
compiles the wgmma and device-io forms with specialized tiles (128-row
blocks of a producer and two consumer warpgroups), `--wgmma wgmma-pingpong`
with a producer and two consumers taking 64-row blocks in turns.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, *[os.pardir] * 4))
CPU_INPUTS = os.path.join(ROOT, "test", "Integration", "CPU", "Inputs")
EXAMPLES = os.path.join(ROOT, "examples", "routing")
TOKENS = "0,1,7,300,4096"

# (family, storage, reference lowering): every routing family of the
# importer's test cases in f32 (CUDA cores) and bf16 (tensor cores), FP8
# and f16, and the reference lowering (the oracle) on the GPU twice.
FAMILY_CASES = [(family, storage, False)
                for family in ("mixtral", "qwen2_moe", "qwen3_moe",
                               "deepseek_v3", "deepseek_v2")
                for storage in ("f32", "bf16")] + [
    ("deepseek_v3", "fp8", False), ("qwen3_moe", "f16", False),
    ("mixtral", "bf16", True), ("deepseek_v3", "f32", True)]
F16_TOLERANCE = 2e-3
# The storages also compiled in the wgmma form (and checked as
# <case>-wgmma): bf16 on wgmma tiles; FP8, whose block-scaled weights the
# wgmma lowering leaves, on mma.sync tiles spanning the form's 64- or
# 128-row blocks (as gpt-oss's MXFP4).
WGMMA_STORAGES = ("bf16", "fp8")
# gpt-oss with MXFP4 experts (e2m1 values and e8m0 block scales), checked
# as test/Integration/CPU/gpt_oss-mxfp4.test checks the CPU: within 2e-2 of
# the float64 reference of the stored weights, for its inputs' T.
MXFP4_CASE = "gpt_oss-mxfp4"
MXFP4_TOKENS = (0, 1, 37, 300)


def family_name(family: str, storage: str, reference: bool) -> str:
    return f"{family}-{storage}" + ("-reference" if reference else "")


def examples() -> list[str]:
    return sorted(name[:-5] for name in os.listdir(EXAMPLES)
                  if name.endswith(".json"))


# Seconds a check's command may take (--case-timeout-s; 0: no limit).
CASE_TIMEOUT_S = 0.0


def run(command: list[str], what: str) -> bool:
    # Its own process group: a case that does not end (a kernel that never
    # finishes) is stopped with the moe-run it started.
    child = subprocess.Popen(command, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             start_new_session=True,
                             env=dict(os.environ, PYTHONPATH=os.path.join(
                                 ROOT, "python")))
    try:
        stdout, stderr = child.communicate(timeout=CASE_TIMEOUT_S or None)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        try:
            stdout, stderr = child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            stdout, stderr = "", ""
        sys.stdout.write(stdout)
        sys.stdout.write(stderr)
        print(f"{what}: FAILED: no result after {CASE_TIMEOUT_S:g} s "
              "(stopped)")
        return False
    except BaseException:
        # Interrupted (^C, the caller stopped): its own process group no
        # longer gets the signal, so stop it here.
        os.killpg(child.pid, signal.SIGKILL)
        raise
    sys.stdout.write(stdout)
    if child.returncode != 0:
        message = (stderr or stdout).strip().splitlines()
        print(f"{what}: FAILED: {message[-1] if message else child.returncode}")
        return False
    return True


def selected(name: str, only: list[str]) -> bool:
    return not only or any(name.startswith(prefix) for prefix in only)


def options(args: argparse.Namespace, own: str = "", *,
            fast: bool = True, wgmma: bool = False) -> list[str]:
    """moe-compile's --pipeline-options: the form's own and the extra ones
    that apply to it (the fast path's, the wgmma forms')."""
    extra = [args.pipeline_options]
    if fast:
        extra.append(args.fast_options)
    if wgmma:
        extra.append(args.wgmma_options)
    joined = " ".join(o for o in (own, *extra) if o)
    return [f"--pipeline-options={joined}"] if joined else []


def prepare(args: argparse.Namespace) -> int:
    ok = True
    python = sys.executable
    for family, storage, reference in FAMILY_CASES:
        name = family_name(family, storage, reference)
        if not selected(name, args.only):
            continue
        out = os.path.join(args.dir, name)
        os.makedirs(out, exist_ok=True)
        ok &= run([python, os.path.join(CPU_INPUTS, "run_family.py"),
                   "generate", family, storage, out, "--tokens", args.tokens],
                  f"{name}: generate")
        ok &= run([python, "-m", "moe_mlir", "import-hf",
                   os.path.join(out, "ckpt"), "--layer", "1", "-o",
                   os.path.join(out, "layer.mlir")], f"{name}: import-hf")
        ok &= run([args.moe_compile, os.path.join(out, "layer.mlir"),
                   "--target", "cuda", f"--reference={int(reference)}",
                   *options(args, fast=not reference), "-o",
                   os.path.join(out, "layer.so")],
                  f"{name}: compile")
        if storage in WGMMA_STORAGES and not reference:
            ok &= run([args.moe_compile, os.path.join(out, "layer.mlir"),
                       "--target", "cuda",
                       *options(args, f"mma={args.wgmma}", wgmma=True),
                       "-o", os.path.join(out, "layer-wgmma.so")],
                      f"{name}-wgmma: compile")
        if storage == "bf16" and not reference:
            ok &= run([args.moe_compile, os.path.join(out, "layer.mlir"),
                       "--target", "cuda",
                       *options(args, f"mma={args.wgmma} device-io",
                                wgmma=True),
                       "-o", os.path.join(out, "layer-device-io.so")],
                      f"{name}-device-io: compile")
    if selected(MXFP4_CASE, args.only):
        out = os.path.join(args.dir, MXFP4_CASE)
        os.makedirs(out, exist_ok=True)
        ok &= run([python, os.path.join(CPU_INPUTS, "gpt_oss_mxfp4.py"), out],
                  f"{MXFP4_CASE}: generate")
        ok &= run([python, "-m", "moe_mlir", "import-hf",
                   os.path.join(out, "ckpt"), "--layer", "1", "-o",
                   os.path.join(out, "layer.mlir")],
                  f"{MXFP4_CASE}: import-hf")
        ok &= run([args.moe_compile, os.path.join(out, "layer.mlir"),
                   "--target", "cuda", *options(args), "-o",
                   os.path.join(out, "layer.so")], f"{MXFP4_CASE}: compile")
        ok &= run([args.moe_compile, os.path.join(out, "layer.mlir"),
                   "--target", "cuda",
                   *options(args, f"mma={args.wgmma}", wgmma=True),
                   "-o", os.path.join(out, "layer-wgmma.so")],
                  f"{MXFP4_CASE}-wgmma: compile")
    for example in examples():
        name = f"example-{example}"
        if not selected(name, args.only):
            continue
        out = os.path.join(args.dir, name)
        os.makedirs(out, exist_ok=True)
        ok &= run([args.moe_compile, os.path.join(EXAMPLES, example + ".mlir"),
                   "--target", "cuda", *options(args), "-o",
                   os.path.join(out, "layer.so")], f"{name}: compile")
    with open(os.path.join(args.dir, "cases.json"), "w",
              encoding="utf-8") as f:
        json.dump({"tokens": args.tokens}, f)
    print("prepared" if ok else "preparation failed")
    return 0 if ok else 1


def check(args: argparse.Namespace) -> int:
    failed = []
    python = sys.executable
    with open(os.path.join(args.dir, "cases.json"), encoding="utf-8") as f:
        tokens = json.load(f)["tokens"]
    for family, storage, reference in FAMILY_CASES:
        name = family_name(family, storage, reference)
        out = os.path.join(args.dir, name)
        if not selected(name, args.only) or not os.path.isdir(out):
            continue
        command = [python, os.path.join(CPU_INPUTS, "run_family.py"), "check",
                   out, "--module", os.path.join(out, "layer.so"),
                   "--moe-run", args.moe_run]
        if storage == "f16":
            command += ["--tolerance", str(F16_TOLERANCE)]
        if not run(command, name):
            failed.append(name)
        wgmma = os.path.join(out, "layer-wgmma.so")
        if os.path.exists(wgmma):
            command[command.index("--module") + 1] = wgmma
            if not run(command, name + "-wgmma"):
                failed.append(name + "-wgmma")
        device_io = os.path.join(out, "layer-device-io.so")
        if os.path.exists(wgmma) and os.path.exists(device_io):
            if not run([python, os.path.join(HERE, "device_io_check.py"),
                        wgmma, device_io, os.path.join(out, "ckpt"),
                        "--tokens", tokens], name + "-device-io"):
                failed.append(name + "-device-io")
    out = os.path.join(args.dir, MXFP4_CASE)
    if selected(MXFP4_CASE, args.only) and os.path.isdir(out):
        for form, module in ((MXFP4_CASE, "layer.so"),
                             (MXFP4_CASE + "-wgmma", "layer-wgmma.so")):
            if not os.path.exists(os.path.join(out, module)):
                continue
            passed = True
            for count in MXFP4_TOKENS:
                x = os.path.join(out, f"x{count}.npy")
                y = os.path.join(out, f"{module}.y{count}.npy")
                where = f"{form} T = {count}"
                passed &= run([args.moe_run, os.path.join(out, module),
                               "--weights", os.path.join(out, "ckpt"),
                               "--input", x, "--output", y, "--quiet"], where)
                if passed and count:
                    passed &= run([python, "-m", "moe_mlir", "reference",
                                   "--hf", os.path.join(out, "ckpt"),
                                   "--layer", "1", "--input", x, "--check", y,
                                   "--rtol", "2e-2"], where)
            if not passed:
                failed.append(form)
    for example in examples():
        name = f"example-{example}"
        out = os.path.join(args.dir, name)
        if not selected(name, args.only) or not os.path.isdir(out):
            continue
        if not run([python, os.path.join(CPU_INPUTS, "run_example.py"),
                    os.path.join(EXAMPLES, example + ".json"),
                    os.path.join(out, "layer.so"), out, "--tokens", tokens],
                   name):
            failed.append(name)
    print(f"{len(failed)} failed" + (": " + ", ".join(failed) if failed
                                     else ""))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare")
    prep.add_argument("dir")
    prep.add_argument("--moe-compile", default="moe-compile")
    prep.add_argument("--pipeline-options", default="",
                      help="CUDA pipeline options added to every compilation")
    prep.add_argument("--fast-options", default="",
                      help="options added to the fast path's compilations "
                           "(not the reference lowering's)")
    prep.add_argument("--wgmma-options", default="",
                      help="options added to the wgmma and device-io forms' "
                           "compilations only")
    prep.add_argument("--wgmma", default="wgmma",
                      choices=("wgmma", "wgmma-specialized",
                               "wgmma-pingpong"),
                      help="the mma option of the wgmma and device-io forms")
    prep.add_argument("--tokens", default=TOKENS,
                      help="the T values, comma-separated")
    chk = sub.add_parser("check")
    chk.add_argument("dir")
    chk.add_argument("--moe-run", default="moe-run")
    chk.add_argument("--case-timeout-s", type=float, default=0,
                     help="stop a case after this many seconds and count "
                     "it failed (0: no limit)")
    for command in (prep, chk):
        command.add_argument("--only", default="",
                             type=lambda s: [p for p in s.split(",") if p])
    args = parser.parse_args()
    # run_example.py starts the moe-run it finds first on PATH.
    tool = getattr(args, "moe_run", "")
    if os.sep in tool:
        os.environ["PATH"] = os.pathsep.join(
            [os.path.dirname(os.path.abspath(tool)), os.environ["PATH"]])
    global CASE_TIMEOUT_S
    CASE_TIMEOUT_S = getattr(args, "case_timeout_s", 0.0)
    return prepare(args) if args.command == "prepare" else check(args)


if __name__ == "__main__":
    sys.exit(main())
