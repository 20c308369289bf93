"""``python3 -m moe_mlir``: see :mod:`moe_mlir.cli`."""

import sys

from .cli import main

sys.exit(main())
