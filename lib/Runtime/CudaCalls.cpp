//===- CudaCalls.cpp - The GPU calls of compiled modules over CUDA --------===//
//
// MLIR's GPU-to-LLVM lowering turns gpu.launch_func, gpu.alloc, gpu.memcpy
// and the loading of a gpu.binary into calls of `mgpu*` functions: these are
// the runtime's implementation of them over the CUDA driver API
// (CudaDriver.h, loaded with dlopen). The calls return no status, so each
// records the first failure on its thread (detail::recordCudaError) and
// the runtime returns it to its caller when the entry point returns; until
// then the thread's later GPU calls do nothing (cleanups still run), so
// that a failed allocation is never used. Nothing is printed.
//
// Each call runs with the primary context of the thread's device
// (detail::currentCudaDevice, set by mgpuSetDefaultDevice or the runtime)
// pushed, and pops it after.
//
//===----------------------------------------------------------------------===//

#include "CudaCalls.h"

#include "moe/Runtime/CudaDriver.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

using namespace moe::runtime;
using namespace moe::runtime::cuda;
using detail::recordCudaError;

namespace {

/// The driver with the thread's device current, for one call; false (the
/// call does nothing) when a previous call on the thread failed, unless
/// the call is a cleanup, or when there is no driver or device (recorded).
class CallScope {
public:
  explicit CallScope(bool cleanup = false) {
    if (detail::hasCudaError() && !cleanup)
      return;
    Result<const CudaDriver *> loaded = CudaDriver::get();
    if (!loaded) {
      recordCudaError(loaded.error(), loaded.code());
      return;
    }
    Result<CUcontext> context =
        (*loaded)->primaryContext(detail::currentCudaDevice());
    if (!context) {
      recordCudaError(context.error(), context.code());
      return;
    }
    if (CUresult error = (*loaded)->api().ctxPushCurrent(*context);
        error != kSuccess) {
      recordCudaError((*loaded)->describe("cuCtxPushCurrent", error));
      return;
    }
    driver = *loaded;
  }
  ~CallScope() {
    CUcontext popped = nullptr;
    if (driver)
      driver->api().ctxPopCurrent(&popped);
  }
  CallScope(const CallScope &) = delete;
  CallScope &operator=(const CallScope &) = delete;

  explicit operator bool() const { return driver != nullptr; }
  const CudaDriverApi &api() const { return driver->api(); }
  /// Whether `error` is success; records it otherwise.
  bool check(const char *call, CUresult error) const {
    if (error == kSuccess)
      return true;
    recordCudaError(driver->describe(call, error));
    return false;
  }

private:
  const CudaDriver *driver = nullptr;
};

CUdeviceptr devicePointer(void *pointer) {
  return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(pointer));
}

/// Whether a launch dimension fits the driver's unsigned parameter.
bool fitsDimension(intptr_t size) {
  return size >= 1 &&
         static_cast<uintmax_t>(size) <= std::numeric_limits<unsigned>::max();
}

/// Device copies of TMA descriptors (CUtensorMap, 128 bytes) that kernels
/// read from global memory. A layer's descriptors are the same at every
/// call (they describe its bound weights), so each distinct one is copied
/// to its device once and kept until the last GPU module is unloaded; a
/// call then makes no allocation or synchronous copy for them (and stays
/// capturable in a CUDA graph). More than `kCapacity` descriptors, or one
/// made with no GPU module loaded, is an error. Reached
/// through a pointer that is never destroyed: module destructors unload modules
/// during exit.
class TensorMapCache {
public:
  static constexpr size_t kCapacity = 4096;
  using Bytes = std::array<unsigned char, 128>;

  static TensorMapCache &get() {
    static TensorMapCache *cache = new TensorMapCache();
    return *cache;
  }

