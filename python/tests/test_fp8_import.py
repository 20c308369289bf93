"""FP8 block-scaled layers: the spec, the importer and generated cases."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from moe_mlir import family_cases, float8
from moe_mlir.emit import LayerSpec, emit_module
from moe_mlir.hf_import import ModelImportError, import_hf

WEIGHTS = {"router": "r", "expert_up": "e.{e}.up.weight",
           "expert_down": "e.{e}.down.weight",
           "up_scale": "e.{e}.up.weight_scale_inv",
           "down_scale": "e.{e}.down.weight_scale_inv"}
FP8 = {"expert_up": "f8e4m3fn", "expert_down": "f8e4m3fn"}


def _spec(**overrides) -> LayerSpec:
    arguments = dict(hidden=40, intermediate=24, num_experts=4,
                     routing="<softmax, top_k = 2>", weights=WEIGHTS,
                     dtypes=FP8, activation="relu", weight_block=(16, 16))
    arguments.update(overrides)
    return LayerSpec(**arguments)


def test_spec_shapes_and_text() -> None:
    spec = _spec()
    assert spec.shape("up_scale") == (4, 2, 3)
    assert spec.shape("down_scale") == (4, 3, 2)
    text = emit_module(spec)
    assert "tensor<4x24x40xf8E4M3FN>" in text
    assert "up_scale(%up_scale : tensor<4x2x3xf32>)" in text
    assert "weight_block [16, 16]" in text
    assert LayerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("overrides, message", [
    (dict(weight_block=None), "come together"),
    (dict(weight_block=(16, 0)), "two positive integers"),
    (dict(weight_block=128), "two positive integers"),
    (dict(weights={k: v for k, v in WEIGHTS.items() if k != "down_scale"}),
     "needs its block scale down_scale"),
    (dict(dtypes={**FP8, "router": "f8e4m3fn"}), "only projection weights"),
    (dict(weights={**WEIGHTS, "gate_scale": "g.{e}"}),
     "gate_scale needs expert_gate"),
])
def test_spec_rejects(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**overrides)


def test_collect_dequantizes() -> None:
    spec = _spec()
    rng = np.random.default_rng(1)
    tensors = {"r": rng.standard_normal((4, 40))}
    expected = {}
    for name, shape in (("up", (24, 40)), ("down", (40, 24))):
        full = rng.standard_normal((4,) + shape)
        bits, scale = float8.quantize_blocks(full, (16, 16))
        expected[name] = float8.dequantize_blocks(bits, scale, (16, 16))
        for e in range(4):
            tensors[f"e.{e}.{name}.weight"] = bits[e]
            tensors[f"e.{e}.{name}.weight_scale_inv"] = scale[e]
    operands = spec.collect(tensors)
    assert set(operands) == {"router", "expert_up", "expert_down"}
    np.testing.assert_array_equal(operands["expert_up"], expected["up"])
    np.testing.assert_array_equal(operands["expert_down"], expected["down"])


def test_generated_case_round_trips(tmp_path) -> None:
    case = family_cases.make_case("deepseek_v3", "fp8")
    case.write(tmp_path)
    imported = import_hf(tmp_path, 1)
    assert imported.spec == case.spec
    assert imported.spec.weight_block == tuple(family_cases.FP8_BLOCK)
    loaded = family_cases.load_case(tmp_path, "fp8")
    x = case.sample_inputs(9)
    np.testing.assert_array_equal(loaded.reference(x), case.reference(x))


def _rewrite_config(directory, update) -> None:
    path = os.path.join(directory, "config.json")
    with open(path, encoding="utf-8") as file:
        config = json.load(file)
    update(config)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(config, file)


@pytest.mark.parametrize("update, message", [
    (lambda c: c.pop("quantization_config"),
     "config.json: tensor '.*gate_proj.weight' is F8_E4M3 but config.json "
     "has no quantization_config"),
    (lambda c: c["quantization_config"].update(weight_block_size=[128]),
     "config.json: quantization_config.weight_block_size must be two "
     "positive integers"),
    (lambda c: c["quantization_config"].update(weight_block_size=[64, 64]),
     "weight_scale_inv' has shape \\[2, 2\\] but config.json implies"),
])
def test_import_rejects(tmp_path, update, message) -> None:
    family_cases.make_case("deepseek_v3", "fp8").write(tmp_path)
    _rewrite_config(tmp_path, update)
    with pytest.raises(ModelImportError, match=message):
        import_hf(tmp_path, 1)
