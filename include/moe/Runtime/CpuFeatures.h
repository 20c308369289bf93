//===- CpuFeatures.h - ISA features a compiled module needs -----*- C++ -*-===//
//
// The x86 instruction-set features that moe-compile records in a module's
// manifest (those the target it compiled for has) and that the runtime
// checks when it loads the module: a module compiled for AVX-512 is refused
// on a CPU without it, with one line, instead of dying of SIGILL in its
// first call. Names are LLVM's (`--mattr`); CPUID says where each is
// reported, and XCR0 which register state the OS must save for it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPUFEATURES_H
#define MOE_RUNTIME_CPUFEATURES_H

#include "moe/Runtime/Result.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace moe::runtime {

/// Where CPUID reports a feature.
struct CpuFeature {
  const char *name;
  uint32_t leaf, subleaf;
  /// 0 = EAX, 1 = EBX, 2 = ECX, 3 = EDX.
  uint8_t reg;
  uint8_t bit;
  /// XCR0 bits the OS must enable (register state it saves), 0 for none.
  uint64_t xcr0;
};

/// XCR0: SSE and AVX state; AVX-512's opmask and upper registers; AMX tiles.
inline constexpr uint64_t kXcr0Avx = 0x6;
inline constexpr uint64_t kXcr0Avx512 = 0xe6;
inline constexpr uint64_t kXcr0Amx = 0x60000 | 0x6;

/// The features recorded and checked, in the order the manifest lists them.
inline constexpr CpuFeature kCpuFeatures[] = {
    {"sse4.2", 1, 0, 2, 20, 0},
    {"popcnt", 1, 0, 2, 23, 0},
    {"avx", 1, 0, 2, 28, kXcr0Avx},
    {"fma", 1, 0, 2, 12, kXcr0Avx},
    {"f16c", 1, 0, 2, 29, kXcr0Avx},
    {"bmi", 7, 0, 1, 3, 0},
    {"avx2", 7, 0, 1, 5, kXcr0Avx},
    {"bmi2", 7, 0, 1, 8, 0},
    {"lzcnt", 0x80000001, 0, 2, 5, 0},
    {"avx512f", 7, 0, 1, 16, kXcr0Avx512},
    {"avx512dq", 7, 0, 1, 17, kXcr0Avx512},
    {"avx512ifma", 7, 0, 1, 21, kXcr0Avx512},
    {"avx512cd", 7, 0, 1, 28, kXcr0Avx512},
    {"avx512bw", 7, 0, 1, 30, kXcr0Avx512},
    {"avx512vl", 7, 0, 1, 31, kXcr0Avx512},
    {"avx512vbmi", 7, 0, 2, 1, kXcr0Avx512},
    {"avx512vbmi2", 7, 0, 2, 6, kXcr0Avx512},
    {"avx512vnni", 7, 0, 2, 11, kXcr0Avx512},
    {"avx512bitalg", 7, 0, 2, 12, kXcr0Avx512},
    {"avx512vpopcntdq", 7, 0, 2, 14, kXcr0Avx512},
    {"avx512fp16", 7, 0, 3, 23, kXcr0Avx512},
    {"avx512bf16", 7, 1, 0, 5, kXcr0Avx512},
    {"avxvnni", 7, 1, 0, 4, kXcr0Avx},
    {"amx-bf16", 7, 0, 3, 22, kXcr0Amx},
    {"amx-tile", 7, 0, 3, 24, kXcr0Amx},
    {"amx-int8", 7, 0, 3, 25, kXcr0Amx},
};

/// The entry of kCpuFeatures named `name`, or null.
inline const CpuFeature *findCpuFeature(std::string_view name) {
  for (const CpuFeature &feature : kCpuFeatures)
    if (name == feature.name)
      return &feature;
  return nullptr;
}

/// Whether this CPU and its OS support the feature `name` (a name of
/// kCpuFeatures); nullopt for a name not in the table. For AMX features the
/// process also asks Linux for permission to use the tile data
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, once); a refusal
/// makes them unsupported.
std::optional<bool> hostSupportsCpuFeature(std::string_view name);

/// The environment variable naming features (of kCpuFeatures, separated by
/// commas) that the runtime treats as absent, e.g.
/// `MOE_CPU_DISABLE=amx-tile,avx512bf16`: it forces the fallback variant of
/// a module compiled with several kernels (docs/CompiledModules.md).
inline constexpr const char *kCpuDisableVariable = "MOE_CPU_DISABLE";

/// The features kCpuDisableVariable names now; an error naming the first
/// name that is not in kCpuFeatures.
Result<std::set<std::string>> disabledCpuFeatures();

} // namespace moe::runtime

#endif // MOE_RUNTIME_CPUFEATURES_H
