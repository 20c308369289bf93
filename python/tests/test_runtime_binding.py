"""runtime: the ctypes binding of moe_runtime.h, and the ``compile`` /
``run`` / ``reference`` subcommands' one-line errors.

Needs the built tools and runtime library; skipped without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import built_tools
from moe_mlir import family_cases

pytestmark = pytest.mark.skipif(not built_tools.have_runtime_tools(),
                                reason="moe-compile, moe-run or the runtime "
                                "library is not built")


def _compile_case(root, family: str, storage: str):
    """A ``family`` case stored as ``storage`` in ``root``: the case, its
    checkpoint, layer IR and compiled module (moe-compile's defaults)."""
    from moe_mlir.hf_import import import_hf
    from moe_mlir.tools import compile_layer

    case = family_cases.make_case(family, storage)
    ckpt = str(root / "ckpt")
    case.write(ckpt)
    layer_ir = str(root / "layer.mlir")
    with open(layer_ir, "w", encoding="utf-8") as out:
        out.write(import_hf(ckpt, 1).module_text())
    module = str(root / "layer.so")
    compile_layer(layer_ir, module)
    return case, ckpt, layer_ir, module


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A Mixtral case, its checkpoint, layer IR and compiled module."""
    root = tmp_path_factory.mktemp("compiled")
    case, ckpt, layer_ir, module = _compile_case(root, "mixtral", "f32")
    x = case.sample_inputs(5)
    np.save(root / "x.npy", x)
    return {"case": case, "ckpt": ckpt, "ir": layer_ir, "so": module,
            "root": root, "x": x}


def test_handles_and_queries(compiled) -> None:
    from moe_mlir.runtime import Checkpoint, Entry, Module

    with Module(compiled["so"]) as module:
        assert module.entries == ["forward"]
        with Checkpoint(compiled["ckpt"]) as checkpoint:
            entry = Entry(module, checkpoint)
    # The entry outlives its module and checkpoint.
    assert (entry.hidden_size, entry.output_size) == (32, 32)
    assert entry.token_parallel
    # moe-compile's fast path packs the expert weights once, at binding.
    assert entry.packing_seconds > 0
    y = entry(compiled["x"].astype(np.float64))  # converted to float32
    case = compiled["case"]
    err, peak = family_cases.max_error(y, case.reference(compiled["x"]))
    assert err <= case.tolerance * peak
    entry.close()
    entry.close()  # twice: nothing
    with pytest.raises(RuntimeError, match="Entry is closed"):
        entry(compiled["x"])
    with pytest.raises(RuntimeError, match="Entry is closed"):
        entry.packing_seconds


def test_strided_input_is_copied(compiled) -> None:
    from moe_mlir.runtime import load_layer

    layer = load_layer(compiled["so"], compiled["ckpt"])
    x = compiled["x"]
    wide = np.zeros((x.shape[0], 2 * x.shape[1]), dtype=np.float32)
    wide[:, ::2] = x
    np.testing.assert_array_equal(layer(wide[:, ::2]), layer(x))


def test_runtime_errors(compiled, tmp_path) -> None:
    from moe_mlir.runtime import (Checkpoint, Entry, Module, MoeRuntimeError,
                                  load_layer)

    with pytest.raises(MoeRuntimeError, match="nowhere.so"):
        Module(str(tmp_path / "nowhere.so"))
    with pytest.raises(MoeRuntimeError, match="nowhere"):
        Checkpoint(str(tmp_path / "nowhere"))
    with Module(compiled["so"]) as module, \
            Checkpoint(compiled["ckpt"]) as checkpoint:
        with pytest.raises(MoeRuntimeError, match="backward"):
            Entry(module, checkpoint, "backward")
    # A checkpoint without the layer's tensors.
    family_cases.make_case("qwen3_moe", "f32").write(tmp_path / "other")
    with pytest.raises(MoeRuntimeError,
                       match="model.layers.1.block_sparse_moe.gate.weight"):
        load_layer(compiled["so"], str(tmp_path / "other"))

    layer = load_layer(compiled["so"], compiled["ckpt"])
    with pytest.raises(MoeRuntimeError, match=r"\[T, 32\] float32, got "
                       r"\[3, 31\]"):
        layer(np.zeros((3, 31), np.float32))
    with pytest.raises(MoeRuntimeError, match=r"must be \[T, H\]"):
        layer(np.zeros(32, np.float32))
    with pytest.raises(MoeRuntimeError, match="floating point"):
        layer(np.zeros((2, 32), np.int32))
    assert layer(np.zeros((0, 32), np.float32)).shape == (0, 32)


def test_compile_errors(compiled, tmp_path) -> None:
    done = built_tools.moe_mlir("compile", str(tmp_path / "none.mlir"), "-o",
                                str(tmp_path / "x.so"))
    assert "none.mlir" in built_tools.one_line_error(done, "compile")
    bad = tmp_path / "bad.mlir"
    bad.write_text("func.func @f( {\n")
    done = built_tools.moe_mlir("compile", str(bad), "-o",
                                str(tmp_path / "x.so"))
    built_tools.one_line_error(done, "compile")
    done = built_tools.moe_mlir("compile", compiled["ir"], "-o",
                                str(tmp_path / "x.so"), "--row-align", "0")
    assert done.returncode == 2 and "positive integer" in done.stderr
    done = built_tools.moe_mlir("compile", compiled["ir"], "-o",
                                str(tmp_path / "x.ll"), "--emit", "llvm")
    assert done.returncode == 0, done.stderr
    assert "define" in (tmp_path / "x.ll").read_text()


def test_run_errors(compiled, tmp_path) -> None:
    x = str(compiled["root"] / "x.npy")
    out = str(tmp_path / "y.npy")
    for mode in ([], ["--in-process"]):
        done = built_tools.moe_mlir("run", compiled["so"], "--weights",
                                    str(tmp_path / "nowhere"), "--input", x,
                                    "--output", out, *mode)
        assert "nowhere" in built_tools.one_line_error(done, "run")
        done = built_tools.moe_mlir("run", compiled["so"], "--weights",
                                    compiled["ckpt"], "--input", x,
                                    "--output", out, "--entry", "backward",
                                    *mode)
        assert "backward" in built_tools.one_line_error(done, "run")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    done = built_tools.moe_mlir("run", compiled["so"], "--weights",
                                compiled["ckpt"], "--input", str(bad),
                                "--output", out, "--in-process")
    assert "bad.npy: not a readable .npy file" in built_tools.one_line_error(
        done, "run")
    done = built_tools.moe_mlir("run", compiled["so"], "--weights",
                                compiled["ckpt"], "--input", x, "--output",
                                out, "--in-process", "--bench", "3")
    assert "--bench times moe-run" in built_tools.one_line_error(done, "run")
    done = built_tools.moe_mlir("run", compiled["so"], "--weights",
                                compiled["ckpt"], "--input", x, "--output",
                                out, "--threads", "0")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1


def test_reference_errors_and_check(compiled, tmp_path) -> None:
    ckpt, root = compiled["ckpt"], compiled["root"]
    x = str(root / "x.npy")
    done = built_tools.moe_mlir("reference", "--hf", ckpt, "--input", x)
    assert built_tools.one_line_error(done, "reference") == "--hf needs --layer"
    done = built_tools.moe_mlir("reference", "--hf", ckpt, "--layer", "0",
                                "--input", x, "--weights",
                                str(tmp_path / "none"))
    assert "none" in built_tools.one_line_error(done, "reference")
    np.save(tmp_path / "narrow.npy", np.zeros((2, 31), np.float32))
    done = built_tools.moe_mlir("reference", "--hf", ckpt, "--layer", "1",
                                "--input", str(tmp_path / "narrow.npy"))
    assert built_tools.one_line_error(done, "reference").endswith(
        "H = 31 but the layer has H = 32")
    np.save(tmp_path / "ints.npy", np.zeros((2, 32), np.int64))
    done = built_tools.moe_mlir("reference", "--hf", ckpt, "--layer", "1",
                                "--input", str(tmp_path / "ints.npy"))
    assert "expected a float [T, H] array, got int64 [2, 32]" in \
        built_tools.one_line_error(done, "reference")
    # --check: a wrong result fails with exit 1.
    case = compiled["case"]
    wrong = case.reference(compiled["x"]) + 0.5
    np.save(tmp_path / "wrong.npy", wrong)
    done = built_tools.moe_mlir("reference", "--hf", ckpt, "--layer", "1",
                                "--input", x, "--check",
                                str(tmp_path / "wrong.npy"))
    assert "MISMATCH" in done.stdout
    assert "differs from the reference" in built_tools.one_line_error(
        done, "reference")
    np.save(tmp_path / "short.npy", wrong[:2])
    done = built_tools.moe_mlir("reference", "--hf", ckpt, "--layer", "1",
                                "--input", x, "--check",
                                str(tmp_path / "short.npy"))
    assert "does not match the reference [5, 32]" in \
        built_tools.one_line_error(done, "reference")
    # --spec: a layer description next to its weights.
    spec = tmp_path / "layer.json"
    spec.write_text(json.dumps(dict(case.spec.to_dict(), bogus=1)))
    done = built_tools.moe_mlir("reference", "--spec", str(spec),
                                "--weights", ckpt, "--input", x)
    assert "unknown layer fields ['bogus']" in built_tools.one_line_error(
        done, "reference")
    spec.write_text(json.dumps(case.spec.to_dict()))
    done = built_tools.moe_mlir("reference", "--spec", str(spec), "--input",
                                x)
    assert "model.safetensors" in built_tools.one_line_error(
        done, "reference")
    done = built_tools.moe_mlir("reference", "--spec", str(spec), "--weights",
                                ckpt, "--input", x, "--output",
                                str(tmp_path / "ref.npy"))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "ref.npy"),
                                  case.reference(compiled["x"]))
    assert os.path.getsize(tmp_path / "ref.npy") > 0


def _host_has(flag: str) -> bool:
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        return any(line.startswith("flags") and flag in line.split()
                   for line in cpuinfo)


def test_kernel_variant_chosen_at_load(tmp_path, monkeypatch) -> None:
    """A bf16 layer compiled for this CPU holds the vdpbf16ps variant where
    the CPU has AVX512_BF16; MOE_CPU_DISABLE makes the runtime load the
    f32 floor of the same module, which gives the same layer."""
    from moe_mlir.runtime import Checkpoint, Entry, Module

    case, ckpt, _, module_path = _compile_case(tmp_path, "qwen3_moe", "bf16")
    x = case.sample_inputs(9)
    reference = case.reference(x)
    has_dot = _host_has("avx512_bf16")
    for disabled, variant in (("", "avx512bf16" if has_dot else ""),
                              ("avx512bf16", "f32" if has_dot else "")):
        monkeypatch.setenv("MOE_CPU_DISABLE", disabled)
        with Module(module_path) as module, Checkpoint(ckpt) as checkpoint:
            assert module.entries == ["forward"]
            entry = Entry(module, checkpoint)
        assert entry.variant == variant
        err, peak = family_cases.max_error(entry(x), reference)
        assert err <= case.tolerance * peak
        entry.close()
    monkeypatch.setenv("MOE_CPU_DISABLE", "avx512bf17")
    with pytest.raises(RuntimeError,
                       match="MOE_CPU_DISABLE: unknown CPU feature "
                             "'avx512bf17'"):
        Module(module_path)


_CLANG = "/usr/lib/llvm-22/bin/clang"
_FAKE_DRIVER = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir,
                            "test", "Runtime", "Inputs", "fake_cuda.c")


def _cuda_query(env: dict) -> subprocess.CompletedProcess:
    """The binding's GPU queries in a fresh process (the runtime opens the
    driver once per process) with ``env`` added."""
    code = ("from moe_mlir import runtime\n"
            "print('api', runtime.api_version())\n"
            "try:\n"
            "    for line in runtime.cuda_devices():\n"
            "        print(line)\n"
            "except runtime.MoeRuntimeError as err:\n"
            "    print('error:', err)\n")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        check=False, timeout=120,
        env={**os.environ, **env,
             "PYTHONPATH": os.path.join(os.path.dirname(__file__),
                                        os.pardir)})


@pytest.mark.skipif(not os.access(_CLANG, os.X_OK), reason="no clang")
def test_cuda_devices(tmp_path) -> None:
    """cuda_devices(): the GPUs of a (stand-in) driver, or the runtime's one
    line when there is no driver or no GPU."""
    fake = str(tmp_path / "fake_cuda.so")
    subprocess.run([_CLANG, "-shared", "-fPIC", "-o", fake, _FAKE_DRIVER],
                   check=True)
    done = _cuda_query({"MOE_CUDA_DRIVER": fake})
    assert done.stdout.splitlines() == [
        "api 4", "0: Fake GPU, sm_90, 80 GiB, CUDA driver 13.0"], done.stderr
    done = _cuda_query({"MOE_CUDA_DRIVER": str(tmp_path / "none.so")})
    assert done.stdout.splitlines()[1].startswith(
        "error: CUDA driver not available: "), done.stdout
    done = _cuda_query({"MOE_CUDA_DRIVER": fake, "FAKE_CUDA": "no-device"})
    assert done.stdout.splitlines()[1] == (
        "error: CUDA driver: cuInit: CUDA_ERROR_NO_DEVICE (no CUDA-capable "
        "device is detected)")
    done = _cuda_query({"MOE_CUDA_DRIVER": fake, "FAKE_CUDA": "zero-devices"})
    assert done.stdout.splitlines() == ["api 4"]


def _stand_in_modules(tmp_path, cases: list[str]) -> tuple[str, dict, str]:
    """The stand-in driver, the stand-in CUDA modules of make_module.py's
    `cases` (fake_gpu_kernels.c) and their checkpoint, built in
    ``tmp_path``: (driver, {case: module}, checkpoint)."""
    inputs = os.path.dirname(_FAKE_DRIVER)
    fake = str(tmp_path / "fake_cuda.so")
    subprocess.run([_CLANG, "-shared", "-fPIC", "-o", fake, _FAKE_DRIVER],
                   check=True)
    runtime_sources = os.path.join(inputs, os.pardir, os.pardir, os.pardir,
                                   "lib", "Runtime")
    modules = {}
    for case in cases:
        source = str(tmp_path / f"{case}.c")
        subprocess.run([sys.executable, os.path.join(inputs, "make_module.py"),
                        case, source], check=True)
        modules[case] = str(tmp_path / f"{case}.so")
        subprocess.run([_CLANG, "-shared", "-fPIC", "-I", runtime_sources,
                        "-o", modules[case], source,
                        os.path.join(inputs, "fake_gpu_kernels.c")],
                       check=True)
    ckpt = str(tmp_path / "w.safetensors")
    subprocess.run([sys.executable, os.path.join(inputs, "make_inputs.py"),
                    "module-ckpt", ckpt], check=True)
    return fake, modules, ckpt


@pytest.mark.skipif(not os.access(_CLANG, os.X_OK), reason="no clang")
def test_cuda_module(tmp_path) -> None:
    """A CUDA module (the runtime tests' stand-in, y = 2 x through device
    memory) loaded on a device and run through the binding; a device that
    is not there, and a device for a CPU module, are one-line errors."""
    fake, modules, ckpt = _stand_in_modules(tmp_path, ["gpu"])
    module = modules["gpu"]
    code = ("import sys, numpy as np\n"
            "from moe_mlir import runtime\n"
            "module, ckpt = sys.argv[1:3]\n"
            "with runtime.Module(module, device=0) as m:\n"
            "    print(m.target)\n"
            "x = np.arange(16, dtype=np.float32).reshape(2, 8)\n"
            "y = runtime.load_layer(module, ckpt, device=0)(x)\n"
            "print(bool((y == 2 * x).all()))\n"
            "for device in (3, -1):\n"
            "    try:\n"
            "        runtime.Module(module, device=device)\n"
            "    except runtime.MoeRuntimeError as err:\n"
            "        print(err)\n")
    done = subprocess.run(
        [sys.executable, "-c", code, module, ckpt], capture_output=True,
        text=True, check=False, timeout=120,
        env={**os.environ, "MOE_CUDA_DRIVER": fake,
             "PYTHONPATH": os.path.join(os.path.dirname(__file__),
                                        os.pardir)})
    assert done.stdout.splitlines() == [
        "cuda", "True",
        f"{module}: cannot load its GPU code on device 3: no CUDA device 3 "
        "(this machine has 1 device)",
        "device must be a GPU ordinal, got -1"], done.stderr


@pytest.mark.skipif(not os.access(_CLANG, os.X_OK), reason="no clang")
def test_cuda_device_io(tmp_path) -> None:
    """A device-io CUDA module (the stand-in, y = 2 x) through run_cuda on
    "device" buffers (the stand-in's device memory is host memory, so numpy
    arrays serve), and the one-line refusals of the wrong calls."""
    fake, modules, ckpt = _stand_in_modules(tmp_path,
                                            ["gpu", "gpu-device-io"])
    code = ("import sys, numpy as np\n"
            "from moe_mlir import runtime\n"
            "device_module, host_module, ckpt = sys.argv[1:4]\n"
            "entry = runtime.load_layer(device_module, ckpt, device=0)\n"
            "host = runtime.load_layer(host_module, ckpt, device=0)\n"
            "print(entry.device_io, host.device_io)\n"
            "print(entry.result_types(2))\n"
            "x = np.arange(16, dtype=np.float32).reshape(2, 8)\n"
            "y = np.zeros_like(x)\n"
            "entry.run_cuda([x.ctypes.data], 2, [y.ctypes.data], stream=0)\n"
            "print(bool((y == 2 * x).all()))\n"
            "calls = [lambda: entry(x),\n"
            "         lambda: host.run_cuda([x.ctypes.data], 2,\n"
            "                               [y.ctypes.data]),\n"
            "         lambda: entry.run_cuda([0], 2, [y.ctypes.data]),\n"
            "         lambda: entry.run_cuda([x.ctypes.data], 2, [])]\n"
            "for call in calls:\n"
            "    try:\n"
            "        call()\n"
            "    except runtime.MoeRuntimeError as err:\n"
            "        print(err)\n")
    done = subprocess.run(
        [sys.executable, "-c", code, modules["gpu-device-io"],
         modules["gpu"], ckpt], capture_output=True,
        text=True, check=False, timeout=120,
        env={**os.environ, "MOE_CUDA_DRIVER": fake,
             "PYTHONPATH": os.path.join(os.path.dirname(__file__),
                                        os.pardir)})
    assert done.stdout.splitlines() == [
        "True False",
        "[((2, 8), dtype('float32'))]",
        "True",
        "'forward' takes device memory (its module was compiled with "
        "device-io): run it on device buffers (moe_entry_run_cuda)",
        "'forward' takes host memory: only a CUDA module compiled with "
        "device-io runs on device buffers",
        "input of 'forward' is a null pointer",
        "'forward' has 1 result, got 0 outputs"], done.stderr
