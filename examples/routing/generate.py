#!/usr/bin/env python3
"""Writes the routing examples: one runnable moe.layer per scheme.

For every row of docs/Routing.md's scheme table this writes NAME.json (the
layer description, for `moe_mlir random-weights` and `moe_mlir reference`)
and NAME.mlir (the module moe-opt, moe-compile and moe-run take). Each
layer returns the routing statistics its scheme is known for. Run it from
anywhere; python/tests/test_routing_examples.py checks that the files are
what this script writes.

    /usr/bin/python3 examples/routing/generate.py
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

from moe_mlir.emit import LayerSpec, emit_module  # noqa: E402

HIDDEN, INTER = 32, 48

# name -> (title, routing, experts, statistics, extra spec fields)
EXAMPLES = {
    "dense_soft_gating": (
        "Dense soft gating (Jacobs et al. 1991): every expert, softmax "
        "weights.", "<softmax, top_k = 8>", 8,
        ["importance_loss", "load_balancing_loss"], {}),
    "noisy_topk": (
        "Noisy top-k gating (Shazeer et al. 2017): noise [T,E] scaled by "
        "softplus(x Wn^T).", "<softmax, top_k = 2, renormalize, noisy>", 8,
        ["importance_loss", "tokens_per_expert"],
        {"weights": {"noise_router": "noise_router.weight"}}),
    "gshard_top2": (
        "GShard top-2: capacity per expert per group of 16 tokens, first "
        "choices first, random second expert, renormalized over kept.",
        "<softmax, top_k = 2, renormalize = kept, "
        "capacity = factor(2.0, ceil), group_size = 16, second = random>", 8,
        ["tokens_per_expert", "tokens_per_expert_before_drop",
         "dropped_count", "load_balancing_loss"], {}),
    "switch_top1": (
        "Switch Transformer top-1: capacity factor 1.25 rounded up, dropped "
        "tokens give 0, no renormalization.",
        "<softmax, top_k = 1, capacity = factor(1.25, ceil)>", 8,
        ["load_balancing_loss", "z_loss", "dropped_count",
         "tokens_per_expert"], {"activation": "relu"}),
    "glam_top2": (
        "GLaM: GShard top-2 at 64 experts.",
        "<softmax, top_k = 2, renormalize = kept, "
        "capacity = factor(2.0, ceil), group_size = 32>", 64,
        ["tokens_per_expert", "dropped_count", "load_balancing_loss"],
        {"activation": "gelu"}),
    "vmoe_batch_priority": (
        "V-MoE batch-priority routing: over capacity, tokens with the "
        "higher top score keep their slot.",
        "<softmax, top_k = 2, capacity = factor(1.05, ceil), "
        "priority = score>", 8,
        ["dropped_count", "importance_loss", "load_balancing_loss"],
        {"activation": "gelu"}),
    "expert_choice": (
        "Expert choice (Zhou et al. 2022): each expert takes its top-C "
        "tokens; a token gets 0..E experts.",
        "<softmax, expert_choice, capacity = factor(2.0, round)>", 8,
        ["tokens_per_expert"], {}),
    "mixtral": (
        "Mixtral: softmax top-2, renormalized, SwiGLU experts.",
        "<softmax, top_k = 2, renormalize>", 8, ["load_balancing_loss"],
        {}),
    "qwen2_moe": (
        "Qwen2-MoE: softmax top-4 without renormalization, a shared expert "
        "behind a sigmoid gate.", "<softmax, top_k = 4>", 8, [],
        {"shared": True}),
    "deepseek_v2": (
        "DeepSeek-V2 group_limited_greedy: keep the 2 of 4 expert groups "
        "with the largest max score, scale 16.",
        "<softmax, top_k = 3, scale = 16.0, groups = 4, topk_groups = 2, "
        "group_score = max>", 8, [], {"shared": True}),
    "deepseek_v3": (
        "DeepSeek-V3 noaux_tc: sigmoid scores, selection-only bias, groups "
        "scored by their top-2 sum, renormalized, scale 2.5, shared expert.",
        "<sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias, "
        "groups = 4, topk_groups = 2, group_score = sum_top2>", 8,
        ["tokens_per_expert"],
        {"shared": True, "weights": {"score_bias": "router.bias"}}),
}


def spec(name: str) -> LayerSpec:
    """The layer of example `name`."""
    _, routing, experts, statistics, extra = EXAMPLES[name]
    gated = extra.get("activation", "silu") == "silu"
    weights = {"router": "router.weight"}
    weights.update(extra.get("weights", {}))
    if gated:
        weights["expert_gate"] = "experts.{e}.gate.weight"
    weights.update(expert_up="experts.{e}.up.weight",
                   expert_down="experts.{e}.down.weight")
    shared = 0
    if extra.get("shared"):
        shared = 64
        weights.update(shared_gate="shared.gate.weight",
                       shared_up="shared.up.weight",
                       shared_down="shared.down.weight")
        if name == "qwen2_moe":
            weights["shared_expert_gate"] = "shared.router.weight"
    return LayerSpec(hidden=HIDDEN, intermediate=INTER, num_experts=experts,
                     routing=routing, weights=weights,
                     activation=extra.get("activation", "silu"),
                     shared_intermediate=shared,
                     statistics=tuple(statistics))


def render(name: str) -> tuple[str, str]:
    """The texts of NAME.json and NAME.mlir."""
    layer = spec(name)
    title = EXAMPLES[name][0]
    inputs = " ".join(["--input x.npy"] + [
        f"--input {sample}.npy" for sample in layer.sampled_inputs])
    outputs = " ".join(["--output y.npy"] + [
        f"--output {stat}.npy" for stat in layer.statistics])
    comment = (
        f"{title}\n"
        f"Generated by examples/routing/generate.py. Run it with\n"
        f"  /usr/bin/python3 -m moe_mlir random-weights --spec {name}.json -o ckpt\n"
        f"  moe-run {name}.mlir --weights ckpt {inputs}\n"
        f"      {outputs}\n"
        f"  /usr/bin/python3 -m moe_mlir reference --spec {name}.json --weights ckpt "
        f"{inputs} \\\n      --check y.npy ... (one --check per --output)")
    text = json.dumps(layer.to_dict(), indent=2, sort_keys=True) + "\n"
    return text, emit_module(layer, comment=comment)


def main() -> None:
    for name in EXAMPLES:
        json_text, mlir_text = render(name)
        for suffix, text in ((".json", json_text), (".mlir", mlir_text)):
            with open(os.path.join(HERE, name + suffix), "w",
                      encoding="utf-8") as out:
                out.write(text)


if __name__ == "__main__":
    main()
