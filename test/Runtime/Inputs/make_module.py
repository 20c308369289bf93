"""Writes the manifest of a fake compiled module as C source.

usage: make_module.py CASE OUT.c

Compiled together with fake_kernels.c into a shared object, OUT.c makes a
module in the format of docs/CompiledModules.md. "good" lists every kernel of
fake_kernels.c; the other cases break one rule of the manifest (or, for
"unsupported-*", one limit of the runtime that shows when binding).
"""

import copy
import json
import sys
from typing import Callable, Dict, List

H = 8
E = 4
WEIGHT = "layer.w"
EXPERTS = "layer.experts.{e}.w"


def x_arg() -> dict:
    return {"kind": "input", "dtype": "f32", "shape": [-1, H]}


def w_arg() -> dict:
    return {"kind": "weight", "dtype": "f32", "shape": [H, H], "name": WEIGHT}


def y_result() -> dict:
    return {"dtype": "f32", "shape": [-1, H]}


def out_arg(**fields) -> dict:
    """An output argument (device-io entries in destination-passing style)."""
    return dict({"kind": "output", "dtype": "f32", "shape": [-1, H],
                 "result": 0}, **fields)


def device_io(*args: dict) -> Callable[[], dict]:
    """A device-io CUDA module whose entry takes `args` after x and w."""
    return lambda: {"version": 1,
                    "gpu": {"api": "cuda", "chip": "sm_90", "io": "device"},
                    "entries": [entry("forward", [x_arg(), w_arg(), *args],
                                      symbol="gpu_forward_device")]}


def entry(name: str, args: List[dict], parallel: bool = True,
          symbol: str = None, results: List[dict] = None) -> dict:
    return {"name": name, "symbol": "_mlir_ciface_" + (symbol or name),
            "token_parallel": parallel, "args": args,
            "results": results or [y_result()]}


def good() -> dict:
    return {"version": 1, "entries": [
        entry("forward", [x_arg(), w_arg()]),
        entry("forward_serial", [x_arg(), w_arg()], parallel=False,
              symbol="forward"),
        entry("stacked", [x_arg(), {"kind": "weight", "dtype": "bf16",
                                    "shape": [E, H, H], "name": EXPERTS}]),
        entry("strided", [x_arg(), w_arg()]),
        entry("alias", [x_arg()]),
        entry("chunk", [x_arg()], parallel=False),
        entry("chunk_parallel", [x_arg()], symbol="chunk"),
        entry("bad_shape", [x_arg()]),
        entry("global", [x_arg()], parallel=False),
        entry("two_inputs", [x_arg(), w_arg(), x_arg()]),
        # Statistics-like results of a static shape; marked token-parallel
        # to check that the runtime still runs it on all tokens at once.
        entry("with_stats", [x_arg()],
              results=[y_result(), {"dtype": "i64", "shape": [E]},
                       {"dtype": "f32", "shape": []}]),
    ]}


def edit(change: Callable[[dict], None],
         base: Callable[[], dict] = None) -> Callable[[], dict]:
    """The `base` manifest (default: the good one) with `change` applied."""
    def make() -> dict:
        manifest = (base or good)()
        change(manifest)
        return manifest
    return make


def forward(manifest: dict) -> dict:
    return manifest["entries"][0]


def set_in(path: List, value) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def pop_in(path: List) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1])
    return change


def many_args(manifest: dict) -> None:
    forward(manifest)["args"] = [x_arg()] + [w_arg()] * 64


def duplicate(manifest: dict) -> None:
    manifest["entries"].append(copy.deepcopy(forward(manifest)))


FORWARD_ARGS = ["entries", 0, "args"]


def with_variant(**fields) -> Callable[[dict], None]:
    """Puts a kernel variant of `forward` that requires SSE4.2 before it,
    with `fields` changed; `forward` becomes the floor variant "plain"."""
    def change(manifest: dict) -> None:
        variant = copy.deepcopy(forward(manifest))
        variant.update({"variant": "sse42", "requires": ["sse4.2"]})
        variant.update(fields)
        forward(manifest)["variant"] = "plain"
        manifest["entries"].insert(0, variant)
    return change


