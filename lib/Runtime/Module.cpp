//===- Module.cpp - Loading compiled modules ------------------------------===//
//
// dlopen, the manifest global and the entry symbols of a compiled module.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Module.h"

#include "moe/Runtime/CpuFeatures.h"
#include "moe/Runtime/CudaDriver.h"

#include "CudaCalls.h"
#include "Workspace.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <dlfcn.h>

using namespace moe::runtime;

namespace {

/// The name of the manifest global of a compiled module.
constexpr const char *kManifestSymbol = "moe_module_manifest";
/// `{void *(*)(uint64_t), void (*)(void *)}`: how the module allocates.
constexpr const char *kAllocatorSymbol = "moe_module_allocator";
/// The OpenMP runtime's setting of the calling thread's team size, found
/// among the module's dependencies when its loops run on threads.
constexpr const char *kSetThreadsSymbol = "omp_set_num_threads";
/// The longest manifest accepted, in bytes.
constexpr size_t kMaxManifestSize = size_t(64) << 20;

/// The last dlerror() as one line, without a leading "<file>: " that would
/// repeat the module's path.
std::string lastDlError(const std::string &file) {
  const char *message = dlerror();
  std::string text = message ? message : "unknown error";
  std::string prefix = file + ": ";
  if (text.compare(0, prefix.size(), prefix) == 0)
    text.erase(0, prefix.size());
  return printable(text);
}

/// A loaded GPU module: the device its GPU code is on, and how many
/// CompiledModule objects hold it.
struct GpuModule {
  int device = 0;
  int instances = 0;
};

/// The GPU modules loaded, by dlopen handle (under moduleLoadMutex; never
/// destroyed, as modules may be closed during exit).
std::map<void *, GpuModule> &gpuModules() {
  static auto *modules = new std::map<void *, GpuModule>();
  return *modules;
}

/// Makes the runtime's mgpu* functions visible to the modules it loads
/// (RTLD_LOCAL libraries, such as this one loaded by Python's ctypes, are
/// not searched for their undefined symbols): the library holding them is
/// promoted to RTLD_GLOBAL, once. In a tool linking the runtime statically
/// the executable exports them itself.
void exposeGpuCalls() {
  static const bool done = [] {
    Dl_info info;
    void *symbol = reinterpret_cast<void *>(&mgpuLaunchKernel);
    if (dladdr(symbol, &info) && info.dli_fname)
      if (void *self =
              dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL))
        dlclose(self);
    return true;
  }();
  (void)done;
}

} // namespace

