"""The float64 reference: hand-computed cases for every routing scheme.

Each case states the expected routing in the test, computed by hand from
docs/Routing.md and docs/Semantics.md, not by re-running the reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from moe_mlir.reference import (EPS_F32, Routing, bf16_to_f32,
                                f32_to_bf16_round, gate, has_near_tie, layer,
                                near_tie_tokens, noisy_logits, parse,
                                resample_near_ties, round_to_bf16,
                                scaled_noise, softmax)


def logit(p):
    """Inverse sigmoid, to write sigmoid scores directly."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, dtype=np.float64)))


def capacity_routing(k: int, capacity: int, **fields) -> Routing:
    return Routing(top_k=k, capacity_kind="fixed", fixed_capacity=capacity,
                   **fields)


# -- token choice, dropless ------------------------------------------------

def test_mixtral_top2_renormalize() -> None:
    routing = parse("<softmax, top_k = 2, renormalize>")
    result = gate(np.array([[1.0, 2.0, 3.0, 0.0]]), routing)
    # Kept logits 3 and 2: weights e^3/(e^3+e^2) = sigmoid(1) and sigmoid(-1).
    assert result.ids.tolist() == [[2, 1]]
    assert result.ids.dtype == np.int32
    np.testing.assert_allclose(result.weights,
                               [[sigmoid(1.0), sigmoid(-1.0)]], rtol=1e-15)


def test_topk_on_logits_then_softmax_equals_renormalize() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((32, 8))
    result = gate(logits, Routing(top_k=3, renormalize="selected"))
    kept = np.take_along_axis(logits, result.ids.astype(np.int64), axis=1)
    np.testing.assert_allclose(result.weights, softmax(kept), rtol=1e-13)
    expected_ids = np.argsort(-logits, axis=1)[:, :3]
    assert [set(r) for r in expected_ids.tolist()] == result.expert_sets()


def test_qwen2_no_renormalize_and_scale() -> None:
    logits = np.array([[0.5, -1.0, 2.0, 1.0]])
    p = softmax(logits)[0]
    plain = gate(logits, Routing(top_k=2))
    assert plain.ids.tolist() == [[2, 3]]
    np.testing.assert_allclose(plain.weights, [[p[2], p[3]]], rtol=1e-15)
    # scale multiplies after renormalization.
    scaled = gate(logits, Routing(top_k=2, renormalize="selected",
                                  scale=2.5))
    np.testing.assert_allclose(
        scaled.weights, [[2.5 * p[2] / (p[2] + p[3]),
                          2.5 * p[3] / (p[2] + p[3])]], rtol=1e-14)


def test_dense_soft_gating() -> None:
    logits = np.array([[0.1, 0.3, -0.2], [2.0, -1.0, 0.5]])
    result = gate(logits, Routing(top_k=3))
    np.testing.assert_allclose(result.dense(), softmax(logits), rtol=1e-15)
    assert result.ids.tolist() == [[1, 0, 2], [0, 2, 1]]
    assert result.stats["dropped_count"] == 0


def test_ties_go_to_lower_index() -> None:
    result = gate(np.zeros((2, 4)), Routing(top_k=2))
    assert result.ids.tolist() == [[0, 1], [0, 1]]
    np.testing.assert_allclose(result.weights, 0.25)
    # A tie at the boundary only: experts 1 and 3 tie for the second slot.
    result = gate(np.array([[0.0, 1.0, 2.0, 1.0]]), Routing(top_k=2))
    assert result.ids.tolist() == [[2, 1]]


# -- DeepSeek ----------------------------------------------------------------

DSV3 = Routing("sigmoid", top_k=2, renormalize="selected", scale=2.5,
               selection_bias=True, num_groups=4, topk_groups=2,
               group_score="sum_top2")
# Scores per group of 2: {.9,.1} {.8,.7} {.2,.3} {.6,.05}.
DSV3_SCORES = np.array([[0.9, 0.1, 0.8, 0.7, 0.2, 0.3, 0.6, 0.05]])


def test_deepseek_v3_without_bias_effect() -> None:
    # Group scores (sum of top 2): 1.0, 1.5, 0.5, 0.65 -> groups 1 and 0.
    # Best two of {.9, .1, .8, .7}: experts 0 and 2.
    result = gate(logit(DSV3_SCORES), DSV3, bias=np.zeros(8))
    assert result.ids.tolist() == [[0, 2]]
    np.testing.assert_allclose(result.weights,
                               [[2.5 * 0.9 / 1.7, 2.5 * 0.8 / 1.7]],
                               rtol=1e-12)


def test_deepseek_v3_bias_changes_selection_not_weights() -> None:
    bias = np.array([0, 0, 0, 0, 0, 0, 0.5, 0.5])
    # Biased group 3: {1.1, .55} -> 1.65, now above group 0 (1.0): groups 3
    # and 1 are kept, the best biased scores are expert 6 (1.1) and 2 (.8).
    result = gate(logit(DSV3_SCORES), DSV3, bias=bias)
    assert result.ids.tolist() == [[6, 2]]
    # Weights come from the unbiased scores .6 and .8.
    np.testing.assert_allclose(result.weights,
                               [[2.5 * 0.6 / 1.4, 2.5 * 0.8 / 1.4]],
                               rtol=1e-12)


