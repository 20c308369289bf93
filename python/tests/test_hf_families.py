"""Families with SwiGLU experts (OLMoE, FlexOlmo, MiniMax, Jamba, GLM-4.5
MoE, GLM-4.5V, dots.llm1, Qwen3-Next, Hunyuan MoE, ERNIE 4.5 MoE,
Qwen3-Omni-MoE's thinker; fused: Granite-MoE and its shared and hybrid
variants, Qwen3-VL-MoE): checkpoints named
as ``transformers`` names them (with unrelated attention, norm, Mamba and
dense-MLP tensors around the block), ``config.json`` as the configuration
class writes it and a variant without the keys that have defaults;
imported, compiled, run on T = 1, 37, 300 tokens in f32 and bf16, and
compared with the family's forward written here from its ``transformers``
modeling code (docs/families/): softmax or sigmoid scores in float32, the
selection bias and groups, top-k, the family's renormalization and scale,
``down(silu(gate x) * up x)`` summed with the weights (fused experts
computed as their modeling code does: ``chunk(2)`` of ``x @ W^T`` or of
``x @ gate_up_proj``), the shared expert (gated or not), on the stored
weights in float64. Multimodal configs nest the language model's keys
(``text_config``, ``thinker_config.text_config``). The MoE-layer decision
is checked against the family's rule. Needs the built tools.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import built_tools
from moe_mlir import families, safetensors_io
from moe_mlir.family_cases import max_error, tolerance
from moe_mlir.gating import near_tie_tokens
from moe_mlir.hf_import import ModelImportError, import_hf, moe_layers
from moe_mlir.testdata import resample_near_ties, round_to_bf16

H, I, E, K = 48, 40, 6, 2
LAYERS = 4


@dataclass(frozen=True)
class Family:
    """How one family's checkpoint looks and routes."""

    config: dict[str, Any]          # config.json, as transformers writes it
    defaulted: tuple[str, ...]      # keys dropped in the defaults variant
    block: str                      # the MoE block of layer {n}
    router: str
    experts: tuple[str, str, str]   # gate, up, down under experts.{e}
    renormalize: bool
    moe_layers: tuple[int, ...]
    extra: dict[str, tuple[int, ...]]   # unrelated tensors of layer {n}
    sigmoid: bool = False           # scores: sigmoid (else softmax)
    bias: bool = False              # gate.e_score_correction_bias
    groups: tuple[int, int] = (1, 1)    # n_group, topk_group
    scale: float = 1.0
    shared: tuple[str, int, str | None] | None = None  # prefix, width, gate
    top_k: tuple[int, ...] = (K,) * LAYERS
    layout: str = "per_expert"      # or "granite", "qwen3_vl" (fused)
    bias_name: str = "gate.e_score_correction_bias"
    bias_shape: tuple[int, ...] = (E,)
    text: tuple[str, ...] = ()      # keys of the nested language config
    layers: str = "model.layers"    # the decoder layers' name prefix
    output_bias: bool = False       # mlp.bias [H] added after the combine
    scale_inputs: bool = False      # the weight scales the expert's input
    router_bias: bool = False       # router.bias [E] added to the logits
    sparsemixer: float | None = None    # Phi-3.5's jitter: its routing
    zero_experts: int = 0           # identity experts after the E
    bias_as_stored: bool = False    # the correction bias in the storage
                                    # dtype (dots.llm1's BF16), else F32

    def text_config(self, config: dict[str, Any]) -> dict[str, Any]:
        for key in self.text:
            config = config[key]
        return config

    def trimmed(self) -> dict[str, Any]:
        """config.json without the keys that have defaults."""
        config = json.loads(json.dumps(self.config))
        text = self.text_config(config)
        for key in self.defaulted:
            text.pop(key, None)
        return config


def _nested(keys: tuple[str, ...], top: dict[str, Any],
            text: dict[str, Any]) -> dict[str, Any]:
    """``top`` with ``text`` nested under ``keys``."""
    config = dict(top)
    inner = config
    for key in keys[:-1]:
        inner[key] = dict(inner.get(key, {}))
        inner = inner[key]
    inner[keys[-1]] = text
    return config


def _attention(n: int, layers: str = "model.layers"
               ) -> dict[str, tuple[int, ...]]:
    base = f"{layers}.{n}.self_attn"
    return {f"{base}.q_proj.weight": (H, H), f"{base}.k_proj.weight": (H, H),
            f"{base}.v_proj.weight": (H, H), f"{base}.o_proj.weight": (H, H)}


_COMMON = {"hidden_size": H, "num_hidden_layers": LAYERS,
           "num_attention_heads": 4, "num_key_value_heads": 4,
           "vocab_size": 64, "rms_norm_eps": 1e-5, "torch_dtype": "float32",
           "transformers_version": "4.57.0", "tie_word_embeddings": False}

