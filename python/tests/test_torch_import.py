"""torch_import: PyTorch blocks shaped like Hugging Face's, imported,
compiled, run, and compared with the module's own forward.

The blocks below are written after the Hugging Face modeling code (Mixtral's
sparse MoE block, Qwen2-MoE's with a gated shared expert) and a ReLU block
with biased ``fc1``/``fc2`` experts. Skipped without torch; the compiled
runs also need the built tools.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import built_tools
from moe_mlir import family_cases
from moe_mlir.gating import near_tie_tokens
from moe_mlir.layer import layer as layer_reference
from moe_mlir.testdata import resample_near_ties

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from moe_mlir.torch_import import TorchImportError, import_module  # noqa


class SwiGLUExpert(nn.Module):
    def __init__(self, hidden, inter, names=("w1", "w3", "w2")):
        super().__init__()
        self.names = names
        setattr(self, names[0], nn.Linear(hidden, inter, bias=False))
        setattr(self, names[1], nn.Linear(hidden, inter, bias=False))
        setattr(self, names[2], nn.Linear(inter, hidden, bias=False))
        self.act_fn = nn.SiLU()

    def forward(self, x):
        gate, up, down = (getattr(self, n) for n in self.names)
        return down(self.act_fn(gate(x)) * up(x))


class MixtralStyleBlock(nn.Module):
    """Softmax over all experts, top-k, renormalized; [B, S, H] in and out."""

    def __init__(self, hidden=32, inter=48, experts=6, top_k=2,
                 names=("w1", "w3", "w2")):
        super().__init__()
        self.top_k = top_k
        self.gate = nn.Linear(hidden, experts, bias=False)
        self.experts = nn.ModuleList(
            SwiGLUExpert(hidden, inter, names) for _ in range(experts))

    def routed(self, h):
        logits = self.gate(h)
        weights = F.softmax(logits, dim=1, dtype=torch.float)
        weights, chosen = torch.topk(weights, self.top_k, dim=-1)
        if getattr(self, "norm_topk_prob", True):
            weights = weights / weights.sum(dim=-1, keepdim=True)
        weights = weights.to(h.dtype)
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.where(chosen == e)
            if rows.numel():
                out.index_add_(0, rows, expert(h[rows]) *
                               weights[rows, slot, None])
        return out

    def forward(self, hidden_states):
        batch, seq, hidden = hidden_states.shape
        h = hidden_states.view(-1, hidden)
        return self.routed(h).view(batch, seq, hidden)


class Qwen2StyleBlock(MixtralStyleBlock):
    """Qwen2-MoE: no renormalization, a shared expert behind a sigmoid."""

    def __init__(self, hidden=32, inter=24, experts=8, top_k=3, shared=40):
        super().__init__(hidden, inter, experts, top_k,
                         names=("gate_proj", "up_proj", "down_proj"))
        self.norm_topk_prob = False
        self.shared_expert = SwiGLUExpert(
            hidden, shared, ("gate_proj", "up_proj", "down_proj"))
        self.shared_expert_gate = nn.Linear(hidden, 1, bias=False)

    def forward(self, hidden_states):
        batch, seq, hidden = hidden_states.shape
        h = hidden_states.view(-1, hidden)
        shared = torch.sigmoid(self.shared_expert_gate(h)) * \
            self.shared_expert(h)
        return (self.routed(h) + shared).view(batch, seq, hidden)


class ReluExpert(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.fc1 = nn.Linear(hidden, inter)
        self.fc2 = nn.Linear(inter, hidden)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ReluBlock(MixtralStyleBlock):
    def __init__(self, hidden=24, inter=40, experts=5):
        nn.Module.__init__(self)
        self.num_experts_per_tok = 1
        self.top_k = 1
        self.norm_topk_prob = False
        self.gate = nn.Linear(hidden, experts, bias=False)
        self.experts = nn.ModuleList(ReluExpert(hidden, inter)
                                     for _ in range(experts))


def _seeded(block_type, dtype=torch.float32, **kwargs):
    torch.manual_seed(0)
    block = block_type(**kwargs).to(dtype)
    with torch.no_grad():  # router logits of order one
        block.gate.weight.mul_(4.0)
    return block.eval()


def _inputs(imported, tokens: int, seed: int = 0) -> np.ndarray:
    """Tokens away from top-k ties (docs/Semantics.md, tolerances)."""
    rng = np.random.default_rng(seed)
    ops = imported.operands()
    spec = imported.spec

    def sample(count):
        return rng.standard_normal((count, spec.hidden)).astype(np.float32)

    def flagged(x):
        return near_tie_tokens(np.asarray(x, np.float64) @ ops["router"].T,
                               spec.routing)
    return resample_near_ties(sample(tokens), flagged, sample)


def _forward(block, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = block.float()(torch.from_numpy(x)[None])[0]
    return y.numpy().astype(np.float64)


@pytest.mark.parametrize("block_type", [MixtralStyleBlock, Qwen2StyleBlock,
                                        ReluBlock])
def test_spec_and_reference_match_forward(block_type) -> None:
    block = _seeded(block_type)
    imported = import_module(block)
    spec = imported.spec
    assert spec.num_experts == len(block.experts)
    assert spec.routing.top_k == block.top_k
    x = _inputs(imported, 50)
    ref, _ = layer_reference(x, imported.operands(), spec.routing,
                             spec.activation)
    y = _forward(block, x)
    assert np.max(np.abs(y - ref)) <= 1e-5 * np.max(np.abs(ref))


def test_names_dtypes_and_files(tmp_path) -> None:
    block = _seeded(Qwen2StyleBlock, torch.bfloat16)
    imported = import_module(block, prefix="model.layers.3.mlp.")
    spec = imported.spec
    assert spec.weights["expert_up"] == \
        "model.layers.3.mlp.experts.{e}.up_proj.weight"
    assert spec.weights["shared_expert_gate"] == \
        "model.layers.3.mlp.shared_expert_gate.weight"
    assert set(spec.dtypes.values()) == {"bf16"}
    assert spec.routing.renormalize == "none"
    assert spec.activation == "silu" and spec.shared_intermediate == 40
    names = {f"model.layers.3.mlp.{n}" for n, _ in block.named_parameters()}
    assert set(imported.tensors) == names
    paths = imported.write(tmp_path)
    from moe_mlir import safetensors_io
    headers = safetensors_io.read_checkpoint_headers(paths["weights"])
    assert {dtype for dtype, _ in headers.values()} == {"BF16"}
    with open(paths["spec"], encoding="utf-8") as file:
        assert json.load(file) == spec.to_dict()
    assert 'moe.weight = "model.layers.3.mlp.gate.weight"' in \
        open(paths["module"], encoding="utf-8").read()


def test_overrides() -> None:
    block = _seeded(MixtralStyleBlock)
    del block.top_k
    with pytest.raises(TorchImportError, match="no top_k"):
        import_module(block)
    spec = import_module(block, top_k=3, renormalize=False,
                         activation="gelu").spec
    assert (spec.routing.top_k, spec.routing.renormalize,
            spec.activation) == (3, "none", "gelu")


def test_unsupported_modules() -> None:
    with pytest.raises(TorchImportError, match="expected an nn.Module"):
        import_module(object())
    block = _seeded(MixtralStyleBlock)
    block.experts.append(SwiGLUExpert(32, 48))
    with pytest.raises(TorchImportError, match="gate scores 6 experts but "
                       "`experts` has 7"):
        import_module(block)
    block = _seeded(MixtralStyleBlock)
    block.experts[2] = SwiGLUExpert(32, 48, ("gate_proj", "up_proj",
                                             "down_proj"))
    with pytest.raises(TorchImportError, match="experts.2 differs"):
        import_module(block)
    block = _seeded(MixtralStyleBlock)
    block.experts[1].act_fn = nn.Tanh()
    with pytest.raises(TorchImportError, match="unsupported activation Tanh"):
        import_module(block)
    block = _seeded(MixtralStyleBlock)
    block.experts[3].w1 = nn.Linear(32, 40, bias=False)
    with pytest.raises(TorchImportError, match=r"expert_gate \('experts.3."
                       r"w1.weight'\): shape \[40, 32\] does not match "
                       r"\[48, 32\]"):
        import_module(block)
    block = _seeded(MixtralStyleBlock)
    block.experts[4].w3.to(torch.float16)
    with pytest.raises(TorchImportError, match="experts.4.w3.weight is f16, "
                       "other experts' are f32"):
        import_module(block)
    block = _seeded(MixtralStyleBlock).to(torch.float64)
    with pytest.raises(TorchImportError, match="torch.float64"):
        import_module(block)
    block = _seeded(Qwen2StyleBlock)
    del block.shared_expert
    with pytest.raises(TorchImportError, match="shared_expert_gate without"):
        import_module(block)


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime library is "
                    "not built")
@pytest.mark.parametrize("block_type,dtype", [
    (MixtralStyleBlock, torch.float32), (MixtralStyleBlock, torch.bfloat16),
    (Qwen2StyleBlock, torch.float32), (ReluBlock, torch.float16)])
def test_compiled_matches_forward(tmp_path, block_type, dtype) -> None:
    from moe_mlir.runtime import load_layer
    from moe_mlir.tools import compile_layer

    block = _seeded(block_type, dtype)
    imported = import_module(block)
    paths = imported.write(tmp_path)
    module = str(tmp_path / "layer.so")
    compile_layer(paths["module"], module)
    layer = load_layer(module, paths["weights"])
    for tokens in (0, 1, 19, 128):
        x = _inputs(imported, tokens, seed=tokens)
        y = layer(x, threads=2)
        # The module's own forward in float32 on the stored weights
        # (bf16/f16 values are exact in float32): the bound of the storage
        # (bf16 weights may be multiplied by a bf16 kernel).
        ref = _forward(block, x)
        scale = np.max(np.abs(ref)) if tokens else 0.0
        assert y.shape == (tokens, imported.spec.hidden)
        storage = {torch.float32: "f32", torch.bfloat16: "bf16",
                   torch.float16: "f16"}[dtype]
        assert np.max(np.abs(y - ref), initial=0.0) <= \
            family_cases.tolerance(storage) * scale
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    done = built_tools.moe_mlir("reference", "--spec", paths["spec"],
                                "--input", str(tmp_path / "x.npy"),
                                "--check", str(tmp_path / "y.npy"),
                                "--rtol", str(family_cases.tolerance(storage)))
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(paths["weights"])


class V5Router(nn.Module):
    """transformers v5's TopKRouter: a module holding the router's weight."""

    def __init__(self, hidden, experts, top_k, norm_topk_prob=None):
        super().__init__()
        self.top_k = top_k
        self.weight = nn.Parameter(torch.randn(experts, hidden) * 4.0 /
                                   hidden ** 0.5)
        if norm_topk_prob is not None:
            self.norm_topk_prob = norm_topk_prob

    def forward(self, h):
        probs = F.softmax(F.linear(h, self.weight).float(), dim=-1)
        weights, chosen = torch.topk(probs, self.top_k, dim=-1)
        if getattr(self, "norm_topk_prob", True):
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights, chosen


class V5Experts(nn.Module):
    """transformers v5's experts: 3-D tensors, with the flags
    use_experts_implementation sets (gated, transposed, interleaved,
    biased)."""

    def __init__(self, hidden, inter, experts, *, transposed=False,
                 interleaved=False, bias=False, gated=True, flags=True):
        super().__init__()
        width = 2 * inter if gated else inter
        first = (experts, hidden, width) if transposed else \
            (experts, width, hidden)
        second = (experts, inter, hidden) if transposed else \
            (experts, hidden, inter)
        name = "gate_up_proj" if gated else "up_proj"
        setattr(self, name, nn.Parameter(torch.randn(*first) /
                                         hidden ** 0.5))
        self.down_proj = nn.Parameter(torch.randn(*second) / inter ** 0.5)
        if bias:
            setattr(self, name + "_bias",
                    nn.Parameter(0.1 * torch.randn(experts, width)))
            self.down_proj_bias = nn.Parameter(
                0.1 * torch.randn(experts, hidden))
        self.act_fn = nn.SiLU() if gated else nn.ReLU()
        self.gated, self.interleaved = gated, interleaved
        self.transposed, self.biased = transposed, bias
        if flags:
            self.has_gate, self.has_bias = gated, bias
            self.is_transposed = transposed
            self.is_concatenated = not interleaved

    def expert(self, e, x):
        name = "gate_up_proj" if self.gated else "up_proj"
        first, down = getattr(self, name)[e], self.down_proj[e]
        out = x @ first if self.transposed else F.linear(x, first)
        if self.biased:
            out = out + getattr(self, name + "_bias")[e]
        if self.gated:
            gate, up = ((out[..., ::2], out[..., 1::2]) if self.interleaved
                        else out.chunk(2, dim=-1))
            out = self.act_fn(gate) * up
        else:
            out = self.act_fn(out)
        out = out @ down if self.transposed else F.linear(out, down)
        return out + self.down_proj_bias[e] if self.biased else out


class V5Block(nn.Module):
    """transformers v5's sparse MoE block: router, then the experts."""

    def __init__(self, hidden=32, inter=24, experts=6, top_k=2,
                 norm_topk_prob=None, **layout):
        super().__init__()
        self.gate = V5Router(hidden, experts, top_k, norm_topk_prob)
        self.experts = V5Experts(hidden, inter, experts, **layout)

    def forward(self, hidden_states):
        batch, seq, hidden = hidden_states.shape
        h = hidden_states.view(-1, hidden)
        weights, chosen = self.gate(h)
        out = torch.zeros_like(h)
        for e in range(self.experts.down_proj.shape[0]):
            rows, slot = torch.where(chosen == e)
            if rows.numel():
                out.index_add_(0, rows, self.experts.expert(e, h[rows]) *
                               weights[rows, slot, None])
        return out.view(batch, seq, hidden)


