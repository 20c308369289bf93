"""Run compiled layers in-process on numpy arrays: a ctypes binding of the
runtime's C API (include/moe/Runtime/moe_runtime.h).

::

    from moe_mlir.runtime import load_layer
    layer = load_layer("layer.so", "ckpt/")          # entry "forward"
    y = layer(x)                                     # x: [T, H] float32
    y = layer(x, threads=4)
    y, *stats = layer(x, noise)      # several inputs; several results

:class:`Module` is a loaded shared object made by ``moe-compile``,
:class:`Checkpoint` an open safetensors checkpoint, :class:`Entry` an entry
point with its weights bound (shapes and dtypes checked by the runtime). An
entry stays valid after its module and checkpoint are closed. Every failure
raises :class:`MoeRuntimeError` with the runtime's one-line message.

The library is found by :func:`moe_mlir.tools.find_runtime_library` (or
given to :func:`library`); it links no LLVM.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from .tools import find_runtime_library

__all__ = [
    "Checkpoint",
    "Entry",
    "Module",
    "MoeRuntimeError",
    "STATUS_CUDA_ERROR",
    "STATUS_CUDA_UNAVAILABLE",
    "STATUS_ERROR",
    "STATUS_OK",
    "api_version",
    "cuda_devices",
    "library",
    "load_layer",
    "runtime_version",
]


class MoeRuntimeError(RuntimeError):
    """A failed runtime call (the runtime's one-line message).

    ``status`` is the call's ``moe_status`` (:data:`STATUS_ERROR`,
    :data:`STATUS_CUDA_UNAVAILABLE`: no driver, GPU or such device,
    :data:`STATUS_CUDA_ERROR`: a CUDA call failed)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


STATUS_OK, STATUS_ERROR, STATUS_CUDA_UNAVAILABLE, STATUS_CUDA_ERROR = range(4)
"""The ``moe_status`` codes of moe_runtime.h."""


_LIBRARY: ctypes.CDLL | None = None
_HANDLE = ctypes.c_void_p
_FLOATS = ctypes.POINTER(ctypes.c_float)


