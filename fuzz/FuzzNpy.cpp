//===- FuzzNpy.cpp - Fuzzing .npy reading ---------------------------------===//
//
// Invariants: an error is one printable line naming the file; an array that
// reads has as many elements as its shape says, and writing it back and
// reading that again gives the same shape and the same bits.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/Npy.h"

#include <cstring>

using namespace moe::runtime;
using namespace moe::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static MemoryFile file("x.npy");
  file.write(std::string_view(reinterpret_cast<const char *>(data), size));
  Result<NpyArray> array = readNpy(file.path());
  if (!array) {
    checkOneLine(array.error());
    FUZZ_CHECK(array.error().rfind(file.path() + ": ", 0) == 0,
               "error does not name the file: " + array.error());
    return 0;
  }
  std::optional<int64_t> count = checkedNumElements(array->shape);
  FUZZ_CHECK(count && static_cast<uint64_t>(*count) == array->data.size(),
             "element count does not match the shape");
  // writeNpy's fopen(path, "wb") truncates the memfd and writes it.
  static MemoryFile copy("copy.npy");
  Status written = writeNpy(copy.path(), *array);
  FUZZ_CHECK(written.ok(), "writing back failed: " + written.error());
  Result<NpyArray> again = readNpy(copy.path());
  FUZZ_CHECK(again.ok(), "reading back failed: " + again.error());
  FUZZ_CHECK(again->shape == array->shape, "round trip changed the shape");
  FUZZ_CHECK(again->data.size() == array->data.size() &&
                 (array->data.empty() ||
                  std::memcmp(again->data.data(), array->data.data(),
                              array->data.size() * sizeof(float)) == 0),
             "round trip changed the values");
  return 0;
}
