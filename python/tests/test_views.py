"""Weight views (moe_mlir.views) and their rules in LayerSpec: each step's
shape and values against numpy indexing, the ops written for the module,
every rejected view, and the round trip through to_dict."""

from __future__ import annotations

import numpy as np
import pytest

from moe_mlir.emit import LayerSpec, emit_module
from moe_mlir.views import Slice, View


def test_steps_compose_like_numpy_indexing() -> None:
    tensor = np.arange(4 * 6 * 10).reshape(4, 6, 10)
    gate = View(source=(4, 6, 10), slice=Slice(2, 1, 5, 2),
                permutation=(0, 2, 1))
    assert gate.shape == (4, 5, 6)
    np.testing.assert_array_equal(gate.apply(tensor),
                                  tensor[:, :, 1::2].transpose(0, 2, 1))
    fused = View(source=(12, 5), reshape=(3, 4, 5), permutation=(0, 2, 1))
    np.testing.assert_array_equal(
        fused.apply(np.arange(60).reshape(12, 5)),
        np.arange(60).reshape(3, 4, 5).transpose(0, 2, 1))
    bias = View(source=(1, 8), reshape=(8,))
    assert bias.apply(np.ones((1, 8))).shape == (8,)
    repeated = View(source=(5,), repeat=3)
    np.testing.assert_array_equal(repeated.apply(np.arange(5)),
                                  np.tile(np.arange(5), (3, 1)))
    assert View(source=(2, 3)).identity and not bias.identity


def test_mlir_ops() -> None:
    ops = View(source=(12, 5), reshape=(3, 4, 5), slice=Slice(1, 0, 2),
               permutation=(0, 2, 1)).mlir("w", "v", "bf16")
    assert ops[0] == ("%v_reshape = tensor.expand_shape %w [[0, 1], [2]] "
                      "output_shape [3, 4, 5] : tensor<12x5xbf16> into "
                      "tensor<3x4x5xbf16>")
    assert ops[1] == ("%v_slice = tensor.extract_slice %v_reshape[0, 0, 0] "
                      "[3, 2, 5] [1, 1, 1] : tensor<3x4x5xbf16> to "
                      "tensor<3x2x5xbf16>")
    assert ops[-1].startswith("%v = linalg.transpose ins(%v_slice")
    assert View(source=(1, 4), reshape=(4,)).mlir("b", "c", "f32") == [
        "%c = tensor.collapse_shape %b [[0, 1]] : tensor<1x4xf32> into "
        "tensor<4xf32>"]
    # A repeat widens a bf16 vector to f32 first.
    repeat = View(source=(4,), repeat=2).mlir("b", "c", "bf16")
    assert repeat[0].startswith("%c_f32 = arith.extf %b")
    assert repeat[-1].endswith("outs(%c_init : tensor<2x4xf32>) "
                               "dimensions = [0]")


@pytest.mark.parametrize("kwargs, message", [
    ({"source": (4, 6), "reshape": (5, 5)}, "neither splits nor merges"),
    ({"source": (4, 6), "slice": Slice(2, 0, 1)}, "axis 2 is out of range"),
    ({"source": (4, 6), "slice": Slice(1, 3, 2, 3)}, "out of range"),
    ({"source": (4, 6), "permutation": (0, 0)}, "no permutation"),
    ({"source": (4, -6)}, "non-negative integers"),
    ({"source": (4,), "repeat": 0}, "repeat must be a positive integer"),
])
def test_bad_views(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        View(**kwargs)


def test_bad_slices() -> None:
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        Slice(0, 0, 2, 0)
    with pytest.raises(ValueError, match="start must be"):
        Slice(0, -1, 2)


def _fused_spec_views() -> dict[str, View]:
    return {"expert_gate": View(source=(2, 8, 12), slice=Slice(2, 0, 6),
                                permutation=(0, 2, 1)),
            "expert_up": View(source=(2, 8, 12), slice=Slice(2, 6, 6),
                              permutation=(0, 2, 1))}


def _fused_spec(**overrides) -> LayerSpec:
    fields = dict(
        hidden=8, intermediate=6, num_experts=2,
        routing="<softmax, top_k = 1>",
        weights={"router": "r", "expert_gate": "gu", "expert_up": "gu",
                 "expert_down": "d.{e}"},
        views=_fused_spec_views())
    fields.update(overrides)
    return LayerSpec(**fields)


def test_layer_spec_with_views() -> None:
    spec = _fused_spec()
    assert spec.checkpoint_shape("expert_gate") == (2, 8, 12)
    assert spec.checkpoint_tensors()["gu"] == ((2, 8, 12), "f32")
    text = emit_module(spec)
    assert text.count('{moe.weight = "gu"}') == 2
    assert "gate %expert_gate_view : tensor<2x6x8xf32>" in text
    assert LayerSpec.from_dict(spec.to_dict()) == spec
    rng = np.random.default_rng(0)
    tensors = {"r": rng.standard_normal((2, 8)),
               "gu": rng.standard_normal((2, 8, 12)),
               "d.0": rng.standard_normal((8, 6)),
               "d.1": rng.standard_normal((8, 6))}
    operands = spec.collect(tensors)
    np.testing.assert_array_equal(operands["expert_up"],
                                  tensors["gu"][:, :, 6:].transpose(0, 2, 1))


@pytest.mark.parametrize("overrides, message", [
    ({"views": {"expert_gate": View(source=(2, 6, 8))}}, "per-expert name"),
    ({"views": {**_fused_spec_views(), "noise_router": View(source=(2, 8))}},
     "absent operand"),
    ({"views": {"expert_gate": View(source=(2, 8, 12),
                                    slice=Slice(2, 0, 6))},
      "weights": {"router": "r", "expert_gate": "gu", "expert_up": "u.{e}",
                  "expert_down": "d.{e}"}}, "gives \\[2, 8, 6\\]"),
    ({"weights": {"router": "r", "expert_gate": "gu.{e}",
                  "expert_up": "gu", "expert_down": "d.{e}"}},
     "must not contain"),
    ({"views": {"expert_gate": View(source=(2, 8, 12), slice=Slice(
        2, 0, 6), permutation=(0, 2, 1)), "expert_up": View(
        source=(2, 6, 8))}}, "different shapes"),
    ({"views": "gu"}, "views must map operands"),
])
def test_layer_spec_rejects_bad_views(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        _fused_spec(**overrides)
