//===- Manifest.cpp - The manifest of a compiled module -------------------===//
//
// The manifest is validated strictly: every object has exactly the keys of
// docs/CompiledModules.md, so that a mismatch between moe-compile and the
// runtime shows up as an error when the module is loaded, not as a wrong
// call.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Manifest.h"

#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/CpuFeatures.h"
#include "moe/Runtime/Json.h"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <set>

using namespace moe::runtime;

const char *moe::runtime::elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return "f32";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F16:
    return "f16";
  case ElementType::I32:
    return "i32";
  case ElementType::I64:
    return "i64";
  case ElementType::F8E4M3FN:
    return "f8e4m3fn";
  case ElementType::I8:
    return "i8";
  }
  return "?";
}

size_t moe::runtime::elementTypeSize(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return 4;
  case ElementType::BF16:
  case ElementType::F16:
    return 2;
  case ElementType::I32:
    return 4;
  case ElementType::I64:
    return 8;
  case ElementType::F8E4M3FN:
  case ElementType::I8:
    return 1;
  }
  return 0;
}

std::string moe::runtime::formatArgType(ElementType type,
                                        const std::vector<int64_t> &shape) {
  std::string s = std::string(elementTypeName(type)) + " [";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool ManifestArg::isStacked() const {
  return kind == ArgKind::Weight &&
         weightName.find(kExpertPlaceholder) != std::string::npos;
}

const ManifestEntry *Manifest::find(std::string_view name) const {
  for (const ManifestEntry &entry : entries)
    if (entry.name == name)
      return &entry;
  return nullptr;
}

std::string Manifest::entryNames() const {
  std::string names;
  std::set<std::string_view> seen;
  for (const ManifestEntry &entry : entries)
    if (seen.insert(entry.name).second)
      names += (names.empty() ? "" : ", ") + printable(entry.name);
  return names;
}

bool ManifestEntry::sameSignature(const ManifestEntry &other) const {
  if (tokenParallel != other.tokenParallel ||
      args.size() != other.args.size() ||
      results.size() != other.results.size())
    return false;
  for (size_t i = 0; i < args.size(); ++i) {
    const ManifestArg &a = args[i], &b = other.args[i];
    // A weight is compared as the checkpoint binds it: packing may differ.
    const std::vector<int64_t> &boundA =
        a.isPacked() ? a.packingShape : a.shape;
    const std::vector<int64_t> &boundB =
        b.isPacked() ? b.packingShape : b.shape;
    if (a.kind != b.kind || a.type != b.type || boundA != boundB ||
        a.weightName != b.weightName || a.format != b.format ||
        a.result != b.result)
      return false;
  }
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].type != other.results[i].type ||
        results[i].shape != other.results[i].shape)
      return false;
  return true;
}

namespace {

/// Validates the JSON tree; the first problem is kept in `error`.
class ManifestReader {
  /// The `parallel` ranks, once read (0 before or without).
  int64_t mpiRanks = 0;
  /// Whether the module runs on its caller's device buffers ("gpu": {"io":
  /// "device"}), once read.
  bool deviceIO = false;

public:
  /// Reads the root object into `manifest`.
  bool read(const JsonValue &root, Manifest &manifest) {
    if (!expectObject(
            root, "",
            {"version", "producer", "cpu", "gpu", "parallel", "entries"},
            {"version", "entries"}))
      return false;
    if (const JsonValue *gpu = root.find("gpu"))
      if (!readGpu(*gpu, manifest))
        return false;
    if (const JsonValue *parallel = root.find("parallel"))
      if (!readParallel(*parallel, manifest))
        return false;
    if (root.find("producer") &&
        !readString(root, "producer", "", manifest.producer))
      return false;
    if (const JsonValue *cpu = root.find("cpu"))
      if (!readCpu(*cpu, manifest))
        return false;
    const JsonValue &version = *root.find("version");
    if (!version.isInt())
      return fail("", "'version' is " +
                          std::string(jsonKindName(version.kind())) +
                          ", expected an integer");
    if (version.getInt() != kManifestVersion)
      return fail("", "unsupported version " +
                          std::to_string(version.getInt()) + " (expected " +
                          std::to_string(kManifestVersion) + ")");
    const JsonValue &entries = *root.find("entries");
    if (!expectKind(entries, JsonValue::Kind::Array, "", "entries"))
      return false;
    // The first entry of each name, and the names whose variant that runs
    // on every CPU (no 'requires') has been read: nothing may follow it.
    std::map<std::string, size_t> firstOfName;
    std::set<std::string> complete;
    for (size_t i = 0; i < entries.getArray().size(); ++i) {
      std::string where = "entries[" + std::to_string(i) + "]";
      ManifestEntry entry;
      if (!readEntry(entries.getArray()[i], where, entry))
        return false;
      if (complete.count(entry.name))
        return fail(where,
                    "duplicate entry name '" + printable(entry.name) + "'");
      auto [first, isFirst] =
          firstOfName.emplace(entry.name, manifest.entries.size());
      if (!isFirst && !entry.sameSignature(manifest.entries[first->second]))
        return fail(where, "variant of entry '" + printable(entry.name) +
                               "' differs from entries[" +
                               std::to_string(first->second) +
                               "] in its arguments or results");
      if (entry.requiredFeatures.empty())
        complete.insert(entry.name);
      manifest.entries.push_back(std::move(entry));
    }
    for (const auto &[name, index] : firstOfName)
      if (!complete.count(name))
        return fail("entries[" + std::to_string(index) + "]",
                    "every variant of entry '" + printable(name) +
                        "' has 'requires'; the last must have none");
    return true;
  }