def test_deepseek_v3_group_mask_excludes_best_expert() -> None:
    routing = Routing("sigmoid", top_k=2, selection_bias=True, num_groups=4,
                      topk_groups=1)
    scores = np.array([[0.95, 0.01, 0.61, 0.6, 0.5, 0.5, 0.3, 0.3]])
    # sum_top2 per group: .96, 1.21, 1.0, .6 -> only group 1 is kept, so
    # expert 0 (the best single score) is out; no renormalization.
    result = gate(logit(scores), routing, bias=np.zeros(8))
    assert result.ids.tolist() == [[2, 3]]
    np.testing.assert_allclose(result.weights, [[0.61, 0.6]], rtol=1e-12)
    # With group_score = max, group 0 (max .95) wins instead.
    result = gate(logit(scores), Routing("sigmoid", top_k=2, num_groups=4,
                                         topk_groups=1, group_score="max"))
    assert result.ids.tolist() == [[0, 1]]


def test_deepseek_v2_group_limited_greedy() -> None:
    routing = parse("<softmax, top_k = 3, scale = 16.0, groups = 4, "
                    "topk_groups = 2, group_score = max>")
    logits = np.array([[3.0, -2.0, 1.0, 2.9, 2.8, 2.7, 0.0, 0.5]])
    p = softmax(logits)[0]
    # Group maxima (order of the logits): 3.0, 2.9, 2.8, 0.5 -> groups 0, 1.
    # Best three of experts {0, 1, 2, 3}: 0, 3, 2 (experts 4 and 5 score
    # higher than 2 but their group is out); weights p * 16, no
    # renormalization.
    result = gate(logits, routing)
    assert result.ids.tolist() == [[0, 3, 2]]
    np.testing.assert_allclose(result.weights,
                               [[16 * p[0], 16 * p[3], 16 * p[2]]],
                               rtol=1e-14)
    # Without groups the same logits give experts 0, 3, 4.
    assert gate(logits, Routing(top_k=3)).ids.tolist() == [[0, 3, 4]]


# -- capacity ----------------------------------------------------------------

def one_hot_logits(choices, experts: int, strength: float = 2.0):
    logits = np.zeros((len(choices), experts))
    logits[np.arange(len(choices)), choices] = strength
    return logits


def test_switch_fixed_capacity_drops_later_tokens() -> None:
    logits = one_hot_logits([0, 0, 0, 1, 0, 1], 2)
    p_max = softmax(logits).max(axis=1)
    result = gate(logits, capacity_routing(1, 2))
    assert result.ids[:, 0].tolist() == [0, 0, -1, 1, -1, 1]
    np.testing.assert_allclose(result.weights[:, 0],
                               p_max * [1, 1, 0, 1, 0, 1], rtol=1e-15)
    assert result.stats["tokens_per_expert"].tolist() == [2, 2]
    assert result.stats["tokens_per_expert_before_drop"].tolist() == [4, 2]
    assert result.stats["dropped_count"] == 2


def test_switch_hf_rule_at_most_c_up_to_and_including_t() -> None:
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((40, 4)) * 2
    capacity = 6
    result = gate(logits, capacity_routing(1, capacity))
    first = np.argmax(logits, axis=1)
    for t in range(40):
        count = int(np.sum(first[:t + 1] == first[t]))
        keeps = count <= capacity
        assert (result.ids[t, 0] == first[t]) == keeps
        assert (result.ids[t, 0] == -1) == (not keeps)


def test_switch_factor_capacity() -> None:
    routing = parse("<softmax, top_k = 1, capacity = factor(1.25, ceil)>")
    # C = ceil(1.25 * 6 * 1 / 2) = 4.
    result = gate(one_hot_logits([1] * 6, 2), routing)
    assert result.ids[:, 0].tolist() == [1, 1, 1, 1, -1, -1]


def test_gshard_second_choice_loses_to_later_first_choice() -> None:
    routing = Routing(top_k=2, renormalize="kept", capacity_kind="fixed",
                      fixed_capacity=1)
    logits = np.array([[2.0, 1.0, 0.0],   # first e0, second e1
                       [0.0, 2.0, 1.0]])  # first e1, second e2
    p = softmax(logits)
    result = gate(logits, routing)
    # First pass: t0 -> e0, t1 -> e1 (both position 0). Second pass: t0's
    # e1 is at position N1[e1] = 1 >= C, dropped; t1's e2 at 0, kept.
    assert result.ids.tolist() == [[0, -1], [1, 2]]
    g1, g2 = p[1, 1], p[1, 2]
    np.testing.assert_allclose(result.weights,
                               [[1.0, 0.0], [g1 / (g1 + g2), g2 / (g1 + g2)]],
                               rtol=1e-14)
    assert result.stats["dropped_count"] == 1
    assert result.stats["tokens_per_expert"].tolist() == [1, 1, 1]
    assert result.stats["tokens_per_expert_before_drop"].tolist() == [1, 2, 1]


def test_renormalize_selected_with_capacity_keeps_pre_drop_weights() -> None:
    routing = Routing(top_k=2, renormalize="selected", capacity_kind="fixed",
                      fixed_capacity=1)
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    p = softmax(logits)
    result = gate(logits, routing)
    assert result.ids.tolist() == [[0, -1], [1, 2]]
    np.testing.assert_allclose(result.weights[0],
                               [p[0, 0] / (p[0, 0] + p[0, 1]), 0.0],
                               rtol=1e-14)


