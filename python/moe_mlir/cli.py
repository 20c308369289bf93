"""``/usr/bin/python3 -m moe_mlir``: import models, compile, run, and the reference.

::

    /usr/bin/python3 -m moe_mlir import-hf DIR --layer N -o layer.mlir
    /usr/bin/python3 -m moe_mlir compile layer.mlir -o layer.so
    /usr/bin/python3 -m moe_mlir run layer.so --weights DIR --input x.npy --output y.npy
    /usr/bin/python3 -m moe_mlir reference --hf DIR --layer N --input x.npy \\
        --output ref.npy --check y.npy
    /usr/bin/python3 -m moe_mlir random-weights --spec layer.json -o DIR
    /usr/bin/python3 -m moe_mlir make-checkpoint --family mixtral --hidden 1024 \
        --intermediate 2048 --experts 8 --top-k 2 --layers 2 --dtype bf16 \
        -o DIR
    /usr/bin/python3 -m moe_mlir moefy --hf DENSE_DIR --layer N --mode split \
        --experts 8 --top-k 2 --shared 0 --calibration x.npy -o MOE_DIR

Every failure prints one line ``moe_mlir <command>: error: <reason>`` on
stderr and exits with 1 (2 for bad command-line flags).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, NoReturn, Sequence

import numpy as np

from . import __version__
from .emit import STATISTICS
from .safetensors_io import printable

__all__ = ["main"]


class CommandError(Exception):
    """A failure of a subcommand (one-line message)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {printable(message)}\n")
        sys.exit(2)


# -- subcommands -------------------------------------------------------------

def _import_dense(args: argparse.Namespace, config: dict) -> None:
    """The MLP of a dense family's layer in its dense-expert form."""
    from . import dense
    if args.statistics:
        raise CommandError("a dense MLP has no routing statistics")
    try:
        mlp = dense.read_dense_mlp(args.directory, int(args.layer), config)
    except (ValueError, OSError) as err:
        raise CommandError(str(err)) from None
    importance = None
    if args.importance:
        importance = _load_npy(args.importance)
        with np.errstate(over="ignore", invalid="ignore"):
            finite = importance.dtype.kind in "fiu" and bool(np.all(
                np.isfinite(importance.astype(np.float32))))
        if importance.shape != (mlp.intermediate,) or not finite:
            raise CommandError(f"{args.importance}: expected "
                               f"{mlp.intermediate} finite scores, got "
                               f"{importance.dtype} {list(importance.shape)}")
    text = dense.emit_dense_module(mlp, args.entry, importance)
    _write_text(args.output, text)
    if args.output != "-":
        print(f"{args.output}: {config['model_type']} layer {args.layer}, "
              f"dense MLP, H = {mlp.hidden}, I = {mlp.intermediate}",
              file=sys.stderr)