def _declare(lib: ctypes.CDLL) -> None:
    """The C signatures of moe_runtime.h."""
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "moe_version": (ctypes.c_char_p, []),
        "moe_api_version": (ctypes.c_int, []),
        "moe_cuda_device_count": (ctypes.c_int, []),
        "moe_cuda_device_describe": (ctypes.c_char_p, [ctypes.c_int]),
        "moe_last_error": (ctypes.c_char_p, []),
        "moe_last_status": (ctypes.c_int, []),
        "moe_module_load": (_HANDLE, [ctypes.c_char_p]),
        "moe_module_load_on_device": (_HANDLE, [ctypes.c_char_p,
                                                ctypes.c_int]),
        "moe_module_target": (ctypes.c_char_p, [_HANDLE]),
        "moe_module_free": (None, [_HANDLE]),
        "moe_module_num_entries": (ctypes.c_int64, [_HANDLE]),
        "moe_module_entry_name": (ctypes.c_char_p, [_HANDLE, ctypes.c_int64]),
        "moe_checkpoint_open": (_HANDLE, [ctypes.c_char_p]),
        "moe_checkpoint_free": (None, [_HANDLE]),
        "moe_entry_bind": (_HANDLE, [_HANDLE, ctypes.c_char_p, _HANDLE]),
        "moe_entry_free": (None, [_HANDLE]),
        "moe_entry_hidden_size": (ctypes.c_int64, [_HANDLE]),
        "moe_entry_output_size": (ctypes.c_int64, [_HANDLE]),
        "moe_entry_token_parallel": (ctypes.c_int, [_HANDLE]),
        "moe_entry_packing_seconds": (ctypes.c_double, [_HANDLE]),
        "moe_entry_variant": (ctypes.c_char_p, [_HANDLE]),
        "moe_entry_run_f32": (ctypes.c_int, [_HANDLE, _FLOATS, ctypes.c_int64,
                                             ctypes.c_int64, _FLOATS,
                                             ctypes.c_int]),
        "moe_entry_num_inputs": (ctypes.c_int64, [_HANDLE]),
        "moe_entry_input_size": (ctypes.c_int64, [_HANDLE, ctypes.c_int64]),
        "moe_entry_num_results": (ctypes.c_int64, [_HANDLE]),
        "moe_entry_result_rank": (ctypes.c_int64, [_HANDLE, ctypes.c_int64]),
        "moe_entry_result_dim": (ctypes.c_int64, [_HANDLE, ctypes.c_int64,
                                                  ctypes.c_int64]),
        "moe_entry_result_dtype": (ctypes.c_char_p, [_HANDLE,
                                                     ctypes.c_int64]),
        "moe_entry_device_io": (ctypes.c_int, [_HANDLE]),
        "moe_entry_run_cuda": (ctypes.c_int, [_HANDLE,
                                              ctypes.POINTER(ctypes.c_void_p),
                                              ctypes.c_int64, ctypes.c_int64,
                                              ctypes.POINTER(ctypes.c_void_p),
                                              ctypes.c_int64,
                                              ctypes.c_void_p]),
        "moe_entry_run": (ctypes.c_int, [_HANDLE,
                                         ctypes.POINTER(_FLOATS),
                                         ctypes.c_int64, ctypes.c_int64,
                                         ctypes.POINTER(ctypes.c_void_p),
                                         ctypes.c_int64, ctypes.c_int]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def library(path: str | os.PathLike | None = None) -> ctypes.CDLL:
    """The loaded runtime library (found once, then shared).

    Args:
        path: load this file instead of searching (first call only).
    """
    global _LIBRARY
    if _LIBRARY is None:
        resolved = os.fspath(path) if path else find_runtime_library()
        try:
            lib = ctypes.CDLL(resolved)
        except OSError as err:
            raise MoeRuntimeError(f"cannot load {resolved}: {err}") from None
        _declare(lib)
        _LIBRARY = lib
    return _LIBRARY


def _fail(lib: ctypes.CDLL) -> MoeRuntimeError:
    message = lib.moe_last_error()
    status = lib.moe_last_status()
    return MoeRuntimeError(message.decode("utf-8", "replace") if message
                           else "unknown runtime error",
                           status if status != STATUS_OK else STATUS_ERROR)


def _path_bytes(path: str | os.PathLike) -> bytes:
    return os.fsencode(path)


class _Handle:
    """Owns a C handle and frees it once."""

    _free_name = ""
    _handle: int | None = None  # also when a constructor failed

    def __init__(self, handle: int) -> None:
        self._handle: int | None = handle

    @property
    def handle(self) -> int:
        if self._handle is None:
            raise MoeRuntimeError(f"{type(self).__name__} is closed")
        return self._handle

    def close(self) -> None:
        """Releases the handle (again: nothing)."""
        if self._handle is not None:
            getattr(library(), self._free_name)(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if _LIBRARY is not None:
            self.close()


class Module(_Handle):
    """A module compiled by ``moe-compile`` (a ``.so``), loaded; a CUDA
    module's GPU code on CUDA device ``device`` (0 when not given; a CPU
    module takes none)."""

    _free_name = "moe_module_free"

    def __init__(self, path: str | os.PathLike,
                 device: int | None = None) -> None:
        lib = library()
        if device is None:
            handle = lib.moe_module_load(_path_bytes(path))
        else:
            if isinstance(device, bool) or not isinstance(device, int) or \
                    not 0 <= device < 2 ** 31:
                raise MoeRuntimeError(f"device must be a GPU ordinal, got "
                                      f"{device!r}")
            handle = lib.moe_module_load_on_device(_path_bytes(path), device)
        if not handle:
            raise _fail(lib)
        super().__init__(handle)

    @property
    def target(self) -> str:
        """Where the module's code runs: ``"cpu"`` or ``"cuda"``."""
        lib = library()
        target = lib.moe_module_target(self.handle)
        if target is None:
            raise _fail(lib)
        return target.decode()

    @property
    def entries(self) -> list[str]:
        """The names of the module's entry points."""
        lib = library()
        count = lib.moe_module_num_entries(self.handle)
        if count < 0:
            raise _fail(lib)
        return [lib.moe_module_entry_name(self.handle, i).decode("utf-8")
                for i in range(count)]


class Checkpoint(_Handle):
    """An open safetensors checkpoint: a file, an index or a directory."""

    _free_name = "moe_checkpoint_free"

    def __init__(self, path: str | os.PathLike) -> None:
        lib = library()
        handle = lib.moe_checkpoint_open(_path_bytes(path))
        if not handle:
            raise _fail(lib)
        super().__init__(handle)


class Entry(_Handle):
    """An entry point of a module with its weights bound to a checkpoint.

    Calling it runs the layer: ``entry(x, *more_inputs, threads=1)`` with
    one ``[T, H_i]`` array per input (converted to C-ordered float32; e.g.
    ``x``, then noise or uniform samples) returns the float32
    ``[T, output_size]`` result, or a tuple of every result when the entry
    has several (the layer's output, then its routing statistics as int64
    or float32 arrays of their static shapes).
    """

    _free_name = "moe_entry_free"

    def __init__(self, module: Module, checkpoint: Checkpoint,
                 name: str = "forward") -> None:
        lib = library()
        handle = lib.moe_entry_bind(module.handle, name.encode("utf-8"),
                                    checkpoint.handle)
        if not handle:
            raise _fail(lib)
        super().__init__(handle)
        self.name = name

    def _query(self, function: str) -> int:
        lib = library()
        value = getattr(lib, function)(self.handle)
        if value < 0:
            raise _fail(lib)
        return int(value)

    @property
    def hidden_size(self) -> int:
        """H of the input ``[T, H]``."""
        return self._query("moe_entry_hidden_size")

    @property
    def output_size(self) -> int:
        """The width of the result ``[T, output_size]``."""
        return self._query("moe_entry_output_size")

    @property
    def token_parallel(self) -> bool:
        """Whether the runtime may split the tokens over threads."""
        return bool(self._query("moe_entry_token_parallel"))

    @property
    def packing_seconds(self) -> float:
        """Seconds binding spent packing weights (once, not per call)."""
        lib = library()
        value = lib.moe_entry_packing_seconds(self.handle)
        if value < 0:
            raise _fail(lib)
        return float(value)

    @property
    def variant(self) -> str:
        """The kernel variant this CPU runs ("" for a module with one)."""
        lib = library()
        value = lib.moe_entry_variant(self.handle)
        if value is None:
            raise _fail(lib)
        return value.decode()

    @property
    def num_inputs(self) -> int:
        """The number of ``[T, H_i]`` inputs."""
        return self._query("moe_entry_num_inputs")

    @property
    def device_io(self) -> bool:
        """Whether the entry takes and returns device memory (a CUDA module
        compiled with ``device-io``): call it with :meth:`run_cuda`."""
        return bool(self._query("moe_entry_device_io"))

    def result_types(self, tokens: int) -> list[tuple[tuple[int, ...],
                                                      np.dtype]]:
        """``(shape, dtype)`` of every result for ``tokens`` tokens."""
        return self._result_types(tokens)

    def run_cuda(self, inputs: list[int], tokens: int, outputs: list[int],
                 stream: int = 0) -> None:
        """Enqueues a device-io entry on CUDA stream ``stream`` (a
        ``CUstream`` as an integer, e.g. PyTorch's
        ``torch.cuda.current_stream().cuda_stream``; 0 is the legacy
        default stream) and returns without waiting.

        Args:
            inputs: device addresses of the float32 ``[tokens, H_i]``
                inputs (row major, e.g. ``tensor.data_ptr()``).
            tokens: T.
            outputs: device addresses of buffers for the results, shaped
                and typed as :meth:`result_types` says.
            stream: the stream; a stream being captured into a CUDA graph
                (``torch.cuda.graph``) captures the call, after one call
                outside the capture.
        """
        lib = library()
        input_pointers = (ctypes.c_void_p * max(1, len(inputs)))(*inputs)
        output_pointers = (ctypes.c_void_p * max(1, len(outputs)))(*outputs)
        status = lib.moe_entry_run_cuda(self.handle, input_pointers,
                                        len(inputs), int(tokens),
                                        output_pointers, len(outputs),
                                        ctypes.c_void_p(int(stream)))
        if status != 0:
            raise _fail(lib)

    def _result_types(self, tokens: int) -> list[tuple[tuple[int, ...],
                                                       np.dtype]]:
        """``(shape, dtype)`` of every result for ``tokens`` tokens."""
        lib = library()
        types = []
        for r in range(self._query("moe_entry_num_results")):
            rank = lib.moe_entry_result_rank(self.handle, r)
            dtype = lib.moe_entry_result_dtype(self.handle, r)
            if rank < 0 or dtype is None:
                raise _fail(lib)
            dims = [lib.moe_entry_result_dim(self.handle, r, d)
                    for d in range(rank)]
            if any(d < -1 for d in dims):
                raise _fail(lib)
            shape = tuple(tokens if d == -1 else d for d in dims)
            types.append((shape, np.dtype(_DTYPES[dtype.decode()])))
        return types

    def __call__(self, *inputs: Any, threads: int = 1) -> Any:
        arrays = []
        for index, value in enumerate(inputs):
            value = np.asarray(value)
            label = "input" if len(inputs) == 1 else f"input {index}"
            if value.ndim != 2:
                raise MoeRuntimeError(f"{label} must be [T, H], got shape "
                                      f"{list(value.shape)}")
            if value.dtype.kind != "f":
                raise MoeRuntimeError(f"{label} must be floating point, got "
                                      f"{value.dtype}")
            arrays.append(np.ascontiguousarray(value, dtype=np.float32))
        tokens = arrays[0].shape[0] if arrays else 0
        for index, value in enumerate(arrays):
            expected = library().moe_entry_input_size(self.handle, index)
            if expected >= 0 and value.shape[1] != expected:
                raise MoeRuntimeError(
                    f"input {index} of '{self.name}' must be [T, {expected}] "
                    f"float32, got {list(value.shape)}")
        results = [np.zeros(shape, dtype=dtype)
                   for shape, dtype in self._result_types(tokens)]
        lib = library()
        input_pointers = (_FLOATS * max(1, len(arrays)))(
            *[a.ctypes.data_as(_FLOATS) for a in arrays])
        output_pointers = (ctypes.c_void_p * max(1, len(results)))(
            *[r.ctypes.data for r in results])
        status = lib.moe_entry_run(self.handle, input_pointers, len(arrays),
                                   tokens, output_pointers, len(results),
                                   int(threads))
        if status != 0:
            raise _fail(lib)
        return results[0] if len(results) == 1 else tuple(results)


_DTYPES = {"f32": np.float32, "i32": np.int32, "i64": np.int64}


def runtime_version() -> str:
    """The version of the loaded runtime library (``moe_version()``)."""
    return library().moe_version().decode()


def api_version() -> int:
    """The C API version of the loaded runtime library
    (``moe_api_version()``, ``MOE_API_VERSION``)."""
    return library().moe_api_version()


def cuda_devices() -> list[str]:
    """One line per CUDA GPU (``"0: NVIDIA H200, sm_90, 140 GiB, CUDA driver
    13.0"``); empty when there is none.

    Raises:
        MoeRuntimeError: no CUDA driver (the runtime loads ``libcuda.so.1``
            when asked, never at import), or the driver fails.
    """
    lib = library()
    count = lib.moe_cuda_device_count()
    if count < 0:
        raise _fail(lib)
    lines = []
    for device in range(count):
        line = lib.moe_cuda_device_describe(device)
        if line is None:
            raise _fail(lib)
        lines.append(line.decode("utf-8", "replace"))
    return lines


def load_layer(module: str | os.PathLike, weights: str | os.PathLike,
               entry: str = "forward", device: int | None = None) -> Entry:
    """Load a compiled module (a CUDA module on GPU ``device``), bind
    ``entry`` to the checkpoint ``weights``.

    The module and checkpoint handles are released at once; the entry keeps
    what it needs.
    """
    with Module(module, device) as loaded, Checkpoint(weights) as checkpoint:
        return Entry(loaded, checkpoint, entry)