def test_renormalize_kept_all_dropped_is_zero() -> None:
    routing = Routing(top_k=2, renormalize="kept", capacity_kind="fixed",
                      fixed_capacity=0)
    result = gate(np.array([[1.0, 0.0, -1.0]]), routing)
    assert result.ids.tolist() == [[-1, -1]]
    assert result.weights.tolist() == [[0.0, 0.0]]
    assert EPS_F32 == float(np.finfo(np.float32).eps)


def test_bpr_score_priority() -> None:
    logits = np.array([[1.0, 0.0], [3.0, 0.0]])  # both choose e0
    position = gate(logits, capacity_routing(1, 1))
    assert position.ids[:, 0].tolist() == [0, -1]
    score = gate(logits, capacity_routing(1, 1, priority="score"))
    # t1 has the higher top score (0.95 vs 0.73) and keeps the slot.
    assert score.ids[:, 0].tolist() == [-1, 0]
    # Equal top scores: the lower token index first.
    tied = gate(np.array([[1.0, 0.0], [1.0, 0.0]]),
                capacity_routing(1, 1, priority="score"))
    assert tied.ids[:, 0].tolist() == [0, -1]


def test_bpr_second_choices_follow_score_order() -> None:
    routing = capacity_routing(2, 1, priority="score", renormalize="kept")
    logits = np.array([[1.0, 0.5, 0.0],   # first e0 (p .51), second e1
                       [0.0, 0.4, 3.0]])  # first e2 (p .89), second e1
    result = gate(logits, routing)
    # Firsts fill e0 and e2; both seconds want e1: t1 goes first by score.
    assert result.ids.tolist() == [[0, -1], [2, 1]]
    np.testing.assert_allclose(result.weights, [[1.0, 0.0],
                                                result.weights[1]])
    # By position, t0's second choice takes the slot instead.
    position = gate(logits, capacity_routing(2, 1, renormalize="kept"))
    assert position.ids.tolist() == [[0, 1], [2, -1]]


def test_random_second_choice() -> None:
    routing = parse("<softmax, top_k = 2, renormalize = kept, "
                    "capacity = fixed(8), second = random>")
    logits = np.array([[2.0, 1.0, 0.0]] * 3)
    g2 = softmax(logits)[0, 1]  # 0.2447
    # Dispatched iff 2 * g2 > u (strict).
    uniform = np.array([0.0, 0.99, 2 * g2])
    result = gate(logits, routing, uniform=uniform)
    assert result.ids.tolist() == [[0, 1], [0, -1], [0, -1]]
    np.testing.assert_allclose(result.weights[1:], [[1.0, 0.0]] * 2)
    # Not-dispatched seconds are neither chosen nor dropped.
    assert result.stats["tokens_per_expert_before_drop"].tolist() == [3, 1, 0]
    assert result.stats["dropped_count"] == 0


def test_random_second_not_dispatched_frees_its_slot() -> None:
    routing = capacity_routing(2, 1, second_policy="random")
    logits = np.array([[2.0, 1.0, 0.0],   # first e0, second e1
                       [0.0, 1.0, 2.0]])  # first e2, second e1
    result = gate(logits, routing, uniform=np.array([0.99, 0.0]))
    # t0's second is not dispatched, so t1's second takes e1's only slot.
    assert result.ids.tolist() == [[0, -1], [2, 1]]


def test_all_tokens_choose_the_same_expert() -> None:
    routing = Routing(top_k=1, capacity_kind="factor", capacity_factor=1.0)
    logits = one_hot_logits([0] * 5, 4)
    result = gate(logits, routing)  # C = ceil(5 / 4) = 2
    assert result.ids[:, 0].tolist() == [0, 0, -1, -1, -1]
    stats = result.stats
    assert stats["tokens_per_expert"].tolist() == [2, 0, 0, 0]
    assert stats["tokens_per_expert_before_drop"].tolist() == [5, 0, 0, 0]
    assert stats["dropped_count"] == 3
    # f = [1, 0, 0, 0]: aux = E * P_0.
    p0 = math.exp(2) / (math.exp(2) + 3)
    assert stats["load_balancing_loss"] == pytest.approx(4 * p0, rel=1e-14)


def test_capacity_zero_and_capacity_at_least_t() -> None:
    logits = np.random.default_rng(2).standard_normal((7, 4))
    none = gate(logits, capacity_routing(2, 0))
    assert (none.ids == -1).all() and (none.weights == 0).all()
    assert none.stats["dropped_count"] == 14
    assert none.stats["tokens_per_expert"].tolist() == [0, 0, 0, 0]
    assert none.stats["importance_loss"] == 0.0
    full = gate(logits, capacity_routing(2, 7))
    dropless = gate(logits, Routing(top_k=2))
    np.testing.assert_array_equal(full.ids, dropless.ids)
    np.testing.assert_array_equal(full.weights, dropless.weights)
    assert full.stats["dropped_count"] == 0


def test_group_size_not_dividing_t() -> None:
    # C(S) = floor(2.0 * S * 1 / 4): groups of 4 get 2 slots, the short last
    # group of 2 gets floor(1.0) = 1 of its own.
    routing = Routing(top_k=1, capacity_kind="factor", capacity_factor=2.0,
                      rounding="floor", group_size=4)
    result = gate(one_hot_logits([0] * 6, 4), routing)
    assert result.ids[:, 0].tolist() == [0, 0, -1, -1, 0, -1]
    # Groups are independent: the second group starts from empty slots.
    fixed = Routing(top_k=1, capacity_kind="fixed", fixed_capacity=1,
                    group_size=2)
    result = gate(one_hot_logits([1, 1, 1, 0, 1], 2), fixed)
    assert result.ids[:, 0].tolist() == [1, -1, 1, 0, 1]