  /// The first problem found, "<where>: <problem>".
  const std::string &getError() const { return error; }

private:
  /// `{"name": CPU, "features": [feature, ...]}`; the features are names
  /// the runtime can check (CpuFeatures.h), each once.
  bool readCpu(const JsonValue &cpu, Manifest &manifest) {
    if (!expectObject(cpu, "cpu", {"name", "features"}, {"name", "features"}) ||
        !readString(cpu, "name", "cpu", manifest.cpuName))
      return false;
    const JsonValue &features = *cpu.find("features");
    if (!expectKind(features, JsonValue::Kind::Array, "cpu", "features"))
      return false;
    return readFeatures(features, "cpu.features", manifest.cpuFeatures);
  }

  /// `{"api": "cuda", "chip": "sm_NN", "io": "host" | "device"}` ("io"
  /// optional: "host").
  bool readGpu(const JsonValue &gpu, Manifest &manifest) {
    if (!expectObject(gpu, "gpu", {"api", "chip", "io"}, {"api", "chip"}) ||
        !readString(gpu, "api", "gpu", manifest.gpuApi) ||
        !readString(gpu, "chip", "gpu", manifest.gpuChip))
      return false;
    if (gpu.find("io")) {
      std::string io;
      if (!readString(gpu, "io", "gpu", io))
        return false;
      if (io != "host" && io != "device")
        return fail("gpu",
                    "'io' must be host or device, got '" + printable(io) + "'");
      manifest.gpuDeviceIO = deviceIO = io == "device";
    }
    if (manifest.gpuApi != "cuda")
      return fail("gpu", "unsupported GPU API '" + printable(manifest.gpuApi) +
                             "' (expected cuda)");
    const std::string &chip = manifest.gpuChip;
    bool digits =
        chip.size() > 3 && chip.size() <= 8 && chip.compare(0, 3, "sm_") == 0 &&
        std::all_of(chip.begin() + 3, chip.end(),
                    [](char c) { return (c >= '0' && c <= '9') || c == 'a'; });
    if (!digits)
      return fail("gpu", "'chip' must be a CUDA architecture such as sm_90, "
                         "got '" +
                             printable(chip) + "'");
    return true;
  }

  /// `{"api": "mpi", "library": "OpenMPI", "ranks": R}`.
  bool readParallel(const JsonValue &parallel, Manifest &manifest) {
    std::string api;
    if (!expectObject(parallel, "parallel", {"api", "library", "ranks"},
                      {"api", "library", "ranks"}) ||
        !readString(parallel, "api", "parallel", api) ||
        !readString(parallel, "library", "parallel", manifest.mpiLibrary))
      return false;
    if (api != "mpi")
      return fail("parallel",
                  "unsupported API '" + printable(api) + "' (expected mpi)");
    if (manifest.mpiLibrary != "OpenMPI" && manifest.mpiLibrary != "MPICH")
      return fail("parallel", "unsupported MPI library '" +
                                  printable(manifest.mpiLibrary) +
                                  "' (expected OpenMPI or MPICH)");
    const JsonValue &ranks = *parallel.find("ranks");
    if (!ranks.isInt() || ranks.getInt() < 1 || ranks.getInt() > (1 << 24))
      return fail("parallel", "'ranks' must be an integer in [1, 2^24]");
    manifest.mpiRanks = ranks.getInt();
    mpiRanks = manifest.mpiRanks;
    return true;
  }

