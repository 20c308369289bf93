"""Writes the checkpoints and .npy files of the runtime I/O tests.

usage: make_inputs.py CASE OUT
       make_inputs.py raw OUT HEADER_JSON
       make_inputs.py raw-file OUT FILE_WITH_HEADER_BYTES
       make_inputs.py module-x OUT TOKENS

OUT is a file or, for directory cases, a directory (created). Good cases hold
the tensors of `good_tensors()`; bad cases break exactly one rule. The
module-* cases are the weights and activations of the fake modules of
make_module.py.
"""

import json
import os
import shutil
import struct
import sys
from typing import Callable, Dict, List, Tuple

import numpy as np

import make_module

Entry = Tuple[str, List[int], bytes]  # dtype, shape, raw little-endian bytes

# E4M3FN and E5M2 bit patterns and the values they decode to.
F8_E4M3 = [(0x38, 1.0), (0xB8, -1.0), (0x01, 2.0**-9), (0x08, 2.0**-6),
           (0x7E, 448.0), (0x80, -0.0), (0x7F, float("nan")),
           (0xFF, float("nan")), (0x3C, 1.5)]
F8_E5M2 = [(0x3C, 1.0), (0x01, 2.0**-16), (0x04, 2.0**-14), (0x7B, 57344.0),
           (0x7C, float("inf")), (0xFC, float("-inf")), (0x7D, float("nan")),
           (0x80, -0.0), (0x3E, 1.5)]

F16_VALUES = np.array(
    [0.0, -0.0, 1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08,
     -5.960464477539063e-08, 3.0517578125e-05, np.inf, -np.inf, np.nan,
     0.333251953125], dtype=np.float16)

BF16_BITS = np.array([0x0000, 0x8000, 0x3F80, 0xC020, 0x7F7F, 0x0001, 0x7F80,
                      0xFF80, 0x7FC0, 0x3EAB], dtype=np.uint16)


def f32_values() -> np.ndarray:
    return (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 3


def good_tensors() -> Dict[str, Tuple[Entry, np.ndarray]]:
    """name -> ((dtype, shape, bytes), the f32 values it decodes to)."""
    f32 = f32_values()
    bf16_f32 = (BF16_BITS.astype(np.uint32) << 16).view(np.float32)
    e4m3 = np.array([b for b, _ in F8_E4M3], dtype=np.uint8)
    e5m2 = np.array([b for b, _ in F8_E5M2], dtype=np.uint8)
    return {
        "model.layers.0.f32": (("F32", [2, 3], f32.tobytes()), f32),
        "model.layers.0.bf16": (("BF16", [2, 5], BF16_BITS.tobytes()),
                                bf16_f32),
        "model.layers.0.f16": (("F16", [13], F16_VALUES.tobytes()),
                               F16_VALUES.astype(np.float32)),
        "model.layers.0.f64": (("F64", [2],
                                np.array([0.1, -1e300]).tobytes()),
                               np.array([0.1, -np.inf], dtype=np.float32)),
        "model.layers.0.e4m3": (("F8_E4M3", [9], e4m3.tobytes()),
                                np.array([v for _, v in F8_E4M3],
                                         dtype=np.float32)),
        "model.layers.0.e5m2": (("F8_E5M2", [9], e5m2.tobytes()),
                                np.array([v for _, v in F8_E5M2],
                                         dtype=np.float32)),
        "model.layers.0.i32": (("I32", [2], np.array([7, -7], np.int32)
                                .tobytes()), None),
        "model.layers.0.empty": (("F32", [0, 4], b""),
                                 np.zeros(0, np.float32)),
        "model.layers.0.scalar": (("F32", [], np.float32(4.5).tobytes()),
                                  np.array([4.5], np.float32)),
        "model.layers.0.bool": (("BOOL", [3], bytes([1, 0, 1])), None),
    }


def layout(entries: Dict[str, Entry]) -> Tuple[dict, bytes]:
    """Packs the entries back to back; returns the header dict and buffer."""
    header, buffer = {}, b""
    for name, (dtype, shape, data) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(buffer), len(buffer) + len(data)]}
        buffer += data
    return header, buffer


