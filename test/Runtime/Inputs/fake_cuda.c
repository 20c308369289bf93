/* A stand-in for the CUDA driver library (libcuda.so.1), loaded by the
 * runtime through MOE_CUDA_DRIVER, so that every path of the GPU calls runs
 * without a GPU. One fake device, "Fake GPU" (sm_90, 80 GiB); device memory
 * is zero-filled host memory; modules, functions, streams and events are
 * dummies; kernels do nothing. FAKE_CUDA (a comma-separated list) makes
 * things fail:
 *   no-device     cuInit fails with CUDA_ERROR_NO_DEVICE
 *   zero-devices  cuInit succeeds, no device
 *   oom           cuMemAlloc fails with CUDA_ERROR_OUT_OF_MEMORY
 *   launch        cuLaunchKernel fails with CUDA_ERROR_LAUNCH_FAILED
 *   no-kernel     cuModuleGetFunction fails with CUDA_ERROR_NOT_FOUND
 *   bad-image     cuModuleLoadData fails with CUDA_ERROR_INVALID_IMAGE
 *   no-pools      the device has no memory pools (the stream-ordered
 *                 allocator's functions exist but are not for it)
 * Built with -DOMIT_SYMBOL, it lacks cuMemsetD16Async (an old driver);
 * with -DOMIT_TMA, cuTensorMapEncodeTiled (a driver before CUDA 12); with
 * -DOMIT_POOL, the stream-ordered allocator (before CUDA 11.2); with
 * -DOMIT_LAUNCH_EX, cuLaunchKernelEx (before CUDA 12.0). cuLaunchKernelEx
 * takes the programmatic stream serialization attribute (its launches are
 * traced as "programmatic", and the emulator fails such a kernel's thread
 * that touches global memory before its griddepcontrol.wait) and the
 * cluster dimension (traced as "cluster X Y Z"; the emulator runs each
 * cluster's CTAs together).
 * With FAKE_CUDA_TRACE set, it prints each launch (kernel, grid, block,
 * dynamic shared memory), copy, stream-ordered allocation and free and
 * synchronization to stderr.
 * Stream capture: between cuStreamBeginCapture and cuStreamEndCapture,
 * launches, copies and memsets on the captured stream are recorded into
 * the graph (traced as "capture ..."), not run; cuGraphLaunch runs them.
 * As CUDA's global capture mode does, calls that would wait or allocate
 * outside the stream's order (synchronizations, cuMemAlloc, cuMemFree,
 * cuMemcpyHtoD) fail with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, and
 * work on another stream fails with CUDA_ERROR_STREAM_CAPTURE_ISOLATION.
 * It counts what is still allocated; fake_cuda_live() reports it. With
 * FAKE_CUDA_LEAKS set, it prints at exit the device memory, streams and
 * events still alive (modules are unloaded by their own destructors, which
 * may run later).
 * Built with -DFAKE_CUDA_EMULATOR and linked with the PTX emulator
 * (test/CUDAEmulator), it runs the kernels: modules must be PTX text
 * (--pipeline-options=format=isa), launches and graph replays interpret
 * them over the device memory (host memory), a kernel that fails (a
 * deadlock, an access outside every allocation, an unsupported
 * instruction) fails its launch with CUDA_ERROR_LAUNCH_FAILED after one
 * line on stderr, and tensor maps hold what the emulator's TMA reads. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch_config.h"
#ifdef FAKE_CUDA_EMULATOR
#include "../../CUDAEmulator/PtxEmulator.h"
#endif

typedef int CUresult;
enum {
  SUCCESS = 0,
  INVALID_VALUE = 1,
  OUT_OF_MEMORY = 2,
  NO_DEVICE = 100,
  INVALID_IMAGE = 200,
  NOT_FOUND = 500,
  LAUNCH_FAILED = 719,
  CAPTURE_UNSUPPORTED = 900,
  CAPTURE_ISOLATION = 905,
};

/* Whether FAKE_CUDA (a comma-separated list) names `what`. */
static int failing(const char *what) {
  const char *mode = getenv("FAKE_CUDA");
  size_t length = strlen(what);
  while (mode && *mode) {
    if (strncmp(mode, what, length) == 0 &&
        (mode[length] == ',' || mode[length] == 0))
      return 1;
    mode = strchr(mode, ',');
    if (mode)
      ++mode;
  }
  return 0;
}