  /// An array of feature names the runtime can check (CpuFeatures.h), each
  /// once.
  bool readFeatures(const JsonValue &features, const std::string &where,
                    std::vector<std::string> &out) {
    std::set<std::string> seen;
    for (size_t i = 0; i < features.getArray().size(); ++i) {
      std::string at = where + "[" + std::to_string(i) + "]";
      const JsonValue &feature = features.getArray()[i];
      if (!feature.isString())
        return fail(at, std::string("expected a string, got ") +
                            jsonKindName(feature.kind()));
      const std::string &name = feature.getString();
      if (!findCpuFeature(name))
        return fail(at, "unknown CPU feature '" + printable(name) + "'");
      if (!seen.insert(name).second)
        return fail(at, "duplicate CPU feature '" + printable(name) + "'");
      out.push_back(name);
    }
    return true;
  }

  bool fail(const std::string &where, const std::string &problem) {
    if (error.empty())
      error = where.empty() ? problem : where + ": " + problem;
    return false;
  }

  bool expectKind(const JsonValue &value, JsonValue::Kind kind,
                  const std::string &where, const char *key) {
    if (value.kind() == kind)
      return true;
    return fail(where, "'" + std::string(key) + "' is " +
                           jsonKindName(value.kind()) + ", expected " +
                           jsonKindName(kind));
  }

  /// Checks that `value` is an object whose keys are among `allowed` and
  /// that holds every key of `required`.
  bool expectObject(const JsonValue &value, const std::string &where,
                    std::initializer_list<const char *> allowed,
                    std::initializer_list<const char *> required) {
    if (!value.isObject())
      return fail(where, std::string("expected an object, got ") +
                             jsonKindName(value.kind()));
    for (const auto &member : value.getObject()) {
      bool known = false;
      for (const char *key : allowed)
        known = known || member.first == key;
      if (!known)
        return fail(where, "unexpected key '" + printable(member.first) + "'");
    }
    for (const char *key : required)
      if (!value.find(key))
        return fail(where, "missing key '" + std::string(key) + "'");
    return true;
  }

  bool readString(const JsonValue &object, const char *key,
                  const std::string &where, std::string &out) {
    const JsonValue &value = *object.find(key);
    if (!expectKind(value, JsonValue::Kind::String, where, key))
      return false;
    if (value.getString().empty())
      return fail(where, "'" + std::string(key) + "' is empty");
    out = value.getString();
    return true;
  }

  bool readType(const JsonValue &object, const std::string &where,
                ElementType &out) {
    std::string name;
    if (!readString(object, "dtype", where, name))
      return false;
    if (name == "f32")
      out = ElementType::F32;
    else if (name == "bf16")
      out = ElementType::BF16;
    else if (name == "f16")
      out = ElementType::F16;
    else if (name == "i32")
      out = ElementType::I32;
    else if (name == "i64")
      out = ElementType::I64;
    else if (name == "f8e4m3fn")
      out = ElementType::F8E4M3FN;
    else if (name == "i8")
      out = ElementType::I8;
    else
      return fail(where, "unsupported dtype '" + printable(name) +
                             "' (expected f32, bf16, f16, i8, i32, i64 or "
                             "f8e4m3fn)");
    return true;
  }

  bool readShape(const JsonValue &object, const std::string &where,
                 std::vector<int64_t> &out) {
    const JsonValue &shape = *object.find("shape");
    if (!expectKind(shape, JsonValue::Kind::Array, where, "shape"))
      return false;
    for (const JsonValue &dim : shape.getArray()) {
      if (!dim.isInt())
        return fail(where, "'shape' holds " +
                               std::string(jsonKindName(dim.kind())) +
                               ", expected integers");
      if (dim.getInt() < -1)
        return fail(where, "'shape' has the dimension " +
                               std::to_string(dim.getInt()) +
                               " (expected -1 for dynamic, or >= 0)");
      out.push_back(dim.getInt());
    }
    // Static dimensions must leave the strides representable.
    std::vector<int64_t> known = out;
    for (int64_t &dim : known)
      dim = dim < 0 ? 1 : dim;
    if (!checkedByteSize(known, sizeof(int64_t)))
      return fail(where, "'shape' has too many elements");
    return true;
  }