  /// The device copy of `map` on the thread's device, or null (the error
  /// recorded).
  void *find(const CallScope &scope, const Bytes &map) {
    int device = detail::currentCudaDevice();
    std::lock_guard<std::mutex> lock(mutex);
    for (const Entry &entry : entries)
      if (entry.device == device && entry.map == map)
        return entry.pointer;
    // Only loaded kernels read descriptors; the last unloading frees them.
    if (loadedModules == 0) {
      recordCudaError("cuTensorMapEncodeTiled: no GPU module is loaded to "
                      "use the descriptor");
      return nullptr;
    }
    if (entries.size() >= kCapacity) {
      recordCudaError("cuTensorMapEncodeTiled: more than " +
                      std::to_string(kCapacity) + " TMA descriptors in use");
      return nullptr;
    }
    CUdeviceptr allocated = 0;
    if (!scope.check("cuMemAlloc",
                     scope.api().memAlloc(&allocated, sizeof(Bytes))))
      return nullptr;
    if (!scope.check(
            "cuMemcpyHtoD",
            scope.api().memcpyHtoD(allocated, map.data(), sizeof(Bytes)))) {
      scope.api().memFree(allocated);
      return nullptr;
    }
    void *pointer = reinterpret_cast<void *>(static_cast<uintptr_t>(allocated));
    entries.push_back({device, map, pointer});
    return pointer;
  }

  void moduleLoaded() {
    std::lock_guard<std::mutex> lock(mutex);
    ++loadedModules;
  }

  /// Frees every copy once no GPU module is loaded.
  void moduleUnloaded() {
    std::vector<Entry> released;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (loadedModules > 0 && --loadedModules == 0)
        released.swap(entries);
    }
    Result<const CudaDriver *> driver = CudaDriver::get();
    if (!driver)
      return;
    for (const Entry &entry : released) {
      Result<CUcontext> context = (*driver)->primaryContext(entry.device);
      if (!context || (*driver)->api().ctxPushCurrent(*context) != kSuccess)
        continue;
      (*driver)->api().memFree(devicePointer(entry.pointer));
      CUcontext popped = nullptr;
      (*driver)->api().ctxPopCurrent(&popped);
    }
  }

private:
  struct Entry {
    int device;
    Bytes map;
    void *pointer;
  };
  std::mutex mutex;
  std::vector<Entry> entries;
  int loadedModules = 0;
};

/// The element size of a CUtensorMapDataType, 0 for an unknown one.
unsigned tensorMapElementBytes(int64_t dataType) {
  switch (dataType) {
  case 0: // UINT8
    return 1;
  case 1: // UINT16
  case 6: // FLOAT16
  case 9: // BFLOAT16
    return 2;
  case 2:  // UINT32
  case 3:  // INT32
  case 7:  // FLOAT32
  case 10: // FLOAT32_FTZ
  case 11: // TFLOAT32
  case 12: // TFLOAT32_FTZ
    return 4;
  case 4: // UINT64
  case 5: // INT64
  case 8: // FLOAT64
    return 8;
  default:
    return 0;
  }
}

/// Device memory from the stream-ordered allocator (cuMemAllocAsync),
/// freed in stream order too. The devices whose default pool keeps what
/// is freed (its release threshold raised from 0), so that a steady-state
/// call reuses its buffers instead of mapping new memory.
class StreamOrderedMemory {
public:
  static StreamOrderedMemory &get() {
    static StreamOrderedMemory *memory = new StreamOrderedMemory();
    return *memory;
  }

  /// Whether the thread's device has memory pools (some virtualized GPUs do
  /// not), with the release threshold of its default pool raised the first
  /// time; an error is recorded when the driver fails to say.
  bool available(const CallScope &scope) {
    if (!scope.api().memAllocAsync)
      return false;
    int device = detail::currentCudaDevice();
    std::lock_guard<std::mutex> lock(mutex);
    for (auto [known, pooled] : devices)
      if (known == device)
        return pooled;
    CUdevice handle = 0;
    int pooled = 0;
    if (!scope.check("cuDeviceGet", scope.api().deviceGet(&handle, device)) ||
        !scope.check("cuDeviceGetAttribute",
                     scope.api().deviceGetAttribute(
                         &pooled, kAttributeMemoryPoolsSupported, handle)))
      return false;
    if (pooled) {
      void *pool = nullptr;
      uint64_t keepAll = std::numeric_limits<uint64_t>::max();
      if (!scope.check("cuDeviceGetDefaultMemPool",
                       scope.api().deviceGetDefaultMemPool(&pool, handle)) ||
          !scope.check("cuMemPoolSetAttribute",
                       scope.api().memPoolSetAttribute(
                           pool, kMemPoolAttrReleaseThreshold, &keepAll)))
        return false;
    }
    devices.emplace_back(device, pooled != 0);
    return pooled != 0;
  }

