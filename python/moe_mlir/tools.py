"""Find and call the project's built tools: ``moe-compile``, ``moe-run``,
and the runtime library ``libMoERuntime.so``.

Where they are looked for, first match wins:

1. ``$MOE_TOOLS_DIR`` (a directory holding the executables) and
   ``$MOE_RUNTIME_LIBRARY`` (the library's path);
2. ``$MOE_BUILD_DIR/bin`` and ``$MOE_BUILD_DIR/lib``;
3. ``build/bin`` and ``build/lib`` of the source tree this package sits in
   (``python/moe_mlir`` in a checkout);
4. ``PATH`` for the executables; for the library, ``../lib`` next to a
   ``moe-run`` found on ``PATH``.

Failures raise :class:`ToolError` with one line: the tool's own message
(``moe-run: error: ...``) or what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Sequence

__all__ = [
    "RUNTIME_LIBRARY",
    "ToolError",
    "compile_layer",
    "find_runtime_library",
    "find_tool",
    "run_layer",
]

RUNTIME_LIBRARY = "libMoERuntime.so"
"""The file name of the runtime's shared library."""

_SOURCE_BUILD = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "build")


class ToolError(RuntimeError):
    """A tool that is missing or failed (one-line message)."""


def _build_dirs() -> list[str]:
    dirs = []
    if os.environ.get("MOE_BUILD_DIR"):
        dirs.append(os.environ["MOE_BUILD_DIR"])
    dirs.append(_SOURCE_BUILD)
    return dirs


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_tool(name: str) -> str:
    """The path of the built tool ``name`` (``moe-compile``, ``moe-run``)."""
    candidates = []
    if os.environ.get("MOE_TOOLS_DIR"):
        candidates.append(os.path.join(os.environ["MOE_TOOLS_DIR"], name))
    candidates += [os.path.join(d, "bin", name) for d in _build_dirs()]
    for candidate in candidates:
        if _executable(candidate):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise ToolError(f"{name} not found: build the project (utils/dev.sh "
                    "build) or set MOE_TOOLS_DIR or MOE_BUILD_DIR")


def find_runtime_library() -> str:
    """The path of ``libMoERuntime.so``."""
    if os.environ.get("MOE_RUNTIME_LIBRARY"):
        path = os.environ["MOE_RUNTIME_LIBRARY"]
        if not os.path.isfile(path):
            raise ToolError(f"MOE_RUNTIME_LIBRARY={path}: no such file")
        return path
    candidates = [os.path.join(d, "lib", RUNTIME_LIBRARY)
                  for d in _build_dirs()]
    if os.environ.get("MOE_TOOLS_DIR"):
        candidates.insert(0, os.path.join(os.environ["MOE_TOOLS_DIR"],
                                          os.pardir, "lib", RUNTIME_LIBRARY))
    runner = shutil.which("moe-run")
    if runner:
        candidates.append(os.path.join(os.path.dirname(runner), os.pardir,
                                       "lib", RUNTIME_LIBRARY))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    raise ToolError(f"{RUNTIME_LIBRARY} not found: build the project "
                    "(utils/dev.sh build) or set MOE_RUNTIME_LIBRARY")


def _call(command: Sequence[str]) -> str:
    """Runs a tool; its stdout, or :class:`ToolError` with its message."""
    done = subprocess.run(list(command), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else (
            f"{os.path.basename(command[0])} exited with {done.returncode}")
        raise ToolError(message)
    return done.stdout


def compile_layer(source: str | os.PathLike, output: str | os.PathLike, *,
                  mcpu: str | None = None, emit: str = "so",
                  row_align: int | None = None, target: str = "cpu",
                  pipeline_options: str | None = None) -> None:
    """``moe-compile SOURCE --target TARGET -o OUTPUT`` (with the options);
    ``target`` is ``cpu`` or ``cuda`` (kernels for an NVIDIA GPU, host code
    for a portable x86-64 CPU)."""
    if target not in ("cpu", "cuda"):
        raise ToolError(f"unknown target '{target}' (expected cpu or cuda)")
    command = [find_tool("moe-compile"), os.fspath(source), "--target", target,
               "-o", os.fspath(output), f"--emit={emit}"]
    if pipeline_options:
        command.append(f"--pipeline-options={pipeline_options}")
    if mcpu:
        command.append(f"--mcpu={mcpu}")
    if row_align is not None:
        command.append(f"--row-align={row_align}")
    _call(command)


def run_layer(module: str | os.PathLike, weights: str | os.PathLike,
              inputs: Sequence[str | os.PathLike],
              output: str | os.PathLike | Sequence[str | os.PathLike],
              *, entry: str | None = None, threads: int | None = None,
              bench: int | None = None, device: int | None = None) -> str:
    """``moe-run MODULE --weights W --input X... --output Y...``; its stdout
    (the ``--bench`` JSON line when asked). ``output`` is one path, or one
    per result of the entry (the layer's output, then its statistics)."""
    command = [find_tool("moe-run"), os.fspath(module), "--weights",
               os.fspath(weights)]
    for path in inputs:
        command += ["--input", os.fspath(path)]
    outputs = [output] if isinstance(output, (str, os.PathLike)) else output
    for path in outputs:
        command += ["--output", os.fspath(path)]
    if entry:
        command += ["--entry", entry]
    if threads is not None:
        command += ["--threads", str(threads)]
    if bench is not None:
        command += ["--bench", str(bench)]
    if device is not None:
        command += ["--device", str(device)]
    return _call(command)
