//===- CpuFeatures.cpp - This CPU's ISA features --------------------------===//

#include "moe/Runtime/CpuFeatures.h"

#include <algorithm>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MOE_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

using namespace moe::runtime;

namespace {

#ifdef MOE_X86
/// Register `reg` of CPUID leaf/subleaf, or 0 past the highest leaf.
uint32_t cpuid(uint32_t leaf, uint32_t subleaf, uint8_t reg) {
  unsigned regs[4] = {0, 0, 0, 0};
  if (!__get_cpuid_count(leaf, subleaf, &regs[0], &regs[1], &regs[2],
                         &regs[3]))
    return 0;
  return regs[reg];
}

/// XCR0, the register state the OS saves; 0 without OSXSAVE.
uint64_t xcr0() {
  constexpr unsigned kOsxsave = 1u << 27;
  if (!(cpuid(1, 0, 2) & kOsxsave))
    return 0;
  uint32_t low, high;
  __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (static_cast<uint64_t>(high) << 32) | low;
}

/// Linux hands out AMX tile state only on request (since 5.16).
bool amxPermitted() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  static const bool permitted = [] {
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) ==
           0;
  }();
  return permitted;
#else
  return false;
#endif
}
#endif

} // namespace

std::optional<bool>
moe::runtime::hostSupportsCpuFeature(std::string_view name) {
  const CpuFeature *feature = findCpuFeature(name);
  if (!feature)
    return std::nullopt;
#ifdef MOE_X86
  if (!(cpuid(feature->leaf, feature->subleaf, feature->reg) &
        (1u << feature->bit)))
    return false;
  if (feature->xcr0 && (xcr0() & feature->xcr0) != feature->xcr0)
    return false;
  return feature->xcr0 != kXcr0Amx || amxPermitted();
#else
  return false;
#endif
}

Result<std::set<std::string>> moe::runtime::disabledCpuFeatures() {
  std::set<std::string> disabled;
  const char *value = std::getenv(kCpuDisableVariable);
  std::string_view list = value ? value : "";
  while (!list.empty()) {
    size_t comma = std::min(list.find(','), list.size());
    std::string_view name = list.substr(0, comma);
    list.remove_prefix(std::min(comma + 1, list.size()));
    if (name.empty())
      continue;
    if (!findCpuFeature(name))
      return Result<std::set<std::string>>::failure(
          std::string(kCpuDisableVariable) + ": unknown CPU feature '" +
          printable(name) + "'");
    disabled.emplace(name);
  }
  return disabled;
}
