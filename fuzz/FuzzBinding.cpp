//===- FuzzBinding.cpp - Fuzzing weight binding and entry calls -----------===//
//
// The input holds a manifest, a checkpoint file and a token count. The
// module's code is a harness kernel per arity that checks every descriptor
// it receives against the manifest, reads each argument buffer whole (ASan
// sees any byte outside it) and returns freshly allocated results, which
// the runtime copies out and frees. Invariants: errors are one printable
// line; a bound weight lies in the checkpoint mapping (in place) or in a
// copy of exactly its size; a run fills every output.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/Module.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstring>
#include <utility>

using namespace moe::runtime;
using namespace moe::fuzz;

namespace {

/// The entry being called: kernels check their descriptors against it.
const ManifestEntry *currentEntry = nullptr;

/// Reads a descriptor of rank `rank` from `words`.
struct Descriptor {
  const uint8_t *aligned;
  int64_t offset;
  std::vector<int64_t> sizes, strides;
};

Descriptor readDescriptor(const void *p, size_t rank) {
  const int64_t *words = static_cast<const int64_t *>(p);
  Descriptor d;
  std::memcpy(&d.aligned, words + 1, sizeof(void *));
  d.offset = words[2];
  d.sizes.assign(words + 3, words + 3 + rank);
  d.strides.assign(words + 3 + rank, words + 3 + 2 * rank);
  return d;
}

/// Checks argument `index` and touches every byte of it.
void checkArgument(const void *p, size_t index, int64_t &tokens) {
  const ManifestArg &arg = currentEntry->args[index];
  Descriptor d = readDescriptor(p, arg.shape.size());
  FUZZ_CHECK(d.offset == 0, "argument offset");
  for (size_t i = 0; i < arg.shape.size(); ++i)
    FUZZ_CHECK(arg.shape[i] < 0 || d.sizes[i] == arg.shape[i],
               "argument size differs from the manifest");
  if (arg.kind == ArgKind::Input)
    tokens = d.sizes[0];
  std::optional<std::vector<int64_t>> strides =
      checkedRowMajorStrides(d.sizes);
  FUZZ_CHECK(strides && *strides == d.strides, "argument strides");
  std::optional<int64_t> bytes =
      checkedByteSize(d.sizes, elementTypeSize(arg.type));
  FUZZ_CHECK(bytes.has_value(), "argument size");
  FUZZ_CHECK(*bytes == 0 || d.aligned, "null argument buffer");
  volatile uint8_t sink = 0;
  for (int64_t i = 0; i < *bytes; ++i)
    sink = sink ^ d.aligned[i];
}

/// Fills the result descriptors with new buffers of the manifest's shapes.
void makeResults(void *results, int64_t tokens) {
  int64_t *words = static_cast<int64_t *>(results);
  for (const ManifestResult &result : currentEntry->results) {
    std::vector<int64_t> sizes = result.shape;
    if (!sizes.empty() && sizes[0] < 0)
      sizes[0] = tokens;
    size_t rank = sizes.size();
    std::optional<int64_t> bytes =
        checkedByteSize(sizes, elementTypeSize(result.type));
    FUZZ_CHECK(bytes.has_value(), "result size");
    void *buffer = std::malloc(static_cast<size_t>(std::max<int64_t>(*bytes, 1)));
    FUZZ_CHECK(buffer, "malloc");
    std::memset(buffer, 0x3c, static_cast<size_t>(*bytes));
    std::vector<int64_t> strides = *checkedRowMajorStrides(sizes);
    std::memcpy(words, &buffer, sizeof(void *));
    std::memcpy(words + 1, &buffer, sizeof(void *));
    words[2] = 0;
    for (size_t i = 0; i < rank; ++i) {
      words[3 + i] = sizes[i];
      words[3 + rank + i] = strides[i];
    }
    words += 3 + 2 * rank;
  }
}

template <size_t> using PointerArg = void *;

/// The kernel of an entry taking sizeof...(I) arguments.
template <size_t... I>
void kernel(void *results, PointerArg<I>... args) {
  std::array<void *, sizeof...(I)> pointers = {args...};
  FUZZ_CHECK(pointers.size() == currentEntry->args.size(), "arity");
  int64_t tokens = 0;
  for (size_t i = 0; i < pointers.size(); ++i)
    checkArgument(pointers[i], i, tokens);
  makeResults(results, tokens);
}

template <size_t... I> EntryFunction kernelFor(std::index_sequence<I...>) {
  return reinterpret_cast<EntryFunction>(&kernel<I...>);
}

template <size_t... N>
std::array<EntryFunction, sizeof...(N)> makeKernels(std::index_sequence<N...>) {
  return {{kernelFor(std::make_index_sequence<N>())...}};
}

/// The kernels by arity; the symbol "k<N>" resolves to the N-ary one.
const std::array<EntryFunction, kMaxEntryArgs + 1> kKernels =
    makeKernels(std::make_index_sequence<kMaxEntryArgs + 1>());

EntryFunction resolve(const std::string &symbol) {
  if (symbol.size() < 2 || symbol[0] != 'k')
    return nullptr;
  size_t arity = 0;
  for (size_t i = 1; i < symbol.size(); ++i) {
    if (symbol[i] < '0' || symbol[i] > '9' || arity > kMaxEntryArgs)
      return nullptr;
    arity = arity * 10 + static_cast<size_t>(symbol[i] - '0');
  }
  return arity <= kMaxEntryArgs ? kKernels[arity] : nullptr;
}

/// The largest buffer a run may ask for here, to keep executions fast.
constexpr int64_t kMaxRunBytes = int64_t(1) << 22;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider provider(data, size);
  std::string manifestText = provider.ConsumeRandomLengthString(size);
  std::string checkpointBytes = provider.ConsumeRandomLengthString(size);
  int64_t tokens = provider.ConsumeIntegralInRange<int64_t>(0, 64);
  unsigned threads = provider.ConsumeIntegralInRange<unsigned>(1, 4);