  /// `bytes` on the thread's device in the order of `stream`, or null (the
  /// error recorded); available() first.
  void *allocate(const CallScope &scope, uint64_t bytes, CUstream stream) {
    CUdeviceptr pointer = 0;
    if (!scope.check("cuMemAllocAsync",
                     scope.api().memAllocAsync(&pointer, bytes, stream)))
      return nullptr;
    void *allocated = reinterpret_cast<void *>(static_cast<uintptr_t>(pointer));
    std::lock_guard<std::mutex> lock(mutex);
    live.insert(allocated);
    return allocated;
  }

  /// Whether `pointer` came from allocate(); forgets it.
  bool release(void *pointer) {
    std::lock_guard<std::mutex> lock(mutex);
    return live.erase(pointer) != 0;
  }

private:
  std::mutex mutex;
  /// The devices asked so far, and whether they have memory pools.
  std::vector<std::pair<int, bool>> devices;
  std::unordered_set<void *> live;
};

/// The kernels that opted in to more than the default dynamic shared
/// memory, with the most they asked for: a launch sets the attribute only
/// when it asks for more (no driver call per launch, none while a stream
/// is captured).
class SharedMemoryOptIns {
public:
  static SharedMemoryOptIns &get() {
    static SharedMemoryOptIns *optIns = new SharedMemoryOptIns();
    return *optIns;
  }
  bool ensure(const CallScope &scope, CUfunction function, int bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto &[known, most] : functions)
      if (known == function && most >= bytes)
        return true;
    if (!scope.check("cuFuncSetAttribute",
                     scope.api().funcSetAttribute(
                         function, kFuncAttributeMaxDynamicSharedBytes, bytes)))
      return false;
    for (auto &[known, most] : functions)
      if (known == function) {
        most = bytes;
        return true;
      }
    functions.emplace_back(function, bytes);
    return true;
  }

  /// Forgets every kernel: an unloaded module's functions are gone, and a
  /// new one may get a forgotten handle.
  void clear() {
    std::lock_guard<std::mutex> lock(mutex);
    functions.clear();
  }

private:
  std::mutex mutex;
  std::vector<std::pair<CUfunction, int>> functions;
};

