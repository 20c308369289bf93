"""Dense to MoE (issue 19): ``moe-dense-to-moe`` and ``moefy``.

The exactness checks that define the transformation, on the compiled fast
CPU path against the dense MLP in float64: with ``split``, no shared neurons
and every expert chosen with weight 1 (``<softmax, top_k = E,
unweighted>``), and with ``upcycle`` under normalised top-k routing, the MoE
layer equals the dense FFN (to f32 rounding; bf16 weights as stored, the
input rounded to bf16 by the kernels). SwiGLU and plain (GELU) MLPs, f32
and bf16, T = 0, 1, 37 and 300. Then ``moefy`` on generated Llama- and
Qwen2-style checkpoints: its neuron table is the pass's, its checkpoint
imports, compiles and runs with moe-run, and its trade-off falls to 0 at
K = E (split) and stays 0 (upcycle).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
import pytest

import built_tools
from moe_mlir import dense, moefy, safetensors_io
from moe_mlir.testdata import round_to_bf16

TOKENS = (0, 1, 37, 300)
HIDDEN, INTER = 48, 40

needs_tools = pytest.mark.skipif(
    not built_tools.have_runtime_tools() or built_tools.moe_opt() is None,
    reason="moe-opt, moe-compile, moe-run or the runtime library is not "
    "built")


def _mlp(tmp_path, gated: bool, dtype: str, seed: int = 0) -> dense.DenseMLP:
    """A dense MLP with its checkpoint written under tmp_path/ckpt."""
    rng = np.random.default_rng(seed)
    names = {"expert_up": "mlp.up_proj.weight",
             "expert_down": "mlp.down_proj.weight"}
    values = {"expert_up": rng.standard_normal((INTER, HIDDEN)) / 7,
              "expert_down": rng.standard_normal((HIDDEN, INTER)) / 6}
    if gated:
        names["expert_gate"] = "mlp.gate_proj.weight"
        values["expert_gate"] = rng.standard_normal((INTER, HIDDEN)) / 7
    values = {k: v.astype(np.float32) for k, v in values.items()}
    if dtype == "bf16":
        values = {k: round_to_bf16(v) for k, v in values.items()}
    storage = {"f32": "F32", "bf16": "BF16"}[dtype]
    os.makedirs(tmp_path / "ckpt", exist_ok=True)
    safetensors_io.save_file(
        tmp_path / "ckpt" / "model.safetensors",
        {names[k]: v for k, v in values.items()}, storage)
    return dense.DenseMLP(up=values["expert_up"], down=values["expert_down"],
                          gate=values.get("expert_gate"),
                          activation="silu" if gated else "gelu",
                          dtype=dtype, names=names)


def _inputs(tokens: int, dtype: str, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(
        (tokens, HIDDEN)).astype(np.float32)
    return round_to_bf16(x) if dtype == "bf16" else x


def _compile(tmp_path, text: str, options: str) -> str:
    source = tmp_path / "dense.mlir"
    source.write_text(text)
    rewritten = tmp_path / "moe.mlir"
    done = subprocess.run(
        [built_tools.moe_opt(), str(source), f"--moe-dense-to-moe={options}",
         "-o", str(rewritten)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "moe.neuron_importance" not in rewritten.read_text()
    module = str(tmp_path / "moe.so")
    done = built_tools.moe_mlir("compile", str(rewritten), "-o", module)
    assert done.returncode == 0, done.stderr
    return module


def _check_equal_to_dense(module: str, ckpt: str, mlp: dense.DenseMLP,
                          dtype: str) -> None:
    from moe_mlir.runtime import load_layer
    layer = load_layer(module, ckpt)
    for tokens in TOKENS:
        x = _inputs(tokens, dtype)
        y = layer(x)
        assert y.shape == (tokens, HIDDEN)
        ref = mlp(x)
        peak = max(np.abs(ref).max(initial=0.0), 1e-30)
        err = np.abs(y - ref).max(initial=0.0)
        # f32: rounding of sums over I; bf16: the hidden activations are
        # rounded to bf16 between the projections, as a bf16 MLP does.
        bound = 1e-5 if dtype == "f32" else 2e-2
        assert err <= bound * peak, (tokens, err, peak)


@needs_tools
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("gated", [True, False], ids=["swiglu", "gelu"])
def test_split_every_expert_unweighted_is_dense(tmp_path, gated,
                                                dtype) -> None:
    mlp = _mlp(tmp_path, gated, dtype)
    importance = np.random.default_rng(3).random(INTER)
    text = dense.emit_dense_module(mlp, importance=importance)
    # E = 6 does not divide I - S = 37: the last experts hold a padding
    # slot; the 3 most important neurons are the shared expert's.
    module = _compile(tmp_path, text, "mode=split experts=6 shared=3 "
                      "routing=<softmax,top_k=6,unweighted>")
    _check_equal_to_dense(module, str(tmp_path / "ckpt"), mlp, dtype)


@needs_tools
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("gated", [True, False], ids=["swiglu", "gelu"])
@pytest.mark.parametrize("routing", ["<softmax,top_k=2,renormalize>",
                                     "<sigmoid,top_k=3,renormalize>"])
def test_upcycle_normalised_is_dense(tmp_path, gated, dtype,
                                     routing) -> None:
    mlp = _mlp(tmp_path, gated, dtype)
    module = _compile(tmp_path, dense.emit_dense_module(mlp),
                      f"mode=upcycle experts=4 routing={routing}")
    _check_equal_to_dense(module, str(tmp_path / "ckpt"), mlp, dtype)


@needs_tools
def test_pass_split_matches_moefy(tmp_path) -> None:
    """The pass's split (neuron table, similarity router, top-2 unweighted)
    computes moefy's layer: the same transformation on IR and on values."""
    from moe_mlir.runtime import load_layer
    from moe_mlir.testdata import has_near_tie
    mlp = _mlp(tmp_path, True, "f32")
    x = _inputs(300, "f32")
    importance = moefy.neuron_importance(mlp, x)
    module = _compile(tmp_path, dense.emit_dense_module(mlp, importance=
                                                        importance),
                      "mode=split experts=4 top-k=2 shared=4")
    moe = moefy.moefy(mlp, "split", 4, 2, 4, importance)
    y = load_layer(module, str(tmp_path / "ckpt"))(x)
    ref = moe(x)
    # Tokens whose 2nd and 3rd router scores nearly tie may pick either.
    logits = x.astype(np.float64) @ moe.weights["router"].T
    clear = ~has_near_tie(logits, 2)
    assert clear.sum() > 250
    peak = np.abs(ref).max()
    assert np.abs(y - ref)[clear].max() <= 1e-5 * peak


