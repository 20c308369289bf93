//===- MpiWorld.cpp - The MPI world of expert-parallel modules ------------===//
//
// The MPI functions are looked up in the module's handle (dlsym searches the
// libraries it depends on). MPI handles differ by library: OpenMPI's are
// addresses of its predefined objects (`ompi_mpi_comm_world`), MPICH's are
// ints; both travel in one integer register, so they are passed here as
// intptr_t. The library is made global (RTLD_GLOBAL) before MPI_Init, for
// the plugins OpenMPI loads, and is never unloaded (RTLD_NODELETE): MPI is
// finalized at exit, after the modules may have been closed.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/MpiWorld.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

using namespace moe::runtime;

int64_t moe::runtime::expertOwnedStart(int64_t numExperts, int64_t numRanks,
                                       int64_t rank) {
  return rank * numExperts / numRanks;
}

int64_t moe::runtime::expertWindowStart(int64_t numExperts, int64_t numRanks,
                                        int64_t rank) {
  int64_t window = (numExperts + numRanks - 1) / numRanks;
  return std::min(expertOwnedStart(numExperts, numRanks, rank),
                  numExperts - window);
}

struct MpiWorld::Library {
  using Handle = intptr_t;
  int (*initialized)(int *) = nullptr;
  int (*finalized)(int *) = nullptr;
  int (*initThread)(int *, char ***, int, int *) = nullptr;
  int (*finalize)() = nullptr;
  int (*commRank)(Handle, int *) = nullptr;
  int (*commSize)(Handle, int *) = nullptr;
  int (*gather)(const void *, int, Handle, void *, int, Handle, int,
                Handle) = nullptr;
  int (*gatherv)(const void *, int, Handle, void *, const int *, const int *,
                 Handle, int, Handle) = nullptr;
  int (*allgather)(const void *, int, Handle, void *, int, Handle,
                   Handle) = nullptr;
  int (*abort)(Handle, int) = nullptr;
  Handle commWorld = 0;
  Handle byte = 0;
};

namespace {

/// MPI_THREAD_SERIALIZED (the same value in OpenMPI and MPICH).
constexpr int kThreadSerialized = 2;

template <typename Function>
bool lookup(void *handle, const char *name, Function &function) {
  void *address = dlsym(handle, name);
  if (!address)
    return false;
  static_assert(sizeof(function) == sizeof(address),
                "function and data pointers differ");
  std::memcpy(&function, &address, sizeof(function));
  return true;
}

void finalizeAtExit();
MpiWorld::Library *loadedLibrary = nullptr;
std::atomic<const MpiWorld *> attachedWorld{nullptr};

void finalizeAtExit() {
  int done = 0;
  if (loadedLibrary && loadedLibrary->finalized(&done) == 0 && !done)
    loadedLibrary->finalize();
}

} // namespace

