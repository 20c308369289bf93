"""safetensors_io: the file format byte by byte, bf16 rounding, shards.

Where a built ``moe-checkpoint-inspect`` is at hand, the C++ runtime reads
what the writer wrote (names, dtypes, shapes, decoded values).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

from moe_mlir import safetensors_io as st


def _tensors() -> dict[str, np.ndarray]:
    return {
        "a.f32": (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 3,
        "b.bf16": np.array([1.0, -2.0, 3.140625, 1e-3], dtype=np.float32),
        "c.f16": np.array([[0.5, -65504.0], [6.103515625e-05, 1.0]],
                          dtype=np.float32),
        "d.empty": np.zeros((0, 4), dtype=np.float32),
        "e.scalar": np.array(7.25, dtype=np.float32),
        "f.i64": np.array([1, -2, 3], dtype=np.int64),
    }


_DTYPES = {"a.f32": "F32", "b.bf16": "BF16", "c.f16": "F16",
           "d.empty": "F32", "e.scalar": "F32", "f.i64": "I64"}


def test_file_layout(tmp_path) -> None:
    path = tmp_path / "x.safetensors"
    st.save_file(path, _tensors(), _DTYPES, metadata={"format": "pt"})
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert length % 8 == 0  # data 8-byte aligned
    header = json.loads(raw[8:8 + length])
    assert header["__metadata__"] == {"format": "pt"}
    offset = 0
    for name, array in _tensors().items():
        entry = header[name]
        assert entry["dtype"] == _DTYPES[name]
        assert entry["shape"] == list(array.shape)
        size = array.size * st.DTYPES[_DTYPES[name]].itemsize
        assert entry["data_offsets"] == [offset, offset + size]
        offset += size
    assert len(raw) == 8 + length + offset
    begin, end = header["a.f32"]["data_offsets"]
    assert raw[8 + length + begin:8 + length + end] == \
        _tensors()["a.f32"].astype("<f4").tobytes()


def test_round_trip(tmp_path) -> None:
    path = tmp_path / "x.safetensors"
    st.save_file(path, _tensors(), _DTYPES)
    loaded = st.load_file(path)
    for name, array in _tensors().items():
        assert loaded[name].shape == array.shape
        if _DTYPES[name] == "I64":
            assert loaded[name].dtype == np.int64
        else:
            assert loaded[name].dtype == np.float32
        if _DTYPES[name] in ("F32", "I64"):
            np.testing.assert_array_equal(loaded[name], array)
    np.testing.assert_array_equal(loaded["c.f16"],
                                  _tensors()["c.f16"].astype(np.float16))
    assert st.load_file(path, np.float64)["a.f32"].dtype == np.float64
    only = st.load_file(path, names=["b.bf16"])
    assert list(only) == ["b.bf16"]


def test_bf16_round_to_nearest_even(tmp_path) -> None:
    # 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to even (1.0);
    # 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6.
    values = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -1.0,
                       3.4e38], dtype=np.float32)  # the last overflows bf16
    bits = np.frombuffer(st.encode(values, "BF16"), dtype="<u2")
    assert [hex(b) for b in bits] == ["0x3f80", "0x3f82", "0x3f81", "0xbf80",
                                      "0x7f80"]
    path = tmp_path / "b.safetensors"
    st.save_file(path, {"w": values}, "bf16")  # IR spelling accepted
    decoded = st.load_file(path)["w"]
    np.testing.assert_array_equal(decoded[:4],
                                  [1.0, 1 + 2**-6, 1 + 2**-7, -1.0])
    assert np.isinf(decoded[4])
    # uint16 arrays are bit patterns, stored as they are.
    assert st.encode(np.array([0x3F80], dtype=np.uint16), "BF16") == \
        b"\x80\x3f"


def test_per_tensor_dtype_required(tmp_path) -> None:
    with pytest.raises(ValueError, match="no storage dtype given for tensor "
                                         "'b'"):
        st.save_file(tmp_path / "x.safetensors", {"a": np.zeros(2),
                                                  "b": np.zeros(2)},
                     {"a": "F32"})
    with pytest.raises(ValueError, match="unsupported safetensors dtype"):
        st.save_file(tmp_path / "x.safetensors", {"a": np.zeros(2)}, "F8")


def test_sharded(tmp_path) -> None:
    directory = tmp_path / "ckpt"
    files = st.save_sharded(directory, _tensors(), _DTYPES, num_shards=3)
    assert files == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((directory / st.INDEX_NAME).read_text())
    assert sorted(index["weight_map"]) == sorted(_tensors())
    assert set(index["weight_map"].values()) == set(files)
    for file in files:  # every shard holds exactly its tensors
        header, _ = st.read_header(directory / file)
        mapped = {n for n, f in index["weight_map"].items() if f == file}
        assert set(header) - {"__metadata__"} == mapped
    loaded = st.load_checkpoint(directory)
    assert list(loaded) == list(index["weight_map"])
    np.testing.assert_array_equal(loaded["a.f32"], _tensors()["a.f32"])
    # The index itself opens the same way.
    assert sorted(st.load_checkpoint(directory / st.INDEX_NAME)) == \
        sorted(_tensors())


def test_load_checkpoint_directory(tmp_path) -> None:
    st.save_file(tmp_path / st.SINGLE_NAME, {"w": np.ones((2, 2))}, "F32")
    assert list(st.load_checkpoint(tmp_path)) == ["w"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(st.SafetensorsError, match="neither"):
        st.load_checkpoint(empty)


def _write_raw(path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize("header,data,message", [
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8,
     "4 bytes for F32"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}},
     b"\0" * 8, "outside the data buffer"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
     b"\0" * 12, "overlap"),
    ({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}},
     b"\0" * 4, "unsupported dtype"),
    ({"w": {"dtype": "F32", "shape": [1]}}, b"", "exactly dtype"),
])
def test_read_header_rejects(tmp_path, header, data, message) -> None:
    path = tmp_path / "bad.safetensors"
    _write_raw(path, header, data)
    with pytest.raises(st.SafetensorsError, match=message):
        st.read_header(path)


def test_read_header_truncated(tmp_path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(st.SafetensorsError, match="exceeds the file"):
        st.read_header(path)
    path.write_bytes(b"\0" * 4)
    with pytest.raises(st.SafetensorsError, match="too small"):
        st.read_header(path)


def test_read_header_text_file(tmp_path) -> None:
    """A text file's first 8 bytes are not printed as a header length."""
    path = tmp_path / "model.safetensors"
    path.write_text("secret: do not print me\n")
    with pytest.raises(st.SafetensorsError) as err:
        st.read_header(path)
    message = str(err.value)
    assert "not shown" in message and "secret" not in message
    assert str(struct.unpack("<Q", b"secret: ")[0]) not in message


