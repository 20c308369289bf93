"""Reading and writing safetensors checkpoints (docs/Importing.md).

A safetensors file is an 8-byte little-endian u64 ``N``, ``N`` bytes of JSON
(padded with spaces) mapping each tensor name to ``{"dtype", "shape",
"data_offsets": [begin, end)}`` relative to the data buffer that follows,
plus an optional ``"__metadata__"`` string map. A sharded checkpoint is a
directory of such files and ``model.safetensors.index.json`` with
``{"weight_map": {name: file}}``.

- :func:`save_file` writes one file from ``name -> array`` with an explicit
  storage dtype per tensor: ``F32``, ``F16``, ``BF16`` (the upper 16 bits of
  the float32 value, rounded to nearest even; ``uint16`` arrays are taken as
  bit patterns), ``F64`` and the integer types.
- :func:`save_sharded` writes a sharded checkpoint (tests).
- :func:`load_file` / :func:`load_checkpoint` read a file, a directory
  (``model.safetensors``, else the index) or an index back, decoding float
  types to float32 (or float64); :func:`read_header` gives the raw header
  and :func:`read_checkpoint_headers` the dtype and shape of every tensor of
  a checkpoint without reading its data (what importers need).

Standard library and numpy only. The reader validates what the runtime
validates (docs/Runtime.md) so a test can trust what it reads back.
"""

from __future__ import annotations

import json
import math
import os
import struct
import unicodedata
from typing import Any, Mapping, Sequence

import numpy as np

from .testdata import bf16_to_f32, f32_to_bf16_round

__all__ = [
    "DTYPES",
    "INDEX_NAME",
    "SINGLE_NAME",
    "SafetensorsError",
    "decode",
    "encode",
    "load_checkpoint",
    "load_file",
    "load_tensors",
    "read_checkpoint_headers",
    "read_header",
    "save_file",
    "save_sharded",
]

INDEX_NAME = "model.safetensors.index.json"
"""The index file of a sharded checkpoint directory."""
SINGLE_NAME = "model.safetensors"
"""The file of a single-file checkpoint directory."""

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # bit patterns
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "F8_E4M3": np.dtype("u1"),  # bit patterns
    "F8_E5M2": np.dtype("u1"),  # bit patterns
}
"""Storage dtypes this module reads and writes, with their numpy layout
(FP8 tensors, e.g. DeepSeek-V3's experts, read and write as their uint8 bit
patterns)."""

_FLOATS = ("F64", "F32", "F16", "BF16")
# The IR's element types (emit.py) and their safetensors names.
_ALIASES = {"f64": "F64", "f32": "F32", "f16": "F16", "bf16": "BF16",
            "f8e4m3fn": "F8_E4M3"}
_MAX_HEADER = 100_000_000


class SafetensorsError(ValueError):
    """A malformed safetensors file or index (message names the file)."""


def printable(text: str) -> str:
    """``text`` with what could break a one-line message or act on a terminal
    (control and format characters: C0/C1 controls, bidirectional overrides,
    line separators) escaped as ``\\xNN``/``\\uNNNN``, as the runtime does."""
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _storage_dtype(dtype: str) -> str:
    name = _ALIASES.get(dtype, dtype)
    if name not in DTYPES:
        raise ValueError(f"unsupported safetensors dtype '{dtype}' (expected "
                         f"one of {', '.join(DTYPES)})")
    return name


# -- encoding ----------------------------------------------------------------

def encode(array: Any, dtype: str) -> bytes:
    """The little-endian row-major bytes of ``array`` stored as ``dtype``.

    ``dtype`` is a safetensors name (``BF16``) or an IR element type
    (``bf16``). ``BF16`` rounds float values to nearest even through float32
    and takes ``uint16`` arrays as ready bit patterns.
    """
    name = _storage_dtype(dtype)
    array = np.asarray(array)
    if name == "BF16":
        bits = array if array.dtype == np.uint16 else f32_to_bf16_round(array)
        return np.ascontiguousarray(bits, dtype="<u2").tobytes()
    if name in _FLOATS and array.dtype.kind not in "fiu":
        raise ValueError(f"cannot store a {array.dtype} array as {name}")
    return np.ascontiguousarray(array, dtype=DTYPES[name]).tobytes()


def decode(raw: bytes | memoryview, dtype: str, shape: Sequence[int],
           float_dtype: Any = np.float32) -> np.ndarray:
    """Decode stored bytes; float types become ``float_dtype`` arrays.

    Integer and boolean tensors keep their type.
    """
    name = _storage_dtype(dtype)
    array = np.frombuffer(raw, dtype=DTYPES[name]).reshape(tuple(shape))
    if name == "BF16":
        return bf16_to_f32(array.astype(np.uint16)).astype(float_dtype)
    if name in _FLOATS:
        return array.astype(float_dtype)
    return array.astype(array.dtype.newbyteorder("="))


# -- writing -----------------------------------------------------------------

def _dtype_of(name: str, dtypes: str | Mapping[str, str]) -> str:
    if isinstance(dtypes, str):
        return _storage_dtype(dtypes)
    if name not in dtypes:
        raise ValueError(f"no storage dtype given for tensor '{name}'")
    return _storage_dtype(dtypes[name])