FAMILIES = {
    "olmoe": Family(
        config={**_COMMON, "model_type": "olmoe",
                "architectures": ["OlmoeForCausalLM"],
                "intermediate_size": I, "num_experts": E,
                "num_experts_per_tok": K, "norm_topk_prob": False,
                "hidden_act": "silu", "router_aux_loss_coef": 0.01,
                "output_router_logits": False, "clip_qkv": None},
        defaulted=("norm_topk_prob", "hidden_act"),
        block="model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=False,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.self_attn.q_norm.weight": (H,),
               "model.layers.{n}.self_attn.k_norm.weight": (H,),
               "model.layers.{n}.input_layernorm.weight": (H,),
               "model.layers.{n}.post_attention_layernorm.weight": (H,)}),
    "flex_olmo": Family(
        config={**_COMMON, "model_type": "flex_olmo",
                "architectures": ["FlexOlmoForCausalLM"],
                "intermediate_size": I, "num_experts": E,
                "num_experts_per_tok": K, "norm_topk_prob": True,
                "hidden_act": "silu", "router_aux_loss_coef": 0.01,
                "output_router_logits": False},
        defaulted=("hidden_act",),
        block="model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.post_attention_layernorm.weight": (H,),
               "model.layers.{n}.post_feedforward_layernorm.weight": (H,)}),
    "minimax": Family(
        config={**_COMMON, "model_type": "minimax",
                "architectures": ["MiniMaxForCausalLM"],
                "intermediate_size": I, "num_local_experts": E,
                "num_experts_per_tok": K, "hidden_act": "silu",
                "router_jitter_noise": 0.0,
                "layer_types": ["full_attention", "linear_attention"] * 2,
                "full_attn_alpha_factor": 1.0, "linear_attn_alpha_factor": 1.0,
                "mlp_alpha_factor": 1.0, "mlp_beta_factor": 1.0},
        defaulted=("hidden_act",),
        block="model.layers.{n}.block_sparse_moe", router="gate",
        experts=("w1", "w3", "w2"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.self_attn.qkv_proj.weight": (3 * H, H),
               "model.layers.{n}.self_attn.output_gate.weight": (H, H),
               "model.layers.{n}.input_layernorm.weight": (H,)}),
    "jamba": Family(
        config={**_COMMON, "model_type": "jamba",
                "architectures": ["JambaForCausalLM"],
                "intermediate_size": I, "num_experts": E,
                "num_experts_per_tok": K, "hidden_act": "silu",
                "expert_layer_period": 2, "expert_layer_offset": 1,
                "attn_layer_period": 8, "attn_layer_offset": 4,
                "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2},
        defaulted=("hidden_act", "expert_layer_period",
                   "expert_layer_offset"),
        block="model.layers.{n}.feed_forward", router="router",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=False,
        moe_layers=(1, 3),
        extra={"model.layers.{n}.mamba.in_proj.weight": (4 * H, H),
               "model.layers.{n}.mamba.out_proj.weight": (H, 2 * H),
               "model.layers.{n}.input_layernorm.weight": (H,),
               "model.layers.{n}.pre_ff_layernorm.weight": (H,)}),
    "glm4_moe": Family(
        config={**_COMMON, "model_type": "glm4_moe",
                "architectures": ["Glm4MoeForCausalLM"],
                "intermediate_size": 3 * I, "moe_intermediate_size": I,
                "n_routed_experts": E, "num_experts_per_tok": K,
                "n_shared_experts": 2, "n_group": 2, "topk_group": 1,
                "routed_scaling_factor": 2.5, "norm_topk_prob": True,
                "first_k_dense_replace": 1, "hidden_act": "silu",
                "partial_rotary_factor": 0.5, "use_qk_norm": False},
        defaulted=("hidden_act", "norm_topk_prob"),
        block="model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(1, 2, 3),
        extra={"model.layers.{n}.input_layernorm.weight": (H,),
               "model.layers.{n}.post_attention_layernorm.weight": (H,)},
        sigmoid=True, bias=True, groups=(2, 1), scale=2.5,
        shared=("shared_experts", 2 * I, None)),
    "dots1": Family(
        config={**_COMMON, "model_type": "dots1",
                "architectures": ["Dots1ForCausalLM"],
                "intermediate_size": 3 * I, "moe_intermediate_size": I,
                "n_routed_experts": E, "num_experts_per_tok": K,
                "n_shared_experts": 1, "n_group": 1, "topk_group": 1,
                "routed_scaling_factor": 1.0, "norm_topk_prob": False,
                "first_k_dense_replace": 1, "hidden_act": "silu"},
        defaulted=("hidden_act", "norm_topk_prob", "n_group", "topk_group",
                   "routed_scaling_factor"),
        block="model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=False,
        moe_layers=(1, 2, 3),
        extra={"model.layers.{n}.self_attn.q_norm.weight": (H // 4,),
               "model.layers.{n}.self_attn.k_norm.weight": (H // 4,)},
        sigmoid=True, bias=True, shared=("shared_experts", I, None),
        bias_as_stored=True),
    "qwen3_next": Family(
        config={**_COMMON, "model_type": "qwen3_next",
                "architectures": ["Qwen3NextForCausalLM"],
                "intermediate_size": 3 * I, "moe_intermediate_size": I,
                "num_experts": E, "num_experts_per_tok": K,
                "shared_expert_intermediate_size": 24,
                "norm_topk_prob": True, "decoder_sparse_step": 1,
                "mlp_only_layers": [0], "hidden_act": "silu",
                "full_attention_interval": 4,
                "linear_num_value_heads": 4, "linear_num_key_heads": 2},
        defaulted=("hidden_act", "norm_topk_prob", "decoder_sparse_step"),
        block="model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(1, 2, 3),
        extra={"model.layers.{n}.linear_attn.in_proj_qkvz.weight": (H, H),
               "model.layers.{n}.linear_attn.out_proj.weight": (H, H)},
        shared=("shared_expert", 24, "shared_expert_gate")),
    "hunyuan_v1_moe": Family(
        config={**_COMMON, "model_type": "hunyuan_v1_moe",
                "architectures": ["HunYuanMoEV1ForCausalLM"],
                "intermediate_size": I, "num_experts": [E] * LAYERS,
                "moe_topk": [1, 2, 1, 2], "head_dim": H // 4,
                "hidden_act": "silu", "moe_intermediate_size": [I] * LAYERS,
                "num_shared_expert": [1] * LAYERS, "use_qk_norm": True},
        defaulted=("hidden_act",),
        block="model.layers.{n}.mlp", router="gate.wg",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.self_attn.query_layernorm.weight": (H // 4,),
               "model.layers.{n}.self_attn.key_layernorm.weight": (H // 4,)},
        shared=("shared_mlp", I, None), top_k=(1, 2, 1, 2)),
    "ernie4_5_moe": Family(
        config={**_COMMON, "model_type": "ernie4_5_moe",
                "architectures": ["Ernie4_5_MoeForCausalLM"],
                "intermediate_size": 3 * I, "moe_intermediate_size": I,
                "moe_num_experts": E, "moe_k": K,
                "moe_num_shared_experts": 1, "moe_layer_start_index": 1,
                "moe_layer_end_index": -1, "moe_layer_interval": 1,
                "moe_norm_min": 1e-12, "use_bias": False,
                "hidden_act": "silu"},
        defaulted=("hidden_act", "moe_norm_min", "use_bias",
                   "moe_layer_interval", "moe_layer_start_index",
                   "moe_layer_end_index"),
        block="model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(1, 2, 3),
        extra={"model.layers.{n}.input_layernorm.weight": (H,)},
        bias=True, bias_name="moe_statics.e_score_correction_bias",
        bias_shape=(1, E), shared=("shared_experts", I, None)),
    "glm4v_moe": Family(
        config=_nested(("text_config",), {
            "model_type": "glm4v_moe",
            "architectures": ["Glm4vMoeForConditionalGeneration"],
            "vision_config": {"model_type": "glm4v_moe", "depth": 2},
            "transformers_version": "4.57.0"}, {
            **_COMMON, "model_type": "glm4v_moe_text",
            "intermediate_size": 3 * I, "moe_intermediate_size": I,
            "n_routed_experts": E, "num_experts_per_tok": K,
            "n_shared_experts": 1, "n_group": 2, "topk_group": 1,
            "routed_scaling_factor": 1.5, "norm_topk_prob": True,
            "first_k_dense_replace": 2, "hidden_act": "silu"}),
        defaulted=("hidden_act", "norm_topk_prob"),
        block="model.language_model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(2, 3),
        extra={"model.visual.blocks.0.mlp.gate_proj.weight": (H, H)},
        sigmoid=True, bias=True, groups=(2, 1), scale=1.5,
        shared=("shared_experts", I, None), text=("text_config",),
        layers="model.language_model.layers"),
    "qwen3_omni_moe": Family(
        config=_nested(("thinker_config", "text_config"), {
            "model_type": "qwen3_omni_moe",
            "architectures": ["Qwen3OmniMoeForConditionalGeneration"],
            "talker_config": {"text_config": {"num_experts": 2 * E}},
            "transformers_version": "4.57.0"}, {
            **_COMMON, "model_type": "qwen3_omni_moe_text",
            "intermediate_size": 3 * I, "moe_intermediate_size": I,
            "num_experts": E, "num_experts_per_tok": K,
            "norm_topk_prob": True, "decoder_sparse_step": 2,
            "mlp_only_layers": [], "hidden_act": "silu"}),
        defaulted=("hidden_act", "norm_topk_prob", "mlp_only_layers"),
        block="thinker.model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(1, 3),
        extra={"talker.model.layers.{n}.mlp.gate.weight": (2 * E, H)},
        text=("thinker_config", "text_config"),
        layers="thinker.model.layers"),
    "qwen3_vl_moe": Family(
        config=_nested(("text_config",), {
            "model_type": "qwen3_vl_moe",
            "architectures": ["Qwen3VLMoeForConditionalGeneration"],
            "vision_config": {"model_type": "qwen3_vl_moe", "depth": 2},
            "transformers_version": "4.57.0"}, {
            **_COMMON, "model_type": "qwen3_vl_moe_text",
            "intermediate_size": 3 * I, "moe_intermediate_size": I,
            "num_experts": E, "num_experts_per_tok": K,
            "decoder_sparse_step": 1, "mlp_only_layers": [0],
            "norm_topk_prob": False, "hidden_act": "silu"}),
        defaulted=("hidden_act", "decoder_sparse_step"),
        block="model.language_model.layers.{n}.mlp", router="gate",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(1, 2, 3),
        extra={"model.visual.blocks.0.mlp.linear_fc1.weight": (H, H)},
        layout="qwen3_vl", text=("text_config",),
        layers="model.language_model.layers"),
    "granitemoe": Family(
        config={**_COMMON, "model_type": "granitemoe",
                "architectures": ["GraniteMoeForCausalLM"],
                "intermediate_size": I, "num_local_experts": E,
                "num_experts_per_tok": K, "hidden_act": "silu",
                "embedding_multiplier": 12.0, "residual_multiplier": 0.22,
                "attention_multiplier": 0.015625, "logits_scaling": 6.0},
        defaulted=("hidden_act",),
        block="model.layers.{n}.block_sparse_moe", router="router.layer",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.input_layernorm.weight": (H,)},
        layout="granite"),
    "granitemoeshared": Family(
        config={**_COMMON, "model_type": "granitemoeshared",
                "architectures": ["GraniteMoeSharedForCausalLM"],
                "intermediate_size": I, "num_local_experts": E,
                "num_experts_per_tok": K, "hidden_act": "silu",
                "shared_intermediate_size": 24},
        defaulted=("hidden_act",),
        block="model.layers.{n}.block_sparse_moe", router="router.layer",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.post_attention_layernorm.weight": (H,)},
        layout="granite", shared=("shared_mlp", 24, None)),
    "granitemoehybrid": Family(
        config={**_COMMON, "model_type": "granitemoehybrid",
                "architectures": ["GraniteMoeHybridForCausalLM"],
                "intermediate_size": I, "num_local_experts": E,
                "num_experts_per_tok": K, "hidden_act": "silu",
                "shared_intermediate_size": 32,
                "layer_types": ["mamba", "attention", "mamba", "mamba"],
                "mamba_n_heads": 4, "mamba_d_state": 16},
        defaulted=("hidden_act",),
        block="model.layers.{n}.block_sparse_moe", router="router.layer",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.mamba.in_proj.weight": (4 * H, H),
               "model.layers.{n}.mamba.out_proj.weight": (H, 2 * H)},
        layout="granite", shared=("shared_mlp", 32, None)),
    "jetmoe": Family(
        config={**_COMMON, "model_type": "jetmoe",
                "architectures": ["JetMoeForCausalLM"],
                "intermediate_size": I, "num_local_experts": E,
                "num_experts_per_tok": K, "activation_function": "silu",
                "kv_channels": 12, "aux_loss_coef": 0.01},
        defaulted=("activation_function",),
        block="model.layers.{n}.mlp", router="router.layer",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.self_attention.kv_proj.weight": (2 * H, H),
               "model.layers.{n}.self_attention.experts.bias": (H,)},
        layout="granite", output_bias=True),
    "dbrx": Family(
        config={"model_type": "dbrx", "architectures": ["DbrxForCausalLM"],
                "d_model": H, "n_heads": 4, "n_layers": LAYERS,
                "max_seq_len": 64, "vocab_size": 64,
                "torch_dtype": "float32", "transformers_version": "4.57.0",
                "tie_word_embeddings": False,
                "attn_config": {"kv_n_heads": 2, "clip_qkv": 8,
                                "rope_theta": 500000.0},
                "ffn_config": {"ffn_hidden_size": I, "moe_num_experts": E,
                               "moe_top_k": K, "moe_jitter_eps": 0,
                               "moe_loss_weight": 0.05,
                               "moe_normalize_expert_weights": 1.0,
                               "ffn_act_fn": {"name": "silu"}}},
        defaulted=("moe_normalize_expert_weights", "ffn_act_fn"),
        block="transformer.blocks.{n}.ffn", router="router.layer",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"transformer.blocks.{n}.norm_attn_norm.attn.Wqkv.weight":
               (2 * H, H),
               "transformer.blocks.{n}.norm_attn_norm.norm_1.weight": (H,)},
        layout="dbrx", text=("ffn_config",), layers="transformer.blocks"),
    "llama4": Family(
        config=_nested(("text_config",), {
            "model_type": "llama4",
            "architectures": ["Llama4ForConditionalGeneration"],
            "vision_config": {"model_type": "llama4_vision_model"},
            "image_token_index": 200092,
            "transformers_version": "4.57.0"}, {
            **_COMMON, "model_type": "llama4_text", "head_dim": H // 4,
            "intermediate_size": I, "intermediate_size_mlp": 3 * I,
            "num_local_experts": E, "num_experts_per_tok": K,
            "interleave_moe_layer_step": 2, "moe_layers": None,
            "hidden_act": "silu", "use_qk_norm": True,
            "no_rope_layer_interval": 4, "attention_chunk_size": 8192}),
        defaulted=("hidden_act", "moe_layers"),
        block="language_model.model.layers.{n}.feed_forward",
        router="router", experts=("gate_proj", "up_proj", "down_proj"),
        renormalize=False, moe_layers=(1, 3),
        extra={"vision_model.model.layers.0.mlp.fc1.weight": (H, H)},
        sigmoid=True, shared=("shared_expert", I, None), layout="qwen3_vl",
        text=("text_config",), layers="language_model.model.layers",
        scale_inputs=True),
    "llama4_text": Family(
        config={**_COMMON, "model_type": "llama4_text",
                "architectures": ["Llama4ForCausalLM"], "head_dim": H // 4,
                "intermediate_size": I, "intermediate_size_mlp": 3 * I,
                "num_local_experts": E, "num_experts_per_tok": 1,
                "moe_layers": [0, 2], "interleave_moe_layer_step": 1,
                "hidden_act": "silu"},
        defaulted=("hidden_act", "interleave_moe_layer_step"),
        block="model.layers.{n}.feed_forward", router="router",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=False,
        moe_layers=(0, 2), extra={}, sigmoid=True,
        shared=("shared_expert", I, None), layout="qwen3_vl",
        scale_inputs=True, top_k=(1,) * LAYERS),
    "gpt_oss": Family(
        config={**_COMMON, "model_type": "gpt_oss",
                "architectures": ["GptOssForCausalLM"], "head_dim": H // 4,
                "intermediate_size": I, "num_local_experts": E,
                "num_experts_per_tok": K, "swiglu_limit": 7.0,
                "experts_per_token": K, "sliding_window": 128,
                "layer_types": ["sliding_attention", "full_attention"] * 2},
        defaulted=("swiglu_limit",),
        block="model.layers.{n}.mlp", router="router",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=True,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.self_attn.sinks": (4,),
               "model.layers.{n}.self_attn.q_proj.bias": (H,)},
        layout="gpt_oss", router_bias=True),
    "phimoe": Family(
        config={**_COMMON, "model_type": "phimoe",
                "architectures": ["PhimoeForCausalLM"],
                "intermediate_size": I, "num_local_experts": E,
                "num_experts_per_tok": 2, "router_jitter_noise": 0.3,
                "input_jitter_noise": 0.01, "hidden_act": "silu",
                "lm_head_bias": True, "attention_bias": True},
        defaulted=("hidden_act",),
        block="model.layers.{n}.block_sparse_moe", router="gate",
        experts=("w1", "w3", "w2"), renormalize=False,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.self_attn.q_proj.bias": (H,),
               "model.layers.{n}.input_layernorm.bias": (H,)},
        sparsemixer=0.3),
    "longcat_flash": Family(
        config={**_COMMON, "model_type": "longcat_flash",
                "architectures": ["LongcatFlashForCausalLM"],
                "num_layers": LAYERS, "num_hidden_layers": 2 * LAYERS,
                "ffn_hidden_size": 3 * I, "expert_ffn_hidden_size": I,
                "n_routed_experts": E, "zero_expert_num": 3, "moe_topk": 3,
                "routed_scaling_factor": 6.0, "zero_expert_type": "identity",
                "q_lora_rank": 16, "kv_lora_rank": 8, "hidden_act": "silu"},
        defaulted=("hidden_act",),
        block="model.layers.{n}.mlp", router="router.classifier",
        experts=("gate_proj", "up_proj", "down_proj"), renormalize=False,
        moe_layers=(0, 1, 2, 3),
        extra={"model.layers.{n}.mlps.0.gate_proj.weight": (3 * I, H),
               "model.layers.{n}.input_layernorm.1.weight": (H,)},
        bias=True, bias_name="router.e_score_correction_bias",
        bias_shape=(E + 3,), scale=6.0, zero_experts=3,
        top_k=(3,) * LAYERS, bias_as_stored=True),
}