  bool readArg(const JsonValue &value, const std::string &where,
               ManifestArg &arg) {
    if (!expectObject(value, where,
                      {"kind", "dtype", "shape", "name", "packing", "format",
                       "experts", "result"},
                      {"kind", "dtype", "shape"}))
      return false;
    std::string kind;
    if (!readString(value, "kind", where, kind))
      return false;
    if (kind == "input")
      arg.kind = ArgKind::Input;
    else if (kind == "weight")
      arg.kind = ArgKind::Weight;
    else if (kind == "output")
      arg.kind = ArgKind::Output;
    else
      return fail(where, "unsupported kind '" + printable(kind) +
                             "' (expected input, weight or output)");
    if (!readType(value, where, arg.type) ||
        !readShape(value, where, arg.shape))
      return false;
    if (arg.kind != ArgKind::Weight) {
      for (const char *key : {"name", "packing", "format", "experts"})
        if (value.find(key))
          return fail(where, "an " + kind + " has no '" + key + "'");
    }
    if (arg.kind == ArgKind::Input) {
      if (value.find("result"))
        return fail(where, "an input has no 'result'");
      return true;
    }
    if (arg.kind == ArgKind::Output) {
      // Only a device-io module's caller passes device buffers to write.
      if (!deviceIO)
        return fail(where, "an output argument needs a module with "
                           "\"gpu\": {\"io\": \"device\"}");
      const JsonValue *result = value.find("result");
      if (!result)
        return fail(where, "missing key 'result' of an output");
      if (!result->isInt() || result->getInt() < 0)
        return fail(where, "'result' must be a result's index");
      arg.result = result->getInt();
      return true;
    }
    if (value.find("result"))
      return fail(where, "a weight has no 'result'");
    if (!value.find("name"))
      return fail(where, "missing key 'name' of a weight");
    if (!readString(value, "name", where, arg.weightName))
      return false;
    if (const JsonValue *packing = value.find("packing"))
      if (!readPacking(*packing, where + ".packing", arg))
        return false;
    if (value.find("format") && !readFormat(value, where, arg))
      return false;
    if (const JsonValue *experts = value.find("experts")) {
      const std::vector<int64_t> &source =
          arg.isPacked() ? arg.packingShape : arg.shape;
      if (mpiRanks == 0)
        return fail(where, "'experts' (a window of experts) needs the "
                           "module's 'parallel' ranks");
      // The window is ceil(E / R) experts (ExpertParallelism.md).
      if (!experts->isInt() || experts->getInt() < mpiRanks ||
          experts->getInt() > 2147483647 || source.empty() ||
          source[0] != (experts->getInt() + mpiRanks - 1) / mpiRanks)
        return fail(where, "'experts' must be the E experts of which the "
                           "weight's first dimension is a window of "
                           "ceil(E / ranks), with ranks <= E < 2^31");
      if (arg.format != WeightFormat::Plain)
        return fail(where, "a window of experts of a weight in another "
                           "format ('format') is not supported");
      arg.windowOf = experts->getInt();
    }
    size_t first = arg.weightName.find(kExpertPlaceholder);
    if (first == std::string::npos)
      return true;
    if (arg.weightName.find(kExpertPlaceholder, first + 1) != std::string::npos)
      return fail(where, "weight '" + printable(arg.weightName) +
                             "' holds '{e}' more than once");
    // A stack is over the first dimension of the checkpoint's shape.
    if ((arg.isPacked() ? arg.packingShape : arg.shape).empty())
      return fail(where, "weight '" + printable(arg.weightName) +
                             "' holds '{e}' but has rank 0");
    return true;
  }

  /// `"format": "mxfp4"`: a bf16 weight of static shape `[..., N, K]`,
  /// `K` a multiple of 32, bound from one (not stacked) pair of tensors;
  /// `"e8m0"`: an f32 weight bound from one (not stacked) U8 tensor.
  bool readFormat(const JsonValue &value, const std::string &where,
                  ManifestArg &arg) {
    std::string format;
    if (!readString(value, "format", where, format))
      return false;
    if (format == "e8m0") {
      arg.format = WeightFormat::E8m0;
      if (arg.type != ElementType::F32 ||
          arg.weightName.find(kExpertPlaceholder) != std::string::npos)
        return fail(where, "an e8m0 weight is one f32 tensor");
      return true;
    }
    if (format != "mxfp4")
      return fail(where, "unsupported weight format '" + printable(format) +
                             "' (expected mxfp4 or e8m0)");
    arg.format = WeightFormat::Mxfp4;
    const std::vector<int64_t> &bound =
        arg.isPacked() ? arg.packingShape : arg.shape;
    if (arg.type != ElementType::BF16 || bound.size() < 2 || bound.back() < 0 ||
        bound.back() % 32 != 0 ||
        arg.weightName.find(kExpertPlaceholder) != std::string::npos)
      return fail(where, "an mxfp4 weight is one bf16 tensor [..., N, K] "
                         "with K a multiple of 32");
    return true;
  }

