"""Hugging Face checkpoints imported, compiled, run and checked (issue 4).

For every family and storage dtype (F32, BF16, F16): a random checkpoint
with unrelated tensors, ``python3 -m moe_mlir import-hf``, ``compile``,
``run`` (moe-run) for T = 0, 1, 37, the same layer in-process through the
ctypes binding, and ``reference --check``; every output within
docs/Semantics.md's tolerance of the float64 reference of the stored weights. Needs the
built tools (utils/dev.sh build); skipped without them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import built_tools
from moe_mlir import family_cases

pytestmark = pytest.mark.skipif(not built_tools.have_runtime_tools(),
                                reason="moe-compile, moe-run or the runtime "
                                "library is not built")

CASES = [(family, storage) for family in sorted(family_cases.FAMILIES)
         for storage in family_cases.STORAGES]
TOKENS = (0, 1, 37)


def _ok(done, command: str) -> str:
    assert done.returncode == 0, f"moe_mlir {command}: {done.stderr}"
    return done.stdout


@pytest.mark.parametrize("family,storage", CASES)
def test_import_compile_run(tmp_path, family, storage) -> None:
    from moe_mlir.runtime import load_layer

    case = family_cases.make_case(family, storage, seed=7)
    ckpt = str(tmp_path / "ckpt")
    case.write(ckpt, shards=2 if storage == "bf16" else 1)
    layer_ir = str(tmp_path / "layer.mlir")
    module = str(tmp_path / "layer.so")
    _ok(built_tools.moe_mlir("import-hf", ckpt, "--layer", "1", "-o",
                             layer_ir), "import-hf")
    _ok(built_tools.moe_mlir("compile", layer_ir, "-o", module), "compile")
    in_process = load_layer(module, ckpt)
    assert in_process.hidden_size == case.spec.hidden
    assert in_process.token_parallel

    for tokens in TOKENS:
        x = case.sample_inputs(tokens)
        x_path, y_path = (str(tmp_path / f"{n}_{tokens}.npy")
                          for n in ("x", "y"))
        np.save(x_path, x)
        _ok(built_tools.moe_mlir("run", module, "--weights", ckpt,
                                 "--input", x_path, "--output", y_path),
            "run")
        y = np.load(y_path)
        assert y.dtype == np.float32 and y.shape == (tokens, case.spec.hidden)
        err, peak = family_cases.max_error(y, case.reference(x))
        assert err <= case.tolerance * peak, (tokens, err, peak)
        # In-process: the same code, so the same bits on one thread.
        np.testing.assert_array_equal(in_process(x), y)
        np.testing.assert_allclose(in_process(x, threads=3), y, rtol=0,
                                   atol=1e-6 * max(peak, 1.0))

    stdout = _ok(built_tools.moe_mlir(
        "reference", "--hf", ckpt, "--layer", "1", "--input", x_path,
        "--output", str(tmp_path / "ref.npy"), "--check", y_path),
        "reference")
    assert stdout.rstrip().endswith(": ok")
    ref = np.load(tmp_path / "ref.npy")
    assert ref.dtype == np.float64
    np.testing.assert_array_equal(ref, case.reference(x))


def test_run_from_mlir_and_in_process_from_mlir(tmp_path) -> None:
    case = family_cases.make_case("qwen2_moe", "bf16")
    ckpt = str(tmp_path / "ckpt")
    case.write(ckpt)
    layer_ir = str(tmp_path / "layer.mlir")
    _ok(built_tools.moe_mlir("import-hf", ckpt, "--layer", "1", "-o",
                             layer_ir), "import-hf")
    x = case.sample_inputs(9)
    np.save(tmp_path / "x.npy", x)
    outputs = {}
    for mode in ([], ["--in-process"], ["--threads", "2"]):
        out = str(tmp_path / f"y{len(outputs)}.npy")
        _ok(built_tools.moe_mlir("run", layer_ir, "--weights", ckpt,
                                 "--input", str(tmp_path / "x.npy"),
                                 "--output", out, *mode), "run")
        outputs[" ".join(mode)] = np.load(out)
    for y in outputs.values():
        err, peak = family_cases.max_error(y, case.reference(x))
        assert err <= case.tolerance * peak
    stdout = _ok(built_tools.moe_mlir(
        "run", layer_ir, "--weights", ckpt, "--input",
        str(tmp_path / "x.npy"), "--output", str(tmp_path / "b.npy"),
        "--bench", "2"), "run")
    assert '"median_ms"' in stdout


def test_compile_for_ranks(tmp_path) -> None:
    """``compile --ranks 2``: a module for expert parallelism, whose manifest
    names its MPI world and its weights' windows of experts (run under
    mpirun in test/Integration/MPI)."""
    case = family_cases.make_case("mixtral", "f32")
    ckpt = str(tmp_path / "ckpt")
    case.write(ckpt)
    layer_ir = str(tmp_path / "layer.mlir")
    module = tmp_path / "layer.so"
    _ok(built_tools.moe_mlir("import-hf", ckpt, "--layer", "1", "-o",
                             layer_ir), "import-hf")
    _ok(built_tools.moe_mlir("compile", layer_ir, "--ranks", "2", "-o",
                             str(module)), "compile")
    manifest = module.read_bytes()
    assert b'"parallel":{"api":"mpi","library":"OpenMPI","ranks":2}' in manifest
    assert b'"experts":%d' % case.spec.num_experts in manifest
    done = built_tools.moe_mlir("compile", layer_ir, "--ranks", "0", "-o",
                                str(module))
    assert done.returncode != 0


_CUDA_TOOLKIT = os.path.exists(os.path.join(
    os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "ptxas"))
_FAKE_DRIVER = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir,
                            "test", "Runtime", "Inputs", "fake_cuda.c")


@pytest.mark.skipif(not _CUDA_TOOLKIT, reason="no CUDA toolkit (ptxas)")
def test_compile_and_run_for_cuda(tmp_path) -> None:
    """``compile --target cuda`` and ``run --device 0`` (moe-run and
    in-process) of an imported layer over the runtime tests' stand-in
    driver, whose kernels do nothing and whose memory is zero-filled: the
    host side runs end to end and the result is [T, H] zeros; an unknown
    target is a one-line error."""
    import subprocess
    import sys
    case = family_cases.make_case("qwen3_moe", "bf16")
    ckpt = str(tmp_path / "ckpt")
    case.write(ckpt)
    layer_ir = str(tmp_path / "layer.mlir")
    module = str(tmp_path / "layer.so")
    _ok(built_tools.moe_mlir("import-hf", ckpt, "--layer", "1", "-o",
                             layer_ir), "import-hf")
    _ok(built_tools.moe_mlir("compile", layer_ir, "--target", "cuda", "-o",
                             module), "compile")
    fake = str(tmp_path / "fake_cuda.so")
    subprocess.run(["/usr/lib/llvm-22/bin/clang", "-shared", "-fPIC", "-o",
                    fake, _FAKE_DRIVER], check=True)
    x = case.sample_inputs(5)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "MOE_CUDA_DRIVER": fake,
           "PYTHONPATH": os.path.join(os.path.dirname(__file__), os.pardir)}
    for mode in ([], ["--in-process"]):
        out = str(tmp_path / f"y{len(mode)}.npy")
        done = subprocess.run(
            [sys.executable, "-m", "moe_mlir", "run", module, "--weights",
             ckpt, "--input", str(tmp_path / "x.npy"), "--output", out,
             "--device", "0", *mode],
            capture_output=True, text=True, env=env, check=False, timeout=300)
        assert done.returncode == 0, done.stderr
        y = np.load(out)
        assert y.shape == (5, case.spec.hidden) and not y.any()
    # The status of a failure: a launch that fails is a CUDA error, a
    # missing driver means no CUDA.
    code = ("import sys, numpy as np\n"
            "from moe_mlir import runtime\n"
            "try:\n"
            "    runtime.load_layer(sys.argv[1], sys.argv[2], device=0)("
            "np.ones((3, int(sys.argv[3])), np.float32))\n"
            "except runtime.MoeRuntimeError as err:\n"
            "    print(err.status, err)\n")
    for driver, mode, status in ((fake, "launch", 3),
                                 (str(tmp_path / "none.so"), "", 2)):
        done = subprocess.run(
            [sys.executable, "-c", code, module, ckpt,
             str(case.spec.hidden)], capture_output=True, text=True,
            env={**env, "MOE_CUDA_DRIVER": driver, "FAKE_CUDA": mode},
            check=False, timeout=300)
        assert done.stdout.startswith(f"{status} "), (done.stdout,
                                                      done.stderr)
    bad = built_tools.moe_mlir("compile", layer_ir, "--target", "rocm", "-o",
                               module)
    assert bad.returncode == 2 and "invalid choice: 'rocm'" in bad.stderr
