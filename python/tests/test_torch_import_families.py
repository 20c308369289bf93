"""torch_import on blocks that keep their model's configuration.

Every family of test_hf_families (its checkpoints and its forward, written
from the ``transformers`` modeling code, are shared): the block's tensors
held by a module as ``transformers`` v4 names them (the checkpoint's names)
and, for the families whose checkpoints store each expert apart, as v5
holds them (a router module holding ``weight``, one experts module holding
3-D ``gate_up_proj`` ``[E, 2I, H]`` and ``down_proj`` ``[E, H, I]``), with
the model's ``config``; imported and compared with the family's forward.
Skipped without torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
import pytest

import test_hf_families as hf
import test_seq2seq_import as s2s
from moe_mlir import families, family_cases
from moe_mlir.family_cases import max_error
from moe_mlir.layer import layer as layer_reference

torch = pytest.importorskip("torch")
nn = torch.nn

from moe_mlir.torch_import import (TorchImportError, import_model,  # noqa
                                   import_module)


class Config:
    """What a transformers configuration offers the importer."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)


def submodule(root: nn.Module, path: list[str]) -> nn.Module:
    """``root``'s module at ``path``, made (empty) where missing."""
    for part in path:
        if not hasattr(root, part):
            root.add_module(part, nn.Module())
        root = getattr(root, part)
    return root


def holder(tensors: dict[str, np.ndarray]) -> nn.Module:
    """A module whose ``state_dict`` is ``tensors`` (dotted names)."""
    root = nn.Module()
    for name, value in tensors.items():
        *path, leaf = name.split(".")
        submodule(root, path).register_parameter(leaf, nn.Parameter(
            torch.from_numpy(np.asarray(value, np.float32)),
            requires_grad=False))
    return root


def block_prefix(config: dict[str, Any], layer: int) -> str:
    """The names the block's tensors share in a checkpoint."""
    names = list(families.layer_spec(config, layer).weights.values())
    common = os.path.commonprefix(names)
    return common[:common.rfind(".") + 1]


def imported_output(imported, x: np.ndarray) -> np.ndarray:
    spec = imported.spec
    y, _ = layer_reference(x, imported.operands(), spec.routing,
                           spec.activation, weight_inputs=spec.weight_inputs,
                           swiglu=spec.swiglu, zero_experts=spec.zero_experts)
    return y


def check(family: hf.Family, name: str, module: nn.Module,
          tensors: dict[str, np.ndarray], layer: int, prefix: str) -> None:
    imported = import_module(module, layer=layer, prefix=prefix)
    assert imported.spec.num_experts == hf.E
    for tokens in (0, 1, 37):
        x = hf._inputs(family, tensors, layer, imported.spec, tokens,
                       seed=tokens)
        y = imported_output(imported, x)
        assert y.shape == (tokens, hf.H)
        if tokens:
            err, peak = max_error(y, hf._forward(family, tensors, layer, x))
            assert err <= 1e-9 * peak, (name, tokens, err, peak)


# gpt-oss's MXFP4 checkpoint holds bytes a module never does.
NAMED = sorted(n for n, f in hf.FAMILIES.items()
               if f.layout != "gpt_oss_mxfp4")


@pytest.mark.parametrize("name", NAMED)
def test_blocks_named_as_checkpoints(name) -> None:
    family = hf.FAMILIES[name]
    layer = family.moe_layers[-1]
    tensors = hf._checkpoint(family, "f32", seed=len(name))
    prefix = block_prefix(family.config, layer)
    module = holder({k[len(prefix):]: v for k, v in tensors.items()
                     if k.startswith(prefix)})
    module.config = Config(family.config)
    check(family, name, module, tensors, layer, prefix)
    # The names are those of the checkpoint, under the prefix given.
    imported = import_module(module, layer=layer, prefix=prefix)
    assert set(imported.tensors) <= set(tensors)


_V5_ROUTERS = ("gate", "router")
_V5_SHARED = ("shared_expert", "shared_experts", "shared_mlp")
_V5_OPERANDS = {"router", "router_bias", "score_bias", "expert_gate",
                "expert_up", "expert_down", "shared_gate", "shared_up",
                "shared_down", "shared_expert_gate"}


