// Drives the runtime's GPU calls (the mgpu* functions compiled modules call)
// the way a compiled module does, over whatever driver MOE_CUDA_DRIVER names
// (Inputs/fake_cuda.c), and prints what happened, one line per step:
//   devices: the driver's devices, or its error
//   run:     a stream, an allocation, copies in and out, a memset, a module
//            and a kernel launch, then every cleanup; "ok" and the values
//            copied back, or the first error recorded
//   after:   that an error stops the thread's later calls until taken
//   tensor map: TMA descriptors of a device buffer (cached while a module
//            is loaded), descriptors the driver cannot encode, and a launch
//            with more than 48 KiB of dynamic shared memory
// Linked with libMoERuntimeStatic.a.

#include "CudaCalls.h"
#include "moe/Runtime/CudaDriver.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>

using namespace moe::runtime;


namespace {

/// The fake driver's count of live objects, or -1 without one.
int liveObjects() {
  const char *path = std::getenv("MOE_CUDA_DRIVER");
  void *handle = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : nullptr;
  auto *live =
      handle ? reinterpret_cast<int (*)()>(dlsym(handle, "fake_cuda_live"))
             : nullptr;
  return live ? live() : -1;
}

void printDevices() {
  Result<const CudaDriver *> driver = CudaDriver::get();
  if (!driver) {
    std::printf("devices: error: %s\n", driver.error().c_str());
    return;
  }
  Result<int> count = (*driver)->deviceCount();
  if (!count) {
    std::printf("devices: error: %s\n", count.error().c_str());
    return;
  }
  std::printf("devices: %d\n", *count);
  for (int ordinal = 0; ordinal <= *count; ++ordinal) {
    Result<CudaDevice> device = (*driver)->device(ordinal);
    if (device)
      std::printf("device: %s\n",
                  describeCudaDevice(**driver, *device).c_str());
    else
      std::printf("device %d: error: %s\n", ordinal, device.error().c_str());
  }
}

/// What a compiled entry does on the GPU, with every cleanup.
void runOnce(const char *label) {
  float host[4] = {1, 2, 3, 4}, back[4] = {0, 0, 0, 0};
  void *stream = mgpuStreamCreate();
  void *event = mgpuEventCreate();
  void *device = mgpuMemAlloc(sizeof(host), stream, false);
  void *halves = mgpuMemAlloc(8, stream, false);
  mgpuMemcpy(device, host, sizeof(host), stream);
  mgpuMemset16(halves, 7, 4, stream);
  mgpuEventRecord(event, stream);
  mgpuStreamWaitEvent(stream, event);
  static const char image[] = "fake image";
  void *module = mgpuModuleLoad(const_cast<char *>(image), sizeof(image));
  void *function = mgpuModuleGetFunction(module, "kernel");
  void *params[] = {&device};
  mgpuLaunchKernel(function, 2, 1, 1, 128, 1, 1, 0, stream, params, nullptr,
                   1);
  mgpuMemcpy(back, device, sizeof(back), stream);
  mgpuStreamSynchronize(stream);
  mgpuModuleUnload(module);
  mgpuMemFree(halves, stream);
  mgpuMemFree(device, stream);
  mgpuEventDestroy(event);
  mgpuStreamDestroy(stream);
  Status status = detail::takeCudaError();
  if (status)
    std::printf("%s: ok %g %g %g %g\n", label, back[0], back[1], back[2],
                back[3]);
  else
    std::printf("%s: error: %s\n", label, status.error().c_str());
}

/// A ranked memref descriptor of rank 3, as compiled code passes it.
struct Descriptor3 {
  void *allocated, *aligned;
  int64_t offset, sizes[3], strides[3];
};

void tensorMaps() {
  static const char image[] = "fake image";
  void *module = mgpuModuleLoad(const_cast<char *>(image), sizeof(image));
  void *buffer = mgpuMemAlloc(4 * 128 * 64 * 2, nullptr, false);
  Descriptor3 weight = {buffer, buffer, 0, {4, 128, 64}, {8192, 64, 1}};
  int64_t box[3] = {1, 128, 64};
  constexpr int64_t kBf16 = 9, kSwizzle128 = 3, kPromote256 = 3;
  void *first = mgpuTensorMapEncodeTiledMemref(
      3, &weight, kBf16, 0, kSwizzle128, kPromote256, 0, box);
  void *again = mgpuTensorMapEncodeTiledMemref(
      3, &weight, kBf16, 0, kSwizzle128, kPromote256, 0, box);
  Status status = detail::takeCudaError();
  std::printf("tensor map: %s, %s\n", status ? "ok" : status.error().c_str(),
              first && first == again ? "cached" : "not cached");
  // No elements (a buffer of zero rows): a map no load uses, no error.
  Descriptor3 empty = {buffer, buffer, 0, {0, 128, 64}, {8192, 64, 1}};
  void *none = mgpuTensorMapEncodeTiledMemref(3, &empty, kBf16, 0, kSwizzle128,
                                              kPromote256, 0, box);
  status = detail::takeCudaError();
  std::printf("tensor map empty: %s, %s\n",
              status ? "ok" : status.error().c_str(), none ? "made" : "null");
  int64_t wide[3] = {1, 300, 64};
  mgpuTensorMapEncodeTiledMemref(3, &weight, kBf16, 0, kSwizzle128, kPromote256,
                                 0, wide);
  std::printf("tensor map box: %s\n", detail::takeCudaError().error().c_str());
  mgpuTensorMapEncodeTiledMemref(6, &weight, kBf16, 0, kSwizzle128, kPromote256,
                                 0, box);
  std::printf("tensor map rank: %s\n", detail::takeCudaError().error().c_str());
  mgpuTensorMapEncodeTiledMemref(3, &weight, 42, 0, kSwizzle128, kPromote256, 0,
                                 box);
  std::printf("tensor map type: %s\n", detail::takeCudaError().error().c_str());
  void *function = mgpuModuleGetFunction(module, "kernel");
  mgpuLaunchKernel(function, 1, 1, 1, 128, 1, 1, 100000, nullptr, nullptr,
                   nullptr, 0);
  status = detail::takeCudaError();
  std::printf("large shared memory: %s\n",
              status ? "ok" : status.error().c_str());
  mgpuMemFree(buffer, nullptr);
  // The last module's unloading frees the cached descriptors; no kernel
  // can use one made after.
  mgpuModuleUnload(module);
  std::printf("tensor map live: %d\n", liveObjects());
  mgpuTensorMapEncodeTiledMemref(3, &weight, kBf16, 0, kSwizzle128, kPromote256,
                                 0, box);
  std::printf("tensor map unloaded: %s\n",
              detail::takeCudaError().error().c_str());
  // By value (a kernel's grid-constant parameter): the 128 bytes written to
  // host memory, with no module loaded and nothing allocated on the device.
  alignas(64) unsigned char map[128];
  auto describe = [&](const char *what) {
    Status encoded = detail::takeCudaError();
    bool zeros = std::all_of(map, map + sizeof map,
                             [](unsigned char c) { return c == 0; });
    std::printf("tensor map %s: %s, %s, live %d\n", what,
                encoded ? "ok" : encoded.error().c_str(),
                zeros ? "zeros" : "encoded", liveObjects());
  };
  std::memset(map, 0xff, sizeof map);
  mgpuTensorMapEncodeTiledMemrefInto(3, &weight, kBf16, 0, kSwizzle128,
                                     kPromote256, 0, box, map);
  describe("by value");
  std::memset(map, 0xff, sizeof map);
  mgpuTensorMapEncodeTiledMemrefInto(3, &weight, kBf16, 0, kSwizzle128,
                                     kPromote256, 0, wide, map);
  describe("by value box");
  std::memset(map, 0xff, sizeof map);
  mgpuTensorMapEncodeTiledMemrefInto(3, &empty, kBf16, 0, kSwizzle128,
                                     kPromote256, 0, box, map);
  describe("by value empty");
}

} // namespace

