# -*- Python -*-
# lit configuration of the MoE-MLIR regression tests.

import os
import sys

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "MOE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in", "Inputs"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%moe_src_root", config.moe_src_root))
config.substitutions.append(("%moe_obj_root", config.moe_obj_root))
config.substitutions.append(("%moe_docs_dir", config.moe_docs_dir))
config.substitutions.append(("%python", sys.executable))
# The Python package's command line, as users run it from a checkout.
config.substitutions.append(
    ("%moe_mlir", "env PYTHONPATH=%s %s -m moe_mlir" % (
        os.path.join(config.moe_src_root, "python"), sys.executable)))
config.substitutions.append(
    ("%moe_lib_dir", os.path.join(config.moe_obj_root, "lib")))
# The C and C++ compilers of the LLVM installation; the runtime tests build
# fake compiled modules with them, the install test a consumer project.
config.substitutions.append(
    ("%clang\\+\\+", os.path.join(config.llvm_tools_dir, "clang++")))
config.substitutions.append(
    ("%clang", os.path.join(config.llvm_tools_dir, "clang")))
config.substitutions.append(("%mlir_cmake_dir", config.mlir_cmake_dir))
config.substitutions.append(
    ("%ccache_launcher",
     "-DCMAKE_C_COMPILER_LAUNCHER=%s -DCMAKE_CXX_COMPILER_LAUNCHER=%s" % (
         config.ccache, config.ccache)
     if config.ccache and "NOTFOUND" not in config.ccache else ""))
if config.moe_sanitize:
    config.available_features.add("asan")

# Execution tests of lowered IR: upstream mlir-runner with the runner
# utilities (printMemref*) of the same LLVM installation.
_mlir_runner = os.path.join(config.llvm_tools_dir, "mlir-runner")
_runner_libs = [
    os.path.normpath(os.path.join(config.llvm_tools_dir, "..", "lib", name))
    for name in ("libmlir_runner_utils.so", "libmlir_c_runner_utils.so")]
if os.path.exists(_mlir_runner) and all(map(os.path.exists, _runner_libs)):
    config.available_features.add("mlir-runner")
    config.substitutions.append(
        ("%mlir_runner",
         "%s -entry-point-result=void -shared-libs=%s" % (
             _mlir_runner, ",".join(_runner_libs))))

# A CPU feature moe-compile can target that this machine lacks (from
# /proc/cpuinfo), for the test of a module refused on load.
_cpuinfo_flags = {"amx-tile": "amx_tile", "amx-bf16": "amx_bf16",
                  "avx512fp16": "avx512_fp16", "avx512bf16": "avx512_bf16",
                  "avx512f": "avx512f", "avx2": "avx2"}
try:
    with open("/proc/cpuinfo", encoding="utf-8") as _cpuinfo:
        _flags = set()
        for _line in _cpuinfo:
            if _line.startswith("flags"):
                _flags.update(_line.split(":", 1)[1].split())
except OSError:
    _flags = None
if _flags:
    for _feature, _flag in _cpuinfo_flags.items():
        if _flag not in _flags:
            config.available_features.add("missing-cpu-feature")
            config.substitutions.append(("%missing_cpu_feature", _feature))
            break
    if {"avx2", "fma", "bmi2", "movbe"} <= _flags:
        config.available_features.add("x86-64-v3")
        if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= \
                _flags:
            config.available_features.add("x86-64-v4")
    # The units of the bf16 kernels: tests of the kernel a module picks
    # on this CPU.
    if {"avx512f", "avx512_bf16"} <= _flags:
        config.available_features.add("cpu-avx512bf16")
    if {"amx_tile", "amx_bf16"} <= _flags:
        config.available_features.add("cpu-amx-bf16")

# The CUDA toolkit the CUDA pipeline's binaries are built with (ptxas,
# fatbinary, libdevice): compile tests of moe-lower-to-cuda need it.
_cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
_ptxas = os.path.join(_cuda_home, "bin", "ptxas")
if os.path.exists(_ptxas):
    config.available_features.add("cuda-toolkit")
    config.substitutions.append(("%ptxas", _ptxas))
    config.substitutions.append(("%cuda_home", _cuda_home))

# The CUDA emulator (test/CUDAEmulator): a stand-in driver that runs the
# kernels' PTX on the CPU, for execution tests of CUDA modules compiled
# with format=isa on a machine without a GPU.
_emulator = os.path.join(config.moe_obj_root, "lib", "libmoe-cuda-emulator.so")
if "cuda-toolkit" in config.available_features and os.path.exists(_emulator):
    config.available_features.add("cuda-emulator")
    config.substitutions.append(("%cuda_emulator", _emulator))

# Execution tests of CUDA modules need a GPU the runtime sees (moe-run
# --devices lists one); MOE_CUDA_DRIVER is left as the environment has it.
import subprocess
_moe_run = os.path.join(config.moe_tools_dir, "moe-run")
if os.path.exists(_moe_run):
    try:
        _devices = subprocess.run([_moe_run, "--devices"], capture_output=True,
                                  text=True, timeout=60, check=False)
        if _devices.returncode == 0 and _devices.stdout.strip() and \
                "Fake GPU" not in _devices.stdout:
            config.available_features.add("cuda")
    except (OSError, subprocess.TimeoutExpired):
        pass
for _name in ("MOE_CUDA_DRIVER", "CUDA_VISIBLE_DEVICES"):
    if _name in os.environ:
        config.environment[_name] = os.environ[_name]

# The Python package's tools (%moe_mlir compile/run) are this build's, so
# that the sanitized build's lit run checks its own tools.
config.environment["MOE_TOOLS_DIR"] = config.moe_tools_dir

# Every FileCheck variable is local to its CHECK-LABEL block.
config.environment["FILECHECK_OPTS"] = "-enable-var-scope"

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# FileCheck, not, count and split-file come from the LLVM tools directory.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tool_dirs = [config.moe_tools_dir, config.llvm_tools_dir]
tools = [
    ToolSubst("moe-opt", unresolved="fatal"),
    ToolSubst("moe-checkpoint-inspect", unresolved="fatal"),
    ToolSubst("moe-run", unresolved="fatal"),
    ToolSubst("moe-compile", unresolved="fatal"),
]
llvm_config.add_tool_substitutions(tools, tool_dirs)