/// Encodes the TMA descriptor of a memref (`descriptor`: its ranked
/// descriptor, of rank `rank`) with boxes of `box` elements (outermost
/// first) into `map`; false with the error recorded. A tensor without
/// elements (a buffer of zero rows, at T = 0) has no box to load and no
/// kernel loads one: its map stays zeros, which the driver would not encode.
bool encodeTensorMap(const CallScope &scope, int64_t rank, void *descriptor,
                     int64_t dataType, int64_t interleave, int64_t swizzle,
                     int64_t l2Promotion, int64_t oobFill, const int64_t *box,
                     TensorMapCache::Bytes &map) {
  constexpr int64_t kMaxRank = 5;
  unsigned elementBytes = tensorMapElementBytes(dataType);
  if (rank < 1 || rank > kMaxRank || !descriptor || !box || !elementBytes) {
    recordCudaError("cuTensorMapEncodeTiled: unsupported tensor (rank " +
                    std::to_string(rank) + ", data type " +
                    std::to_string(dataType) + ")");
    return false;
  }
  // A ranked memref descriptor: allocated and aligned pointers, offset,
  // sizes, strides (in elements). The map lists dimensions innermost
  // first, strides in bytes of every dimension but the innermost.
  struct RankedHeader {
    char *allocated;
    char *aligned;
    int64_t offset;
  };
  auto *header = static_cast<RankedHeader *>(descriptor);
  const int64_t *sizes = reinterpret_cast<const int64_t *>(header + 1);
  const int64_t *strides = sizes + rank;
  uint64_t dims[kMaxRank], byteStrides[kMaxRank];
  uint32_t boxDims[kMaxRank], elementStrides[kMaxRank];
  for (int64_t r = 0; r < rank; ++r) {
    int64_t dim = rank - 1 - r;
    if (sizes[dim] < 0 || box[dim] < 1 || box[dim] > 256 || strides[dim] < 0) {
      recordCudaError("cuTensorMapEncodeTiled: dimension " +
                      std::to_string(dim) + " of size " +
                      std::to_string(sizes[dim]) + ", box " +
                      std::to_string(box[dim]) + " is not encodable");
      return false;
    }
    dims[r] = static_cast<uint64_t>(sizes[dim]);
    byteStrides[r] = static_cast<uint64_t>(strides[dim]) * elementBytes;
    boxDims[r] = static_cast<uint32_t>(box[dim]);
    elementStrides[r] = 1;
  }
  map.fill(0);
  if (std::find(dims, dims + rank, 0) != dims + rank)
    return true;
  if (!scope.api().tensorMapEncodeTiled) {
    recordCudaError("cuTensorMapEncodeTiled: the CUDA driver lacks it (TMA "
                    "needs a CUDA 12 driver)");
    return false;
  }
  char *address = header->aligned + header->offset * elementBytes;
  return scope.check(
      "cuTensorMapEncodeTiled",
      scope.api().tensorMapEncodeTiled(
          map.data(), static_cast<int>(dataType), static_cast<uint32_t>(rank),
          address, dims, byteStrides + 1, boxDims, elementStrides,
          static_cast<int>(interleave), static_cast<int>(swizzle),
          static_cast<int>(l2Promotion), static_cast<int>(oobFill)));
}

/// Whether this thread's launches are programmatic: set by the entry being
/// called (mgpuAllowProgrammaticLaunches), cleared when its call ends.
thread_local bool programmaticLaunches = false;

/// A kernel launch, in clusters of cluster[0] x cluster[1] x cluster[2]
/// CTAs unless they are all 1.
void launchKernel(void *function, const intptr_t cluster[3],
                  const intptr_t grid[3], const intptr_t block[3],
                  int32_t sharedBytes, void *stream, void **params,
                  void **extra) {
  CallScope scope;
  if (!scope)
    return;
  if (!function) {
    recordCudaError("cuLaunchKernel: no kernel function");
    return;
  }
  // An empty grid (e.g. from zero tokens) launches nothing.
  for (int d = 0; d < 3; ++d)
    if (grid[d] == 0 || block[d] == 0)
      return;
  for (int d = 0; d < 3; ++d)
    for (intptr_t size : {grid[d], block[d], cluster[d]})
      if (!fitsDimension(size)) {
        recordCudaError("cuLaunchKernel: launch dimension " +
                        std::to_string(size) + " out of range");
        return;
      }
  bool clustered = cluster[0] != 1 || cluster[1] != 1 || cluster[2] != 1;
  for (int d = 0; d < 3 && clustered; ++d)
    if (grid[d] % cluster[d]) {
      recordCudaError("cuLaunchKernelEx: a grid of " + std::to_string(grid[d]) +
                      " blocks in dimension " + std::to_string(d) +
                      " is not a multiple of its " +
                      std::to_string(cluster[d]) + "-CTA clusters");
      return;
    }
  if (sharedBytes < 0) {
    recordCudaError("cuLaunchKernel: negative shared memory size " +
                    std::to_string(sharedBytes));
    return;
  }
  // Kernels opt in to dynamic shared memory past the default 48 KiB.
  if (sharedBytes > kDefaultDynamicSharedBytes &&
      !SharedMemoryOptIns::get().ensure(
          scope, static_cast<CUfunction>(function), sharedBytes))
    return;
  // A programmatic launch may start before the kernel before it on the
  // stream ends: the compiler begins each of its kernels with
  // griddepcontrol.wait (moe-programmatic-launches). Not on the legacy
  // default stream (null or CU_STREAM_LEGACY), which synchronizes with
  // other streams implicitly: a device-io caller's stream may be it.
  bool legacyStream = reinterpret_cast<uintptr_t>(stream) <= kStreamLegacy;
  bool programmatic =
      programmaticLaunches && !legacyStream && scope.api().launchKernelEx;
  if (clustered && !scope.api().launchKernelEx) {
    recordCudaError("cuLaunchKernelEx is missing: a launch in thread block "
                    "clusters needs a CUDA 12 driver");
    return;
  }
  if (programmatic || clustered) {
    LaunchAttribute attributes[2] = {};
    unsigned count = 0;
    if (programmatic) {
      attributes[count].id = kLaunchAttributeProgrammaticSerialization;
      attributes[count++].value.programmaticSerialization = 1;
    }
    if (clustered) {
      attributes[count].id = kLaunchAttributeClusterDimension;
      for (int d = 0; d < 3; ++d)
        attributes[count].value.clusterDim[d] =
            static_cast<unsigned>(cluster[d]);
      ++count;
    }
    LaunchConfig config = {static_cast<unsigned>(grid[0]),
                           static_cast<unsigned>(grid[1]),
                           static_cast<unsigned>(grid[2]),
                           static_cast<unsigned>(block[0]),
                           static_cast<unsigned>(block[1]),
                           static_cast<unsigned>(block[2]),
                           static_cast<unsigned>(sharedBytes),
                           static_cast<CUstream>(stream),
                           attributes,
                           count};
    scope.check("cuLaunchKernelEx",
                scope.api().launchKernelEx(
                    &config, static_cast<CUfunction>(function), params, extra));
    return;
  }
  scope.check(
      "cuLaunchKernel",
      scope.api().launchKernel(static_cast<CUfunction>(function), grid[0],
                               grid[1], grid[2], block[0], block[1], block[2],
                               static_cast<unsigned>(sharedBytes),
                               static_cast<CUstream>(stream), params, extra));
}

} // namespace

