"""Finds the project's built tools for tests that cross-check against them."""

import os
import shutil

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def moe_opt() -> str | None:
    """``$MOE_OPT``, ``build/bin/moe-opt`` or ``moe-opt`` on PATH, or None."""
    candidate = os.environ.get("MOE_OPT",
                               os.path.join(_ROOT, "build", "bin", "moe-opt"))
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("moe-opt")