static int live; /* allocations, modules, streams and events alive */
static int liveModules;
int fake_cuda_live(void) { return live; }

__attribute__((destructor)) static void reportLeaks(void) {
  if (getenv("FAKE_CUDA_LEAKS"))
    fprintf(stderr, "fake_cuda: %d alive at exit\n", live - liveModules);
}

static const char *errorName(CUresult error) {
  switch (error) {
  case SUCCESS: return "CUDA_SUCCESS";
  case INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
  case OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
  case NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
  case INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
  case NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
  case LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
  case CAPTURE_UNSUPPORTED:
    return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED";
  case CAPTURE_ISOLATION:
    return "CUDA_ERROR_STREAM_CAPTURE_ISOLATION";
  }
  return 0;
}

static const char *errorText(CUresult error) {
  switch (error) {
  case SUCCESS: return "no error";
  case INVALID_VALUE: return "invalid argument";
  case OUT_OF_MEMORY: return "out of memory";
  case NO_DEVICE: return "no CUDA-capable device is detected";
  case INVALID_IMAGE: return "device kernel image is invalid";
  case NOT_FOUND: return "named symbol not found";
  case LAUNCH_FAILED: return "unspecified launch failure";
  case CAPTURE_UNSUPPORTED:
    return "operation not permitted when stream is capturing";
  case CAPTURE_ISOLATION:
    return "operation would make the legacy stream depend on a capturing "
           "blocking stream";
  }
  return 0;
}

CUresult cuGetErrorName(CUresult error, const char **name) {
  *name = errorName(error);
  return *name ? SUCCESS : 1;
}
CUresult cuGetErrorString(CUresult error, const char **text) {
  *text = errorText(error);
  return *text ? SUCCESS : 1;
}
CUresult cuInit(unsigned flags) {
  (void)flags;
  return failing("no-device") ? NO_DEVICE : SUCCESS;
}
CUresult cuDriverGetVersion(int *version) {
  *version = 13000;
  return SUCCESS;
}
CUresult cuDeviceGetCount(int *count) {
  *count = failing("zero-devices") ? 0 : 1;
  return SUCCESS;
}
CUresult cuDeviceGet(int *device, int ordinal) {
  *device = ordinal;
  return SUCCESS;
}
CUresult cuDeviceGetName(char *name, int length, int device) {
  (void)device;
  strncpy(name, "Fake GPU", (size_t)length);
  return SUCCESS;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int device) {
  (void)device;
  /* Compute capability 9.x; memory pools unless FAKE_CUDA=no-pools. */
  *value = attribute == 75 ? 9 : attribute == 115 ? !failing("no-pools") : 0;
  return SUCCESS;
}
CUresult cuDeviceTotalMem_v2(size_t *bytes, int device) {
  (void)device;
  *bytes = (size_t)80 << 30;
  return SUCCESS;
}
static int context;
CUresult cuDevicePrimaryCtxRetain(void **ctx, int device) {
  (void)device;
  *ctx = &context;
  return SUCCESS;
}
CUresult cuCtxPushCurrent_v2(void *ctx) {
  (void)ctx;
  return SUCCESS;
}
CUresult cuCtxPopCurrent_v2(void **ctx) {
  if (ctx)
    *ctx = &context;
  return SUCCESS;
}
CUresult cuModuleLoadData(void **module, const void *image) {
  (void)image;
  if (failing("bad-image"))
    return INVALID_IMAGE;
#ifdef FAKE_CUDA_EMULATOR
  char error[512];
  /* FAKE_CUDA_PTX_DIR: where to write each module's PTX (module_N.ptx),
   * to read the lines the emulator's errors name. */
  static int modulesLoaded;
  const char *dumpDir = getenv("FAKE_CUDA_PTX_DIR");
  if (dumpDir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/module_%d.ptx", dumpDir, modulesLoaded++);
    FILE *file = fopen(path, "w");
    if (file) {
      fputs((const char *)image, file);
      fclose(file);
    }
  }
  *module = ptxemu_load((const char *)image, error, sizeof error);
  if (!*module) {
    fprintf(stderr, "fake_cuda: emulator: %s\n", error);
    return INVALID_IMAGE;
  }
#else
  *module = malloc(1);
#endif
  ++live;
  ++liveModules;
  return SUCCESS;
}
CUresult cuModuleUnload(void *module) {
#ifdef FAKE_CUDA_EMULATOR
  ptxemu_unload(module);
#else
  free(module);
#endif
  --live;
  --liveModules;
  return SUCCESS;
}
static int tracing(void) { return getenv("FAKE_CUDA_TRACE") != 0; }