def _write_text(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as err:
        raise CommandError(f"cannot write {path}: {err.strerror}") from None


def _import_hf(args: argparse.Namespace) -> None:
    from .dense import DENSE_FAMILIES
    from .hf_import import ModelImportError, import_hf, read_config
    try:
        config = read_config(args.directory)
    except ModelImportError as err:
        raise CommandError(str(err)) from None
    if args.importance and config.get("model_type") not in DENSE_FAMILIES:
        raise CommandError("--importance is for the MLP of a dense model "
                           "(llama, mistral, qwen2)")
    if config.get("model_type") in DENSE_FAMILIES:
        if not str(args.layer).isdigit():
            raise CommandError(f"--layer must be a decoder layer index, got "
                               f"{args.layer!r}")
        return _import_dense(args, config)
    try:
        imported = import_hf(args.directory, args.layer, func_name=args.entry,
                             statistics=args.statistics)
    except ModelImportError as err:
        raise CommandError(str(err)) from None
    _write_text(args.output, imported.module_text())
    if args.output == "-":
        return
    spec = imported.spec
    print(f"{args.output}: {imported.model_type} layer {imported.layer}, "
          f"H = {spec.hidden}, E = {spec.num_experts}, "
          f"routing {spec.routing.to_mlir(prefix=False)}", file=sys.stderr)


def _compile(args: argparse.Namespace) -> None:
    from .tools import ToolError, compile_layer
    try:
        compile_layer(args.input, args.output, mcpu=args.mcpu, emit=args.emit,
                      row_align=args.row_align, target=args.target,
                      pipeline_options=(f"ranks={args.ranks}"
                                        if args.ranks else None))
    except ToolError as err:
        raise CommandError(str(err)) from None


def _run_in_process(args: argparse.Namespace, module: str) -> None:
    from .runtime import MoeRuntimeError, load_layer
    inputs = [_load_tokens(path) for path in args.input]
    try:
        layer = load_layer(module, args.weights, args.entry or "forward",
                           device=args.device)
        results = layer(*inputs, threads=args.threads or 1)
    except MoeRuntimeError as err:
        raise CommandError(str(err)) from None
    if not isinstance(results, tuple):
        results = (results,)
    if len(results) != len(args.output):
        raise CommandError(f"'{layer.name}' has {len(results)} results, got "
                           f"{len(args.output)} --output")
    for path, value in zip(args.output, results):
        _save(path, value)


def _run(args: argparse.Namespace) -> None:
    from .tools import ToolError, compile_layer, run_layer
    if not args.in_process:
        try:
            stdout = run_layer(args.module, args.weights, args.input,
                               args.output, entry=args.entry,
                               threads=args.threads, bench=args.bench,
                               device=args.device)
        except ToolError as err:
            raise CommandError(str(err)) from None
        sys.stdout.write(stdout)
        return
    if args.bench is not None:
        raise CommandError("--bench times moe-run; drop --in-process")
    if not args.module.endswith(".mlir"):
        _run_in_process(args, args.module)
        return
    with tempfile.TemporaryDirectory(prefix="moe_mlir-") as scratch:
        module = os.path.join(scratch, "layer.so")
        try:
            compile_layer(args.module, module)
        except ToolError as err:
            raise CommandError(str(err)) from None
        _run_in_process(args, module)


def _load_npy(path: str) -> np.ndarray:
    """An array from a .npy file (one-line errors)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else \
            type(err).__name__
        raise CommandError(f"{path}: not a readable .npy file "
                           f"({reason})") from None


def _load_tokens(path: str, hidden: int | None = None) -> np.ndarray:
    """A float ``[T, H]`` array from a .npy file (one-line errors)."""
    x = _load_npy(path)
    if x.ndim != 2 or x.dtype.kind != "f":
        raise CommandError(f"{path}: expected a float [T, H] array, got "
                           f"{x.dtype} {list(x.shape)}")
    if hidden is not None and x.shape[1] != hidden:
        raise CommandError(f"{path}: H = {x.shape[1]} but the layer has "
                           f"H = {hidden}")
    return x


def _save(path: str, array: np.ndarray) -> None:
    try:
        np.save(path, array)
    except OSError as err:
        raise CommandError(f"cannot write {path}: {err.strerror}") from None


def _reference_layer(args: argparse.Namespace) -> tuple[Any, str]:
    """The spec and the checkpoint path of ``reference``'s source."""
    from .hf_import import ModelImportError, import_hf
    if args.hf is not None:
        if args.layer is None:
            raise CommandError("--hf needs --layer")
        try:
            spec = import_hf(args.hf, args.layer,
                             statistics=args.statistics).spec
            return spec, args.weights or args.hf
        except ModelImportError as err:
            raise CommandError(str(err)) from None
    if args.statistics:
        raise CommandError("--statistics goes with --hf; a --spec lists its "
                           "statistics itself")
    spec = _load_spec(args.spec)
    return spec, args.weights or os.path.dirname(os.path.abspath(args.spec))


def _load_spec(path: str) -> Any:
    """The :class:`~moe_mlir.emit.LayerSpec` of a layer.json (one-line
    errors)."""
    from .emit import LayerSpec
    try:
        with open(path, encoding="utf-8") as file:
            return LayerSpec.from_dict(json.load(file))
    except OSError as err:
        raise CommandError(f"cannot read {path}: {err.strerror}") from None
    except ValueError as err:  # JSON and spec errors
        raise CommandError(f"{path}: {err}") from None


def _reference(args: argparse.Namespace) -> None:
    from . import safetensors_io
    from .family_cases import max_error
    from .layer import layer
    spec, weights = _reference_layer(args)
    sampled = list(spec.sampled_inputs)
    if len(args.input) != 1 + len(sampled):
        names = ", ".join(["X"] + [name.upper() for name in sampled])
        raise CommandError(f"this layer takes {1 + len(sampled)} inputs "
                           f"({names}): give --input once per input, in "
                           "that order")
    x = _load_tokens(args.input[0], spec.hidden)
    samples = {name: _load_tokens(path)
               for name, path in zip(sampled, args.input[1:])}
    if "uniform" in samples:
        samples["uniform"] = samples["uniform"][:, 0]
    try:
        tensors = safetensors_io.load_checkpoint(weights, np.float64)
        operands = spec.collect(tensors)
    except (safetensors_io.SafetensorsError, OSError) as err:
        raise CommandError(str(err)) from None
    except KeyError as err:
        raise CommandError(f"{weights}: checkpoint has no tensor "
                           f"{err.args[0]!r}") from None
    except ValueError as err:
        raise CommandError(f"{weights}: {err}") from None
    try:
        ref, stats = layer(x, operands, spec.routing, spec.activation,
                           weight_inputs=spec.weight_inputs,
                           swiglu=spec.swiglu,
                           zero_experts=spec.zero_experts, **samples)
    except ValueError as err:
        raise CommandError(str(err)) from None
    results = [ref] + [_statistic_array(stats[name])
                       for name in spec.statistics]
    names = ["output"] + list(spec.statistics)
    for flag in ("output", "check"):
        paths = getattr(args, flag) or []
        if paths and len(paths) != len(results):
            raise CommandError(
                f"this layer has {len(results)} results ({', '.join(names)})"
                f": give --{flag} once per result, in that order")
    for path, value in zip(args.output or [], results):
        _save(path, value)
    if not args.check:
        return
    y = _load_tokens(args.check[0])
    if y.shape != ref.shape:
        raise CommandError(f"{args.check[0]}: shape {list(y.shape)} does not "
                           f"match the reference {list(ref.shape)}")
    rtol = args.rtol if args.rtol is not None else _default_rtol(spec)
    error, scale = max_error(y, ref)
    bound = rtol * scale
    verdict = "ok" if error <= bound else "MISMATCH"
    print(f"max|y - ref| = {error:.3e}, max|ref| = {scale:.3e}, bound "
          f"{rtol:g} * max|ref| = {bound:.3e}: {verdict}")
    if error > bound or not np.isfinite(error):
        raise CommandError(f"{args.check[0]} differs from the reference by "
                           f"{error:.3e} (> {bound:.3e})")
    for name, path, expected in zip(spec.statistics, args.check[1:],
                                    results[1:]):
        # Routing statistics come from the router alone, computed in f32.
        _check_statistic(name, path, expected,
                         args.rtol if args.rtol is not None else 1e-4)


def _default_rtol(spec) -> float:
    """docs/Semantics.md's bound for a layer: 2e-2 when an expert weight is
    bf16 or FP8 (a bf16 kernel may multiply it), 1e-4 otherwise."""
    from .family_cases import tolerance
    experts = ("expert_gate", "expert_up", "expert_down")
    bf16 = any(spec.dtypes.get(op) in ("bf16", "f8e4m3fn", "e2m1x2")
               for op in experts
               if op in spec.weights)
    return tolerance("bf16" if bf16 else "f32")


def _statistic_array(value: Any) -> np.ndarray:
    """A statistic as the compiled layer returns it: int64 counts, float32
    losses (0-d for scalars)."""
    array = np.asarray(value)
    return array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)


