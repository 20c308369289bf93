"""Hugging Face-format checkpoints of any supported family, with seeded
weights: ``/usr/bin/python3 -m moe_mlir make-checkpoint``.

For a user without a download: :func:`hf_config` writes the ``config.json``
that ``transformers`` would write for a model of the family with the given
sizes (its keys sorted, indented by 2), :func:`tensor_shapes` lists every
tensor of that model (embeddings, attention, norms, the MoE blocks and the
dense MLPs where the config puts them) in the family's names and
``[out, in]`` layouts, and :func:`write_checkpoint` writes them with weights
drawn from ``N(0, 1/fan_in)`` (norms near 1), so that a layer's output is of
order one. ``fp8`` writes DeepSeek-V3's FP8 layout: the MoE layers' expert
projections as ``F8_E4M3`` with ``<name>_scale_inv`` block scales
(``quantization_config.weight_block_size`` [128, 128]), the rest bf16. The importer (:mod:`moe_mlir.hf_import`) reads the result like a
downloaded checkpoint.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

import numpy as np

from . import float8, safetensors_io
from . import families
from .emit import SCALES
from .seq2seq import is_sparse_block, num_blocks, spec_from_config
from .testdata import round_to_bf16

__all__ = [
    "DENSE_FAMILIES",
    "FAMILIES",
    "MOE_FAMILIES",
    "hf_config",
    "tensor_shapes",
    "write_checkpoint",
]

MOE_FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2",
                "deepseek_v3", "switch_transformers", "nllb_moe")
"""The MoE families :func:`hf_config` knows (the importer's)."""

DENSE_FAMILIES = ("llama", "mistral", "qwen2")
"""Dense families (:data:`moe_mlir.dense.DENSE_FAMILIES`), which ``moefy``
makes MoE."""

FAMILIES = MOE_FAMILIES + DENSE_FAMILIES
"""Every family :func:`hf_config` knows."""

_TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16",
                 "fp8": "bfloat16"}

FP8_BLOCK = (128, 128)
"""``weight_block_size`` of the FP8 checkpoints written here (DeepSeek-V3's
and Qwen3-FP8's)."""

_TRANSFORMERS_VERSION = "4.46.0"