def test_fraction_capacity() -> None:
    routing = parse("<softmax, top_k = 2, renormalize = kept, "
                    "capacity = fraction(0.2)>")
    logits = one_hot_logits([0] * 10, 4)
    result = gate(logits, routing)  # C = ceil(0.2 * 10) = 2
    assert (result.ids[:, 0] == 0).sum() == 2
    assert result.ids[:2, 0].tolist() == [0, 0]


# -- expert choice -----------------------------------------------------------

EC_LOGITS = np.array([[5.0, 5.0, 0.0],
                      [0.0, 0.0, 0.0],
                      [0.0, 0.0, 5.0],
                      [1.0, 0.0, 1.0]])


def test_expert_choice_uneven_assignment() -> None:
    # C = round(0.75 * 4 * 1 / 3) = 1. Column maxima of p: e0 -> t0 (.498 vs
    # t3's .422), e1 -> t0, e2 -> t2 (.987).
    routing = parse("<softmax, expert_choice, capacity = factor(0.75, "
                    "round)>")
    p = softmax(EC_LOGITS)
    result = gate(EC_LOGITS, routing)
    assert result.ids.tolist() == [[0, 1, -1], [-1, -1, -1], [-1, -1, 2],
                                   [-1, -1, -1]]
    expected = np.zeros((4, 3))
    expected[0, :2] = p[0, :2]
    expected[2, 2] = p[2, 2]
    np.testing.assert_allclose(result.weights, expected, rtol=1e-15)
    assert result.stats["tokens_per_expert"].tolist() == [1, 1, 1]
    assert result.stats["dropped_count"] == 0


def test_expert_choice_capacity_two_and_ties() -> None:
    routing = Routing(mode="expert_choice", capacity_kind="fixed",
                      fixed_capacity=2, scale=2.0)
    result = gate(np.zeros((3, 2)), routing)
    # All equal: each expert takes the two lowest token indices.
    assert result.ids.tolist() == [[0, 1], [0, 1], [-1, -1]]
    np.testing.assert_allclose(result.weights[:2], 2.0 * 0.5)
    # C >= T: every expert takes every token.
    result = gate(EC_LOGITS, Routing(mode="expert_choice",
                                     capacity_kind="fixed",
                                     fixed_capacity=9))
    assert (result.ids == np.arange(3)).all()


def test_expert_choice_groups() -> None:
    routing = Routing(mode="expert_choice", capacity_kind="fixed",
                      fixed_capacity=1, group_size=2)
    logits = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    result = gate(logits, routing)
    # Group {0,1}: e0 -> t1, e1 -> t0 (p1 .27 vs .12). Group {2,3}: e0 -> t2
    # (p0 .27 vs .05), e1 -> t3.
    assert result.ids.tolist() == [[-1, 1], [0, -1], [0, -1], [-1, 1]]


# -- shapes -------------------------------------------------------------------

@pytest.mark.parametrize("routing", [
    Routing(top_k=2, renormalize="selected"),
    capacity_routing(2, 3, renormalize="kept", priority="score"),
    # C = round(4.0 * T / 4) = T.
    Routing(mode="expert_choice", capacity_kind="factor",
            capacity_factor=4.0, rounding="round"),
])
def test_empty_and_single_token(routing: Routing) -> None:
    columns = routing.choices_per_token(4)
    empty = gate(np.zeros((0, 4)), routing)
    assert empty.weights.shape == (0, columns)
    assert empty.ids.shape == (0, columns)
    assert empty.stats["tokens_per_expert"].tolist() == [0, 0, 0, 0]
    assert empty.stats["load_balancing_loss"] == 0.0
    assert empty.stats["z_loss"] == 0.0
    one = gate(np.array([[0.0, 1.0, 3.0, 2.0]]), routing)
    assert one.weights.shape == (1, columns)
    assert one.ids.shape == (1, columns)
    assert (one.ids >= 0).any()


def test_gate_operand_errors() -> None:
    logits = np.zeros((2, 4))
    with pytest.raises(ValueError, match="bias is required"):
        gate(logits, Routing("sigmoid", top_k=1, selection_bias=True))
    with pytest.raises(ValueError, match="noise is only allowed"):
        gate(logits, Routing(top_k=1), noise=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="uniform is required"):
        gate(logits, Routing(top_k=2, second_policy="random"))
    with pytest.raises(ValueError, match="exceeds the number of experts"):
        gate(logits, Routing(top_k=5))
    with pytest.raises(ValueError, match="floating point"):
        gate(np.zeros((2, 4), dtype=np.uint16), Routing(top_k=1))


# -- noisy gating ------------------------------------------------------------

