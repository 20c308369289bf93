"""emit: LayerSpec rules, the emitted text, the Hugging Face families' blocks
(moe_mlir.families) and their config.json defaults.

Where a built ``moe-opt`` is at hand, every emitted module must parse,
verify and decompose (``--moe-decompose``).
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from moe_mlir import emit, families
from moe_mlir.emit import LayerSpec, emit_module
from moe_mlir.families import (deepseek_v2, deepseek_v3, mixtral, qwen2_moe,
                               qwen3_moe)
from moe_mlir.routing import Routing
import built_tools  # noqa: E402


def _mixtral(**overrides) -> LayerSpec:
    args = dict(hidden_size=16, intermediate_size=32, num_local_experts=6,
                num_experts_per_tok=2)
    args.update(overrides)
    return mixtral.layer(3, **args)


def _qwen2(**overrides) -> LayerSpec:
    args = dict(hidden_size=16, moe_intermediate_size=8, num_experts=10,
                num_experts_per_tok=4, shared_expert_intermediate_size=24)
    args.update(overrides)
    return qwen2_moe.layer(1, **args)


def _qwen3(**overrides) -> LayerSpec:
    args = dict(hidden_size=16, moe_intermediate_size=8, num_experts=8,
                num_experts_per_tok=2, norm_topk_prob=True)
    args.update(overrides)
    return qwen3_moe.layer(0, **args)


def _dsv3(**overrides) -> LayerSpec:
    args = dict(hidden_size=16, moe_intermediate_size=8, n_routed_experts=12,
                num_experts_per_tok=4, n_group=4, topk_group=2,
                routed_scaling_factor=2.5, norm_topk_prob=True,
                n_shared_experts=2)
    args.update(overrides)
    return deepseek_v3.layer(5, **args)


def _dsv2(**overrides) -> LayerSpec:
    args = dict(hidden_size=16, moe_intermediate_size=8, n_routed_experts=10,
                num_experts_per_tok=3, n_group=5, topk_group=3,
                routed_scaling_factor=16.0, n_shared_experts=1,
                topk_method="group_limited_greedy")
    args.update(overrides)
    return deepseek_v2.layer(2, **args)


def _arguments(text: str) -> list[tuple[str, str, str | None]]:
    """``(ssa name, type, moe.weight or None)`` of @forward's arguments."""
    header = text.split(") -> ", 1)[0]
    return [(name, ty, weight or None) for name, ty, weight in re.findall(
        r"%(\w+): (tensor<[^>]*>)(?: \{moe\.weight = \"([^\"]*)\"\})?",
        header)]


# -- the emitted text --------------------------------------------------------

def test_mixtral_text() -> None:
    text = emit_module(_mixtral(dtype="bf16"))
    block = "model.layers.3.block_sparse_moe"
    experts = f"{block}.experts.{{e}}"
    assert _arguments(text) == [
        ("x", "tensor<?x16xf32>", None),
        ("router", "tensor<6x16xbf16>", f"{block}.gate.weight"),
        ("expert_gate", "tensor<6x32x16xbf16>", f"{experts}.w1.weight"),
        ("expert_up", "tensor<6x32x16xbf16>", f"{experts}.w3.weight"),
        ("expert_down", "tensor<6x16x32xbf16>", f"{experts}.w2.weight"),
    ]
    assert "func.func @forward(" in text
    assert ") -> tensor<?x16xf32> {" in text
    assert "routing <softmax, top_k = 2, renormalize>" in text
    assert re.search(r"experts\(gate %expert_gate : tensor<6x32x16xbf16>,\s+"
                     r"up %expert_up : tensor<6x32x16xbf16>,\s+"
                     r"down %expert_down : tensor<6x16x32xbf16>\)", text)
    assert "activation silu" in text
    assert "return %y : tensor<?x16xf32>" in text
    assert "shared" not in text and "score_bias" not in text


