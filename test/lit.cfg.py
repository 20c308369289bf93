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
config.substitutions.append(("%moe_docs_dir", config.moe_docs_dir))
config.substitutions.append(("%python", sys.executable))
# The Python package's command line, as users run it from a checkout.
config.substitutions.append(
    ("%moe_mlir", "env PYTHONPATH=%s %s -m moe_mlir" % (
        os.path.join(config.moe_src_root, "python"), sys.executable)))
config.substitutions.append(
    ("%moe_lib_dir", os.path.join(config.moe_obj_root, "lib")))
# The C compiler of the LLVM installation; the runtime tests build fake
# compiled modules with it.
config.substitutions.append(
    ("%clang", os.path.join(config.llvm_tools_dir, "clang")))

# Every FileCheck variable is local to its CHECK-LABEL block.
config.environment["FILECHECK_OPTS"] = "-enable-var-scope"

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# FileCheck, not, count and split-file come from the LLVM tools directory.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tool_dirs = [config.moe_tools_dir, config.llvm_tools_dir]
# A build of the runtime alone (the MOE_SANITIZE build) runs test/Runtime with
# `--param moe_runtime_only=1`, which lets moe-opt be absent.
runtime_only = lit_config.params.get("moe_runtime_only", "0") == "1"
tools = [
    ToolSubst("moe-opt", unresolved="ignore" if runtime_only else "fatal"),
    ToolSubst("moe-checkpoint-inspect", unresolved="fatal"),
    ToolSubst("moe-run", unresolved="fatal"),
    ToolSubst("moe-compile", unresolved="ignore" if runtime_only else "fatal"),
]
llvm_config.add_tool_substitutions(tools, tool_dirs)