def _check_statistic(name: str, path: str, expected: np.ndarray,
                     rtol: float) -> None:
    """Counts must be equal; losses within ``rtol * max(1, |ref|)``."""
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise CommandError(f"{path}: not a readable .npy file ({err})") \
            from None
    if value.shape != expected.shape:
        raise CommandError(f"{path}: {name} has shape {list(value.shape)}, "
                           f"the reference {list(expected.shape)}")
    if expected.dtype.kind == "i":
        same = np.array_equal(value, expected)
        print(f"{name}: {value.tolist()} vs {expected.tolist()}: "
              f"{'ok' if same else 'MISMATCH'}")
        if not same:
            raise CommandError(f"{path}: {name} differs from the reference")
        return
    error = abs(float(value) - float(expected))
    bound = rtol * max(1.0, abs(float(expected)))
    print(f"{name}: {float(value):.6g} vs {float(expected):.6g}: "
          f"{'ok' if error <= bound else 'MISMATCH'}")
    if not error <= bound:
        raise CommandError(f"{path}: {name} differs from the reference by "
                           f"{error:.3e} (> {bound:.3e})")


def random_weights(spec, seed: int) -> tuple[dict, dict]:
    """Seeded random checkpoint tensors of a LayerSpec: ``(name -> float32
    array, name -> safetensors dtype)``. Fan-in scaled normals, so logits and
    activations are of order one; vectors (biases) are small normals. FP8
    weights are e4m3 bytes of unit normals and their block scales positive,
    with the fan-in scaling; MXFP4 ones (``e2m1x2``) random bytes of e2m1
    pairs and their e8m0 scales powers of two near the fan-in scaling."""
    from . import float8
    from .emit import SCALES
    rng = np.random.default_rng(seed)
    # Block scales of FP8 weights: positive, with the fan-in scaling the
    # FP8 values (unit normals, e4m3-rounded) leave out.
    scale_names = {name for op in SCALES if op in spec.weights
                   for name in spec.tensor_names(op)}
    tensors, dtypes = {}, {}
    for name, (shape, dtype) in spec.checkpoint_tensors().items():
        value = rng.standard_normal(shape) / np.sqrt(shape[-1])
        if len(shape) == 1:
            value = 0.1 * rng.standard_normal(shape)
        if name in scale_names:
            fan_in = shape[-1] * spec.weight_block[1]
            value = (0.5 + rng.random(shape)) / np.sqrt(fan_in)
        if dtype == "f8e4m3fn":
            tensors[name] = float8.encode(value * np.sqrt(shape[-1]))
            dtypes[name] = "F8_E4M3"
            continue
        if dtype == "u8":    # MXFP4: e2m1 pairs, or e8m0 scales
            if name in scale_names:
                # e2m1 values are of order 3: 2^e ~ 1 / (3 sqrt(fan-in)).
                fan_in = shape[-1] * spec.weight_block[1]
                center = 127 - round(np.log2(3 * np.sqrt(fan_in)))
                value = rng.integers(center - 1, center + 2, shape)
            else:
                value = rng.integers(0, 256, shape)
            tensors[name] = value.astype(np.uint8)
            dtypes[name] = "U8"
            continue
        tensors[name] = value.astype(np.float32)
        dtypes[name] = dtype.upper()
    return tensors, dtypes


