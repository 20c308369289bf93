"""Switch Transformers and NLLB-MoE checkpoints: import, compile, run.

Small random checkpoints in the Hugging Face layout of the two
encoder-decoder families (docs/Importing.md), F32 and BF16, with capacities
small enough that tokens are dropped. Each MoE block is imported with
``import_hf(DIR, "encoder.N" | "decoder.N")``, compiled, run, and compared
with an independent float64 transcription of the Hugging Face forward
(cumulative-sum positions, as ``modeling_switch_transformers`` and
``modeling_nllb_moe`` compute them), not with :mod:`moe_mlir.layer`, so the
importer's mapping of the config keys is checked too.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest

import built_tools
from moe_mlir import safetensors_io
from moe_mlir.family_cases import tolerance
from moe_mlir.hf_import import ModelImportError, import_hf, moe_layers
from moe_mlir.testdata import round_to_bf16

D_MODEL, FFN, EXPERTS = 16, 24, 4
TOKENS = (0, 1, 7, 37)
EPS_F32 = float(np.finfo(np.float32).eps)

SWITCH = {"model_type": "switch_transformers", "d_model": D_MODEL,
          "d_ff": FFN, "num_experts": EXPERTS, "expert_capacity": 3,
          "num_layers": 4, "num_decoder_layers": 4,
          "num_sparse_encoder_layers": 2, "num_sparse_decoder_layers": 2,
          "dense_act_fn": "relu", "router_bias": False}

NLLB = {"model_type": "nllb_moe", "d_model": D_MODEL,
        "encoder_ffn_dim": FFN, "decoder_ffn_dim": FFN + 8,
        "encoder_layers": 4, "decoder_layers": 4, "num_experts": EXPERTS,
        "encoder_sparse_step": 2, "decoder_sparse_step": 2,
        "moe_eval_capacity_token_fraction": 0.15, "expert_capacity": 64,
        "batch_prioritized_routing": False,
        "normalize_router_prob_before_dropping": False,
        "second_expert_policy": "all", "moe_token_dropout": 0.2,
        "activation_function": "relu", "router_bias": False}


def _normal(rng, *shape) -> np.ndarray:
    return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(
        np.float32)


def _tensors(config: dict, seed: int) -> dict[str, np.ndarray]:
    """Every block's FFN (sparse or dense) plus attention weights."""
    rng = np.random.default_rng(seed)
    d = D_MODEL
    tensors = {"shared.weight": _normal(rng, 32, d)}
    switch = config["model_type"] == "switch_transformers"
    for stack in ("encoder", "decoder"):
        for i in range(4):
            if switch:
                ffn, sub = FFN, (1 if stack == "encoder" else 2)
                base = f"{stack}.block.{i}.layer"
                tensors[f"{base}.0.SelfAttention.q.weight"] = _normal(rng, d, d)
                step = 4 // config[f"num_sparse_{stack}_layers"]
                sparse = step == 1 or i % step == 1
                mlp = f"{base}.{sub}.mlp"
                if not sparse:
                    tensors[f"{mlp}.wi.weight"] = _normal(rng, ffn, d)
                    tensors[f"{mlp}.wo.weight"] = _normal(rng, d, ffn)
                    continue
                tensors[f"{mlp}.router.classifier.weight"] = _normal(
                    rng, EXPERTS, d) * 3.0
                for e in range(EXPERTS):
                    expert = f"{mlp}.experts.expert_{e}"
                    tensors[f"{expert}.wi.weight"] = _normal(rng, ffn, d)
                    tensors[f"{expert}.wo.weight"] = _normal(rng, d, ffn)
            else:
                ffn = config[f"{stack}_ffn_dim"]
                base = f"model.{stack}.layers.{i}"
                tensors[f"{base}.self_attn.q_proj.weight"] = _normal(rng, d, d)
                sparse = (i + 1) % config[f"{stack}_sparse_step"] == 0
                if not sparse:
                    tensors[f"{base}.fc1.weight"] = _normal(rng, ffn, d)
                    tensors[f"{base}.fc2.weight"] = _normal(rng, d, ffn)
                    continue
                tensors[f"{base}.ffn.router.classifier.weight"] = _normal(
                    rng, EXPERTS, d) * 3.0
                for e in range(EXPERTS):
                    expert = f"{base}.ffn.experts.expert_{e}"
                    tensors[f"{expert}.fc1.weight"] = _normal(rng, ffn, d)
                    tensors[f"{expert}.fc1.bias"] = _normal(rng, ffn)
                    tensors[f"{expert}.fc2.weight"] = _normal(rng, d, ffn)
                    tensors[f"{expert}.fc2.bias"] = _normal(rng, d)
    return tensors