def v5_layout(spec, prefix: str) -> dict[str, str] | None:
    """``operand -> name`` (less ``prefix``) of a block that v5 holds as
    the importer reads it (a ``gate`` or ``router`` module holding the
    router's tensors or one nn.Linear of them, gated experts, shared
    experts of nn.Linear layers); ``None`` for another block."""
    names = {op: name[len(prefix):] for op, name in spec.weights.items()}
    if set(names) - _V5_OPERANDS or "expert_gate" not in names:
        return None
    router = names["router"].split(".")
    if router[0] not in _V5_ROUTERS or len(router) not in (2, 3):
        return None
    if "router_bias" in names and \
            not names["router_bias"].startswith(router[0] + "."):
        return None
    if "score_bias" in names and \
            not names["score_bias"].startswith(router[0] + "."):
        # v5 moves ERNIE's moe_statics into its router.
        names["score_bias"] = f"{router[0]}.{names['score_bias']}"
    if "shared_gate" in names and \
            names["shared_gate"].split(".")[0] not in _V5_SHARED:
        return None
    return names


def v5_block(spec, names: dict[str, str],
             tensors: dict[str, np.ndarray], prefix: str) -> nn.Module:
    """The block as transformers v5 holds it: a router module, one experts
    module of 3-D tensors (``gate_up_proj`` ``[E, 2I, H]``, the gate half
    first; ``down_proj`` ``[E, H, I]``), shared experts of nn.Linear
    layers."""
    def parameter(value: np.ndarray) -> nn.Parameter:
        return nn.Parameter(torch.from_numpy(np.asarray(value, np.float32)),
                            requires_grad=False)

    def linear(weight: np.ndarray, bias: np.ndarray | None = None):
        layer = nn.Linear(weight.shape[1], weight.shape[0],
                          bias=bias is not None)
        layer.weight = parameter(weight)
        if bias is not None:
            layer.bias = parameter(bias)
        return layer

    def tensor(operand: str) -> np.ndarray:
        name = prefix + names[operand]
        return tensors[name] if name in tensors else \
            tensors[prefix + names[operand].split(".", 1)[1]]

    module = nn.Module()
    path = names["router"].split(".")
    bias = tensor("router_bias") if "router_bias" in names else None
    if len(path) == 3:      # a module holding one nn.Linear (gate.wg)
        router = nn.Module()
        router.add_module(path[1], linear(tensor("router"), bias))
    else:
        router = nn.Module()
        router.weight = parameter(tensor("router"))
        if bias is not None:
            router.bias = parameter(bias)
    if "score_bias" in names:   # a buffer, where the checkpoint keeps it
        *owners, leaf = names["score_bias"].split(".")[1:]
        submodule(router, owners).register_buffer(leaf, torch.from_numpy(
            tensor("score_bias").astype(np.float32)))
    module.add_module(path[0], router)
    operands = spec.collect(tensors)
    experts = nn.Module()
    gate_up = np.concatenate(
        [operands["expert_gate"], operands["expert_up"]], axis=1)
    if spec.zero_experts:
        # LongCat's v5 experts hold rows for its identity experts too.
        gate_up = np.concatenate([gate_up, np.full(
            (spec.zero_experts,) + gate_up.shape[1:], np.nan, np.float32)])
    experts.gate_up_proj = parameter(gate_up)
    experts.down_proj = parameter(operands["expert_down"])
    experts.act_fn = nn.SiLU()
    module.experts = experts
    if "shared_gate" in names:
        shared = nn.Module()
        for op in ("shared_gate", "shared_up", "shared_down"):
            setattr(shared, names[op].split(".")[1], linear(tensor(op)))
        shared.act_fn = nn.SiLU()
        setattr(module, names["shared_gate"].split(".")[0], shared)
    if "shared_expert_gate" in names:
        setattr(module, names["shared_expert_gate"].split(".")[0],
                linear(tensor("shared_expert_gate")))
    return module


def hf_v5_case(name: str):
    family = hf.FAMILIES[name]
    layer = family.moe_layers[-1]
    tensors = hf._checkpoint(family, "f32", seed=len(name))
    prefix = block_prefix(family.config, layer)
    spec = families.layer_spec(family.config, layer)
    return family, layer, tensors, prefix, spec, v5_layout(spec, prefix)


V5 = sorted(n for n in hf.FAMILIES if hf_v5_case(n)[-1] is not None)


def hf_v5_module(name: str):
    """(family, layer, tensors, the v5 block) of a test_hf_families case."""
    family, layer, tensors, prefix, spec, names = hf_v5_case(name)
    return family, layer, tensors, v5_block(spec, names, tensors, prefix)