def _random_weights(args: argparse.Namespace) -> None:
    from . import safetensors_io
    spec = _load_spec(args.spec)
    tensors, dtypes = random_weights(spec, args.seed)
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, safetensors_io.SINGLE_NAME)
    try:
        safetensors_io.save_file(path, tensors, dtypes)
    except OSError as err:
        raise CommandError(f"cannot write {path}: {err.strerror}") from None
    print(f"{path}: {len(tensors)} tensors", file=sys.stderr)


def _make_checkpoint(args: argparse.Namespace) -> None:
    from . import checkpoints
    try:
        config = checkpoints.hf_config(
            args.family, hidden=args.hidden, intermediate=args.intermediate,
            experts=args.experts, top_k=args.top_k, layers=args.layers,
            dtype=args.dtype, vocab=args.vocab)
    except ValueError as err:
        raise CommandError(str(err)) from None
    progress = None
    if sys.stderr.isatty() and not args.quiet:
        def progress(message: str) -> None:
            sys.stderr.write(f"\r{message}\x1b[K")
            sys.stderr.flush()
    try:
        shapes = checkpoints.write_checkpoint(args.output, config, args.dtype,
                                              args.seed, progress)
    except OSError as err:
        raise CommandError(f"cannot write {args.output}: "
                           f"{err.strerror}") from None
    except ValueError as err:
        raise CommandError(str(err)) from None
    if progress:
        sys.stderr.write("\r\x1b[K")
    if not args.quiet:
        size = os.path.getsize(os.path.join(args.output, "model.safetensors"))
        print(f"{args.output}: {args.family} config.json and "
              f"model.safetensors ({len(shapes)} tensors, {size / 1e6:.1f} "
              "MB)", file=sys.stderr)


