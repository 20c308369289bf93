"""A device-io layer against the host-io layer of the same kernels.

usage:
  device_io_check.py HOST_MODULE DEVICE_MODULE CHECKPOINT [--tokens 0,1,7]

HOST_MODULE is a CUDA module taking host arrays (moe-compile --target
cuda), DEVICE_MODULE the same layer compiled with
--pipeline-options=device-io. For each T, the device-io layer runs on
device buffers of the CUDA driver (libcuda.so.1, or $MOE_CUDA_DRIVER) on a
stream of its own, once as called and once captured into a CUDA graph and
replayed on another input; each result must equal the host-io layer's on
the same input (the same kernels: to the last bit but for 1e-6 of the
largest value). One line per T; exit status 1 if any differs.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                *[os.pardir] * 4, "python"))

from moe_mlir import runtime  # noqa: E402


class Driver:
    """The few CUDA driver calls a caller of a device-io layer makes."""

    def __init__(self) -> None:
        path = os.environ.get("MOE_CUDA_DRIVER", "libcuda.so.1")
        self.lib = ctypes.CDLL(path)
        self.check("cuInit", 0)
        context = ctypes.c_void_p()
        self.check("cuDevicePrimaryCtxRetain", ctypes.byref(context), 0)
        self.check("cuCtxPushCurrent_v2", context)

    def check(self, name: str, *args) -> None:
        try:
            function = getattr(self.lib, name)
        except AttributeError:
            raise RuntimeError(f"the CUDA driver has no {name}") from None
        error = function(*args)
        if error != 0:
            raise RuntimeError(f"{name} failed with CUDA error {error}")

    def alloc(self, nbytes: int) -> int:
        pointer = ctypes.c_uint64()
        self.check("cuMemAlloc_v2", ctypes.byref(pointer),
                   ctypes.c_size_t(max(nbytes, 1)))
        return pointer.value

    def free(self, pointer: int) -> None:
        self.check("cuMemFree_v2", ctypes.c_uint64(pointer))

    def upload(self, pointer: int, array: np.ndarray) -> None:
        if array.nbytes:
            self.check("cuMemcpyHtoD_v2", ctypes.c_uint64(pointer),
                       array.ctypes.data_as(ctypes.c_void_p),
                       ctypes.c_size_t(array.nbytes))

    def download(self, array: np.ndarray, pointer: int) -> None:
        if array.nbytes:
            self.check("cuMemcpyDtoH_v2", array.ctypes.data_as(
                ctypes.c_void_p), ctypes.c_uint64(pointer),
                ctypes.c_size_t(array.nbytes))


def same(got: np.ndarray, want: np.ndarray) -> bool:
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return bool(np.all(np.abs(got - want) <= 1e-6 * scale))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host_module")
    parser.add_argument("device_module")
    parser.add_argument("checkpoint")
    parser.add_argument("--tokens", default="0,1,7,300")
    args = parser.parse_args()
    host = runtime.load_layer(args.host_module, args.checkpoint, device=0)
    device = runtime.load_layer(args.device_module, args.checkpoint,
                                device=0)
    if not device.device_io or host.device_io:
        print(f"{args.device_module} must be device-io, "
              f"{args.host_module} not")
        return 1
    try:
        cuda = Driver()
    except (OSError, RuntimeError) as err:
        print(f"device-io: {err}")
        return 1
    stream = ctypes.c_void_p()
    cuda.check("cuStreamCreate", ctypes.byref(stream), 1)
    rng = np.random.default_rng(0)
    failed = 0
    for tokens in (int(t) for t in args.tokens.split(",")):
        inputs = [rng.standard_normal((tokens, device.hidden_size),
                                      dtype=np.float32) for _ in range(2)]
        y = np.zeros((tokens, device.output_size), np.float32)
        dx, dy = cuda.alloc(inputs[0].nbytes), cuda.alloc(y.nbytes)
        verdicts = []
        try:
            # As called, then captured and replayed on the second input.
            cuda.upload(dx, inputs[0])
            device.run_cuda([dx], tokens, [dy], stream.value or 0)
            cuda.check("cuStreamSynchronize", stream)
            cuda.download(y, dy)
            verdicts.append(("called", same(y, host(inputs[0]))))
            if tokens:
                graph, instance = ctypes.c_void_p(), ctypes.c_void_p()
                cuda.check("cuStreamBeginCapture_v2", stream, 0)
                device.run_cuda([dx], tokens, [dy], stream.value or 0)
                cuda.check("cuStreamEndCapture", stream,
                           ctypes.byref(graph))
                cuda.check("cuGraphInstantiateWithFlags",
                           ctypes.byref(instance), graph,
                           ctypes.c_ulonglong(0))
                cuda.upload(dx, inputs[1])
                y[:] = 0
                cuda.check("cuGraphLaunch", instance, stream)
                cuda.check("cuStreamSynchronize", stream)
                cuda.download(y, dy)
                verdicts.append(("graph replay", same(y, host(inputs[1]))))
                cuda.check("cuGraphExecDestroy", instance)
                cuda.check("cuGraphDestroy", graph)
        except (RuntimeError, runtime.MoeRuntimeError) as err:
            verdicts.append((str(err), False))
        finally:
            cuda.free(dx)
            cuda.free(dy)
        ok = all(passed for _, passed in verdicts)
        failed += not ok
        print(f"device-io T = {tokens}: " + ", ".join(
            f"{what} {'ok' if passed else 'DIFFERS'}"
            for what, passed in verdicts))
    cuda.check("cuStreamDestroy_v2", stream)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
