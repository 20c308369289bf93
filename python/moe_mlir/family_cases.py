"""Random Hugging Face-style checkpoints of the MoE families, for tests.

:func:`make_case` builds a small checkpoint of one family (docs/Importing.md):
a ``config.json`` dictionary, the MoE block of one layer (through the
preset of :mod:`moe_mlir.emit`, so names and layouts are the importer's),
and unrelated tensors the layer must ignore (embeddings, attention, norms,
a dense MLP or another layer's experts). Weights are drawn so that the
outputs are well conditioned (router logits and expert pre-activations of
order one); with ``storage = "bf16"`` or ``"f16"`` they are rounded to that
type and the case holds the rounded values, i.e. the weights as stored.

:meth:`FamilyCase.sample_inputs` draws tokens away from top-k and group
boundaries (docs/Semantics.md, tolerances) and, when the case has a ``dead_expert``, that
no token routes to; :meth:`FamilyCase.reference` is the float64 output of
:func:`moe_mlir.layer.layer`; :meth:`FamilyCase.write` writes the checkpoint
(one file or shards) and ``config.json``.

Defaults (E not always a power of two):

=============  ==  ==  =====  ===  ================================
family         E   K   H      I    also
=============  ==  ==  =====  ===  ================================
mixtral        6   2   32     48   expert 4 receives no token
qwen2_moe      10  4   32     24   shared expert 40, sigmoid gate
qwen3_moe      8   2   48     32   renormalized
deepseek_v3    12  4   32     16   4 groups keep 2, bias, scale 2.5,
                                   2 shared; expert 7 never selected
deepseek_v2    10  3   32     16   5 groups keep 3 (max), scale 16
=============  ==  ==  =====  ===  ================================
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import checkpoints, float8, safetensors_io
from . import families
from .emit import SCALES, LayerSpec
from .hf_import import block_scaled
from .gating import near_tie_tokens
from .layer import layer as layer_reference
from .layer import route
from .testdata import resample_near_ties, round_to_bf16

__all__ = [
    "FAMILIES",
    "FamilyCase",
    "STORAGES",
    "load_case",
    "make_case",
    "max_error",
    "tolerance",
]

STORAGES = ("f32", "bf16", "f16", "fp8")
"""Storage dtypes of the generated checkpoints (IR spelling). ``fp8``: the
layer's projection weights (routed and shared experts) in F8_E4M3 with
DeepSeek-V3 block scales (blocks of :data:`FP8_BLOCK`, which divide none of
the test sizes), every other tensor bf16."""

FP8_BLOCK = [12, 20]
"""``quantization_config.weight_block_size`` of the generated FP8 cases."""

_COMMON = {"vocab_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "hidden_act": "silu",
           "rms_norm_eps": 1e-6, "tie_word_embeddings": False}

FAMILIES: dict[str, dict[str, Any]] = {
    "mixtral": {"model_type": "mixtral", "architectures":
                ["MixtralForCausalLM"], "hidden_size": 32,
                "intermediate_size": 48, "num_local_experts": 6,
                "num_experts_per_tok": 2},
    "qwen2_moe": {"model_type": "qwen2_moe", "architectures":
                  ["Qwen2MoeForCausalLM"], "hidden_size": 32,
                  "intermediate_size": 64, "moe_intermediate_size": 24,
                  "num_experts": 10, "num_experts_per_tok": 4,
                  "shared_expert_intermediate_size": 40,
                  "norm_topk_prob": False, "decoder_sparse_step": 1,
                  "mlp_only_layers": [0]},
    "qwen3_moe": {"model_type": "qwen3_moe", "architectures":
                  ["Qwen3MoeForCausalLM"], "hidden_size": 48,
                  "intermediate_size": 96, "moe_intermediate_size": 32,
                  "num_experts": 8, "num_experts_per_tok": 2,
                  "norm_topk_prob": True, "decoder_sparse_step": 1,
                  "mlp_only_layers": []},
    "deepseek_v3": {"model_type": "deepseek_v3", "architectures":
                    ["DeepseekV3ForCausalLM"], "hidden_size": 32,
                    "intermediate_size": 64, "moe_intermediate_size": 16,
                    "n_routed_experts": 12, "num_experts_per_tok": 4,
                    "n_group": 4, "topk_group": 2,
                    "routed_scaling_factor": 2.5, "norm_topk_prob": True,
                    "n_shared_experts": 2, "scoring_func": "sigmoid",
                    "topk_method": "noaux_tc", "first_k_dense_replace": 1,
                    "moe_layer_freq": 1},
    "deepseek_v2": {"model_type": "deepseek_v2", "architectures":
                    ["DeepseekV2ForCausalLM"], "hidden_size": 32,
                    "intermediate_size": 64, "moe_intermediate_size": 16,
                    "n_routed_experts": 10, "num_experts_per_tok": 3,
                    "n_group": 5, "topk_group": 3,
                    "routed_scaling_factor": 16.0, "norm_topk_prob": False,
                    "n_shared_experts": 1, "scoring_func": "softmax",
                    "topk_method": "group_limited_greedy",
                    "first_k_dense_replace": 1, "moe_layer_freq": 1},
}
"""The ``config.json`` of each family's test model (without the common
keys); every case uses layer 1, a MoE block."""

# Which expert no token reaches: mixtral by the choice of inputs, DeepSeek-V3
# by a score correction bias of -1 (sigmoid scores are in (0, 1)).
_DEAD_EXPERT = {"mixtral": 4, "deepseek_v3": 7}


def tolerance(storage: str) -> float:
    """docs/Semantics.md, tolerances: ``max|y - ref| <= tolerance * max|ref|``.

    The reference uses the weights as stored (bf16/f16 decoded exactly, FP8
    bytes times their block scales). f32 and f16 weights are multiplied in
    f32 (f32 bound). bf16 and FP8 expert weights are multiplied by bf16
    kernels wherever the target has them (moe-compile's default on
    AVX512_BF16 CPUs): the rows they multiply are rounded to bf16, so bf16
    and FP8 storage get the bf16 bound.
    """
    return 2e-2 if storage in ("bf16", "fp8") else 1e-4


def max_error(y: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """``(max|y - ref|, max|ref|)`` (zeros for empty arrays)."""
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if y.shape != ref.shape:
        raise ValueError(f"shape {list(y.shape)} does not match the "
                         f"reference {list(ref.shape)}")
    if ref.size == 0:
        return 0.0, 0.0
    return float(np.max(np.abs(y - ref))), float(np.max(np.abs(ref)))


@dataclass(eq=False)
class FamilyCase:
    """A generated checkpoint of one family and what a layer makes of it.

    Attributes:
        family: the ``model_type``.
        storage: ``f32``, ``bf16`` or ``f16``: how weights are stored (the
            score correction bias is F32 either way).
        config: the ``config.json`` dictionary.
        layer: the MoE layer the spec reads.
        spec: the layer, from :func:`moe_mlir.families.layer_spec`.
        tensors: every checkpoint tensor (float32 values as stored).
        storage_dtypes: safetensors dtype of each tensor.
        dead_expert: an expert no sampled token routes to, or ``None``.
        seed: the seed of the weights and of :meth:`sample_inputs`.
    """

    family: str
    storage: str
    config: dict[str, Any]
    layer: int
    spec: LayerSpec
    tensors: dict[str, np.ndarray]
    storage_dtypes: dict[str, str]
    dead_expert: int | None = None
    seed: int = 0
    _operands: dict[str, np.ndarray] = field(default_factory=dict,
                                             repr=False)

    @property
    def tolerance(self) -> float:
        """The relative tolerance of this storage dtype."""
        return tolerance(self.storage)

    @property
    def operands(self) -> dict[str, np.ndarray]:
        """The ``moe.layer`` operands (float64), as the runtime binds them."""
        if not self._operands:
            self._operands = {
                name: value.astype(np.float64) for name, value in
                self.spec.collect(self.tensors).items()}
        return self._operands

    def reference(self, x: np.ndarray) -> np.ndarray:
        """The float64 layer output for ``x [T, H]``."""
        y, _ = layer_reference(x, self.operands, self.spec.routing,
                               self.spec.activation,
                               weight_inputs=self.spec.weight_inputs,
                               swiglu=self.spec.swiglu,
                               zero_experts=self.spec.zero_experts)
        return y

    def tokens_per_expert(self, x: np.ndarray) -> np.ndarray:
        """``[E]`` how many tokens of ``x`` route to each expert."""
        return route(x, self.operands, self.spec.routing) \
            .stats["tokens_per_expert"]

    def flagged(self, x: np.ndarray) -> np.ndarray:
        """``[T]`` tokens near a routing tie or routed to the dead expert."""
        x = np.asarray(x, dtype=np.float64)
        ops = self.operands
        bad = near_tie_tokens(x @ ops["router"].T, self.spec.routing,
                              bias=ops.get("score_bias"))
        if self.dead_expert is not None and len(x):
            ids = route(x, ops, self.spec.routing).ids
            bad |= (ids == self.dead_expert).any(axis=1)
        return bad

    def sample_inputs(self, tokens: int, seed: int | None = None
                      ) -> np.ndarray:
        """``[tokens, H]`` float32 inputs, standard normal, resampled away
        from near ties and the dead expert. Deterministic per seed."""
        rng = np.random.default_rng(
            [self.seed if seed is None else seed, tokens, 1])
        hidden = self.spec.hidden

        def sample(count: int) -> np.ndarray:
            return rng.standard_normal((count, hidden)).astype(np.float32)

        return resample_near_ties(sample(tokens), self.flagged, sample,
                                  max_rounds=200)

    def write(self, directory: str | os.PathLike, shards: int = 1) -> None:
        """Write the checkpoint and ``config.json`` into ``directory``.

        ``shards = 1`` writes ``model.safetensors``; more writes that many
        shards and ``model.safetensors.index.json``.
        """
        os.makedirs(directory, exist_ok=True)
        if shards == 1:
            safetensors_io.save_file(
                os.path.join(directory, safetensors_io.SINGLE_NAME),
                self.tensors, self.storage_dtypes, metadata={"format": "pt"})
        else:
            safetensors_io.save_sharded(directory, self.tensors,
                                        self.storage_dtypes, shards,
                                        metadata={"format": "pt"})
        with open(os.path.join(directory, "config.json"), "w",
                  encoding="utf-8") as out:
            json.dump(self.config, out, indent=2, sort_keys=True)
            out.write("\n")


def load_case(directory: str | os.PathLike, storage: str, layer: int = 1,
              dead_expert: int | None = None, seed: int = 0) -> FamilyCase:
    """A case read back from a written checkpoint directory.

    The spec comes from its ``config.json``
    (:func:`moe_mlir.families.layer_spec`) and the tensors from the stored bytes, so a reference
    computed from it uses the weights exactly as stored.
    """
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    headers = safetensors_io.read_checkpoint_headers(directory)
    spec = families.layer_spec(config, layer,
                          dtype="bf16" if storage == "fp8" else storage)
    if storage == "fp8":
        spec = _fp8_spec(spec, config, {n: h[0] for n, h in headers.items()})
    tensors = safetensors_io.load_checkpoint(directory)
    dtypes = {name: header[0] for name, header in headers.items()}
    return FamilyCase(family=config["model_type"], storage=storage,
                      config=config, layer=layer, spec=spec, tensors=tensors,
                      storage_dtypes=dtypes, dead_expert=dead_expert,
                      seed=seed)


# -- generation --------------------------------------------------------------

def _fan_in_normal(rng: np.random.Generator,
                   shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal over sqrt(fan-in): outputs of order one."""
    return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(
        np.float32)