def _moefy(args: argparse.Namespace) -> None:
    from . import dense, hf_import, moefy
    try:
        config = hf_import.read_config(args.hf)
        mlp = dense.read_dense_mlp(args.hf, args.layer, config)
    except (ValueError, OSError) as err:
        raise CommandError(str(err)) from None
    tokens = _load_tokens(args.calibration, mlp.hidden)
    if args.held_out:
        calibration, held_out = tokens, _load_tokens(args.held_out,
                                                     mlp.hidden)
    else:
        # The last quarter of the tokens is held out.
        split = tokens.shape[0] - tokens.shape[0] // 4
        calibration, held_out = tokens[:split], tokens[split:]
    for path, part in ((args.calibration, calibration),
                       (args.held_out or args.calibration, held_out)):
        if part.shape[0] == 0:
            raise CommandError(f"{path}: no tokens to "
                               + ("score" if part is calibration
                                  else "hold out"))
        if not np.all(np.isfinite(part)):
            raise CommandError(f"{path}: the tokens must be finite")
    try:
        importance = (moefy.neuron_importance(mlp, calibration)
                      if args.mode == "split" else None)
        moe = moefy.moefy(mlp, args.mode, args.experts, args.top_k,
                          args.shared, importance)
    except ValueError as err:
        raise CommandError(str(err)) from None
    rows = moefy.tradeoff(mlp, moe, held_out)
    details = {"moefy": {"mode": args.mode, "source": config["model_type"],
                         "layer": args.layer, "shared_neurons": args.shared,
                         "calibration_tokens": int(calibration.shape[0]),
                         "held_out_tokens": int(held_out.shape[0])}}
    try:
        moefy.write_moe_checkpoint(args.hf, args.output, config, args.layer,
                                   mlp, moe, details)
        with open(os.path.join(args.output, "moefy_tradeoff.json"), "w",
                  encoding="utf-8") as out:
            json.dump({**details["moefy"], "rows": rows}, out, indent=2)
        if importance is not None:
            _save(os.path.join(args.output, "neuron_importance.npy"),
                  importance.astype(np.float32))
        moefy.plot_tradeoff(rows, args.mode,
                            os.path.join(args.output, "moefy_tradeoff.png"))
    except OSError as err:
        raise CommandError(f"cannot write {args.output}: "
                           f"{err.strerror}") from None
    except ValueError as err:   # a tensor of the source that cannot be read
        raise CommandError(str(err)) from None
    print(moefy.format_tradeoff(rows, mlp, moe))


# -- the parser --------------------------------------------------------------

def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got "
                                         f"{text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, "
                                         f"got {text!r}")
    return value