def test_noisy_top_k() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6))
    w_router = rng.standard_normal((4, 6))
    w_noise = rng.standard_normal((4, 6))
    n = rng.standard_normal((5, 4))
    expected = x @ w_router.T + n * np.log1p(np.exp(x @ w_noise.T))
    np.testing.assert_allclose(noisy_logits(x, w_router, w_noise, n),
                               expected, rtol=1e-13)
    routing = parse("<softmax, top_k = 2, renormalize, noisy>")
    noise = scaled_noise(x, w_noise, n)
    noisy = gate(x @ w_router.T, routing, noise=noise)
    # Keep the top 2 of h, softmax over the kept: h = logits + noise.
    h = expected
    top = np.argsort(-h, axis=1)[:, :2]
    assert noisy.ids.tolist() == top.tolist()
    np.testing.assert_allclose(noisy.weights,
                               softmax(np.take_along_axis(h, top, axis=1)),
                               rtol=1e-13)
    # Noise off when absent.
    clean = gate(x @ w_router.T, routing)
    np.testing.assert_array_equal(
        clean.ids, np.argsort(-(x @ w_router.T), axis=1)[:, :2])


# -- statistics --------------------------------------------------------------

def test_statistics_by_hand() -> None:
    # t0: p = [.75, .25]; t1: p = [.5, .5] (tie -> e0).
    logits = np.array([[math.log(3.0), 0.0], [0.0, 0.0]])
    stats = gate(logits, Routing(top_k=1)).stats
    # f = [1, 0], P = [.625, .375] -> aux = 2 * .625.
    assert stats["load_balancing_loss"] == pytest.approx(1.25, rel=1e-15)
    # logsumexp: ln 4 and ln 2 -> mean of squares = 2.5 (ln 2)^2.
    assert stats["z_loss"] == pytest.approx(2.5 * math.log(2) ** 2,
                                            rel=1e-14)
    # Importance [1.25, 0]: mean .625, population std .625 -> CV^2 = 1.
    assert stats["importance_loss"] == pytest.approx(1.0, rel=1e-14)
    assert stats["tokens_per_expert"].tolist() == [2, 0]
    assert stats["tokens_per_expert"].dtype == np.int64

    # Capacity 1 drops t1: importance uses kept weights only, [.75, 0].
    dropped = gate(logits, capacity_routing(1, 1)).stats
    assert dropped["tokens_per_expert"].tolist() == [1, 0]
    assert dropped["tokens_per_expert_before_drop"].tolist() == [2, 0]
    assert dropped["dropped_count"] == 1
    assert dropped["load_balancing_loss"] == pytest.approx(1.25, rel=1e-15)
    assert dropped["importance_loss"] == pytest.approx(1.0, rel=1e-14)


def test_statistics_top2_importance() -> None:
    # One token, p = [.5, .25, .25] -> top 2 {e0, e1} (tie to e1).
    logits = np.log(np.array([[2.0, 1.0, 1.0]]))
    stats = gate(logits, Routing(top_k=2)).stats
    # Importance [.5, .25, 0]: mean .25, var (.0625 + 0 + .0625) / 3.
    assert stats["importance_loss"] == pytest.approx((0.125 / 3) / 0.0625,
                                                     rel=1e-13)
    # f = [1, 0, 0], P = p -> aux = 3 * .5.
    assert stats["load_balancing_loss"] == pytest.approx(1.5, rel=1e-14)


def test_sigmoid_load_balancing_uses_normalized_scores() -> None:
    scores = np.array([[0.8, 0.2], [0.6, 0.6]])
    stats = gate(logit(scores), Routing("sigmoid", top_k=1)).stats
    # Normalized: [.8, .2] and [.5, .5] -> P = [.65, .35]; f = [1, 0].
    assert stats["load_balancing_loss"] == pytest.approx(2 * 0.65, rel=1e-12)


# -- layer -------------------------------------------------------------------

def silu(v):
    return v / (1.0 + np.exp(-v))


def loop_layer(x, w, ids, weights, act, gated=True, shared=False):
    """A per-token, per-slot loop written independently of the reference."""
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for c in range(ids.shape[1]):
            e = ids[t, c]
            if e < 0:
                continue
            up = w["expert_up"][e] @ x[t]
            if "up_bias" in w:
                up = up + w["up_bias"][e]
            if gated:
                hidden = act(w["expert_gate"][e] @ x[t]) * up
            else:
                hidden = act(up)
            y = w["expert_down"][e] @ hidden
            if "down_bias" in w:
                y = y + w["down_bias"][e]
            out[t] += weights[t, c] * y
        if shared:
            s = w["shared_down"] @ (act(w["shared_gate"] @ x[t])
                                    * (w["shared_up"] @ x[t]))
            out[t] += sigmoid(w["shared_expert_gate"] @ x[t])[0] * s
    return out


def random_weights(rng, experts=4, hidden=6, inter=5, shared=3):
    return {
        "router": rng.standard_normal((experts, hidden)),
        "expert_gate": rng.standard_normal((experts, inter, hidden)) * 0.3,
        "expert_up": rng.standard_normal((experts, inter, hidden)) * 0.3,
        "expert_down": rng.standard_normal((experts, hidden, inter)) * 0.3,
        "shared_gate": rng.standard_normal((shared, hidden)) * 0.3,
        "shared_up": rng.standard_normal((shared, hidden)) * 0.3,
        "shared_down": rng.standard_normal((hidden, shared)) * 0.3,
        "shared_expert_gate": rng.standard_normal((1, hidden)),
    }