  /// `{"symbol": ..., "shape": [...]}`: the function that packs a weight
  /// and the static checkpoint shape it reads.
  bool readPacking(const JsonValue &value, const std::string &where,
                   ManifestArg &arg) {
    if (!expectObject(value, where, {"symbol", "shape"}, {"symbol", "shape"}))
      return false;
    if (!readString(value, "symbol", where, arg.packingSymbol) ||
        !readShape(value, where, arg.packingShape))
      return false;
    for (int64_t dim : arg.packingShape)
      if (dim < 0)
        return fail(where, "'shape' must be static");
    return true;
  }

  bool readResult(const JsonValue &value, const std::string &where,
                  ManifestResult &result) {
    if (!expectObject(value, where, {"dtype", "shape"}, {"dtype", "shape"}))
      return false;
    return readType(value, where, result.type) &&
           readShape(value, where, result.shape);
  }

  bool readEntry(const JsonValue &value, const std::string &where,
                 ManifestEntry &entry) {
    if (!expectObject(value, where,
                      {"name", "symbol", "token_parallel", "args", "results",
                       "variant", "requires"},
                      {"name", "symbol", "token_parallel", "args", "results"}))
      return false;
    if (!readString(value, "name", where, entry.name) ||
        !readString(value, "symbol", where, entry.symbol))
      return false;
    if (value.find("variant") &&
        !readString(value, "variant", where, entry.variant))
      return false;
    if (const JsonValue *features = value.find("requires")) {
      if (!expectKind(*features, JsonValue::Kind::Array, where, "requires") ||
          !readFeatures(*features, where + ".requires", entry.requiredFeatures))
        return false;
      if (entry.requiredFeatures.empty())
        return fail(where, "'requires' is empty (leave it out for the "
                           "variant that runs on every CPU)");
    }
    const JsonValue &parallel = *value.find("token_parallel");
    if (!expectKind(parallel, JsonValue::Kind::Bool, where, "token_parallel"))
      return false;
    entry.tokenParallel = parallel.getBool();

    const JsonValue &args = *value.find("args");
    if (!expectKind(args, JsonValue::Kind::Array, where, "args"))
      return false;
    if (args.getArray().size() > kMaxEntryArgs)
      return fail(where, "entry '" + printable(entry.name) + "' has " +
                             std::to_string(args.getArray().size()) +
                             " arguments; at most " +
                             std::to_string(kMaxEntryArgs) + " are supported");
    for (size_t i = 0; i < args.getArray().size(); ++i) {
      ManifestArg arg;
      if (!readArg(args.getArray()[i],
                   where + ".args[" + std::to_string(i) + "]", arg))
        return false;
      entry.args.push_back(std::move(arg));
    }

    const JsonValue &results = *value.find("results");
    if (!expectKind(results, JsonValue::Kind::Array, where, "results"))
      return false;
    for (size_t i = 0; i < results.getArray().size(); ++i) {
      ManifestResult result;
      if (!readResult(results.getArray()[i],
                      where + ".results[" + std::to_string(i) + "]", result))
        return false;
      entry.results.push_back(std::move(result));
    }
    // Each output receives one result, of its type.
    std::vector<bool> received(entry.results.size(), false);
    for (size_t i = 0; i < entry.args.size(); ++i) {
      const ManifestArg &arg = entry.args[i];
      if (arg.kind != ArgKind::Output)
        continue;
      std::string at = where + ".args[" + std::to_string(i) + "]";
      if (arg.result >= static_cast<int64_t>(entry.results.size()))
        return fail(at, "'result' " + std::to_string(arg.result) +
                            " is not a result of the entry (it has " +
                            std::to_string(entry.results.size()) + ")");
      const ManifestResult &result = entry.results[arg.result];
      if (arg.type != result.type || arg.shape != result.shape)
        return fail(at,
                    "an output of type " + formatArgType(arg.type, arg.shape) +
                        " for result " + std::to_string(arg.result) +
                        " of type " + formatArgType(result.type, result.shape));
      if (received[arg.result])
        return fail(at,
                    "a second output for result " + std::to_string(arg.result));
      received[arg.result] = true;
    }
    return true;
  }

  std::string error;
};

} // namespace

Result<Manifest> moe::runtime::parseManifest(std::string_view text) {
  Result<JsonValue> root = parseJson(text);
  if (!root)
    return Result<Manifest>::failure("invalid manifest: " + root.error());
  Manifest manifest;
  ManifestReader reader;
  if (!reader.read(*root, manifest))
    return Result<Manifest>::failure("invalid manifest: " + reader.getError());
  return manifest;
}