def _silu(v: np.ndarray) -> np.ndarray:
    return v / (1.0 + np.exp(-v))


def _swiglu(weights: dict[str, np.ndarray], prefix: str, names,
            x: np.ndarray) -> np.ndarray:
    gate, up, down = (weights[f"{prefix}.{name}.weight"] for name in names)
    return (_silu(x @ gate.T) * (x @ up.T)) @ down.T


def _chunked_glu(fused: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``act(chunk 0) * chunk 1`` of ``fused`` (``[T, 2I]``) times
    ``out``, as the fused modeling code computes an expert."""
    gate, up = np.split(fused, 2, axis=-1)
    return (_silu(gate) * up) @ out


def _expert(family: Family, weights: dict[str, np.ndarray], block: str,
            e: int, x: np.ndarray) -> np.ndarray:
    """Routed expert ``e`` on ``x``, from the stored layout."""
    if family.layout == "granite":   # input_linear [E,2I,H], x @ W^T
        return _chunked_glu(x @ weights[f"{block}.input_linear.weight"][e].T,
                            weights[f"{block}.output_linear.weight"][e].T)
    if family.layout == "dbrx":      # w1, v1, w2 [E*I, H]; h @ w2_e
        w1, v1, w2 = (weights[f"{block}.experts.mlp.{name}"].reshape(E, I, H)
                      for name in ("w1", "v1", "w2"))
        return (_silu(x @ w1[e].T) * (x @ v1[e].T)) @ w2[e]
    if family.layout == "gpt_oss_mxfp4":  # dequantized as transformers does
        experts = f"{block}.experts"
        weights = {**weights,
                   f"{experts}.gate_up_proj": _dequantize_mxfp4(
                       weights[f"{experts}.gate_up_proj_blocks"],
                       weights[f"{experts}.gate_up_proj_scales"]),
                   f"{experts}.down_proj": _dequantize_mxfp4(
                       weights[f"{experts}.down_proj_blocks"],
                       weights[f"{experts}.down_proj_scales"])}
        family = dataclasses.replace(family, layout="gpt_oss")
    if family.layout == "gpt_oss":   # interleaved, biased, clamped
        z = x @ weights[f"{block}.experts.gate_up_proj"][e] + \
            weights[f"{block}.experts.gate_up_proj_bias"][e]
        gate = np.minimum(z[:, ::2], 7.0)
        up = np.clip(z[:, 1::2], -7.0, 7.0)
        hidden = (up + 1.0) * gate * (1.0 / (1.0 + np.exp(-1.702 * gate)))
        return hidden @ weights[f"{block}.experts.down_proj"][e] + \
            weights[f"{block}.experts.down_proj_bias"][e]
    if family.layout == "qwen3_vl":  # gate_up_proj [E,H,2I], x @ W
        return _chunked_glu(x @ weights[f"{block}.experts.gate_up_proj"][e],
                            weights[f"{block}.experts.down_proj"][e])
    return _swiglu(weights, f"{block}.experts.{e}", family.experts, x)


def _forward(family: Family, weights: dict[str, np.ndarray], n: int,
             x: np.ndarray) -> np.ndarray:
    """The family's MoE block in float64, as its modeling code computes
    it: softmax or sigmoid scores of the router logits, the selection bias
    and the group limit (the experts of dropped groups out of the top-k),
    top-k (ties to the lower index), renormalized or not, scaled, SwiGLU
    experts weighted and summed, plus the shared expert."""
    block = family.block.format(n=n)
    k = family.top_k[n]
    x = x.astype(np.float64)
    width = E // family.groups[0]
    logits = x @ weights[f"{block}.{family.router}.weight"].T
    if family.router_bias:
        logits += weights[f"{block}.{family.router}.bias"]
    if family.sigmoid:
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        scores = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
    selection = scores.copy()
    if family.bias:
        selection += weights[f"{block}.{family.bias_name}"].reshape(-1)
    groups, keep = family.groups
    if groups > 1:
        grouped = selection.reshape(len(x), groups, -1)
        group_scores = -np.sort(-grouped, axis=2)[:, :, :2].sum(axis=2)
        kept = np.argsort(-group_scores, axis=1, kind="stable")[:, :keep]
        mask = np.zeros_like(group_scores, dtype=bool)
        np.put_along_axis(mask, kept, True, axis=1)
        selection = np.where(np.repeat(mask, width, axis=1),
                             selection, -np.inf)
    top = np.argsort(-selection, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(scores, top, axis=1)
    if family.sparsemixer is not None:
        top, w = _sparsemixer(logits, family.sparsemixer)
    if family.renormalize:
        w /= w.sum(axis=1, keepdims=True) + (1e-20 if family.sigmoid else 0)
    w *= family.scale
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(k):
            if top[t, j] >= E:   # a zero (identity) expert
                out[t] += w[t, j] * x[t]
            elif family.scale_inputs:
                out[t] += _expert(family, weights, block, top[t, j],
                                  w[t, j] * x[t:t + 1])[0]
            else:
                out[t] += w[t, j] * _expert(family, weights, block,
                                            top[t, j], x[t:t + 1])[0]
    if family.shared:
        prefix, _, gate = family.shared
        if family.layout == "granite":  # beside the block, fused
            shared_mlp = f"{family.layers}.{n}.{prefix}"
            shared = _chunked_glu(
                x @ weights[f"{shared_mlp}.input_linear.weight"].T,
                weights[f"{shared_mlp}.output_linear.weight"].T)
        else:
            shared = _swiglu(weights, f"{block}.{prefix}",
                             ("gate_proj", "up_proj", "down_proj"), x)
        if gate:
            shared *= 1.0 / (1.0 + np.exp(
                -(x @ weights[f"{block}.{gate}.weight"].T)))
        out += shared
    if family.output_bias:
        out += weights[f"{block}.bias"]
    return out


def _sparsemixer(logits: np.ndarray, jitter: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """PhimoeSparseMoeBlock's routing in eval: the argmax, weighted by the
    softmax of the logits masked where ``(max - l) / max(|l|, max) > 2 *
    jitter``; then the same with the first choice at -inf."""
    top = np.zeros((len(logits), 2), dtype=np.int64)
    w = np.zeros((len(logits), 2))
    for t, row in enumerate(logits):
        scores = row.copy()
        for k in range(2):
            i = int(np.argmax(scores))
            m = scores[i]
            factor = np.maximum(np.abs(row), m)
            masked = np.where((m - row) / factor > 2 * jitter, -np.inf,
                              scores)
            probs = np.exp(masked - m)
            top[t, k], w[t, k] = i, probs[i] / probs.sum()
            scores = scores.copy()
            scores[i] = -np.inf
    return top, w


def _checkpoint(family: Family, storage: str, seed: int
                ) -> dict[str, np.ndarray]:
    """Every tensor of the model: its MoE blocks (dense MLPs elsewhere) and
    unrelated ones, in float32 holding the stored values."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {
        "model.embed_tokens.weight": rng.standard_normal((64, H)),
        "lm_head.weight": rng.standard_normal((64, H)),
        "model.norm.weight": np.ones(H)}
    def normal(shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape) / np.sqrt(shape[-1])

    for n in range(LAYERS):
        for name, shape in {**_attention(n, family.layers),
                            **family.extra}.items():
            tensors[name.format(n=n)] = rng.standard_normal(shape) * 0.1
        block = family.block.format(n=n)
        if n not in family.moe_layers:
            for proj, shape in (("gate_proj", (I, H)), ("up_proj", (I, H)),
                                ("down_proj", (H, I))):
                tensors[f"{block}.{proj}.weight"] = \
                    rng.standard_normal(shape) / np.sqrt(shape[1])
            continue
        tensors[f"{block}.{family.router}.weight"] = \
            rng.standard_normal((E + family.zero_experts, H)) * \
            (2.0 / np.sqrt(H))
        if family.bias:
            # Positive, as transformers' 0.0 group mask and the release
            # code's -inf then agree (docs/families/glm4_moe.md).
            tensors[f"{block}.{family.bias_name}"] = \
                rng.uniform(0.0, 0.1, family.bias_shape)
        if family.shared and family.layout == "granite":
            prefix, width, _ = family.shared
            shared_mlp = f"{family.layers}.{n}.{prefix}"
            tensors[f"{shared_mlp}.input_linear.weight"] = \
                normal((2 * width, H))
            tensors[f"{shared_mlp}.output_linear.weight"] = normal((H, width))
        elif family.shared:
            prefix, width, gate = family.shared
            for proj, shape in (("gate_proj", (width, H)),
                                ("up_proj", (width, H)),
                                ("down_proj", (H, width))):
                tensors[f"{block}.{prefix}.{proj}.weight"] = \
                    rng.standard_normal(shape) / np.sqrt(shape[1])
            if gate:
                tensors[f"{block}.{gate}.weight"] = \
                    rng.standard_normal((1, H)) / np.sqrt(H)
        if family.layout == "granite":
            tensors[f"{block}.input_linear.weight"] = normal((E, 2 * I, H))
            tensors[f"{block}.output_linear.weight"] = normal((E, H, I))
            if family.output_bias:
                tensors[f"{block}.bias"] = 0.1 * rng.standard_normal(H)
            continue
        if family.layout == "dbrx":
            for name in ("w1", "v1", "w2"):
                tensors[f"{block}.experts.mlp.{name}"] = \
                    rng.standard_normal((E * I, H)) / np.sqrt(
                        I if name == "w2" else H)
            continue
        if family.router_bias:
            tensors[f"{block}.{family.router}.bias"] = \
                0.5 * rng.standard_normal(E)
        if family.layout == "gpt_oss_mxfp4":
            experts = f"{block}.experts"
            for name, rows, cols in (("gate_up_proj", 2 * I, H),
                                     ("down_proj", H, I)):
                blocks, scales = _mxfp4_tensors(rng, rows, cols, cols)
                tensors[f"{experts}.{name}_blocks"] = blocks
                tensors[f"{experts}.{name}_scales"] = scales
            tensors[f"{experts}.gate_up_proj_bias"] = \
                rng.standard_normal((E, 2 * I))
            tensors[f"{experts}.down_proj_bias"] = \
                0.1 * rng.standard_normal((E, H))
            continue
        if family.layout == "gpt_oss":
            experts = f"{block}.experts"
            # Scaled so that some gate and up values pass the clamp.
            tensors[f"{experts}.gate_up_proj"] = \
                rng.standard_normal((E, H, 2 * I)) * (6.0 / np.sqrt(H))
            tensors[f"{experts}.gate_up_proj_bias"] = \
                rng.standard_normal((E, 2 * I))
            tensors[f"{experts}.down_proj"] = \
                rng.standard_normal((E, I, H)) / np.sqrt(I)
            tensors[f"{experts}.down_proj_bias"] = \
                0.1 * rng.standard_normal((E, H))
            continue
        if family.layout == "qwen3_vl":
            tensors[f"{block}.experts.gate_up_proj"] = \
                rng.standard_normal((E, H, 2 * I)) / np.sqrt(H)
            tensors[f"{block}.experts.down_proj"] = \
                rng.standard_normal((E, I, H)) / np.sqrt(I)
            continue
        for e in range(E):
            for name, shape in zip(family.experts, ((I, H), (I, H), (H, I))):
                tensors[f"{block}.experts.{e}.{name}.weight"] = \
                    rng.standard_normal(shape) / np.sqrt(shape[1])
    tensors = {k: v if v.dtype == np.uint8 else v.astype(np.float32)
               for k, v in tensors.items()}
    if storage == "bf16":
        # The correction bias stays F32, as most released checkpoints keep
        # it; MXFP4 bytes stay U8.
        tensors = {k: v if _f32_bias(family, k) or v.dtype == np.uint8
                   else round_to_bf16(v) for k, v in tensors.items()}
    return tensors