Result<std::shared_ptr<const CompiledModule>>
CompiledModule::load(const std::string &path, std::optional<int> device) {
  using ResultT = Result<std::shared_ptr<const CompiledModule>>;
  if (device && *device < 0)
    return ResultT::failure(printable(path) + ": device " +
                            std::to_string(*device) + " is not a device");
  // Without a slash dlopen searches the library path instead of opening the
  // file named.
  std::string file =
      path.find('/') == std::string::npos ? "./" + path : path;
  // A GPU module's constructors load its GPU binary through the runtime's
  // mgpu* calls, on the device current for this thread, as dlopen runs
  // them: they must resolve to this runtime, and no error may be pending.
  exposeGpuCalls();
  std::lock_guard<std::recursive_mutex> lock(detail::moduleLoadMutex());
  // A file already loaded is not loaded again (dlopen counts references):
  // its GPU code stays on the device it was loaded on.
  if (void *loaded = dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
    auto known = gpuModules().find(loaded);
    bool otherDevice = known != gpuModules().end() &&
                       known->second.device != device.value_or(0);
    int loadedDevice = otherDevice ? known->second.device : 0;
    dlclose(loaded);
    if (otherDevice)
      return ResultT::failure(
          printable(path) + ": its GPU code is loaded on CUDA device " +
          std::to_string(loadedDevice) +
          " in this process; a module file is loaded on one device (load a "
          "copy of the file for device " +
          std::to_string(device.value_or(0)) + ")");
  }
  (void)detail::takeCudaError();
  int previousDevice = detail::currentCudaDevice();
  detail::setCurrentCudaDevice(device.value_or(0));
  void *handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  detail::setCurrentCudaDevice(previousDevice);
  Status gpuLoad = detail::takeCudaError();
  if (!handle)
    return ResultT::failure(printable(path) + ": cannot load module: " +
                            lastDlError(file));
  // Owns the handle from here on: every error below closes it (on the
  // device its GPU code was loaded on).
  std::shared_ptr<CompiledModule> module(new CompiledModule(path, handle));
  module->gpuDevice = device.value_or(0);

  dlerror();
  const char *manifest =
      static_cast<const char *>(dlsym(handle, kManifestSymbol));
  if (!manifest)
    return ResultT::failure(printable(path) + ": not a MoE-MLIR module (no " +
                            kManifestSymbol + ")");
  size_t length = strnlen(manifest, kMaxManifestSize);
  if (length == kMaxManifestSize)
    return ResultT::failure(printable(path) + ": " + kManifestSymbol +
                            " is not NUL-terminated within " +
                            std::to_string(kMaxManifestSize) + " bytes");
  // Modules from moe-compile allocate through this table when it is set;
  // older modules have none and use malloc.
  struct AllocatorTable {
    void *(*allocate)(uint64_t);
    void (*release)(void *);
  };
  if (auto *table = static_cast<AllocatorTable *>(
          dlsym(handle, kAllocatorSymbol))) {
    table->allocate = workspaceAllocate;
    table->release = workspaceFree;
  }
  // dlsym on the module's handle also searches the libraries it depends on.
  if (void *setter = dlsym(handle, kSetThreadsSymbol)) {
    static_assert(sizeof(module->setThreadCount) == sizeof(setter),
                  "function and data pointers differ");
    std::memcpy(&module->setThreadCount, &setter, sizeof(setter));
  }
  Result<std::shared_ptr<const CompiledModule>> resolved =
      resolveEntries(std::move(module), std::string_view(manifest, length),
                     [&](const std::string &symbol) -> EntryFunction {
                       dlerror();
                       void *address = dlsym(handle, symbol.c_str());
                       EntryFunction function = nullptr;
                       static_assert(sizeof(function) == sizeof(address),
                                     "function and data pointers differ");
                       std::memcpy(&function, &address, sizeof(function));
                       return function;
                     });
  if (!resolved)
    return resolved;
  if ((*resolved)->isGpu() && !gpuLoad)
    return gpuLoad.withContext(printable(path) +
                               ": cannot load its GPU code on device " +
                               std::to_string(device.value_or(0)) + ": ");
  if (!(*resolved)->isGpu() && device)
    return ResultT::failure(printable(path) +
                            ": a module compiled for the CPU runs on no "
                            "device (a device is for CUDA modules)");
  // Expert parallelism: MPI_COMM_WORLD must have the ranks it was compiled
  // for.
  const Manifest &parsed = (*resolved)->manifest();
  if (parsed.mpiRanks > 0) {
    Result<const MpiWorld *> world =
        MpiWorld::attach(handle, parsed.mpiLibrary, printable(path));
    if (!world)
      return world.status();
    if ((*world)->size() != parsed.mpiRanks)
      return ResultT::failure(
          printable(path) + ": the module was compiled for " +
          std::to_string(parsed.mpiRanks) +
          " MPI ranks (experts shared "
          "among them), but MPI_COMM_WORLD has " +
          std::to_string((*world)->size()) + " (run it with mpirun -np " +
          std::to_string(parsed.mpiRanks) + ")");
    const_cast<CompiledModule &>(**resolved).world = *world;
  }
  if ((*resolved)->isGpu()) {
    GpuModule &known = gpuModules()[handle];
    known.device = device.value_or(0);
    ++known.instances;
  }
  return resolved;
}

void CompiledModule::useThreads(unsigned threads) const {
  if (setThreadCount)
    setThreadCount(static_cast<int>(
        std::min<unsigned>(threads, std::numeric_limits<int>::max())));
}

Result<std::shared_ptr<const CompiledModule>>
CompiledModule::fromManifest(const std::string &name,
                             std::string_view manifestText,
                             const SymbolResolver &resolve) {
  std::shared_ptr<CompiledModule> module(new CompiledModule(name, nullptr));
  return resolveEntries(std::move(module), manifestText, resolve);
}

