"""Families with per-expert SwiGLU experts and softmax routing (OLMoE,
FlexOlmo, MiniMax, Jamba): checkpoints named as ``transformers`` names them
(with unrelated attention, norm, Mamba and dense-MLP tensors around the
block), ``config.json`` as the configuration class writes it and a variant
without the keys that have defaults; imported, compiled, run on T = 1, 37,
300 tokens in f32 and bf16, and compared with the family's forward written
here from its ``transformers`` modeling code (docs/families/): softmax in
float32, top-k, the family's renormalization, ``down(silu(gate x) * up x)``
summed with the weights, on the stored weights in float64. The MoE-layer
decision is checked against the family's rule. Needs the built tools.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import built_tools
from moe_mlir import families, safetensors_io
from moe_mlir.family_cases import max_error, tolerance
from moe_mlir.hf_import import import_hf, moe_layers
from moe_mlir.testdata import has_near_tie, resample_near_ties, round_to_bf16

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


def _attention(n: int) -> dict[str, tuple[int, ...]]:
    base = f"model.layers.{n}.self_attn"
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
}


def _silu(v: np.ndarray) -> np.ndarray:
    return v / (1.0 + np.exp(-v))


def _forward(family: Family, weights: dict[str, np.ndarray], n: int,
             x: np.ndarray) -> np.ndarray:
    """The family's MoE block in float64, as its modeling code computes
    it: softmax of the router logits, top-k (ties to the lower index),
    renormalized or not, SwiGLU experts weighted and summed."""
    block = family.block.format(n=n)
    x = x.astype(np.float64)
    logits = x @ weights[f"{block}.{family.router}.weight"].T
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    top = np.argsort(-p, axis=1, kind="stable")[:, :K]
    w = np.take_along_axis(p, top, axis=1)
    if family.renormalize:
        w /= w.sum(axis=1, keepdims=True)
    gate, up, down = (f"{block}.experts.{{e}}.{name}.weight"
                      for name in family.experts)
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(K):
            e = top[t, j]
            h = _silu(weights[gate.format(e=e)] @ x[t]) * \
                (weights[up.format(e=e)] @ x[t])
            out[t] += w[t, j] * (weights[down.format(e=e)] @ h)
    return out


def _checkpoint(family: Family, storage: str, seed: int
                ) -> dict[str, np.ndarray]:
    """Every tensor of the model: its MoE blocks (dense MLPs elsewhere) and
    unrelated ones, in float32 holding the stored values."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {
        "model.embed_tokens.weight": rng.standard_normal((64, H)),
        "lm_head.weight": rng.standard_normal((64, H)),
        "model.norm.weight": np.ones(H)}
    for n in range(LAYERS):
        for name, shape in {**_attention(n), **family.extra}.items():
            tensors[name.format(n=n)] = rng.standard_normal(shape) * 0.1
        block = family.block.format(n=n)
        if n not in family.moe_layers:
            for proj, shape in (("gate_proj", (I, H)), ("up_proj", (I, H)),
                                ("down_proj", (H, I))):
                tensors[f"{block}.{proj}.weight"] = \
                    rng.standard_normal(shape) / np.sqrt(shape[1])
            continue
        tensors[f"{block}.{family.router}.weight"] = \
            rng.standard_normal((E, H)) * (2.0 / np.sqrt(H))
        for e in range(E):
            for name, shape in zip(family.experts, ((I, H), (I, H), (H, I))):
                tensors[f"{block}.experts.{e}.{name}.weight"] = \
                    rng.standard_normal(shape) / np.sqrt(shape[1])
    tensors = {k: v.astype(np.float32) for k, v in tensors.items()}
    if storage == "bf16":
        tensors = {k: round_to_bf16(v) for k, v in tensors.items()}
    return tensors


def _write(directory: str, config: dict[str, Any],
           tensors: dict[str, np.ndarray], storage: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w",
              encoding="utf-8") as file:
        file.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    safetensors_io.save_file(os.path.join(directory, "model.safetensors"),
                             tensors, storage.upper())


def _inputs(family: Family, weights: dict[str, np.ndarray], n: int,
            tokens: int, seed: int) -> np.ndarray:
    """Tokens away from top-k ties (docs/Semantics.md)."""
    rng = np.random.default_rng(seed)
    router = weights[f"{family.block.format(n=n)}.{family.router}.weight"]

    def sample(count: int) -> np.ndarray:
        return rng.standard_normal((count, H)).astype(np.float32)

    def flag(x: np.ndarray) -> np.ndarray:
        logits = x.astype(np.float64) @ router.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return has_near_tie(p / p.sum(axis=1, keepdims=True), K, eps=1e-3)

    return resample_near_ties(sample(tokens), flag, sample)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_moe_layers_and_defaults(name) -> None:
    family = FAMILIES[name]
    assert moe_layers(family.config) == list(family.moe_layers)
    trimmed = {k: v for k, v in family.config.items()
               if k not in family.defaulted}
    assert moe_layers(trimmed) == list(family.moe_layers)
    n = family.moe_layers[0]
    assert families.layer_spec(trimmed, n) == \
        families.layer_spec(family.config, n)


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime library is "
                    "not built")
@pytest.mark.parametrize("storage", ["f32", "bf16"])
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_forward(tmp_path, name, storage) -> None:
    family = FAMILIES[name]
    tensors = _checkpoint(family, storage, seed=len(name))
    ckpt = str(tmp_path / "ckpt")
    config = {k: v for k, v in family.config.items()
              if k not in family.defaulted}
    config["torch_dtype"] = {"f32": "float32", "bf16": "bfloat16"}[storage]
    _write(ckpt, config, tensors, storage)
    n = family.moe_layers[-1]
    imported = import_hf(ckpt, n)
    assert imported.spec.num_experts == E
    layer_ir, module = str(tmp_path / "l.mlir"), str(tmp_path / "l.so")
    for command in (("import-hf", ckpt, "--layer", str(n), "-o", layer_ir),
                    ("compile", layer_ir, "-o", module)):
        done = built_tools.moe_mlir(*command)
        assert done.returncode == 0, done.stderr
    for tokens in (1, 37, 300):
        x = _inputs(family, tensors, n, tokens, seed=tokens)
        x_path, y_path = (str(tmp_path / f"{v}{tokens}.npy") for v in "xy")
        np.save(x_path, x)
        done = built_tools.moe_mlir("run", module, "--weights", ckpt,
                                    "--input", x_path, "--output", y_path)
        assert done.returncode == 0, done.stderr
        y = np.load(y_path)
        err, peak = max_error(y, _forward(family, tensors, n, x))
        assert err <= tolerance(storage) * peak, (name, storage, tokens, err,
                                                  peak)