extern "C" {

void mgpuAllowProgrammaticLaunches() { programmaticLaunches = true; }

void *mgpuModuleLoad(void *data, size_t /*size*/) {
  CallScope scope;
  CUmodule module = nullptr;
  if (scope && scope.check("cuModuleLoadData",
                           scope.api().moduleLoadData(&module, data)))
    TensorMapCache::get().moduleLoaded();
  return module;
}

/// A PTX image: the driver compiles it for the device (the optimization
/// level is the driver's default).
void *mgpuModuleLoadJIT(void *data, int /*optLevel*/) {
  return mgpuModuleLoad(data, 0);
}

void mgpuModuleUnload(void *module) {
  CallScope scope(/*cleanup=*/true);
  if (scope && module) {
    scope.check("cuModuleUnload",
                scope.api().moduleUnload(static_cast<CUmodule>(module)));
    TensorMapCache::get().moduleUnloaded();
    SharedMemoryOptIns::get().clear();
  }
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  CallScope scope;
  CUfunction function = nullptr;
  if (!scope)
    return nullptr;
  if (!module) {
    recordCudaError("kernel '" + printable(name ? name : "") +
                    "': its GPU module is not loaded");
    return nullptr;
  }
  scope.check("cuModuleGetFunction",
              scope.api().moduleGetFunction(
                  &function, static_cast<CUmodule>(module), name));
  return function;
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t sharedBytes, void *stream,
                      void **params, void **extra, size_t /*paramCount*/) {
  const intptr_t single[3] = {1, 1, 1}, grid[3] = {gridX, gridY, gridZ},
                 block[3] = {blockX, blockY, blockZ};
  launchKernel(function, single, grid, block, sharedBytes, stream, params,
               extra);
}

void mgpuLaunchClusterKernel(void *function, intptr_t clusterX,
                             intptr_t clusterY, intptr_t clusterZ,
                             intptr_t gridX, intptr_t gridY, intptr_t gridZ,
                             intptr_t blockX, intptr_t blockY, intptr_t blockZ,
                             int32_t sharedBytes, void *stream, void **params,
                             void **extra, size_t /*paramCount*/) {
  const intptr_t cluster[3] = {clusterX, clusterY, clusterZ},
                 grid[3] = {gridX, gridY, gridZ},
                 block[3] = {blockX, blockY, blockZ};
  launchKernel(function, cluster, grid, block, sharedBytes, stream, params,
               extra);
}

void *mgpuStreamCreate() {
  // A device-io call runs on its caller's stream.
  if (detail::inCallStream())
    return detail::callStream();
  CallScope scope;
  CUstream stream = nullptr;
  if (scope)
    scope.check("cuStreamCreate",
                scope.api().streamCreate(&stream, kStreamNonBlocking));
  return stream;
}

void mgpuStreamDestroy(void *stream) {
  if (detail::inCallStream() && stream == detail::callStream())
    return;
  CallScope scope(/*cleanup=*/true);
  if (scope && stream)
    scope.check("cuStreamDestroy",
                scope.api().streamDestroy(static_cast<CUstream>(stream)));
}

void mgpuStreamSynchronize(void *stream) {
  // A device-io call's one wait, at its end, is its caller's to make.
  if (detail::inCallStream() && stream == detail::callStream())
    return;
  CallScope scope;
  if (scope)
    scope.check("cuStreamSynchronize",
                scope.api().streamSynchronize(static_cast<CUstream>(stream)));
}

void mgpuStreamWaitEvent(void *stream, void *event) {
  CallScope scope;
  if (scope)
    scope.check("cuStreamWaitEvent",
                scope.api().streamWaitEvent(static_cast<CUstream>(stream),
                                            static_cast<CUevent>(event), 0));
}

void *mgpuEventCreate() {
  CallScope scope;
  CUevent event = nullptr;
  if (scope)
    scope.check("cuEventCreate",
                scope.api().eventCreate(&event, kEventDisableTiming));
  return event;
}

void mgpuEventDestroy(void *event) {
  CallScope scope(/*cleanup=*/true);
  if (scope && event)
    scope.check("cuEventDestroy",
                scope.api().eventDestroy(static_cast<CUevent>(event)));
}

void mgpuEventSynchronize(void *event) {
  CallScope scope;
  if (scope)
    scope.check("cuEventSynchronize",
                scope.api().eventSynchronize(static_cast<CUevent>(event)));
}

void mgpuEventRecord(void *event, void *stream) {
  CallScope scope;
  if (scope)
    scope.check("cuEventRecord",
                scope.api().eventRecord(static_cast<CUevent>(event),
                                        static_cast<CUstream>(stream)));
}

void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared) {
  CallScope scope;
  if (!scope)
    return nullptr;
  if (hostShared) {
    recordCudaError("gpu.alloc host_shared: managed memory is not supported");
    return nullptr;
  }
  // cuMemAlloc refuses 0 bytes; an empty buffer is never dereferenced.
  if (bytes == 0)
    bytes = 1;
  void *allocated = nullptr;
  // A call's buffers (gpu.alloc async) come from the stream-ordered
  // allocator's pool where the driver has one: no cuMemAlloc, which may
  // synchronize the device, and capturable in a CUDA graph.
  if ((stream || detail::inCallStream()) &&
      StreamOrderedMemory::get().available(scope)) {
    allocated = StreamOrderedMemory::get().allocate(
        scope, bytes, static_cast<CUstream>(stream));
    if (!allocated)
      return nullptr;
  } else {
    if (detail::hasCudaError())
      return nullptr;
    CUdeviceptr pointer = 0;
    if (!scope.check("cuMemAlloc", scope.api().memAlloc(&pointer, bytes)))
      return nullptr;
    allocated = reinterpret_cast<void *>(static_cast<uintptr_t>(pointer));
  }
  detail::recordArenaAllocation(allocated);
  return allocated;
}