/* The stream being captured (one at a time), and the graph's nodes: a
 * launch (its kernel's name) or a copy. */
static void *capturing;
enum { NODE_LAUNCH, NODE_COPY };
struct Node {
  int kind;
  const char *name;
  unsigned long long dst, src;
  size_t bytes;
  void *launch; /* the emulator's prepared launch */
};
static struct Node nodes[4096];
static int numNodes;
/* What the stream-ordered allocator gave the captured graph: freed with it. */
static void *graphMemory[4096];
static int numGraphMemory;
/* SUCCESS when `stream` may take work now (recording it if captured). */
static CUresult captureCheck(void *stream) {
  if (!capturing || stream == capturing)
    return SUCCESS;
  return CAPTURE_ISOLATION;
}
static int record(struct Node node) {
  if (!capturing)
    return 0;
  if (numNodes < 4096)
    nodes[numNodes++] = node;
  if (tracing())
    fprintf(stderr, "fake_cuda: capture %s\n",
            node.kind == NODE_LAUNCH ? node.name : "copy");
  return 1;
}
CUresult cuStreamBeginCapture_v2(void *stream, int mode) {
  (void)mode;
  capturing = stream;
  numNodes = 0;
  return SUCCESS;
}
CUresult cuStreamEndCapture(void *stream, void **graph) {
  if (stream != capturing)
    return CAPTURE_ISOLATION;
  capturing = 0;
  *graph = malloc(1);
  ++live;
  return SUCCESS;
}
CUresult cuStreamIsCapturing(void *stream, int *status) {
  *status = capturing && stream == capturing;
  return SUCCESS;
}
CUresult cuGraphInstantiateWithFlags(void **exec, void *graph,
                                     unsigned long long flags) {
  (void)graph;
  (void)flags;
  *exec = malloc(1);
  ++live;
  return SUCCESS;
}
CUresult cuGraphDestroy(void *graph) {
  free(graph);
  --live;
  for (int i = 0; i < numGraphMemory; ++i) {
#ifdef FAKE_CUDA_EMULATOR
    ptxemu_untrack(graphMemory[i]);
#endif
    free(graphMemory[i]);
    --live;
  }
  numGraphMemory = 0;
#ifdef FAKE_CUDA_EMULATOR
  for (int i = 0; i < numNodes; ++i)
    if (nodes[i].launch)
      ptxemu_release(nodes[i].launch);
  numNodes = 0;
#endif
  return SUCCESS;
}
CUresult cuGraphExecDestroy(void *exec) {
  free(exec);
  --live;
  return SUCCESS;
}
CUresult cuGraphLaunch(void *exec, void *stream) {
  (void)exec;
  (void)stream;
  if (tracing())
    fprintf(stderr, "fake_cuda: graph launch (%d nodes)\n", numNodes);
  for (int i = 0; i < numNodes; ++i) {
    if (nodes[i].kind == NODE_COPY)
      memcpy((void *)(size_t)nodes[i].dst, (const void *)(size_t)nodes[i].src,
             nodes[i].bytes);
#ifdef FAKE_CUDA_EMULATOR
    char error[512];
    if (nodes[i].launch && ptxemu_run(nodes[i].launch, error, sizeof error)) {
      fprintf(stderr, "fake_cuda: emulator: %s\n", error);
      return LAUNCH_FAILED;
    }
#endif
  }
  return SUCCESS;
}
/* A function is its name (the launches' traces say which ran), kept in a
 * table of the names asked for (with the emulator, per module, and with
 * the emulator's kernel after it). */