# e2m1 codes: sign, two exponent bits, one mantissa bit.
_E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
         -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def _dequantize_mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """transformers' convert_moe_packed_tensors: ``[E, R, G, 16]`` bytes
    (element 2j the low nibble) times ``2 ** (scale - 127)`` per group of
    32, as ``[E, R, G * 32]``, then transposed to ``[E, G * 32, R]``."""
    lut = np.array(_E2M1)
    low, high = lut[blocks & 0x0F], lut[blocks >> 4]
    values = np.stack([low, high], axis=-1).reshape(
        blocks.shape[:-1] + (32,))
    values = np.ldexp(values, scales.astype(np.int64)[..., None] - 127)
    e, rows = blocks.shape[:2]
    return values.reshape(e, rows, -1).transpose(0, 2, 1)


def _mxfp4_tensors(rng: np.random.Generator, rows: int, cols: int,
                   fan_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ``[E, rows, cols / 32, 16]`` blocks and their scales, the
    values of order ``1 / sqrt(fan_in)``."""
    blocks = rng.integers(0, 256, (E, rows, cols // 32, 16), dtype=np.uint8)
    exponent = 127 - int(np.ceil(np.log2(np.sqrt(fan_in)))) - 1
    scales = rng.integers(exponent - 1, exponent + 2, (E, rows, cols // 32),
                          dtype=np.uint8)
    return blocks, scales


def _f32_bias(family: Family, name: str) -> bool:
    return name.endswith("e_score_correction_bias") and \
        not family.bias_as_stored


def _write(family: Family, directory: str, config: dict[str, Any],
           tensors: dict[str, np.ndarray], storage: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w",
              encoding="utf-8") as file:
        file.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    safetensors_io.save_file(
        os.path.join(directory, "model.safetensors"), tensors,
        {name: "F32" if _f32_bias(family, name) else
         "U8" if tensors[name].dtype == np.uint8 else storage.upper()
         for name in tensors})


def _inputs(family: Family, weights: dict[str, np.ndarray], n: int,
            spec, tokens: int, seed: int) -> np.ndarray:
    """Tokens away from top-k and group ties (docs/Semantics.md)."""
    rng = np.random.default_rng(seed)
    block = family.block.format(n=n)
    router = weights[f"{block}.{family.router}.weight"]
    router_bias = weights.get(f"{block}.{family.router}.bias", 0.0)
    bias = weights.get(f"{block}.{family.bias_name}")
    if bias is not None:
        bias = bias.reshape(-1)

    def sample(count: int) -> np.ndarray:
        return rng.standard_normal((count, H)).astype(np.float32)

    def flag(x: np.ndarray) -> np.ndarray:
        return near_tie_tokens(x.astype(np.float64) @ router.T + router_bias,
                               spec.routing, bias=bias, eps=1e-3)

    return resample_near_ties(sample(tokens), flag, sample)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_moe_layers_and_defaults(name) -> None:
    family = FAMILIES[name]
    assert moe_layers(family.config) == list(family.moe_layers)
    trimmed = family.trimmed()
    assert moe_layers(trimmed) == list(family.moe_layers)
    n = family.moe_layers[0]
    assert families.layer_spec(trimmed, n) == \
        families.layer_spec(family.config, n)
    for layer in family.moe_layers:
        assert families.layer_spec(family.config, layer).routing.top_k == \
            family.top_k[layer]


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime library is "
                    "not built")
@pytest.mark.parametrize("storage", ["f32", "bf16"])
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_forward(tmp_path, name, storage) -> None:
    family = FAMILIES[name]
    tensors = _checkpoint(family, storage, seed=len(name))
    ckpt = str(tmp_path / "ckpt")
    config = family.trimmed()
    family.text_config(config)["torch_dtype"] = \
        {"f32": "float32", "bf16": "bfloat16"}[storage]
    _write(family, ckpt, config, tensors, storage)
    n = family.moe_layers[-1]
    imported = import_hf(ckpt, n)
    assert imported.spec.num_experts == E
    layer_ir, module = str(tmp_path / "l.mlir"), str(tmp_path / "l.so")
    for command in (("import-hf", ckpt, "--layer", str(n), "-o", layer_ir),
                    ("compile", layer_ir, "-o", module)):
        done = built_tools.moe_mlir(*command)
        assert done.returncode == 0, done.stderr
    for tokens in (1, 37, 300):
        x = _inputs(family, tensors, n, imported.spec, tokens, seed=tokens)
        x_path, y_path = (str(tmp_path / f"{v}{tokens}.npy") for v in "xy")
        np.save(x_path, x)
        done = built_tools.moe_mlir("run", module, "--weights", ckpt,
                                    "--input", x_path, "--output", y_path)
        assert done.returncode == 0, done.stderr
        y = np.load(y_path)
        err, peak = max_error(y, _forward(family, tensors, n, x))
        assert err <= tolerance(storage) * peak, (name, storage, tokens, err,
                                                  peak)


@pytest.mark.parametrize("name, text_changes, message", [
    ("dbrx", {"moe_normalize_expert_weights": 2.0},
     "moe_normalize_expert_weights = 2.0: only 1"),
    ("dbrx", {"ffn_act_fn": "silu"}, "ffn_act_fn must be an object"),
    ("ernie4_5_moe", {"moe_norm_min": 0.5}, "moe_norm_min = 0.5: only"),
    ("ernie4_5_moe", {"use_bias": True}, "use_bias with"),
])
def test_refused_configs(name, text_changes, message) -> None:
    family = FAMILIES[name]
    config = json.loads(json.dumps(family.config))
    family.text_config(config).update(text_changes)
    with pytest.raises(ValueError, match=message):
        families.layer_spec(config, family.moe_layers[0])


def test_nested_configs() -> None:
    family = FAMILIES["qwen3_vl_moe"]
    bad = {**family.config, "text_config": 3}
    with pytest.raises(ValueError, match="text_config must be an object"):
        moe_layers(bad)
    # Without text_config, GLM-4.5V's keys are read at the top level (its
    # configuration class builds the text configuration from them);
    # Qwen3-VL-MoE's take their defaults.
    glm = FAMILIES["glm4v_moe"]
    flat = {**glm.config["text_config"], "model_type": "glm4v_moe"}
    assert families.layer_spec(flat, 3) == families.layer_spec(glm.config, 3)
    assert families.layer_spec({"model_type": "qwen3_vl_moe"}, 0) \
        .num_experts == 60
    # DBRX's attribute_map: hidden_size and num_hidden_layers stand for
    # d_model and n_layers.
    dbrx = FAMILIES["dbrx"].config
    aliased = {k: v for k, v in dbrx.items() if k not in ("d_model",
                                                           "n_layers")}
    aliased.update(hidden_size=H, num_hidden_layers=LAYERS)
    assert families.layer_spec(aliased, 1) == families.layer_spec(dbrx, 1)
    assert moe_layers(aliased) == list(range(LAYERS))
    # DBRX's moe_normalize_expert_weights: absent is L1 (renormalize),
    # null is no normalization.
    unnormalized = json.loads(json.dumps(dbrx))
    unnormalized["ffn_config"]["moe_normalize_expert_weights"] = None
    assert families.layer_spec(unnormalized, 1).routing.renormalize == \
        "none"
    del unnormalized["ffn_config"]["moe_normalize_expert_weights"]
    assert families.layer_spec(unnormalized, 1).routing.renormalize == \
        "selected"


@pytest.mark.parametrize("name, text_changes, message", [
    ("llama4", {"moe_layers": 5}, "moe_layers must be a list of integers"),
    ("llama4", {"interleave_moe_layer_step": 0},
     "interleave_moe_layer_step must be at least 1"),
    ("qwen3_vl_moe", {"mlp_only_layers": 3},
     "mlp_only_layers must be a list of integers"),
    ("qwen3_vl_moe", {"decoder_sparse_step": "2"},
     "decoder_sparse_step must be an integer"),
    ("jamba", {"expert_layer_period": 0},
     "expert_layer_period must be at least 1"),
    ("ernie4_5_moe", {"moe_layer_interval": "x"},
     "moe_layer_interval must be an integer"),
    ("glm4_moe", {"first_k_dense_replace": [1]},
     "first_k_dense_replace must be an integer"),
    ("granitemoe", {"num_local_experts": True},
     "num_local_experts must be an integer"),
])
def test_malformed_layer_keys(name, text_changes, message) -> None:
    """A key deciding which layers are MoE blocks with a wrong type or
    value ends in one line naming it, not a traceback."""
    family = FAMILIES[name]
    config = json.loads(json.dumps(family.config))
    family.text_config(config).update(text_changes)
    with pytest.raises(ModelImportError, match=f"^config.json: {message}"):
        moe_layers(config)


def _gpt_oss_mxfp4(hidden: int, inter: int) -> Family:
    """gpt-oss with its experts stored as MXFP4 (K dimensions multiples of
    32), as the hub's openai/gpt-oss checkpoints are."""
    family = FAMILIES["gpt_oss"]
    config = {**family.config, "hidden_size": hidden,
              "intermediate_size": inter,
              "quantization_config": {
                  "quant_method": "mxfp4",
                  "modules_to_not_convert": [
                      "model.layers.*.self_attn", "model.layers.*.mlp.router",
                      "model.embed_tokens", "lm_head"]}}
    return dataclasses.replace(family, config=config, layout="gpt_oss_mxfp4")


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime library is "
                    "not built")