def _decoder_common(hidden: int, layers: int, vocab: int,
                    dtype: str) -> dict[str, Any]:
    heads = max(1, hidden // 128)
    return {"hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 4) if heads % 4 == 0
            else heads,
            "vocab_size": vocab, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "hidden_act": "silu", "initializer_range": 0.02,
            "tie_word_embeddings": False, "use_cache": True,
            "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
            "torch_dtype": _TORCH_DTYPES[dtype],
            "transformers_version": _TRANSFORMERS_VERSION}


def _groups(experts: int, top_k: int, min_per_group: int) -> tuple[int, int]:
    """DeepSeek's n_group and topk_group for E experts and K: the most
    groups (up to 8) that divide E with at least `min_per_group` experts
    each (DeepSeek-V3 scores a group by its two best) and still leave K
    experts selectable."""
    for groups in range(min(8, experts), 0, -1):
        if experts % groups or experts // groups < min_per_group:
            continue
        keep = max(1, groups // 2)
        while keep < groups and keep * (experts // groups) < top_k:
            keep += 1
        return groups, keep
    return 1, 1


def hf_config(family: str, *, hidden: int, intermediate: int,
              experts: int = 0, top_k: int = 0, layers: int,
              dtype: str = "f32", vocab: int = 1024) -> dict[str, Any]:
    """The ``config.json`` of a ``family`` model: hidden size ``hidden``,
    expert intermediate size ``intermediate``, ``experts`` routed experts
    with ``top_k`` per token, ``layers`` decoder layers (each encoder and
    decoder stack for the encoder-decoder families). A dense family takes
    no experts: ``intermediate`` is its MLP's.

    Raises:
        ValueError: an unknown family or sizes it cannot have.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family '{family}' (expected one of "
                         f"{', '.join(FAMILIES)})")
    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"unknown dtype '{dtype}' (expected f32, bf16, f16 "
                         "or fp8)")
    if dtype == "fp8" and family in ("switch_transformers", "nllb_moe"):
        raise ValueError(f"FP8 checkpoints are written for the decoder "
                         f"families, not {family}")
    dense = family in DENSE_FAMILIES
    if dense and (experts or top_k):
        raise ValueError(f"{family} is a dense family: it takes no --experts "
                         "or --top-k")
    sizes = [("hidden", hidden), ("intermediate", intermediate),
             ("layers", layers), ("vocab", vocab)]
    if not dense:
        sizes += [("experts", experts), ("top-k", top_k)]
    for name, value in sizes:
        if value < 1:
            raise ValueError(f"--{name} must be at least 1, got {value}")
    if dense and dtype == "fp8":
        raise ValueError("FP8 checkpoints are written for the MoE families")
    if top_k > experts:
        raise ValueError(f"--top-k {top_k} exceeds --experts {experts}")
    if family == "switch_transformers" and top_k != 1:
        raise ValueError("switch_transformers routes top-1: --top-k must "
                         "be 1")
    if family == "nllb_moe" and top_k != 2:
        raise ValueError("nllb_moe routes top-2: --top-k must be 2")

    if family == "switch_transformers":
        return {"model_type": family, "architectures":
                ["SwitchTransformersForConditionalGeneration"],
                "d_model": hidden, "d_ff": intermediate, "d_kv": 64,
                "num_heads": max(1, hidden // 64), "num_experts": experts,
                "expert_capacity": 64, "num_layers": layers,
                "num_decoder_layers": layers,
                "num_sparse_encoder_layers": max(1, layers // 2),
                "num_sparse_decoder_layers": max(1, layers // 2),
                "dense_act_fn": "relu", "router_bias": False,
                "router_jitter_noise": 0.01, "router_dtype": "float32",
                "vocab_size": vocab, "feed_forward_proj": "relu",
                "is_encoder_decoder": True, "tie_word_embeddings": False,
                "decoder_start_token_id": 0, "pad_token_id": 0,
                "eos_token_id": 1, "torch_dtype": _TORCH_DTYPES[dtype],
                "transformers_version": _TRANSFORMERS_VERSION}
    if family == "nllb_moe":
        # transformers' spelling.
        return {"model_type": "nllb-moe", "architectures":
                ["NllbMoeForConditionalGeneration"], "d_model": hidden,
                "encoder_ffn_dim": intermediate,
                "decoder_ffn_dim": intermediate, "encoder_layers": layers,
                "decoder_layers": layers,
                "encoder_attention_heads": max(1, hidden // 64),
                "decoder_attention_heads": max(1, hidden // 64),
                "num_experts": experts, "encoder_sparse_step": 2,
                "decoder_sparse_step": 2,
                "moe_eval_capacity_token_fraction": 1.0,
                "expert_capacity": 64, "batch_prioritized_routing": False,
                "normalize_router_prob_before_dropping": False,
                "second_expert_policy": "all", "moe_token_dropout": 0.2,
                "router_bias": False, "router_dtype": "float32",
                "activation_function": "relu", "vocab_size": vocab,
                "max_position_embeddings": 1024, "is_encoder_decoder": True,
                "scale_embedding": True, "pad_token_id": 1,
                "bos_token_id": 0, "eos_token_id": 2,
                "decoder_start_token_id": 2,
                "torch_dtype": _TORCH_DTYPES[dtype],
                "transformers_version": _TRANSFORMERS_VERSION}

    config = _decoder_common(hidden, layers, vocab, dtype)
    if dense:
        architecture = {"llama": "LlamaForCausalLM",
                        "mistral": "MistralForCausalLM",
                        "qwen2": "Qwen2ForCausalLM"}[family]
        config.update({"model_type": family, "architectures": [architecture],
                       "intermediate_size": intermediate})
        if family == "llama":
            config.update({"attention_bias": False, "mlp_bias": False})
        elif family == "mistral":
            config["sliding_window"] = None
        else:
            config.update({"use_sliding_window": False,
                           "sliding_window": None})
        return config
    if family == "mixtral":
        config.update({"model_type": family,
                       "architectures": ["MixtralForCausalLM"],
                       "intermediate_size": intermediate,
                       "num_local_experts": experts,
                       "num_experts_per_tok": top_k,
                       "output_router_logits": False,
                       "router_aux_loss_coef": 0.02, "sliding_window": None})
    elif family in ("qwen2_moe", "qwen3_moe"):
        config.update({"model_type": family, "architectures": [
            "Qwen2MoeForCausalLM" if family == "qwen2_moe"
            else "Qwen3MoeForCausalLM"],
            "intermediate_size": 4 * intermediate,
            "moe_intermediate_size": intermediate,
            "num_experts": experts, "num_experts_per_tok": top_k,
            "norm_topk_prob": family == "qwen3_moe",
            "decoder_sparse_step": 1, "mlp_only_layers": [],
            "output_router_logits": False, "router_aux_loss_coef": 0.001})
        if family == "qwen2_moe":
            config["shared_expert_intermediate_size"] = 4 * intermediate
    else:
        v3 = family == "deepseek_v3"
        groups, keep = _groups(experts, top_k, 2 if v3 else 1)
        config.update({"model_type": family, "architectures": [
            "DeepseekV3ForCausalLM" if v3 else "DeepseekV2ForCausalLM"],
            "intermediate_size": 4 * intermediate,
            "moe_intermediate_size": intermediate,
            "n_routed_experts": experts, "num_experts_per_tok": top_k,
            "n_shared_experts": 1, "n_group": groups, "topk_group": keep,
            "first_k_dense_replace": 1 if layers > 1 else 0,
            "moe_layer_freq": 1, "norm_topk_prob": v3,
            "routed_scaling_factor": 2.5 if v3 else 1.0,
            "scoring_func": "sigmoid" if v3 else "softmax",
            "topk_method": "noaux_tc" if v3 else "group_limited_greedy",
            "aux_loss_alpha": 0.001, "seq_aux": True})
    if dtype == "fp8":
        config["quantization_config"] = {
            "quant_method": "fp8", "fmt": "e4m3",
            "activation_scheme": "dynamic",
            "weight_block_size": list(FP8_BLOCK)}
    return config


def _attention(prefix: str, hidden: int, heads: int,
               kv_heads: int) -> dict[str, tuple[int, ...]]:
    head_dim = hidden // heads
    return {f"{prefix}.q_proj.weight": (heads * head_dim, hidden),
            f"{prefix}.k_proj.weight": (kv_heads * head_dim, hidden),
            f"{prefix}.v_proj.weight": (kv_heads * head_dim, hidden),
            f"{prefix}.o_proj.weight": (hidden, heads * head_dim)}


def _decoder_shapes(config: Mapping[str, Any], dtype: str
                    ) -> dict[str, tuple[tuple[int, ...], str]]:
    hidden, vocab = config["hidden_size"], config["vocab_size"]
    fp8 = dtype == "fp8"
    if fp8:
        dtype = "bf16"
    storage = dtype.upper()
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        "model.embed_tokens.weight": ((vocab, hidden), storage),
        "model.norm.weight": ((hidden,), storage),
        "lm_head.weight": ((vocab, hidden), storage)}
    for n in range(config["num_hidden_layers"]):
        base = f"model.layers.{n}"
        shapes[f"{base}.input_layernorm.weight"] = ((hidden,), storage)
        shapes[f"{base}.post_attention_layernorm.weight"] = ((hidden,),
                                                             storage)
        for name, shape in _attention(
                f"{base}.self_attn", hidden, config["num_attention_heads"],
                config["num_key_value_heads"]).items():
            shapes[name] = (shape, storage)
            # Qwen2's q, k and v projections have biases.
            if config["model_type"] == "qwen2" and "o_proj" not in name:
                shapes[name.replace(".weight", ".bias")] = ((shape[0],),
                                                            storage)
        if config["model_type"] not in DENSE_FAMILIES and \
                families.is_moe_layer(config, n):
            spec = families.layer_spec(config, n, dtype=dtype)
            bias = spec.weights.get("score_bias")
            quantized = _fp8_names(spec) if fp8 else set()
            block = config.get("quantization_config", {}).get(
                "weight_block_size", FP8_BLOCK)
            for name, (shape, _) in spec.checkpoint_tensors().items():
                shapes[name] = (shape, "F32" if name == bias else storage)
                if name in quantized:
                    shapes[name] = (shape, "F8_E4M3")
                    shapes[name + "_scale_inv"] = (
                        (-(-shape[0] // block[0]), -(-shape[1] // block[1])),
                        "F32")
            continue
        inter = config["intermediate_size"]
        for proj, shape in (("gate_proj", (inter, hidden)),
                            ("up_proj", (inter, hidden)),
                            ("down_proj", (hidden, inter))):
            shapes[f"{base}.mlp.{proj}.weight"] = (shape, storage)
    return shapes


def _fp8_names(spec) -> set[str]:
    """The checkpoint names of the weights an FP8 checkpoint stores as
    ``F8_E4M3`` with block scales: ``spec``'s expert projections, routed and
    shared (the router, norms, embeddings and attention stay bf16 here)."""
    return {name for operand in SCALES.values() if operand in spec.weights
            for name in spec.tensor_names(operand)}


def _seq2seq_shapes(config: Mapping[str, Any], dtype: str
                    ) -> dict[str, tuple[tuple[int, ...], str]]:
    d, storage = config["d_model"], dtype.upper()
    switch = config["model_type"] == "switch_transformers"
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        ("shared.weight" if switch else "model.shared.weight"):
            ((config["vocab_size"], d), storage),
        "lm_head.weight": ((config["vocab_size"], d), storage)}
    for stack in ("encoder", "decoder"):
        for i in range(num_blocks(config, stack)):
            if switch:
                base = f"{stack}.block.{i}.layer"
                for proj in "qkvo":
                    shapes[f"{base}.0.SelfAttention.{proj}.weight"] = (
                        (d, d), storage)
                shapes[f"{base}.0.layer_norm.weight"] = ((d,), storage)
                mlp = f"{base}.{1 if stack == 'encoder' else 2}.mlp"
                dense = {f"{mlp}.wi.weight": (config["d_ff"], d),
                         f"{mlp}.wo.weight": (d, config["d_ff"])}
            else:
                base = f"model.{stack}.layers.{i}"
                for name, shape in _attention(f"{base}.self_attn", d, 1,
                                              1).items():
                    shapes[name.replace("o_proj", "out_proj")] = (shape,
                                                                  storage)
                shapes[f"{base}.self_attn_layer_norm.weight"] = ((d,),
                                                                 storage)
                ffn = config[f"{stack}_ffn_dim"]
                dense = {f"{base}.ffn.fc1.weight": (ffn, d),
                         f"{base}.ffn.fc1.bias": (ffn,),
                         f"{base}.ffn.fc2.weight": (d, ffn),
                         f"{base}.ffn.fc2.bias": (d,)}
            if is_sparse_block(config, stack, i):
                spec = spec_from_config(config, stack, i, dtype=dtype)
                for name, (shape, _) in spec.checkpoint_tensors().items():
                    shapes[name] = (shape, storage)
            else:
                for name, shape in dense.items():
                    shapes[name] = (shape, storage)
    return shapes


def tensor_shapes(config: Mapping[str, Any], dtype: str = "f32"
                  ) -> dict[str, tuple[tuple[int, ...], str]]:
    """``name -> (shape, safetensors dtype)`` of every tensor of the model
    ``config`` describes; a DeepSeek-V3 score correction bias stays F32, as
    released checkpoints store it."""
    if config["model_type"] in ("switch_transformers", "nllb-moe"):
        if dtype == "fp8":
            raise ValueError("FP8 checkpoints are written for the decoder "
                             "families only")
        return _seq2seq_shapes(config, dtype)
    return _decoder_shapes(config, dtype)


def write_checkpoint(directory: str | os.PathLike, config: Mapping[str, Any],
                     dtype: str = "f32", seed: int = 0,
                     progress: Callable[[str], None] | None = None
                     ) -> dict[str, tuple[tuple[int, ...], str]]:
    """Writes ``config.json`` and ``model.safetensors`` into ``directory``
    with seeded weights; returns what :func:`tensor_shapes` lists."""
    shapes = tensor_shapes(config, dtype)
    # Every tensor is generated in memory before the file is written: refuse
    # what cannot fit (one line, not a MemoryError traceback).
    total_bytes = sum(
        int(np.prod(shape, dtype=np.float64)) * 4 for shape, _ in
        shapes.values())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if total_bytes > memory // 2:
        raise ValueError(f"the model has {total_bytes / 1e9:.1f} GB of f32 "
                         f"weights, more than half of this machine's "
                         f"{memory / 1e9:.1f} GB of memory; choose smaller "
                         "sizes")
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    total = sum(int(np.prod(shape)) for shape, _ in shapes.values())
    done = 0
    for name, (shape, storage) in shapes.items():
        if name.endswith("_scale_inv"):
            continue  # with its weight
        if len(shape) > 1:
            value = (rng.standard_normal(shape, dtype=np.float32)
                     / np.float32(np.sqrt(shape[-1])))
        elif name.endswith("e_score_correction_bias") or name.endswith(
                ".bias"):
            value = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            value = (1.0 + 0.1 * rng.standard_normal(shape)).astype(
                np.float32)
        if storage == "BF16":
            value = round_to_bf16(value)
        if storage == "F8_E4M3":
            block = tuple(config["quantization_config"]["weight_block_size"])
            value, scale = float8.quantize_blocks(value, block)
            tensors[name + "_scale_inv"] = scale
            dtypes[name + "_scale_inv"] = "F32"
        tensors[name], dtypes[name] = value, storage
        done += int(np.prod(shape))
        if progress and len(shape) > 1:
            progress(f"generated {done / max(total, 1):.0%} of "
                     f"{total / 1e6:.1f}M parameters")
    os.makedirs(directory, exist_ok=True)
    if progress:
        progress(f"writing {os.path.join(directory, 'model.safetensors')}")
    safetensors_io.save_file(
        os.path.join(directory, safetensors_io.SINGLE_NAME), tensors, dtypes,
        metadata={"format": "pt"})
    with open(os.path.join(directory, "config.json"), "w",
              encoding="utf-8") as out:
        out.write(json.dumps(dict(config), indent=2, sort_keys=True) + "\n")
    return shapes
