//===- moe-opt.cpp - mlir-opt with the moe dialect ------------------------===//
//
// Every upstream dialect, extension and pass, plus the moe dialect, its passes
// and pipelines.
//
//===----------------------------------------------------------------------===//

#include "moe/Conversion/MoEToLLVM/MoEToLLVM.h"
#include "moe/InitAllDialects.h"
#include "moe/InitAllPasses.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include "../SanitizerOptions.h"
#include "../ToolVersion.h"

int main(int argc, char **argv) {
  moe::tools::setVersionPrinter();
  mlir::registerAllPasses();
  mlir::moe::registerAllPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  // gpu-module-to-binary (moe-lower-to-cuda) translates kernels to LLVM IR.
  mlir::registerAllToLLVMIRTranslations(registry);
  mlir::moe::registerAllDialects(registry);
  mlir::moe::registerConvertMoEToLLVMInterface(registry);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "MoE-MLIR optimizer driver\n", registry));
}