void mgpuMemFree(void *pointer, void *stream) {
  CallScope scope(/*cleanup=*/true);
  if (!pointer)
    return;
  detail::forgetArenaAllocation(pointer);
  bool streamOrdered = StreamOrderedMemory::get().release(pointer);
  if (!scope)
    return;
  if (streamOrdered)
    scope.check("cuMemFreeAsync",
                scope.api().memFreeAsync(devicePointer(pointer),
                                         static_cast<CUstream>(stream)));
  else
    scope.check("cuMemFree", scope.api().memFree(devicePointer(pointer)));
}

void mgpuMemcpy(void *destination, void *source, size_t bytes, void *stream) {
  CallScope scope;
  if (scope && bytes)
    scope.check("cuMemcpyAsync",
                scope.api().memcpyAsync(devicePointer(destination),
                                        devicePointer(source), bytes,
                                        static_cast<CUstream>(stream)));
}

void mgpuMemset32(void *destination, unsigned value, size_t count,
                  void *stream) {
  CallScope scope;
  if (scope && count)
    scope.check("cuMemsetD32Async", scope.api().memsetD32Async(
                                        devicePointer(destination), value,
                                        count, static_cast<CUstream>(stream)));
}

void mgpuMemset16(void *destination, unsigned short value, size_t count,
                  void *stream) {
  CallScope scope;
  if (scope && count)
    scope.check("cuMemsetD16Async", scope.api().memsetD16Async(
                                        devicePointer(destination), value,
                                        count, static_cast<CUstream>(stream)));
}

