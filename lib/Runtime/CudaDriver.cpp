//===- CudaDriver.cpp - The CUDA driver API, loaded at run time -----------===//

#include "moe/Runtime/CudaDriver.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <vector>

using namespace moe::runtime;
using namespace moe::runtime::cuda;

namespace {

/// The driver library: the one the NVIDIA driver installs, or a path in
/// $MOE_CUDA_DRIVER (a test's stand-in).
std::string driverLibrary() {
  const char *path = std::getenv("MOE_CUDA_DRIVER");
  return path && *path ? path : "libcuda.so.1";
}

/// Resolves every function of `api` in `handle`; the name of the first
/// one missing, or "" when all are there.
std::string resolve(void *handle, CudaDriverApi &api) {
  struct Symbol {
    const char *name;
    void **slot;
  };
  auto slot = [](auto &function) {
    return reinterpret_cast<void **>(&function);
  };
  const Symbol symbols[] = {
      {"cuInit", slot(api.init)},
      {"cuDriverGetVersion", slot(api.driverGetVersion)},
      {"cuGetErrorName", slot(api.getErrorName)},
      {"cuGetErrorString", slot(api.getErrorString)},
      {"cuDeviceGetCount", slot(api.deviceGetCount)},
      {"cuDeviceGet", slot(api.deviceGet)},
      {"cuDeviceGetName", slot(api.deviceGetName)},
      {"cuDeviceGetAttribute", slot(api.deviceGetAttribute)},
      {"cuDeviceTotalMem_v2", slot(api.deviceTotalMem)},
      {"cuDevicePrimaryCtxRetain", slot(api.primaryCtxRetain)},
      {"cuCtxPushCurrent_v2", slot(api.ctxPushCurrent)},
      {"cuCtxPopCurrent_v2", slot(api.ctxPopCurrent)},
      {"cuModuleLoadData", slot(api.moduleLoadData)},
      {"cuModuleUnload", slot(api.moduleUnload)},
      {"cuModuleGetFunction", slot(api.moduleGetFunction)},
      {"cuLaunchKernel", slot(api.launchKernel)},
      {"cuStreamCreate", slot(api.streamCreate)},
      {"cuStreamDestroy_v2", slot(api.streamDestroy)},
      {"cuStreamSynchronize", slot(api.streamSynchronize)},
      {"cuStreamWaitEvent", slot(api.streamWaitEvent)},
      {"cuEventCreate", slot(api.eventCreate)},
      {"cuEventDestroy_v2", slot(api.eventDestroy)},
      {"cuEventRecord", slot(api.eventRecord)},
      {"cuEventSynchronize", slot(api.eventSynchronize)},
      {"cuMemAlloc_v2", slot(api.memAlloc)},
      {"cuMemFree_v2", slot(api.memFree)},
      {"cuMemcpyAsync", slot(api.memcpyAsync)},
      {"cuMemsetD32Async", slot(api.memsetD32Async)},
      {"cuMemsetD16Async", slot(api.memsetD16Async)},
      {"cuMemcpyHtoD_v2", slot(api.memcpyHtoD)},
      {"cuFuncSetAttribute", slot(api.funcSetAttribute)},
      {"cuCtxSynchronize", slot(api.ctxSynchronize)},
  };
  for (const Symbol &symbol : symbols) {
    *symbol.slot = dlsym(handle, symbol.name);
    if (!*symbol.slot)
      return symbol.name;
  }
  // TMA descriptors (CUDA 12): only Hopper modules call it, which report
  // its absence themselves.
  *slot(api.tensorMapEncodeTiled) = dlsym(handle, "cuTensorMapEncodeTiled");
  // Launches with attributes (CUDA 12.0): programmatic launches, which a
  // driver without it runs as plain ones.
  *slot(api.launchKernelEx) = dlsym(handle, "cuLaunchKernelEx");
  // The stream-ordered allocator (CUDA 11.2), used when all four exist.
  *slot(api.memAllocAsync) = dlsym(handle, "cuMemAllocAsync");
  *slot(api.memFreeAsync) = dlsym(handle, "cuMemFreeAsync");
  *slot(api.deviceGetDefaultMemPool) =
      dlsym(handle, "cuDeviceGetDefaultMemPool");
  *slot(api.memPoolSetAttribute) = dlsym(handle, "cuMemPoolSetAttribute");
  if (!api.memAllocAsync || !api.memFreeAsync || !api.deviceGetDefaultMemPool ||
      !api.memPoolSetAttribute)
    api.memAllocAsync = nullptr;
  return "";
}

// Module destructors unload GPU code during exit, after the runtime's C++
// statics and the main thread's thread-locals are gone: the state they
// reach is never destroyed (heap objects kept by static pointers, which
// also keep them reachable for leak checkers) or trivially destructible.

/// The primary contexts retained so far, by device ordinal.
std::mutex contextsMutex;
std::vector<CUcontext> &retainedContexts() {
  static auto *retained = new std::vector<CUcontext>();
  return *retained;
}

/// The first error recorded on the thread, truncated to fit.
constexpr size_t kErrorCapacity = 1024;
thread_local char recordedError[kErrorCapacity];
thread_local bool errorRecorded = false;
thread_local StatusCode recordedCode = StatusCode::CudaError;
thread_local int currentDevice = 0;

/// The driver, once loaded (or its error): read without a lock once set.
std::atomic<const Result<const CudaDriver *> *> loadedDriver{nullptr};

} // namespace

