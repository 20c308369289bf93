"""Float64 reference of ``moe.gate``: every routing scheme, and statistics.

Conventions (docs/Routing.md, docs/Semantics.md):

- Results are ``[T, C]`` weights and ids, ``C = K`` for token choice and
  ``C = E`` for expert choice (slot ``e`` is expert ``e``). An assignment
  that is not taken (dropped over capacity, a second choice not dispatched
  by random routing, a token an expert did not choose) has id ``-1`` and
  weight ``0``.
- Token choice: slot ``k`` holds the token's ``k``-th choice (descending
  selection score, ties to the lower expert index). The order is not
  semantic; compare as sets.
- Noise (``noisy`` routing) is *already scaled*: the routed logits are
  ``h = logits + noise`` (see :func:`scaled_noise`). Everything downstream,
  statistics included, uses ``h``.

Choices where the documents leave room:

- Capacity, ``second = random``: a second choice that is not dispatched
  (``2 * g2 <= u``, ``g2`` its router score whatever the renormalization)
  takes no capacity slot and counts neither as chosen
  (``tokens_per_expert_before_drop``) nor as dropped.
- Capacity positions generalize GShard to any K: all rank-0 choices, then
  all rank-1 choices, ...; a position counts every earlier dispatched
  assignment at that expert, kept or not (``pos2 = N1[e] + ...``).
- ``priority = score``: a token's top score is ``max_e`` of its unbiased
  router scores (fairseq's ``gates.max``), ties to the lower token index.
- ``renormalize`` (selected) divides by the sum over all K selected scores,
  before dropping and before random dispatch.
- Expert choice: ``tokens_per_expert_before_drop == tokens_per_expert`` and
  ``dropped_count == 0``; ties go to the lower token index; a per-expert
  ``selection_bias`` does not change any expert's ranking.
- Load-balancing loss: the first choice ``e`` of a token is its top-ranked
  selection (bias and group limits included; for expert choice the argmax of
  the selection scores); ``P_e`` is the mean softmax probability, or for
  sigmoid scoring the mean of ``s / sum_e s`` (DeepSeek-V3's normalization).
- Importance loss: ``CV^2`` of the column sums of the final ``[T, E]``
  combine matrix (after dropping, renormalization and scale), population
  variance; 0 when the mean is 0.
- Capacity per group (``Routing.capacity``): ``factor`` evaluates
  ``((F * S) * K) / E`` in double precision and ``round`` rounds half to
  even, as flaxformer's ``int(round(...))``.
- With ``T = 0`` every loss is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .routing import Routing
from .testdata import has_near_tie

__all__ = [
    "EPS_F32",
    "GateResult",
    "as_float64",
    "gate",
    "logsumexp",
    "near_tie_tokens",
    "noisy_logits",
    "scaled_noise",
    "sigmoid",
    "softmax",
    "softplus",
]

EPS_F32 = float(np.finfo(np.float32).eps)
"""``torch.finfo(torch.float32).eps``, the floor of ``renormalize = kept``."""


# -- elementwise helpers -----------------------------------------------------

def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (max-subtracted)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 0 or logits.size == 0:
        return np.zeros_like(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(values: np.ndarray) -> np.ndarray:
    """Logistic function, without overflow for large ``|values|``."""
    values = np.asarray(values, dtype=np.float64)
    exp = np.exp(-np.abs(values))
    return np.where(values >= 0, 1.0 / (1.0 + exp), exp / (1.0 + exp))


def softplus(values: np.ndarray) -> np.ndarray:
    """``log(1 + exp(v))``, stable for large ``|v|``."""
    values = np.asarray(values, dtype=np.float64)
    return np.maximum(values, 0.0) + np.log1p(np.exp(-np.abs(values)))


def logsumexp(values: np.ndarray) -> np.ndarray:
    """``log(sum(exp(v)))`` over the last axis."""
    values = np.asarray(values, dtype=np.float64)
    peak = values.max(axis=-1, keepdims=True)
    return (peak + np.log(np.exp(values - peak).sum(axis=-1,
                                                    keepdims=True)))[..., 0]


def scaled_noise(x: np.ndarray, w_noise: np.ndarray,
                 normal_samples: np.ndarray) -> np.ndarray:
    """Shazeer's noise term ``n * softplus(x @ Wnoise^T)`` (``[T, E]``).

    This is what :func:`gate` takes as ``noise``; ``moe.layer`` takes the
    standard-normal ``normal_samples`` and the noise router instead.
    """
    x = np.asarray(x, dtype=np.float64)
    return (np.asarray(normal_samples, dtype=np.float64)
            * softplus(x @ np.asarray(w_noise, dtype=np.float64).T))


def noisy_logits(x: np.ndarray, w_router: np.ndarray, w_noise: np.ndarray,
                 normal_samples: np.ndarray) -> np.ndarray:
    """Noisy top-k logits ``x @ Wr^T + n * softplus(x @ Wn^T)``."""
    x = np.asarray(x, dtype=np.float64)
    return (x @ np.asarray(w_router, dtype=np.float64).T
            + scaled_noise(x, w_noise, normal_samples))


# -- result ------------------------------------------------------------------

@dataclass(frozen=True)
class GateResult:
    """What ``moe.gate`` returns, in float64.

    Attributes:
        weights: ``[T, C]`` combine weights (0 where not taken).
        ids: ``[T, C]`` int32 expert ids (-1 where not taken).
        stats: every statistic of docs/Routing.md, by name:
            ``tokens_per_expert`` and ``tokens_per_expert_before_drop``
            (``[E]`` int64), ``dropped_count`` (int),
            ``load_balancing_loss``, ``z_loss``, ``importance_loss`` (float).
        scores: ``[T, E]`` router scores (softmax or sigmoid of the routed
            logits), before any bias.
    """

    weights: np.ndarray
    ids: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def num_experts(self) -> int:
        """E."""
        return int(self.scores.shape[1])

    def dense(self) -> np.ndarray:
        """The ``[T, E]`` combine matrix: ``dense[t, e]`` = weight of e."""
        return _densify(self.weights, self.ids, self.num_experts)

    def expert_sets(self) -> list[set[int]]:
        """The taken experts of each token, as sets (order-free comparison)."""
        return [set(int(e) for e in row if e >= 0) for row in self.ids]


def _densify(weights: np.ndarray, ids: np.ndarray,
             num_experts: int) -> np.ndarray:
    dense = np.zeros((weights.shape[0], num_experts), dtype=np.float64)
    rows, cols = np.nonzero(ids >= 0)
    np.add.at(dense, (rows, ids[rows, cols]), weights[rows, cols])
    return dense


# -- selection ---------------------------------------------------------------

def _top_indices(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest entries per row, best first.

    A stable sort on ``-value``: equal values keep index order, so ties go to
    the lower index.
    """
    return np.argsort(-values, axis=1, kind="stable")[:, :count]