def _statistics(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in STATISTICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown statistic {', '.join(unknown) or repr(text)} (expected "
            f"some of {', '.join(STATISTICS)})")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a statistic is listed twice in "
                                         f"{text!r}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="moe_mlir", description=(
        "MoE-MLIR: import Mixture-of-Experts layers from Hugging Face "
        "checkpoints, compile and run them, and compute the numpy reference."))
    parser.add_argument("--version", action="version",
                        version=f"moe_mlir {__version__}")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_Parser)

    hf = commands.add_parser(
        "import-hf", help="write the IR of one MoE layer of a Hugging Face "
        "checkpoint", description="Reads config.json and the safetensors "
        "headers of DIR and writes the module of the MoE block of layer N "
        "(routed + shared experts; no norm, no residual), its weights bound "
        "by checkpoint names, for moe-compile and moe-run --weights DIR.")
    hf.add_argument("directory", metavar="DIR",
                    help="the checkpoint directory (config.json + "
                    "model.safetensors or a sharded index)")
    hf.add_argument("--layer", required=True, metavar="N",
                    help="the decoder layer, or encoder.N / decoder.N for "
                    "encoder-decoder models (switch_transformers, nllb_moe)")
    hf.add_argument("-o", "--output", required=True, metavar="OUT.mlir",
                    help="where the module goes ('-': stdout)")
    hf.add_argument("--entry", default="forward",
                    help="the entry point's name (default: forward)")
    hf.add_argument("--statistics", type=_statistics, default=(),
                    metavar="NAME,...", help="routing statistics the entry "
                    "returns after its output (" + ", ".join(STATISTICS) +
                    ")")
    hf.add_argument("--importance", metavar="SCORES.npy",
                    help="dense MLPs (llama, mistral, qwen2): one score per "
                    "neuron, written as the layer's moe.neuron_importance "
                    "for moe-dense-to-moe (moefy writes "
                    "neuron_importance.npy)")
    hf.set_defaults(handler=_import_hf)

    comp = commands.add_parser(
        "compile", help="moe-compile a layer to a shared object",
        description="Compiles a module for the CPU with moe-compile.")
    comp.add_argument("input", metavar="IN.mlir")
    comp.add_argument("-o", "--output", required=True, metavar="OUT.so")
    comp.add_argument("--target", choices=("cpu", "cuda"), default="cpu",
                      help="cpu (default), or cuda: kernels for an NVIDIA "
                      "GPU (sm_90) driven by portable x86-64 host code")
    comp.add_argument("--mcpu", help="CPU to compile for (default: native; "
                      "x86-64-v2 with --target cuda)")
    comp.add_argument("--emit", choices=("so", "llvm", "mlir"), default="so",
                      help="what to write (default: so)")
    comp.add_argument("--row-align", type=_positive,
                      help="pad each expert's rows to a multiple of this")
    comp.add_argument("--ranks", type=_positive,
                      help="expert parallelism over this many MPI ranks "
                      "(run with mpirun -np RANKS; docs/ExpertParallelism.md)")
    comp.set_defaults(handler=_compile)

    run = commands.add_parser(
        "run", help="run a compiled layer on a .npy input",
        description="Runs an entry of a module (.so, or .mlir compiled on "
        "the fly) with moe-run, or in this process through the runtime's C "
        "API with --in-process.")
    run.add_argument("module", metavar="MODULE", help="LAYER.so or LAYER.mlir")
    run.add_argument("--weights", required=True, metavar="CHECKPOINT")
    run.add_argument("--input", required=True, action="append",
                     metavar="X.npy", help="float32 [T, H] tokens")
    run.add_argument("--output", required=True, action="append",
                     metavar="Y.npy", help="one per result of the entry, in "
                     "order (the output, then its statistics)")
    run.add_argument("--entry", help="the entry point (default: forward)")
    run.add_argument("--threads", type=_positive)
    run.add_argument("--device", type=int, metavar="N",
                     help="the GPU a CUDA module runs on (default 0)")
    run.add_argument("--bench", type=_positive, metavar="N",
                     help="time N runs (moe-run)")
    run.add_argument("--in-process", action="store_true",
                     help="run through the ctypes binding of the runtime")
    run.set_defaults(handler=_run)

    rnd = commands.add_parser(
        "random-weights", help="a random checkpoint for a layer description",
        description="Writes DIR/model.safetensors with a random tensor for "
        "every weight a layer.json binds (fan-in scaled normals, stored in "
        "the layer's dtypes), e.g. to run the examples/routing layers.")
    rnd.add_argument("--spec", required=True, metavar="LAYER.json")
    rnd.add_argument("-o", "--output", required=True, metavar="DIR")
    rnd.add_argument("--seed", type=int, default=0)
    rnd.set_defaults(handler=_random_weights)

    mk = commands.add_parser(
        "make-checkpoint",
        help="a Hugging Face-format checkpoint of a family, seeded weights",
        description="Writes DIR/config.json (as transformers writes it) and "
        "DIR/model.safetensors for a model of FAMILY with the given sizes: "
        "embeddings, attention, norms, and the MoE blocks and dense MLPs "
        "where the family's config puts them, with seeded fan-in scaled "
        "weights. import-hf reads it like a downloaded checkpoint.")
    mk.add_argument("--family", required=True,
                    choices=["mixtral", "qwen2_moe", "qwen3_moe",
                             "deepseek_v2", "deepseek_v3",
                             "switch_transformers", "nllb_moe", "llama",
                             "mistral", "qwen2"],
                    help="a MoE family, or a dense one (llama, mistral, "
                    "qwen2: no --experts or --top-k) for moefy")
    for flag, text in (("--hidden", "hidden size H"),
                       ("--intermediate", "expert intermediate size I (the "
                        "MLP's for a dense family)"),
                       ("--layers", "decoder layers (each stack for the "
                        "encoder-decoder families)")):
        mk.add_argument(flag, type=int, required=True, help=text)
    for flag, text in (("--experts", "routed experts E (MoE families)"),
                       ("--top-k", "experts per token K (MoE families)")):
        mk.add_argument(flag, type=int, default=0, help=text)
    mk.add_argument("--dtype", choices=["f32", "bf16", "f16", "fp8"],
                    default="f32",
                    help="storage dtype of the weights (default f32); fp8: "
                    "the expert projections in e4m3 with 128x128 block "
                    "scales (DeepSeek-V3's layout), the rest bf16")
    mk.add_argument("--vocab", type=int, default=1024,
                    help="vocabulary size (default 1024)")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--quiet", action="store_true",
                    help="print nothing on success")
    mk.add_argument("-o", "--output", required=True, metavar="DIR")
    mk.set_defaults(handler=_make_checkpoint)

    mfy = commands.add_parser(
        "moefy", help="a dense MLP of a checkpoint made into a MoE layer",
        description="Splits (MoEBERT) or upcycles the MLP of layer N of a "
        "Llama-, Qwen2- or Mistral-style dense checkpoint into E experts "
        "(moe-dense-to-moe's rewrite, docs/DenseToMoE.md), with neuron "
        "importance mean|a_j| * ||W_down[:, j]|| on the calibration tokens; "
        "writes OUT_DIR as a Qwen2-MoE checkpoint that import-hf reads, and "
        "prints the MoE layer's error against the dense one on held-out "
        "tokens for K = 1..E (also OUT_DIR/moefy_tradeoff.json and .png).")
    mfy.add_argument("--hf", required=True, metavar="DENSE_DIR")
    mfy.add_argument("--layer", required=True, type=int, metavar="N")
    mfy.add_argument("--mode", required=True, choices=["split", "upcycle"])
    mfy.add_argument("--experts", required=True, type=_positive, metavar="E")
    mfy.add_argument("--top-k", required=True, type=_positive, metavar="K",
                     help="experts per token of the written model")
    mfy.add_argument("--shared", type=_non_negative, default=0, metavar="S",
                     help="split: the S most important neurons are in "
                     "every expert (default 0)")
    mfy.add_argument("--calibration", required=True, metavar="X.npy",
                     help="[T, H] inputs of the MLP (the post-attention "
                     "norm's output)")
    mfy.add_argument("--held-out", metavar="X.npy",
                     help="[T, H] tokens the trade-off is measured on "
                     "(default: the last quarter of --calibration, which "
                     "then does not score)")
    mfy.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    mfy.set_defaults(handler=_moefy)

    ref = commands.add_parser(
        "reference", help="the float64 numpy reference of a layer",
        description="Computes the layer's output in float64 with the numpy "
        "reference (every routing scheme of docs/Routing.md) from the weights "
        "as stored; with --check, compares a result against it.")
    source = ref.add_mutually_exclusive_group(required=True)
    source.add_argument("--hf", metavar="DIR",
                        help="a Hugging Face checkpoint (with --layer)")
    source.add_argument("--spec", metavar="LAYER.json",
                        help="a layer description (the PyTorch importer's "
                        "layer.json)")
    ref.add_argument("--layer", metavar="N")
    ref.add_argument("--weights", metavar="CHECKPOINT",
                     help="the checkpoint (default: --hf DIR, or the "
                     "directory of --spec)")
    ref.add_argument("--input", required=True, action="append",
                     metavar="X.npy", help="the tokens, then the layer's "
                     "sampled inputs (noise [T, E], uniform [T, 1]) if any")
    ref.add_argument("--statistics", type=_statistics, default=(),
                     metavar="NAME,...", help="with --hf: the statistics "
                     "import-hf --statistics gave the layer")
    ref.add_argument("--output", action="append", metavar="REF.npy",
                     help="where the float64 reference goes; repeat it for "
                     "the layer's statistics, in order")
    ref.add_argument("--check", action="append", metavar="Y.npy",
                     help="compare this result with the reference (exit 1 "
                     "when max|y - ref| > RTOL * max|ref|); repeat it for "
                     "the statistics, in order (counts equal, losses within "
                     "RTOL * max(1, |ref|))")
    ref.add_argument("--rtol", type=float, default=None,
                     help="relative bound of --check (default: "
                     "docs/Semantics.md's for the layer, 2e-2 when an "
                     "expert weight is bf16, which a bf16 kernel may "
                     "multiply, 1e-4 otherwise)")
    ref.set_defaults(handler=_reference)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; the exit status."""
    args = _parser().parse_args(argv)
    try:
        args.handler(args)
    except CommandError as err:
        message = printable(" ".join(str(err).split("\n")))
        sys.stderr.write(f"moe_mlir {args.command}: error: {message}\n")
        return 1
    return 0