def test_qwen2_text() -> None:
    spec = _qwen2(dtype="f32")
    text = emit_module(spec)
    assert "routing <softmax, top_k = 4>\n" in text  # no renormalization
    weights = {name: (ty, w) for name, ty, w in _arguments(text)}
    block = "model.layers.1.mlp"
    assert weights["router"] == ("tensor<10x16xf32>", f"{block}.gate.weight")
    assert weights["expert_gate"][1] == \
        f"{block}.experts.{{e}}.gate_proj.weight"
    assert weights["shared_gate"] == (
        "tensor<24x16xf32>", f"{block}.shared_expert.gate_proj.weight")
    assert weights["shared_up"] == (
        "tensor<24x16xf32>", f"{block}.shared_expert.up_proj.weight")
    assert weights["shared_down"] == (
        "tensor<16x24xf32>", f"{block}.shared_expert.down_proj.weight")
    assert weights["shared_expert_gate"] == (
        "tensor<1x16xf32>", f"{block}.shared_expert_gate.weight")
    assert "shared_expert_gate(%shared_expert_gate : tensor<1x16xf32>)" in text
    assert "routing <softmax, top_k = 4, renormalize>" in emit_module(
        _qwen2(norm_topk_prob=True))
    assert not _qwen2(shared_expert_intermediate_size=0).has_shared_expert


def test_qwen3_text() -> None:
    spec = _qwen3()
    assert spec.routing == Routing(top_k=2, renormalize="selected")
    assert not spec.has_shared_expert
    assert "shared" not in emit_module(spec)
    assert _qwen3(norm_topk_prob=False).routing.renormalize == "none"


def test_deepseek_v3_text() -> None:
    spec = _dsv3(dtype="bf16")
    text = emit_module(spec)
    assert ("routing <sigmoid, top_k = 4, renormalize, scale = 2.500000e+00, "
            "selection_bias, groups = 4, topk_groups = 2, "
            "group_score = sum_top2>") in text
    weights = {name: (ty, w) for name, ty, w in _arguments(text)}
    block = "model.layers.5.mlp"
    # The correction bias is F32 whatever the other weights are.
    assert weights["score_bias"] == (
        "tensor<12xf32>", f"{block}.gate.e_score_correction_bias")
    assert "score_bias(%score_bias : tensor<12xf32>)" in text
    assert weights["expert_down"] == (
        "tensor<12x16x8xbf16>", f"{block}.experts.{{e}}.down_proj.weight")
    # Ungated shared experts: intermediate 8 * 2, no shared_expert_gate.
    assert weights["shared_up"] == (
        "tensor<16x16xbf16>", f"{block}.shared_experts.up_proj.weight")
    assert weights["shared_down"][0] == "tensor<16x16xbf16>"
    assert "shared_expert_gate" not in text
    assert spec.shared_intermediate == 16
    # n_group = 1: plain top-k; norm_topk_prob false: no renormalization.
    plain = _dsv3(n_group=1, topk_group=1, norm_topk_prob=False)
    assert plain.routing == Routing(scoring="sigmoid", top_k=4, scale=2.5,
                                    selection_bias=True)
    assert not _dsv3(n_shared_experts=0).has_shared_expert


def test_deepseek_v2_text() -> None:
    spec = _dsv2()
    assert spec.routing.to_mlir(prefix=False) == (
        "<softmax, top_k = 3, scale = 1.600000e+01, groups = 5, "
        "topk_groups = 3, group_score = max>")
    assert "score_bias" not in spec.weights
    assert spec.shared_intermediate == 8
    assert _dsv2(topk_method="greedy").routing.num_groups == 1
    with pytest.raises(ValueError, match="topk_method"):
        _dsv2(topk_method="noaux_tc")
    with pytest.raises(ValueError, match="needs n_group"):
        _dsv2(n_group=None)