def test_layer_mixtral_matches_loop() -> None:
    rng = np.random.default_rng(4)
    w = random_weights(rng)
    routed = {k: v for k, v in w.items() if not k.startswith("shared")}
    x = rng.standard_normal((9, 6))
    routing = parse("<softmax, top_k = 2, renormalize>")
    y, stats = layer(x, routed, routing, "silu")
    g = gate(x @ w["router"].T, routing)
    np.testing.assert_allclose(y, loop_layer(x, routed, g.ids, g.weights,
                                             silu), rtol=1e-12, atol=1e-14)
    assert stats["tokens_per_expert"].sum() == 18


def test_layer_qwen2_shared_expert_gate() -> None:
    rng = np.random.default_rng(5)
    w = random_weights(rng)
    x = rng.standard_normal((7, 6))
    routing = Routing(top_k=2)
    y, _ = layer(x, w, routing, "silu")
    g = gate(x @ w["router"].T, routing)
    np.testing.assert_allclose(
        y, loop_layer(x, w, g.ids, g.weights, silu, shared=True),
        rtol=1e-12, atol=1e-14)


def test_layer_switch_dropped_rows_are_zero_and_biases() -> None:
    rng = np.random.default_rng(6)
    w = random_weights(rng)
    ffn = {"router": w["router"], "expert_up": w["expert_up"],
           "expert_down": w["expert_down"],
           "up_bias": rng.standard_normal((4, 5)),
           "down_bias": rng.standard_normal((4, 6))}
    x = rng.standard_normal((12, 6))
    routing = capacity_routing(1, 2)
    y, stats = layer(x, ffn, routing, "relu")
    g = gate(x @ w["router"].T, routing)
    dropped = g.ids[:, 0] < 0
    assert dropped.any() and stats["dropped_count"] == int(dropped.sum())
    assert (y[dropped] == 0).all()
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    np.testing.assert_allclose(
        y, loop_layer(x, ffn, g.ids, g.weights, relu, gated=False),
        rtol=1e-12, atol=1e-14)


def test_layer_deepseek_v3_and_expert_choice_shapes() -> None:
    rng = np.random.default_rng(7)
    w = random_weights(rng, experts=8)
    del w["shared_expert_gate"]
    w["score_bias"] = rng.standard_normal(8) * 0.1
    x = rng.standard_normal((5, 6))
    routing = Routing("sigmoid", top_k=2, renormalize="selected", scale=2.5,
                      selection_bias=True, num_groups=4, topk_groups=2)
    y, _ = layer(x, w, routing, "silu")
    g = gate(x @ w["router"].T, routing, bias=w["score_bias"])
    shared = (silu(x @ w["shared_gate"].T) * (x @ w["shared_up"].T)) \
        @ w["shared_down"].T
    routed = {k: v for k, v in w.items() if not k.startswith("shared")}
    np.testing.assert_allclose(
        y, loop_layer(x, routed, g.ids, g.weights, silu) + shared,
        rtol=1e-12, atol=1e-14)
    ec = Routing(mode="expert_choice", capacity_kind="fixed",
                 fixed_capacity=1)
    del routed["score_bias"]
    y, _ = layer(np.zeros((0, 6)), routed, ec, "gelu")
    assert y.shape == (0, 6)
    y, _ = layer(x[:1], routed, ec, "gelu")
    assert y.shape == (1, 6)


