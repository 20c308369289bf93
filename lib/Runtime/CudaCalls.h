//===- CudaCalls.h - The GPU calls of compiled modules ----------*- C++ -*-===//
//
// Internal to the runtime: the `mgpu*` functions MLIR's GPU-to-LLVM
// lowering makes compiled modules call, implemented over the CUDA driver
// in CudaCalls.cpp (exported by libMoERuntime.so and by the tools). C and
// C++: the runtime tests' stand-in modules include it too.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_RUNTIME_CUDACALLS_H
#define MOE_LIB_RUNTIME_CUDACALLS_H

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
extern "C" {
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#endif

void *mgpuModuleLoad(void *data, size_t size);
void *mgpuModuleLoadJIT(void *data, int optLevel);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t sharedBytes, void *stream,
                      void **params, void **extra, size_t paramCount);
/* A launch in thread block clusters of clusterX x clusterY x clusterZ CTAs
 * (gpu.launch_func with clusters). */
void mgpuLaunchClusterKernel(void *function, intptr_t clusterX,
                             intptr_t clusterY, intptr_t clusterZ,
                             intptr_t gridX, intptr_t gridY, intptr_t gridZ,
                             intptr_t blockX, intptr_t blockY, intptr_t blockZ,
                             int32_t sharedBytes, void *stream, void **params,
                             void **extra, size_t paramCount);
void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *stream);
void mgpuStreamSynchronize(void *stream);
void mgpuStreamWaitEvent(void *stream, void *event);
void *mgpuEventCreate(void);
void mgpuEventDestroy(void *event);
void mgpuEventSynchronize(void *event);
void mgpuEventRecord(void *event, void *stream);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *pointer, void *stream);
void mgpuMemcpy(void *destination, void *source, size_t bytes, void *stream);
void mgpuMemset32(void *destination, unsigned value, size_t count,
                  void *stream);
void mgpuMemset16(void *destination, unsigned short value, size_t count,
                  void *stream);
/// A TMA descriptor of a memref (`descriptor`: its ranked descriptor, of
/// rank `rank`) with boxes of `box` elements (outermost first) and the
/// CUtensorMap enums given: the device address of its 128 bytes, which
/// stay valid while a GPU module is loaded (nvgpu.tma.create.descriptor).
void *mgpuTensorMapEncodeTiledMemref(int64_t rank, void *descriptor,
                                     int64_t dataType, int64_t interleave,
                                     int64_t swizzle, int64_t l2Promotion,
                                     int64_t oobFill, int64_t *box);
/// The same descriptor written to `map` (128 bytes of host memory, 64-byte
/// aligned) for a kernel that takes it by value (a `__grid_constant__`
/// parameter, moe-pass-tensor-maps-by-value): nothing is allocated or
/// copied to the device, so that a call's own buffers can be described at
/// every call and the call stays capturable in a CUDA graph. On an error
/// `map` holds zeros and the error is recorded (the launch that follows
/// then does not run).
void mgpuTensorMapEncodeTiledMemrefInto(int64_t rank, void *descriptor,
                                        int64_t dataType, int64_t interleave,
                                        int64_t swizzle, int64_t l2Promotion,
                                        int64_t oobFill, int64_t *box,
                                        void *map);
void mgpuSetDefaultDevice(int32_t device);
/* The kernels the calling entry launches from now on (until its call ends)
 * may start before the kernel before them on the stream ends: each begins
 * with griddepcontrol.wait (moe-programmatic-launches). */
void mgpuAllowProgrammaticLaunches(void);
#ifdef __cplusplus
}
#endif

#endif // MOE_LIB_RUNTIME_CUDACALLS_H
