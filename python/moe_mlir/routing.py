"""The ``#moe.routing<...>`` attribute as a Python value.

:class:`Routing` mirrors ``RoutingAttr`` (include/moe/Dialect/MoE/IR/
MoEAttrs.td, lib/Dialect/MoE/IR/MoEAttrs.cpp) field for field:

- construction validates like ``RoutingAttr::verify`` and raises
  :class:`ValueError` with the C++ diagnostic text;
- :meth:`Routing.verify_for_experts` is ``RoutingAttr::verifyForExperts``;
- :meth:`Routing.to_mlir` prints like ``RoutingAttr::print`` (canonical
  order, defaults omitted, floats through MLIR's ``printFloat``);
- :func:`parse` reads every form ``RoutingAttr::parse`` accepts (items in any
  order, each at most once, explicit defaults), with or without the
  ``#moe.routing`` prefix.

Enumerations are plain strings, spelled as in the IR (``'softmax'``,
``'expert_choice'``, ``'sum_top2'``, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .mlir_syntax import (MlirSyntaxError, TokenStream,
                          format_diagnostic_float, format_float)

__all__ = ["Routing", "parse", "round_half_even"]

SCORING = ("softmax", "sigmoid", "sparsemixer")
MODES = ("token_choice", "expert_choice")
RENORMALIZE = ("none", "selected", "kept")
GROUP_SCORES = ("sum_top2", "max")
CAPACITY_KINDS = ("none", "fixed", "factor", "fraction")
ROUNDINGS = ("ceil", "floor", "round")
PRIORITIES = ("position", "score")
SECOND_POLICIES = ("all", "random")

# (field, what the C++ parser calls it, allowed values)
_ENUM_FIELDS = (
    ("scoring", "scoring function", SCORING),
    ("mode", "routing mode", MODES),
    ("renormalize", "renormalization", RENORMALIZE),
    ("group_score", "group score", GROUP_SCORES),
    ("capacity_kind", "capacity kind", CAPACITY_KINDS),
    ("rounding", "rounding", ROUNDINGS),
    ("priority", "priority", PRIORITIES),
    ("second_policy", "second-choice policy", SECOND_POLICIES),
)
_INT_FIELDS = ("top_k", "num_groups", "topk_groups", "fixed_capacity",
               "min_capacity", "group_size")
_FLOAT_FIELDS = ("scale", "capacity_factor", "jitter")
_BOOL_FIELDS = ("selection_bias", "noisy", "unweighted")


def round_half_even(value: float) -> int:
    """Round to the nearest integer, ties to even (Python's ``round``)."""
    return int(round(value))


@dataclass(frozen=True)
class Routing:
    """A routing scheme: scoring, selection, capacity and priority.

    Fields and defaults are those of ``RoutingAttr``; see docs/Routing.md for
    what each scheme means. ``topk_groups=None`` means "all groups", as an
    absent ``topk_groups`` item does in the IR; it is resolved to
    ``num_groups`` on construction.

    Raises:
        ValueError: an unknown enumeration value, a field of the wrong type,
            or a rule of ``RoutingAttr::verify`` violated (same message).
    """

    scoring: str = "softmax"
    mode: str = "token_choice"
    top_k: int = 0
    renormalize: str = "none"
    scale: float = 1.0
    selection_bias: bool = False
    num_groups: int = 1
    topk_groups: int | None = None
    group_score: str = "sum_top2"
    capacity_kind: str = "none"
    fixed_capacity: int = 0
    capacity_factor: float = 0.0
    rounding: str = "ceil"
    min_capacity: int = 0
    group_size: int = 0
    priority: str = "position"
    second_policy: str = "all"
    noisy: bool = False
    jitter: float = 0.0
    unweighted: bool = False

    def __post_init__(self) -> None:
        if self.topk_groups is None:
            object.__setattr__(self, "topk_groups", self.num_groups)
        self._check_types()
        self._verify()

    # -- validation -------------------------------------------------------
    def _check_types(self) -> None:
        for name, what, allowed in _ENUM_FIELDS:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"unknown {what} '{value}' (expected one of "
                                 f"{', '.join(allowed)})")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"routing: {name} must be an integer, got "
                                 f"{value!r}")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"routing: {name} must be a number, got "
                                 f"{value!r}")
            object.__setattr__(self, name, float(value))
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"routing: {name} must be a bool, got "
                                 f"{getattr(self, name)!r}")

    def _verify(self) -> None:
        """``RoutingAttr::verify``: the rules that hold for any E."""
        has_capacity = self.capacity_kind != "none"
        if not math.isfinite(self.jitter) or \
                math.copysign(1.0, self.jitter) < 0:
            raise ValueError(
                "routing: jitter must be finite and non-negative, got "
                f"{format_diagnostic_float(self.jitter)}")
        if self.scoring != "sparsemixer" and self.jitter != 0.0:
            raise ValueError(
                "routing: jitter applies to sparsemixer scoring only")
        if self.scoring == "sparsemixer" and (
                self.mode == "expert_choice" or self.selection_bias or
                self.num_groups != 1):
            raise ValueError(
                "routing: sparsemixer scoring is token choice without "
                "selection_bias or groups")
        if self.mode == "token_choice" and self.top_k < 1:
            raise ValueError(
                f"routing: top_k must be at least 1, got {self.top_k}")
        if self.mode == "expert_choice":
            if self.top_k != 0:
                raise ValueError(
                    "routing: expert_choice routing takes no top_k (experts "
                    f"choose tokens), got top_k = {self.top_k}")
            if not has_capacity:
                raise ValueError(
                    "routing: expert_choice routing requires a capacity "
                    "(tokens per expert)")
            if self.renormalize != "none":
                raise ValueError(
                    "routing: expert_choice routing does not renormalize (a "
                    "token's weights are its scores)")
            if self.num_groups != 1:
                raise ValueError(
                    "routing: expert_choice routing takes no expert groups, "
                    f"got groups = {self.num_groups}")
            if self.priority != "position" or self.second_policy != "all":
                raise ValueError(
                    "routing: priority and second-choice policy apply to "
                    "token-choice routing only")
        if not math.isfinite(self.scale) or self.scale <= 0.0:
            raise ValueError(
                "routing: scale must be a finite positive number, got "
                f"{format_diagnostic_float(self.scale)}")
        if self.num_groups < 1:
            raise ValueError(
                f"routing: groups must be at least 1, got {self.num_groups}")
        if self.num_groups == 1 and self.group_score != "sum_top2":
            raise ValueError(
                "routing: group_score applies to group-limited routing "
                "(groups > 1)")
        assert self.topk_groups is not None
        if self.topk_groups < 1 or self.topk_groups > self.num_groups:
            raise ValueError(
                "routing: topk_groups must be in [1, groups = "
                f"{self.num_groups}], got {self.topk_groups}")
        if self.renormalize == "kept" and not has_capacity:
            raise ValueError(
                "routing: renormalize = kept renormalizes over the choices "
                "kept after capacity dropping and requires a capacity")
        if self.capacity_kind == "fixed" and self.fixed_capacity < 0:
            raise ValueError("routing: capacity must be non-negative, got "
                             f"{self.fixed_capacity}")
        if self.capacity_kind in ("factor", "fraction"):
            factor = self.capacity_factor
            if not math.isfinite(factor) or math.copysign(1.0, factor) < 0:
                raise ValueError(
                    f"routing: capacity {self.capacity_kind} must be finite "
                    "and non-negative, got "
                    f"{format_diagnostic_float(factor)}")
            if self.capacity_kind == "fraction" and factor > 1.0:
                raise ValueError(
                    "routing: capacity fraction must be at most 1, got "
                    f"{format_diagnostic_float(factor)}")
            if self.min_capacity < 0:
                raise ValueError(
                    "routing: minimum capacity must be non-negative, got "
                    f"{self.min_capacity}")
        if self.group_size < 0:
            raise ValueError("routing: group_size must be non-negative, got "
                             f"{self.group_size}")
        if self.group_size > 0 and not has_capacity:
            raise ValueError(
                "routing: group_size (local group dispatching) requires a "
                "capacity")
        if self.priority == "score" and not has_capacity:
            raise ValueError(
                "routing: priority = score decides who is dropped over "
                "capacity and requires a capacity")
        if self.unweighted and self.renormalize != "none":
            raise ValueError(
                "routing: unweighted routing combines every kept choice with "
                "weight 'scale' and does not renormalize")
        if self.second_policy == "random" and self.top_k != 2:
            raise ValueError(
                "routing: second = random applies to top-2 routing, got "
                f"top_k = {self.top_k}")

    def verify_for_experts(self, num_experts: int) -> None:
        """``RoutingAttr::verifyForExperts``: the rules that need E.

        Raises:
            ValueError: with the C++ diagnostic text.
        """
        if num_experts < 1:
            raise ValueError("number of experts must be at least 1, got "
                             f"{num_experts}")
        if not self.is_expert_choice and self.top_k > num_experts:
            raise ValueError(f"routing top_k ({self.top_k}) exceeds the "
                             f"number of experts ({num_experts})")
        groups = self.num_groups
        if groups > num_experts or num_experts % groups != 0:
            raise ValueError(f"routing groups ({groups}) must divide the "
                             f"number of experts ({num_experts})")
        per_group = num_experts // groups
        if (self.is_group_limited and self.group_score == "sum_top2"
                and per_group < 2):
            raise ValueError("routing group_score = sum_top2 needs at least 2 "
                             f"experts per group, got {per_group}")
        assert self.topk_groups is not None
        if (not self.is_expert_choice
                and self.topk_groups * per_group < self.top_k):
            raise ValueError(f"routing keeps {self.topk_groups} groups of "
                             f"{per_group} experts, fewer than top_k = "
                             f"{self.top_k}")

    # -- derived properties -----------------------------------------------
    @property
    def is_expert_choice(self) -> bool:
        """True for expert-choice routing."""
        return self.mode == "expert_choice"

    @property
    def has_capacity(self) -> bool:
        """True when experts have a capacity (tokens can be dropped)."""
        return self.capacity_kind != "none"

    @property
    def is_group_limited(self) -> bool:
        """True for group-limited top-k (more than one expert group)."""
        return self.num_groups > 1

    def choices_per_token(self, num_experts: int) -> int:
        """Columns C of gate results: K (token choice) or E (expert choice)."""
        return num_experts if self.is_expert_choice else self.top_k

    def capacity(self, group_tokens: int, num_experts: int) -> int | None:
        """Per-expert capacity of a token group of ``group_tokens`` tokens.

        ``fixed(C)``: C. ``factor(F, r, min = M)``: ``max(M, r(F * S * K /
        E))`` with K = 1 for expert choice, evaluated in double precision
        left to right (``((F * S) * K) / E``); ``round`` rounds half to even
        (Python's ``round``, as in flaxformer's capacity rule).
        ``fraction(F)``: ``ceil(F * S)``. ``None`` when dropless.
        """
        if self.capacity_kind == "none":
            return None
        if self.capacity_kind == "fixed":
            return self.fixed_capacity
        if self.capacity_kind == "fraction":
            return int(math.ceil(self.capacity_factor * group_tokens))
        k = 1 if self.is_expert_choice else self.top_k
        raw = self.capacity_factor * group_tokens * k / num_experts
        if self.rounding == "ceil":
            rounded = int(math.ceil(raw))
        elif self.rounding == "floor":
            rounded = int(math.floor(raw))
        else:
            rounded = round_half_even(raw)
        return max(self.min_capacity, rounded)

    # -- printing ---------------------------------------------------------
    def to_mlir(self, prefix: bool = True) -> str:
        """The attribute text as ``RoutingAttr::print`` writes it.

        Args:
            prefix: include ``#moe.routing`` (attribute form, as in an
                attribute dictionary); ``False`` gives the ``<...>`` body
                that follows the ``routing`` keyword of ``moe.gate`` and
                ``moe.layer``.
        """
        items = [self.scoring]
        if self.is_expert_choice:
            items.append("expert_choice")
        else:
            items.append(f"top_k = {self.top_k}")
        if self.renormalize == "selected":
            items.append("renormalize")
        elif self.renormalize == "kept":
            items.append("renormalize = kept")
        if self.scale != 1.0:
            items.append(f"scale = {format_float(self.scale)}")
        if self.selection_bias:
            items.append("selection_bias")
        if self.is_group_limited:
            items.append(f"groups = {self.num_groups}")
            items.append(f"topk_groups = {self.topk_groups}")
            items.append(f"group_score = {self.group_score}")
        if self.capacity_kind == "fixed":
            items.append(f"capacity = fixed({self.fixed_capacity})")
        elif self.capacity_kind == "fraction":
            items.append(
                f"capacity = fraction({format_float(self.capacity_factor)})")
        elif self.capacity_kind == "factor":
            text = (f"capacity = factor({format_float(self.capacity_factor)}"
                    f", {self.rounding}")
            if self.min_capacity != 0:
                text += f", min = {self.min_capacity}"
            items.append(text + ")")
        if self.group_size != 0:
            items.append(f"group_size = {self.group_size}")
        if self.priority != "position":
            items.append(f"priority = {self.priority}")
        if self.second_policy != "all":
            items.append(f"second = {self.second_policy}")
        if self.noisy:
            items.append("noisy")
        if self.jitter != 0.0:
            items.append(f"jitter = {format_float(self.jitter)}")
        if self.unweighted:
            items.append("unweighted")
        body = "<" + ", ".join(items) + ">"
        return "#moe.routing" + body if prefix else body

    def __str__(self) -> str:
        return self.to_mlir()

    @classmethod
    def parse(cls, text: str) -> "Routing":
        """Same as the module-level :func:`parse`."""
        return parse(text)