/// A call whose code allows programmatic launches: they go through
/// cuLaunchKernelEx (where the driver has it) until the call's arena ends,
/// except on the legacy default stream; the next call's launches are plain
/// again.
void programmaticLaunches() {
  static const char image[] = "fake image";
  void *module = mgpuModuleLoad(const_cast<char *>(image), sizeof(image));
  void *function = mgpuModuleGetFunction(module, "kernel");
  void *stream = mgpuStreamCreate();
  {
    detail::CallArena call;
    mgpuLaunchKernel(function, 1, 1, 1, 32, 1, 1, 0, stream, nullptr, nullptr,
                     0);
    mgpuAllowProgrammaticLaunches();
    mgpuLaunchKernel(function, 2, 1, 1, 32, 1, 1, 0, stream, nullptr, nullptr,
                     0);
    mgpuLaunchKernel(function, 3, 1, 1, 32, 1, 1, 0, nullptr, nullptr,
                     nullptr, 0);
  }
  {
    detail::CallArena call;
    mgpuLaunchKernel(function, 4, 1, 1, 32, 1, 1, 0, stream, nullptr, nullptr,
                     0);
  }
  mgpuStreamDestroy(stream);
  mgpuModuleUnload(module);
  Status status = detail::takeCudaError();
  std::printf("programmatic: %s\n", status ? "ok" : status.error().c_str());
}

