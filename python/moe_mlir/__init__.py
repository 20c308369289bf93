"""Python side of the MoE-MLIR project.

- :mod:`moe_mlir.routing`: the ``#moe.routing<...>`` attribute as a frozen
  dataclass (validation, printing and parsing identical to the C++ dialect).
- :mod:`moe_mlir.reference`: the float64 numpy reference of every routing
  scheme and of the whole ``moe.layer`` block (docs/Routing.md,
  SEMANTICS.md), plus helpers for test data (bf16 conversion, near ties).

Standard library and numpy only; submodules are imported on demand. Tests:
``/usr/bin/python3 -m pytest python/tests -q`` from the repository root.
"""