def all_variants_require(manifest: dict) -> None:
    with_variant()(manifest)
    manifest["entries"][1]["requires"] = ["popcnt"]


def stacked_arg() -> dict:
    return {"kind": "weight", "dtype": "bf16", "shape": [E, H, H],
            "name": EXPERTS}


def add_shared_weights(manifest: dict) -> None:
    """An entry binding the same stacked tensors twice (shared layers)."""
    manifest["entries"].append(
        entry("shared_twice", [x_arg(), stacked_arg(), w_arg(),
                               stacked_arg()]))


def packed() -> dict:
    """An entry whose {e}-stacked weight is packed at bind time by the
    module's packing function (moe-pack-expert-weights' contract)."""
    arg = {"kind": "weight", "dtype": "bf16", "shape": [E, 1, H, H],
           "name": EXPERTS,
           "packing": {"symbol": "_mlir_ciface_pack_experts",
                       "shape": [E, H, H]}}
    return {"version": 1, "entries": [entry("packed", [x_arg(), arg])]}


def edit_packed(change: Callable[[dict], None]) -> Callable[[], dict]:
    """The packed manifest with `change` applied to it."""
    return edit(change, packed)


PACKING = FORWARD_ARGS + [1, "packing"]


def hostile_sizes() -> dict:
    """Entries whose buffers, sized by the input, cannot be allocated; their
    kernels are never called (the symbol is any existing one)."""
    zero_x = {"kind": "input", "dtype": "f32", "shape": [-1, 0]}
    return {"version": 1, "entries": [
        # [T, 0] tokens in, [T, 32] out: 2^40 tokens ask for 2^47 bytes.
        entry("wide_result", [zero_x], symbol="alias",
              results=[{"dtype": "f32", "shape": [-1, 32]}]),
        # [T, 0] in and out: nothing to allocate but the working buffers
        # of 2^40 tokens.
        entry("empty_rows", [zero_x], symbol="alias",
              results=[{"dtype": "f32", "shape": [-1, 0]}]),
        # A static result of 2^59 bytes.
        entry("huge_stats", [x_arg()], symbol="alias",
              results=[y_result(), {"dtype": "i64",
                                    "shape": [2**28, 2**28]}]),
    ]}