def test_dtype_overrides_and_names() -> None:
    spec = _mixtral(dtype="bf16", dtypes={"router": "f32"})
    assert spec.dtype("router") == "f32"
    assert spec.dtype("expert_up") == "bf16"
    text = emit_module(spec, comment="two\nlines")
    assert text.startswith("// two\n// lines\nfunc.func @forward(")
    tensors = spec.checkpoint_tensors()
    assert len(tensors) == 1 + 3 * 6
    assert tensors["model.layers.3.block_sparse_moe.experts.5.w2.weight"] == \
        ((16, 32), "bf16")


def test_mlir_string() -> None:
    assert emit.mlir_string('a"b\\c') == '"a\\"b\\\\c"'
    assert emit.mlir_string("x\ny") == '"x\\0Ay"'
    assert emit.mlir_string("é") == '"\\C3\\A9"'


def test_collect_stacks_experts() -> None:
    spec = _mixtral(num_local_experts=3, hidden_size=4, intermediate_size=2)
    rng = np.random.default_rng(0)
    checkpoint = {name: rng.standard_normal(shape) for name, (shape, _) in
                  spec.checkpoint_tensors().items()}
    ops = spec.collect(checkpoint)
    assert ops["expert_gate"].shape == (3, 2, 4)
    np.testing.assert_array_equal(
        ops["expert_up"][2],
        checkpoint["model.layers.3.block_sparse_moe.experts.2.w3.weight"])
    router = "model.layers.3.block_sparse_moe.gate.weight"
    checkpoint[router] = np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"router .* does not match \[3, 4\]"):
        spec.collect(checkpoint)


# -- LayerSpec rules ---------------------------------------------------------

_BASE = dict(hidden=8, intermediate=4, num_experts=3,
             routing="<softmax, top_k = 2>",
             weights={"router": "r", "expert_up": "u.{e}",
                      "expert_down": "d.{e}"})


def _spec(**changes) -> LayerSpec:
    args = {**_BASE, **changes}
    return LayerSpec(**args)


def test_minimal_spec() -> None:
    spec = _spec()
    assert not spec.gated and not spec.has_shared_expert
    assert spec.routing == Routing(top_k=2)
    assert "experts(up %expert_up : tensor<3x4x8xf32>,\n" in emit_module(spec)
    weighted = _spec(weight_inputs=True)
    assert "    activation silu\n      weight_inputs\n" in \
        emit_module(weighted)
    assert LayerSpec.from_dict(weighted.to_dict()) == weighted
    clamped = _spec(weights={**_BASE["weights"], "expert_gate": "g.{e}",
                             "router_bias": "rb"},
                    activation="clamped_swiglu", swiglu=(1.702, 7))
    text = emit_module(clamped)
    assert "router_bias(%router_bias : tensor<3xf32>)" in text
    assert "activation clamped_swiglu\n" \
        "      swiglu_alpha 1.702000e+00 swiglu_limit 7.000000e+00\n" in text
    assert LayerSpec.from_dict(clamped.to_dict()) == clamped