def save_file(path: str | os.PathLike, tensors: Mapping[str, Any],
              dtypes: str | Mapping[str, str] = "F32",
              metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` to one safetensors file.

    Args:
        path: the file to write.
        tensors: ``name -> array``, stored in this order (row major).
        dtypes: one storage dtype for all tensors, or ``name -> dtype`` for
            each (``F32``, ``BF16``, ``F16``, ``F64``, integer types; IR
            spellings ``f32``/``bf16``/``f16`` work too).
        metadata: the optional ``__metadata__`` string map.
    """
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a tensor name")
        dtype = _dtype_of(name, dtypes)
        data = encode(array, dtype)
        header[name] = {"dtype": dtype,
                        "shape": [int(d) for d in np.shape(array)],
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for data in chunks:
            out.write(data)


def save_sharded(directory: str | os.PathLike, tensors: Mapping[str, Any],
                 dtypes: str | Mapping[str, str] = "F32", num_shards: int = 2,
                 metadata: Mapping[str, str] | None = None) -> list[str]:
    """Write a sharded checkpoint: shards + ``model.safetensors.index.json``.

    Tensors are dealt to ``num_shards`` files in order, in contiguous runs of
    about equal size, named ``model-0000i-of-0000n.safetensors`` as the
    Hugging Face tools name them. ``directory`` is created when missing.

    Returns:
        The shard file names.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    os.makedirs(directory, exist_ok=True)
    names = list(tensors)
    storage = {name: _dtype_of(name, dtypes) for name in names}
    files = [f"model-{i + 1:05d}-of-{num_shards:05d}.safetensors"
             for i in range(num_shards)]
    weight_map = {}
    for i, file in enumerate(files):
        part = names[len(names) * i // num_shards:
                     len(names) * (i + 1) // num_shards]
        save_file(os.path.join(directory, file),
                  {name: tensors[name] for name in part},
                  {name: storage[name] for name in part}, metadata)
        weight_map.update({name: file for name in part})
    total = sum(int(np.prod(np.shape(tensors[name]), dtype=np.int64))
                * DTYPES[storage[name]].itemsize for name in names)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(directory, INDEX_NAME), "w",
              encoding="utf-8") as out:
        json.dump(index, out, indent=2)
        out.write("\n")
    return files


# -- reading -----------------------------------------------------------------

def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], int]:
    """The header of a safetensors file and the byte offset of its buffer.

    Checks the rules of docs/Runtime.md: header within the file, every entry
    ``{dtype, shape, data_offsets}``, offsets inside the buffer and sized
    ``numel * itemsize``, no overlaps.

    Raises:
        SafetensorsError: ``<path>: <problem>``.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)

    def fail(problem: str) -> SafetensorsError:
        return SafetensorsError(f"{printable(path)}: {problem}")

    if size < 8:
        raise fail(f"file too small for a header length ({size} bytes)")
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        # Past the limit the "length" is most likely a text file's first
        # bytes: not printed.
        if length > _MAX_HEADER:
            raise fail(f"header length (the first 8 bytes, not shown) exceeds "
                       f"the limit of {_MAX_HEADER} bytes; not a safetensors "
                       f"file?")
        if length > size - 8:
            raise fail(f"header length {length} exceeds the file")
        raw = file.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise fail(f"invalid header JSON: {err}") from None
    if not isinstance(header, dict):
        raise fail("header is not a JSON object")
    buffer_size = size - 8 - length
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                    isinstance(v, str) for v in entry.values()):
                raise fail("__metadata__ must map strings to strings")
            continue
        where = f"tensor '{printable(name)}'"
        if not isinstance(entry, dict) or set(entry) != {
                "dtype", "shape", "data_offsets"}:
            raise fail(f"{where}: entry must have exactly dtype, "
                       "shape and data_offsets")
        dtype, shape, offsets = (entry["dtype"], entry["shape"],
                                 entry["data_offsets"])
        if dtype not in DTYPES:
            raise fail(f"{where}: unsupported dtype {printable(repr(dtype))}")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0
                for d in shape):
            raise fail(f"{where}: bad shape {printable(repr(shape))}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= buffer_size):
            raise fail(f"{where}: data_offsets "
                       f"{printable(repr(offsets))} outside "
                       f"the data buffer ({buffer_size} bytes)")
        # Exact integers: the product of the non-zero dimensions (which the
        # strides of even an empty tensor need) must fit int64.
        itemsize = DTYPES[dtype].itemsize
        if math.prod(d for d in shape if d) * itemsize >= 2**63:
            raise fail(f"{where}: shape {shape} has too many elements")
        expected = math.prod(shape) * itemsize
        if offsets[1] - offsets[0] != expected:
            raise fail(f"{where}: {offsets[1] - offsets[0]} bytes for "
                       f"{dtype} {shape} ({expected} expected)")
        if offsets[1] > offsets[0]:
            spans.append((offsets[0], offsets[1], name))
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise fail(f"tensors '{printable(first)}' and "
                       f"'{printable(second)}' overlap")
    return header, 8 + length


def load_file(path: str | os.PathLike, float_dtype: Any = np.float32,
              names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read a safetensors file: ``name -> array`` (floats as ``float_dtype``).

    Args:
        path: the file.
        float_dtype: what F32/F16/BF16/F64 decode to (float32 or float64).
        names: read only these tensors (all when ``None``).
    """
    header, start = read_header(path)
    wanted = [n for n in header if n != "__metadata__"] if names is None \
        else list(names)
    result = {}
    with open(path, "rb") as file:
        for name in wanted:
            if name not in header or name == "__metadata__":
                raise SafetensorsError(f"{printable(os.fspath(path))}: no "
                                       f"tensor named '{printable(name)}'")
            entry = header[name]
            begin, end = entry["data_offsets"]
            file.seek(start + begin)
            result[name] = decode(file.read(end - begin), entry["dtype"],
                                  entry["shape"], float_dtype)
    return result


def _checkpoint_files(path: str | os.PathLike) -> dict[str, list[str] | None]:
    """The safetensors files of a checkpoint and the tensors each holds.

    ``path`` is a ``.safetensors`` file, a sharded index (``*.json``), or a
    directory holding ``model.safetensors`` or, failing that,
    ``model.safetensors.index.json``. Returns ``file -> names`` in index
    order, or ``{file: None}`` (every tensor) for a single file.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        single = os.path.join(path, SINGLE_NAME)
        if os.path.isfile(single):
            return {single: None}
        path = os.path.join(path, INDEX_NAME)
        if not os.path.isfile(path):
            raise SafetensorsError(f"{printable(os.path.dirname(path))}: "
                                   f"directory holds neither {SINGLE_NAME} "
                                   f"nor {INDEX_NAME}")
    if not path.endswith(".json"):
        if not os.path.isfile(path):
            raise SafetensorsError(f"{printable(path)}: no such file")
        return {path: None}
    try:
        with open(path, encoding="utf-8") as file:
            index = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SafetensorsError(f"{printable(path)}: cannot read the index: "
                               f"{printable(str(err))}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise SafetensorsError(f"{printable(path)}: no weight_map object")
    by_file: dict[str, list[str] | None] = {}
    base = os.path.dirname(path)
    for name, file_name in weight_map.items():
        # A NUL or control character in a name is refused before it
        # reaches the file system (open() would stop at the NUL).
        if (not isinstance(file_name, str) or os.path.isabs(file_name)
                or printable(file_name) != file_name
                or ".." in file_name.replace("\\", "/").split("/")):
            raise SafetensorsError(f"{printable(path)}: bad shard name "
                                   f"{printable(repr(file_name))}")
        names = by_file.setdefault(os.path.join(base, file_name), [])
        assert names is not None
        names.append(name)
    return by_file


def read_checkpoint_headers(path: str | os.PathLike
                            ) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``name -> (dtype, shape)`` of every tensor of a checkpoint.

    Reads and validates the headers only (:func:`read_header`), never the
    weight data; ``path`` as :func:`load_checkpoint`. A sharded index must
    name tensors its shards hold.

    Raises:
        SafetensorsError: a malformed file or index, or a missing shard or
            tensor (the message names the file).
    """
    result: dict[str, tuple[str, tuple[int, ...]]] = {}
    for file, names in _checkpoint_files(path).items():
        if not os.path.isfile(file):
            raise SafetensorsError(f"{printable(file)}: no such shard")
        header, _ = read_header(file)
        for name in (names if names is not None else
                     [n for n in header if n != "__metadata__"]):
            entry = header.get(name) if name != "__metadata__" else None
            if entry is None:
                raise SafetensorsError(f"{printable(file)}: no tensor named "
                                       f"'{printable(name)}' "
                                       "(the index says it is here)")
            result[name] = (entry["dtype"], tuple(entry["shape"]))
    return result


def load_checkpoint(path: str | os.PathLike,
                    float_dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Read a whole checkpoint as the runtime opens it.

    ``path`` is a ``.safetensors`` file, a sharded index (``*.json``), or a
    directory holding ``model.safetensors`` or, failing that,
    ``model.safetensors.index.json``.
    """
    result: dict[str, np.ndarray] = {}
    for file, names in _checkpoint_files(path).items():
        result.update(load_file(file, float_dtype, names))
    return result


def load_tensors(path: str | os.PathLike, names: Sequence[str],
                 float_dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Read only ``names`` from a checkpoint (a file, a sharded index or a
    directory, as :func:`load_checkpoint`).

    Raises:
        SafetensorsError: a file cannot be read, or a name is not in it.
    """
    wanted = set(names)
    result: dict[str, np.ndarray] = {}
    for file, held in _checkpoint_files(path).items():
        if held is None:
            held = [n for n in read_header(file)[0] if n != "__metadata__"]
        here = [n for n in held if n in wanted]
        if here:
            result.update(load_file(file, float_dtype, here))
    missing = sorted(wanted - result.keys())
    if missing:
        raise SafetensorsError(f"{printable(os.fspath(path))}: no tensor "
                               f"named '{printable(missing[0])}'")
    return result

