/* The entry point of a fake CUDA module (make_module.py gpu): what
 * moe-compile --target cuda's host code does, by hand. Its constructor
 * loads the module's GPU binary through the runtime's mgpu* calls as dlopen
 * runs it, its destructor unloads it; `forward` computes y = 2 x by a copy
 * to the device, a (stand-in) kernel launch and a copy back, on a stream of
 * its own. With the stand-in driver (fake_cuda.c) device memory is host
 * memory and kernels do nothing, so the "kernel" is done on the host
 * between the copies. H = 8. */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "CudaCalls.h" /* lib/Runtime: the mgpu* prototypes */

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
} MemRef2;

static char image[] = "fake GPU binary";
static void *module;

__attribute__((constructor)) static void loadGpuBinary(void) {
  module = mgpuModuleLoad(image, sizeof(image));
}

__attribute__((destructor)) static void unloadGpuBinary(void) {
  mgpuModuleUnload(module);
}

void _mlir_ciface_gpu_forward(MemRef2 *result, MemRef2 *x, MemRef2 *w) {
  (void)w;
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  size_t bytes = (size_t)(tokens * hidden) * sizeof(float);
  result->allocated = malloc(bytes ? bytes : 1);
  result->aligned = result->allocated;
  result->offset = 0;
  result->sizes[0] = tokens;
  result->sizes[1] = hidden;
  result->strides[0] = hidden;
  result->strides[1] = 1;
  void *stream = mgpuStreamCreate();
  float *device = mgpuMemAlloc(bytes, stream, 0);
  mgpuMemcpy(device, x->aligned + x->offset, bytes, stream);
  void *kernel = mgpuModuleGetFunction(module, "forward_kernel");
  void *params[] = {&device};
  mgpuLaunchKernel(kernel, 1, 1, 1, 64, 1, 1, 0, stream, params, NULL, 1);
  /* The stand-in driver runs no kernel: its work, on "device" memory. */
  if (device)
    for (size_t i = 0; i < bytes / sizeof(float); ++i)
      device[i] *= 2.0f;
  mgpuMemcpy(result->aligned, device, bytes, stream);
  mgpuStreamSynchronize(stream);
  mgpuMemFree(device, stream);
  mgpuStreamDestroy(stream);
}

/* The same layer compiled with device-io (make_module.py gpu-device-io):
 * x and the result are device memory, the call runs on the stream the
 * runtime hands it (its caller's) and leaves the result's buffer to it. */
void _mlir_ciface_gpu_forward_device(MemRef2 *result, MemRef2 *x, MemRef2 *w) {
  (void)w;
  int64_t tokens = x->sizes[0], hidden = x->sizes[1];
  size_t bytes = (size_t)(tokens * hidden) * sizeof(float);
  void *stream = mgpuStreamCreate();
  float *device = mgpuMemAlloc(bytes, stream, 0);
  void *kernel = mgpuModuleGetFunction(module, "forward_kernel");
  void *params[] = {&device};
  mgpuLaunchKernel(kernel, 1, 1, 1, 64, 1, 1, 0, stream, params, NULL, 1);
  if (device)
    for (size_t i = 0; i < bytes / sizeof(float); ++i)
      device[i] = 2.0f * x->aligned[x->offset + (int64_t)i];
  result->allocated = device;
  result->aligned = device;
  result->offset = 0;
  result->sizes[0] = tokens;
  result->sizes[1] = hidden;
  result->strides[0] = hidden;
  result->strides[1] = 1;
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
}