@pytest.mark.parametrize("name", V5)
def test_v5_blocks(name) -> None:
    family, layer, tensors, prefix, spec, names = hf_v5_case(name)
    module = v5_block(spec, names, tensors, prefix)
    # v5's experts module keeps the configuration (the decorator's).
    module.experts.config = Config(family.config)
    check(family, name, module, tensors, layer, "")
    imported = set(import_module(module, layer=layer).tensors)
    assert "experts.gate_up_proj" in imported
    assert "experts.down_proj" in imported


@pytest.mark.parametrize("name", sorted(family_cases.FAMILIES))
def test_first_families(name) -> None:
    """The families of moe_mlir.family_cases (Mixtral, Qwen2-MoE, Qwen3-MoE,
    DeepSeek-V2 and -V3), named as checkpoints and as v5 holds them."""
    case = family_cases.make_case(name)
    prefix = block_prefix(case.config, case.layer)
    named = holder({k[len(prefix):]: v for k, v in case.tensors.items()
                    if k.startswith(prefix)})
    named.config = Config(case.config)
    layout = v5_layout(case.spec, prefix)
    assert layout is not None
    fused = v5_block(case.spec, layout, case.tensors, prefix)
    fused.experts.config = Config(case.config)
    for module in (named, fused):
        imported = import_module(module, layer=case.layer)
        for tokens in (1, 37):
            x = case.sample_inputs(tokens)
            err, peak = max_error(imported_output(imported, x),
                                  case.reference(x))
            assert err <= 1e-9 * peak, (name, tokens, err, peak)


@pytest.mark.parametrize("name", ["glm4v_moe", "qwen3_vl_moe",
                                  "qwen3_omni_moe"])
def test_v5_text_configuration(name) -> None:
    """A multimodal model's text configuration (``*_text``, what v5's
    experts keep) is read as its family's nested one."""
    family, layer, tensors, module = hf_v5_module(name)
    text = dict(family.text_config(family.config))
    text["model_type"] = f"{name}_text"
    module.experts.config = Config(text)
    check(family, name, module, tensors, layer, "")


def test_configured_blocks_refused() -> None:
    family, layer, tensors, module = hf_v5_module("glm4_moe")
    module.experts.config = Config(family.config)
    # A layer the configuration makes dense.
    dense = next(n for n in range(hf.LAYERS) if n not in family.moe_layers)
    with pytest.raises(TorchImportError, match=f"layer {dense} of this "
                       "glm4_moe model is a dense MLP"):
        import_module(module, layer=dense)
    # Sizes the configuration does not give the layer.
    config = dict(family.config, moe_intermediate_size=hf.I + 8)
    module.experts.config = Config(config)
    with pytest.raises(TorchImportError, match=f"intermediate size is {hf.I}, "
                       f"its configuration's layer has {hf.I + 8}"):
        import_module(module, layer=layer)
    # A configuration with a shared expert the module lacks.
    module.experts.config = Config(family.config)
    del module.shared_experts
    with pytest.raises(TorchImportError, match="shared_down: only the "
                       "block's configuration has it"):
        import_module(module, layer=layer)
    # Layers the configuration does not have.
    for layer_given in (-1, hf.LAYERS):
        with pytest.raises(TorchImportError, match=f"layer {layer_given} is "
                           f"out of range: this glm4_moe model has "
                           f"{hf.LAYERS} layers"):
            import_module(module, layer=layer_given)
    for layer_given in (True, "1"):
        with pytest.raises(TorchImportError, match="layer= must be a decoder "
                           "layer's index"):
            import_module(module, layer=layer_given)
    # A K the configuration does not give the layer.
    module.gate.top_k = hf.K + 1
    with pytest.raises(TorchImportError, match=f"the block's top_k is "
                       f"{hf.K + 1}, its configuration's layer has {hf.K}"):
        import_module(module, layer=layer)
    del module.gate.top_k
    # layer= without a configuration to read it from.
    del module.experts.config
    with pytest.raises(TorchImportError, match="layer= needs a block"):
        import_module(module, layer=layer)
    # The correction bias without the configuration's routing.
    with pytest.raises(TorchImportError, match="e_score_correction_bias "
                       "needs the model's configuration"):
        import_module(module)


def test_configuration_on_the_shared_expert() -> None:
    """Llama 4's v5 block keeps its configuration on its shared expert
    only; its fused experts are the checkpoint's."""
    family = hf.FAMILIES["llama4_text"]
    layer = family.moe_layers[-1]
    tensors = hf._checkpoint(family, "f32", seed=9)
    prefix = block_prefix(family.config, layer)
    module = holder({k[len(prefix):]: v for k, v in tensors.items()
                     if k.startswith(prefix)})
    module.shared_expert.config = Config(family.config)
    check(family, "llama4_text", module, tensors, layer, prefix)
    assert import_module(module).spec.weight_inputs