@pytest.mark.parametrize("changes,message", [
    ({"weights": {"router": "r", "expert_up": "u", "expert_down": "d.{e}"}},
     r"exactly once"),
    ({"weights": {"router": "r.{e}", "expert_up": "u.{e}",
                  "expert_down": "d.{e}"}}, "must not contain"),
    ({"weights": {"router": "r", "expert_up": "u.{e}"}},
     "'expert_down' is required"),
    ({"weights": {**_BASE["weights"], "noise": "n"}}, "unknown operands"),
    ({"routing": "<sigmoid, top_k = 2, selection_bias>"},
     "score_bias is required iff"),
    ({"weights": {**_BASE["weights"], "score_bias": "b"}},
     "score_bias is required iff"),
    ({"routing": "<softmax, top_k = 4>"}, "exceeds the number of experts"),
    ({"routing": "<softmax, top_k = 2, renormalize, noisy>"},
     "noise_router is required iff the routing is noisy"),
    ({"weights": {**_BASE["weights"], "shared_up": "su"},
      "shared_intermediate": 4}, "needs shared_up and shared_down"),
    ({"weights": {**_BASE["weights"], "shared_up": "su",
                  "shared_down": "sd"}}, "shared_intermediate"),
    ({"dtypes": {"router": "f64"}}, "element type"),
    ({"dtypes": {"expert_gate": "bf16"}}, "absent operand"),
    ({"routing": "<sigmoid, top_k = 2, selection_bias>",
      "weights": {**_BASE["weights"], "score_bias": "b"},
      "dtypes": {"score_bias": "f8e4m3fn"}},
     "score_bias must be f32, bf16 or f16"),
    ({"activation": "tanh"}, "unknown activation"),
    ({"func_name": "bad name"}, "bad function name"),
    ({"hidden": 0}, "hidden must be a positive integer"),
    ({"weight_inputs": 1}, "weight_inputs must be a bool"),
    ({"activation": "clamped_swiglu"}, "swiglu = \\(alpha, limit\\) is required"),
    ({"swiglu": (1.0, 7.0)}, "swiglu = \\(alpha, limit\\) is required"),
    ({"activation": "clamped_swiglu", "swiglu": (1.702, 0.0)},
     "swiglu limit must be positive"),
    ({"activation": "clamped_swiglu", "swiglu": (1.702, 7.0)},
     "clamped_swiglu needs gated experts"),
    ({"activation": "clamped_swiglu", "swiglu": "7"}, "must be \\(alpha, limit\\)"),
    ({"weights": {**_BASE["weights"], "router_bias": "rb.{e}"}},
     "must not contain"),
    ({"weights": {**_BASE["weights"], "gate_bias": "gb.{e}"}},
     "gate_bias needs an expert_gate"),
])
def test_spec_rejects(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**changes)


# -- Hugging Face configs ----------------------------------------------------

def test_layer_spec() -> None:
    config = {"model_type": "deepseek_v3", "hidden_size": 16,
              "moe_intermediate_size": 8, "n_routed_experts": 12,
              "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2,
              "routed_scaling_factor": 2.5, "norm_topk_prob": True,
              "n_shared_experts": 2, "first_k_dense_replace": 3,
              "scoring_func": "sigmoid", "topk_method": "noaux_tc",
              "vocab_size": 100}
    assert families.layer_spec(config, 5, dtype="bf16") == _dsv3(
        dtype="bf16")
    with pytest.raises(ValueError, match="dense MLP"):
        families.layer_spec(config, 2)
    # transformers reads neither scoring_func nor topk_method for V3.
    assert families.layer_spec({**config, "topk_method": "greedy"}, 5) == \
        families.layer_spec(config, 5)
    with pytest.raises(ValueError, match="unsupported model_type"):
        families.layer_spec({"model_type": "llama"}, 0)

    qwen = {"model_type": "qwen2_moe", "hidden_size": 16,
            "moe_intermediate_size": 8, "num_experts": 10,
            "num_experts_per_tok": 4, "shared_expert_intermediate_size": 24,
            "decoder_sparse_step": 1, "mlp_only_layers": [0]}
    assert families.layer_spec(qwen, 1) == _qwen2()
    assert not families.is_moe_layer(qwen, 0)
    assert not families.is_moe_layer({**qwen, "decoder_sparse_step": 2,
                                      "mlp_only_layers": []}, 2)
    assert families.is_moe_layer({**qwen, "decoder_sparse_step": 2}, 3)
    # qwen3_moe's config class defaults norm_topk_prob to false.
    qwen3 = {**qwen, "model_type": "qwen3_moe", "num_experts": 8,
             "num_experts_per_tok": 2, "mlp_only_layers": []}
    assert families.layer_spec(qwen3, 0) == _qwen3(norm_topk_prob=False)
    mixtral_config = {"model_type": "mixtral", "hidden_size": 16,
                      "intermediate_size": 32, "num_local_experts": 6,
                      "num_experts_per_tok": 2, "hidden_act": "silu"}
    assert families.layer_spec(mixtral_config, 3) == _mixtral()
    assert emit.hf_activation("gelu_pytorch_tanh") == "gelu_tanh"


