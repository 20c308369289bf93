//===- moe-compile.cpp - Ahead-of-time compiler for MoE modules -----------===//
//
//   moe-compile LAYER.mlir --target cpu -o LAYER.so [--mcpu native]
//   moe-compile LAYER.mlir --target cuda -o LAYER.so [--mcpu x86-64-v2]
//
// Parses a module on tensors, runs --moe-lower-to-cpu (or --moe-lower-to-cuda:
// host code that launches kernels embedded as a GPU binary), translates to
// LLVM IR,
// optimizes and compiles it in process and links it with lld (as a library)
// into a shared object that the runtime loads (docs/CompiledModules.md):
// no clang or linker binary is needed. --emit=mlir and --emit=llvm stop
// earlier.
//
//===----------------------------------------------------------------------===//

#include "Backend.h"

#include "moe/Conversion/MoEToLLVM/MoEToLLVM.h"
#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/InitAllDialects.h"
#include "moe/Pipelines/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/CodeGen/CommandFlags.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"

#include "../ParserCrashGuard.h"
#include "../SanitizerOptions.h"
#include "../ToolVersion.h"

using namespace llvm;

namespace {

enum class CodegenTarget { CPU, CUDA };
enum class Emit { SharedObject, LLVMIR, MLIR };

cl::OptionCategory category("moe-compile options");

cl::opt<std::string> inputPath(cl::Positional, cl::desc("<layer.mlir>"),
                               cl::Required, cl::cat(category));
cl::opt<std::string> outputPath("o", cl::desc("Output file"),
                                cl::value_desc("path"), cl::Required,
                                cl::cat(category));
cl::opt<CodegenTarget>
    target("target", cl::desc("Code generation target"),
           cl::values(clEnumValN(CodegenTarget::CPU, "cpu",
                                 "x86-64 CPU (shared object)"),
                      clEnumValN(CodegenTarget::CUDA, "cuda",
                                 "NVIDIA GPU driven by x86-64 "
                                 "host code (shared object)")),
           cl::init(CodegenTarget::CPU), cl::cat(category));
cl::opt<Emit> emit(
    "emit", cl::desc("What to write"),
    cl::values(clEnumValN(Emit::SharedObject, "so", "a shared object"),
               clEnumValN(Emit::LLVMIR, "llvm", "LLVM IR text"),
               clEnumValN(Emit::MLIR, "mlir",
                          "the LLVM-dialect module after the pipeline")),
    cl::init(Emit::SharedObject), cl::cat(category));
cl::opt<int64_t>
    rowAlign("row-align",
             cl::desc("Pad each expert's dispatched rows to a multiple of "
                      "this many rows"),
             cl::init(1), cl::cat(category));
cl::opt<bool> reference(
    "reference",
    cl::desc("Compile with the reference lowering (the oracle the fast path "
             "is tested against) instead of the fast path"),
    cl::init(false), cl::cat(category));
cl::opt<std::string> pipelineOptions(
    "pipeline-options",
    cl::desc("More options of the moe-lower-to-cpu (moe-lower-to-cuda) "
             "pipeline, as moe-opt takes them (e.g. \"block-rows=8 "
             "tile-n=32\", \"chip=sm_80\"); they override --row-align and "
             "--reference"),
    cl::init(""), cl::cat(category));

/// Prints `moe-compile: error: <message>` and returns 1.
int fail(const Twine &message) {
  errs() << "moe-compile: error: " << message << "\n";
  return 1;
}

/// Functions a compiled module may call: libc memory management and libm.
/// Anything else (e.g. MLIR's runtime-utility libraries) would be missing at
/// load time on a machine that has only the MoE runtime.
bool isProvidedExternally(StringRef name) {
  static const StringSet<> libc = {"malloc", "free",    "aligned_alloc",
                                   "memcpy", "memmove", "memset",
                                   "write"};
  static const StringSet<> libm = {
      "expf",  "exp2f", "expm1f", "logf",   "log1pf", "log2f",  "log10f",
      "erff",  "erfcf", "tanhf",  "sinhf",  "coshf",  "tanf",   "sinf",
      "cosf",  "atanf", "atan2f", "acosf",  "asinf",  "powf",   "sqrtf",
      "cbrtf", "fabsf", "fmaf",   "floorf", "ceilf",  "roundf", "truncf"};
  return libc.contains(name) || libm.contains(name) ||
         moe::compile::isOpenMPEntry(name) || moe::compile::isMPIEntry(name);
}

/// The GPU functions of MLIR's gpu-to-llvm lowering that the MoE runtime
/// implements (lib/Runtime/CudaCalls.h).
bool isProvidedByRuntime(StringRef name) {
  static const StringSet<> calls = {"mgpuModuleLoad",
                                    "mgpuModuleLoadJIT",
                                    "mgpuModuleUnload",
                                    "mgpuModuleGetFunction",
                                    "mgpuLaunchKernel",
                                    "mgpuLaunchClusterKernel",
                                    "mgpuStreamCreate",
                                    "mgpuStreamDestroy",
                                    "mgpuStreamSynchronize",
                                    "mgpuStreamWaitEvent",
                                    "mgpuEventCreate",
                                    "mgpuEventDestroy",
                                    "mgpuEventSynchronize",
                                    "mgpuEventRecord",
                                    "mgpuMemAlloc",
                                    "mgpuMemFree",
                                    "mgpuMemcpy",
                                    "mgpuMemset32",
                                    "mgpuMemset16",
                                    "mgpuSetDefaultDevice",
                                    "mgpuTensorMapEncodeTiledMemref",
                                    "mgpuTensorMapEncodeTiledMemrefInto",
                                    "mgpuAllowProgrammaticLaunches"};
  return calls.contains(name);
}

/// Compiles `module` for `cpu` to the shared object `outputPath`: an object
/// file in a temporary directory, then lld.
int buildSharedObject(Module &module, TargetMachine &machine) {
  SmallString<128> objectPath;
  if (std::error_code ec =
          sys::fs::createTemporaryFile("moe-compile", "o", objectPath))
    return fail("cannot create a temporary file: " + ec.message());
  FileRemover removeObject(objectPath);
  if (Error error = moe::compile::recordTarget(module, machine))
    return fail(toString(std::move(error)));
  if (Error error = moe::compile::emitObject(module, machine, objectPath))
    return fail(toString(std::move(error)));
  bool usesOpenMP = llvm::any_of(module, [](const Function &function) {
    return function.isDeclaration() &&
           moe::compile::isOpenMPEntry(function.getName());
  });
  // OpenMPI's ABI refers to its predefined objects (`ompi_mpi_*`).
  moe::compile::MPILibrary mpi = moe::compile::MPILibrary::None;
  if (llvm::any_of(module, [](const Function &function) {
        return function.isDeclaration() &&
               moe::compile::isMPIEntry(function.getName());
      }))
    mpi = llvm::any_of(module.globals(),
                       [](const GlobalVariable &global) {
                         return global.getName().starts_with("ompi_");
                       })
              ? moe::compile::MPILibrary::OpenMPI
              : moe::compile::MPILibrary::MPICH;
  // GPU modules call the runtime that loads them (mgpu*).
  if (Error error = moe::compile::linkSharedObject(
          objectPath, outputPath, usesOpenMP, mpi,
          /*everySymbolDefined=*/target == CodegenTarget::CPU))
    return fail(toString(std::move(error)));
  return 0;
}

/// One lowering of the module: the kernels it uses and the CPU features
/// (beyond the target's) they need.
struct KernelChoice {
  /// The variant's name in the manifest; empty for a module of one.
  std::string name;
  /// The bf16 expert kernel; none leaves the pipeline's option as it is.
  std::optional<mlir::moe::Bf16Matmul> bf16Matmul;
  std::vector<std::string> requiredFeatures;
};

/// Whether a public function of `module` takes a bf16, FP8 or MXFP4 (e2m1
/// pairs) weight: the bf16 kernels change nothing else.
bool takesLowPrecisionWeights(mlir::ModuleOp module) {
  bool found = false;
  module.walk([&](mlir::func::FuncOp function) {
    if (!function.isPublic())
      return;
    for (unsigned i = 0, e = function.getNumArguments(); i < e; ++i) {
      auto type = dyn_cast<mlir::ShapedType>(function.getArgument(i).getType());
      found |= type &&
               (type.getElementType().isBF16() ||
                llvm::isa<mlir::Float8E4M3FNType>(type.getElementType()) ||
                mlir::moe::isE2M1Pairs(type.getElementType())) &&
               function.getArgAttr(i, "moe.weight");
    }
  });
  return found;
}

/// Sizes the fast path's register tiles to `machine`'s vector registers,
/// where --pipeline-options leaves them unset: f32 lanes of the widest
/// vectors (16 with AVX-512, 8 with AVX, 4 below), and half of the
/// registers (32 with AVX-512, 16 below) as accumulators, the other half
/// for the operands each step loads. The packed-weight kernel's panels are
/// two vectors wide, its tiles of rows half the register count over two
/// (8 rows of 32 columns with AVX-512, 4 of 16 with AVX2); the dot-product
/// kernel's tiles (routers, shared experts) 2 rows of R/4 columns. Larger
/// tiles on AVX2 spilled accumulators inside the reduction loop (qwen3-s
/// f32 T = 512 on one Zen 3 core: 410 ms with the AVX-512 shapes, 125-137
/// with these, docs/Performance.md).
void sizeRegisterTiles(mlir::moe::LowerToCPUOptions &options,
                       const TargetMachine &machine) {
  bool avx512 = moe::compile::targetHasFeatures(machine, {"avx512f"});
  int64_t lanes = avx512                                              ? 16
                  : moe::compile::targetHasFeatures(machine, {"avx"}) ? 8
                                                                      : 4;
  int64_t registers = avx512 ? 32 : 16;
  if (!options.vectorWidth.hasValue())
    options.vectorWidth = lanes;
  // From a width given, when it is one a kernel takes (its own pass
  // reports any other).
  if (!options.panelCols.hasValue() && options.vectorWidth >= 1 &&
      options.vectorWidth <= 64)
    options.panelCols = 2 * options.vectorWidth;
  if (!options.panelRows.hasValue())
    options.panelRows = registers / 2 / 2;
  if (!options.tileCols.hasValue() && options.tileRows >= 1)
    options.tileCols = std::max<int64_t>(1, registers / 2 / options.tileRows);
}

/// The lowerings to compile, fastest first; the last one runs on every CPU
/// that has the target's features. Where --pipeline-options leaves the bf16
/// kernel unset and the target has AVX512_BF16, a module with bf16 (or
/// FP8) weights holds the vdpbf16ps kernel and the f32-FMA floor, and the
/// runtime picks one when it loads the module. An error for a kernel the target
/// lacks.
mlir::FailureOr<SmallVector<KernelChoice>>
chooseKernels(const mlir::moe::LowerToCPUOptions &options,
              const TargetMachine &machine, StringRef cpu,
              mlir::ModuleOp module) {
  using mlir::moe::Bf16Matmul;
  SmallVector<KernelChoice> single = {KernelChoice()};
  // The reference lowering has no such kernels.
  if (options.reference)
    return single;
  // vdpbf16ps: AVX512_BF16 on AVX-512, with AVX512VL below 16 lanes.
  bool bf16Dot =
      moe::compile::targetHasFeatures(machine, {"avx512f", "avx512bf16"});
  if (options.vectorWidth < 16)
    bf16Dot = bf16Dot && moe::compile::targetHasFeatures(machine, {"avx512vl"});
  if (options.bf16Matmul == Bf16Matmul::Avx512Bf16 && !bf16Dot) {
    fail("bf16-matmul=avx512bf16 needs a CPU with AVX512_BF16; '" + cpu +
         "' has none");
    return mlir::failure();
  }
  if (options.bf16Matmul.hasValue() || !bf16Dot || options.vectorWidth != 16 ||
      !takesLowPrecisionWeights(module))
    return single;
  return SmallVector<KernelChoice>{
      {"avx512bf16", Bf16Matmul::Avx512Bf16, {"avx512bf16"}},
      {"f32", Bf16Matmul::F32, {}}};
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  moe::tools::setVersionPrinter();
  // LLVM's code generation flags (--mcpu, --mattr, ...), registered once for
  // the code generator and the linked-in lld alike.
  static codegen::RegisterCodeGenFlags codegenFlags;
  cl::getRegisteredOptions()["mcpu"]->setDescription(
      "CPU to generate code for (an LLVM CPU name, as clang -march); "
      "'native' (the default) is the machine compiling");
  cl::getRegisteredOptions()["mcpu"]->addCategory(category);
  cl::getRegisteredOptions()["mattr"]->addCategory(category);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "MoE-MLIR ahead-of-time compiler: moe IR on tensors to a shared object "
      "for the runtime\n");
  std::string mcpu = codegen::getMCPU();
  // GPU modules run on another machine than the one compiling: a host CPU
  // level every x86-64 server has.
  if (mcpu.empty())
    mcpu = target == CodegenTarget::CUDA ? "x86-64-v2" : "native";
  if (rowAlign < 1)
    return fail("--row-align must be at least 1, got " + Twine(rowAlign));
  Expected<std::unique_ptr<TargetMachine>> machine =
      moe::compile::createTargetMachine(mcpu);
  if (!machine)
    return fail(toString(machine.takeError()));

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  mlir::moe::registerAllDialects(registry);
  mlir::moe::registerConvertMoEToLLVMInterface(registry);
  mlir::MLIRContext context(registry);