def test_whole_models() -> None:
    """import_model finds the block of a decoder layer in a whole model:
    at its checkpoint path (v4), or as the decoder layer's child holding
    the experts where v5 renamed it (Mixtral's block_sparse_moe: mlp)."""
    case = family_cases.make_case("mixtral")
    named = holder(case.tensors)
    named.config = Config(case.config)
    prefix = block_prefix(case.config, case.layer)
    fused = v5_block(case.spec, v5_layout(case.spec, prefix), case.tensors,
                     prefix)
    renamed = nn.Module()
    submodule(renamed, ["model", "layers", str(case.layer)]).add_module(
        "mlp", fused)
    renamed.config = Config(case.config)
    x = case.sample_inputs(19)
    for model, path in ((named, prefix), (renamed,
                                          f"model.layers.{case.layer}.mlp.")):
        imported = import_model(model, case.layer)
        assert all(name.startswith(path) for name in imported.tensors)
        err, peak = max_error(imported_output(imported, x), case.reference(x))
        assert err <= 1e-9 * peak
    with pytest.raises(TorchImportError, match="keeps no configuration"):
        import_model(nn.Module(), 1)
    with pytest.raises(TorchImportError, match="the model has no MoE block "
                       "at model.layers.1.block_sparse_moe"):
        import_model(nn.Module(), 1, config=case.config)
    with pytest.raises(TorchImportError, match="model_type 'llama' is no "
                       "family"):
        import_model(nn.Module(), 1, config={"model_type": "llama"})


def test_block_knows_its_layer() -> None:
    """HunYuan's blocks keep their layer (layer_idx), whose K the
    configuration may give apart: the block's is read, not the first MoE
    layer's."""
    family = hf.FAMILIES["hunyuan_v1_moe"]
    config = json.loads(json.dumps(family.config))
    family.text_config(config)["moe_topk"] = [1, 2, 1, 2]
    layer = 3
    tensors = hf._checkpoint(family, "f32", seed=11)
    spec = families.layer_spec(config, layer)
    prefix = block_prefix(config, layer)
    module = v5_block(spec, v5_layout(spec, prefix), tensors, prefix)
    module.config = Config(config)
    assert import_module(module).spec.routing.top_k == 1    # layer 0's
    module.layer_idx = layer
    assert import_module(module).spec.routing.top_k == 2


@pytest.mark.parametrize("config, layer", [
    (s2s.SWITCH, "encoder.1"), (s2s.SWITCH, "decoder.3"),
    (s2s.NLLB, "encoder.1"), (s2s.NLLB, "decoder.3")])
def test_encoder_decoder_blocks(config, layer) -> None:
    """Switch Transformers' and NLLB-MoE's blocks (capacity-limited top-1
    and top-2 routing), named as their checkpoints, with their
    configuration; whole models through import_model."""
    tensors = s2s._tensors(config, seed=7)
    stack, index = layer.split(".")
    model = holder(tensors)
    model.config = Config(config)
    imported = import_model(model, layer)
    prefix = os.path.commonprefix(list(imported.spec.weights.values()))
    block = model.get_submodule(prefix[:prefix.rfind(".")])
    assert import_module(block, config=config, layer=layer).spec == \
        dataclasses.replace(imported.spec, weights={
            op: name[prefix.rfind(".") + 1:]
            for op, name in imported.spec.weights.items()})
    for tokens in (1, 37):
        x = s2s._tokens(tokens, seed=int(index)).astype(np.float64)
        if config is s2s.SWITCH:
            ref, _ = s2s._switch_forward(x, tensors, stack, int(index),
                                         config["expert_capacity"])
        else:
            ref = s2s._nllb_forward(x, tensors, stack, int(index), config)
            ref = ref[0] if isinstance(ref, tuple) else ref
        err, peak = max_error(imported_output(imported, x), ref)
        assert err <= 1e-9 * peak, (layer, tokens, err, peak)
    with pytest.raises(TorchImportError, match="bad layer 1: .* is an "
                       "encoder-decoder model; address its layers as "
                       "encoder.N or decoder.N"):
        import_model(model, 1)
    with pytest.raises(TorchImportError, match="is a dense feed-forward "
                       "block"):
        import_model(model, f"{stack}.0")