# A config.json without a key means its configuration class's default
# (docs/families/defaults-of-supported-families.md), as in transformers.
def test_config_defaults() -> None:
    v3 = families.layer_spec({"model_type": "deepseek_v3"}, 3, dtype="f32")
    assert (v3.hidden, v3.intermediate, v3.num_experts) == (7168, 2048, 256)
    assert v3.routing == Routing(
        scoring="sigmoid", top_k=8, renormalize="selected", scale=2.5,
        selection_bias=True, num_groups=8, topk_groups=4,
        group_score="sum_top2")
    assert v3.shared_intermediate == 2048
    assert not families.is_moe_layer({"model_type": "deepseek_v3"}, 2)
    # V2: greedy top-k, scaled, never renormalized; two shared experts;
    # every layer MoE; no default top-k.
    v2 = families.layer_spec({"model_type": "deepseek_v2",
                              "num_experts_per_tok": 6,
                              "norm_topk_prob": True}, 0, dtype="f32")
    assert (v2.hidden, v2.intermediate, v2.num_experts) == (4096, 1407, 64)
    assert v2.routing == Routing(top_k=6)
    assert v2.shared_intermediate == 2 * 1407
    with pytest.raises(ValueError, match="lacks num_experts_per_tok"):
        families.layer_spec({"model_type": "deepseek_v2"}, 0)
    q2 = families.layer_spec({"model_type": "qwen2_moe"}, 0, dtype="f32")
    assert (q2.hidden, q2.intermediate, q2.num_experts,
            q2.shared_intermediate) == (2048, 1408, 60, 5632)
    assert q2.routing == Routing(top_k=4)
    q3 = families.layer_spec({"model_type": "qwen3_moe"}, 0, dtype="f32")
    assert (q3.intermediate, q3.num_experts) == (768, 128)
    assert q3.routing == Routing(top_k=8)
    mx = families.layer_spec({"model_type": "mixtral"}, 0, dtype="f32")
    assert (mx.hidden, mx.intermediate, mx.num_experts) == (4096, 14336, 8)
    assert mx.routing == Routing(top_k=2, renormalize="selected")
    # null is absent.
    assert families.layer_spec({"model_type": "mixtral", "hidden_size": None},
                               0, dtype="f32") == mx
    assert families.FAMILIES["deepseek_v3"].num_layers({}) == 61


# -- cross-check with moe-opt ------------------------------------------------

_moe_opt = built_tools.moe_opt


_SPECS = {"mixtral": _mixtral, "qwen2_moe": _qwen2, "qwen3_moe": _qwen3,
          "deepseek_v3": _dsv3, "deepseek_v2": _dsv2}


@pytest.mark.skipif(_moe_opt() is None, reason="no built moe-opt")
@pytest.mark.parametrize("family", sorted(_SPECS))
@pytest.mark.parametrize("dtype", ["f32", "bf16", "f16"])
def test_moe_opt_accepts(tmp_path, family, dtype) -> None:
    spec = _SPECS[family](dtype=dtype)
    path = tmp_path / "layer.mlir"
    path.write_text(emit_module(spec))
    printed = subprocess.run([_moe_opt(), str(path)], capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    # The weight names survive as argument attributes.
    for name in spec.weights.values():
        assert f'moe.weight = "{name}"' in printed.stdout
    decomposed = subprocess.run([_moe_opt(), str(path), "--moe-decompose"],
                                capture_output=True, text=True, timeout=60)
    assert decomposed.returncode == 0, decomposed.stderr
    assert "moe.layer" not in decomposed.stdout
