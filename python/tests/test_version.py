"""One version everywhere: python/moe_mlir/VERSION is read by the Python
package and by CMake, and every tool, the C API and the manifest of
compiled modules report it."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

import moe_mlir
from built_tools import have_runtime_tools, moe_mlir as run_cli, moe_opt

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
with open(os.path.join(_ROOT, "python", "moe_mlir", "VERSION"),
          encoding="utf-8") as _file:
    VERSION = _file.read().strip()


def test_version_file_and_package() -> None:
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", VERSION)
    assert moe_mlir.__version__ == VERSION
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"moe_mlir {VERSION}"


def _tool(name: str) -> str:
    from moe_mlir import tools
    return tools.find_tool(name)


@pytest.mark.skipif(not have_runtime_tools(), reason="tools not built")
@pytest.mark.parametrize("tool,first_line", [
    ("moe-opt", "MoE-MLIR version {v}"),
    ("moe-compile", "MoE-MLIR version {v}"),
    ("moe-run", "moe-run (MoE-MLIR) {v}"),
    ("moe-checkpoint-inspect", "moe-checkpoint-inspect (MoE-MLIR) {v}"),
])
def test_tools_report_the_version(tool, first_line) -> None:
    result = subprocess.run([_tool(tool), "--version"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].strip() == first_line.format(
        v=VERSION)


@pytest.mark.skipif(not have_runtime_tools(), reason="runtime not built")
def test_c_api_version() -> None:
    from moe_mlir import runtime
    assert runtime.runtime_version() == VERSION


@pytest.mark.skipif(moe_opt() is None, reason="moe-opt not built")
def test_manifest_producer() -> None:
    source = ("func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {\n"
              "  return %x : tensor<?x4xf32>\n}\n")
    result = subprocess.run([moe_opt(), "--moe-export-entries"],
                            input=source, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert f'\\22producer\\22:\\22moe-mlir {VERSION}\\22' in result.stdout