def write_raw(path: str, header_text: bytes, buffer: bytes,
              header_len: int = -1) -> None:
    """Writes a safetensors file; the header is padded to 8 bytes."""
    header_text += b" " * (-len(header_text) % 8)
    if header_len < 0:
        header_len = len(header_text)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", header_len) + header_text + buffer)


def write_file(path: str, header: dict, buffer: bytes) -> None:
    write_raw(path, json.dumps(header).encode(), buffer)


def good_entries() -> Dict[str, Entry]:
    return {name: entry for name, (entry, _) in good_tensors().items()}


def write_good(path: str) -> None:
    header, buffer = layout(good_entries())
    header["__metadata__"] = {"format": "pt", "note": "caf\u00e9 \U0001F600"}
    write_file(path, header, buffer)


def small_file(path: str, mutate: Callable[[dict], None] = lambda h: None,
               buffer_extra: bytes = b"") -> None:
    """Two F32 tensors a [2, 3] and b [4]; `mutate` edits the header."""
    header, buffer = layout({
        "a": ("F32", [2, 3], np.ones(6, np.float32).tobytes()),
        "b": ("F32", [4], np.ones(4, np.float32).tobytes()),
    })
    mutate(header)
    write_file(path, header, buffer + buffer_extra)


def write_sharded(out: str, index: dict = None, skip_shard: str = "") -> None:
    os.makedirs(out, exist_ok=True)
    entries = good_entries()
    names = sorted(entries)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for shard, shard_names in shards.items():
        header, buffer = layout({n: entries[n] for n in shard_names})
        header["__metadata__"] = {"format": "pt"}
        if shard != skip_shard:
            write_file(os.path.join(out, shard), header, buffer)
        weight_map.update({n: shard for n in shard_names})
    if index is None:
        index = {"metadata": {"total_size": 123}, "weight_map": weight_map}
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)


def fresh_dir(out: str) -> str:
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    return out


def set_key(tensor: str, key: str, value) -> Callable[[dict], None]:
    def mutate(header: dict) -> None:
        header[tensor][key] = value
    return mutate


def npy_header(descr: str, fortran: bool, shape: tuple, version=(1, 0),
               text: str = None) -> bytes:
    if text is None:
        text = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, fortran, repr(shape))
    preamble = 10 if version[0] == 1 else 12
    text += " " * (-(preamble + len(text) + 1) % 64) + "\n"
    length = struct.pack("<H" if version[0] == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text.encode("latin1")


def npy_input() -> np.ndarray:
    return np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)


def module_weights() -> Tuple[np.ndarray, np.ndarray]:
    """The fake modules' weights: w [H, H] f32 and the experts [E, H, H] as
    bf16 bit patterns."""
    rng = np.random.default_rng(7)
    h, e = make_module.H, make_module.E
    w = rng.standard_normal((h, h)).astype(np.float32)
    experts = rng.standard_normal((e, h, h)).astype(np.float32)
    return w, (experts.view(np.uint32) >> 16).astype(np.uint16)


def module_x(tokens: int) -> np.ndarray:
    """The activations [tokens, H] of the fake modules."""
    rng = np.random.default_rng(tokens)
    return rng.standard_normal((tokens, make_module.H)).astype(np.float32)


def module_checkpoint(path: str, change: Callable[[dict], None] = None,
                      pad: bool = False) -> None:
    """The checkpoint of the fake modules; `change` edits the entries, `pad`
    puts a 2-byte tensor first so that the f32 weight is misaligned."""
    w, experts = module_weights()
    entries: Dict[str, Entry] = {}
    if pad:
        entries["pad"] = ("BF16", [1], b"\0\0")
    entries[make_module.WEIGHT] = ("F32", list(w.shape), w.tobytes())
    for e in range(make_module.E):
        entries[make_module.EXPERTS.format(e=e)] = (
            "BF16", list(experts[e].shape), experts[e].tobytes())
    if change:
        change(entries)
    header, buffer = layout(entries)
    write_file(path, header, buffer)


