//===- Allocation.cpp - Buffers sized by untrusted input ------------------===//

#include "moe/Runtime/Allocation.h"

#include <algorithm>
#include <cstring>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

using namespace moe::runtime;

/// Bytes of a huge page on x86-64 and AArch64 Linux with 4 KiB base pages.
static constexpr uint64_t kHugePageBytes = 2 * 1024 * 1024;

uint64_t moe::runtime::maxAllocationBytes() {
  // Physical memory does not change: read once. The limits can (setrlimit),
  // and getrlimit is cheap next to a run.
  static const uint64_t physical = [] {
    long pages = sysconf(_SC_PHYS_PAGES);
    long pageSize = sysconf(_SC_PAGESIZE);
    return pages > 0 && pageSize > 0
               ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(pageSize)
               : UINT64_MAX;
  }();
  uint64_t limit = physical;
  for (int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    struct rlimit rl;
    if (getrlimit(resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      limit = std::min<uint64_t>(limit, rl.rlim_cur);
  }
  return limit;
}

Status moe::runtime::checkAllocation(uint64_t numBytes,
                                     const std::string &what) {
  uint64_t limit = maxAllocationBytes();
  if (numBytes <= limit)
    return Status::success();
  return Status::failure(what + " needs " + std::to_string(numBytes) +
                         " bytes, more than the " + std::to_string(limit) +
                         " bytes this process can allocate");
}

Result<AlignedBuffer> AlignedBuffer::allocate(uint64_t numBytes,
                                              const std::string &what,
                                              bool zero) {
  Status status = checkAllocation(numBytes, what);
  if (!status)
    return status;
  // Large buffers (weights, packed weights) in huge pages where the kernel
  // has them on request: their first touch then faults once per 2 MiB
  // instead of once per 4 KiB, which dominated binding and packing.
  uint64_t alignment = numBytes >= kHugePageBytes ? kHugePageBytes : kAlignment;
  // aligned_alloc wants a multiple of the alignment; never zero, so that an
  // empty buffer still has an address.
  uint64_t rounded = std::max<uint64_t>(alignment, (numBytes + alignment - 1) /
                                                       alignment * alignment);
  void *memory = std::aligned_alloc(static_cast<size_t>(alignment),
                                    static_cast<size_t>(rounded));
  if (!memory)
    return Result<AlignedBuffer>::failure(what + ": cannot allocate " +
                                          std::to_string(numBytes) + " bytes");
  // Advice only: without transparent huge pages it fails and changes nothing.
  if (alignment == kHugePageBytes)
    (void)madvise(memory, static_cast<size_t>(rounded), MADV_HUGEPAGE);
  if (zero)
    std::memset(memory, 0, static_cast<size_t>(rounded));
  AlignedBuffer buffer;
  buffer.memory.reset(memory);
  buffer.numBytes = static_cast<size_t>(numBytes);
  return buffer;
}