static char functions[256][64];
static void *functionModules[256];
#ifdef FAKE_CUDA_EMULATOR
static void *emulated[256];
#endif
CUresult cuModuleGetFunction(void **out, void *module, const char *name) {
  if (failing("no-kernel"))
    return NOT_FOUND;
#ifndef FAKE_CUDA_EMULATOR
  module = 0;
#endif
  int slot = 0;
  while (slot < 255 && functions[slot][0] &&
         (strncmp(functions[slot], name, sizeof functions[slot] - 1) != 0 ||
          functionModules[slot] != module))
    ++slot;
  strncpy(functions[slot], name, sizeof functions[slot] - 1);
  functionModules[slot] = module;
#ifdef FAKE_CUDA_EMULATOR
  emulated[slot] = ptxemu_function(module, name);
  if (!emulated[slot])
    return NOT_FOUND;
#endif
  *out = functions[slot];
  return SUCCESS;
}
/* A launch, programmatic (may start before the kernel before it ends) or
 * not. */
static CUresult launch(void *f, unsigned gx, unsigned gy, unsigned gz,
                       unsigned bx, unsigned by, unsigned bz, unsigned smem,
                       void *stream, void **params, int programmatic,
                       const unsigned cluster[3]) {
  (void)params;
  if (captureCheck(stream))
    return captureCheck(stream);
  if (failing("launch"))
    return LAUNCH_FAILED;
  struct Node node = {NODE_LAUNCH, (const char *)f, 0, 0, 0, 0};
#ifdef FAKE_CUDA_EMULATOR
  unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  node.launch = ptxemu_prepare(emulated[(char(*)[64])f - functions], grid,
                               block, smem, params);
  if (programmatic)
    ptxemu_set_programmatic(node.launch);
  ptxemu_set_cluster(node.launch, cluster);
#endif
  if (record(node))
    return SUCCESS;
  if (tracing())
  {
    char clustered[48] = "";
    if (cluster[0] * cluster[1] * cluster[2] != 1)
      snprintf(clustered, sizeof clustered, " cluster %u %u %u", cluster[0],
               cluster[1], cluster[2]);
    fprintf(stderr,
            "fake_cuda: launch %s grid %u %u %u block %u %u %u smem %u%s%s\n",
            (const char *)f, gx, gy, gz, bx, by, bz, smem,
            programmatic ? " programmatic" : "", clustered);
  }
#ifdef FAKE_CUDA_EMULATOR
  char error[512];
  int failed = ptxemu_run(node.launch, error, sizeof error);
  ptxemu_release(node.launch);
  if (failed) {
    fprintf(stderr, "fake_cuda: emulator: %s\n", error);
    return LAUNCH_FAILED;
  }
#endif
  return SUCCESS;
}
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz,
                        unsigned bx, unsigned by, unsigned bz, unsigned smem,
                        void *stream, void **params, void **extra) {
  (void)extra;
  static const unsigned single[3] = {1, 1, 1};
  return launch(f, gx, gy, gz, bx, by, bz, smem, stream, params, 0, single);
}
#ifndef OMIT_LAUNCH_EX
CUresult cuLaunchKernelEx(const struct LaunchConfig *config, void *f,
                          void **params, void **extra) {
  (void)extra;
  if (!config || (config->numAttributes && !config->attributes))
    return INVALID_VALUE;
  int programmatic = 0;
  unsigned cluster[3] = {1, 1, 1};
  for (unsigned i = 0; i < config->numAttributes; ++i) {
    const struct LaunchAttribute *attribute = &config->attributes[i];
    if (attribute->id == LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION) {
      programmatic = attribute->value.value != 0;
    } else if (attribute->id == LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) {
      /* CUDA refuses a cluster that does not divide the grid. */
      const unsigned *dims = attribute->value.cluster;
      unsigned grid[3] = {config->gridX, config->gridY, config->gridZ};
      for (int d = 0; d < 3; ++d) {
        if (dims[d] == 0 || grid[d] % dims[d])
          return INVALID_VALUE;
        cluster[d] = dims[d];
      }
    } else {
      return INVALID_VALUE;
    }
  }
  return launch(f, config->gridX, config->gridY, config->gridZ,
                config->blockX, config->blockY, config->blockZ,
                config->sharedBytes, config->stream, params, programmatic,
                cluster);
}
#endif
CUresult cuStreamCreate(void **stream, unsigned flags) {
  (void)flags;
  *stream = malloc(1);
  ++live;
  return SUCCESS;
}
CUresult cuStreamDestroy_v2(void *stream) {
  free(stream);
  --live;
  return SUCCESS;
}
CUresult cuStreamSynchronize(void *stream) {
  (void)stream;
  if (capturing)
    return CAPTURE_UNSUPPORTED;
  if (tracing())
    fprintf(stderr, "fake_cuda: synchronize\n");
  return SUCCESS;
}
CUresult cuStreamWaitEvent(void *stream, void *event, unsigned flags) {
  (void)stream; (void)event; (void)flags;
  return SUCCESS;
}
CUresult cuEventCreate(void **event, unsigned flags) {
  (void)flags;
  *event = malloc(1);
  ++live;
  return SUCCESS;
}
CUresult cuEventDestroy_v2(void *event) {
  free(event);
  --live;
  return SUCCESS;
}
CUresult cuEventRecord(void *event, void *stream) {
  (void)event; (void)stream;
  return SUCCESS;
}
CUresult cuEventSynchronize(void *event) {
  (void)event;
  if (capturing)
    return CAPTURE_UNSUPPORTED;
  if (tracing())
    fprintf(stderr, "fake_cuda: synchronize\n");
  return SUCCESS;
}
CUresult cuMemAlloc_v2(unsigned long long *pointer, size_t bytes) {
  if (capturing)
    return CAPTURE_UNSUPPORTED;
  if (failing("oom"))
    return OUT_OF_MEMORY;
  *pointer = (unsigned long long)(size_t)calloc(1, bytes ? bytes : 1);
  ++live;
#ifdef FAKE_CUDA_EMULATOR
  ptxemu_track((void *)(size_t)*pointer, bytes);
#endif
  return SUCCESS;
}
CUresult cuMemFree_v2(unsigned long long pointer) {
  if (capturing)
    return CAPTURE_UNSUPPORTED;
#ifdef FAKE_CUDA_EMULATOR
  ptxemu_untrack((void *)(size_t)pointer);
#endif
  free((void *)(size_t)pointer);
  --live;
  return SUCCESS;
}
CUresult cuMemcpyAsync(unsigned long long dst, unsigned long long src,
                       size_t bytes, void *stream) {
  if (captureCheck(stream))
    return captureCheck(stream);
  struct Node node = {NODE_COPY, 0, dst, src, bytes, 0};
  if (record(node))
    return SUCCESS;
  if (tracing())
    fprintf(stderr, "fake_cuda: copy %zu bytes\n", bytes);
  memcpy((void *)(size_t)dst, (const void *)(size_t)src, bytes);
  return SUCCESS;
}
CUresult cuMemsetD32Async(unsigned long long dst, unsigned value, size_t count,
                          void *stream) {
  (void)stream;
  unsigned *words = (unsigned *)(size_t)dst;
  for (size_t i = 0; i < count; ++i)
    words[i] = value;
  return SUCCESS;
}
CUresult cuMemcpyHtoD_v2(unsigned long long dst, const void *src,
                         size_t bytes) {
  if (capturing)
    return CAPTURE_UNSUPPORTED;
  memcpy((void *)(size_t)dst, src, bytes);
  return SUCCESS;
}
CUresult cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t bytes) {
  if (capturing)
    return CAPTURE_UNSUPPORTED;
  memcpy(dst, (const void *)(size_t)src, bytes);
  return SUCCESS;
}
CUresult cuFuncSetAttribute(void *f, int attribute, int value) {
  (void)f; (void)attribute; (void)value;
  return SUCCESS;
}
#ifndef OMIT_TMA
/* A map of the address and the box: what a kernel that does nothing needs. */
CUresult cuTensorMapEncodeTiled(void *map, int type, unsigned rank,
                                void *address, const unsigned long long *dims,
                                const unsigned long long *strides,
                                const unsigned *box, const unsigned *steps,
                                int interleave, int swizzle, int l2, int oob) {
  (void)type; (void)dims; (void)strides; (void)steps; (void)interleave;
  (void)swizzle; (void)l2; (void)oob;
#ifdef FAKE_CUDA_EMULATOR
  ptxemu_encode_tensor_map(map, type, rank, address, dims, strides, box,
                           swizzle, oob);
#else
  memset(map, 0, 128);
  memcpy(map, &address, sizeof address);
  memcpy((char *)map + 8, box, rank * sizeof *box);
#endif
  return SUCCESS;
}
#endif
#ifndef OMIT_SYMBOL
CUresult cuMemsetD16Async(unsigned long long dst, unsigned short value,
                          size_t count, void *stream) {
  (void)stream;
  unsigned short *halves = (unsigned short *)(size_t)dst;
  for (size_t i = 0; i < count; ++i)
    halves[i] = value;
  return SUCCESS;
}
#endif
CUresult cuCtxSynchronize(void) {
  if (capturing)
    return CAPTURE_UNSUPPORTED;
  if (tracing())
    fprintf(stderr, "fake_cuda: synchronize the context\n");
  return SUCCESS;
}
#ifndef OMIT_POOL
/* The stream-ordered allocator: memory allocated while a stream is
 * captured belongs to the graph (reused by each of its launches); frees of
 * it are recorded, not done. */
