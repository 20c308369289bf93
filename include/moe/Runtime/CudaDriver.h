//===- CudaDriver.h - The CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// The runtime has no link-time dependency on a CUDA driver or on the CUDA
// runtime: the driver library (libcuda.so.1, or $MOE_CUDA_DRIVER) is opened
// with dlopen the first time a GPU is asked for, and its functions are
// resolved by name. Without a driver, or without a GPU, every GPU call
// fails with one clear line; nothing is printed.
//
// The types below are the driver API's own (CUresult is an int, handles are
// opaque pointers, CUdevice an int, CUdeviceptr a 64-bit integer), declared
// here so that the runtime builds without the CUDA toolkit's headers.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CUDADRIVER_H
#define MOE_RUNTIME_CUDADRIVER_H

#include "moe/Runtime/Result.h"

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace moe::runtime {

namespace cuda {
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
struct Context;
struct Module;
struct Function;
struct Stream;
struct Event;
using CUcontext = Context *;
using CUmodule = Module *;
using CUfunction = Function *;
using CUstream = Stream *;
using CUevent = Event *;

/// CUDA_SUCCESS.
constexpr CUresult kSuccess = 0;
/// CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR.
constexpr int kAttributeComputeMajor = 75;
constexpr int kAttributeComputeMinor = 76;
/// CU_STREAM_NON_BLOCKING, CU_EVENT_DISABLE_TIMING.
constexpr unsigned kStreamNonBlocking = 1;
constexpr unsigned kEventDisableTiming = 2;
/// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
constexpr int kFuncAttributeMaxDynamicSharedBytes = 8;
/// CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED.
constexpr int kAttributeMemoryPoolsSupported = 115;
/// CU_MEMPOOL_ATTR_RELEASE_THRESHOLD (value: uint64_t bytes).
constexpr int kMemPoolAttrReleaseThreshold = 4;
/// Dynamic shared memory a kernel may use without opting in.
constexpr int kDefaultDynamicSharedBytes = 48 * 1024;
/// CU_STREAM_LEGACY: the legacy default stream, as null is.
constexpr uintptr_t kStreamLegacy = 1;
/// CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION (value: int).
constexpr int kLaunchAttributeProgrammaticSerialization = 6;
/// CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION (value: x, y, z CTAs).
constexpr int kLaunchAttributeClusterDimension = 4;

/// CUlaunchAttribute: an id and a 64-byte value, 8-byte aligned.
struct LaunchAttribute {
  int id;
  char pad[4];
  union {
    char bytes[64];
    int programmaticSerialization;
    unsigned clusterDim[3];
    void *alignment;
  } value;
};
static_assert(sizeof(LaunchAttribute) == 72, "CUlaunchAttribute's layout");
/// CUlaunchConfig.
struct LaunchConfig {
  unsigned gridX, gridY, gridZ;
  unsigned blockX, blockY, blockZ;
  unsigned sharedBytes;
  CUstream stream;
  LaunchAttribute *attributes;
  unsigned numAttributes;
};
} // namespace cuda

/// The functions of the driver API the runtime calls (the `_v2` entry
/// points where the driver has them).
struct CudaDriverApi {
  cuda::CUresult (*init)(unsigned flags);
  cuda::CUresult (*driverGetVersion)(int *version);
  cuda::CUresult (*getErrorName)(cuda::CUresult error, const char **name);
  cuda::CUresult (*getErrorString)(cuda::CUresult error, const char **text);
  cuda::CUresult (*deviceGetCount)(int *count);
  cuda::CUresult (*deviceGet)(cuda::CUdevice *device, int ordinal);
  cuda::CUresult (*deviceGetName)(char *name, int length,
                                  cuda::CUdevice device);
  cuda::CUresult (*deviceGetAttribute)(int *value, int attribute,
                                       cuda::CUdevice device);
  cuda::CUresult (*deviceTotalMem)(size_t *bytes, cuda::CUdevice device);
  cuda::CUresult (*primaryCtxRetain)(cuda::CUcontext *context,
                                     cuda::CUdevice device);
  cuda::CUresult (*ctxPushCurrent)(cuda::CUcontext context);
  cuda::CUresult (*ctxPopCurrent)(cuda::CUcontext *context);
  cuda::CUresult (*moduleLoadData)(cuda::CUmodule *module, const void *image);
  cuda::CUresult (*moduleUnload)(cuda::CUmodule module);
  cuda::CUresult (*moduleGetFunction)(cuda::CUfunction *function,
                                      cuda::CUmodule module, const char *name);
  cuda::CUresult (*launchKernel)(cuda::CUfunction function, unsigned gridX,
                                 unsigned gridY, unsigned gridZ,
                                 unsigned blockX, unsigned blockY,
                                 unsigned blockZ, unsigned sharedBytes,
                                 cuda::CUstream stream, void **params,
                                 void **extra);
  /// cuLaunchKernelEx (CUDA 12.0), null where the driver lacks it.
  cuda::CUresult (*launchKernelEx)(const cuda::LaunchConfig *config,
                                   cuda::CUfunction function, void **params,
                                   void **extra);
  cuda::CUresult (*streamCreate)(cuda::CUstream *stream, unsigned flags);
  cuda::CUresult (*streamDestroy)(cuda::CUstream stream);
  cuda::CUresult (*streamSynchronize)(cuda::CUstream stream);
  cuda::CUresult (*streamWaitEvent)(cuda::CUstream stream, cuda::CUevent event,
                                    unsigned flags);
  cuda::CUresult (*eventCreate)(cuda::CUevent *event, unsigned flags);
  cuda::CUresult (*eventDestroy)(cuda::CUevent event);
  cuda::CUresult (*eventRecord)(cuda::CUevent event, cuda::CUstream stream);
  cuda::CUresult (*eventSynchronize)(cuda::CUevent event);
  cuda::CUresult (*memAlloc)(cuda::CUdeviceptr *pointer, size_t bytes);
  cuda::CUresult (*memFree)(cuda::CUdeviceptr pointer);
  cuda::CUresult (*memcpyAsync)(cuda::CUdeviceptr destination,
                                cuda::CUdeviceptr source, size_t bytes,
                                cuda::CUstream stream);
  cuda::CUresult (*memsetD32Async)(cuda::CUdeviceptr destination,
                                   unsigned value, size_t count,
                                   cuda::CUstream stream);
  cuda::CUresult (*memsetD16Async)(cuda::CUdeviceptr destination,
                                   unsigned short value, size_t count,
                                   cuda::CUstream stream);
  cuda::CUresult (*memcpyHtoD)(cuda::CUdeviceptr destination,
                               const void *source, size_t bytes);
  cuda::CUresult (*funcSetAttribute)(cuda::CUfunction function, int attribute,
                                     int value);
  cuda::CUresult (*ctxSynchronize)();
  /// The stream-ordered allocator (CUDA 11.2; null with an older driver):
  /// cuMemAllocAsync, cuMemFreeAsync, cuDeviceGetDefaultMemPool and
  /// cuMemPoolSetAttribute (a pool is an opaque handle).
  cuda::CUresult (*memAllocAsync)(cuda::CUdeviceptr *pointer, size_t bytes,
                                  cuda::CUstream stream);
  cuda::CUresult (*memFreeAsync)(cuda::CUdeviceptr pointer,
                                 cuda::CUstream stream);
  cuda::CUresult (*deviceGetDefaultMemPool)(void **pool, cuda::CUdevice device);
  cuda::CUresult (*memPoolSetAttribute)(void *pool, int attribute, void *value);
  /// cuTensorMapEncodeTiled (CUDA 12; null with an older driver): the
  /// enums are C enums (int), `map` the 128-byte, 64-byte aligned
  /// CUtensorMap.
  cuda::CUresult (*tensorMapEncodeTiled)(void *map, int dataType, uint32_t rank,
                                         void *address, const uint64_t *dims,
                                         const uint64_t *strides,
                                         const uint32_t *box,
                                         const uint32_t *elementStrides,
                                         int interleave, int swizzle,
                                         int l2Promotion, int oobFill);
};

/// One GPU as the driver describes it.
struct CudaDevice {
  int ordinal = 0;
  std::string name;
  int computeMajor = 0, computeMinor = 0;
  size_t totalMemory = 0;
};

/// The loaded driver: its functions, initialized (cuInit) once per process.
class CudaDriver {
public:
  /// The driver of this process: opened and initialized by the first call,
  /// the same result (or the same error) after. Errors: no driver library
  /// ("CUDA driver not available: libcuda.so.1: cannot open shared object
  /// file ..."), a library without the functions, or cuInit failing (e.g.
  /// no GPU).
  static Result<const CudaDriver *> get();

  const CudaDriverApi &api() const { return functions; }
  /// The driver's version as "13.0".
  std::string version() const;
  /// The number of GPUs.
  Result<int> deviceCount() const;
  /// GPU `ordinal` (0 .. deviceCount() - 1).
  Result<CudaDevice> device(int ordinal) const;
  /// The primary context of GPU `ordinal`, retained once per device.
  Result<cuda::CUcontext> primaryContext(int ordinal) const;

  /// `call` failed with `error`: "<call>: CUDA_ERROR_OUT_OF_MEMORY (out of
  /// memory)".
  std::string describe(const char *call, cuda::CUresult error) const;

private:
  CudaDriver() = default;
  /// Success when GPU `ordinal` exists.
  Status checkOrdinal(int ordinal) const;
  CudaDriverApi functions{};
  int driverVersion = 0;
};

/// "0: NVIDIA H200, sm_90, 140 GiB, CUDA driver 13.0".
std::string describeCudaDevice(const CudaDriver &driver,
                               const CudaDevice &device);

namespace detail {
/// The first CUDA error recorded on this thread since the last take, by
/// the GPU calls of compiled modules (which cannot return one): later GPU
/// calls on the thread do nothing until it is taken.
void recordCudaError(std::string message,
                     StatusCode code = StatusCode::CudaError);
/// Whether an error is recorded on this thread.
bool hasCudaError();
/// Takes (and clears) this thread's recorded error; success if none.
Status takeCudaError();
/// Held while a module is loaded (dlopen runs its constructors, which may
/// load GPU code) and while the driver is first opened: the two nest in
/// either order without deadlocking on the dynamic loader's lock.
std::recursive_mutex &moduleLoadMutex();
/// The GPU the calls of this thread use (0 unless set).
int currentCudaDevice();
void setCurrentCudaDevice(int ordinal);

/// The device memory one call of a compiled GPU entry allocates: from
/// construction to destruction, mgpuMemAlloc on this thread records what it
/// returns (mgpuMemFree forgets it), and what the call left is freed when
/// the arena ends, whether the call succeeded or not. Compiled GPU code
/// frees only the buffers whose lifetime it knows (moe-map-to-gpu). The
/// call's launches are plain unless its code allows programmatic ones
/// (mgpuAllowProgrammaticLaunches), for the call alone.
class CallArena {
public:
  CallArena();
  ~CallArena();
  CallArena(const CallArena &) = delete;
  CallArena &operator=(const CallArena &) = delete;
};
/// The stream of one call of a device-io entry (Manifest::gpuDeviceIO):
/// its caller's (null for the legacy default stream). From construction to
/// destruction, mgpuStreamCreate on this thread returns it, mgpuStreamDestroy
/// leaves it, and mgpuStreamSynchronize on it does not wait: such a call is
/// enqueued on the caller's stream, whose owner waits for it (moe-map-to-gpu
/// device-io: no host wait but the last, which is the caller's). The
/// call's arena frees on it, in stream order.
class CallStream {
public:
  explicit CallStream(void *stream);
  ~CallStream();
  CallStream(const CallStream &) = delete;
  CallStream &operator=(const CallStream &) = delete;
};
/// Whether a CallStream is open on this thread, and its stream (null: the
/// legacy default stream).
bool inCallStream();
void *callStream();
/// Records `pointer` in this thread's arena, if one is open.
void recordArenaAllocation(void *pointer);
/// Forgets `pointer` (freed by the caller) in this thread's arena.
void forgetArenaAllocation(void *pointer);
} // namespace detail

} // namespace moe::runtime

#endif // MOE_RUNTIME_CUDADRIVER_H
