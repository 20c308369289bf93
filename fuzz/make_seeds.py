"""Writes the seed corpora of the fuzz harnesses into fuzz/corpus/<target>/.

usage: /usr/bin/python3 fuzz/make_seeds.py

Seeds are valid inputs and near misses taken from the test generators
(test/Runtime/Inputs) and the dialect tests, so that fuzzing starts from
inputs that reach deep into each parser. Harnesses that read several parts
(sharded, binding) take them as FuzzedDataProvider strings: each part with
its backslashes doubled, ended by a backslash and one other byte; trailing
bytes feed the integers.
"""

import glob
import io
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "Runtime", "Inputs"))

import make_inputs  # noqa: E402
import make_module  # noqa: E402

CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def provider_string(data: bytes) -> bytes:
    """`data` as one FuzzedDataProvider::ConsumeRandomLengthString string."""
    return data.replace(b"\\", b"\\\\") + b"\\;"


def safetensors_bytes(header: dict, buffer: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + buffer


def good_safetensors() -> bytes:
    header, buffer = make_inputs.layout(make_inputs.good_entries())
    header["__metadata__"] = {"format": "pt"}
    return safetensors_bytes(header, buffer)


def module_checkpoint() -> bytes:
    w, experts = make_inputs.module_weights()
    entries = {make_module.WEIGHT: ("F32", list(w.shape), w.tobytes())}
    for e in range(experts.shape[0]):
        bits = (experts[e].astype(np.float32).view(np.uint32) >> 16).astype(
            np.uint16)
        entries[make_module.EXPERTS.format(e=e)] = (
            "BF16", list(experts[e].shape), bits.tobytes())
    return safetensors_bytes(*make_inputs.layout(entries))


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def manifests() -> dict:
    return {
        "good": make_module.good(),
        "shared": make_module.MANIFESTS["shared-weights"](),
        "hostile": make_module.hostile_sizes(),
        "packed": make_module.packed(),
        "variants": make_module.MANIFESTS["variants"](),
        "stacked-only": {"version": 1, "entries": [
            make_module.entry("stacked", [make_module.x_arg(),
                                          make_module.stacked_arg()])]},
    }


def with_kernel_symbols(manifest: dict) -> dict:
    """The binding harness resolves "k<N>" to its N-argument kernel."""
    for entry in manifest["entries"]:
        entry["symbol"] = "k%d" % len(entry["args"])
    return manifest


def dialect_inputs() -> list:
    """The dialect tests and examples, one seed per split-input chunk."""
    seeds = []
    paths = sorted(glob.glob(os.path.join(ROOT, "test", "Dialect", "MoE",
                                          "*.mlir")) +
                   glob.glob(os.path.join(ROOT, "examples", "*", "*.mlir")))
    for path in paths:
        with open(path, "rb") as f:
            text = f.read()
        for chunk in text.split(b"// -----"):
            lines = [l for l in chunk.split(b"\n")
                     if not l.lstrip().startswith(b"// RUN")]
            chunk = b"\n".join(lines).strip()
            if chunk:
                seeds.append(chunk + b"\n")
    return seeds


def main() -> None:
    corpora = {}
    corpora["json"] = [
        json.dumps(make_inputs.layout(make_inputs.good_entries())[0]).encode(),
        b'{"t\\u00e9\\ud83d\\ude00": [1, -0.5e-3, 1E+2, true, false, null]}',
        b'[[[[]]], {"a": {"b": "\\"\\\\\\/\\b\\f\\n\\r\\t"}}]',
        b"-9223372036854775808", b"18446744073709551616", b"1e-400",
    ] + [json.dumps(m).encode() for m in manifests().values()]
    corpora["safetensors"] = [
        good_safetensors(), module_checkpoint(),
        safetensors_bytes({}, b""),
        safetensors_bytes({"a": {"dtype": "F32", "shape": [0, 4],
                                 "data_offsets": [0, 0]}}, b""),
    ]
    index = {"metadata": {"total_size": 123}, "weight_map": {}}
    entries = make_inputs.good_entries()
    names = sorted(entries)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    shard_bytes = []
    for i, shard_names in enumerate(shards):
        shard_bytes.append(safetensors_bytes(*make_inputs.layout(
            {n: entries[n] for n in shard_names})))
        for n in shard_names:
            index["weight_map"][n] = "model-%05d-of-00002.safetensors" % (i + 1)
    corpora["sharded"] = [
        provider_string(json.dumps(index).encode()) +
        provider_string(shard_bytes[0]) + shard_bytes[1],
    ]
    corpora["npy"] = [
        npy_bytes(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)),
        npy_bytes(np.array([1.0, 6e-5, np.inf], dtype=np.float16)),
        npy_bytes(np.array([[0.5], [1e-3]])),
        npy_bytes(np.float32(7.25)), npy_bytes(np.zeros((0, 5), np.float32)),
        make_inputs.npy_header("<f4", False, (2, 2), version=(2, 0)) +
        bytes(16),
    ]
    # A device-io module's entry with an output argument (manifests only:
    # the binding harness binds CPU entries).
    corpora["manifest"] = [json.dumps(m).encode()
                           for m in manifests().values()] + [
        json.dumps(make_module.device_io(make_module.out_arg())()).encode()]
    checkpoint = module_checkpoint()
    corpora["binding"] = [
        provider_string(json.dumps(with_kernel_symbols(m)).encode()) +
        provider_string(checkpoint) + bytes([3, 1, 7, 0, 0, 0, 0, 0])
        for m in manifests().values()]
    corpora["moe-opt"] = dialect_inputs()
    # The CUDA emulator's hand-written kernels (compiled modules' PTX is
    # kept as "compiled-*": it needs the compiler to regenerate).
    corpora["ptx"] = [
        open(path, "rb").read() for path in sorted(glob.glob(os.path.join(
            ROOT, "test", "CUDAEmulator", "Inputs", "*.ptx")))]

    # Generated seeds are replaced; findings kept as seeds ("finding-*",
    # inputs that once broke a harness) and other kept seeds stay.
    for target, seeds in corpora.items():
        directory = os.path.join(CORPUS, target)
        os.makedirs(directory, exist_ok=True)
        for name in glob.glob(os.path.join(directory, "seed-*")):
            os.remove(name)
        for i, seed in enumerate(seeds):
            with open(os.path.join(directory, "seed-%03d" % i), "wb") as f:
                f.write(seed)
        print("%s: %d seeds" % (target, len(seeds)))


if __name__ == "__main__":
    main()