  std::string errorMessage;
  std::unique_ptr<MemoryBuffer> input =
      mlir::openInputFile(inputPath, &errorMessage);
  if (!input)
    return fail(errorMessage);
  moe::tools::exitIfParserCrashes(*input, registry,
                                  /*allowUnregisteredDialects=*/false,
                                  /*splitMarker=*/"", "moe-compile");
  SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(input), SMLoc());
  mlir::SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;

  auto writeText = [&](function_ref<void(raw_ostream &)> print) {
    std::unique_ptr<ToolOutputFile> out =
        mlir::openOutputFile(outputPath, &errorMessage);
    if (!out)
      return fail(errorMessage);
    print(out->os());
    out->keep();
    return 0;
  };
  // Calls every module may make, and those only the runtime provides.
  auto checkCalls = [&](const Module &llvmModule) {
    for (const Function &function : llvmModule)
      if (function.isDeclaration() && !function.isIntrinsic() &&
          !isProvidedExternally(function.getName()) &&
          !(target == CodegenTarget::CUDA &&
            isProvidedByRuntime(function.getName())))
        return fail("the lowered module calls '" + function.getName() +
                    "', which neither libc, libm, libomp, MPI nor the MoE "
                    "runtime "
                    "provides");
    return 0;
  };

  if (target == CodegenTarget::CUDA) {
    mlir::moe::LowerToCUDAOptions options;
    options.rowAlign = rowAlign;
    options.reference = reference;
    if (mlir::failed(options.parseFromString(pipelineOptions)))
      return fail("invalid --pipeline-options '" + pipelineOptions + "'");
    if (mlir::failed(mlir::moe::checkLowerToCUDAOptions(
            options, [](const Twine &message) { fail(message); })))
      return 1;
    mlir::PassManager pm(&context);
    mlir::moe::buildLowerToCUDAPipeline(pm, options);
    if (mlir::failed(pm.run(*module)))
      return 1;
    if (emit == Emit::MLIR)
      return writeText([&](raw_ostream &os) { module->print(os); });
    LLVMContext llvmContext;
    std::unique_ptr<Module> llvmModule =
        mlir::translateModuleToLLVMIR(*module, llvmContext, inputPath);
    if (!llvmModule)
      return fail("cannot translate '" + inputPath + "' to LLVM IR");
    if (int failed = checkCalls(*llvmModule))
      return failed;
    if (emit == Emit::LLVMIR)
      return writeText(
          [&](raw_ostream &os) { llvmModule->print(os, nullptr); });
    return buildSharedObject(*llvmModule, **machine);
  }

  mlir::moe::LowerToCPUOptions options;
  options.rowAlign = rowAlign;
  options.reference = reference;
  if (mlir::failed(options.parseFromString(pipelineOptions)))
    return fail("invalid --pipeline-options '" + pipelineOptions + "'");
  if (mlir::failed(mlir::moe::checkLowerToCPUOptions(
          options, [](const Twine &message) { fail(message); })))
    return 1;
  // FP8 decoded by byte-table lookups where the target has AVX512_VBMI.
  bool byteLookup =
      moe::compile::targetHasFeatures(**machine, {"avx512f", "avx512vbmi"});
  if (!options.fp8ByteLookup.hasValue())
    options.fp8ByteLookup = byteLookup;
  else if (options.fp8ByteLookup && !byteLookup)
    return fail("fp8-byte-lookup needs a CPU with AVX512_VBMI; '" + mcpu +
                "' has none");
  sizeRegisterTiles(options, **machine);
  mlir::FailureOr<SmallVector<KernelChoice>> choices =
      chooseKernels(options, **machine, mcpu, *module);
  if (mlir::failed(choices))
    return 1;
  // With variants, the module's own target lacks what they add: the floor
  // must not use it, and the manifest must not ask the CPU for it.
  if (choices->size() > 1) {
    std::vector<std::string> removed;
    for (const KernelChoice &choice : *choices)
      for (const std::string &feature : choice.requiredFeatures)
        removed.push_back("-" + feature);
    machine = moe::compile::createTargetMachine(mcpu, removed);
    if (!machine)
      return fail(toString(machine.takeError()));
  }

  // Each variant is lowered from its own copy of the module.
  LLVMContext llvmContext;
  std::vector<std::unique_ptr<Module>> lowered;
  std::string mlirText;
  raw_string_ostream mlirStream(mlirText);
  for (const KernelChoice &choice : *choices) {
    mlir::OwningOpRef<mlir::ModuleOp> copy = module->clone();
    if (choice.bf16Matmul)
      options.bf16Matmul = *choice.bf16Matmul;
    mlir::PassManager pm(&context);
    mlir::moe::buildLowerToCPUPipeline(pm, options);
    if (mlir::failed(pm.run(*copy)))
      return 1;
    if (emit == Emit::MLIR) {
      // Variants as the split markers of moe-opt --split-input-file.
      if (!choice.name.empty())
        mlirStream << (mlirText.empty() ? "" : "// -----\n") << "// variant "
                   << choice.name << "\n";
      copy->print(mlirStream);
      mlirStream << "\n";
      continue;
    }
    std::unique_ptr<Module> llvmModule =
        mlir::translateModuleToLLVMIR(*copy, llvmContext, inputPath);
    if (!llvmModule)
      return fail("cannot translate '" + inputPath + "' to LLVM IR");
    lowered.push_back(std::move(llvmModule));
  }
  if (emit == Emit::MLIR)
    return writeText([&](raw_ostream &os) { os << mlirText; });

  std::unique_ptr<Module> llvmModule = std::move(lowered.back());
  lowered.pop_back();
  if (!lowered.empty()) {
    std::vector<moe::compile::KernelVariant> faster;
    for (size_t i = 0; i < lowered.size(); ++i)
      faster.push_back({(*choices)[i].name, (*choices)[i].requiredFeatures,
                        std::move(lowered[i])});
    if (Error error = moe::compile::linkKernelVariants(
            *llvmModule, choices->back().name, std::move(faster),
            (*machine)->getTargetFeatureString()))
      return fail(toString(std::move(error)));
  }
  if (int failed = checkCalls(*llvmModule))
    return failed;

  if (emit == Emit::LLVMIR)
    return writeText([&](raw_ostream &os) { llvmModule->print(os, nullptr); });
  return buildSharedObject(*llvmModule, **machine);
}