def _write(directory, config: dict, storage: str, seed: int = 0) -> dict:
    tensors = _tensors(config, seed)
    if storage == "bf16":
        tensors = {k: round_to_bf16(v) for k, v in tensors.items()}
    os.makedirs(directory, exist_ok=True)
    safetensors_io.save_file(os.path.join(directory, "model.safetensors"),
                             tensors, storage.upper())
    with open(os.path.join(directory, "config.json"), "w",
              encoding="utf-8") as out:
        json.dump(config, out)
    return {k: v.astype(np.float64) for k, v in tensors.items()}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _switch_forward(x, w, stack, index, capacity):
    """transformers' SwitchTransformersSparseMLP at inference (>= 4.52)."""
    sub = 1 if stack == "encoder" else 2
    mlp = f"{stack}.block.{index}.layer.{sub}.mlp"
    probs = _softmax(x @ w[f"{mlp}.router.classifier.weight"].T)
    expert_index = probs.argmax(axis=1)
    mask = np.eye(EXPERTS)[expert_index]
    keep = (np.cumsum(mask, axis=0) <= capacity) * mask
    y = np.zeros_like(x)
    for e in range(EXPERTS):
        rows = keep[:, e].astype(bool)
        hidden = np.maximum(x[rows] @ w[f"{mlp}.experts.expert_{e}.wi.weight"]
                            .T, 0.0)
        y[rows] = hidden @ w[f"{mlp}.experts.expert_{e}.wo.weight"].T
    return probs.max(axis=1)[:, None] * y, int(mask.sum() - keep.sum())


def _locations(mask: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``cumsum - 1`` of a one-hot mask taken in ``order``, mapped back."""
    sorted_cumsum = (np.cumsum(mask[order], axis=0) - 1) * mask[order]
    return sorted_cumsum[np.argsort(order)]


def _nllb_forward(x, w, stack, index, config, uniform=None):
    """transformers' NllbMoeSparseMLP / NllbMoeTop2Router at inference."""
    block = f"model.{stack}.layers.{index}.ffn"
    logits = x @ w[f"{block}.router.classifier.weight"].T
    probs = _softmax(logits)
    tokens = len(x)
    top1 = np.eye(EXPERTS)[probs.argmax(axis=1)]
    except_top1 = np.where(top1 > 0, -np.inf, logits)
    top2 = np.eye(EXPERTS)[except_top1.argmax(axis=1)]
    p1, p2 = (probs * top1).sum(axis=1), (probs * top2).sum(axis=1)
    before = config["normalize_router_prob_before_dropping"]
    if before:
        denom = np.maximum(p1 + p2, EPS_F32)
        g1, g2 = p1 / denom, p2 / denom
    if uniform is not None:
        top2 = top2 * (2 * p2 > uniform)[:, None]
    chosen = top1.sum() + top2.sum()
    order = np.arange(tokens)
    if config["batch_prioritized_routing"]:
        order = np.argsort(-probs.max(axis=1), kind="stable")
    loc1 = _locations(top1, order)
    loc2 = _locations(top2, order) + top1.sum(axis=0, keepdims=True)
    fraction = config["moe_eval_capacity_token_fraction"]
    capacity = math.ceil(fraction * tokens) if fraction > 0 else \
        config["expert_capacity"]
    top1 = top1 * (loc1 < capacity)
    top2 = top2 * (loc2 < capacity)
    if not before:
        k1, k2 = (probs * top1).sum(axis=1), (probs * top2).sum(axis=1)
        denom = np.maximum(k1 + k2, EPS_F32)
        g1, g2 = k1 / denom, k2 / denom
    combine = g1[:, None] * top1 + g2[:, None] * top2
    y = np.zeros_like(x)
    for e in range(EXPERTS):
        rows = combine[:, e] > 0
        expert = f"{block}.experts.expert_{e}"
        hidden = np.maximum(x[rows] @ w[f"{expert}.fc1.weight"].T
                            + w[f"{expert}.fc1.bias"], 0.0)
        out = hidden @ w[f"{expert}.fc2.weight"].T + w[f"{expert}.fc2.bias"]
        out *= 1 - config["moe_token_dropout"]
        y[rows] += combine[rows, e][:, None] * out
    return y, int(chosen - top1.sum() - top2.sum())


def _tokens(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, count])
    return rng.standard_normal((count, D_MODEL)).astype(np.float32)