std::recursive_mutex &detail::moduleLoadMutex() {
  static auto *mutex = new std::recursive_mutex();
  return *mutex;
}

/// Opens the driver library, resolves its functions and calls cuInit.
static Result<const CudaDriver *>
openDriver(CudaDriverApi &functions, CudaDriver *driver, int &driverVersion) {
  std::string library = driverLibrary();
  void *handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *error = dlerror();
    return Status::failure(
        "CUDA driver not available: " +
            printable(error ? error : library + ": cannot be loaded"),
        StatusCode::CudaUnavailable);
  }
  std::string missing = resolve(handle, functions);
  if (!missing.empty()) {
    dlclose(handle);
    return Status::failure("CUDA driver " + printable(library) + " has no " +
                               missing +
                               " (a driver older than the CUDA 11 API?)",
                           StatusCode::CudaUnavailable);
  }
  if (CUresult error = functions.init(0); error != kSuccess)
    return Status::failure("CUDA driver: " + driver->describe("cuInit", error),
                           StatusCode::CudaUnavailable);
  if (functions.driverGetVersion(&driverVersion) != kSuccess)
    driverVersion = 0;
  return driver;
}

Result<const CudaDriver *> CudaDriver::get() {
  if (const Result<const CudaDriver *> *loaded =
          loadedDriver.load(std::memory_order_acquire))
    return *loaded;
  // Opened once: the handle stays for the process (compiled modules keep
  // calling into it), as does a failure. Under the module loading lock: a
  // module's constructor may get here from inside dlopen, which holds the
  // dynamic loader's lock that this dlopen of the driver needs.
  std::lock_guard<std::recursive_mutex> lock(detail::moduleLoadMutex());
  if (const Result<const CudaDriver *> *loaded =
          loadedDriver.load(std::memory_order_acquire))
    return *loaded;
  auto *driver = new CudaDriver();
  auto *loaded = new Result<const CudaDriver *>(
      openDriver(driver->functions, driver, driver->driverVersion));
  if (!*loaded)
    delete driver;
  loadedDriver.store(loaded, std::memory_order_release);
  return *loaded;
}

std::string CudaDriver::version() const {
  return std::to_string(driverVersion / 1000) + "." +
         std::to_string(driverVersion % 1000 / 10);
}

std::string CudaDriver::describe(const char *call, CUresult error) const {
  const char *name = nullptr, *text = nullptr;
  if (functions.getErrorName(error, &name) != kSuccess || !name)
    name = nullptr;
  if (functions.getErrorString(error, &text) != kSuccess || !text)
    text = nullptr;
  std::string message = std::string(call) + ": ";
  message += name ? printable(name) : "CUDA error " + std::to_string(error);
  if (text)
    message += " (" + printable(text) + ")";
  return message;
}

Result<int> CudaDriver::deviceCount() const {
  int count = 0;
  if (CUresult error = functions.deviceGetCount(&count); error != kSuccess)
    return Status::failure(describe("cuDeviceGetCount", error),
                           StatusCode::CudaUnavailable);
  return count;
}

