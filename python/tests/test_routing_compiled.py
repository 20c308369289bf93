"""Capacity-limited and expert-choice routing, compiled and run (issue 5).

Each scheme of docs/Routing.md that takes no sampled input is emitted as a
``moe.layer`` entry returning every routing statistic, compiled by
moe-compile (``--moe-lower-to-cpu``), run in-process through the runtime
binding and compared with the float64 numpy reference (docs/Semantics.md, tolerances:
``max|y - ref| <= 1e-4 * max|ref|``, 2e-2 with bf16 weights, which a bf16 kernel
may multiply; counts exactly, losses within 1e-4
relative) on the
edge cases of capacity routing: T = 0 and 1, T not a multiple of the group
size, C = 0, C >= T, every token choosing the same expert, and exact ties
(duplicate router rows: the lower expert wins; duplicate tokens: the lower
token wins). Weights stored as f32 and bf16. Needs the built tools.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import built_tools
from moe_mlir import safetensors_io
from moe_mlir.emit import STATISTICS, LayerSpec, emit_module
from moe_mlir.layer import layer as layer_reference
from moe_mlir import family_cases
from moe_mlir.testdata import round_to_bf16

pytestmark = pytest.mark.skipif(not built_tools.have_runtime_tools(),
                                reason="moe-compile, moe-run or the runtime "
                                "library is not built")

HIDDEN, INTER = 16, 24
TOKENS = (0, 1, 7, 37, 130)

SCHEMES = {
    "dense": "<softmax, top_k = 6>",
    "switch_factor": "<softmax, top_k = 1, capacity = factor(1.25, ceil)>",
    "switch_fixed": "<softmax, top_k = 1, capacity = fixed(3)>",
    "capacity_zero": "<softmax, top_k = 1, capacity = fixed(0)>",
    "capacity_over_t": "<softmax, top_k = 2, renormalize = kept, "
                       "capacity = fixed(1000)>",
    "gshard_groups": "<softmax, top_k = 2, renormalize = kept, "
                     "capacity = factor(1.0, ceil), group_size = 16>",
    "gshard_floor_min": "<softmax, top_k = 2, renormalize, scale = 1.5, "
                        "capacity = factor(0.5, floor, min = 2), "
                        "group_size = 10>",
    "vmoe_priority": "<softmax, top_k = 2, renormalize = kept, "
                     "capacity = factor(1.05, ceil), priority = score>",
    "nllb_fraction": "<softmax, top_k = 2, renormalize = kept, "
                     "capacity = fraction(0.2), priority = score>",
    "expert_choice": "<softmax, expert_choice, capacity = factor(2.0, round)>",
    "expert_choice_groups": "<softmax, expert_choice, scale = 2.0, "
                            "capacity = factor(1.5, round), group_size = 10>",
    "sigmoid_capacity": "<sigmoid, top_k = 2, renormalize = kept, "
                        "capacity = fixed(4), group_size = 9>",
    "unweighted_capacity": "<softmax, top_k = 2, scale = 1.5, capacity = "
                           "fixed(5), unweighted>",
    "expert_choice_unweighted": "<sigmoid, expert_choice, capacity = "
                                "factor(1.5, round), unweighted>",
}


# Top-k around the largest K the gate lowering selects in one pass (16);
# larger K take K arg-max passes. Both must pick the same experts in the
# same order as the reference, exact ties (router rows 0 and 1) included.
WIDE_SCHEMES = {
    "top16_of_20": "<softmax, top_k = 16, renormalize>",
    "top17_of_20": "<softmax, top_k = 17, renormalize>",
    "sigmoid_groups_top8_of_24": "<sigmoid, top_k = 8, renormalize, "
                                 "scale = 2.5, groups = 4, topk_groups = 2>",
}


def _weights(num_experts: int, storage: str, seed: int) -> dict:
    """Router rows 0 and 1 equal (exact score ties); ReLU experts."""
    rng = np.random.default_rng(seed)
    router = rng.standard_normal((num_experts, HIDDEN)) / 2.0
    router[1] = router[0]
    tensors = {"router": router}
    for e in range(num_experts):
        tensors[f"up.{e}"] = rng.standard_normal((INTER, HIDDEN)) / 4.0
        tensors[f"down.{e}"] = rng.standard_normal((HIDDEN, INTER)) / 5.0
    tensors = {k: v.astype(np.float32) for k, v in tensors.items()}
    if storage == "bf16":
        tensors = {k: round_to_bf16(v) for k, v in tensors.items()}
    return tensors


def _spec(routing: str, num_experts: int, storage: str) -> LayerSpec:
    weights = {"router": "router", "expert_up": "up.{e}",
               "expert_down": "down.{e}"}
    return LayerSpec(hidden=HIDDEN, intermediate=INTER,
                     num_experts=num_experts, routing=routing,
                     weights=weights,
                     dtypes={op: storage for op in weights},
                     activation="relu", statistics=tuple(STATISTICS))


def _check_statistics(names, values, ref: dict, context) -> None:
    """Counts equal; losses within 1e-4 relative (f32 accumulation)."""
    assert len(names) == len(values)
    for name, value in zip(names, values):
        expected = np.asarray(ref[name])
        assert value.shape == expected.shape, (name, context)
        if value.dtype.kind == "i":
            assert np.array_equal(value, expected), (name, context, value,
                                                     expected)
        else:
            assert abs(float(value) - float(expected)) <= \
                1e-4 * max(1.0, abs(float(expected))), (
                    name, context, float(value), float(expected))


def _inputs(tokens: int, router: np.ndarray, case: str,
            seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, tokens])
    x = rng.standard_normal((tokens, HIDDEN))
    if case == "same_expert" and tokens:
        # Every token's logits are dominated by expert 2.
        direction = router[2] / np.linalg.norm(router[2])
        x = 0.1 * x + 8.0 * direction
    if case == "duplicates" and tokens > 2:
        x[tokens // 2:] = x[: tokens - tokens // 2]  # equal top scores
    return x.astype(np.float32)


class _Compiled:
    """Compiled layers by (scheme, E, storage), shared by the tests."""

    def __init__(self, root) -> None:
        self.root = root
        self.cache: dict = {}

    def get(self, scheme: str, num_experts: int, storage: str):
        from moe_mlir.runtime import load_layer
        from moe_mlir.tools import compile_layer

        key = (scheme, num_experts, storage)
        if key not in self.cache:
            directory = os.path.join(self.root, "_".join(map(str, key)))
            os.makedirs(directory)
            spec = _spec({**SCHEMES, **WIDE_SCHEMES}[scheme], num_experts,
                         storage)
            tensors = _weights(num_experts, storage, seed=num_experts)
            path = os.path.join(directory, "model.safetensors")
            safetensors_io.save_file(path, tensors, storage.upper())
            source = os.path.join(directory, "layer.mlir")
            with open(source, "w", encoding="utf-8") as out:
                out.write(emit_module(spec))
            module = os.path.join(directory, "layer.so")
            compile_layer(source, module)
            operands = {k: v.astype(np.float64)
                        for k, v in spec.collect(tensors).items()}
            self.cache[key] = (spec, operands, load_layer(module, path))
        return self.cache[key]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> _Compiled:
    return _Compiled(str(tmp_path_factory.mktemp("routing")))


def _check(compiled, scheme, num_experts, storage, case) -> dict:
    spec, operands, entry = compiled.get(scheme, num_experts, storage)
    stats = {}
    for tokens in TOKENS:
        x = _inputs(tokens, operands["router"], case, seed=len(scheme))
        y, *values = entry(x)
        ref, stats = layer_reference(x, operands, spec.routing,
                                     spec.activation)
        assert y.shape == ref.shape
        _check_statistics(spec.statistics, values, stats,
                          (scheme, case, tokens))
        if tokens:
            err = np.max(np.abs(y - ref))
            scale = np.max(np.abs(ref))
            bound = family_cases.tolerance(storage) * scale
            assert err <= bound or (scale == 0 and err == 0), (
                scheme, case, tokens, err, scale)
    return stats


@pytest.mark.parametrize("storage", ["f32", "bf16"])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_scheme_matches_reference(compiled, scheme, storage) -> None:
    stats = _check(compiled, scheme, 6, storage, "random")
    if "capacity" in SCHEMES[scheme] and scheme != "capacity_over_t":
        if not SCHEMES[scheme].count("expert_choice"):
            assert stats["dropped_count"] > 0, "the test drops no token"


@pytest.mark.parametrize("scheme", ["switch_fixed", "gshard_groups",
                                    "vmoe_priority", "expert_choice",
                                    "capacity_zero"])
def test_every_token_on_one_expert(compiled, scheme) -> None:
    _check(compiled, scheme, 6, "f32", "same_expert")


@pytest.mark.parametrize("scheme", ["vmoe_priority", "nllb_fraction",
                                    "expert_choice", "expert_choice_groups"])
def test_ties_between_tokens(compiled, scheme) -> None:
    _check(compiled, scheme, 6, "f32", "duplicates")


@pytest.mark.parametrize("scheme,num_experts", [
    ("top16_of_20", 20), ("top17_of_20", 20),
    ("sigmoid_groups_top8_of_24", 24)])
@pytest.mark.parametrize("case", ["random", "duplicates"])
def test_top_k_selection(compiled, scheme, num_experts, case) -> None:
    _check(compiled, scheme, num_experts, "f32", case)


def test_glam_64_experts(compiled) -> None:
    # GLaM: GShard top-2 at 64 experts.
    _check(compiled, "gshard_groups", 64, "bf16", "random")


def test_capacity_zero_gives_zero(compiled) -> None:
    _, operands, entry = compiled.get("capacity_zero", 6, "f32")
    x = _inputs(9, operands["router"], "random", seed=3)
    y, kept, before, dropped, *_ = entry(x)
    assert not np.any(y)
    assert not np.any(kept) and before.sum() == 9 and dropped == 9


@pytest.mark.parametrize("routing", [
    # Noisy top-k (Shazeer et al. 2017): noise [T,E] scaled by
    # softplus(x @ noise_router^T), added to the logits.
    "<softmax, top_k = 2, renormalize, noisy>",
    # GShard top-2 with random routing of the second expert (uniform [T]).
    "<softmax, top_k = 2, renormalize = kept, capacity = factor(1.0, ceil), "
    "group_size = 16, second = random>",
])
def test_sampled_inputs(tmp_path, routing) -> None:
    from moe_mlir.tools import compile_layer, run_layer

    num_experts = 6
    tensors = _weights(num_experts, "f32", seed=11)
    weights = {"router": "router", "expert_up": "up.{e}",
               "expert_down": "down.{e}"}
    if "noisy" in routing:
        rng = np.random.default_rng(5)
        tensors["noise_router"] = (rng.standard_normal(
            (num_experts, HIDDEN)) / 4.0).astype(np.float32)
        weights["noise_router"] = "noise_router"
    spec = LayerSpec(hidden=HIDDEN, intermediate=INTER,
                     num_experts=num_experts, routing=routing,
                     weights=weights, activation="relu",
                     statistics=tuple(STATISTICS))
    path = str(tmp_path / "model.safetensors")
    safetensors_io.save_file(path, tensors)
    source = tmp_path / "layer.mlir"
    source.write_text(emit_module(spec))
    module = str(tmp_path / "layer.so")
    compile_layer(str(source), module)
    operands = {k: v.astype(np.float64)
                for k, v in spec.collect(tensors).items()}
    for tokens in TOKENS:
        rng = np.random.default_rng([tokens, 9])
        x = _inputs(tokens, operands["router"], "random", seed=tokens)
        inputs = {"x": x}
        if "noise" in spec.sampled_inputs:
            inputs["noise"] = rng.standard_normal(
                (tokens, num_experts)).astype(np.float32)
        if "uniform" in spec.sampled_inputs:
            inputs["uniform"] = rng.random((tokens, 1)).astype(np.float32)
        paths = []
        for name, value in inputs.items():
            paths.append(str(tmp_path / f"{name}_{tokens}.npy"))
            np.save(paths[-1], value)
        out = str(tmp_path / f"y_{tokens}.npy")
        stat_paths = [str(tmp_path / f"{name}_{tokens}.npy")
                      for name in spec.statistics]
        run_layer(module, path, paths, [out] + stat_paths)
        ref, stats = layer_reference(
            x, operands, spec.routing, spec.activation,
            noise=inputs.get("noise"),
            uniform=inputs["uniform"][:, 0] if "uniform" in inputs else None)
        y = np.load(out)
        assert y.shape == ref.shape
        if tokens:
            assert np.max(np.abs(y - ref)) <= 1e-4 * np.max(np.abs(ref))
        _check_statistics(spec.statistics, [np.load(p) for p in stat_paths],
                          stats, (routing, tokens))
    if "random" in routing:  # some second choices were not dispatched
        assert stats["tokens_per_expert_before_drop"].sum() < 2 * tokens
    # `reference` takes the sampled inputs after x, in order.
    (tmp_path / "layer.json").write_text(json.dumps(spec.to_dict()))
    done = built_tools.moe_mlir("reference", "--spec",
                                str(tmp_path / "layer.json"), "--input",
                                paths[0])
    assert "this layer takes 2 inputs" in built_tools.one_line_error(
        done, "reference")
    args = [arg for p in paths for arg in ("--input", p)]
    done = built_tools.moe_mlir("reference", "--spec",
                                str(tmp_path / "layer.json"), *args,
                                "--check", out)
    assert "this layer has 7 results (output, tokens_per_expert, " in \
        built_tools.one_line_error(done, "reference")
    checks = [arg for p in [out] + stat_paths for arg in ("--check", p)]
    done = built_tools.moe_mlir("reference", "--spec",
                                str(tmp_path / "layer.json"), *args, *checks)
    assert done.returncode == 0, done.stderr
    assert "importance_loss:" in done.stdout
    assert "MISMATCH" not in done.stdout
    # A statistic that differs is reported.
    np.save(stat_paths[0], np.load(stat_paths[0]) + 1)
    done = built_tools.moe_mlir("reference", "--spec",
                                str(tmp_path / "layer.json"), *args, *checks)
    assert "tokens_per_expert differs from the reference" in \
        built_tools.one_line_error(done, "reference")


def test_widenet_shared_layer(tmp_path) -> None:
    """examples/widenet: two blocks `h + moe(h)` bound to the same tensors
    (each stack gathered once by the runtime) equal the reference applied
    twice, for T = 0, 1, 37 and 130."""
    from moe_mlir.runtime import load_layer
    from moe_mlir.tools import compile_layer

    example = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           os.pardir, os.pardir, "examples", "widenet")
    spec_path = os.path.join(example, "layer.json")
    ckpt = str(tmp_path / "ckpt")
    done = built_tools.moe_mlir("random-weights", "--spec", spec_path, "-o",
                                ckpt)
    assert done.returncode == 0, done.stderr
    module = str(tmp_path / "widenet.so")
    compile_layer(os.path.join(example, "widenet.mlir"), module)
    entry = load_layer(module, ckpt)
    with open(spec_path, encoding="utf-8") as file:
        spec = LayerSpec.from_dict(json.load(file))
    operands = {k: v.astype(np.float64) for k, v in spec.collect(
        safetensors_io.load_checkpoint(ckpt)).items()}
    dropped = 0
    for tokens in (0, 1, 37, 130):
        x = np.random.default_rng(tokens).standard_normal(
            (tokens, spec.hidden)).astype(np.float32)
        m0, stats0 = layer_reference(x, operands, spec.routing,
                                     spec.activation)
        h = x + m0
        m1, stats1 = layer_reference(h, operands, spec.routing,
                                     spec.activation)
        ref = h + m1
        dropped += stats0["dropped_count"] + stats1["dropped_count"]
        x_before = x.copy()
        y = entry(x)
        # The residual adds must not be bufferized into the caller's input.
        assert np.array_equal(x, x_before)
        assert y.shape == ref.shape
        if tokens:
            assert np.max(np.abs(y - ref)) <= 1e-4 * np.max(np.abs(ref))
    assert dropped > 0, "capacity factor 1.25 drops tokens"
