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

#include <memory>

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
llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createTargetMachine(llvm::StringRef cpu);

/// Whether `machine` is an x86 target with every one of `features` (LLVM
/// names, e.g. "avx512bf16").
bool targetHasFeatures(const llvm::TargetMachine &machine,
                       llvm::ArrayRef<llvm::StringRef> features);

/// Records `machine`'s CPU and the ISA features it has
/// (moe/Runtime/CpuFeatures.h) in the manifest global of `module`, which
/// the runtime checks when it loads the module.
llvm::Error recordTarget(llvm::Module &module,
                         const llvm::TargetMachine &machine);

/// Optimizes `module` at -O3 for `machine` and writes an ELF object to
/// `objectPath`.
llvm::Error emitObject(llvm::Module &module, llvm::TargetMachine &machine,
                       llvm::StringRef objectPath);

/// Whether `name` is an entry point of the OpenMP runtime (libomp) that
/// code translated from the OpenMP dialect calls (`__kmpc_*`, `omp_*`).
bool isOpenMPEntry(llvm::StringRef name);

/// Links `objectPath` into the shared object `outputPath` with lld's ELF
/// driver, depending on libm (found in the system's library directories)
/// and, when `withOpenMP`, on LLVM's libomp.so.5 (recorded with its
/// directory as the run path, so that loading the module finds it).
llvm::Error linkSharedObject(llvm::StringRef objectPath,
                             llvm::StringRef outputPath, bool withOpenMP);

} // namespace moe::compile

#endif // MOE_TOOLS_MOECOMPILE_BACKEND_H
