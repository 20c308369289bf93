//===- FuzzSafetensors.cpp - Fuzzing single safetensors files -------------===//
//
// The input is one .safetensors file. Invariants: an error is one printable
// line naming the file; every tensor of a file that opens lies inside the
// data buffer with numBytes = elements x item size, tensors do not overlap,
// lookup by name finds each one, and decoding to f32 succeeds for every
// float dtype.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/Safetensors.h"

#include <algorithm>

using namespace moe::runtime;
using namespace moe::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static MemoryFile file("model.safetensors");
  file.write(std::string_view(reinterpret_cast<const char *>(data), size));
  Result<Checkpoint> checkpoint = Checkpoint::open(file.path());
  if (!checkpoint) {
    checkOneLine(checkpoint.error());
    FUZZ_CHECK(checkpoint.error().rfind(file.path() + ": ", 0) == 0,
               "error does not name the file: " + checkpoint.error());
    return 0;
  }
  FUZZ_CHECK(checkpoint->files().size() == 1, "one file expected");
  const SafetensorsFile &st = checkpoint->files()[0];
  // The buffer starts after the 8-byte length and the header.
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | data[i];
  FUZZ_CHECK(8 + headerSize <= size && st.fileSize() == size,
             "header beyond the file");
  const uint8_t *bufferBegin = st.fileData() + 8 + headerSize;
  const uint8_t *bufferEnd = st.fileData() + size;
  std::vector<std::pair<const uint8_t *, const uint8_t *>> ranges;
  for (const TensorView &tensor : checkpoint->tensors()) {
    std::optional<int64_t> bytes =
        checkedByteSize(tensor.shape, dtypeSize(tensor.dtype));
    FUZZ_CHECK(bytes && static_cast<uint64_t>(*bytes) == tensor.numBytes,
               "numBytes does not match the shape");
    FUZZ_CHECK(checkpoint->find(tensor.name) != nullptr, "lookup failed");
    if (tensor.numBytes == 0)
      continue;
    auto *begin = static_cast<const uint8_t *>(tensor.data);
    FUZZ_CHECK(begin >= bufferBegin && begin + tensor.numBytes <= bufferEnd,
               "tensor outside the data buffer");
    ranges.push_back({begin, begin + tensor.numBytes});
    if (isConvertibleToF32(tensor.dtype)) {
      Result<std::vector<float>> values = readAsF32(tensor);
      FUZZ_CHECK(values.ok(), "decoding failed: " + values.error());
      FUZZ_CHECK(values->size() * dtypeSize(tensor.dtype) == tensor.numBytes,
                 "decoded element count");
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    FUZZ_CHECK(ranges[i].first >= ranges[i - 1].second, "tensors overlap");
  for (const auto &item : st.metadata())
    (void)printable(item.first + item.second);
  return 0;
}