V5_LAYOUTS = {
    "concatenated": {},
    "no renormalization": {"norm_topk_prob": False},
    "transposed interleaved biased": {"transposed": True,
                                      "interleaved": True, "bias": True},
    "transposed without flags": {"transposed": True, "flags": False},
    "ungated": {"gated": False, "bias": True},
    "ungated transposed": {"gated": False, "transposed": True},
}


@pytest.mark.parametrize("layout", sorted(V5_LAYOUTS))
def test_v5_blocks_match_forward(layout) -> None:
    torch.manual_seed(1)
    block = V5Block(**V5_LAYOUTS[layout]).eval()
    imported = import_module(block)
    spec = imported.spec
    assert (spec.num_experts, spec.hidden, spec.intermediate) == (6, 32, 24)
    assert spec.routing.renormalize == (
        "none" if layout == "no renormalization" else "selected")
    assert "expert_gate" in spec.weights or layout.startswith("ungated")
    for tokens in (0, 1, 29):
        x = _inputs(imported, tokens, seed=tokens)
        ref, _ = layer_reference(x, imported.operands(), spec.routing,
                                 spec.activation)
        y = _forward(block, x)
        assert np.max(np.abs(y - ref), initial=0.0) <= \
            1e-5 * np.max(np.abs(ref), initial=0.0)


