//===- KernelVariants.cpp - Several kernels for one entry point -----------===//
//
// A module may hold an entry point several times, each lowered with other
// kernels (e.g. vdpbf16ps and f32 FMAs for bf16 weights); the runtime runs
// the first variant whose CPU features the machine has
// (docs/CompiledModules.md). The variants are lowered and translated apart
// and linked here into one LLVM module: the faster ones under suffixed
// symbols, each compiled for the module's target plus its own features
// (the "target-features" function attribute), so that the floor never
// holds an instruction the module's `cpu` features do not promise.
//
//===----------------------------------------------------------------------===//

#include "Backend.h"

#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/Module.h"
#include "llvm/Linker/Linker.h"

using namespace llvm;

namespace {

/// The global through which a module allocates: one for all variants.
constexpr StringLiteral kAllocatorSymbol = "moe_module_allocator";

Error makeError(const Twine &message) {
  return createStringError(inconvertibleErrorCode(), message);
}

/// Appends `suffix` to the string `key` of `object`.
void suffixString(json::Object &object, StringRef key, StringRef suffix) {
  if (std::optional<StringRef> value = object.getString(key))
    object[key] = (*value + suffix).str();
}

/// Renames the functions and exported globals of `module` with `suffix`,
/// compiles its functions for `features`, makes its allocator global refer to
/// the floor's and returns its manifest entries, renamed and labelled.
Expected<json::Array> prepareVariant(Module &module, StringRef name,
                                     ArrayRef<std::string> required,
                                     StringRef features) {
  Expected<json::Object> manifest = moe::compile::readManifest(module);
  if (!manifest)
    return manifest.takeError();
  module.getNamedGlobal(moe::compile::kManifestSymbol)->eraseFromParent();
  std::string suffix = ("__" + name).str();
  for (Function &function : module) {
    if (function.isDeclaration())
      continue;
    function.addFnAttr("target-features", features);
    // Local functions too, so that a profile tells the variants apart.
    function.setName(function.getName() + suffix);
  }
  for (GlobalVariable &global : module.globals()) {
    if (global.isDeclaration() || global.hasLocalLinkage())
      continue;
    if (global.getName() == kAllocatorSymbol)
      global.setInitializer(nullptr);
    else
      global.setName(global.getName() + suffix);
  }

  json::Array *entries = manifest->getArray("entries");
  if (!entries)
    return makeError("the manifest of the '" + name +
                     "' variant has no "
                     "entries");
  json::Array requiredList;
  for (const std::string &feature : required)
    requiredList.push_back(feature);
  for (json::Value &value : *entries) {
    json::Object *entry = value.getAsObject();
    if (!entry)
      return makeError("the manifest of the '" + name +
                       "' variant has an "
                       "entry that is not an object");
    suffixString(*entry, "symbol", suffix);
    if (json::Array *args = entry->getArray("args"))
      for (json::Value &arg : *args)
        if (json::Object *packing =
                arg.getAsObject() ? arg.getAsObject()->getObject("packing")
                                  : nullptr)
          suffixString(*packing, "symbol", suffix);
    (*entry)["variant"] = name;
    (*entry)["requires"] = json::Array(requiredList);
  }
  return std::move(*entries);
}

} // namespace

Error moe::compile::linkKernelVariants(Module &floor, StringRef floorName,
                                       std::vector<KernelVariant> faster,
                                       StringRef baseFeatures) {
  Expected<json::Object> manifest = readManifest(floor);
  if (!manifest)
    return manifest.takeError();
  json::Array *floorEntries = manifest->getArray("entries");
  if (!floorEntries)
    return makeError("the module's manifest has no entries");
  json::Array entries;
  for (KernelVariant &variant : faster) {
    std::string features = baseFeatures.str();
    for (const std::string &feature : variant.requiredFeatures)
      features += (features.empty() ? "+" : ",+") + feature;
    Expected<json::Array> variantEntries = prepareVariant(
        *variant.module, variant.name, variant.requiredFeatures, features);
    if (!variantEntries)
      return variantEntries.takeError();
    for (json::Value &entry : *variantEntries)
      entries.push_back(std::move(entry));
    if (Linker::linkModules(floor, std::move(variant.module)))
      return makeError("cannot link the '" + variant.name +
                       "' kernel variant into the module");
  }
  for (json::Value &entry : *floorEntries) {
    if (json::Object *object = entry.getAsObject())
      (*object)["variant"] = floorName;
    entries.push_back(std::move(entry));
  }
  (*manifest)["entries"] = std::move(entries);
  writeManifest(floor, std::move(*manifest));
  return Error::success();
}
