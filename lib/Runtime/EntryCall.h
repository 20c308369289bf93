//===- EntryCall.h - The calling convention of entry points -----*- C++ -*-===//
//
// Internal to the runtime library. Entry points take pointers to memref
// descriptors (docs/CompiledModules.md):
//
//   struct { void *allocated; void *aligned; int64_t offset;
//            int64_t sizes[N]; int64_t strides[N]; };
//
// and are called as `void symbol(void *results, void *arg0, ...)`.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_ENTRYCALL_H
#define MOE_RUNTIME_ENTRYCALL_H

#include "moe/Runtime/Module.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe::runtime::detail {

/// Memref descriptors laid out one after the other in one buffer of 64-bit
/// words, as the callee reads them (every field is 8 bytes, so there is no
/// padding, and several descriptors form the struct of several results).
class DescriptorBlock {
public:
  /// Appends the descriptor of a row-major buffer at `data` (allocated =
  /// aligned = data, offset 0, contiguous strides); false, adding nothing,
  /// when the strides of `sizes` do not fit int64.
  [[nodiscard]] bool addRowMajor(const void *data,
                                 const std::vector<int64_t> &sizes);
  /// Appends a zeroed descriptor of rank `rank` for the callee to fill.
  void addEmpty(size_t rank);

  /// The number of descriptors.
  size_t size() const { return starts.size(); }
  /// Descriptor `index`; valid until the next add.
  void *at(size_t index) { return words.data() + starts[index]; }

  /// Descriptor `index` as filled by a callee.
  struct View {
    void *allocated = nullptr;
    void *aligned = nullptr;
    int64_t offset = 0;
    std::vector<int64_t> sizes;
    std::vector<int64_t> strides;
  };
  /// Reads descriptor `index`.
  View read(size_t index) const;

private:
  std::vector<uint64_t> words;
  std::vector<size_t> starts;
  std::vector<size_t> ranks;
};

/// Calls `function` as `void (void *results, void *args[0], ...)` with
/// `numArgs` <= kMaxEntryArgs pointer arguments.
void callEntry(EntryFunction function, void *results, void *const *args,
               size_t numArgs);

/// Calls the packing function of a weight (ManifestArg::packingSymbol) as
/// `void (void *source, void *packed)`, both memref descriptors.
void callPacking(EntryFunction function, void *source, void *packed);

/// A non-null, 64-byte aligned address to pass for empty buffers.
void *emptyBufferAddress();

} // namespace moe::runtime::detail

#endif // MOE_RUNTIME_ENTRYCALL_H