def test_read_header_shape_overflow(tmp_path) -> None:
    """An empty tensor whose other dimensions overflow int64 is refused
    (exact integers, no numpy wrap-around)."""
    path = tmp_path / "bad.safetensors"
    _write_raw(path, {"w": {"dtype": "F32", "shape": [2**62, 4, 0],
                            "data_offsets": [0, 0]}}, b"")
    with pytest.raises(st.SafetensorsError, match="too many elements"):
        st.read_header(path)
    _write_raw(path, {"w": {"dtype": "F32", "shape": [2**40, 2**40],
                            "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(st.SafetensorsError, match="too many elements"):
        st.read_header(path)


def test_hostile_names_are_escaped(tmp_path) -> None:
    """Names with terminal escapes, newlines or bidirectional overrides are
    escaped in messages."""
    path = tmp_path / "bad.safetensors"
    name = "a\x1b[31m\nFORGED\u202e"
    _write_raw(path, {name: {"dtype": "F99", "shape": [1],
                             "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(st.SafetensorsError) as err:
        st.read_header(path)
    message = str(err.value)
    assert "\n" not in message and "\x1b" not in message
    assert "\u202e" not in message
    assert "a\\x1b[31m\\x0aFORGED\\u202e" in message


@pytest.mark.parametrize("shard", ["..\u0000", "a\x1b[2J.safetensors",
                                   "../x.safetensors", "/abs.safetensors"])
def test_bad_shard_names(tmp_path, shard) -> None:
    (tmp_path / st.INDEX_NAME).write_text(
        json.dumps({"weight_map": {"w": shard}}))
    with pytest.raises(st.SafetensorsError, match="bad shard name") as err:
        st.read_checkpoint_headers(tmp_path)
    assert st.printable(str(err.value)) == str(err.value)


def test_hf_cache_layout(tmp_path) -> None:
    """snapshots/REV/<file> links to ../../blobs/<hash>, as Hugging Face's
    cache stores checkpoints."""
    source = tmp_path / "source"
    st.save_sharded(source, _tensors(), _DTYPES, num_shards=2)
    blobs = tmp_path / "blobs"
    snapshot = tmp_path / "snapshots" / "0123abcd"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for i, name in enumerate(sorted(os.listdir(source))):
        os.rename(source / name, blobs / f"{i:040x}")
        os.symlink(os.path.join("..", "..", "blobs", f"{i:040x}"),
                   snapshot / name)
    loaded = st.load_checkpoint(snapshot)
    assert sorted(loaded) == sorted(_tensors())


# -- cross-check with the C++ reader -----------------------------------------

def _inspect() -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    candidate = os.path.join(root, "build", "bin", "moe-checkpoint-inspect")
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("moe-checkpoint-inspect")


@pytest.mark.skipif(_inspect() is None,
                    reason="no built moe-checkpoint-inspect")
@pytest.mark.parametrize("shards", [1, 3])
def test_runtime_reads_what_we_write(tmp_path, shards) -> None:
    tensors = {k: v for k, v in _tensors().items() if k != "f.i64"}
    dtypes = {k: _DTYPES[k] for k in tensors}
    if shards == 1:
        st.save_file(tmp_path / st.SINGLE_NAME, tensors, dtypes)
    else:
        st.save_sharded(tmp_path, tensors, dtypes, num_shards=shards)
    listing = subprocess.run([_inspect(), str(tmp_path)], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert listing[0] == (f"{tmp_path}: {len(tensors)} tensors in {shards} "
                          "files")
    expected = sorted(f"{name} {dtypes[name]} {list(array.shape)}"
                      for name, array in tensors.items())
    assert listing[1:] == expected
    ours = st.load_checkpoint(tmp_path)
    for name in ("a.f32", "b.bf16", "c.f16"):
        dump = subprocess.run([_inspect(), str(tmp_path), "--dump", name],
                              capture_output=True, text=True,
                              check=True).stdout.splitlines()[1:]  # title
        np.testing.assert_array_equal(
            np.array([float(v) for v in dump], dtype=np.float32),
            ours[name].ravel())