def test_layer_noisy_and_random_operands() -> None:
    rng = np.random.default_rng(8)
    w = random_weights(rng)
    routed = {k: v for k, v in w.items() if not k.startswith("shared")}
    routed["noise_router"] = rng.standard_normal((4, 6))
    x = rng.standard_normal((6, 6))
    n = rng.standard_normal((6, 4))
    routing = Routing(top_k=2, renormalize="selected", noisy=True)
    y, _ = layer(x, routed, routing, "gelu_tanh", noise=n)
    g = gate(x @ w["router"].T, routing,
             noise=scaled_noise(x, routed["noise_router"], n))
    gelu_tanh = lambda v: 0.5 * v * (1 + np.tanh(  # noqa: E731
        math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
    np.testing.assert_allclose(
        y, loop_layer(x, routed, g.ids, g.weights, gelu_tanh),
        rtol=1e-12, atol=1e-14)


def test_layer_gelu_is_erf_based() -> None:
    rng = np.random.default_rng(9)
    w = random_weights(rng, experts=1)
    routed = {k: v for k, v in w.items() if not k.startswith("shared")}
    x = rng.standard_normal((3, 6))
    y, _ = layer(x, routed, Routing(top_k=1), "gelu")
    erf = np.vectorize(math.erf)
    gelu = lambda v: 0.5 * v * (1 + erf(v / math.sqrt(2)))  # noqa: E731
    expected = (gelu(x @ routed["expert_gate"][0].T)
                * (x @ routed["expert_up"][0].T)) @ routed["expert_down"][0].T
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)


def test_layer_operand_errors() -> None:
    rng = np.random.default_rng(10)
    w = random_weights(rng)
    x = rng.standard_normal((2, 6))
    with pytest.raises(ValueError, match="unknown layer operands"):
        layer(x, {**w, "w1": w["expert_up"]}, Routing(top_k=1))
    with pytest.raises(ValueError, match="score_bias is required"):
        layer(x, w, Routing("sigmoid", top_k=1, selection_bias=True))
    with pytest.raises(ValueError, match="expert_down must have shape"):
        layer(x, {**w, "expert_down": w["expert_up"]}, Routing(top_k=1))
    with pytest.raises(ValueError, match="unknown activation"):
        layer(x, w, Routing(top_k=1), "swish")
    partial = {k: v for k, v in w.items() if k != "shared_down"}
    with pytest.raises(ValueError, match="both shared_up and shared_down"):
        layer(x, partial, Routing(top_k=1))


# -- test-data helpers -------------------------------------------------------

def test_bf16_round_trip_and_rounding() -> None:
    assert bf16_to_f32(np.array([0x3F80], np.uint16)).tolist() == [1.0]
    values = np.array([1.0 + 2.0 ** -8,       # halfway, even below: 0x3F80
                       1.0 + 3 * 2.0 ** -8,   # halfway, even above: 0x3F82
                       -2.0, np.inf, 3.4028235e38], np.float32)
    assert f32_to_bf16_round(values).tolist() == [0x3F80, 0x3F82, 0xC000,
                                                  0x7F80, 0x7F80]
    assert np.isnan(round_to_bf16(np.array([np.nan])))[0]
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    decoded = bf16_to_f32(every)
    finite = ~np.isnan(decoded)
    np.testing.assert_array_equal(f32_to_bf16_round(decoded)[finite],
                                  every[finite])
    with pytest.raises(ValueError):
        bf16_to_f32(np.zeros(2, np.float32))


def test_has_near_tie() -> None:
    scores = np.array([[0.5, 0.49995, 0.1], [0.5, 0.4, 0.1]])
    assert has_near_tie(scores, 1).tolist() == [True, False]
    assert has_near_tie(scores, 2).tolist() == [False, False]
    assert has_near_tie(scores, 3).tolist() == [False, False]


def test_resample_near_ties() -> None:
    rng = np.random.default_rng(11)
    routing = Routing(top_k=2, renormalize="selected")
    w_router = rng.standard_normal((8, 4))
    x = rng.standard_normal((64, 4))
    x[:8] = 0.0  # all-equal logits: ties everywhere
    flag = lambda v: near_tie_tokens(v @ w_router.T, routing)  # noqa: E731
    assert flag(x)[:8].all()
    clean = resample_near_ties(x, flag,
                               lambda n: rng.standard_normal((n, 4)))
    assert not flag(clean).any()
    np.testing.assert_array_equal(clean[~flag(x)], x[~flag(x)])
    with pytest.raises(RuntimeError):
        resample_near_ties(x, flag, lambda n: np.zeros((n, 4)), max_rounds=3)


def test_near_tie_tokens_schemes() -> None:
    logits = np.log(np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]]))
    ec = Routing(mode="expert_choice", capacity_kind="fixed",
                 fixed_capacity=1)
    # Column 2 ties between both tokens at the C = 1 boundary.
    assert near_tie_tokens(logits, ec).tolist() == [True, True]
    second = Routing(top_k=2, second_policy="random")
    g2 = 0.3
    flags = near_tie_tokens(logits[:1], second,
                            uniform=np.array([2 * g2 + 1e-6]))
    assert flags.tolist() == [True]


def naive_kept(logits, routing: Routing, uniform=None) -> np.ndarray:
    """Slot filling one assignment at a time, as the docs describe it."""
    p = softmax(logits)
    num_tokens, num_experts = p.shape
    choices = np.argsort(-p, axis=1, kind="stable")[:, :routing.top_k]
    dispatched = np.ones(choices.shape, dtype=bool)
    if uniform is not None:
        g2 = p[np.arange(num_tokens), choices[:, 1]]
        dispatched[:, 1] = 2 * g2 > uniform
    kept = np.zeros(choices.shape, dtype=bool)
    size = routing.group_size or num_tokens
    for start in range(0, num_tokens, size):
        tokens = list(range(start, min(start + size, num_tokens)))
        capacity = routing.capacity(len(tokens), num_experts)
        if routing.priority == "score":
            tokens.sort(key=lambda t: (-p[t].max(), t))
        fill = [0] * num_experts
        for rank in range(routing.top_k):
            for t in tokens:
                if dispatched[t, rank]:
                    kept[t, rank] = fill[choices[t, rank]] < capacity
                    fill[choices[t, rank]] += 1
    return kept


@pytest.mark.parametrize("seed", range(12))
def test_capacity_matches_naive_slot_filling(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    top_k = [1, 2, 3][seed % 3]
    random_second = top_k == 2 and seed % 2 == 0
    routing = Routing(
        top_k=top_k, capacity_kind="factor",
        capacity_factor=float(rng.uniform(0.3, 1.5)),
        rounding=["ceil", "floor", "round"][seed % 3],
        group_size=int(rng.choice([0, 5, 16])),
        priority="score" if seed % 4 < 2 else "position",
        second_policy="random" if random_second else "all")
    logits = rng.standard_normal((37, 6)) * 2
    uniform = rng.uniform(size=37) if random_second else None
    result = gate(logits, routing, uniform=uniform)
    np.testing.assert_array_equal(result.ids >= 0,
                                  naive_kept(logits, routing, uniform))


def test_weight_inputs_scales_each_experts_input() -> None:
    """``weight_inputs`` (Llama 4): ``sum_k expert(w_k * x)``, which differs
    from ``sum_k w_k * expert(x)``; a dropped choice contributes
    nothing even when the expert has biases (``expert(0) != 0``)."""
    from moe_mlir.layer import expert_ffn, layer
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6))
    ops = {"router": rng.standard_normal((4, 6)),
           "expert_gate": rng.standard_normal((4, 3, 6)),
           "expert_up": rng.standard_normal((4, 3, 6)),
           "expert_down": rng.standard_normal((4, 6, 3)),
           "down_bias": rng.standard_normal((4, 6))}
    routing = Routing(scoring="sigmoid", top_k=2)
    y, _ = layer(x, ops, routing, "silu", weight_inputs=True)
    logits = x @ ops["router"].T
    expected = np.zeros_like(x)
    for t in range(5):
        for e in np.argsort(-logits[t], kind="stable")[:2]:
            w = 1.0 / (1.0 + math.exp(-logits[t, e]))
            expected[t] += expert_ffn(
                w * x[t:t + 1], ops["expert_up"][e], ops["expert_down"][e],
                "silu", gate_proj=ops["expert_gate"][e],
                down_bias=ops["down_bias"][e])[0]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    plain, _ = layer(x, ops, routing, "silu")
    assert np.abs(plain - y).max() > 1e-3
    # Capacity 1 drops the later tokens' choices of a crowded expert.
    capped = Routing(scoring="sigmoid", top_k=1, capacity_kind="fixed",
                     fixed_capacity=1)
    y, _ = layer(x, ops, capped, "silu", weight_inputs=True)
    top = np.argmax(logits, axis=1)
    for t in range(5):
        if top[t] in top[:t]:
            np.testing.assert_array_equal(y[t], 0.0)


