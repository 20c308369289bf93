"""make-checkpoint: Hugging Face-format checkpoints of every supported
family that the importer reads like downloaded ones, and a realistic layer
(H = 1024) run end to end as the README's quick start does."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

import built_tools
from moe_mlir import checkpoints, safetensors_io
from moe_mlir.hf_import import import_hf, moe_layers

SMALL = {"hidden": 64, "intermediate": 32, "experts": 8, "layers": 2}
TOP_K = {"switch_transformers": 1, "nllb_moe": 2}


@pytest.mark.parametrize("family", checkpoints.MOE_FAMILIES)
@pytest.mark.parametrize("dtype", ["f32", "bf16", "f16"])
def test_every_family_imports(tmp_path, family, dtype) -> None:
    done = built_tools.moe_mlir(
        "make-checkpoint", "--family", family, "--hidden", "64",
        "--intermediate", "32", "--experts", "8", "--top-k",
        str(TOP_K.get(family, 2)), "--layers", "2", "--dtype", dtype,
        "--quiet", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    with open(tmp_path / "config.json", encoding="utf-8") as file:
        text = file.read()
    config = json.loads(text)
    # As transformers writes it: sorted keys, two-space indent, a newline.
    assert text == json.dumps(config, indent=2, sort_keys=True) + "\n"
    # transformers spells NLLB-MoE's model_type with a hyphen.
    assert config["model_type"] == {"nllb_moe": "nllb-moe"}.get(family,
                                                                 family)
    assert config["torch_dtype"] == {"f32": "float32", "bf16": "bfloat16",
                                     "f16": "float16"}[dtype]
    headers = safetensors_io.read_checkpoint_headers(tmp_path)
    assert set(headers) == set(checkpoints.tensor_shapes(config, dtype))
    layers = moe_layers(config)
    assert layers
    for layer in layers:
        imported = import_hf(tmp_path, layer)
        assert "moe.layer" in imported.module_text()
    stored = {d for d, _ in headers.values()}
    assert stored <= {dtype.upper(), "F32"}


DECODERS = [f for f in checkpoints.MOE_FAMILIES
            if f not in ("switch_transformers", "nllb_moe")]


@pytest.mark.parametrize("family", checkpoints.DENSE_FAMILIES)
def test_dense_family(tmp_path, family) -> None:
    """A dense family: every layer's MLP imports in the dense-expert form;
    --experts and --top-k are refused."""
    done = built_tools.moe_mlir(
        "make-checkpoint", "--family", family, "--hidden", "64",
        "--intermediate", "96", "--layers", "2", "--dtype", "bf16",
        "--quiet", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == family
    headers = safetensors_io.read_checkpoint_headers(tmp_path)
    assert set(headers) == set(checkpoints.tensor_shapes(config, "bf16"))
    # Qwen2's attention has q, k and v biases; Llama's and Mistral's none.
    assert ("model.layers.0.self_attn.q_proj.bias" in headers) == \
        (family == "qwen2")
    for layer in ("0", "1"):
        done = built_tools.moe_mlir("import-hf", str(tmp_path), "--layer",
                                    layer, "-o", "-")
        assert done.returncode == 0, done.stderr
        assert "routing <softmax, top_k = 1>" in done.stdout
        assert f"model.layers.{layer}.mlp.down_proj.weight" in done.stdout
    done = built_tools.moe_mlir(
        "make-checkpoint", "--family", family, "--hidden", "64",
        "--intermediate", "96", "--experts", "8", "--layers", "2",
        "-o", str(tmp_path / "x"))
    assert "takes no --experts or --top-k" in built_tools.one_line_error(
        done, "make-checkpoint")


@pytest.mark.parametrize("family", DECODERS)
def test_fp8_checkpoint(tmp_path, family) -> None:
    """--dtype fp8: DeepSeek-V3's FP8 layout, the expert projections (routed
    and shared) e4m3 with [128, 128] block scales, the rest bf16; the
    importer reads them as block-scaled weights."""
    done = built_tools.moe_mlir(
        "make-checkpoint", "--family", family, "--hidden", "160",
        "--intermediate", "136", "--experts", "4", "--top-k", "2",
        "--layers", "2", "--dtype", "fp8", "--quiet", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "config.json", encoding="utf-8") as file:
        config = json.load(file)
    assert config["torch_dtype"] == "bfloat16"
    assert config["quantization_config"]["weight_block_size"] == [128, 128]
    headers = safetensors_io.read_checkpoint_headers(tmp_path)
    assert set(headers) == set(checkpoints.tensor_shapes(config, "fp8"))
    fp8 = {name for name, (dtype, _) in headers.items()
           if dtype == "F8_E4M3"}
    assert fp8 and all(".experts." in n or "shared" in n for n in fp8)
    for name in fp8:
        dtype, shape = headers[name + "_scale_inv"]
        assert dtype == "F32"
        assert list(shape) == [-(-d // 128) for d in headers[name][1]]
    for layer in moe_layers(config):
        text = import_hf(tmp_path, layer).module_text()
        assert "f8E4M3FN" in text and "weight_block [128, 128]" in text


def test_fp8_seq2seq_refused(tmp_path) -> None:
    done = built_tools.moe_mlir(
        "make-checkpoint", "--family", "switch_transformers", "--hidden",
        "64", "--intermediate", "32", "--experts", "8", "--top-k", "1",
        "--layers", "2", "--dtype", "fp8", "-o", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr == ("moe_mlir make-checkpoint: error: FP8 checkpoints "
                           "are written for the decoder families, not "
                           "switch_transformers\n")


def test_bad_sizes_are_one_line(tmp_path) -> None:
    for args, message in (
            (["--top-k", "9"], "--top-k 9 exceeds --experts 8"),
            (["--top-k", "0"], "--top-k must be at least 1, got 0"),
            (["--hidden", "100000", "--intermediate", "100000", "--top-k",
              "2"], "the model has [0-9.]+ GB of f32 weights, more than "
             "half of this machine's [0-9.]+ GB of memory; choose smaller "
             "sizes")):
        done = built_tools.moe_mlir(
            "make-checkpoint", "--family", "mixtral", "--hidden", "64",
            "--intermediate", "32", "--experts", "8", "--layers", "1",
            *args, "-o", str(tmp_path))
        assert done.returncode == 1
        assert re.fullmatch(f"moe_mlir make-checkpoint: error: {message}\n",
                            done.stderr), done.stderr


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime not built")
def test_realistic_layer_end_to_end(tmp_path) -> None:
    """H = 1024, 8 experts, top-2, bf16: import, compile, run, check."""
    ckpt = tmp_path / "mixtral"
    done = built_tools.moe_mlir(
        "make-checkpoint", "--family", "mixtral", "--hidden", "1024",
        "--intermediate", "2048", "--experts", "8", "--top-k", "2",
        "--layers", "1", "--dtype", "bf16", "-o", str(ckpt))
    assert done.returncode == 0, done.stderr
    layer = tmp_path / "layer.mlir"
    for args in (["import-hf", str(ckpt), "--layer", "0", "-o", str(layer)],
                 ["compile", str(layer), "-o", str(tmp_path / "layer.so")]):
        done = built_tools.moe_mlir(*args)
        assert done.returncode == 0, done.stderr
    x = np.random.default_rng(0).standard_normal((37, 1024)).astype(
        np.float32)
    np.save(tmp_path / "x.npy", x)
    done = built_tools.moe_mlir(
        "run", str(tmp_path / "layer.so"), "--weights", str(ckpt),
        "--input", str(tmp_path / "x.npy"), "--output",
        str(tmp_path / "y.npy"))
    assert done.returncode == 0, done.stderr
    done = built_tools.moe_mlir(
        "reference", "--hf", str(ckpt), "--layer", "0", "--input",
        str(tmp_path / "x.npy"), "--check", str(tmp_path / "y.npy"))
    assert done.returncode == 0, done.stdout + done.stderr