def _scores(logits: np.ndarray, routing: Routing) -> np.ndarray:
    if routing.scoring in ("softmax", "sparsemixer"):
        return softmax(logits)
    return sigmoid(logits)


def _group_scores(selection: np.ndarray, routing: Routing) -> np.ndarray:
    """``[T, G]`` group scores: max, or sum of the two largest, per group."""
    num_tokens, num_experts = selection.shape
    grouped = selection.reshape(num_tokens, routing.num_groups,
                                num_experts // routing.num_groups)
    if routing.group_score == "max":
        return grouped.max(axis=2)
    top2 = -np.sort(-grouped, axis=2)[:, :, :2]
    return top2[:, :, 0] + top2[:, :, 1]


def _mask_groups(selection: np.ndarray, routing: Routing) -> np.ndarray:
    """Selection scores with experts outside the kept groups set to -inf."""
    if not routing.is_group_limited:
        return selection
    num_tokens, num_experts = selection.shape
    assert routing.topk_groups is not None
    kept = _top_indices(_group_scores(selection, routing),
                        routing.topk_groups)
    group_mask = np.zeros((num_tokens, routing.num_groups), dtype=bool)
    np.put_along_axis(group_mask, kept, True, axis=1)
    expert_mask = np.repeat(group_mask, num_experts // routing.num_groups,
                            axis=1)
    return np.where(expert_mask, selection, -np.inf)


def _groups(num_tokens: int,
            routing: Routing) -> Iterator[tuple[int, int]]:
    """Consecutive token groups ``[start, end)``; the last may be shorter."""
    size = routing.group_size if routing.group_size > 0 else num_tokens
    for start in range(0, num_tokens, max(size, 1)):
        yield start, min(start + size, num_tokens)


# -- capacity ----------------------------------------------------------------

def _priority_order(scores: np.ndarray, routing: Routing) -> np.ndarray:
    """Token order (within a group) in which slots are handed out."""
    if routing.priority == "score":
        top = scores.max(axis=1) if scores.shape[1] else np.zeros(0)
        return np.argsort(-top, kind="stable")
    return np.arange(scores.shape[0])


def _apply_capacity(choice_ids: np.ndarray, dispatched: np.ndarray,
                    scores: np.ndarray, routing: Routing) -> np.ndarray:
    """Which dispatched assignments keep their slot (``[T, K]`` bool).

    Per group, choice ranks are placed one after the other (all first
    choices, then all second choices, ...), each rank in priority order. An
    assignment's position is the number of assignments placed at its expert
    before it; it is kept iff position < C.
    """
    num_tokens, top_k = choice_ids.shape
    num_experts = scores.shape[1]
    kept = np.zeros_like(dispatched)
    for start, end in _groups(num_tokens, routing):
        capacity = routing.capacity(end - start, num_experts)
        assert capacity is not None
        order = start + _priority_order(scores[start:end], routing)
        placed = np.zeros(num_experts, dtype=np.int64)
        for rank in range(top_k):
            experts = choice_ids[order, rank]
            active = dispatched[order, rank]
            earlier, counts = _running_count(experts, active, num_experts)
            position = placed[experts] + earlier
            kept[order, rank] = active & (position < capacity)
            placed += counts
    return kept


def _running_count(experts: np.ndarray, active: np.ndarray,
                   num_experts: int) -> tuple[np.ndarray, np.ndarray]:
    """Per entry, how many earlier active entries have the same expert.

    Returns:
        ``(earlier [n], per-expert totals of active entries [E])``; the
        ``earlier`` value of an inactive entry is meaningless.
    """
    keys = np.where(active, experts, num_experts)  # inactive: own bucket
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    counts = np.bincount(sorted_keys, minlength=num_experts + 1)
    starts = np.cumsum(counts) - counts
    earlier = np.empty(keys.size, dtype=np.int64)
    earlier[order] = np.arange(keys.size) - starts[sorted_keys]
    return earlier, counts[:num_experts]


# -- routing modes -----------------------------------------------------------

def _sparsemixer_gates(logits: np.ndarray, choice_ids: np.ndarray,
                       jitter: float) -> np.ndarray:
    """Sparsemixer's weights (Phi-3.5-MoE): choice k, the expert of logit
    ``m``, weighs the softmax at it of the logits of the experts not chosen
    before it whose relative gap ``(m - l) / max(|l|, m)`` is not above
    ``2 * jitter`` (a NaN gap keeps the expert)."""
    num_tokens = logits.shape[0]
    rows = np.arange(num_tokens)
    gates = np.zeros(choice_ids.shape)
    earlier = np.zeros(logits.shape, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for k in range(choice_ids.shape[1]):
            m = logits[rows, choice_ids[:, k]][:, None]
            gap = (m - logits) / np.maximum(np.abs(logits), m)
            kept = ~(gap > 2.0 * jitter) & ~earlier
            total = np.where(kept, np.exp(logits - m), 0.0).sum(axis=1)
            gates[:, k] = 1.0 / total
            earlier[rows, choice_ids[:, k]] = True
    return gates


def _token_choice(scores: np.ndarray, selection: np.ndarray,
                  routing: Routing, uniform: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token-choice routing.

    Returns:
        ``(weights [T,K], ids [T,K] int32, choices [T,K], dispatched [T,K])``
        where ``choices`` are the selected experts before dropping and
        ``dispatched`` excludes second choices that random routing skipped.
    """
    choice_ids = _top_indices(_mask_groups(selection, routing), routing.top_k)
    if routing.scoring == "sparsemixer":
        gates = _sparsemixer_gates(selection, choice_ids, routing.jitter)
    else:
        gates = np.take_along_axis(scores, choice_ids, axis=1)

    dispatched = np.ones(choice_ids.shape, dtype=bool)
    if routing.second_policy == "random":
        assert uniform is not None
        dispatched[:, 1] = 2.0 * gates[:, 1] > uniform

    kept = (_apply_capacity(choice_ids, dispatched, scores, routing)
            if routing.has_capacity else dispatched)

    if routing.renormalize == "selected":
        weights = gates / gates.sum(axis=1, keepdims=True)
    elif routing.renormalize == "kept":
        kept_gates = np.where(kept, gates, 0.0)
        weights = kept_gates / np.maximum(
            kept_gates.sum(axis=1, keepdims=True), EPS_F32)
    else:
        weights = gates
    if routing.unweighted:
        weights = np.ones_like(gates)
    weights = np.where(kept, weights * routing.scale, 0.0)
    ids = np.where(kept, choice_ids, -1).astype(np.int32)
    return weights, ids, choice_ids, dispatched


def _expert_choice(scores: np.ndarray, selection: np.ndarray,
                   routing: Routing) -> tuple[np.ndarray, np.ndarray]:
    """Expert-choice routing: each expert takes its top-C tokens per group."""
    num_tokens, num_experts = scores.shape
    chosen = np.zeros((num_tokens, num_experts), dtype=bool)
    for start, end in _groups(num_tokens, routing):
        capacity = routing.capacity(end - start, num_experts)
        assert capacity is not None
        take = min(capacity, end - start)
        # Per column, tokens by descending score, ties to the lower index.
        order = np.argsort(-selection[start:end], axis=0, kind="stable")
        rows = start + order[:take]
        chosen[rows, np.arange(num_experts)[None, :]] = True
    values = np.ones_like(scores) if routing.unweighted else scores
    weights = np.where(chosen, values * routing.scale, 0.0)
    ids = np.where(chosen, np.arange(num_experts)[None, :], -1)
    return weights, ids.astype(np.int32)


# -- statistics --------------------------------------------------------------

def _mean_probabilities(scores: np.ndarray, routing: Routing) -> np.ndarray:
    """``P_e``: mean router probability per expert.

    Softmax scores are probabilities already; sigmoid scores are normalized
    per token first (``s / sum_e s``, DeepSeek-V3's balance loss).
    """
    probs = scores
    if routing.scoring == "sigmoid":
        probs = scores / scores.sum(axis=1, keepdims=True)
    return probs.mean(axis=0)


def _statistics(logits: np.ndarray, scores: np.ndarray,
                first_choice: np.ndarray, weights: np.ndarray,
                ids: np.ndarray, chosen: np.ndarray,
                routing: Routing) -> dict[str, Any]:
    num_tokens, num_experts = scores.shape
    kept_ids = ids[ids >= 0]
    kept_count = np.bincount(kept_ids, minlength=num_experts).astype(np.int64)
    before = np.bincount(chosen, minlength=num_experts).astype(np.int64)
    stats: dict[str, Any] = {
        "tokens_per_expert": kept_count,
        "tokens_per_expert_before_drop": before,
        "dropped_count": int(before.sum() - kept_count.sum()),
        "load_balancing_loss": 0.0,
        "z_loss": 0.0,
        "importance_loss": 0.0,
    }
    if num_tokens == 0:
        return stats
    fraction = np.bincount(first_choice,
                           minlength=num_experts) / float(num_tokens)
    stats["load_balancing_loss"] = float(
        num_experts * np.sum(fraction * _mean_probabilities(scores, routing)))
    stats["z_loss"] = float(np.mean(logsumexp(logits) ** 2))
    importance = _densify(weights, ids, num_experts).sum(axis=0)
    mean = importance.mean()
    if mean != 0.0:
        stats["importance_loss"] = float(importance.var() / mean ** 2)
    return stats


# -- the gate ----------------------------------------------------------------

def _check_operands(logits: np.ndarray, routing: Routing,
                    bias: np.ndarray | None, noise: np.ndarray | None,
                    uniform: np.ndarray | None) -> None:
    """The operand rules of ``moe.gate`` (c4-c6)."""
    num_tokens, num_experts = logits.shape
    if routing.selection_bias != (bias is not None):
        raise ValueError("bias is required iff routing has selection_bias")
    if bias is not None and bias.shape != (num_experts,):
        raise ValueError(f"bias must be [E] = [{num_experts}], got "
                         f"{list(bias.shape)}")
    if noise is not None:
        if not routing.noisy:
            raise ValueError("noise is only allowed with noisy routing")
        if noise.shape != logits.shape:
            raise ValueError(f"noise must be [T, E] = {list(logits.shape)}, "
                             f"got {list(noise.shape)}")
    if (routing.second_policy == "random") != (uniform is not None):
        raise ValueError("uniform is required iff routing has "
                         "second = random")
    if uniform is not None and uniform.shape != (num_tokens,):
        raise ValueError(f"uniform must be [T] = [{num_tokens}], got "
                         f"{list(uniform.shape)}")


def as_float64(name: str, value: Any) -> np.ndarray:
    """A float64 copy of a float or signed-integer array.

    Unsigned arrays are refused: they are most likely bf16 bit patterns.
    """
    array = np.asarray(value)
    if array.dtype.kind == "u":
        raise ValueError(f"{name} must be floating point, got {array.dtype} "
                         "(decode bf16 bit patterns with bf16_to_f32)")
    if array.dtype.kind not in "fi":
        raise ValueError(f"{name} must be a real array, got {array.dtype}")
    return array.astype(np.float64)


def gate(logits: np.ndarray, routing: Routing,
         bias: np.ndarray | None = None, noise: np.ndarray | None = None,
         uniform: np.ndarray | None = None) -> GateResult:
    """Route ``[T, E]`` logits under ``routing``, in float64.

    Args:
        logits: ``[T, E]`` router logits ``x @ Wr^T``.
        routing: the scheme.
        bias: ``[E]`` selection-only score bias; required iff
            ``routing.selection_bias`` (selection uses ``score + bias``, the
            weights the unbiased score).
        noise: ``[T, E]`` noise *already scaled*, added to the logits before
            anything else (``routing.noisy`` only; noise off when absent).
            Use :func:`scaled_noise` to build it from standard-normal samples.
        uniform: ``[T]`` uniform samples; required iff
            ``routing.second_policy == 'random'``. The second choice is
            dispatched iff ``2 * g2 > u`` with ``g2`` its router score.

    Returns:
        A :class:`GateResult`.

    Raises:
        ValueError: a routing that does not fit E, or operands that do not
            match the routing or the shapes.
    """
    logits = as_float64("logits", logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [T, E], got shape {logits.shape}")
    num_experts = logits.shape[1]
    routing.verify_for_experts(num_experts)
    bias = None if bias is None else as_float64("bias", bias)
    noise = None if noise is None else as_float64("noise", noise)
    uniform = None if uniform is None else as_float64("uniform", uniform)
    _check_operands(logits, routing, bias, noise, uniform)

    routed_logits = logits + noise if noise is not None else logits
    scores = _scores(routed_logits, routing)
    selection = scores + bias if bias is not None else scores
    if routing.scoring == "sparsemixer":
        # Chosen by the logits; the scores (softmax) feed the statistics.
        selection = routed_logits

    if routing.is_expert_choice:
        weights, ids = _expert_choice(scores, selection, routing)
        first_choice = _top_indices(selection, 1)[:, 0]
        chosen = ids[ids >= 0]
    else:
        weights, ids, choice_ids, dispatched = _token_choice(
            scores, selection, routing, uniform)
        first_choice = choice_ids[:, 0]
        chosen = choice_ids[dispatched]
    stats = _statistics(routed_logits, scores, first_choice, weights, ids,
                        chosen, routing)
    return GateResult(weights=weights, ids=ids, stats=stats, scores=scores)


# -- near ties ---------------------------------------------------------------

def near_tie_tokens(logits: np.ndarray, routing: Routing,
                    bias: np.ndarray | None = None,
                    noise: np.ndarray | None = None,
                    uniform: np.ndarray | None = None,
                    eps: float = 1e-4) -> np.ndarray:
    """Tokens whose routing could flip under f32 rounding (docs/Semantics.md, tolerances).

    A token is flagged when a comparison that decides its routing is closer
    than ``eps``: sparsemixer's relative gaps at its threshold, the
    ``topk_groups`` boundary of the group scores, the
    top-k boundary of the (group-masked) selection scores, ``2 * g2`` vs
    ``u`` for random routing, two tokens' top scores under score priority
    (both flagged), or the C-th vs (C+1)-th score of an expert's column in
    expert choice (both tokens flagged). Use with
    :func:`~moe_mlir.testdata.resample_near_ties`.

    Returns:
        ``[T]`` bool.
    """
    logits = as_float64("logits", logits)
    num_tokens, num_experts = logits.shape
    routed = logits + noise if noise is not None else logits
    scores = _scores(routed, routing)
    selection = scores + bias if bias is not None else scores
    if routing.scoring == "sparsemixer":
        selection = routed
    flagged = np.zeros(num_tokens, dtype=bool)
    if num_tokens == 0:
        return flagged
    if routing.scoring == "sparsemixer":
        # An expert's relative gap at sparsemixer's mask threshold.
        rows = np.arange(num_tokens)
        with np.errstate(invalid="ignore", divide="ignore"):
            for k in range(routing.top_k):
                ids = _top_indices(selection, routing.top_k)[:, k]
                m = selection[rows, ids][:, None]
                gap = (m - selection) / np.maximum(np.abs(selection), m)
                flagged |= (np.abs(gap - 2.0 * routing.jitter) < eps).any(
                    axis=1)

    if routing.is_expert_choice:
        for start, end in _groups(num_tokens, routing):
            capacity = routing.capacity(end - start, num_experts)
            assert capacity is not None
            if not 0 < capacity < end - start:
                continue
            column = selection[start:end]
            order = np.argsort(-column, axis=0, kind="stable")
            experts = np.arange(num_experts)
            inside = column[order[capacity - 1], experts]
            outside = column[order[capacity], experts]
            close = inside - outside < eps
            flagged[start + order[capacity - 1][close]] = True
            flagged[start + order[capacity][close]] = True
        return flagged

    if routing.is_group_limited:
        assert routing.topk_groups is not None
        flagged |= has_near_tie(_group_scores(selection, routing),
                                routing.topk_groups, eps)
    flagged |= has_near_tie(_mask_groups(selection, routing), routing.top_k,
                            eps)
    if uniform is not None and routing.second_policy == "random":
        choice_ids = _top_indices(_mask_groups(selection, routing), 2)
        g2 = np.take_along_axis(scores, choice_ids, axis=1)[:, 1]
        flagged |= np.abs(2.0 * g2 - np.asarray(uniform, np.float64)) < eps
    if routing.priority == "score":
        for start, end in _groups(num_tokens, routing):
            top = scores[start:end].max(axis=1)
            order = np.argsort(-top, kind="stable")
            close = np.nonzero(top[order[:-1]] - top[order[1:]] < eps)[0]
            flagged[start + order[close]] = True
            flagged[start + order[close + 1]] = True
    return flagged
