"""The Routing dataclass: printing, parsing, validation, capacity rules.

Expected texts are those of test/Dialect/MoE/routing.mlir and the
diagnostics of test/Dialect/MoE/invalid-routing.mlir.
"""

from __future__ import annotations

import random
import re
import struct
import subprocess

import pytest

from moe_mlir.mlir_syntax import MlirSyntaxError, format_float
from moe_mlir.routing import Routing, parse
import built_tools  # noqa: E402

# (input as written in routing.mlir, what moe-opt prints)
ROUND_TRIPS = [
    ("<softmax, top_k = 8>", "#moe.routing<softmax, top_k = 8>"),
    ("<softmax, renormalize, top_k = 2>",
     "#moe.routing<softmax, top_k = 2, renormalize>"),
    ("<softmax, top_k = 2, renormalize = selected, scale = 1.0, groups = 1, "
     "capacity = none, group_size = 0, priority = position, second = all>",
     "#moe.routing<softmax, top_k = 2, renormalize>"),
    ("<softmax, top_k = 4, renormalize = none>",
     "#moe.routing<softmax, top_k = 4>"),
    ("<sigmoid,\n    group_score = sum_top2, topk_groups = 4, groups = 8, "
     "selection_bias,\n    scale = 2.5, renormalize, top_k = 8>",
     "#moe.routing<sigmoid, top_k = 8, renormalize, scale = 2.500000e+00, "
     "selection_bias, groups = 8, topk_groups = 4, group_score = sum_top2>"),
    ("<softmax,\n    top_k = 6, scale = 16.0, groups = 8, topk_groups = 3, "
     "group_score = max>",
     "#moe.routing<softmax, top_k = 6, scale = 1.600000e+01, groups = 8, "
     "topk_groups = 3, group_score = max>"),
    ("<softmax, top_k = 2, groups = 4, group_score = max>",
     "#moe.routing<softmax, top_k = 2, groups = 4, topk_groups = 4, "
     "group_score = max>"),
    ("<softmax, top_k = 1, capacity = fixed(64)>",
     "#moe.routing<softmax, top_k = 1, capacity = fixed(64)>"),
    ("<softmax, top_k = 1, capacity = fixed(0)>",
     "#moe.routing<softmax, top_k = 1, capacity = fixed(0)>"),
    ("<softmax, top_k = 1, capacity = factor(1.25, floor)>",
     "#moe.routing<softmax, top_k = 1, capacity = factor(1.250000e+00, "
     "floor)>"),
    ("<softmax, top_k = 2,\n    renormalize = kept, capacity = factor(2.0, "
     "ceil, min = 4),\n    group_size = 1024, second = random>",
     "#moe.routing<softmax, top_k = 2, renormalize = kept, capacity = "
     "factor(2.000000e+00, ceil, min = 4), group_size = 1024, "
     "second = random>"),
    ("<softmax, top_k = 2,\n    priority = score, capacity = fraction(0.2), "
     "renormalize = kept>",
     "#moe.routing<softmax, top_k = 2, renormalize = kept, capacity = "
     "fraction(2.000000e-01), priority = score>"),
    ("<softmax, top_k = 2, capacity = factor(1.05, round), priority = score>",
     "#moe.routing<softmax, top_k = 2, capacity = factor(1.050000e+00, "
     "round), priority = score>"),
    ("<softmax, expert_choice, capacity = factor(2.0, round)>",
     "#moe.routing<softmax, expert_choice, capacity = factor(2.000000e+00, "
     "round)>"),
    ("<softmax, expert_choice, capacity = fixed(3)>",
     "#moe.routing<softmax, expert_choice, capacity = fixed(3)>"),
    ("<softmax, noisy, top_k = 4, renormalize>",
     "#moe.routing<softmax, top_k = 4, renormalize, noisy>"),
    ("<sparsemixer, jitter = 0.01, top_k = 2>",
     "#moe.routing<sparsemixer, top_k = 2, jitter = 1.000000e-02>"),
    ("<sparsemixer, top_k = 2, jitter = 0.0>",
     "#moe.routing<sparsemixer, top_k = 2>"),
    ("<softmax, unweighted, top_k = 2, scale = 2.0>",
     "#moe.routing<softmax, top_k = 2, scale = 2.000000e+00, unweighted>"),
]


