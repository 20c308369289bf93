//===- Allocation.h - Buffers sized by untrusted input ----------*- C++ -*-===//
//
// Buffers whose size comes from input (a .npy shape, a checkpoint's tensor
// sizes, a manifest's result shape) are checked against what the process can
// allocate before they are allocated, so that a hostile size ends in one
// error line instead of std::bad_alloc, an ASan "allocation-size-too-big"
// report or the OOM killer. The limit is the machine's physical memory,
// lowered by RLIMIT_AS and RLIMIT_DATA when they are set.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_ALLOCATION_H
#define MOE_RUNTIME_ALLOCATION_H

#include "moe/Runtime/Result.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace moe::runtime {

/// The largest single buffer the runtime agrees to allocate, in bytes.
uint64_t maxAllocationBytes();

/// Fails with "<what> needs N bytes, more than the M bytes this process can
/// allocate" when `numBytes` exceeds maxAllocationBytes().
Status checkAllocation(uint64_t numBytes, const std::string &what);

/// A buffer aligned to 64 bytes, freed on destruction.
class AlignedBuffer {
public:
  /// The alignment of every buffer.
  static constexpr size_t kAlignment = 64;

  /// Allocates `numBytes` bytes, zero-filled unless `zero` is false, after
  /// checkAllocation(); an empty buffer has a non-null data(). Errors name
  /// `what`.
  static Result<AlignedBuffer> allocate(uint64_t numBytes,
                                        const std::string &what,
                                        bool zero = true);

  AlignedBuffer() = default;

  /// The first byte.
  void *data() const { return memory.get(); }
  /// The size in bytes.
  size_t size() const { return numBytes; }
  /// Gives up ownership; the caller frees the memory with std::free.
  void *release() { return memory.release(); }

private:
  struct FreeDeleter {
    void operator()(void *p) const { std::free(p); }
  };
  std::unique_ptr<void, FreeDeleter> memory;
  size_t numBytes = 0;
};

} // namespace moe::runtime

#endif // MOE_RUNTIME_ALLOCATION_H