Status CudaDriver::checkOrdinal(int ordinal) const {
  Result<int> count = deviceCount();
  if (!count)
    return count.status();
  if (ordinal < 0 || ordinal >= *count)
    return Status::failure("no CUDA device " + std::to_string(ordinal) +
                               " (this machine has " + std::to_string(*count) +
                               (*count == 1 ? " device" : " devices") + ")",
                           StatusCode::CudaUnavailable);
  return Status::success();
}

Result<CudaDevice> CudaDriver::device(int ordinal) const {
  if (Status exists = checkOrdinal(ordinal); !exists)
    return exists;
  CudaDevice info;
  info.ordinal = ordinal;
  CUdevice device = 0;
  char name[256] = {};
  if (CUresult error = functions.deviceGet(&device, ordinal); error != kSuccess)
    return Status::failure(describe("cuDeviceGet", error),
                           StatusCode::CudaError);
  if (CUresult error = functions.deviceGetName(name, sizeof(name) - 1, device);
      error != kSuccess)
    return Status::failure(describe("cuDeviceGetName", error),
                           StatusCode::CudaError);
  info.name = printable(name);
  if (CUresult error = functions.deviceGetAttribute(
          &info.computeMajor, kAttributeComputeMajor, device);
      error != kSuccess)
    return Status::failure(describe("cuDeviceGetAttribute", error),
                           StatusCode::CudaError);
  if (CUresult error = functions.deviceGetAttribute(
          &info.computeMinor, kAttributeComputeMinor, device);
      error != kSuccess)
    return Status::failure(describe("cuDeviceGetAttribute", error),
                           StatusCode::CudaError);
  if (CUresult error = functions.deviceTotalMem(&info.totalMemory, device);
      error != kSuccess)
    return Status::failure(describe("cuDeviceTotalMem", error),
                           StatusCode::CudaError);
  return info;
}

Result<CUcontext> CudaDriver::primaryContext(int ordinal) const {
  std::lock_guard<std::mutex> lock(contextsMutex);
  std::vector<CUcontext> &contexts = retainedContexts();
  if (ordinal >= 0 && static_cast<size_t>(ordinal) < contexts.size() &&
      contexts[ordinal])
    return contexts[ordinal];
  if (Status exists = checkOrdinal(ordinal); !exists)
    return exists;
  CUdevice device = 0;
  if (CUresult error = functions.deviceGet(&device, ordinal); error != kSuccess)
    return Status::failure(describe("cuDeviceGet", error),
                           StatusCode::CudaError);
  CUcontext context = nullptr;
  if (CUresult error = functions.primaryCtxRetain(&context, device);
      error != kSuccess)
    return Status::failure(describe("cuDevicePrimaryCtxRetain", error),
                           StatusCode::CudaError);
  if (contexts.size() <= static_cast<size_t>(ordinal))
    contexts.resize(ordinal + 1, nullptr);
  contexts[ordinal] = context;
  return context;
}

std::string moe::runtime::describeCudaDevice(const CudaDriver &driver,
                                             const CudaDevice &device) {
  double gib = static_cast<double>(device.totalMemory) / (1ull << 30);
  return std::to_string(device.ordinal) + ": " + device.name + ", sm_" +
         std::to_string(device.computeMajor) +
         std::to_string(device.computeMinor) + ", " +
         std::to_string(static_cast<long long>(gib + 0.5)) +
         " GiB, CUDA driver " + driver.version();
}

void detail::recordCudaError(std::string message, StatusCode code) {
  if (errorRecorded)
    return;
  errorRecorded = true;
  recordedCode = code;
  if (message.size() >= kErrorCapacity)
    message = message.substr(0, kErrorCapacity - 4) + "...";
  std::memcpy(recordedError, message.c_str(), message.size() + 1);
}

bool detail::hasCudaError() { return errorRecorded; }

Status detail::takeCudaError() {
  if (!errorRecorded)
    return Status::success();
  errorRecorded = false;
  return Status::failure(recordedError, recordedCode);
}

int detail::currentCudaDevice() { return currentDevice; }

void detail::setCurrentCudaDevice(int ordinal) { currentDevice = ordinal; }
