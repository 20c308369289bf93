"""Weight views: how an operand is read from a checkpoint tensor of another
layout.

Some families store expert weights fused or transposed relative to the
``moe.layer`` operands: Qwen3-VL-MoE and Llama 4 one ``gate_up_proj``
``[E, H, 2I]`` and a ``down_proj`` ``[E, I, H]``; Granite-MoE an
``input_linear`` ``[E, 2I, H]`` (gate rows first); DBRX ``w1`` ``[E*I, H]``;
gpt-oss gate and up in alternate columns. A :class:`View` binds such a
tensor whole (``moe.weight`` names it, the argument has its shape) and
says how the operand is read from it: reshaped, then sliced along one axis
(with a stride), then transposed, then repeated along a new leading axis
(one ``[H]`` bias as every expert's), each step optional. The module holds
these steps as ops (``tensor.expand_shape``, ``tensor.extract_slice``,
``linalg.transpose``, ``linalg.broadcast``) between the argument and
``moe.layer``;
``moe-pack-expert-weights`` replays them in the packing function, so the
compiled entry reads the packed weight and the views cost nothing per call
(docs/CompiledModules.md, "Weight views"). Two operands may view one
tensor (gate and up halves): each gets its own argument bound to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Slice", "View"]


def _dims(value: object, what: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{what} must be a list of integers, got {value!r}")
    dims = tuple(value)  # type: ignore[arg-type]
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 0
           for d in dims):
        raise ValueError(f"{what} must be non-negative integers, got "
                         f"{list(dims)}")
    return dims


@dataclass(frozen=True)
class Slice:
    """``size`` indices ``start, start + stride, ...`` of axis ``axis``."""

    axis: int
    start: int
    size: int
    stride: int = 1

    def __post_init__(self) -> None:
        for name in ("axis", "start", "size", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or \
                    value < (1 if name == "stride" else 0):
                raise ValueError(f"slice {name} must be an integer >= "
                                 f"{1 if name == 'stride' else 0}, got "
                                 f"{value!r}")


@dataclass(frozen=True)
class View:
    """An operand read from a checkpoint tensor of shape :attr:`source`.

    Attributes:
        source: the checkpoint tensor's shape.
        reshape: the shape it is first reshaped to: an expansion (each
            source dimension split into consecutive ones, e.g. ``[E*I, H]``
            to ``[E, I, H]``) or a collapse (consecutive ones merged, e.g.
            ``[1, E]`` to ``[E]``), or ``None``.
        slice: then one axis sliced, or ``None``.
        permutation: then transposed (result dim ``i`` is dim
            ``permutation[i]``), or ``None``.
        repeat: then repeated this many times along a new leading axis,
            or ``None``.

    Raises:
        ValueError: a step that does not apply to its input's shape.
    """

    source: tuple[int, ...]
    reshape: tuple[int, ...] | None = None
    slice: Slice | None = None
    permutation: tuple[int, ...] | None = None
    repeat: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", _dims(self.source, "view source"))
        shape = self.source
        if self.reshape is not None:
            reshape = _dims(self.reshape, "view reshape")
            object.__setattr__(self, "reshape", reshape)
            self._reshape_groups(shape, reshape)
            shape = reshape
        if self.slice is not None:
            piece = self.slice
            if isinstance(piece, (list, tuple)):
                piece = Slice(*piece)
                object.__setattr__(self, "slice", piece)
            if not isinstance(piece, Slice):
                raise ValueError(f"view slice must be a Slice, got {piece!r}")
            if piece.axis >= len(shape):
                raise ValueError(f"view slice axis {piece.axis} is out of "
                                 f"range for shape {list(shape)}")
            last = piece.start + (piece.size - 1) * piece.stride
            if piece.size and last >= shape[piece.axis]:
                raise ValueError(
                    f"view slice {piece.start}:{last + 1}:{piece.stride} "
                    f"is out of range for axis {piece.axis} of "
                    f"{list(shape)}")
        if self.permutation is not None:
            permutation = _dims(self.permutation, "view permutation")
            object.__setattr__(self, "permutation", permutation)
            if sorted(permutation) != list(range(len(shape))):
                raise ValueError(f"view permutation {list(permutation)} is "
                                 f"no permutation of {len(shape)} "
                                 "dimensions")
        if self.repeat is not None and (
                isinstance(self.repeat, bool) or
                not isinstance(self.repeat, int) or self.repeat < 1):
            raise ValueError(f"view repeat must be a positive integer, got "
                             f"{self.repeat!r}")

    @classmethod
    def _reshape_groups(cls, source: tuple[int, ...],
                        target: tuple[int, ...]) -> list[list[int]]:
        """The reassociation of a reshape: the target dimensions each
        source dimension splits into (expansion), or the source dimensions
        each target dimension merges (collapse)."""
        try:
            if len(target) >= len(source):
                return cls._reassociation(source, target)
            return cls._reassociation(target, source)
        except ValueError:
            raise ValueError(f"view reshape {list(target)} neither splits "
                             f"nor merges the dimensions of "
                             f"{list(source)}") from None

    @staticmethod
    def _reassociation(source: tuple[int, ...],
                       target: tuple[int, ...]) -> list[list[int]]:
        """The target dimensions each source dimension splits into."""
        groups: list[list[int]] = []
        index = 0
        for dim in source:
            group = [index] if index < len(target) else []
            index += 1
            while group and math.prod(target[group[0]:index]) < dim and \
                    index < len(target):
                group.append(index)
                index += 1
            if not group or math.prod(target[group[0]:index]) != dim:
                groups = []
                break
            groups.append(group)
        if not groups or index != len(target):
            raise ValueError(f"view reshape {list(target)} does not split "
                             f"the dimensions of {list(source)}")
        return groups

    @property
    def identity(self) -> bool:
        """True when the operand is the tensor as stored."""
        return self.reshape is None and self.slice is None and \
            self.permutation is None and self.repeat is None

    def shapes(self) -> list[tuple[int, ...]]:
        """The shape after each present step (the last is the operand's)."""
        shapes = [self.source]
        if self.reshape is not None:
            shapes.append(self.reshape)
        if self.slice is not None:
            shape = list(shapes[-1])
            shape[self.slice.axis] = self.slice.size
            shapes.append(tuple(shape))
        if self.permutation is not None:
            shapes.append(tuple(shapes[-1][p] for p in self.permutation))
        if self.repeat is not None:
            shapes.append((self.repeat,) + shapes[-1])
        return shapes

    @property
    def shape(self) -> tuple[int, ...]:
        """The operand's shape."""
        return self.shapes()[-1]

    def apply(self, tensor: np.ndarray) -> np.ndarray:
        """The operand, from the checkpoint tensor (numpy, any dtype)."""
        value = np.asarray(tensor)
        if value.shape != self.source:
            raise ValueError(f"shape {list(value.shape)} does not match the "
                             f"view's source {list(self.source)}")
        if self.reshape is not None:
            value = value.reshape(self.reshape)
        if self.slice is not None:
            index = [slice(None)] * value.ndim
            piece = self.slice
            index[piece.axis] = slice(piece.start, piece.start +
                                      piece.size * piece.stride, piece.stride)
            value = value[tuple(index)]
        if self.permutation is not None:
            value = np.transpose(value, self.permutation)
        if self.repeat is not None:
            value = np.broadcast_to(value, (self.repeat,) + value.shape)
        return np.ascontiguousarray(value)

    def element_type(self, element: str) -> str:
        """The operand's element type for a checkpoint tensor of
        ``element``: f32 after a repeat (widened first), else
        ``element``."""
        return "f32" if self.repeat is not None else element

    def mlir(self, source: str, result: str, element: str) -> list[str]:
        """The ops reading ``%result`` from ``%source`` (SSA names without
        ``%``; ``element`` is the MLIR element type)."""
        def ty(shape: tuple[int, ...]) -> str:
            return "tensor<" + "".join(f"{d}x" for d in shape) + element + ">"

        shapes = self.shapes()
        lines: list[str] = []
        value, step = source, 0
        steps = [kind for kind, present in (
            ("reshape", self.reshape is not None),
            ("slice", self.slice is not None),
            ("transpose", self.permutation is not None),
            ("repeat", self.repeat is not None)) if present]
        for number, kind in enumerate(steps):
            name = result if number == len(steps) - 1 else \
                f"{result}_{kind}"
            before, after = ty(shapes[step]), ty(shapes[step + 1])
            if kind == "reshape":
                groups = self._reshape_groups(shapes[step], shapes[step + 1])
                if len(shapes[step + 1]) >= len(shapes[step]):
                    lines.append(
                        f"%{name} = tensor.expand_shape %{value} {groups} "
                        f"output_shape {list(shapes[step + 1])} : {before} "
                        f"into {after}")
                else:
                    lines.append(
                        f"%{name} = tensor.collapse_shape %{value} {groups} "
                        f": {before} into {after}")
            elif kind == "slice":
                piece = self.slice
                assert piece is not None
                rank = len(shapes[step])
                offsets = [piece.start if d == piece.axis else 0
                           for d in range(rank)]
                strides = [piece.stride if d == piece.axis else 1
                           for d in range(rank)]
                lines.append(
                    f"%{name} = tensor.extract_slice %{value}{offsets} "
                    f"{list(shapes[step + 1])} {strides} : {before} to "
                    f"{after}")
            elif kind == "transpose":
                lines.append(f"%{name}_init = tensor.empty() : {after}")
                lines.append(
                    f"%{name} = linalg.transpose ins(%{value} : {before}) "
                    f"outs(%{name}_init : {after}) permutation = "
                    f"{list(self.permutation or ())}")
            else:
                # Repeated in f32: the copies of a small vector, which
                # widened once cost nothing, and no bf16 value is stored
                # by code compiled without bf16 instructions.
                if element != "f32":
                    wide = "tensor<" + "".join(
                        f"{d}x" for d in shapes[step]) + "f32>"
                    lines.append(f"%{name}_f32 = arith.extf %{value} : "
                                 f"{before} to {wide}")
                    value, before = f"{name}_f32", wide
                after = after.replace(element + ">", "f32>")
                lines.append(f"%{name}_init = tensor.empty() : {after}")
                lines.append(
                    f"%{name} = linalg.broadcast ins(%{value} : {before}) "
                    f"outs(%{name}_init : {after}) dimensions = [0]")
            value, step = name, step + 1
        return lines

    def to_dict(self) -> dict:
        """A JSON-ready description; :meth:`from_dict` reads it back."""
        data: dict = {"source": list(self.source)}
        if self.reshape is not None:
            data["reshape"] = list(self.reshape)
        if self.slice is not None:
            piece = self.slice
            data["slice"] = [piece.axis, piece.start, piece.size, piece.stride]
        if self.permutation is not None:
            data["permutation"] = list(self.permutation)
        if self.repeat is not None:
            data["repeat"] = self.repeat
        return data

    @classmethod
    def from_dict(cls, data: object) -> "View":
        """The view of a :meth:`to_dict` description (checked)."""
        if not isinstance(data, dict):
            raise ValueError("a view must be a JSON object")
        unknown = sorted(set(data) - {"source", "reshape", "slice",
                                      "permutation", "repeat"})
        if unknown or "source" not in data:
            raise ValueError(f"a view has a source and optional reshape, "
                             f"slice, permutation, repeat; got "
                             f"{sorted(data)}")
        piece = data.get("slice")
        if piece is not None:
            if not isinstance(piece, list) or len(piece) != 4:
                raise ValueError("view slice must be [axis, start, size, "
                                 f"stride], got {piece!r}")
            piece = Slice(*piece)
        return cls(source=data["source"], reshape=data.get("reshape"),
                   slice=piece, permutation=data.get("permutation"),
                   repeat=data.get("repeat"))