@pytest.mark.parametrize("source, printed", ROUND_TRIPS)
def test_round_trip(source: str, printed: str) -> None:
    routing = parse(source)
    assert routing.to_mlir() == printed
    assert parse(printed) == routing
    assert parse("#moe.routing" + source) == routing
    assert routing.to_mlir(prefix=False) == printed[len("#moe.routing"):]


def test_constructed_matches_parsed() -> None:
    dsv3 = Routing("sigmoid", top_k=8, renormalize="selected", scale=2.5,
                   selection_bias=True, num_groups=8, topk_groups=4,
                   group_score="sum_top2")
    assert dsv3 == parse("#moe.routing<sigmoid, top_k = 8, renormalize, "
                         "scale = 2.5, selection_bias, groups = 8, "
                         "topk_groups = 4, group_score = sum_top2>")
    assert str(dsv3) == dsv3.to_mlir()
    assert Routing(top_k=2, num_groups=4).topk_groups == 4
    assert Routing.parse("routing <softmax, top_k = 2>") == Routing(top_k=2)
    assert Routing(top_k=1, scale=2).scale == 2.0


@pytest.mark.parametrize("value, text", [
    (2.5, "2.500000e+00"), (16.0, "1.600000e+01"), (0.2, "2.000000e-01"),
    (1.05, "1.050000e+00"), (1.0, "1.000000e+00"), (0.0, "0.000000e+00"),
    (-0.0, "-0.000000e+00"), (-2.5, "-2.500000e+00"),
    (1e300, "1.000000e+300"), (1 / 3, "0.33333333333333331"),
    (1.2345678, "1.2345678"), (1e-7, "9.9999999999999995E-8"),
    (0.1 + 0.2, "0.30000000000000004"),
    (123456789.0, "0x419D6F3454000000"),
    (float("inf"), "0x7FF0000000000000"),
])
def test_format_float(value: float, text: str) -> None:
    assert format_float(value) == text


