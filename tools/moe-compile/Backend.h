//===- Backend.h - LLVM IR to a shared object, in process -------*- C++ -*-===//
//
// moe-compile's back end: LLVM's optimizer and code generator
// (TargetMachine) write an object file, lld (linked in as a library) turns
// it into the shared object the runtime loads. No clang or linker binary is
// needed at compile time.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOECOMPILE_BACKEND_H
#define MOE_TOOLS_MOECOMPILE_BACKEND_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <memory>
#include <string>
#include <vector>

namespace llvm {
class Module;
class TargetMachine;
} // namespace llvm

namespace moe::compile {

/// The target machine for `cpu` (an LLVM CPU name such as
/// "sapphirerapids" or "x86-64-v4", or "native" for the machine compiling,
/// with its features) on the host's triple, position-independent. LLVM's
/// code generation flags (llvm/CodeGen/CommandFlags.h: --mattr,
/// --code-model, target options) apply; a relocation model other than PIC
/// is an error, since the result is a shared object.
/// `moreFeatures` ("+name" or "-name") apply after --mattr.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createTargetMachine(llvm::StringRef cpu,
                    llvm::ArrayRef<std::string> moreFeatures = {});

/// Whether `machine` is an x86 target with every one of `features` (LLVM
/// names, e.g. "avx512bf16").
bool targetHasFeatures(const llvm::TargetMachine &machine,
                       llvm::ArrayRef<llvm::StringRef> features);

/// The name of the manifest global of a compiled module.
inline constexpr llvm::StringLiteral kManifestSymbol = "moe_module_manifest";

/// The manifest of `module` (the JSON object in kManifestSymbol).
llvm::Expected<llvm::json::Object> readManifest(const llvm::Module &module);

/// Replaces the manifest of `module` (which readManifest found) by
/// `manifest`.
void writeManifest(llvm::Module &module, llvm::json::Object manifest);

/// Records `machine`'s CPU and the ISA features it has
/// (moe/Runtime/CpuFeatures.h) in the manifest global of `module`, which
/// the runtime checks when it loads the module.
llvm::Error recordTarget(llvm::Module &module,
                         const llvm::TargetMachine &machine);

/// A module lowered with one choice of kernels, and the CPU features
/// (moe/Runtime/CpuFeatures.h) it needs beyond the module's target.
struct KernelVariant {
  /// Names the variant in the manifest and suffixes its symbols
  /// ("avx512bf16"); letters, digits and '_' only.
  std::string name;
  std::vector<std::string> requiredFeatures;
  std::unique_ptr<llvm::Module> module;
};

/// Links the variants `faster` (fastest first, in the LLVM context of
/// `floor`) into `floor`, the variant that runs wherever the module loads
/// and is named `floorName`. Each variant's exported symbols get the suffix
/// "__<name>"; its functions are compiled for `baseFeatures` (the target
/// feature string the module is compiled for) plus its required features;
/// the manifest lists its entries, with "variant" and "requires", before
/// the floor's, so that the runtime picks the first this CPU can run.
llvm::Error linkKernelVariants(llvm::Module &floor, llvm::StringRef floorName,
                               std::vector<KernelVariant> faster,
                               llvm::StringRef baseFeatures);

/// Optimizes `module` at -O3 for `machine` and writes an ELF object to
/// `objectPath`.
llvm::Error emitObject(llvm::Module &module, llvm::TargetMachine &machine,
                       llvm::StringRef objectPath);

/// Whether `name` is an entry point of the OpenMP runtime (libomp) that
/// code translated from the OpenMP dialect calls (`__kmpc_*`, `omp_*`).
bool isOpenMPEntry(llvm::StringRef name);

/// Whether `name` is a function of the MPI library that the MPI dialect's
/// and moe.all_to_all's lowerings call (`MPI_*`).
bool isMPIEntry(llvm::StringRef name);

/// The MPI library a module links: OpenMPI's libmpi.so.40 (its ABI uses
/// `ompi_*` globals) or MPICH's libmpi.so.12.
enum class MPILibrary { None, OpenMPI, MPICH };

/// Links `objectPath` into the shared object `outputPath` with lld's ELF
/// driver, depending on libm (found in the system's library directories),
/// when `withOpenMP` on LLVM's libomp.so.5 (recorded with its directory as
/// the run path, so that loading the module finds it), and on `mpi`'s
/// library (found in the system's library directories). With
/// `everySymbolDefined`, a symbol that neither the object, libc, libm nor
/// those libraries defines is an error (modules that call into the runtime
/// loading them, the GPU's, leave that off).
llvm::Error linkSharedObject(llvm::StringRef objectPath,
                             llvm::StringRef outputPath, bool withOpenMP,
                             MPILibrary mpi, bool everySymbolDefined);

} // namespace moe::compile

#endif // MOE_TOOLS_MOECOMPILE_BACKEND_H