def _run(directory, layer: str, tmp_path, sampled: bool = False):
    """Import with the dropped count, compile; the bound entry."""
    from moe_mlir.runtime import load_layer
    from moe_mlir.tools import compile_layer
    imported = import_hf(directory, layer, statistics=("dropped_count",))
    source = tmp_path / f"{layer}.mlir"
    source.write_text(imported.module_text())
    module = str(tmp_path / f"{layer}.so")
    compile_layer(str(source), module)
    return load_layer(module, directory)


pytestmark = pytest.mark.skipif(not built_tools.have_runtime_tools(),
                                reason="moe-compile, moe-run or the runtime "
                                "library is not built")


@pytest.mark.parametrize("storage", ["f32", "bf16"])
def test_switch_transformers(tmp_path, storage) -> None:
    directory = str(tmp_path / "ckpt")
    weights = _write(directory, SWITCH, storage)
    assert moe_layers(SWITCH) == ["encoder.1", "encoder.3", "decoder.1",
                                  "decoder.3"]
    dropped_any = False
    for layer in ("encoder.1", "decoder.3"):
        entry = _run(directory, layer, tmp_path)
        stack, index = layer.split(".")
        for tokens in TOKENS:
            x = _tokens(tokens, seed=int(index))
            y, dropped = entry(x)
            ref, ref_dropped = _switch_forward(
                x.astype(np.float64), weights, stack, int(index),
                SWITCH["expert_capacity"])
            assert int(dropped) == ref_dropped, (layer, tokens)
            dropped_any |= ref_dropped > 0
            if tokens:
                assert np.max(np.abs(y - ref)) <= tolerance(storage) * \
                    np.max(np.abs(ref)), (layer, tokens)
    assert dropped_any, "capacity 3 drops tokens at T = 37"


@pytest.mark.parametrize("storage", ["f32", "bf16"])
@pytest.mark.parametrize("variant", [
    {},
    {"batch_prioritized_routing": True},
    {"normalize_router_prob_before_dropping": True,
     "moe_eval_capacity_token_fraction": 0.0, "expert_capacity": 5},
])
def test_nllb_moe(tmp_path, storage, variant) -> None:
    config = {**NLLB, **variant}
    directory = str(tmp_path / "ckpt")
    weights = _write(directory, config, storage)
    assert moe_layers(config) == ["encoder.1", "encoder.3", "decoder.1",
                                  "decoder.3"]
    for layer in ("encoder.3", "decoder.1"):
        entry = _run(directory, layer, tmp_path)
        stack, index = layer.split(".")
        for tokens in TOKENS:
            x = _tokens(tokens, seed=int(index) + 7)
            y, dropped = entry(x)
            ref, ref_dropped = _nllb_forward(
                x.astype(np.float64), weights, stack, int(index), config)
            assert int(dropped) == ref_dropped, (layer, tokens)
            if tokens == 37:
                assert ref_dropped > 0
            if tokens:
                assert np.max(np.abs(y - ref)) <= tolerance(storage) * \
                    np.max(np.abs(ref)), (layer, tokens)