def test_split_is_moebert_order() -> None:
    shared, table = moefy.split_neurons(
        np.array([0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7, 0.4]), 4, 2)
    np.testing.assert_array_equal(shared, [1, 4])
    np.testing.assert_array_equal(table, [[6, 5], [2, 0], [7, -1], [3, -1]])
    # Ties keep the index order; every non-shared neuron is in one expert.
    shared, table = moefy.split_neurons(np.zeros(11), 3, 0)
    assert shared.size == 0
    np.testing.assert_array_equal(
        table, [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, -1]])
    with pytest.raises(ValueError, match="fewer than one for each"):
        moefy.split_neurons(np.zeros(8), 7, 2)


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("gated", [True, False], ids=["swiglu", "gelu"])
def test_moefy_tradeoff_exact_ends(tmp_path, gated, dtype) -> None:
    mlp = _mlp(tmp_path, gated, dtype)
    x = _inputs(64, dtype)
    for shared in (0, 8):
        split = moefy.moefy(mlp, "split", 5, 1, shared,
                            moefy.neuron_importance(mlp, x))
        rows = moefy.tradeoff(mlp, split, x)
        assert [r["top_k"] for r in rows] == [1, 2, 3, 4, 5]
        assert rows[-1]["relative_error"] < 1e-12
        assert rows[0]["relative_error"] > 1e-3
        errors = [r["relative_error"] for r in rows]
        assert errors == sorted(errors, reverse=True)
        assert rows[-1]["neurons"] >= 1.0   # padding slots count
    upcycled = moefy.moefy(mlp, "upcycle", 4, 2, 0)
    assert all(r["relative_error"] < 1e-12
               for r in moefy.tradeoff(mlp, upcycled, x))


