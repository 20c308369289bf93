"""Finds the project's built tools for tests that cross-check against them."""

import os
import shutil
import subprocess
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def moe_opt() -> str | None:
    """``$MOE_OPT``, ``build/bin/moe-opt`` or ``moe-opt`` on PATH, or None."""
    candidate = os.environ.get("MOE_OPT",
                               os.path.join(_ROOT, "build", "bin", "moe-opt"))
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("moe-opt")


def have_runtime_tools() -> bool:
    """Whether moe-compile, moe-run and the runtime library are built."""
    from moe_mlir import tools
    try:
        tools.find_tool("moe-compile")
        tools.find_tool("moe-run")
        tools.find_runtime_library()
    except tools.ToolError:
        return False
    return True


def moe_mlir(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    """``python3 -m moe_mlir ARGS`` from this checkout, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "moe_mlir", *args], capture_output=True,
        text=True, timeout=600, cwd=cwd, check=False,
        env={**os.environ, "PYTHONPATH": os.path.join(_ROOT, "python")})


def one_line_error(done: subprocess.CompletedProcess, command: str) -> str:
    """The single stderr line of a failed ``moe_mlir COMMAND`` (asserted)."""
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    prefix = f"moe_mlir {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix):]