def test_nllb_random_second_expert_through_moe_run(tmp_path) -> None:
    """``second_expert_policy = random``: the layer takes uniform samples
    as its second input; import-hf then moe-run (the command line)."""
    config = {**NLLB, "second_expert_policy": "random"}
    directory = str(tmp_path / "ckpt")
    weights = _write(directory, config, "f32", seed=3)
    layer = tmp_path / "layer.mlir"
    done = built_tools.moe_mlir("import-hf", directory, "--layer",
                                "decoder.3", "-o", str(layer))
    assert done.returncode == 0, done.stderr
    assert "tensor<?x1xf32>" in layer.read_text()
    x = _tokens(37, seed=5)
    uniform = np.random.default_rng(8).random((37, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "u.npy", uniform)
    done = built_tools.moe_mlir(
        "run", str(layer), "--weights", directory, "--input",
        str(tmp_path / "x.npy"), "--input", str(tmp_path / "u.npy"),
        "--output", str(tmp_path / "y.npy"))
    assert done.returncode == 0, done.stderr
    ref, _ = _nllb_forward(x.astype(np.float64), weights, "decoder", 3,
                           config, uniform=uniform[:, 0])
    y = np.load(tmp_path / "y.npy")
    assert np.max(np.abs(y - ref)) <= 1e-4 * np.max(np.abs(ref))


@pytest.mark.parametrize("config,layer,message", [
    (SWITCH, "encoder.2", r"layer encoder.2 of this switch_transformers "
     r"model is a dense feed-forward block; its encoder MoE layers are 1, 3"),
    (SWITCH, "decoder.9", r"layer decoder.9 is out of range: the decoder of "
     r"this switch_transformers model has 4 layers"),
    (SWITCH, "1", r"bad layer '1': switch_transformers is an "
     r"encoder-decoder model; address its layers as encoder.N or decoder.N"),
    (NLLB, "middle.1", r"address its layers as encoder.N or decoder.N"),
    ({**NLLB, "second_expert_policy": "sampling"}, "encoder.1",
     r"second_expert_policy 'sampling' is random at inference"),
    ({**NLLB, "router_bias": True}, "encoder.1",
     r"router_bias = true is not supported"),
    ({**NLLB, "moe_token_dropout": 1.5}, "encoder.1",
     r"moe_token_dropout must be in \[0, 1\)"),
])
def test_errors(tmp_path, config, layer, message) -> None:
    directory = str(tmp_path / "ckpt")
    _write(directory, config, "f32")
    with pytest.raises(ModelImportError, match=message):
        import_hf(directory, layer)
    done = built_tools.moe_mlir("import-hf", directory, "--layer", layer,
                                "-o", str(tmp_path / "x.mlir"))
    assert re.search(message, built_tools.one_line_error(done, "import-hf"))


def test_missing_expert_bias(tmp_path) -> None:
    directory = str(tmp_path / "ckpt")
    weights = _write(directory, NLLB, "f32")
    del weights["model.encoder.layers.1.ffn.experts.expert_2.fc1.bias"]
    safetensors_io.save_file(os.path.join(directory, "model.safetensors"),
                             {k: v.astype(np.float32)
                              for k, v in weights.items()})
    with pytest.raises(ModelImportError, match=r"checkpoint has no tensor "
                       r"'model.encoder.layers.1.ffn.experts.expert_2.fc1."
                       r"bias' \(the up_bias operand of layer encoder.1\)"):
        import_hf(directory, "encoder.1")