def make_case(family: str, storage: str = "f32", seed: int = 0,
              layer: int = 1, dead_expert: bool = True,
              **config: Any) -> FamilyCase:
    """A random checkpoint of ``family`` (see :data:`FAMILIES`).

    Args:
        family: ``mixtral``, ``qwen2_moe``, ``qwen3_moe``, ``deepseek_v3``
            or ``deepseek_v2``.
        storage: ``f32``, ``bf16`` or ``f16``.
        seed: the seed of every weight.
        layer: the MoE layer (must be sparse in the config).
        dead_expert: keep the family's expert that no token reaches (mixtral
            and deepseek_v3); ``False`` lets every expert be used.
        config: ``config.json`` overrides (sizes, routing keys).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family '{family}' (expected one of "
                         f"{', '.join(FAMILIES)})")
    if storage not in STORAGES:
        raise ValueError(f"unknown storage '{storage}' (expected one of "
                         f"{', '.join(STORAGES)})")
    full = {**_COMMON, **FAMILIES[family], **config}
    full["num_hidden_layers"] = max(full["num_hidden_layers"], layer + 1)
    fp8 = storage == "fp8"
    if fp8:
        full.setdefault("quantization_config", {
            "quant_method": "fp8", "fmt": "e4m3",
            "activation_scheme": "dynamic", "weight_block_size": FP8_BLOCK})
        storage_of_others = "bf16"
    else:
        storage_of_others = storage
    spec = families.layer_spec(full, layer, dtype=storage_of_others)
    rng = np.random.default_rng([seed, sorted(FAMILIES).index(family)])
    dead = _DEAD_EXPERT.get(family) if dead_expert else None
    if dead is not None and dead >= spec.num_experts:
        dead = spec.num_experts - 1

    # The whole model, as make-checkpoint writes it: the tensors around the
    # MoE block (embeddings, attention, norms, other layers) must be ignored.
    shapes = {name: shape for name, (shape, _) in
              checkpoints.tensor_shapes(full, storage_of_others).items()}
    # FP8: the layer's projection weights (routed and shared experts).
    projections = {name for op in SCALES.values() if fp8 and op in spec.weights
                   for name in spec.tensor_names(op)}
    tensors: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    bias_name = spec.weights.get("score_bias")
    for name in sorted(shapes, key=_natural_key):
        shape = shapes[name]
        if name == bias_name:
            bias = (0.1 * rng.standard_normal(shape)).astype(np.float32)
            if dead is not None:
                bias[dead] = -1.0
            tensors[name], dtypes[name] = bias, "F32"
            continue
        value = (_fan_in_normal(rng, shape) if len(shape) > 1 else
                 (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
        if name in projections:
            block = full["quantization_config"]["weight_block_size"]
            bits, scale = float8.quantize_blocks(value, tuple(block))
            tensors[name], dtypes[name] = bits, "F8_E4M3"
            tensors[name + "_scale_inv"] = scale
            dtypes[name + "_scale_inv"] = "F32"
            continue
        if storage_of_others == "bf16":
            value = round_to_bf16(value)
        elif storage_of_others == "f16":
            value = value.astype(np.float16).astype(np.float32)
        tensors[name], dtypes[name] = value, storage_of_others.upper()
    if fp8:
        spec = _fp8_spec(spec, full, dtypes)
    return FamilyCase(family=family, storage=storage, config=full,
                      layer=layer, spec=spec, tensors=tensors,
                      storage_dtypes=dtypes, dead_expert=dead, seed=seed)


def _fp8_spec(spec: LayerSpec, config: Mapping[str, Any],
              dtypes: Mapping[str, str]) -> LayerSpec:
    """``spec`` with the block scales and f8e4m3fn dtypes of the FP8
    projection weights (as moe_mlir import-hf reads them)."""
    spec = block_scaled(spec, config, dtypes.get)
    types = dict(spec.dtypes)
    for scale, weight in SCALES.items():
        if scale in spec.weights:
            types[weight], types[scale] = "f8e4m3fn", "f32"
    return dataclasses.replace(spec, dtypes=types)


def _natural_key(name: str) -> list[Any]:
    """Sort ``layers.10`` after ``layers.9`` (the order of HF checkpoints)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in name.split(".")]