# -- parsing ---------------------------------------------------------------

def _parse_enum(stream: TokenStream, what: str,
                allowed: tuple[str, ...]) -> str:
    offset = stream.offset
    keyword = stream.parse_keyword()
    if keyword not in allowed:
        raise MlirSyntaxError(f"unknown {what} '{keyword}'", offset)
    return keyword


def _parse_capacity(stream: TokenStream, fields: dict[str, Any]) -> None:
    kind = _parse_enum(stream, "capacity kind", CAPACITY_KINDS)
    fields["capacity_kind"] = kind
    if kind == "none":
        return
    stream.parse_punct("(")
    if kind == "fixed":
        fields["fixed_capacity"] = stream.parse_integer()
    elif kind == "fraction":
        fields["capacity_factor"] = stream.parse_float()
    else:
        fields["capacity_factor"] = stream.parse_float()
        stream.parse_punct(",")
        fields["rounding"] = _parse_enum(stream, "rounding", ROUNDINGS)
        if stream.parse_optional_punct(","):
            stream.parse_keyword("min")
            stream.parse_punct("=")
            fields["min_capacity"] = stream.parse_integer()
    stream.parse_punct(")")


def _parse_item(stream: TokenStream, key: str, key_offset: int,
                fields: dict[str, Any]) -> None:
    """One ``key [= value]`` item (``parseRoutingItem``)."""
    if key == "top_k":
        stream.parse_punct("=")
        fields["top_k"] = stream.parse_integer()
    elif key == "expert_choice":
        fields["mode"] = "expert_choice"
    elif key == "renormalize":
        fields["renormalize"] = "selected"
        if stream.parse_optional_punct("="):
            fields["renormalize"] = _parse_enum(stream, "renormalization",
                                                RENORMALIZE)
    elif key == "scale":
        stream.parse_punct("=")
        fields["scale"] = stream.parse_float()
    elif key == "selection_bias":
        fields["selection_bias"] = True
    elif key == "groups":
        stream.parse_punct("=")
        fields["num_groups"] = stream.parse_integer()
    elif key == "topk_groups":
        stream.parse_punct("=")
        fields["topk_groups"] = stream.parse_integer()
    elif key == "group_score":
        stream.parse_punct("=")
        fields["group_score"] = _parse_enum(stream, "group score",
                                            GROUP_SCORES)
    elif key == "capacity":
        stream.parse_punct("=")
        _parse_capacity(stream, fields)
    elif key == "group_size":
        stream.parse_punct("=")
        fields["group_size"] = stream.parse_integer()
    elif key == "priority":
        stream.parse_punct("=")
        fields["priority"] = _parse_enum(stream, "priority", PRIORITIES)
    elif key == "second":
        stream.parse_punct("=")
        fields["second_policy"] = _parse_enum(stream, "second-choice policy",
                                              SECOND_POLICIES)
    elif key == "noisy":
        fields["noisy"] = True
    elif key == "unweighted":
        fields["unweighted"] = True
    elif key == "jitter":
        stream.parse_punct("=")
        fields["jitter"] = stream.parse_float()
    else:
        raise MlirSyntaxError(f"unknown routing item '{key}'", key_offset)