Result<const MpiWorld *> MpiWorld::attach(void *moduleHandle,
                                          const std::string &libraryName,
                                          const std::string &path) {
  using ResultT = Result<const MpiWorld *>;
  static std::mutex mutex;
  static MpiWorld world;
  static Library library;
  static std::string loadError;
  std::lock_guard<std::mutex> lock(mutex);
  if (world.library)
    return ResultT(&world);
  auto fail = [&](const std::string &problem) {
    return ResultT::failure(path + ": " + problem);
  };
  bool openMPI = libraryName == "OpenMPI";
  void *init = dlsym(moduleHandle, "MPI_Init_thread");
  Dl_info info;
  if (!init || !dladdr(init, &info) || !info.dli_fname)
    return fail("the module runs on MPI but its MPI library has no "
                "MPI_Init_thread");
  // Global and resident from here on.
  void *global = dlopen(info.dli_fname,
                        RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL | RTLD_NODELETE);
  if (!global)
    return fail(std::string("cannot make the MPI library global: ") +
                dlerror());
  bool found = lookup(global, "MPI_Initialized", library.initialized) &&
               lookup(global, "MPI_Finalized", library.finalized) &&
               lookup(global, "MPI_Init_thread", library.initThread) &&
               lookup(global, "MPI_Finalize", library.finalize) &&
               lookup(global, "MPI_Comm_rank", library.commRank) &&
               lookup(global, "MPI_Comm_size", library.commSize) &&
               lookup(global, "MPI_Gather", library.gather) &&
               lookup(global, "MPI_Gatherv", library.gatherv) &&
               lookup(global, "MPI_Allgather", library.allgather) &&
               lookup(global, "MPI_Abort", library.abort);
  if (openMPI) {
    void *comm = dlsym(global, "ompi_mpi_comm_world");
    void *byte = dlsym(global, "ompi_mpi_byte");
    found = found && comm && byte;
    library.commWorld = reinterpret_cast<intptr_t>(comm);
    library.byte = reinterpret_cast<intptr_t>(byte);
  } else {
    library.commWorld = 0x44000000; // MPICH's MPI_COMM_WORLD.
    library.byte = 0x4c00010d;      // MPICH's MPI_BYTE.
  }
  if (!found)
    return fail("the module's MPI library is not " + libraryName +
                " (a function or object is missing)");
  int initialized = 0;
  library.initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (library.initThread(nullptr, nullptr, kThreadSerialized, &provided) != 0)
      return fail("MPI_Init_thread failed");
    loadedLibrary = &library;
    std::atexit(finalizeAtExit);
    // Calls come from one thread at a time, not always the same one.
    if (provided < kThreadSerialized)
      return fail("the MPI library offers thread level " +
                  std::to_string(provided) + ", below MPI_THREAD_SERIALIZED");
  }
  library.commRank(library.commWorld, &world.worldRank);
  library.commSize(library.commWorld, &world.worldSize);
  world.library = &library;
  attachedWorld.store(&world);
  return ResultT(&world);
}

const MpiWorld *MpiWorld::current() { return attachedWorld.load(); }

Status MpiWorld::gather(const void *bytes, size_t size,
                        std::vector<uint8_t> &gathered) const {
  gathered.clear();
  // Every rank's size first (8 bytes each), then the bytes.
  uint64_t mine = size;
  std::vector<uint64_t> sizes(static_cast<size_t>(worldSize));
  if (library->gather(&mine, 8, library->byte, sizes.data(), 8, library->byte,
                      0, library->commWorld) != 0)
    return Status::failure("MPI_Gather of the result sizes failed");
  std::vector<int> counts, offsets;
  uint64_t total = 0;
  if (worldRank == 0)
    for (uint64_t count : sizes) {
      if (count > INT_MAX || total > INT_MAX)
        return Status::failure("results over 2 GiB per rank cannot be "
                               "gathered");
      counts.push_back(static_cast<int>(count));
      offsets.push_back(static_cast<int>(total));
      total += count;
    }
  if (size > INT_MAX)
    return Status::failure("results over 2 GiB per rank cannot be gathered");
  if (worldRank == 0)
    gathered.resize(static_cast<size_t>(total));
  if (library->gatherv(bytes, static_cast<int>(size), library->byte,
                       gathered.data(), counts.data(), offsets.data(),
                       library->byte, 0, library->commWorld) != 0)
    return Status::failure("MPI_Gatherv of the results failed");
  return Status::success();
}

Result<bool> MpiWorld::allAgree(uint64_t value) const {
  std::vector<uint64_t> values(static_cast<size_t>(worldSize));
  if (library->allgather(&value, 8, library->byte, values.data(), 8,
                         library->byte, library->commWorld) != 0)
    return Result<bool>::failure("MPI_Allgather failed");
  return Result<bool>(std::all_of(values.begin(), values.end(),
                                  [&](uint64_t v) { return v == value; }));
}

void MpiWorld::abort(int code) const {
  library->abort(library->commWorld, code);
  std::_Exit(code);
}