def _ok(done, command: str) -> str:
    assert done.returncode == 0, f"moe_mlir {command}: {done.stderr}"
    return done.stdout


@needs_tools
@pytest.mark.parametrize("family,mode", [("llama", "split"),
                                         ("qwen2", "upcycle")])
def test_moefy_checkpoint_imports_compiles_runs(tmp_path, family,
                                                mode) -> None:
    dense_dir, out = str(tmp_path / "dense"), str(tmp_path / "moe")
    _ok(built_tools.moe_mlir(
        "make-checkpoint", "--family", family, "--hidden", str(HIDDEN),
        "--intermediate", "96", "--layers", "2", "--dtype", "bf16",
        "--quiet", "-o", dense_dir), "make-checkpoint")
    x = _inputs(120, "bf16")
    x_path = str(tmp_path / "x.npy")
    np.save(x_path, x.astype(np.float32))
    shared = ["--shared", "8"] if mode == "split" else []
    table = _ok(built_tools.moe_mlir(
        "moefy", "--hf", dense_dir, "--layer", "1", "--mode", mode,
        "--experts", "4", "--top-k", "2", *shared, "--calibration", x_path,
        "-o", out), "moefy")
    assert "| 4 |" in table
    report = json.loads((tmp_path / "moe" / "moefy_tradeoff.json")
                        .read_text())
    assert len(report["rows"]) == 4
    assert os.path.getsize(tmp_path / "moe" / "moefy_tradeoff.png") > 1000
    if mode == "upcycle":
        assert all(r["relative_error"] < 1e-12 for r in report["rows"])
    config = json.loads((tmp_path / "moe" / "config.json").read_text())
    assert config["model_type"] == "qwen2_moe"
    assert config["mlp_only_layers"] == [0]

    layer_ir, module = str(tmp_path / "l.mlir"), str(tmp_path / "l.so")
    _ok(built_tools.moe_mlir("import-hf", out, "--layer", "1", "-o",
                             layer_ir), "import-hf")
    routing = ("<softmax, top_k = 2, unweighted>" if mode == "split" else
               "<softmax, top_k = 2, renormalize>")
    assert routing in open(layer_ir).read()
    _ok(built_tools.moe_mlir("compile", layer_ir, "-o", module), "compile")
    y_path, ref_path = str(tmp_path / "y.npy"), str(tmp_path / "ref.npy")
    _ok(built_tools.moe_mlir("run", module, "--weights", out, "--input",
                             x_path, "--output", y_path), "run")
    stdout = _ok(built_tools.moe_mlir(
        "reference", "--hf", out, "--layer", "1", "--input", x_path,
        "--output", ref_path, "--check", y_path), "reference")
    assert stdout.rstrip().endswith(": ok")
    if mode == "upcycle":
        config = json.loads((tmp_path / "dense" / "config.json").read_text())
        mlp = dense.read_dense_mlp(dense_dir, 1, config)
        ref = mlp(x)
        y = np.load(y_path)
        assert np.abs(y - ref).max() <= 2e-2 * np.abs(ref).max()


def test_import_dense_layer_is_dense_form(tmp_path) -> None:
    dense_dir = str(tmp_path / "dense")
    _ok(built_tools.moe_mlir(
        "make-checkpoint", "--family", "mistral", "--hidden", "32",
        "--intermediate", "48", "--layers", "1", "--quiet", "-o",
        dense_dir), "make-checkpoint")
    text = _ok(built_tools.moe_mlir("import-hf", dense_dir, "--layer", "0",
                                    "-o", "-"), "import-hf")
    assert "routing <softmax, top_k = 1> router(%router : " \
        "tensor<1x32xf32>)" in text
    assert '"model.layers.0.mlp.gate_proj.weight"' in text
    assert "tensor.expand_shape %expert_down [[0, 1], [2]] output_shape " \
        "[1, 32, 48]" in text


