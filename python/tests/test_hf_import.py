"""hf_import and ``python3 -m moe_mlir import-hf``: specs, dtypes, errors.

The importer reads config.json and the safetensors headers of checkpoints
written by :mod:`moe_mlir.family_cases` (with unrelated tensors around the
layer); every error case must end in one line naming the problem. The
compiled end-to-end runs are in test_import_end_to_end.py.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

import built_tools
from moe_mlir import families, family_cases, safetensors_io, seq2seq
from moe_mlir.hf_import import ModelImportError, import_hf, moe_layers

CASES = [(family, storage) for family in sorted(family_cases.FAMILIES)
         for storage in family_cases.STORAGES]


def _write(case: family_cases.FamilyCase, directory, shards: int = 1) -> str:
    case.write(directory, shards=shards)
    return str(directory)


def _rewrite(directory, tensors, dtypes) -> None:
    """Replace the checkpoint of ``directory`` with these tensors."""
    safetensors_io.save_file(os.path.join(directory, "model.safetensors"),
                             tensors, dtypes)


def _edit_config(directory, **changes) -> None:
    path = os.path.join(directory, "config.json")
    with open(path, encoding="utf-8") as file:
        config = json.load(file)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    with open(path, "w", encoding="utf-8") as file:
        json.dump(config, file)


@pytest.mark.parametrize("family,storage", CASES)
def test_spec_matches_the_family(tmp_path, family, storage) -> None:
    case = family_cases.make_case(family, storage)
    directory = _write(case, tmp_path / "ckpt", shards=2)
    imported = import_hf(directory, case.layer)
    # The family's spec: its config in the storage dtype (FP8: bf16 with
    # the block scales of the FP8 projections).
    assert imported.spec == case.spec
    assert imported.model_type == family and imported.layer == case.layer
    if family == "deepseek_v3":
        assert imported.spec.dtype("score_bias") == "f32"
    text = imported.module_text()
    assert "func.func @forward(" in text
    for operand in imported.spec.operands:
        assert f'moe.weight = "{imported.spec.weights[operand]}"' in text


def test_layer_given_as_text_and_entry_name(tmp_path) -> None:
    case = family_cases.make_case("mixtral", "f32")
    directory = _write(case, tmp_path)
    imported = import_hf(directory, "0", func_name="layer0")
    assert imported.layer == 0
    assert imported.spec.weights["router"] == \
        "model.layers.0.block_sparse_moe.gate.weight"
    assert "func.func @layer0(" in imported.module_text()


def test_per_operand_dtypes_follow_the_checkpoint(tmp_path) -> None:
    # A router kept in F32 next to BF16 experts (as some exports do).
    case = family_cases.make_case("qwen3_moe", "bf16")
    router = case.spec.weights["router"]
    dtypes = dict(case.storage_dtypes, **{router: "F32"})
    _write(case, tmp_path)
    _rewrite(tmp_path, case.tensors, dtypes)
    spec = import_hf(tmp_path, 1).spec
    assert spec.dtype("router") == "f32"
    assert spec.dtype("expert_up") == "bf16"


def test_moe_layers() -> None:
    config = dict(family_cases.FAMILIES["qwen3_moe"], num_hidden_layers=7,
                  decoder_sparse_step=2, mlp_only_layers=[3])
    assert moe_layers(config) == [1, 5]
    config = dict(family_cases.FAMILIES["deepseek_v3"], num_hidden_layers=4)
    assert moe_layers(config) == [1, 2, 3]


# -- errors: each one line, through the API and the command line -------------

def _expect(directory, layer, pattern: str) -> None:
    with pytest.raises(ModelImportError, match=pattern):
        import_hf(directory, layer)
    done = built_tools.moe_mlir("import-hf", str(directory), "--layer",
                                str(layer), "-o",
                                os.path.join(str(directory), "out.mlir"))
    message = built_tools.one_line_error(done, "import-hf")
    assert re.search(pattern, message), message
    assert not os.path.exists(os.path.join(str(directory), "out.mlir"))


def test_layer_out_of_range(tmp_path) -> None:
    directory = _write(family_cases.make_case("mixtral", "f32"), tmp_path)
    _expect(directory, 2, r"layer 2 is out of range: this mixtral model has "
            r"2 layers \(0-1\)")
    _expect(directory, -1, "layer -1 is out of range")


def test_bad_layer_text(tmp_path) -> None:
    directory = _write(family_cases.make_case("mixtral", "f32"), tmp_path)
    _expect(directory, "first", "bad layer 'first'")


@pytest.mark.parametrize("family,changes,layer,pattern", [
    ("deepseek_v3", {}, 0, r"layer 0 of this deepseek_v3 model is a dense MLP "
     r"\(first_k_dense_replace = 1\); its MoE layers are 1$"),
    ("deepseek_v2", {"num_hidden_layers": 5, "first_k_dense_replace": 2}, 1,
     r"\(first_k_dense_replace = 2\); its MoE layers are 2-4$"),
    ("qwen2_moe", {}, 0, r"layer 0 of this qwen2_moe model is a dense MLP "
     r"\(it is in mlp_only_layers\); its MoE layers are 1$"),
    ("qwen3_moe", {"num_hidden_layers": 6, "decoder_sparse_step": 2}, 2,
     r"\(decoder_sparse_step = 2 makes it dense\); its MoE layers are "
     r"1, 3, 5$"),
])
def test_dense_layer_names_the_moe_layers(tmp_path, family, changes, layer,
                                          pattern) -> None:
    directory = _write(family_cases.make_case(family, "f32"), tmp_path)
    _edit_config(directory, **changes)
    _expect(directory, layer, pattern)


def test_unknown_model_type(tmp_path) -> None:
    directory = _write(family_cases.make_case("mixtral", "f32"), tmp_path)
    _edit_config(directory, model_type="gpt2")
    supported = sorted(set(families.FAMILIES) | set(seq2seq.FAMILIES))
    _expect(directory, 1, r"unsupported model_type 'gpt2' \(supported: "
            + re.escape(", ".join(supported)) + r"\)")
    _edit_config(directory, model_type=None)
    _expect(directory, 1, "unsupported model_type None")


def test_missing_config_key(tmp_path) -> None:
    # A key without a default upstream (DeepSeek-V2's top-k).
    directory = _write(family_cases.make_case("deepseek_v2", "f32"),
                       tmp_path / "v2")
    _edit_config(directory, num_experts_per_tok=None)
    _expect(directory, 1, "config.json: lacks num_experts_per_tok \\(its "
            "deepseek_v2 configuration has no default\\)$")
    # A key with one takes it, as in transformers: here the tensors
    # disagree with Qwen2-MoE's default moe_intermediate_size.
    directory = _write(family_cases.make_case("qwen2_moe", "f32"),
                       tmp_path / "q2")
    _edit_config(directory, moe_intermediate_size=None)
    _expect(directory, 1, "but config.json implies \\[1408, 32\\]$")


def test_missing_tensor(tmp_path) -> None:
    case = family_cases.make_case("qwen2_moe", "bf16")
    name = "model.layers.1.mlp.experts.7.up_proj.weight"
    tensors = {k: v for k, v in case.tensors.items() if k != name}
    _write(case, tmp_path)
    _rewrite(tmp_path, tensors, case.storage_dtypes)
    _expect(tmp_path, 1, f"checkpoint has no tensor '{name}' \\(the "
            "expert_up operand of layer 1\\)")


def test_shape_disagrees_with_config(tmp_path) -> None:
    directory = _write(family_cases.make_case("mixtral", "f32"), tmp_path)
    _edit_config(directory, intermediate_size=40)
    _expect(directory, 1, r"tensor 'model.layers.1.block_sparse_moe.experts."
            r"0.w1.weight' has shape \[48, 32\] but config.json implies "
            r"\[40, 32\]")
    _edit_config(directory, intermediate_size=48, num_local_experts=7)
    _expect(directory, 1, r"gate.weight' has shape \[6, 32\] but config.json "
            r"implies \[7, 32\]")


def test_unsupported_and_mixed_dtypes(tmp_path) -> None:
    case = family_cases.make_case("mixtral", "f32")
    up = "model.layers.1.block_sparse_moe.experts.{}.w3.weight"
    _write(case, tmp_path)
    _rewrite(tmp_path, case.tensors,
             dict(case.storage_dtypes, **{up.format(2): "F64"}))
    _expect(tmp_path, 1, f"tensor '{up.format(2)}' is stored as F64; layers "
            r"bind F32, BF16, F16, F8_E4M3 weights \(dequantize it first\)")
    # FP8 weights need their block scales (quantization_config), and every
    # expert's weight in FP8.
    for expert, message in (
            (0, r"tensor 'model.layers.1.block_sparse_moe.experts.\{e\}."
                r"w3.weight' is F8_E4M3 but config.json has no "
                "quantization_config"),
            (1, r"per-expert tensors 'model.layers.1.block_sparse_moe."
                r"experts.\{e\}.w3.weight' mix dtypes F32, F8_E4M3")):
        fp8 = dict(case.tensors,
                   **{up.format(expert): np.zeros((48, 32), np.uint8)})
        _rewrite(tmp_path, fp8,
                 dict(case.storage_dtypes, **{up.format(expert): "F8_E4M3"}))
        _expect(tmp_path, 1, message)
    _rewrite(tmp_path, case.tensors,
             dict(case.storage_dtypes, **{up.format(3): "BF16"}))
    _expect(tmp_path, 1, r"per-expert tensors 'model.layers.1.block_sparse_"
            r"moe.experts.\{e\}.w3.weight' mix dtypes BF16, F32")


def test_score_bias_must_be_a_float(tmp_path) -> None:
    case = family_cases.make_case("deepseek_v3", "bf16")
    bias = case.spec.weights["score_bias"]
    _write(case, tmp_path)
    _rewrite(tmp_path, case.tensors,
             dict(case.storage_dtypes, **{bias: "BF16"}))
    assert import_hf(str(tmp_path), 1).spec.dtype("score_bias") == "bf16"
    _rewrite(tmp_path, case.tensors,
             dict(case.storage_dtypes, **{bias: "F8_E4M3"}))
    _expect(tmp_path, 1, "score correction bias must be F32, BF16 or F16")


def test_bad_directories(tmp_path) -> None:
    _expect(tmp_path / "nowhere", 1, "nowhere: not a directory")
    (tmp_path / "empty").mkdir()
    _expect(tmp_path / "empty", 1, "no config.json")
    directory = _write(family_cases.make_case("mixtral", "f32"), tmp_path / "c")
    with open(os.path.join(directory, "config.json"), "w") as file:
        file.write("{not json")
    _expect(directory, 1, "config.json: cannot read it")
    with open(os.path.join(directory, "config.json"), "w") as file:
        file.write("[1, 2]")
    _expect(directory, 1, "config.json: not a JSON object")


def test_bad_checkpoints(tmp_path) -> None:
    case = family_cases.make_case("mixtral", "bf16")
    directory = _write(case, tmp_path / "a")
    path = os.path.join(directory, "model.safetensors")
    with open(path, "rb") as file:
        head = file.read(300)
    with open(path, "wb") as file:
        file.write(head)
    _expect(directory, 1, "model.safetensors: header length [0-9]+ exceeds "
            "the file")
    os.remove(path)
    _expect(directory, 1, "directory holds neither model.safetensors nor "
            "model.safetensors.index.json")
    directory = _write(case, tmp_path / "b", shards=3)
    os.remove(os.path.join(directory, "model-00002-of-00003.safetensors"))
    _expect(directory, 1, "model-00002-of-00003.safetensors: no such shard")


def test_command_line_writes_stdout_and_reports(tmp_path) -> None:
    case = family_cases.make_case("deepseek_v2", "f32")
    directory = _write(case, tmp_path)
    done = built_tools.moe_mlir("import-hf", directory, "--layer", "1",
                                "-o", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout == import_hf(directory, 1).module_text()
    out = str(tmp_path / "layer.mlir")
    done = built_tools.moe_mlir("import-hf", directory, "--layer", "1",
                                "-o", out)
    assert done.returncode == 0 and os.path.isfile(out)
    assert "deepseek_v2 layer 1, H = 32, E = 10" in done.stderr
    done = built_tools.moe_mlir("import-hf", directory, "--layer", "1",
                                "-o", str(tmp_path / "no" / "l.mlir"))
    assert "cannot write" in built_tools.one_line_error(done, "import-hf")


def test_command_line_flags() -> None:
    done = built_tools.moe_mlir("import-hf", "dir")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "moe_mlir import-hf: error: the following arguments are required: "
        "--layer, -o/--output"]
    done = built_tools.moe_mlir("frobnicate")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    done = built_tools.moe_mlir("--version")
    assert done.returncode == 0 and done.stdout.startswith("moe_mlir ")


def test_reads_no_weight_data(tmp_path, monkeypatch) -> None:
    # Headers only: importing never decodes a tensor.
    directory = _write(family_cases.make_case("qwen3_moe", "bf16"), tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("the importer read weight data")
    monkeypatch.setattr(safetensors_io, "load_file", refuse)
    monkeypatch.setattr(safetensors_io, "decode", refuse)
    assert import_hf(directory, 1).spec.num_experts == 8