@pytest.mark.skipif(not built_tools.have_runtime_tools(),
                    reason="moe-compile, moe-run or the runtime library is "
                    "not built")
@pytest.mark.parametrize("layout", ["concatenated",
                                    "transposed interleaved biased",
                                    "ungated"])
def test_v5_block_compiled(tmp_path, layout) -> None:
    """The fused tensors, bound through the module's views by moe-run."""
    from moe_mlir.runtime import load_layer
    from moe_mlir.tools import compile_layer

    torch.manual_seed(2)
    block = V5Block(**V5_LAYOUTS[layout]).eval().to(torch.bfloat16)
    imported = import_module(block)
    paths = imported.write(tmp_path)
    module = str(tmp_path / "layer.so")
    compile_layer(paths["module"], module)
    layer = load_layer(module, paths["weights"])
    for tokens in (1, 67):
        x = _inputs(imported, tokens, seed=tokens)
        ref = _forward(block, x)
        y = layer(x, threads=2)
        assert np.max(np.abs(y - ref)) <= \
            family_cases.tolerance("bf16") * np.max(np.abs(ref))


def _set(path: str, value):
    """A change of a V5Block: ``path`` (dotted) set to ``value``."""
    def change(block):
        owner, leaf = path.rsplit(".", 1) if "." in path else ("", path)
        setattr(_owner(block, owner), leaf, value)
    return change