@pytest.mark.parametrize("args,message", [
    (["--calibration", "missing.npy"], "missing.npy: not a readable .npy"),
    (["--calibration", "wide.npy"], "wide.npy: H = 8 but the layer has "
     "H = 32"),
    (["--calibration", "nan.npy"], "nan.npy: the tokens must be finite"),
    (["--calibration", "one.npy"], "one.npy: no tokens to hold out"),
    (["--calibration", "x.npy", "--shared", "46"], "48 neurons with 46 "
     "shared leave fewer than one for each of 4 experts"),
    (["--calibration", "x.npy", "--mode", "upcycle", "--shared", "2"],
     "shared neurons apply to --mode split"),
    (["--calibration", "x.npy", "--top-k", "5"], "top-k must be in [1, "
     "experts = 4], got 5"),
    (["--calibration", "x.npy", "--layer", "3"], "layer 3 is not a decoder "
     "layer of this model (num_hidden_layers = 1)"),
    (["--calibration", "x.npy", "--hf", "moe"], "model_type 'mixtral' is "
     "not a dense family"),
])
def test_moefy_errors(tmp_path, args, message) -> None:
    _ok(built_tools.moe_mlir(
        "make-checkpoint", "--family", "llama", "--hidden", "32",
        "--intermediate", "48", "--layers", "1", "--quiet", "-o",
        str(tmp_path / "dense")), "make-checkpoint")
    _ok(built_tools.moe_mlir(
        "make-checkpoint", "--family", "mixtral", "--hidden", "32",
        "--intermediate", "48", "--experts", "2", "--top-k", "1",
        "--layers", "1", "--quiet", "-o", str(tmp_path / "moe")),
        "make-checkpoint")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((16, 32)))
    np.save(tmp_path / "wide.npy", rng.standard_normal((16, 8)))
    nan = rng.standard_normal((16, 32))
    nan[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "one.npy", rng.standard_normal((1, 32)))
    defaults = {"--hf": "dense", "--layer": "0", "--mode": "split",
                "--experts": "4", "--top-k": "2", "-o": "out"}
    for flag, value in zip(args[::2], args[1::2]):
        defaults[flag] = value
    flags = [item for pair in defaults.items() for item in pair]
    done = built_tools.moe_mlir("moefy", *flags, cwd=str(tmp_path))
    assert message in built_tools.one_line_error(done, "moefy")