@pytest.mark.parametrize("storage", ["f32", "bf16"])
def test_gpt_oss_mxfp4(tmp_path, monkeypatch, storage) -> None:
    """MXFP4 experts (U8 ``*_blocks`` and ``*_scales``): imported as e2m1
    pairs and e8m0 scales that the kernels decode on the fly, equal to the
    forward on transformers' dequantized weights."""
    monkeypatch.setattr(sys.modules[__name__], "H", 64)
    monkeypatch.setattr(sys.modules[__name__], "I", 32)
    family = _gpt_oss_mxfp4(64, 32)
    tensors = _checkpoint(family, storage, seed=7)
    ckpt = str(tmp_path / "ckpt")
    _write(family, ckpt, family.trimmed(), tensors, storage)
    imported = import_hf(ckpt, 1)
    assert imported.spec.formats == {op: "e8m0" for op in (
        "gate_scale", "up_scale", "down_scale")}
    assert all(imported.spec.dtype(op) == "e2m1x2" for op in (
        "expert_gate", "expert_up", "expert_down"))
    layer_ir, module = str(tmp_path / "l.mlir"), str(tmp_path / "l.so")
    for command in (("import-hf", ckpt, "--layer", "1", "-o", layer_ir),
                    ("compile", layer_ir, "-o", module)):
        done = built_tools.moe_mlir(*command)
        assert done.returncode == 0, done.stderr
    assert 'moe.weight_format = "e8m0"' in open(layer_ir).read()
    for tokens in (1, 37, 300):
        x = _inputs(family, tensors, 1, imported.spec, tokens, seed=tokens)
        x_path, y_path = (str(tmp_path / f"{v}{tokens}.npy") for v in "xy")
        np.save(x_path, x)
        done = built_tools.moe_mlir("run", module, "--weights", ckpt,
                                    "--input", x_path, "--output", y_path)
        assert done.returncode == 0, done.stderr
        err, peak = max_error(np.load(y_path),
                              _forward(family, tensors, 1, x))
        # The decoded weights are bf16: the bf16 bound.
        assert err <= tolerance("bf16") * peak, (storage, tokens, err, peak)
    # A scale tensor of the wrong dtype or shape is one line.
    bad = dict(tensors)
    name = "model.layers.1.mlp.experts.down_proj_scales"
    bad[name] = bad[name][:, :, :0]
    _write(family, ckpt, family.trimmed(), bad, storage)
    done = built_tools.moe_mlir("run", module, "--weights", ckpt,
                                "--input", x_path, "--output", y_path)
    assert done.returncode != 0
    assert "down_proj_scales' (argument" in done.stderr
    assert "checkpoint shape [6, 64, 0] does not match [6, 64, 1]" in \
        done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # Blocks stored as another dtype than U8: one line too.
    bad = dict(tensors)
    name = "model.layers.1.mlp.experts.down_proj_blocks"
    bad[name] = bad[name].astype(np.float32)   # written as `storage`
    _write(family, ckpt, family.trimmed(), bad, storage)
    done = built_tools.moe_mlir("run", module, "--weights", ckpt,
                                "--input", x_path, "--output", y_path)
    assert done.returncode != 0
    assert "down_proj_blocks' (argument" in done.stderr and \
        f"checkpoint dtype {storage.upper()} does not match i8" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
