"""Python side of the MoE-MLIR project.

- :mod:`moe_mlir.routing`: the ``#moe.routing<...>`` attribute as a frozen
  dataclass (validation, printing and parsing identical to the C++ dialect).
- :mod:`moe_mlir.reference`: the float64 numpy reference of every routing
  scheme and of the whole ``moe.layer`` block (docs/Routing.md,
  docs/Semantics.md), plus helpers for test data (bf16 conversion, near ties).
- :mod:`moe_mlir.safetensors_io`: safetensors files and sharded checkpoints
  (write with an explicit F32/BF16/F16 dtype per tensor, read back).
- :mod:`moe_mlir.emit`: :class:`~moe_mlir.emit.LayerSpec` and the MLIR text
  of a ``moe.layer`` entry point whose arguments bind checkpoint tensors
  (``moe.weight``, docs/CompiledModules.md).
- :mod:`moe_mlir.families`: one module per Hugging Face MoE family
  (Mixtral, Qwen2/3-MoE, Qwen3-Next, Qwen3-VL-MoE, Qwen3-Omni-MoE,
  DeepSeek-V2/V3, GLM-4.5 MoE, GLM-4.5V, dots.llm1, ERNIE 4.5 MoE, OLMoE,
  FlexOlmo, MiniMax, Jamba, Hunyuan MoE, Granite-MoE (shared, hybrid),
  JetMoE, DBRX, Llama 4, gpt-oss, Phi-3.5-MoE, LongCat-Flash):
  ``config.json`` keys and their
  defaults, MoE layers, tensor names, routing.
- :mod:`moe_mlir.views`: weight views, operands read from fused or
  transposed checkpoint tensors.
- :mod:`moe_mlir.family_cases`: random checkpoints of those families with
  inputs and float64 references (integration tests, ``utils/demo.py``).
- :mod:`moe_mlir.hf_import`: the MoE block of one layer of a Hugging Face
  checkpoint directory as a module (``config.json`` + safetensors headers).
- :mod:`moe_mlir.torch_import`: the same from a PyTorch block as
  ``transformers`` v4 or v5 holds it (with its model's configuration, any
  family above), or from a decoder layer of a whole model, plus its
  weights (needs torch).
- :mod:`moe_mlir.tools`: the built ``moe-compile`` / ``moe-run``;
  :mod:`moe_mlir.runtime`: compiled layers run in-process on numpy arrays
  (ctypes over the runtime's C API).
- :mod:`moe_mlir.cli`: ``python3 -m moe_mlir import-hf | compile | run |
  reference``.

Standard library and numpy only (torch for the PyTorch importer);
submodules are imported on demand. Tests: ``/usr/bin/python3 -m pytest
python/tests -q`` from the repository root.
"""

import os as _os


def _read_version() -> str:
    # VERSION is the project's one version, read by CMake as well.
    with open(_os.path.join(_os.path.dirname(__file__), "VERSION"),
              encoding="utf-8") as file:
        return file.read().strip()


__version__ = _read_version()
"""The project's version (``VERSION`` beside this file; the C++ tools,
``moe_version()`` and the manifest of compiled modules report the same)."""