def _score_bias(size: int):
    def change(block):
        block.gate.register_buffer("e_score_correction_bias",
                                   torch.zeros(size))
    return change


def _delete(path: str):
    def change(block):
        owner, leaf = path.rsplit(".", 1) if "." in path else ("", path)
        delattr(_owner(block, owner), leaf)
    return change


def _owner(block, path: str):
    for name in filter(None, path.split(".")):
        block = getattr(block, name)
    return block


@pytest.mark.parametrize("layout, change, message", [
    ({}, _set("experts.down_proj", nn.Parameter(torch.zeros(6, 32, 20))),
     r"gate_up_proj \[6, 48, 32\] and down_proj \[6, 32, 20\] are neither"),
    ({}, _set("experts.is_transposed", True), "not the transposed layout"),
    ({"bias": True}, _set("experts.gate_up_proj_bias",
                          nn.Parameter(torch.zeros(6, 24))),
     r"gate_up_proj_bias is \[6, 24\], expected \[6, 48\]"),
    ({}, _set("experts.has_gate", False), "has_gate disagrees"),
    ({}, _score_bias(6), "e_score_correction_bias needs the model's "
     "configuration"),
    ({}, _score_bias(5), r"gate.e_score_correction_bias is \[5\], expected "
     r"\[6\] or \[1, 6\]"),
    ({}, _set("gate.weight", nn.Parameter(torch.zeros(7, 32))),
     "gate scores 7 experts but `experts` has 6"),
    ({}, _delete("experts.down_proj"), "experts must be an nn.ModuleList of "
     "experts or hold"),
    ({}, _delete("gate"), "the block needs a router"),
])
def test_v5_blocks_refused(layout, change, message) -> None:
    torch.manual_seed(3)
    block = V5Block(**layout)
    change(block)
    with pytest.raises(TorchImportError, match=message):
        import_module(block)