def expert_name(e: int) -> str:
    return make_module.EXPERTS.format(e=e)


def hf_cache(out: str, sharded: bool) -> None:
    """Hugging Face's cache layout: snapshots/REV/<file> are symbolic links
    to ../../blobs/<hash>; the checkpoint is opened at snapshots/REV."""
    source = os.path.join(fresh_dir(out), "source")
    if sharded:
        write_sharded(source)
    else:
        write_good(os.path.join(fresh_dir(source), "model.safetensors"))
    blobs = os.path.join(out, "blobs")
    snapshot = os.path.join(out, "snapshots", "0123abcd")
    os.makedirs(blobs)
    os.makedirs(snapshot)
    for i, name in enumerate(sorted(os.listdir(source))):
        blob = "%040x" % (i + 1)
        os.rename(os.path.join(source, name), os.path.join(blobs, blob))
        os.symlink(os.path.join("..", "..", "blobs", blob),
                   os.path.join(snapshot, name))
    os.rmdir(source)


def index_number(out: str, number: str) -> None:
    """A good sharded checkpoint whose index metadata holds `number`."""
    write_sharded(fresh_dir(out))
    path = os.path.join(out, "model.safetensors.index.json")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("123", number))


def hostile_names(path: str) -> None:
    """Tensor names and metadata that would move the cursor, color the
    terminal or forge a line if printed raw."""
    header, buffer = layout({
        "a\x1b[31mred\nFORGED LINE": ("F32", [1], np.float32(1).tobytes()),
        "b\u202eevil\u2028x\x9b2J": ("F32", [1], np.float32(2).tobytes()),
    })
    header["__metadata__"] = {"k\x1b]0;title\x07": "v\r\nmore\x00end"}
    write_file(path, header, buffer)