/// Launches in thread block clusters (gpu.launch_func with clusters): by
/// cuLaunchKernelEx with the cluster dimension, programmatic too where the
/// call allows it; a grid that is not a multiple of the cluster fails.
void clusterLaunches() {
  static const char image[] = "fake image";
  void *module = mgpuModuleLoad(const_cast<char *>(image), sizeof(image));
  void *function = mgpuModuleGetFunction(module, "kernel");
  void *stream = mgpuStreamCreate();
  {
    detail::CallArena call;
    mgpuLaunchClusterKernel(function, 2, 1, 1, 4, 1, 1, 384, 1, 1, 0, stream,
                            nullptr, nullptr, 0);
    mgpuAllowProgrammaticLaunches();
    mgpuLaunchClusterKernel(function, 2, 1, 1, 6, 1, 1, 384, 1, 1, 0, stream,
                            nullptr, nullptr, 0);
    mgpuLaunchClusterKernel(function, 1, 1, 1, 1, 1, 1, 32, 1, 1, 0, stream,
                            nullptr, nullptr, 0);
  }
  Status status = detail::takeCudaError();
  std::printf("clusters: %s\n", status ? "ok" : status.error().c_str());
  mgpuLaunchClusterKernel(function, 2, 1, 1, 3, 1, 1, 384, 1, 1, 0, stream,
                          nullptr, nullptr, 0);
  status = detail::takeCudaError();
  std::printf("clusters odd grid: %s\n",
              status ? "ok" : status.error().c_str());
  mgpuStreamDestroy(stream);
  mgpuModuleUnload(module);
}

int main(int argc, char **argv) {
  if (argc > 1 && std::string(argv[1]) == "programmatic") {
    programmaticLaunches();
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "clusters") {
    clusterLaunches();
    return 0;
  }
  printDevices();
  runOnce("run");
  std::printf("live: %d\n", liveObjects());
  // An error stops the later calls of the thread: nothing is allocated.
  mgpuLaunchKernel(nullptr, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  void *pointer = mgpuMemAlloc(16, nullptr, false);
  std::printf("after: %s\n", pointer ? "allocated" : "nothing allocated");
  Status status = detail::takeCudaError();
  std::printf("after: %s\n", status ? "ok" : status.error().c_str());
  // An empty grid launches nothing, without an error.
  mgpuLaunchKernel(&status, 0, 1, 1, 128, 1, 1, 0, nullptr, nullptr, nullptr,
                   0);
  std::printf("empty grid: %s\n", detail::hasCudaError() ? "error" : "ok");
  // Launch dimensions that do not fit, and host-shared memory.
  mgpuLaunchKernel(&status, 1, -1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr,
                   0);
  std::printf("dims: %s\n", detail::takeCudaError().error().c_str());
  mgpuMemAlloc(16, nullptr, true);
  std::printf("shared: %s\n", detail::takeCudaError().error().c_str());
  // A device the machine does not have.
  mgpuSetDefaultDevice(3);
  mgpuStreamCreate();
  std::printf("device 3: %s\n", detail::takeCudaError().error().c_str());
  mgpuSetDefaultDevice(0);
  tensorMaps();
  return 0;
}