@pytest.mark.parametrize("text, message", [
    ("<softmax, renormalize>", "routing: top_k must be at least 1, got 0"),
    ("<sparsemixer, top_k = 2, jitter = -0.01>",
     "routing: jitter must be finite and non-negative, got -1.000000e-02"),
    ("<softmax, top_k = 2, jitter = 0.01>",
     "routing: jitter applies to sparsemixer scoring only"),
    ("<sparsemixer, top_k = 2, groups = 2>",
     "routing: sparsemixer scoring is token choice without selection_bias "
     "or groups"),
    ("<softmax, top_k = -2>", "routing: top_k must be at least 1, got -2"),
    ("<softmax, expert_choice, top_k = 2, capacity = fixed(4)>",
     "routing: expert_choice routing takes no top_k (experts choose tokens)"),
    ("<softmax, top_k = 0, expert_choice, capacity = fixed(4)>",
     "routing: expert_choice routing takes no top_k (experts choose tokens)"),
    ("<sigmoid, top_k = 2, groups = 4, topk_groups = 0>",
     "routing: topk_groups must be in [1, groups = 4], got 0"),
    ("<softmax, top_k = 2, group_score = max>",
     "routing: group_score applies to group-limited routing (groups > 1)"),
    ("<softmax, top_k = 2, groups = 1, group_score = max>",
     "routing: group_score applies to group-limited routing (groups > 1)"),
    ("<softmax, expert_choice>",
     "routing: expert_choice routing requires a capacity (tokens per "
     "expert)"),
    ("<softmax, expert_choice, capacity = factor(2.0, ceil), renormalize>",
     "routing: expert_choice routing does not renormalize"),
    ("<softmax, expert_choice, capacity = fixed(4), groups = 2>",
     "routing: expert_choice routing takes no expert groups, got groups = 2"),
    ("<softmax, expert_choice, capacity = fixed(4), priority = score>",
     "routing: priority and second-choice policy apply to token-choice "
     "routing only"),
    ("<softmax, expert_choice, capacity = fixed(4), second = random>",
     "routing: priority and second-choice policy apply to token-choice "
     "routing only"),
    ("<softmax, top_k = 2, scale = 0.0>",
     "routing: scale must be a finite positive number, got 0.000000e+00"),
    ("<softmax, top_k = 2, scale = -2.5>",
     "routing: scale must be a finite positive number, got -2.500000e+00"),
    ("<softmax, top_k = 2, scale = 0x7FF0000000000000>",
     "routing: scale must be a finite positive number, got INF"),
    ("<softmax, top_k = 2, scale = 0x7FF8000000000000>",
     "routing: scale must be a finite positive number, got nan"),
    ("<sigmoid, top_k = 2, groups = 0>",
     "routing: groups must be at least 1, got 0"),
    ("<sigmoid, top_k = 2, groups = 4, topk_groups = 5>",
     "routing: topk_groups must be in [1, groups = 4], got 5"),
    ("<sigmoid, top_k = 2, topk_groups = 2>",
     "routing: topk_groups must be in [1, groups = 1], got 2"),
    ("<sigmoid, top_k = 2, groups = 4, topk_groups = -1>",
     "routing: topk_groups must be in [1, groups = 4], got -1"),
    ("<softmax, top_k = 2, renormalize = kept>",
     "routing: renormalize = kept renormalizes over the choices kept after "
     "capacity dropping and requires a capacity"),
    ("<softmax, top_k = 1, capacity = fixed(-4)>",
     "routing: capacity must be non-negative, got -4"),
    ("<softmax, top_k = 2, capacity = factor(-1.25, ceil)>",
     "routing: capacity factor must be finite and non-negative, got "
     "-1.250000e+00"),
    ("<softmax, top_k = 2, capacity = factor(0x7FF0000000000000, floor)>",
     "routing: capacity factor must be finite and non-negative, got INF"),
    ("<softmax, expert_choice, capacity = fraction(-0.5)>",
     "routing: capacity fraction must be finite and non-negative, got "
     "-5.000000e-01"),
    ("<softmax, expert_choice, capacity = fraction(1.5)>",
     "routing: capacity fraction must be at most 1, got 1.500000e+00"),
    ("<softmax, top_k = 2, capacity = factor(1.25, round, min = -1)>",
     "routing: minimum capacity must be non-negative, got -1"),
    ("<softmax, top_k = 2, capacity = fixed(8), group_size = -1024>",
     "routing: group_size must be non-negative, got -1024"),
    ("<softmax, top_k = 2, group_size = 1024>",
     "routing: group_size (local group dispatching) requires a capacity"),
    ("<softmax, top_k = 2, priority = score>",
     "routing: priority = score decides who is dropped over capacity and "
     "requires a capacity"),
    ("<softmax, top_k = 1, second = random>",
     "routing: second = random applies to top-2 routing, got top_k = 1"),
    ("<softmax, top_k = 2, renormalize, unweighted>",
     "routing: unweighted routing combines every kept choice with weight "
     "'scale' and does not renormalize"),
    ("<softmax, top_k = 4, renormalize, capacity = factor(2.0, ceil), "
     "second = random>",
     "routing: second = random applies to top-2 routing, got top_k = 4"),
])
def test_verify_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(text)


