//===- Manifest.h - The manifest of a compiled module -----------*- C++ -*-===//
//
// A module compiled by moe-compile exports its entry points as a JSON string,
// the global `moe_module_manifest` (docs/CompiledModules.md). This header
// holds the parsed form and the strict parser that validates it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_MANIFEST_H
#define MOE_RUNTIME_MANIFEST_H

#include "moe/Runtime/Result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moe::runtime {

/// The manifest version this runtime reads.
constexpr int64_t kManifestVersion = 1;

/// The most arguments an entry point may take (the runtime's call dispatch
/// is generated up to this count).
constexpr size_t kMaxEntryArgs = 64;

/// The placeholder of a stacked weight name, replaced by 0 .. E-1.
constexpr std::string_view kExpertPlaceholder = "{e}";

/// The element types of entry point arguments and results.
/// F8E4M3FN: OCP FP8 e4m3 without infinities (block-scaled expert weights).
/// I8: bytes; as expert weights, pairs of e2m1 codes (MXFP4 blocks).
enum class ElementType { F32, BF16, F16, I32, I64, F8E4M3FN, I8 };

/// The manifest spelling of `type` ("f32", "bf16", "f16", "i32", "i64").
const char *elementTypeName(ElementType type);

/// The size in bytes of one element of `type`.
size_t elementTypeSize(ElementType type);

/// Formats a manifest type as "f32 [-1, 64]".
std::string formatArgType(ElementType type, const std::vector<int64_t> &shape);

/// What an argument of an entry point is bound to.
enum class ArgKind {
  /// Activations passed at every call.
  Input,
  /// A checkpoint tensor (or a stack of them) bound once.
  Weight,
  /// The caller's buffer for a result, passed at every call: the entry
  /// writes the result into it (destination-passing style; modules
  /// compiled with device-io) and returns it.
  Output,
};

/// One argument of an entry point.
/// How a weight is stored in the checkpoint.
enum class WeightFormat : uint8_t { Plain, Mxfp4, E8m0 };

struct ManifestArg {
  /// Input, weight or output.
  ArgKind kind = ArgKind::Input;
  /// An output: the index of the entry's result it receives.
  int64_t result = -1;
  /// The element type.
  ElementType type = ElementType::F32;
  /// The dimensions; -1 is dynamic.
  std::vector<int64_t> shape;
  /// The checkpoint tensor name of a weight, possibly with one "{e}".
  std::string weightName;
  /// A packed weight: the symbol of the module's function that packs it
  /// (`void symbol(void *source, void *packed)`, memref descriptors),
  /// empty otherwise.
  std::string packingSymbol;
  /// The static shape the checkpoint tensor (or stack) has before packing;
  /// `shape` is the packed one.
  std::vector<int64_t> packingShape;
  /// How the checkpoint stores the weight: as the tensor `weightName`
  /// itself, or (`Mxfp4`) as `<weightName>_blocks` and `_scales` (U8 e2m1
  /// pairs and e8m0 scales per 32 values of the last dimension, gpt-oss),
  /// decoded to the bf16 weight when it is bound; or (`E8m0`, f32
  /// weights) as U8 exponents `s`, each the value `2^(s - 127)` (+inf for
  /// 255), decoded when it is bound.
  WeightFormat format = WeightFormat::Plain;
  /// Expert parallelism: the number of experts E of the checkpoint tensor
  /// (its first dimension, or the stack's) of which the argument, whose
  /// first dimension is the window W, holds this rank's window (experts
  /// from min(floor(rank E / R), E - W), Manifest::mpiRanks = R); 0 for a
  /// whole tensor.
  int64_t windowOf = 0;

  /// True for a weight whose name holds the "{e}" placeholder.
  bool isStacked() const;
  /// True for a weight bound through a packing function.
  bool isPacked() const { return !packingSymbol.empty(); }
};

/// One result of an entry point.
struct ManifestResult {
  /// The element type.
  ElementType type = ElementType::F32;
  /// The dimensions; -1 is dynamic.
  std::vector<int64_t> shape;
};

/// One entry point: a C function taking memref descriptors.
struct ManifestEntry {
  /// The name of the function in the IR ("forward").
  std::string name;
  /// The exported symbol ("_mlir_ciface_forward").
  std::string symbol;
  /// True when every token's output depends only on that token, so that the
  /// tokens may be split over threads.
  bool tokenParallel = false;
  /// The arguments, in order.
  std::vector<ManifestArg> args;
  /// The results, in order.
  std::vector<ManifestResult> results;
  /// The kernel variant this entry is (e.g. "avx512bf16", "f32") when the
  /// module holds several of the entry; empty otherwise.
  std::string variant;
  /// The CPU features (CpuFeatures.h) this variant needs beyond the module's
  /// `cpu` features. Entries sharing a name are variants of one entry point,
  /// fastest first: the runtime runs the first whose features this CPU has;
  /// the last one of a name requires none.
  std::vector<std::string> requiredFeatures;

  /// Whether `other` takes the same inputs, binds the same checkpoint
  /// tensors (packed or not) and returns the same results, so that either
  /// may run in place of the other.
  bool sameSignature(const ManifestEntry &other) const;
};

/// The parsed manifest of a module.
struct Manifest {
  /// What compiled the module: "moe-mlir MAJOR.MINOR.PATCH"; empty for
  /// modules from before the key existed.
  std::string producer;
  /// The CPU the module was compiled for (an LLVM CPU name such as "znver4"
  /// or "x86-64-v4") and the ISA features of CpuFeatures.h it may use;
  /// empty for modules from before the key existed (nothing is checked).
  std::string cpuName;
  std::vector<std::string> cpuFeatures;
  /// The GPU code the module holds: the API ("cuda") and the chip it was
  /// compiled for ("sm_90"); empty for CPU modules. A GPU module's
  /// constructors load its GPU binary (the `mgpu*` calls, CudaDriver.h) on
  /// the device chosen when it is loaded.
  std::string gpuApi;
  /// Expert parallelism: the number of ranks of MPI_COMM_WORLD the module
  /// runs on, and the MPI library whose ABI it calls ("OpenMPI" or
  /// "MPICH"); 0 and empty for a module of one process.
  int64_t mpiRanks = 0;
  std::string mpiLibrary;
  std::string gpuChip;
  /// Whether a GPU module's entries take and return device memory and are
  /// enqueued on their caller's stream (the manifest's gpu "io": "device";
  /// "host", the default, copies host buffers in and out).
  bool gpuDeviceIO = false;
  /// The entry points, in manifest order. A name repeats only for variants
  /// of one entry point (ManifestEntry::requiredFeatures).
  std::vector<ManifestEntry> entries;

  /// The entry named `name`, or null.
  const ManifestEntry *find(std::string_view name) const;
  /// The entry names, each once, comma-separated, for error messages.
  std::string entryNames() const;
};

/// Parses and validates manifest JSON text. Errors read
/// "invalid manifest: <where>: <problem>", e.g.
/// "invalid manifest: entries[0].args[1]: 'shape' has a dimension below -1".
Result<Manifest> parseManifest(std::string_view text);

} // namespace moe::runtime

#endif // MOE_RUNTIME_MANIFEST_H
