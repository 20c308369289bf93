"""A dense MLP of a real checkpoint made into a MoE layer from data:
``/usr/bin/python3 -m moe_mlir moefy`` (docs/DenseToMoE.md).

- **Importance** of neuron ``j`` on calibration tokens: MoEBERT scores a
  neuron by how much the loss changes without it, which needs gradients.
  Without training, the first-order proxy here is the size of what the
  neuron adds to the output: ``mean_t |a_tj| * ||W_down[:, j]||_2``, with
  ``a = act(gate x) * up x`` the down projection's input. A neuron's
  contribution to token t is ``a_tj * W_down[:, j]``, whose norm this
  averages; removing the neurons of smallest score removes the least output
  (exactly, for one neuron and one token).
- **Split** (MoEBERT) and **upcycle** (sparse upcycling) as
  ``moe-dense-to-moe`` defines them (:func:`split_neurons` is its neuron
  table), with its router rules: MoEfication's similarity router for split,
  zeros for upcycle.
- The result is written as a Qwen2-MoE checkpoint (the other layers stay
  dense through ``mlp_only_layers``) that the importer reads back; and the
  MoE layer's error against the dense one on held-out tokens for every K,
  the quality/compute trade-off.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import safetensors_io
from .dense import DenseMLP
from .layer import layer as moe_layer
from .routing import Routing

__all__ = ["MODES", "MoefiedLayer", "format_tradeoff", "moefy",
           "neuron_importance", "plot_tradeoff", "split_neurons", "tradeoff",
           "write_moe_checkpoint"]

MODES = ("split", "upcycle")

NO_NEURON = -1
"""A slot of :func:`split_neurons`' table that holds no neuron."""


def neuron_importance(mlp: DenseMLP, x: np.ndarray) -> np.ndarray:
    """``[I]`` float32: ``mean_t |a_tj| * ||W_down[:, j]||_2`` on tokens
    ``x``, computed in float64. float32 is what ``moe.neuron_importance``
    holds: the split orders by the same values the pass reads."""
    if x.shape[0] == 0:
        raise ValueError("importance needs at least one calibration token")
    hidden = mlp.hidden_activations(x)
    column_norms = np.linalg.norm(mlp.down.astype(np.float64), axis=0)
    return (np.abs(hidden).mean(axis=0) * column_norms).astype(np.float32)


