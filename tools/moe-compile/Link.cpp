//===- Link.cpp - An object file to a shared object with lld --------------===//
//
// lld's ELF driver, linked into moe-compile as a library: `ld.lld -shared
// -o OUT OBJ libm.so.6 [libomp.so.5 -rpath DIR] [libmpi.so.N]`. The module
// calls only libc, libm and, when its loops run on threads, libomp, and
// under expert parallelism MPI (moe-compile checks that), so it needs no
// start files; the libraries are given by path so
// that the shared object records them as needed, and libc comes with any
// process that loads the module.
//
//===----------------------------------------------------------------------===//

#include "Backend.h"

#include "lld/Common/Driver.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

LLD_HAS_DRIVER(elf)

using namespace llvm;

namespace {

/// `name` in the usual library directories, or "" when none has it.
std::string findLibrary(StringRef name) {
  for (const char *dir :
       {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
        "/usr/lib64", "/lib", "/usr/lib"}) {
    std::string path = (Twine(dir) + "/" + name).str();
    if (sys::fs::exists(path))
      return path;
  }
  return "";
}

} // namespace

bool moe::compile::isMPIEntry(StringRef name) {
  return name.starts_with("MPI_");
}

bool moe::compile::isOpenMPEntry(StringRef name) {
  return name.starts_with("__kmpc_") || name.starts_with("omp_");
}

Error moe::compile::linkSharedObject(StringRef objectPath, StringRef outputPath,
                                     bool withOpenMP, MPILibrary mpi,
                                     bool everySymbolDefined) {
  std::string object = objectPath.str(), output = outputPath.str();
  std::string libm = findLibrary("libm.so.6");
  std::string libc = findLibrary("libc.so.6");
  // The runtime routines of GCC's support library: f16 conversions on
  // targets without F16C (__extendhfsf2, __truncsfhf2); a dependency only
  // where a module calls one (--as-needed).
  std::string libgcc = findLibrary("libgcc_s.so.1");
  SmallVector<const char *> args = {"ld.lld",   "-shared", "--as-needed",
                                    "-O2",      "-o",      output.c_str(),
                                    object.c_str()};
  if (!libm.empty())
    args.push_back(libm.c_str());
  if (!libgcc.empty())
    args.push_back(libgcc.c_str());
  // A symbol that none of these libraries (nor libomp or MPI's, below)
  // defines would make the runtime's dlopen fail: a routine the code
  // generator called for an instruction the target lacks (compiler-rt's
  // __truncsfbf2 for a bf16 value on AVX2, say) is an error here instead.
  if (everySymbolDefined && !libc.empty())
    args.append({libc.c_str(), "-z", "defs"});
  // The OpenMP runtime of the LLVM that built moe-compile (Debian's
  // libomp-22-dev), which the translated omp.parallel regions call.
  std::string libomp = MOE_LIBOMP_DIR "/libomp.so.5";
  if (withOpenMP) {
    if (!sys::fs::exists(libomp))
      return createStringError(
          inconvertibleErrorCode(),
          "the module runs its loops on OpenMP threads, but '" + libomp +
              "' does not exist (install libomp-22-dev)");
    args.append({libomp.c_str(), "-rpath", MOE_LIBOMP_DIR});
  }
  std::string libmpi;
  if (mpi != MPILibrary::None) {
    StringRef name =
        mpi == MPILibrary::OpenMPI ? "libmpi.so.40" : "libmpi.so.12";
    libmpi = findLibrary(name);
    if (libmpi.empty())
      return createStringError(
          inconvertibleErrorCode(),
          "the module exchanges rows over MPI, but no library directory has '" +
              name + "' (install " +
              (mpi == MPILibrary::OpenMPI ? "libopenmpi-dev" : "libmpich-dev") +
              ")");
    args.push_back(libmpi.c_str());
  }
  std::string diagnostics;
  raw_string_ostream messages(diagnostics);
  lld::Result result = lld::lldMain(args, messages, messages,
                                    {{lld::Gnu, &lld::elf::link}});
  if (result.retCode != 0) {
    // lld's messages are "ld.lld: error: ..." lines; keep the first. (The
    // path from `output`: lld resets every llvm::cl option when it ends,
    // the caller's --o string among them, which `outputPath` may view.)
    StringRef first = StringRef(diagnostics).split('\n').first;
    return createStringError(inconvertibleErrorCode(),
                             "linking '" + output + "' failed" +
                                 (first.empty() ? "" : ": " + first.str()));
  }
  return Error::success();
}
