"""The package installs with pip and its command line runs from the install.

Built from a copy of python/ so the checkout stays clean; skipped where pip
or setuptools is missing (utils/dev.sh installs both).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(importlib.util.find_spec("pip") is None
                    or importlib.util.find_spec("setuptools") is None,
                    reason="pip or setuptools is not installed")
def test_pip_install(tmp_path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(PYTHON_DIR, name), source)
    shutil.copytree(os.path.join(PYTHON_DIR, "moe_mlir"), source / "moe_mlir",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", str(target),
         str(source)], capture_output=True, text=True, timeout=600,
        check=False)
    assert done.returncode == 0, done.stderr
    assert os.access(target / "bin" / "moe-mlir", os.X_OK)
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-m", "moe_mlir", "--version"],
                          capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), check=False)
    assert done.returncode == 0 and done.stdout.startswith("moe_mlir 0."), \
        done.stderr
    done = subprocess.run([sys.executable, "-c", "import moe_mlir, sys; "
                           "sys.stdout.write(moe_mlir.__file__)"],
                          capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), check=False)
    assert done.stdout.startswith(str(target))