def split_neurons(importance: np.ndarray, experts: int,
                  shared: int) -> tuple[np.ndarray, np.ndarray]:
    """MoEBERT's split, as ``moe-dense-to-moe`` builds it: the neurons by
    descending importance (ties to the lower index); the first ``shared``
    are the shared expert's, the rest are dealt round-robin. Returns the
    shared neurons ``[S]`` and the table ``[E, ceil((I - S) / E)]`` of each
    expert's own neurons, short rows ending in :data:`NO_NEURON`."""
    importance = np.asarray(importance, dtype=np.float64)
    neurons = importance.shape[0]
    if experts < 1 or shared < 0 or neurons - shared < experts:
        raise ValueError(f"{neurons} neurons with {shared} shared leave "
                         f"fewer than one for each of {experts} experts")
    order = np.argsort(-importance, kind="stable")
    own = -(-(neurons - shared) // experts)
    table = np.full((experts, own), NO_NEURON, dtype=np.int64)
    rest = order[shared:]
    for e in range(experts):
        mine = rest[e::experts]
        table[e, :len(mine)] = mine
    return order[:shared].astype(np.int64), table


def _gather(weight: np.ndarray, table: np.ndarray, axis: int) -> np.ndarray:
    """``[E, ...]``: ``weight``'s neurons along ``axis`` for each row of
    ``table`` (zeros where it holds no neuron)."""
    padded = np.concatenate(
        [weight, np.zeros_like(np.take(weight, [0], axis=axis))], axis=axis)
    index = np.where(table == NO_NEURON, weight.shape[axis], table)
    return np.stack([np.take(padded, row, axis=axis) for row in index])


def similarity_router(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """MoEfication's router: row e the mean of ``rows`` (the gate, or up,
    projection's ``[I, H]``) over expert e's own neurons."""
    router = np.zeros((table.shape[0], rows.shape[1]), dtype=np.float64)
    for e, row in enumerate(table):
        own = row[row != NO_NEURON]
        if len(own):
            router[e] = rows[own].astype(np.float64).mean(axis=0)
    return router


@dataclass
class MoefiedLayer:
    """A MoE layer made from a dense MLP: ``weights`` by ``moe.layer``
    operand name (float32 or float64 arrays; the shared neurons as the
    shared expert), ``routing`` for ``top_k``, and for split the neuron
    ``table`` of the experts."""

    mode: str
    weights: dict[str, np.ndarray]
    activation: str
    shared: int
    top_k: int
    table: np.ndarray | None = None

    @property
    def num_experts(self) -> int:
        return int(self.weights["router"].shape[0])

    @property
    def expert_intermediate(self) -> int:
        return int(self.weights["expert_up"].shape[1])

    def neuron_slots(self, top_k: int) -> int:
        """The neuron slots a token runs with ``top_k`` experts."""
        return self.shared + top_k * self.expert_intermediate

    def routing(self, top_k: int | None = None) -> Routing:
        """``<softmax, top_k = K, unweighted>`` (split: the chosen experts'
        outputs add up) or ``<softmax, top_k = K, renormalize>``
        (upcycle)."""
        k = self.top_k if top_k is None else top_k
        if self.mode == "split":
            return Routing(top_k=k, unweighted=True)
        return Routing(top_k=k, renormalize="selected")

    def __call__(self, x: np.ndarray, top_k: int | None = None
                 ) -> np.ndarray:
        """The layer's float64 output (the numpy reference)."""
        out, _ = moe_layer(np.asarray(x, dtype=np.float64), self.weights,
                           self.routing(top_k), self.activation)
        return out


def moefy(mlp: DenseMLP, mode: str, experts: int, top_k: int, shared: int,
          importance: np.ndarray | None = None) -> MoefiedLayer:
    """``mlp`` as E experts (``moe-dense-to-moe``'s rewrite, on values).

    Raises:
        ValueError: bad sizes, or options the mode does not take.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be split or upcycle, got {mode!r}")
    if experts < 1 or not 1 <= top_k <= experts:
        raise ValueError(f"top-k must be in [1, experts = {experts}], got "
                         f"{top_k}")
    if mode == "upcycle" and shared:
        raise ValueError("shared neurons apply to --mode split (every "
                         "upcycled expert holds every neuron)")
    if mlp.biases:
        raise ValueError("the MLP has biases, which a Qwen2-MoE expert has "
                         "not")
    projections = {"expert_up": (mlp.up, 0), "expert_down": (mlp.down, 1)}
    if mlp.gate is not None:
        projections["expert_gate"] = (mlp.gate, 0)
    weights: dict[str, np.ndarray] = {}
    table = None
    if mode == "split":
        if importance is None:
            importance = np.zeros(mlp.intermediate)
        shared_ids, table = split_neurons(importance, experts, shared)
        for operand, (weight, axis) in projections.items():
            weights[operand] = _gather(weight, table, axis)
            if shared:
                weights["shared_" + operand.removeprefix("expert_")] = \
                    np.take(weight, shared_ids, axis=axis)
        rows = mlp.gate if mlp.gate is not None else mlp.up
        weights["router"] = similarity_router(rows, table)
    else:
        for operand, (weight, _) in projections.items():
            weights[operand] = np.broadcast_to(weight,
                                               (experts, *weight.shape))
        weights["router"] = np.zeros((experts, mlp.hidden))
    # f32, as the pass's router (and the checkpoint's): the same scores.
    weights["router"] = weights["router"].astype(np.float32)
    return MoefiedLayer(mode=mode, weights=weights,
                        activation=mlp.activation, shared=shared,
                        top_k=top_k, table=table)


def tradeoff(mlp: DenseMLP, moe: MoefiedLayer,
             x: np.ndarray) -> list[dict[str, float]]:
    """For K = 1..E, the MoE layer against the dense MLP on tokens ``x``:
    ``relative_error`` ``||y_moe - y||_F / ||y||_F``, ``max_error``
    ``max|y_moe - y| / max|y|`` and ``neurons`` the fraction of the dense
    MLP's neuron work a token does (the shared neurons and K experts'
    slots, over I)."""
    dense = mlp(x)
    scale = np.linalg.norm(dense)
    peak = np.abs(dense).max() if dense.size else 0.0
    rows = []
    for k in range(1, moe.num_experts + 1):
        diff = moe(x, k) - dense
        rows.append({
            "top_k": k,
            "relative_error": float(np.linalg.norm(diff) / scale)
            if scale else 0.0,
            "max_error": float(np.abs(diff).max() / peak) if peak else 0.0,
            "neurons": moe.neuron_slots(k) / mlp.intermediate})
    return rows


def format_tradeoff(rows: list[dict[str, float]], mlp: DenseMLP,
                    moe: MoefiedLayer) -> str:
    """The trade-off as a Markdown table, under a line saying what the
    experts are."""
    shared = f", {moe.shared} shared neurons" if moe.shared else ""
    lines = [f"{moe.mode}: {moe.num_experts} experts of "
             f"{moe.expert_intermediate} neuron slots{shared} (the dense "
             f"MLP has {mlp.intermediate})", "",
             "| K | neuron work / dense | relative error | max error |",
             "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['top_k']} | {row['neurons']:.3f} | "
                     f"{row['relative_error']:.3e} | "
                     f"{row['max_error']:.3e} |")
    return "\n".join(lines)


def plot_tradeoff(rows: list[dict[str, float]], mode: str,
                  path: str) -> None:
    """The relative error against K as a PNG (matplotlib, no display).

    Raises:
        ValueError: matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise ValueError("the trade-off plot needs matplotlib (Debian: apt "
                         "install python3-matplotlib)") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 3.5))
    ks = [row["top_k"] for row in rows]
    axes.plot(ks, [row["relative_error"] for row in rows], marker="o",
              label="||y_moe - y|| / ||y||")
    axes.plot(ks, [row["max_error"] for row in rows], marker="s",
              label="max|y_moe - y| / max|y|")
    axes.set_xlabel("experts per token K")
    axes.set_ylabel("error against the dense MLP")
    axes.set_title(f"moefy {mode}: quality against compute")
    axes.set_xticks(ks)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _qwen2_moe_config(config: Mapping[str, Any], layer: int,
                      moe: MoefiedLayer, details: Mapping[str, Any]
                      ) -> dict[str, Any]:
    out = dict(config)
    layers = int(config["num_hidden_layers"])
    out.update({
        "model_type": "qwen2_moe", "architectures": ["Qwen2MoeForCausalLM"],
        "num_experts": moe.num_experts, "num_experts_per_tok": moe.top_k,
        "moe_intermediate_size": moe.expert_intermediate,
        "shared_expert_intermediate_size": moe.shared,
        "norm_topk_prob": True, "decoder_sparse_step": 1,
        "mlp_only_layers": [n for n in range(layers) if n != layer],
        "output_router_logits": False, "router_aux_loss_coef": 0.001,
        "moe_mlir": {"routing": moe.routing().to_mlir(), **details}})
    for key in ("attention_bias", "mlp_bias"):
        out.pop(key, None)
    # Mistral's sliding window: Qwen2-MoE applies it only when told to.
    out.setdefault("use_sliding_window",
                   config.get("sliding_window") is not None)
    return out