def main() -> None:
    case, out = sys.argv[1], sys.argv[2]
    cases: Dict[str, Callable[[], None]] = {
        # Good checkpoints.
        "good": lambda: write_good(out),
        "good-dir": lambda: write_good(
            os.path.join(fresh_dir(out), "model.safetensors")),
        "good-sharded": lambda: write_sharded(fresh_dir(out)),
        "good-unicode": lambda: write_raw(
            out, b'{"t\\u00e9\\ud83d\\ude00\\u0041": {"dtype": "F32", "shape":'
            b' [1], "data_offsets": [0, 4]}, "__metadata__": {"k\\"ey": '
            b'"v\\\\al\\/"}}', np.float32(2).tobytes()),
        # Bad safetensors files.
        "tiny": lambda: open(out, "wb").write(b"\x10\x00\x00"),
        "truncated": lambda: (write_good(out), os.truncate(
            out, os.path.getsize(out) - 5)),
        "header-beyond-file": lambda: write_raw(
            out, b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, '
            b'4]}}', b"\0" * 4, header_len=1000),
        "header-huge": lambda: write_raw(out, b"{}", b"", header_len=2**64 - 1),
        "header-over-limit": lambda: (write_raw(
            out, b"{}", b"", header_len=100000008), os.truncate(
            out, 100000016)),
        "offsets-outside": lambda: small_file(
            out, set_key("b", "data_offsets", [24, 44])),
        "begin-after-end": lambda: small_file(
            out, set_key("b", "data_offsets", [40, 24])),
        "offsets-malformed": lambda: small_file(
            out, set_key("b", "data_offsets", [24])),
        "overlap": lambda: small_file(
            out, set_key("b", "data_offsets", [16, 32])),
        "size-mismatch": lambda: small_file(
            out, set_key("a", "shape", [2, 2])),
        "invalid-json": lambda: write_raw(
            out, b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, '
            b'4],}}', b"\0" * 4),
        "header-not-object": lambda: write_raw(out, b"[1, 2]", b""),
        "unknown-dtype": lambda: small_file(out, set_key("a", "dtype", "F4")),
        "dtype-not-string": lambda: small_file(out, set_key("a", "dtype", 4)),
        "negative-shape": lambda: small_file(out, set_key("a", "shape", [2, -3])),
        "shape-not-int": lambda: small_file(out, set_key("a", "shape", [2, 1.5])),
        "shape-overflow": lambda: small_file(
            out, set_key("a", "shape", [2**40, 2**40])),
        "missing-key": lambda: small_file(
            out, lambda h: h["a"].pop("data_offsets")),
        "unexpected-key": lambda: small_file(out, set_key("a", "offset", 0)),
        "entry-not-object": lambda: small_file(
            out, lambda h: h.__setitem__("c", [1])),
        "bad-metadata": lambda: small_file(
            out, lambda h: h.__setitem__("__metadata__", {"n": 1})),
        "duplicate-name": lambda: write_raw(
            out, b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]'
            b'}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}',
            b"\0" * 8),
        # Bad sharded checkpoints.
        "index-missing-shard": lambda: write_sharded(
            fresh_dir(out), skip_shard="model-00002-of-00002.safetensors"),
        "index-no-weight-map": lambda: write_sharded(
            fresh_dir(out), index={"metadata": {}}),
        "index-not-in-shard": lambda: write_sharded(
            fresh_dir(out), index={"weight_map": {
                "model.layers.0.f32": "model-00001-of-00002.safetensors"}}),
        "index-escapes": lambda: write_sharded(
            fresh_dir(out), index={"weight_map": {
                "model.layers.0.f32": "../model-00001-of-00002.safetensors"}}),
        "index-invalid-json": lambda: (write_sharded(fresh_dir(out)), open(
            os.path.join(out, "model.safetensors.index.json"), "w").write(
            '{"weight_map": {"a": "b"')),
        "index-nul-shard": lambda: write_sharded(
            fresh_dir(out), index={"weight_map": {
                "model.layers.0.f32": "..\u0000"}}),
        "index-control-shard": lambda: write_sharded(
            fresh_dir(out), index={"weight_map": {
                "model.layers.0.f32": "shard\x1b[2J\n.safetensors"}}),
        # The number in the index metadata is not read, only parsed.
        "index-number": lambda: index_number(out, sys.argv[3]),
        "empty-dir": lambda: fresh_dir(out),
        # Hugging Face's cache layout, and a checkpoint file that is text.
        "hf-cache": lambda: hf_cache(out, sharded=False),
        "hf-cache-sharded": lambda: hf_cache(out, sharded=True),
        "text-file": lambda: open(out, "w").write(
            "secret: do not print me\n"),
        "hostile-names": lambda: hostile_names(out),
        "shape-zero-huge": lambda: small_file(
            out, set_key("a", "shape", [2**62, 4, 0])),
        # A header given on the command line, for the JSON parser tests.
        "raw": lambda: write_raw(out, sys.argv[3].encode(), b""),
        # A backslash followed by a raw newline or ESC: invalid escapes
        # whose error must not carry the byte itself.
        "json-escape-newline": lambda: write_raw(out, b'{"a\\\nb": 1}', b""),
        "json-escape-esc": lambda: write_raw(out, b'{"a\\\x1b[2J": 1}', b""),
        "raw-file": lambda: write_raw(
            out, open(sys.argv[3], "rb").read(), b""),
        # .npy files.
        "npy-f4": lambda: np.save(out, npy_input()),
        "npy-f2": lambda: np.save(out, np.array(
            [1.0, 6.1e-5, 6e-8, np.inf], dtype=np.float16)),
        "npy-f8": lambda: np.save(out, np.array([[0.5], [1e-3]])),
        "npy-v2": lambda: open(out, "wb").write(
            npy_header("<f4", False, (2, 2), version=(2, 0)) +
            npy_input()[:2, :2].tobytes()),
        "npy-0d": lambda: np.save(out, np.float32(7.25)),
        "npy-empty": lambda: np.save(out, np.zeros((0, 5), np.float32)),
        "npy-bad-magic": lambda: open(out, "wb").write(
            b"\x93NUMPX" + npy_header("<f4", False, (1,))[6:] + b"\0" * 4),
        "npy-bad-version": lambda: open(out, "wb").write(
            npy_header("<f4", False, (1,), version=(4, 0)) + b"\0" * 4),
        "npy-fortran": lambda: np.save(out, np.asfortranarray(npy_input())),
        "npy-wrong-dtype": lambda: np.save(out, np.arange(4, dtype=np.int32)),
        "npy-big-endian": lambda: np.save(out, np.arange(4, dtype=">f4")),
        "npy-truncated": lambda: (np.save(out, npy_input()), os.truncate(
            out, os.path.getsize(out) - 4)),
        "npy-trailing": lambda: open(out, "wb").write(
            npy_header("<f4", False, (2,)) + b"\0" * 12),
        "npy-header-beyond": lambda: open(out, "wb").write(
            npy_header("<f4", False, (1,))[:8] + struct.pack("<H", 500) +
            b"{}"),
        "npy-missing-key": lambda: open(out, "wb").write(npy_header(
            "", False, (), text="{'descr': '<f4', 'shape': (1,), }") +
            b"\0" * 4),
        "npy-shape-not-tuple": lambda: open(out, "wb").write(npy_header(
            "", False, (), text="{'descr': '<f4', 'fortran_order': False, "
            "'shape': (3), }") + b"\0" * 12),
        "npy-tiny": lambda: open(out, "wb").write(b"\x93NUM"),
        # Representable at 2 bytes an element, not as the float32 copy.
        "npy-f2-zero-huge": lambda: open(out, "wb").write(
            npy_header("<f2", False, (0, 2**61, 2))),
        "npy-zero-huge": lambda: open(out, "wb").write(
            npy_header("<f4", False, (2**62, 4, 0))),
        # 128 bytes for 2^40 tokens of hidden size 0.
        "npy-many-empty-rows": lambda: open(out, "wb").write(
            npy_header("<f4", False, (2**40, 0))),
        # The fake modules' checkpoints and activations.
        "module-ckpt": lambda: module_checkpoint(out),
        "module-ckpt-unaligned": lambda: module_checkpoint(out, pad=True),
        "module-ckpt-missing-expert": lambda: module_checkpoint(
            out, lambda t: t.pop(expert_name(2))),
        "module-ckpt-wrong-shape": lambda: module_checkpoint(
            out, lambda t: t.__setitem__(make_module.WEIGHT, (
                "F32", [8, 4], np.zeros(32, np.float32).tobytes()))),
        "module-ckpt-wrong-dtype": lambda: module_checkpoint(
            out, lambda t: t.__setitem__(make_module.WEIGHT, (
                "BF16", [8, 8], np.zeros(64, np.uint16).tobytes()))),
        "module-ckpt-expert-shape": lambda: module_checkpoint(
            out, lambda t: t.__setitem__(expert_name(1), (
                "BF16", [8, 4], np.zeros(32, np.uint16).tobytes()))),
        "module-x": lambda: np.save(out, module_x(int(sys.argv[3]))),
        "module-x-nan": lambda: np.save(out, np.where(
            np.arange(3 * 8).reshape(3, 8) == 9, np.float32("nan"),
            module_x(3))),
        "module-x-f8": lambda: np.save(out, module_x(3).astype(np.float64)),
        "module-x-rank-1": lambda: np.save(out, module_x(1)[0]),
        "module-x-h5": lambda: np.save(out, module_x(3)[:, :5].copy()),
    }
    if case not in cases:
        sys.exit("unknown case " + case)
    cases[case]()


if __name__ == "__main__":
    main()
