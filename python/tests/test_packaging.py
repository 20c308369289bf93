"""The README's install commands, run exactly as written: a virtual
environment that sees Debian's packages, pip install of python/, and the
installed command line.

Runs in a copy of the checkout's python/ so the checkout stays clean;
skipped where pip or setuptools is missing (utils/dev.sh installs both).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(os.path.dirname(PYTHON_DIR), "README.md")
with open(os.path.join(PYTHON_DIR, "moe_mlir", "VERSION"),
          encoding="utf-8") as _file:
    VERSION = _file.read().strip()


def readme_install_commands() -> list[str]:
    """The lines of the sh block under "### Install the Python package"."""
    with open(README, encoding="utf-8") as file:
        text = file.read()
    match = re.search(r"^### Install the Python package\n.*?```sh\n(.*?)```",
                      text, re.S | re.M)
    assert match, "README has no install block"
    return [line for line in match.group(1).splitlines() if line.strip()]


@pytest.mark.skipif(importlib.util.find_spec("pip") is None
                    or importlib.util.find_spec("setuptools") is None
                    or not os.path.exists("/usr/bin/python3"),
                    reason="pip, setuptools or /usr/bin/python3 missing")
def test_readme_install(tmp_path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copytree(PYTHON_DIR, checkout / "python",
                    ignore=shutil.ignore_patterns(
                        "__pycache__", "build", "*.egg-info", ".pytest_cache",
                        "tests"))
    commands = readme_install_commands()
    assert commands[-1] == ".venv/bin/moe-mlir --version"
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=checkout,
                              capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    assert done.stdout.strip() == f"moe_mlir {VERSION}"
    # The package runs from the environment, not from the checkout.
    done = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-c",
         "import moe_mlir, sys; sys.stdout.write(moe_mlir.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.stdout.startswith(str(checkout / ".venv")), done.stderr


def test_no_numpy_is_one_line() -> None:
    """python3 -m moe_mlir from an interpreter without numpy: one line."""
    done = subprocess.run(
        [sys.executable, "-c",
         "import runpy, sys; sys.modules['numpy'] = None; "
         "sys.argv = ['moe_mlir', '--help']; "
         "runpy.run_module('moe_mlir', run_name='__main__')"],
        cwd=PYTHON_DIR, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("moe_mlir: error: numpy is not installed")