MANIFESTS: Dict[str, Callable[[], object]] = {
    "hostile-sizes": hostile_sizes,
    "shape-zero-huge": edit(set_in(FORWARD_ARGS + [1, "shape"],
                                   [2**62, 4, 0])),
    "result-zero-huge": edit(set_in(["entries", 0, "results", 0],
                                    {"dtype": "i64", "shape": [0, 2**62, 4]})),
    "good": good,
    "shared-weights": edit(add_shared_weights),
    "not-object": lambda: [good()],
    "version-2": edit(set_in(["version"], 2)),
    "version-string": edit(set_in(["version"], "1")),
    "no-entries": edit(pop_in(["entries"])),
    "cpu": edit(set_in(["cpu"], {"name": "x86-64", "features": []})),
    "cpu-not-object": edit(set_in(["cpu"], "znver4")),
    "cpu-no-features": edit(set_in(["cpu"], {"name": "znver4"})),
    "cpu-unknown-key": edit(set_in(["cpu"], {"name": "znver4",
                                             "features": [], "tune": "x"})),
    "cpu-empty-name": edit(set_in(["cpu"], {"name": "", "features": []})),
    "cpu-features-not-array": edit(set_in(["cpu"], {"name": "znver4",
                                                    "features": "avx2"})),
    "cpu-feature-not-string": edit(set_in(["cpu"], {"name": "znver4",
                                                    "features": [2]})),
    "cpu-unknown-feature": edit(set_in(["cpu"], {"name": "znver4",
                                                 "features": ["sse9"]})),
    "cpu-duplicate-feature": edit(set_in(["cpu"], {
        "name": "znver4", "features": ["avx2", "avx2"]})),
    "top-unknown-key": edit(set_in(["extra"], 1)),
    "entry-unknown-key": edit(set_in(["entries", 0, "routing"], "topk")),
    "no-symbol": edit(pop_in(["entries", 0, "symbol"])),
    "empty-name": edit(set_in(["entries", 0, "name"], "")),
    "parallel-not-bool": edit(set_in(["entries", 0, "token_parallel"], 1)),
    "bad-kind": edit(set_in(FORWARD_ARGS + [1, "kind"], "buffer")),
    "bad-dtype": edit(set_in(FORWARD_ARGS + [1, "dtype"], "f64")),
    "bad-result-dtype": edit(set_in(["entries", 0, "results", 0, "dtype"],
                                    "u8")),
    "bad-dim": edit(set_in(FORWARD_ARGS + [1, "shape"], [8, -2])),
    "float-dim": edit(set_in(FORWARD_ARGS + [1, "shape"], [8, 8.0])),
    "weight-no-name": edit(pop_in(FORWARD_ARGS + [1, "name"])),
    "input-with-name": edit(set_in(FORWARD_ARGS + [0, "name"], "x")),
    "placeholder-twice": edit(set_in(FORWARD_ARGS + [1, "name"],
                                     "layer.{e}.w.{e}")),
    "placeholder-rank-0": edit(lambda m: forward(m)["args"].__setitem__(
        1, {"kind": "weight", "dtype": "f32", "shape": [], "name": "w.{e}"})),
    "too-many-args": edit(many_args),
    "duplicate-entry": edit(duplicate),
    "variants": edit(with_variant()),
    "variant-empty-name": edit(with_variant(variant="")),
    "variant-requires-not-array": edit(with_variant(requires="sse4.2")),
    "variant-requires-empty": edit(with_variant(requires=[])),
    "variant-requires-unknown": edit(with_variant(requires=["sse9"])),
    "variant-requires-twice": edit(with_variant(requires=["avx", "avx"])),
    "variant-other-weight": edit(with_variant(
        args=[x_arg(), dict(w_arg(), name="layer.v")])),
    "variant-all-require": edit(all_variants_require),
    "missing-symbol": edit(set_in(["entries", 0, "symbol"],
                                  "_mlir_ciface_nowhere")),
    "packed": packed,
    "packing-on-input": edit_packed(set_in(FORWARD_ARGS + [0, "packing"],
                                           packed()["entries"][0]["args"][1]
                                           ["packing"])),
    "packing-dynamic-shape": edit_packed(set_in(PACKING + ["shape"],
                                                [E, -1, H])),
    "packing-unknown-key": edit_packed(set_in(PACKING + ["panel"], 8)),
    "packing-no-symbol": edit_packed(pop_in(PACKING + ["symbol"])),
    "packing-missing-symbol": edit_packed(set_in(PACKING + ["symbol"],
                                                 "_mlir_ciface_nowhere")),
    "format-on-input": edit(set_in(FORWARD_ARGS + [0, "format"], "mxfp4")),
    "format-unknown": edit(set_in(FORWARD_ARGS + [1, "format"], "nvfp4")),
    "format-on-f32": edit(set_in(FORWARD_ARGS + [1, "format"], "mxfp4")),
    "format-e8m0-on-bf16": edit(lambda m: forward(m)["args"][1].update(
        dtype="bf16", format="e8m0")),
    # Valid: an f32 weight the checkpoint must store as U8 exponents.
    "format-e8m0": edit(set_in(FORWARD_ARGS + [1, "format"], "e8m0")),
    # A CUDA module (fake_gpu_kernels.c), and its GPU key's rules.
    "gpu": lambda: {"version": 1, "gpu": {"api": "cuda", "chip": "sm_90"},
                    "entries": [entry("forward", [x_arg(), w_arg()],
                                      symbol="gpu_forward")]},
    "gpu-device-io": lambda: {"version": 1,
                              "gpu": {"api": "cuda", "chip": "sm_90",
                                      "io": "device"},
                              "entries": [entry("forward", [x_arg(), w_arg()],
                                                symbol="gpu_forward_device")]},
    # Output arguments: only in device-io modules, each for one result of
    # its type.
    "output-on-host": edit(lambda m: forward(m)["args"].append(out_arg())),
    "output-no-result": device_io(
        {k: v for k, v in out_arg().items() if k != "result"}),
    "output-bad-result": device_io(out_arg(result=1)),
    "output-negative-result": device_io(out_arg(result=-1)),
    "output-wrong-shape": device_io(out_arg(shape=[-1, H + 1])),
    "output-twice": device_io(out_arg(), out_arg()),
    "output-with-name": device_io(out_arg(name="y")),
    "input-with-result": edit(set_in(FORWARD_ARGS + [0, "result"], 0)),
    "gpu-api": lambda: {"version": 1, "gpu": {"api": "rocm",
                                              "chip": "gfx942"},
                        "entries": []},
    "gpu-chip": lambda: {"version": 1, "gpu": {"api": "cuda",
                                               "chip": "90"},
                         "entries": []},
    "gpu-io": lambda: {"version": 1, "gpu": {"api": "cuda",
                                             "chip": "sm_90",
                                             "io": "unified"},
                       "entries": []},
    "gpu-key": lambda: {"version": 1, "gpu": {"api": "cuda",
                                              "chip": "sm_90",
                                              "ptx": True},
                        "entries": []},
    # The "parallel" key of expert-parallel modules, and the weights'
    # windows of experts ("experts").
    "parallel-api": lambda: {"version": 1, "parallel": {
        "api": "nccl", "library": "OpenMPI", "ranks": 2}, "entries": []},
    "parallel-library": lambda: {"version": 1, "parallel": {
        "api": "mpi", "library": "LAM", "ranks": 2}, "entries": []},
    "parallel-ranks": lambda: {"version": 1, "parallel": {
        "api": "mpi", "library": "OpenMPI", "ranks": 0}, "entries": []},
    "experts-without-parallel": edit(set_in(FORWARD_ARGS + [1, "experts"],
                                            2 * H)),
    "experts-window": lambda: {"version": 1, "parallel": {
        "api": "mpi", "library": "OpenMPI", "ranks": 2}, "entries": [
        entry("forward", [x_arg(), dict(w_arg(), experts=2 * H + 3)],
              parallel=False)]},
    "experts-on-input": edit(set_in(FORWARD_ARGS + [0, "experts"], 4)),
    # Valid manifests whose entry the runtime cannot bind.
    "unsupported-input": edit(set_in(FORWARD_ARGS + [0, "dtype"], "bf16")),
    "unsupported-result": edit(set_in(["entries", 0, "results", 0],
                                      {"dtype": "bf16", "shape": [-1, 8]})),
    "unsupported-dynamic-result": edit(set_in(["entries", 0, "results", 0],
                                              {"dtype": "i64",
                                               "shape": [-1]})),
    "unsupported-dynamic-weight": edit(set_in(FORWARD_ARGS + [1, "shape"],
                                              [-1, 8])),
    "unsupported-no-input": edit(set_in(FORWARD_ARGS, [w_arg()])),
}

# Manifest texts that are not JSON.
RAW: Dict[str, str] = {
    "invalid-json": '{"version": 1, "entries": [}',
    "trailing-comma": '{"version": 1, "entries": [],}',
}


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> None:
    case, out = sys.argv[1], sys.argv[2]
    if case in RAW:
        text = RAW[case]
    elif case in MANIFESTS:
        text = json.dumps(MANIFESTS[case]())
    else:
        sys.exit("unknown case " + case)
    with open(out, "w") as f:
        f.write("/* Generated by make_module.py %s. */\n" % case)
        f.write("const char moe_module_manifest[] = %s;\n" % c_string(text))


if __name__ == "__main__":
    main()