def write_moe_checkpoint(source: str | os.PathLike,
                         output: str | os.PathLike,
                         config: Mapping[str, Any], layer: int,
                         mlp: DenseMLP, moe: MoefiedLayer,
                         details: Mapping[str, Any]) -> dict[str, Any]:
    """Writes ``output/config.json`` and ``output/model.safetensors``: the
    source model as Qwen2-MoE, layer ``layer``'s MLP replaced by ``moe``
    (router ``mlp.gate`` in F32, ``mlp.experts.{e}.*_proj``, the shared
    neurons as
    ``mlp.shared_expert`` behind a zero ``shared_expert_gate``, its down
    projection doubled: ``sigmoid(0) = 1/2`` exactly),
    the other tensors as stored (zero q/k/v biases where the source has
    none: Qwen2's attention has them). Returns the config written.
    ``config.moe_mlir.routing`` is the routing the importer gives the layer
    (transformers reads the standard keys and ignores it)."""
    headers = safetensors_io.read_checkpoint_headers(source)
    base = f"model.layers.{layer}.mlp."
    keep = [name for name in headers if not name.startswith(base)]
    tensors = safetensors_io.load_tensors(source, keep)
    dtypes = {name: headers[name][0] for name in keep}
    storage = {"f32": "F32", "bf16": "BF16", "f16": "F16"}[mlp.dtype]
    for n in range(int(config["num_hidden_layers"])):
        attention = f"model.layers.{n}.self_attn."
        for proj in ("q_proj", "k_proj", "v_proj"):
            weight, bias = attention + proj + ".weight", \
                attention + proj + ".bias"
            if weight in headers and bias not in headers:
                tensors[bias] = np.zeros(headers[weight][1][0], np.float32)
                dtypes[bias] = headers[weight][0]
    names = {"router": "gate.weight", "expert_gate": "experts.{e}.gate_proj.weight",
             "expert_up": "experts.{e}.up_proj.weight",
             "expert_down": "experts.{e}.down_proj.weight"}
    for operand, suffix in names.items():
        if operand not in moe.weights:
            continue
        value = np.asarray(moe.weights[operand], dtype=np.float32)
        if operand == "router":
            tensors[base + suffix] = value
            dtypes[base + suffix] = "F32"
            continue
        for e in range(moe.num_experts):
            name = base + suffix.replace("{e}", str(e))
            tensors[name] = np.ascontiguousarray(value[e])
            dtypes[name] = storage
    # The shared expert sits behind sigmoid(x @ shared_expert_gate^T): a zero
    # gate gives exactly 1/2, and a down projection doubled (exactly) makes
    # it weight 1.
    for operand, proj, factor in (("shared_gate", "gate_proj", 1.0),
                                  ("shared_up", "up_proj", 1.0),
                                  ("shared_down", "down_proj", 2.0)):
        if operand in moe.weights:
            name = f"{base}shared_expert.{proj}.weight"
            tensors[name] = np.asarray(moe.weights[operand],
                                       np.float32) * np.float32(factor)
            dtypes[name] = storage
    tensors[base + "shared_expert_gate.weight"] = np.zeros(
        (1, mlp.hidden), np.float32)
    dtypes[base + "shared_expert_gate.weight"] = storage
    out_config = _qwen2_moe_config(config, layer, moe, details)
    os.makedirs(output, exist_ok=True)
    safetensors_io.save_file(
        os.path.join(output, safetensors_io.SINGLE_NAME), tensors, dtypes,
        metadata={"format": "pt"})
    with open(os.path.join(output, "config.json"), "w",
              encoding="utf-8") as out:
        out.write(json.dumps(out_config, indent=2, sort_keys=True) + "\n")
    return out_config