  Result<std::shared_ptr<const CompiledModule>> module =
      CompiledModule::fromManifest("fuzz.so", manifestText, resolve);
  if (!module) {
    checkOneLine(module.error());
    return 0;
  }
  static MemoryFile file("model.safetensors");
  file.write(checkpointBytes);
  Result<Checkpoint> opened = Checkpoint::open(file.path());
  if (!opened) {
    checkOneLine(opened.error());
    return 0;
  }
  auto checkpoint = std::make_shared<const Checkpoint>(opened.take());
  const SafetensorsFile &st = checkpoint->files()[0];

  for (const ManifestEntry &spec : (*module)->manifest().entries) {
    Result<BoundEntry> entry = BoundEntry::bind(*module, spec.name, checkpoint);
    if (!entry) {
      checkOneLine(entry.error());
      continue;
    }
    for (size_t i = 0; i < spec.args.size(); ++i) {
      if (spec.args[i].kind != ArgKind::Weight)
        continue;
      std::optional<int64_t> bytes =
          checkedByteSize(spec.args[i].shape, elementTypeSize(spec.args[i].type));
      FUZZ_CHECK(bytes && static_cast<size_t>(*bytes) == entry->weightSize(i),
                 "bound weight size differs from its type");
      auto *begin = static_cast<const uint8_t *>(entry->weightData(i));
      FUZZ_CHECK(begin, "null weight");
      // In place in the mapping, or a copy: its own, or that of an earlier
      // argument bound to the same tensors.
      bool copied = entry->ownsWeight(i);
      for (size_t j = 0; j < i && !copied; ++j)
        copied = entry->ownsWeight(j) && entry->weightData(j) == begin &&
                 entry->weightSize(j) == entry->weightSize(i);
      if (!copied && *bytes != 0)
        FUZZ_CHECK(begin >= st.fileData() &&
                       begin + *bytes <= st.fileData() + st.fileSize(),
                   "weight outside the checkpoint");
    }

    // A module whose code does not match its manifest is beyond what the
    // runtime can check: run only entries whose kernel takes their
    // arguments.
    if (resolve(spec.symbol) != kKernels[spec.args.size()])
      continue;
    // Run it on zero tokens and on `tokens` tokens, when the buffers stay
    // small.
    for (int64_t t : {int64_t(0), tokens}) {
      std::vector<std::vector<float>> inputs;
      std::vector<MatrixRef> inputRefs;
      bool small = true;
      for (size_t i = 0; i < entry->numInputs(); ++i) {
        std::optional<int64_t> bytes =
            checkedByteSize({t, entry->inputHiddenSize(i)}, sizeof(float));
        small = small && bytes && *bytes <= kMaxRunBytes;
      }
      std::vector<std::vector<uint64_t>> outputs;
      std::vector<OutputRef> outputRefs;
      for (size_t r = 0; r < entry->numResults(); ++r) {
        std::optional<int64_t> bytes = checkedByteSize(
            entry->resultShape(r, t), elementTypeSize(entry->resultType(r)));
        small = small && bytes && *bytes <= kMaxRunBytes;
      }
      if (!small)
        continue;
      for (size_t i = 0; i < entry->numInputs(); ++i) {
        inputs.emplace_back(static_cast<size_t>(t * entry->inputHiddenSize(i)),
                            1.0f);
        inputRefs.push_back({inputs.back().data(), t,
                             entry->inputHiddenSize(i)});
      }
      for (size_t r = 0; r < entry->numResults(); ++r) {
        std::vector<int64_t> shape = entry->resultShape(r, t);
        size_t bytes = static_cast<size_t>(*checkedByteSize(
            shape, elementTypeSize(entry->resultType(r))));
        outputs.emplace_back((bytes + 7) / 8, 0);
        outputRefs.push_back({outputs.back().data(), shape});
      }
      currentEntry = &spec;
      Status status = entry->run(inputRefs, outputRefs, threads);
      currentEntry = nullptr;
      if (!status) {
        checkOneLine(status.error());
        continue;
      }
      for (size_t r = 0; r < outputs.size(); ++r) {
        const auto *bytes = reinterpret_cast<const uint8_t *>(outputs[r].data());
        size_t n = static_cast<size_t>(*checkedByteSize(
            outputRefs[r].shape, elementTypeSize(entry->resultType(r))));
        for (size_t b = 0; b < n; ++b)
          FUZZ_CHECK(bytes[b] == 0x3c, "output not filled from the result");
      }
    }
  }
  return 0;
}
