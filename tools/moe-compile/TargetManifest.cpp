//===- TargetManifest.cpp - The target in the module's manifest -----------===//
//
// The manifest (moe_module_manifest, written by moe-export-entries) gains
// the CPU the module is compiled for and the ISA features of
// moe/Runtime/CpuFeatures.h that this target has: the runtime refuses to
// load the module on a CPU that lacks one of them. Kernel variants
// (KernelVariants.cpp) edit the manifest through the same helpers.
//
//===----------------------------------------------------------------------===//

#include "Backend.h"

#include "moe/Runtime/CpuFeatures.h"

#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Target/TargetMachine.h"

using namespace llvm;

bool moe::compile::targetHasFeatures(const TargetMachine &machine,
                                     ArrayRef<StringRef> features) {
  // Only x86 features are asked for: asking another target's subtarget
  // about an unknown feature is a fatal error.
  if (!machine.getTargetTriple().isX86())
    return false;
  const MCSubtargetInfo &subtarget = *machine.getMCSubtargetInfo();
  return llvm::all_of(features, [&](StringRef feature) {
    return subtarget.checkFeatures(("+" + feature).str());
  });
}

Expected<json::Object> moe::compile::readManifest(const Module &module) {
  const GlobalVariable *global = module.getNamedGlobal(kManifestSymbol);
  auto *text = global && global->hasInitializer()
                   ? dyn_cast<ConstantDataSequential>(global->getInitializer())
                   : nullptr;
  if (!text || !text->isCString())
    return createStringError(inconvertibleErrorCode(),
                             "the lowered module has no manifest string '" +
                                 kManifestSymbol + "'");
  Expected<json::Value> parsed = json::parse(text->getAsCString());
  if (!parsed)
    return parsed.takeError();
  json::Object *root = parsed->getAsObject();
  if (!root)
    return createStringError(inconvertibleErrorCode(),
                             "the module's manifest is not a JSON object");
  return std::move(*root);
}

void moe::compile::writeManifest(Module &module, json::Object manifest) {
  GlobalVariable *global = module.getNamedGlobal(kManifestSymbol);
  assert(global && "readManifest found the global");
  // A new global of the new length in place of the old one.
  Constant *initializer = ConstantDataArray::getString(
      module.getContext(),
      formatv("{0}", json::Value(std::move(manifest))).str(),
      /*AddNull=*/true);
  auto *replacement = new GlobalVariable(
      module, initializer->getType(), global->isConstant(),
      global->getLinkage(), initializer, "", global,
      global->getThreadLocalMode(), global->getAddressSpace());
  replacement->copyAttributesFrom(global);
  replacement->takeName(global);
  global->replaceAllUsesWith(replacement);
  global->eraseFromParent();
}

Error moe::compile::recordTarget(Module &module, const TargetMachine &machine) {
  Expected<json::Object> manifest = readManifest(module);
  if (!manifest)
    return manifest.takeError();
  json::Array features;
  for (const moe::runtime::CpuFeature &feature : moe::runtime::kCpuFeatures)
    if (moe::compile::targetHasFeatures(machine, {feature.name}))
      features.push_back(feature.name);
  (*manifest)["cpu"] = json::Object{{"name", machine.getTargetCPU()},
                                    {"features", std::move(features)}};
  writeManifest(module, std::move(*manifest));
  return Error::success();
}