def test_clamped_swiglu_and_router_bias() -> None:
    """gpt-oss: ``min(g, L) * sigmoid(a * min(g, L)) * (clip(u, -L, L) +
    1)``, and the router bias shifting the logits before the top-k."""
    from moe_mlir.layer import expert_ffn, layer
    rng = np.random.default_rng(4)
    x = 3.0 * rng.standard_normal((6, 5))
    gate, up = rng.standard_normal((2, 4, 5))
    down = rng.standard_normal((5, 4))
    out = expert_ffn(x, up, down, "clamped_swiglu", gate_proj=gate,
                     swiglu=(1.702, 2.0))
    g = np.minimum(x @ gate.T, 2.0)
    u = np.clip(x @ up.T, -2.0, 2.0)
    expected = (g / (1.0 + np.exp(-1.702 * g)) * (u + 1.0)) @ down.T
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert (np.abs(x @ up.T) > 2.0).any() and (x @ gate.T > 2.0).any()
    with pytest.raises(ValueError, match="needs a gate projection"):
        expert_ffn(x, up, down, "clamped_swiglu", swiglu=(1.702, 2.0))
    ops = {"router": rng.standard_normal((3, 5)),
           "router_bias": np.array([0.0, 100.0, 0.0]),
           "expert_up": rng.standard_normal((3, 4, 5)),
           "expert_down": rng.standard_normal((3, 5, 4))}
    y, _ = layer(x, ops, Routing(top_k=1), "relu")
    only = expert_ffn(x, ops["expert_up"][1], ops["expert_down"][1], "relu")
    np.testing.assert_allclose(y, only, rtol=1e-12)


def test_sparsemixer_gate() -> None:
    """Phi-3.5-MoE's sparsemixer in eval: the argmax weighted by the
    softmax of the logits within a relative 2 * jitter of it, then the
    same with the first choice left out (never renormalized)."""
    from moe_mlir.gating import gate
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((40, 6))
    logits[0] = 0.0     # 0 / 0 gaps keep every expert
    jitter = 0.2
    result = gate(logits, Routing(scoring="sparsemixer", top_k=2,
                                  jitter=jitter))
    for t, row in enumerate(logits):
        scores = row.copy()
        for k in range(2):
            i = int(np.argmax(scores))
            m = scores[i]
            with np.errstate(invalid="ignore"):
                gap = (m - row) / np.maximum(np.abs(row), m)
            masked = np.where(gap > 2 * jitter, -np.inf, scores)
            probs = np.exp(masked - m)
            assert result.ids[t, k] == i
            assert result.weights[t, k] == pytest.approx(
                probs[i] / probs.sum(), rel=1e-12)
            scores[i] = -np.inf
    assert result.weights[0, 0] == pytest.approx(1 / 6)
    # jitter 0: only the chosen expert survives its mask.
    exact = gate(logits[1:], Routing(scoring="sparsemixer", top_k=2))
    np.testing.assert_allclose(exact.weights, 1.0)


def test_zero_experts_add_the_token() -> None:
    """LongCat-Flash's zero experts: the router scores E + Z candidates; a
    chosen id >= E adds its weight times the token, with no weights."""
    from moe_mlir.layer import expert_ffn, layer
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 5))
    ops = {"router": rng.standard_normal((6, 5)),   # E = 4, Z = 2
           "expert_up": rng.standard_normal((4, 3, 5)),
           "expert_down": rng.standard_normal((4, 5, 3))}
    routing = Routing(top_k=3, scale=2.0)
    y, _ = layer(x, ops, routing, "relu", zero_experts=2)
    logits = x @ ops["router"].T
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    for t in range(7):
        expected = np.zeros(5)
        for e in np.argsort(-probs[t], kind="stable")[:3]:
            w = 2.0 * probs[t, e]
            expected += w * (x[t] if e >= 4 else expert_ffn(
                x[t:t + 1], ops["expert_up"][e], ops["expert_down"][e],
                "relu")[0])
        np.testing.assert_allclose(y[t], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="leave no expert"):
        layer(x, ops, routing, "relu", zero_experts=6)
