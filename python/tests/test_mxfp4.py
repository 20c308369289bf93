"""MXFP4 layers: e2m1 pairs and e8m0 scales bound as stored, decoded by the
kernels; the spec, the numpy decoding and the compiled layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import built_tools
from moe_mlir import mxfp4, safetensors_io, tools
from moe_mlir.cli import random_weights
from moe_mlir.emit import LayerSpec, emit_module

WEIGHTS = {"router": "r", "expert_gate": "e.{e}.gate.blocks",
           "expert_up": "e.{e}.up.blocks", "expert_down": "e.{e}.down.blocks",
           "gate_scale": "gate.scales", "up_scale": "up.scales",
           "down_scale": "down.scales"}
E2M1 = {op: "e2m1x2" for op in ("expert_gate", "expert_up", "expert_down")}
E8M0 = {op: "e8m0" for op in ("gate_scale", "up_scale", "down_scale")}


def _spec(**overrides) -> LayerSpec:
    """H = 72 (36 bytes, 3 scale blocks), I = 33 (odd: 17 bytes)."""
    arguments = dict(hidden=72, intermediate=33, num_experts=4,
                     routing="<softmax, top_k = 2, renormalize>",
                     weights=WEIGHTS, dtypes=E2M1, formats=E8M0,
                     weight_block=(1, 32))
    arguments.update(overrides)
    return LayerSpec(**arguments)


def test_decode_pairs() -> None:
    # Codes 1 (0.5) and 15 (-6) in one byte, 8 (-0) and 7 (6) in the next.
    pairs = np.array([[0xF1, 0x78]], np.uint8)
    np.testing.assert_array_equal(mxfp4.decode_pairs(pairs, 4),
                                  [[0.5, -6.0, -0.0, 6.0]])
    # An odd depth drops the last high nibble.
    np.testing.assert_array_equal(mxfp4.decode_pairs(pairs, 3),
                                  [[0.5, -6.0, -0.0]])
    with pytest.raises(ValueError, match="do not hold 5 values"):
        mxfp4.decode_pairs(pairs, 5)
    # Every code, as the blocks' decoding has it.
    codes = np.arange(16, dtype=np.uint8)
    np.testing.assert_array_equal(
        mxfp4.decode_pairs(codes[0::2] | (codes[1::2] << 4), 16), mxfp4.E2M1)


def test_decode_e8m0() -> None:
    scales = mxfp4.decode_e8m0(np.array([127, 128, 0, 254, 255], np.uint8))
    np.testing.assert_array_equal(scales, [1.0, 2.0, 2.0 ** -127, 2.0 ** 127,
                                           2.0 ** 128])


def test_spec_shapes_and_text() -> None:
    spec = _spec()
    assert spec.shape("expert_gate") == (4, 33, 36)
    assert spec.logical_shape("expert_gate") == (4, 33, 72)
    assert spec.shape("expert_down") == (4, 72, 17)
    assert spec.shape("gate_scale") == (4, 33, 3)
    assert spec.shape("down_scale") == (4, 72, 2)
    text = emit_module(spec)
    assert "%expert_down: tensor<4x72x17xi8> {moe.weight = " \
        "\"e.{e}.down.blocks\"}" in text
    assert "%down_scale: tensor<4x72x2xf32> {moe.weight = \"down.scales\", " \
        "moe.weight_format = \"e8m0\"}" in text
    assert "weight_block [1, 32]" in text
    tensors = spec.checkpoint_tensors()
    assert tensors["e.0.down.blocks"] == ((72, 17), "u8")
    assert tensors["down.scales"] == ((4, 72, 2), "u8")
    assert LayerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("overrides, message", [
    (dict(weights={k: v for k, v in WEIGHTS.items() if k != "up_scale"},
          formats={k: v for k, v in E8M0.items() if k != "up_scale"}),
     "an e2m1x2 weight needs its block scale up_scale"),
    (dict(dtypes={**E2M1, "router": "e2m1x2"}),
     "only projection weights may be e2m1x2"),
    (dict(formats={**E8M0, "router": "e8m0"}),
     "router: e8m0 is a format of block scales"),
    (dict(formats={**E8M0, "router": "e4m3"}),
     "unknown weight format 'e4m3'"),
    (dict(weights={**WEIGHTS, "up_scale": "e.{e}.up.scales"}),
     "an e8m0 operand is one f32 tensor"),
])
def test_spec_rejects(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**overrides)


def test_collect_decodes() -> None:
    spec = _spec()
    tensors, _ = random_weights(spec, seed=3)
    operands = spec.collect(tensors)
    assert set(operands) == {"router", "expert_gate", "expert_up",
                             "expert_down"}
    blocks = np.stack([tensors[f"e.{e}.down.blocks"] for e in range(4)])
    scales = mxfp4.decode_e8m0(tensors["down.scales"])
    expected = mxfp4.decode_pairs(blocks, 33) * \
        np.repeat(scales, 32, axis=-1)[..., :33]
    np.testing.assert_array_equal(operands["expert_down"], expected)


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime library is "
                    "not built")
@pytest.mark.parametrize("shared", [False, True])
def test_compiled_equals_reference(tmp_path, shared) -> None:
    """The fast path (e2m1 pairs decoded to bf16 pairs in the kernels) and
    the reference lowering against the float64 numpy layer, T = 0, 1, 37,
    300, 2049."""
    overrides = {}
    if shared:
        overrides = dict(
            weights={**WEIGHTS, "shared_gate": "s.gate", "shared_up": "s.up",
                     "shared_down": "s.down", "shared_gate_scale": "s.gs",
                     "shared_up_scale": "s.us", "shared_down_scale": "s.ds"},
            dtypes={**E2M1, "shared_gate": "e2m1x2", "shared_up": "e2m1x2",
                    "shared_down": "e2m1x2"},
            formats={**E8M0, "shared_gate_scale": "e8m0",
                     "shared_up_scale": "e8m0", "shared_down_scale": "e8m0"},
            shared_intermediate=40)
    spec = _spec(**overrides)
    tensors, dtypes = random_weights(spec, seed=5)
    safetensors_io.save_file(str(tmp_path / "model.safetensors"), tensors,
                             dtypes)
    with open(tmp_path / "layer.json", "w", encoding="utf-8") as file:
        json.dump(spec.to_dict(), file)
    layer = str(tmp_path / "layer.mlir")
    with open(layer, "w", encoding="utf-8") as file:
        file.write(emit_module(spec))
    for variant, flags in (("fast", ()), ("reference", ("--reference",))):
        module = str(tmp_path / f"{variant}.so")
        done = subprocess.run([tools.find_tool("moe-compile"), layer, "-o",
                               module, *flags], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr
        for tokens in (0, 1, 37, 300, 2049):
            x = np.random.default_rng(tokens).standard_normal(
                (tokens, spec.hidden)).astype(np.float32)
            x_path = str(tmp_path / f"x{tokens}.npy")
            y_path = str(tmp_path / f"y_{variant}{tokens}.npy")
            np.save(x_path, x)
            done = built_tools.moe_mlir("run", module, "--weights",
                                        str(tmp_path), "--input", x_path,
                                        "--output", y_path)
            assert done.returncode == 0, done.stderr
            assert np.load(y_path).shape == (tokens, spec.hidden)
            if not tokens:
                continue
            # bf16 products on the fast path; f32 on the reference one.
            rtol = "2e-2" if variant == "fast" else "1e-4"
            done = built_tools.moe_mlir(
                "reference", "--spec", str(tmp_path / "layer.json"),
                "--input", x_path, "--check", y_path, "--rtol", rtol)
            assert done.returncode == 0, (variant, tokens, done.stdout,
                                          done.stderr)
    assert os.path.getsize(tmp_path / "fast.so") > 0


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime library is "
                    "not built")
@pytest.mark.parametrize("quantization", ["mxfp4", "fp8"])
def test_flush_to_zero(tmp_path, quantization) -> None:
    """A caller's flush-to-zero mode (PyTorch's set_flush_denormal: FTZ and
    DAZ on its thread) does not zero the e2m1 values 0.5 (codes 1 and 9),
    the e4m3 subnormals or any other: the decoding makes no f32 subnormal.
    The reference lowering decodes by arithmetic, in the caller's thread."""
    spec = _spec()
    if quantization == "fp8":
        spec = LayerSpec(
            hidden=72, intermediate=33, num_experts=4,
            routing="<softmax, top_k = 2, renormalize>",
            weights={"router": "r", "expert_up": "e.{e}.up",
                     "expert_down": "e.{e}.down",
                     "up_scale": "e.{e}.up_scale",
                     "down_scale": "e.{e}.down_scale"},
            dtypes={"expert_up": "f8e4m3fn", "expert_down": "f8e4m3fn"},
            activation="relu", weight_block=(16, 16))
    tensors, dtypes = random_weights(spec, seed=11)
    safetensors_io.save_file(str(tmp_path / "model.safetensors"), tensors,
                             dtypes)
    layer = str(tmp_path / "layer.mlir")
    with open(layer, "w", encoding="utf-8") as file:
        file.write(emit_module(spec))
    module = str(tmp_path / "reference.so")
    done = subprocess.run([tools.find_tool("moe-compile"), layer, "-o",
                           module, "--reference"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    code = ("import sys, numpy as np, torch\n"
            "from moe_mlir import runtime\n"
            "module, ckpt, out, flush = sys.argv[1:5]\n"
            "assert torch.set_flush_denormal(flush == '1')\n"
            "x = np.random.default_rng(5).standard_normal((9, 72))\n"
            "np.save(out, runtime.load_layer(module, ckpt)(\n"
            "    x.astype(np.float32)))\n")
    outputs = []
    for flush in ("0", "1"):
        out = str(tmp_path / f"y{flush}.npy")
        done = subprocess.run(
            [sys.executable, "-c", code, module, str(tmp_path), out, flush],
            capture_output=True, text=True, check=False, timeout=300,
            env={**os.environ,
                 "PYTHONPATH": os.path.join(os.path.dirname(__file__),
                                            os.pardir)})
        assert done.returncode == 0, done.stderr
        outputs.append(np.load(out))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_quantize() -> None:
    """The OCP MX recipe: a group's scale 2^(floor(log2 max) - 2), values
    rounded to the nearest e2m1 (saturated at 6), zero groups scale 2^-127;
    decode() gives the rounded weight back."""
    group = np.array([[0.0] * 31 + [12.0]])
    blocks, scales = mxfp4.quantize(group)
    assert scales.tolist() == [[127 + 3 - 2]]        # 12 -> 2^3, scale 2
    np.testing.assert_array_equal(mxfp4.decode(blocks, scales), group)
    # 7 / 2^(2 - 2) saturates at 6; 0.3 rounds to 0.5, -1.2 to -1.
    values = np.zeros((1, 32))
    values[0, :3] = [7.0, 0.3, -1.2]
    blocks, scales = mxfp4.quantize(values)
    assert scales.tolist() == [[127]]
    np.testing.assert_array_equal(mxfp4.decode(blocks, scales)[0, :3],
                                  [6.0, 0.5, -1.0])
    zeros = np.zeros((2, 32))
    blocks, scales = mxfp4.quantize(zeros)
    assert scales.tolist() == [[0], [0]]
    np.testing.assert_array_equal(mxfp4.decode(blocks, scales), zeros)
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 5, 64))
    blocks, scales = mxfp4.quantize(weight)
    assert blocks.shape == (3, 5, 2, 16) and scales.shape == (3, 5, 2)
    error = np.abs(mxfp4.decode(blocks, scales) - weight)
    # Half an e2m1 step (1 at the top, 4 -> 6) of the scale, or saturation.
    peak = np.abs(weight).reshape(3, 5, 2, 32).max(axis=-1)
    assert (error.reshape(3, 5, 2, 32) <= 0.25 * peak[..., None] + 1e-12).all()
    with pytest.raises(ValueError, match="multiple of 32"):
        mxfp4.quantize(np.zeros((2, 40)))
