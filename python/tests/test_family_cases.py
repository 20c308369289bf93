"""family_cases: generated checkpoints, inputs, references; the lit driver.

The integration driver (test/Integration/CPU/Inputs/run_family.py) is run
here end to end against a stand-in for moe-run that interprets the emitted
IR with the numpy reference, so its plumbing (files, weight binding by
``moe.weight`` names, comparisons, failure reports) is tested without the
compiler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from moe_mlir import family_cases, safetensors_io
from moe_mlir.emit import SCALES
from moe_mlir.gating import near_tie_tokens
from moe_mlir.testdata import round_to_bf16

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "test", "Integration", "CPU", "Inputs",
                      "run_family.py")

CASES = [(family, storage) for family in sorted(family_cases.FAMILIES)
         for storage in family_cases.STORAGES]


@pytest.mark.parametrize("family,storage", CASES)
def test_case_tensors(family, storage) -> None:
    case = family_cases.make_case(family, storage)
    spec = case.spec
    experts = [case.config[key] for key in ("num_local_experts",
               "num_experts", "n_routed_experts") if key in case.config]
    assert experts == [spec.num_experts]
    layer_tensors = spec.checkpoint_tensors()
    assert set(layer_tensors) < set(case.tensors)  # plus unrelated ones
    assert "model.layers.1.self_attn.q_proj.weight" in case.tensors
    assert "model.embed_tokens.weight" in case.tensors
    stored_name = {"f8e4m3fn": "F8_E4M3"}
    for name, (shape, dtype) in layer_tensors.items():
        assert case.tensors[name].shape == shape
        assert case.storage_dtypes[name] == stored_name.get(dtype,
                                                            dtype.upper())
    bias = spec.weights.get("score_bias")
    scales = {name for op in SCALES if op in spec.weights
              for name in layer_tensors if name.endswith("_scale_inv")}
    assert bool(scales) == (storage == "fp8")
    for name, value in case.tensors.items():
        if case.storage_dtypes[name] == "F8_E4M3":
            assert value.dtype == np.uint8
            continue
        assert value.dtype == np.float32
        if name == bias or name in scales:
            assert case.storage_dtypes[name] == "F32"
        elif storage in ("bf16", "fp8"):
            np.testing.assert_array_equal(value, round_to_bf16(value))
        elif storage == "f16":
            np.testing.assert_array_equal(
                value, value.astype(np.float16).astype(np.float32))


def test_unrelated_layers() -> None:
    # mixtral and qwen3: layer 0 is another MoE layer, same shapes.
    case = family_cases.make_case("mixtral", "f32")
    a = case.tensors["model.layers.0.block_sparse_moe.experts.2.w1.weight"]
    b = case.tensors["model.layers.1.block_sparse_moe.experts.2.w1.weight"]
    assert a.shape == b.shape and not np.array_equal(a, b)
    # DeepSeek and Qwen2: layer 0 is dense, `mlp.gate_proj` next to `mlp.gate`.
    for family in ("deepseek_v3", "deepseek_v2", "qwen2_moe"):
        case = family_cases.make_case(family, "f32")
        assert "model.layers.0.mlp.gate_proj.weight" in case.tensors
        assert "model.layers.0.mlp.gate.weight" not in case.tensors


@pytest.mark.parametrize("family,storage", CASES)
def test_inputs_and_reference(family, storage) -> None:
    case = family_cases.make_case(family, storage)
    x = case.sample_inputs(300)
    assert x.dtype == np.float32 and x.shape == (300, case.spec.hidden)
    np.testing.assert_array_equal(x, case.sample_inputs(300))  # seeded
    ops = case.operands
    assert not near_tie_tokens(x.astype(np.float64) @ ops["router"].T,
                               case.spec.routing,
                               bias=ops.get("score_bias")).any()
    counts = case.tokens_per_expert(x)
    assert counts.sum() == 300 * case.spec.routing.top_k
    idle = [e for e in range(case.spec.num_experts) if counts[e] == 0]
    assert idle == ([] if case.dead_expert is None else [case.dead_expert])
    y = case.reference(x)
    assert y.shape == x.shape
    # Well conditioned: outputs of order one, not dominated by one token.
    assert 0.3 < np.abs(y).max() < 100
    assert np.median(np.abs(y)) > 0.01 * np.abs(y).max()
    assert case.reference(case.sample_inputs(0)).shape == (0, case.spec.hidden)


def test_dead_experts() -> None:
    assert family_cases.make_case("mixtral").dead_expert == 4
    assert family_cases.make_case("deepseek_v3").dead_expert == 7
    assert family_cases.make_case("mixtral", dead_expert=False).dead_expert is None
    case = family_cases.make_case("deepseek_v3", dead_expert=False)
    x = case.sample_inputs(300)
    assert (case.tokens_per_expert(x) > 0).all()


def test_config_overrides() -> None:
    case = family_cases.make_case("mixtral", "bf16", seed=3, layer=0,
                              hidden_size=64, intermediate_size=128,
                              num_local_experts=8, dead_expert=False)
    assert (case.spec.hidden, case.spec.intermediate,
            case.spec.num_experts) == (64, 128, 8)
    assert case.spec.weights["router"] == \
        "model.layers.0.block_sparse_moe.gate.weight"
    with pytest.raises(ValueError, match="unknown family"):
        family_cases.make_case("llama")


@pytest.mark.parametrize("shards", [1, 3])
def test_write_and_load(tmp_path, shards) -> None:
    case = family_cases.make_case("deepseek_v3", "bf16")
    case.write(tmp_path, shards=shards)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "deepseek_v3"
    stored = safetensors_io.load_checkpoint(tmp_path)
    assert sorted(stored) == sorted(case.tensors)
    for name, value in case.tensors.items():
        np.testing.assert_array_equal(stored[name], value)
    header, _ = safetensors_io.read_header(
        tmp_path / ("model.safetensors" if shards == 1 else
                    "model-00001-of-00003.safetensors"))
    assert {entry["dtype"] for name, entry in header.items()
            if name != "__metadata__"} <= {"BF16", "F32"}
    loaded = family_cases.load_case(tmp_path, "bf16", dead_expert=7)
    assert loaded.spec == case.spec
    x = case.sample_inputs(64)
    np.testing.assert_array_equal(loaded.reference(x), case.reference(x))


def test_tolerances() -> None:
    assert family_cases.tolerance("f32") == 1e-4
    # f16 weights are widened to f32: the f32 bound.
    assert family_cases.tolerance("f16") == 1e-4
    # bf16 weights may be multiplied by a bf16 kernel (rows rounded to bf16).
    assert family_cases.tolerance("bf16") == 2e-2
    assert family_cases.max_error(np.zeros((0, 4)), np.zeros((0, 4))) == (0, 0)
    assert family_cases.max_error(np.array([[1.0, 2.5]]),
                              np.array([[1.0, 2.0]])) == (0.5, 2.0)
    with pytest.raises(ValueError, match="does not match"):
        family_cases.max_error(np.zeros((1, 4)), np.zeros((0, 4)))


# -- the lit driver, against a stand-in for moe-run --------------------------

FAKE_MOE_RUN = textwrap.dedent('''\
    """Stand-in for moe-run: interprets the emitted IR with the reference."""
    import argparse, re, sys
    import numpy as np
    sys.path.insert(0, {python!r})
    from moe_mlir import safetensors_io
    from moe_mlir.layer import layer
    from moe_mlir.routing import parse
    p = argparse.ArgumentParser()
    for flag in ("--weights", "--input", "--output"):
        p.add_argument(flag, required=True)
    p.add_argument("module")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    text = open(a.module.replace(".so", ".mlir")).read()
    header, body = text.split(") -> ", 1)
    ckpt = safetensors_io.load_checkpoint(a.weights, np.float64)
    ops = {{}}
    for op, ty, name in re.findall(
            r"%(\\w+): tensor<([^>]*)> \\{{moe.weight = \\"([^\\"]*)\\"\\}}",
            header):
        dims = [int(d) for d in ty.split("x")[:-1]]
        if "{{e}}" in name:
            ops[op] = np.stack([ckpt[name.replace("{{e}}", str(e))]
                                for e in range(dims[0])])
        else:
            ops[op] = ckpt[name]
        if list(ops[op].shape) != dims:
            sys.exit(f"error: weight '{{name}}': bad shape")
    routing = parse(re.search(r"routing (<[^>]*>)", body).group(1))
    activation = re.search(r"activation (\\w+)", body).group(1)
    y, _ = layer(np.load(a.input), ops, routing, activation)
    np.save(a.output, (y + {offset}).astype(np.float32))
    ''')


def _fake(tmp_path, offset: float = 0.0) -> str:
    path = tmp_path / f"fake-moe-run-{offset}"
    path.write_text(f"#!{sys.executable}\n" + FAKE_MOE_RUN.format(
        python=os.path.join(ROOT, "python"), offset=offset))
    path.chmod(0o755)
    return str(path)


def _driver(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, DRIVER, *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("family,storage,shards", [
    ("qwen2_moe", "bf16", 1), ("deepseek_v3", "f32", 3),
    ("mixtral", "f32", 1)])
def test_driver(tmp_path, family, storage, shards) -> None:
    out = str(tmp_path / "case")
    done = _driver("generate", family, storage, out, "--shards", str(shards))
    assert done.returncode == 0, done.stderr
    names = sorted(os.listdir(out))
    assert names == sorted(["case.json", "ckpt"] + [
        f"x_{t}.npy" for t in (0, 1, 7, 64, 300)])
    _import(out)
    assert np.load(os.path.join(out, "x_0.npy")).shape[0] == 0
    assert ("model.safetensors.index.json" in os.listdir(
        os.path.join(out, "ckpt"))) == (shards > 1)
    module = os.path.join(out, "layer.so")
    done = _driver("check", out, "--module", module, "--moe-run",
                   _fake(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": ok;") == 5
    # A wrong output is reported per token count (T = 0 has nothing wrong).
    done = _driver("check", out, "--module", module, "--moe-run",
                   _fake(tmp_path, offset=0.1), "--tag", "bad")
    assert done.returncode == 1
    assert done.stderr.count("exceeds") == 4, done.stderr
    # Two runs compared with --same-as.
    done = _driver("check", out, "--module", module, "--moe-run",
                   _fake(tmp_path), "--tag", "t2", "--same-as", "bad")
    assert done.returncode == 1 and "differs from run bad" in done.stderr


def _import(out: str) -> None:
    """``python3 -m moe_mlir import-hf out/ckpt --layer 1 -o out/layer.mlir``."""
    done = subprocess.run(
        [sys.executable, "-m", "moe_mlir", "import-hf",
         os.path.join(out, "ckpt"), "--layer", "1", "-o",
         os.path.join(out, "layer.mlir")], capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": os.path.join(
            ROOT, "python")}, check=False)
    assert done.returncode == 0, done.stderr


def test_driver_reports_tool_failure(tmp_path) -> None:
    out = str(tmp_path / "case")
    assert _driver("generate", "qwen3_moe", "f32", out, "--tokens",
                   "0,5").returncode == 0
    done = _driver("check", out, "--module", "x.so", "--moe-run", "false")
    assert done.returncode == 1
    assert done.stderr.count("exited with 1") == 2
