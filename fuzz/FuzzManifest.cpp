//===- FuzzManifest.cpp - Fuzzing the manifest of compiled modules --------===//
//
// Invariants: an error is one printable line "invalid manifest: ..."; a
// manifest that parses has non-empty entry names, repeated only for kernel
// variants of one signature ending in one that requires nothing, at most
// kMaxEntryArgs arguments per entry, weights with names, and shapes whose
// static dimensions are representable.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/Manifest.h"

#include <map>
#include <set>

using namespace moe::runtime;
using namespace moe::fuzz;

namespace {

void checkShape(const std::vector<int64_t> &shape) {
  std::vector<int64_t> known = shape;
  for (int64_t &dim : known) {
    FUZZ_CHECK(dim >= -1, "dimension below -1");
    dim = dim < 0 ? 1 : dim;
  }
  FUZZ_CHECK(checkedByteSize(known, sizeof(int64_t)).has_value(),
             "shape not representable");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Result<Manifest> manifest = parseManifest(
      std::string_view(reinterpret_cast<const char *>(data), size));
  if (!manifest) {
    checkOneLine(manifest.error());
    FUZZ_CHECK(manifest.error().rfind("invalid manifest: ", 0) == 0,
               "unexpected error format: " + manifest.error());
    return 0;
  }
  // Names repeat only for kernel variants: each but the last of a name
  // requires features, all take what the first takes.
  std::set<std::string> complete;
  std::map<std::string, const ManifestEntry *> firstOfName;
  for (const ManifestEntry &entry : manifest->entries) {
    FUZZ_CHECK(!entry.name.empty() && !entry.symbol.empty(), "empty name");
    FUZZ_CHECK(!complete.count(entry.name), "entry after its last variant");
    if (entry.requiredFeatures.empty())
      complete.insert(entry.name);
    auto [first, isFirst] = firstOfName.emplace(entry.name, &entry);
    FUZZ_CHECK(isFirst || entry.sameSignature(*first->second),
               "variants with different signatures");
    FUZZ_CHECK(entry.args.size() <= kMaxEntryArgs, "too many arguments");
    for (const ManifestArg &arg : entry.args) {
      checkShape(arg.shape);
      FUZZ_CHECK((arg.kind == ArgKind::Weight) == !arg.weightName.empty(),
                 "a weight without a name, or a name on another argument");
      // Outputs: in device-io modules, each for one result of its type.
      if (arg.kind == ArgKind::Output) {
        FUZZ_CHECK(manifest->gpuDeviceIO, "an output in a host-io module");
        FUZZ_CHECK(arg.result >= 0 &&
                       arg.result < static_cast<int64_t>(entry.results.size()),
                   "an output for no result");
        const ManifestResult &result = entry.results[arg.result];
        FUZZ_CHECK(arg.type == result.type && arg.shape == result.shape,
                   "an output of another type than its result");
      } else {
        FUZZ_CHECK(arg.result == -1, "a result index on an input or weight");
      }
      // Packing: weights only, a symbol, a static shape.
      if (arg.isPacked()) {
        FUZZ_CHECK(arg.kind == ArgKind::Weight, "packed input");
        checkShape(arg.packingShape);
        for (int64_t dim : arg.packingShape)
          FUZZ_CHECK(dim >= 0, "dynamic packing shape");
      } else {
        FUZZ_CHECK(arg.packingShape.empty(), "packing shape without symbol");
      }
    }
    for (const ManifestResult &result : entry.results)
      checkShape(result.shape);
    FUZZ_CHECK(manifest->find(entry.name) != nullptr, "lookup failed");
  }
  FUZZ_CHECK(complete.size() == firstOfName.size(),
             "an entry without a variant that requires nothing");
  return 0;
}
