//===- CodeGen.cpp - LLVM IR to an object file ----------------------------===//
//
// The new pass manager's default -O3 pipeline, then the target's code
// generator, as `clang -O3 -march=CPU -fPIC -c` would run them.
//
//===----------------------------------------------------------------------===//

#include "Backend.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/CodeGen/CommandFlags.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/TargetParser/Triple.h"

using namespace llvm;

namespace {

Error makeError(const Twine &message) {
  return createStringError(inconvertibleErrorCode(), message);
}

/// The CPU and feature string of `cpu`; "native" is the host's.
std::pair<std::string, std::string> resolveCpu(StringRef cpu) {
  if (cpu != "native")
    return {cpu.str(), ""};
  SubtargetFeatures features;
  for (const StringMapEntry<bool> &feature : sys::getHostCPUFeatures())
    features.AddFeature(feature.getKey(), feature.getValue());
  return {sys::getHostCPUName().str(), features.getString()};
}

} // namespace

Expected<std::unique_ptr<TargetMachine>>
moe::compile::createTargetMachine(StringRef cpu,
                                  ArrayRef<std::string> moreFeatures) {
  InitializeNativeTarget();
  InitializeNativeTargetAsmPrinter();
  Triple triple(sys::getDefaultTargetTriple());
  std::string error;
  const Target *target = TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return makeError("no code generator for " + triple.str() + ": " + error);
  auto [cpuName, features] = resolveCpu(cpu);
  // Checked against the generic subtarget: asking for an unknown CPU's
  // subtarget would print LLVM's own warning line first.
  std::unique_ptr<MCSubtargetInfo> generic(
      target->createMCSubtargetInfo(triple, "", ""));
  if (!generic || !generic->isCPUStringValid(cpuName))
    return makeError("unknown CPU '" + cpuName + "' for " + triple.str());
  // No kernel uses AMX (LLVM never selects its instructions unasked): the
  // target leaves the AMX units out (with amx-tile every feature that
  // implies it), so that the manifest does not ask the CPU for them. A
  // module compiled on a CPU with AMX would otherwise be refused where
  // Linux denies the tile data, or where MOE_CPU_DISABLE turns the units
  // off to force a floor variant. --mattr (+amx-tile, +amx-bf16) still asks
  // for them.
  SubtargetFeatures allFeatures(features);
  allFeatures.AddFeature("-amx-tile");
  // --mattr adds to (or, with -feature, removes from) the CPU's features.
  for (const std::string &feature : codegen::getMAttrs())
    allFeatures.AddFeature(feature);
  for (const std::string &feature : moreFeatures)
    allFeatures.AddFeature(feature);
  std::optional<Reloc::Model> reloc = codegen::getExplicitRelocModel();
  if (reloc && *reloc != Reloc::PIC_)
    return makeError("a shared object needs --relocation-model=pic");
  return std::unique_ptr<TargetMachine>(target->createTargetMachine(
      triple, cpuName, allFeatures.getString(),
      codegen::InitTargetOptionsFromCodeGenFlags(triple), Reloc::PIC_,
      codegen::getExplicitCodeModel(), CodeGenOptLevel::Aggressive));
}

Error moe::compile::emitObject(Module &module, TargetMachine &machine,
                               StringRef objectPath) {
  const Triple &triple = machine.getTargetTriple();
  module.setTargetTriple(triple);
  module.setDataLayout(machine.createDataLayout());

  // -O3 over the module, with the target's cost model.
  LoopAnalysisManager loops;
  FunctionAnalysisManager functions;
  CGSCCAnalysisManager cgsccs;
  ModuleAnalysisManager modules;
  PipelineTuningOptions tuning;
  tuning.LoopVectorization = true;
  tuning.SLPVectorization = true;
  PassBuilder builder(&machine, tuning);
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(cgsccs);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, cgsccs, modules);
  builder.buildPerModuleDefaultPipeline(OptimizationLevel::O3)
      .run(module, modules);

  std::error_code ec;
  raw_fd_ostream os(objectPath, ec, sys::fs::OF_None);
  if (ec)
    return makeError("cannot write '" + objectPath + "': " + ec.message());
  legacy::PassManager codegen;
  if (machine.addPassesToEmitFile(codegen, os, nullptr,
                                   CodeGenFileType::ObjectFile))
    return makeError("the " + triple.str() + " code generator cannot emit "
                                             "object files");
  codegen.run(module);
  os.flush();
  if (os.has_error())
    return makeError("cannot write '" + objectPath +
                     "': " + os.error().message());
  return Error::success();
}
