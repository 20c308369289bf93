"""``/usr/bin/python3 -m moe_mlir`` and the ``moe-mlir`` command: see
:mod:`moe_mlir.cli`."""

import sys


def run() -> int:
    """Runs the command line; an interpreter without numpy (on Debian, the
    first python3 on PATH is often not Debian's) gets one line, not a
    traceback."""
    try:
        import numpy  # noqa: F401  (the package's one dependency)
    except ImportError:
        sys.stderr.write(
            f"moe_mlir: error: numpy is not installed for {sys.executable}; "
            "run Debian's /usr/bin/python3 (apt install python3-numpy) or a "
            "venv made with --system-site-packages\n")
        return 1
    from .cli import main
    return main()


if __name__ == "__main__":
    sys.exit(run())