Result<std::shared_ptr<const CompiledModule>>
CompiledModule::resolveEntries(std::shared_ptr<CompiledModule> module,
                               std::string_view manifestText,
                               const SymbolResolver &resolve) {
  using ResultT = Result<std::shared_ptr<const CompiledModule>>;
  const std::string &path = module->modulePath;
  Result<Manifest> parsed = parseManifest(manifestText);
  if (!parsed)
    return ResultT::failure(printable(path) + ": " + parsed.error());
  module->moduleManifest = parsed.take();
  Result<std::set<std::string>> disabled = disabledCpuFeatures();
  if (!disabled)
    return ResultT::failure(printable(path) + ": " + disabled.error());
  auto usable = [&](const std::string &feature) {
    return !disabled->count(feature) &&
           hostSupportsCpuFeature(feature).value_or(false);
  };
  // Before any of its code runs: an instruction this CPU lacks would kill
  // the process (SIGILL) in the first call.
  for (const std::string &feature : module->moduleManifest.cpuFeatures)
    if (!usable(feature))
      return ResultT::failure(
          printable(path) + ": compiled for CPU '" +
          printable(module->moduleManifest.cpuName) + "', whose feature '" +
          printable(feature) + "' " +
          (disabled->count(feature)
               ? std::string(kCpuDisableVariable) + " turns off"
               : std::string("this CPU (or its OS) lacks; compile it with "
                             "moe-compile --mcpu for this machine or a level "
                             "it has (e.g. x86-64-v3)")));
  // Every symbol of every variant is resolved, so that a broken module
  // fails on any CPU, not only on those that pick the broken variant.
  std::vector<EntryFunction> functions;
  for (const ManifestEntry &entry : module->moduleManifest.entries) {
    EntryFunction function = resolve(entry.symbol);
    if (!function)
      return ResultT::failure(printable(path) + ": entry '" +
                              printable(entry.name) + "': symbol '" +
                              printable(entry.symbol) + "' not found");
    functions.push_back(function);
    for (const ManifestArg &arg : entry.args) {
      if (!arg.isPacked() || module->packingFunctions.count(arg.packingSymbol))
        continue;
      EntryFunction packing = resolve(arg.packingSymbol);
      if (!packing)
        return ResultT::failure(printable(path) + ": entry '" +
                                printable(entry.name) +
                                "': packing symbol '" +
                                printable(arg.packingSymbol) + "' not found");
      module->packingFunctions.emplace(arg.packingSymbol, packing);
    }
  }
  // Of the variants of an entry point, the first whose features are usable;
  // the manifest guarantees that the last of each name requires none.
  std::vector<ManifestEntry> &entries = module->moduleManifest.entries;
  std::vector<ManifestEntry> chosen;
  for (size_t i = 0; i < entries.size(); ++i) {
    bool taken = std::any_of(chosen.begin(), chosen.end(),
                             [&](const ManifestEntry &other) {
                               return other.name == entries[i].name;
                             });
    if (!taken && std::all_of(entries[i].requiredFeatures.begin(),
                              entries[i].requiredFeatures.end(), usable)) {
      chosen.push_back(std::move(entries[i]));
      module->functions.push_back(functions[i]);
    }
  }
  entries = std::move(chosen);
  return std::shared_ptr<const CompiledModule>(std::move(module));
}

CompiledModule::~CompiledModule() {
  if (!handle)
    return;
  std::lock_guard<std::recursive_mutex> lock(detail::moduleLoadMutex());
  if (isGpu()) {
    auto known = gpuModules().find(handle);
    if (known != gpuModules().end() && --known->second.instances == 0)
      gpuModules().erase(known);
  }
  // The last close runs the module's destructors, which unload its GPU
  // code: on its device. Their failure has nobody to go to; an error the
  // thread already had stays.
  bool pending = detail::hasCudaError();
  int previousDevice = detail::currentCudaDevice();
  detail::setCurrentCudaDevice(gpuDevice);
  dlclose(handle);
  detail::setCurrentCudaDevice(previousDevice);
  if (!pending)
    (void)detail::takeCudaError();
}

Result<EntryPoint> CompiledModule::entry(std::string_view name) const {
  const std::vector<ManifestEntry> &entries = moduleManifest.entries;
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].name == name)
      return EntryPoint{&entries[i], functions[i]};
  std::string known = entries.empty()
                          ? "the module has none"
                          : "entries: " + moduleManifest.entryNames();
  return Result<EntryPoint>::failure(printable(modulePath) + ": no entry point '" +
                                     printable(name) + "' (" + known + ")");
}

EntryFunction CompiledModule::packingFunction(const std::string &symbol) const {
  auto found = packingFunctions.find(symbol);
  return found == packingFunctions.end() ? nullptr : found->second;
}
