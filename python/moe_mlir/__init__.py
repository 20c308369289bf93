"""Python side of the MoE-MLIR project.

- :mod:`moe_mlir.routing`: the ``#moe.routing<...>`` attribute as a frozen
  dataclass (validation, printing and parsing identical to the C++ dialect).
- :mod:`moe_mlir.reference`: the float64 numpy reference of every routing
  scheme and of the whole ``moe.layer`` block (docs/Routing.md,
  SEMANTICS.md), plus helpers for test data (bf16 conversion, near ties).
- :mod:`moe_mlir.safetensors_io`: safetensors files and sharded checkpoints
  (write with an explicit F32/BF16/F16 dtype per tensor, read back).
- :mod:`moe_mlir.emit`: :class:`~moe_mlir.emit.LayerSpec` and the MLIR text
  of a ``moe.layer`` entry point whose arguments bind checkpoint tensors
  (``moe.weight``, docs/CompiledModules.md); Hugging Face family presets
  (Mixtral, Qwen2/3-MoE, DeepSeek-V2/V3) and ``config.json`` mapping.
- :mod:`moe_mlir.families`: random checkpoints of those families with
  inputs and float64 references (integration tests, ``utils/demo.py``).

Standard library and numpy only; submodules are imported on demand. Tests:
``/usr/bin/python3 -m pytest python/tests -q`` from the repository root.
"""
