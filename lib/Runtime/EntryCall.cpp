//===- EntryCall.cpp - The calling convention of entry points -------------===//
//
// The call dispatch is a table of functions, one per argument count, each
// casting the entry's address to the function type of that arity; it is
// generated with an index sequence up to kMaxEntryArgs.
//
//===----------------------------------------------------------------------===//

#include "EntryCall.h"
#include "moe/Runtime/CheckedArithmetic.h"

#include <array>
#include <cassert>
#include <cstring>
#include <utility>

using namespace moe::runtime;
using namespace moe::runtime::detail;

namespace {

void storePointer(uint64_t *word, const void *pointer) {
  static_assert(sizeof(void *) == sizeof(uint64_t), "64-bit targets only");
  std::memcpy(word, &pointer, sizeof(pointer));
}

void *loadPointer(const uint64_t *word) {
  void *pointer;
  std::memcpy(&pointer, word, sizeof(pointer));
  return pointer;
}

/// `void *` for every index of a pack.
template <size_t> using PointerArg = void *;

/// Calls `function` with `results` and `args[0 .. sizeof...(I))`.
template <size_t... I>
#if defined(__clang__)
// The callee is compiled code without the sanitizer's type signature.
__attribute__((no_sanitize("function")))
#endif
void callWithArity(EntryFunction function, void *results, void *const *args,
                   std::index_sequence<I...>) {
  using Typed = void (*)(void *, PointerArg<I>...);
  reinterpret_cast<Typed>(function)(results, args[I]...);
}

using Caller = void (*)(EntryFunction, void *, void *const *);

template <size_t N>
void callN(EntryFunction function, void *results, void *const *args) {
  callWithArity(function, results, args, std::make_index_sequence<N>());
}

template <size_t... N>
constexpr std::array<Caller, sizeof...(N)>
makeCallers(std::index_sequence<N...>) {
  return {{&callN<N>...}};
}

/// kCallers[n] calls an entry taking n arguments after the results.
constexpr std::array<Caller, kMaxEntryArgs + 1> kCallers =
    makeCallers(std::make_index_sequence<kMaxEntryArgs + 1>());

} // namespace

bool DescriptorBlock::addRowMajor(const void *data,
                                  const std::vector<int64_t> &sizes) {
  std::optional<std::vector<int64_t>> strides = checkedRowMajorStrides(sizes);
  if (!strides)
    return false;
  size_t rank = sizes.size();
  addEmpty(rank);
  uint64_t *d = words.data() + starts.back();
  storePointer(d, data);
  storePointer(d + 1, data);
  for (size_t i = 0; i < rank; ++i) {
    d[3 + i] = static_cast<uint64_t>(sizes[i]);
    d[3 + rank + i] = static_cast<uint64_t>((*strides)[i]);
  }
  return true;
}

void DescriptorBlock::addEmpty(size_t rank) {
  starts.push_back(words.size());
  ranks.push_back(rank);
  words.resize(words.size() + 3 + 2 * rank, 0);
}

DescriptorBlock::View DescriptorBlock::read(size_t index) const {
  const uint64_t *d = words.data() + starts[index];
  size_t rank = ranks[index];
  View view;
  view.allocated = loadPointer(d);
  view.aligned = loadPointer(d + 1);
  view.offset = static_cast<int64_t>(d[2]);
  for (size_t i = 0; i < rank; ++i) {
    view.sizes.push_back(static_cast<int64_t>(d[3 + i]));
    view.strides.push_back(static_cast<int64_t>(d[3 + rank + i]));
  }
  return view;
}

void detail::callEntry(EntryFunction function, void *results,
                       void *const *args, size_t numArgs) {
  assert(numArgs < kCallers.size() && "too many entry arguments");
  kCallers[numArgs](function, results, args);
}

void detail::callPacking(EntryFunction function, void *source, void *packed) {
  reinterpret_cast<void (*)(void *, void *)>(function)(source, packed);
}

void *detail::emptyBufferAddress() {
  alignas(64) static uint64_t placeholder[8];
  return placeholder;
}