void *mgpuTensorMapEncodeTiledMemref(int64_t rank, void *descriptor,
                                     int64_t dataType, int64_t interleave,
                                     int64_t swizzle, int64_t l2Promotion,
                                     int64_t oobFill, int64_t *box) {
  CallScope scope;
  if (!scope)
    return nullptr;
  alignas(64) TensorMapCache::Bytes map{};
  if (!encodeTensorMap(scope, rank, descriptor, dataType, interleave, swizzle,
                       l2Promotion, oobFill, box, map))
    return nullptr;
  return TensorMapCache::get().find(scope, map);
}

void mgpuTensorMapEncodeTiledMemrefInto(int64_t rank, void *descriptor,
                                        int64_t dataType, int64_t interleave,
                                        int64_t swizzle, int64_t l2Promotion,
                                        int64_t oobFill, int64_t *box,
                                        void *map) {
  TensorMapCache::Bytes encoded{};
  CallScope scope;
  if (scope && map)
    encodeTensorMap(scope, rank, descriptor, dataType, interleave, swizzle,
                    l2Promotion, oobFill, box, encoded);
  if (map)
    std::memcpy(map, encoded.data(), encoded.size());
}

void mgpuSetDefaultDevice(int32_t device) {
  detail::setCurrentCudaDevice(device);
}

} // extern "C"

namespace {
/// The open arena of this thread (CallArena), or null.
thread_local std::vector<void *> *arena = nullptr;
/// The stream of the open CallStream of this thread, or null.
/// (Null is the legacy default stream.)
thread_local void *borrowedStream = nullptr;
thread_local bool borrowing = false;
} // namespace

detail::CallStream::CallStream(void *stream) {
  borrowedStream = stream;
  borrowing = true;
}

detail::CallStream::~CallStream() {
  borrowedStream = nullptr;
  borrowing = false;
}

bool detail::inCallStream() { return borrowing; }

void *detail::callStream() { return borrowedStream; }

detail::CallArena::CallArena() {
  arena = new std::vector<void *>();
  programmaticLaunches = false;
}

detail::CallArena::~CallArena() {
  std::vector<void *> *left = arena;
  arena = nullptr;
  programmaticLaunches = false;
  // Freed even after a failure: cleanups run with an error recorded. A
  // device-io call's buffers are freed in its stream's order (its work may
  // still run); another call ended with a wait on its stream, unless it
  // failed, when the device finishes what was enqueued first.
  void *stream = callStream();
  if (!left->empty() && !inCallStream() && hasCudaError()) {
    CallScope scope(/*cleanup=*/true);
    if (scope)
      scope.api().ctxSynchronize();
  }
  for (void *pointer : *left)
    mgpuMemFree(pointer, stream);
  delete left;
}

void detail::recordArenaAllocation(void *pointer) {
  if (arena)
    arena->push_back(pointer);
}

void detail::forgetArenaAllocation(void *pointer) {
  if (!arena)
    return;
  auto found = std::find(arena->begin(), arena->end(), pointer);
  if (found != arena->end()) {
    *found = arena->back();
    arena->pop_back();
  }
}