@pytest.mark.parametrize("text, message", [
    ("<relu, top_k = 2>", "unknown scoring function 'relu'"),
    ("<top_k = 2, softmax>", "unknown scoring function 'top_k'"),
    ("<softmax, top_k = 2, temperature = 0.1>",
     "unknown routing item 'temperature'"),
    ("<softmax, top_k = 2, renormalize, top_k = 1>",
     "routing item 'top_k' given twice"),
    ("<softmax, top_k = 2, noisy, noisy>", "routing item 'noisy' given twice"),
    ("<softmax, top_k = 2, capacity = dynamic(4)>",
     "unknown capacity kind 'dynamic'"),
    ("<softmax, top_k = 2, capacity = factor(1.25, trunc)>",
     "unknown rounding 'trunc'"),
    ("<softmax, top_k = 2, capacity = factor(1.25)>", "expected ','"),
    ("<softmax, top_k = 2, capacity = factor(1.25, ceil, max = 4)>",
     "expected 'min'"),
    ("<softmax, top_k = 2, capacity = fixed(2.5)>", "expected integer value"),
    ("<softmax, top_k = 2, capacity = fixed(4), priority = random>",
     "unknown priority 'random'"),
    ("<softmax, top_k = 2, second = threshold>",
     "unknown second-choice policy 'threshold'"),
    ("<sigmoid, top_k = 2, groups = 4, topk_groups = 2, "
     "group_score = sum_top3>", "unknown group score 'sum_top3'"),
    ("<softmax, top_k = 2, renormalize = always>",
     "unknown renormalization 'always'"),
    ("<softmax, top_k 2>", "expected '='"),
    ("<softmax, top_k = 2, capacity fixed(4)>", "expected '='"),
    ("<softmax, top_k = 2, capacity = factor(1.0, ceil, min 4)>",
     "expected '='"),
    ("<softmax, top_k = two>", "expected integer value"),
    ("<softmax, top_k = 2, scale = 2>",
     "unexpected decimal integer literal for a floating point value"),
    ("<softmax, top_k = 2 renormalize>", "expected '>'"),
    ("<softmax, 2>", "expected valid keyword"),
    ("softmax, top_k = 2>", "expected '<'"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(MlirSyntaxError, match=re.escape(message)):
        parse(text)


@pytest.mark.parametrize("routing, experts, message", [
    (Routing(top_k=2), 0, "number of experts must be at least 1, got 0"),
    (Routing(top_k=4), 3,
     "routing top_k (4) exceeds the number of experts (3)"),
    (Routing(top_k=2, num_groups=3), 8,
     "routing groups (3) must divide the number of experts (8)"),
    (Routing(top_k=1, num_groups=16), 8,
     "routing groups (16) must divide the number of experts (8)"),
    (Routing(top_k=2, num_groups=8, topk_groups=4), 8,
     "routing group_score = sum_top2 needs at least 2 experts per group, "
     "got 1"),
    (Routing(top_k=6, num_groups=4, topk_groups=2), 8,
     "routing keeps 2 groups of 2 experts, fewer than top_k = 6"),
])
def test_verify_for_experts(routing: Routing, experts: int,
                            message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        routing.verify_for_experts(experts)


def test_verify_for_experts_accepts() -> None:
    Routing(top_k=2, num_groups=8, topk_groups=2,
            group_score="max").verify_for_experts(8)
    Routing(mode="expert_choice", capacity_kind="fixed",
            fixed_capacity=2).verify_for_experts(1)


def test_constructor_expert_choice_top_k() -> None:
    with pytest.raises(ValueError, match=re.escape(
            "routing: expert_choice routing takes no top_k (experts choose "
            "tokens), got top_k = 2")):
        Routing(mode="expert_choice", top_k=2, capacity_kind="fixed",
                fixed_capacity=4)


def test_field_type_errors() -> None:
    with pytest.raises(ValueError, match="unknown scoring function 'relu'"):
        Routing("relu", top_k=1)
    with pytest.raises(ValueError, match="top_k must be an integer"):
        Routing(top_k=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noisy must be a bool"):
        Routing(top_k=1, noisy=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("routing, tokens, experts, capacity", [
    (Routing(top_k=1), 10, 4, None),
    (Routing(top_k=1, capacity_kind="fixed", fixed_capacity=3), 10, 4, 3),
    # ceil(1.25 * 10 * 1 / 4) = ceil(3.125)
    (Routing(top_k=1, capacity_kind="factor", capacity_factor=1.25), 10, 4,
     4),
    (Routing(top_k=1, capacity_kind="factor", capacity_factor=1.25,
             rounding="floor"), 10, 4, 3),
    # 2.0 * 10 * 2 / 4 = 10 exactly
    (Routing(top_k=2, capacity_kind="factor", capacity_factor=2.0,
             rounding="floor"), 10, 4, 10),
    # round(2.0 * 5 / 4) = round(2.5) = 2 (half to even), K = 1 for EC
    (Routing(mode="expert_choice", capacity_kind="factor",
             capacity_factor=2.0, rounding="round"), 5, 4, 2),
    (Routing(mode="expert_choice", capacity_kind="factor",
             capacity_factor=2.0, rounding="round"), 7, 4, 4),  # round(3.5)
    (Routing(top_k=1, capacity_kind="factor", capacity_factor=0.1,
             min_capacity=4), 10, 4, 4),
    # ceil(0.2 * 12) = ceil(2.4)
    (Routing(top_k=2, capacity_kind="fraction", capacity_factor=0.2), 12, 8,
     3),
])
def test_capacity_rules(routing: Routing, tokens: int, experts: int,
                        capacity: int | None) -> None:
    assert routing.capacity(tokens, experts) == capacity


# -- cross-check with the C++ printer, when a built moe-opt is at hand -------

_moe_opt = built_tools.moe_opt


def _random_routings(count: int, seed: int) -> list[Routing]:
    rng = random.Random(seed)
    routings = []
    while len(routings) < count:
        bits = rng.getrandbits(62)
        value = struct.unpack("<d", struct.pack("<Q", bits))[0]
        floats = [rng.uniform(0.01, 4.0), round(rng.uniform(0.01, 4.0), 2),
                  value]
        expert_choice = rng.random() < 0.3
        capacity = rng.choice(["none", "fixed", "factor", "fraction"])
        if expert_choice and capacity == "none":
            capacity = "fixed"
        fields = dict(
            scoring=rng.choice(["softmax", "sigmoid"]),
            mode="expert_choice" if expert_choice else "token_choice",
            top_k=0 if expert_choice else rng.choice([1, 2, 4]),
            scale=rng.choice([1.0, *floats]),
            selection_bias=rng.random() < 0.3,
            capacity_kind=capacity,
            fixed_capacity=rng.randrange(0, 100),
            capacity_factor=(rng.uniform(0, 1) if capacity == "fraction"
                             else rng.choice(floats)),
            rounding=rng.choice(["ceil", "floor", "round"]),
            min_capacity=rng.choice([0, 0, 3]),
            noisy=rng.random() < 0.3,
            unweighted=rng.random() < 0.2,
        )
        if not expert_choice:
            groups = rng.choice([1, 1, 4, 8])
            fields.update(
                num_groups=groups, topk_groups=rng.randrange(1, groups + 1),
                group_score=rng.choice(["sum_top2", "max"]),
                renormalize="none" if fields["unweighted"] else rng.choice(
                    ["none", "selected"] + (["kept"] if capacity != "none"
                                            else [])))
            if capacity != "none":
                fields["priority"] = rng.choice(["position", "score"])
            if fields["top_k"] == 2:
                fields["second_policy"] = rng.choice(["all", "random"])
        if capacity != "none":
            fields["group_size"] = rng.choice([0, 0, 64, 1024])
        try:
            routings.append(Routing(**fields))
        except ValueError:
            continue
    return routings


@pytest.mark.skipif(_moe_opt() is None, reason="no built moe-opt")
def test_printer_matches_moe_opt(tmp_path) -> None:
    routings = _random_routings(300, seed=7)
    source = "\n".join(
        f"func.func private @f{i}() attributes {{r = {r.to_mlir()}}}"
        for i, r in enumerate(routings))
    path = tmp_path / "routings.mlir"
    path.write_text(source + "\n")
    result = subprocess.run([_moe_opt(), str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = re.findall(r"r = (#moe\.routing<[^>]*>)", result.stdout)
    assert printed == [r.to_mlir() for r in routings]