class _FailingConfig:
    def to_dict(self):
        raise RuntimeError("no")


@pytest.mark.parametrize("change, arguments, message", [
    (None, {"config": {"hidden_size": 32}}, "the configuration must be a "
     "transformers configuration"),
    (None, {"config": _FailingConfig()}, r"to_dict\(\) failed: no"),
    (None, {"layer": 1}, "layer= needs a block"),
    (None, {"top_k": True}, "top_k= must be a positive integer, got True"),
    (None, {"top_k": 2.5}, "top_k= must be a positive integer"),
    (None, {"top_k": [2]}, "top_k= must be a positive integer"),
    (None, {"renormalize": "no"}, "renormalize= must be a bool"),
    (None, {"prefix": None}, "prefix= and func_name= must be strings"),
    (_set("gate.top_k", 0), {}, "router.top_k must be a positive integer, "
     "got 0"),
    (_set("gate.top_k", torch.tensor([2, 3])), {}, "router.top_k must be a "
     "positive integer"),
    (_set("gate.norm_topk_prob", "no"), {}, "norm_topk_prob must be a bool"),
    (_set("experts.gate_up_proj", nn.Parameter(torch.zeros(8, 48, 32))), {},
     r"gate_up_proj \[8, 48, 32\] and down_proj \[6, 32, 24\] are "
     "neither"),
])
def test_import_arguments_refused(change, arguments, message) -> None:
    block = V5Block()
    if change:
        change(block)
    with pytest.raises(TorchImportError, match=message):
        import_module(block, **arguments)


def test_meta_tensors_refused() -> None:
    block = V5Block().to("meta")
    with pytest.raises(TorchImportError, match="'gate.weight' holds no "
                       "dense values"):
        import_module(block)


def test_transformers_blocks_need_their_configuration() -> None:
    """A transformers block of a family that does not route by softmax
    top-k over its attributes (Jamba: never renormalized) is refused
    without its configuration, and read with it."""
    class JambaSparseMoeBlock(MixtralStyleBlock):
        pass

    JambaSparseMoeBlock.__module__ = "transformers.models.jamba.modeling_jamba"
    torch.manual_seed(4)
    block = JambaSparseMoeBlock(names=("gate_proj", "up_proj", "down_proj"))
    block.norm_topk_prob = False  # Jamba's forward
    with pytest.raises(TorchImportError, match="a transformers jamba block "
                       "does not route by softmax top-k over its "
                       "attributes: pass config="):
        import_module(block)
    config = {"model_type": "jamba", "hidden_size": 32,
              "intermediate_size": 48, "num_experts": 6,
              "num_experts_per_tok": 2, "num_hidden_layers": 2,
              "expert_layer_period": 1, "expert_layer_offset": 0}
    imported = import_module(block, config=config, layer=0,
                             prefix="model.layers.0.feed_forward.")
    assert imported.spec.routing.renormalize == "none"
    x = _inputs(imported, 23)
    ref, _ = layer_reference(x, imported.operands(), imported.spec.routing,
                             imported.spec.activation)
    y = _forward(block.eval(), x)
    assert np.max(np.abs(y - ref)) <= 1e-5 * np.max(np.abs(ref))
