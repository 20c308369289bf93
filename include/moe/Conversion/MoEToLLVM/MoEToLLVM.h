//===- MoEToLLVM.h - moe ops straight to the LLVM dialect -------*- C++ -*-===//
//
// The moe ops that lower to library calls rather than loops: moe.all_to_all
// on buffers becomes MPI calls (`MPI_Alltoallv` with a contiguous datatype
// of one row). Part of convert-to-llvm through the dialect's
// ConvertToLLVMPatternInterface.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_CONVERSION_MOETOLLVM_MOETOLLVM_H
#define MOE_CONVERSION_MOETOLLVM_MOETOLLVM_H

namespace mlir {
class DialectRegistry;
class LLVMTypeConverter;
class RewritePatternSet;
} // namespace mlir

namespace mlir::moe {

/// moe.all_to_all on buffers to MPI calls, for the MPI library the module's
/// DLTI entry `"MPI:Implementation"` names (`OpenMPI` or `MPICH`, the
/// default, as the MPI dialect's own lowering).
void populateAllToAllToLLVMPatterns(LLVMTypeConverter &converter,
                                    RewritePatternSet &patterns);

/// Registers the moe dialect's ConvertToLLVMPatternInterface.
void registerConvertMoEToLLVMInterface(DialectRegistry &registry);

} // namespace mlir::moe

#endif // MOE_CONVERSION_MOETOLLVM_MOETOLLVM_H