@needs_tools
def test_split_experts_are_packed_once(tmp_path) -> None:
    """Every gather of the split (the experts', the shared expert's) reads
    its own argument through views, which moe-pack-expert-weights folds into
    packing functions: a call reads packed weights, gathers nothing."""
    from moe_mlir import tools
    mlp = _mlp(tmp_path, True, "bf16")
    source = tmp_path / "dense.mlir"
    source.write_text(dense.emit_dense_module(mlp))
    rewritten = tmp_path / "moe.mlir"
    done = subprocess.run(
        [built_tools.moe_opt(), str(source),
         "--moe-dense-to-moe=mode=split experts=4 top-k=2 shared=4",
         "-o", str(rewritten)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    lowered = tmp_path / "moe.ll.mlir"
    tools.compile_layer(rewritten, lowered, emit="mlir")
    packings = set(re.findall(r"@forward__pack\d+", lowered.read_text()))
    # Experts' gate and up (one function: the same table), down, the shared
    # expert's gate and up, its down.
    assert len(packings) == 4, packings


@pytest.mark.parametrize("scores,message", [
    (np.zeros(7), "expected 48 finite scores, got float64 [7]"),
    (np.full(48, 1e39), "expected 48 finite scores, got float64 [48]"),
    (np.array(["a"] * 48), "expected 48 finite scores, got <U1 [48]"),
])
def test_import_importance_errors(tmp_path, scores, message) -> None:
    _ok(built_tools.moe_mlir(
        "make-checkpoint", "--family", "llama", "--hidden", "32",
        "--intermediate", "48", "--layers", "1", "--quiet", "-o",
        str(tmp_path / "dense")), "make-checkpoint")
    np.save(tmp_path / "s.npy", scores)
    done = built_tools.moe_mlir("import-hf", str(tmp_path / "dense"),
                                "--layer", "0", "--importance",
                                str(tmp_path / "s.npy"), "-o", "-")
    assert message in built_tools.one_line_error(done, "import-hf")


@needs_tools
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_torch_mlp_split_and_upcycle(tmp_path, kind, dtype) -> None:
    """A PyTorch MLP (LlamaMLP-like SwiGLU, or BERT-like GELU fc1/fc2 with
    biases) imported in the dense-expert form; split with every expert
    unweighted and upcycled under top-2, compiled: each equals the module's
    own output."""
    torch = pytest.importorskip("torch")
    from moe_mlir.runtime import load_layer
    from moe_mlir.torch_import import import_dense_module

    torch.manual_seed(0)

    class LlamaMLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate_proj = torch.nn.Linear(HIDDEN, INTER, bias=False)
            self.up_proj = torch.nn.Linear(HIDDEN, INTER, bias=False)
            self.down_proj = torch.nn.Linear(INTER, HIDDEN, bias=False)
            self.act_fn = torch.nn.SiLU()

        def forward(self, x):
            return self.down_proj(self.act_fn(self.gate_proj(x))
                                  * self.up_proj(x))

    class BertFFN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(HIDDEN, INTER)
            self.fc2 = torch.nn.Linear(INTER, HIDDEN)
            self.activation_fn = torch.nn.GELU()

        def forward(self, x):
            return self.fc2(self.activation_fn(self.fc1(x)))

    module = (LlamaMLP() if kind == "llama" else BertFFN())
    if dtype == "bf16":
        module = module.to(torch.bfloat16)
    imported = import_dense_module(module, prefix="mlp.")
    paths = imported.write(tmp_path / "dense")
    x = _inputs(37, dtype)
    with torch.no_grad():
        expected = module.float()(torch.from_numpy(x)).double().numpy()
    ckpt = str(tmp_path / "dense")
    text = open(paths["module"]).read()
    for options in ("mode=split experts=4 routing=<softmax,top_k=4,unweighted>",
                    "mode=upcycle experts=4 top-k=2"):
        work = tmp_path / options.split()[0].replace("=", "-")
        work.mkdir()
        module_path = _compile(work, text, options)
        y = load_layer(module_path, ckpt)(x)
        peak = np.abs(expected).max()
        bound = 1e-5 if dtype == "f32" else 2e-2
        assert np.abs(y - expected).max() <= bound * peak, options


def test_torch_dense_import_errors() -> None:
    torch = pytest.importorskip("torch")
    from moe_mlir.torch_import import TorchImportError, import_dense_module

    class NoProjections(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)

    class Plain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up_proj = torch.nn.Linear(4, 8, bias=False)
            self.down_proj = torch.nn.Linear(8, 4, bias=False)
            self.act_fn = torch.nn.Tanh()

    with pytest.raises(TorchImportError, match="no projections the importer"):
        import_dense_module(NoProjections())
    with pytest.raises(TorchImportError, match="unsupported activation Tanh"):
        import_dense_module(Plain())
    with pytest.raises(TorchImportError, match="unknown activation 'swish'"):
        import_dense_module(Plain(), activation="swish")
    with pytest.raises(TorchImportError, match="expected an nn.Module"):
        import_dense_module("mlp")
    plain = Plain()
    plain.down_proj = torch.nn.Linear(8, 4, bias=False).to(torch.float16)
    with pytest.raises(TorchImportError, match="several dtypes"):
        import_dense_module(plain, activation="relu")