def parse(text: str) -> Routing:
    """Parse a routing attribute as ``RoutingAttr::parse`` does.

    Accepts ``#moe.routing<...>``, ``routing <...>`` (op syntax) or the bare
    ``<...>`` body. Items may come in any order, each at most once; an
    absent ``topk_groups`` means all groups; ``top_k`` may not be written
    with ``expert_choice`` (not even ``top_k = 0``).

    Raises:
        ValueError: a syntax error (:class:`~moe_mlir.mlir_syntax.
            MlirSyntaxError`, MLIR's message) or a verifier error.
    """
    body = text.strip()
    for prefix in ("#moe.routing", "routing"):
        if body.startswith(prefix):
            body = body[len(prefix):]
            break
    stream = TokenStream(body)
    stream.parse_punct("<")
    fields: dict[str, Any] = {
        "scoring": _parse_enum(stream, "scoring function", SCORING)}
    seen: set[str] = set()
    while stream.parse_optional_punct(","):
        key_offset = stream.offset
        key = stream.parse_keyword()
        if key in seen:
            raise MlirSyntaxError(f"routing item '{key}' given twice",
                                  key_offset)
        seen.add(key)
        _parse_item(stream, key, key_offset, fields)
    stream.parse_punct(">")
    if not stream.at_end():
        raise stream.error("unexpected text after the routing attribute")
    if fields.get("mode") == "expert_choice" and "top_k" in seen:
        raise MlirSyntaxError("routing: expert_choice routing takes no top_k "
                              "(experts choose tokens)", 0)
    return Routing(**fields)