static int pool;
CUresult cuDeviceGetDefaultMemPool(void **out, int device) {
  (void)device;
  *out = &pool;
  return SUCCESS;
}
CUresult cuMemPoolSetAttribute(void *memPool, int attribute, void *value) {
  (void)memPool;
  (void)value;
  if (tracing())
    fprintf(stderr, "fake_cuda: pool attribute %d\n", attribute);
  return SUCCESS;
}
CUresult cuMemAllocAsync(unsigned long long *pointer, size_t bytes,
                         void *stream) {
  if (captureCheck(stream))
    return captureCheck(stream);
  if (failing("oom"))
    return OUT_OF_MEMORY;
  *pointer = (unsigned long long)(size_t)calloc(1, bytes ? bytes : 1);
  ++live;
#ifdef FAKE_CUDA_EMULATOR
  ptxemu_track((void *)(size_t)*pointer, bytes);
#endif
  if (capturing && numGraphMemory < 4096)
    graphMemory[numGraphMemory++] = (void *)(size_t)*pointer;
  if (tracing())
    fprintf(stderr, "fake_cuda: %salloc %zu bytes in stream order\n",
            capturing ? "capture " : "", bytes);
  return SUCCESS;
}
CUresult cuMemFreeAsync(unsigned long long pointer, void *stream) {
  if (captureCheck(stream))
    return captureCheck(stream);
  if (tracing())
    fprintf(stderr, "fake_cuda: %sfree in stream order\n",
            capturing ? "capture " : "");
  /* A graph's memory lives as long as the graph. */
  if (capturing)
    return SUCCESS;
#ifdef FAKE_CUDA_EMULATOR
  ptxemu_untrack((void *)(size_t)pointer);
#endif
  free((void *)(size_t)pointer);
  --live;
  return SUCCESS;
}
#endif
