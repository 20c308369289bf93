//===- AllToAllToMPICalls.cpp - moe.all_to_all to MPI_Alltoallv
//------------===//
//
// One moe.all_to_all on buffers becomes
//
//   MPI_Type_contiguous(row bytes, MPI_BYTE, &row); MPI_Type_commit(&row);
//   MPI_Alltoallv(input, send counts, send displacements, row,
//                 init, recv counts, recv displacements, row, comm);
//   MPI_Type_free(&row);
//
// with the i64 counts truncated to MPI's int and their displacements
// (exclusive prefix sums) in stack arrays, unrolled over the R ranks (R is
// static and small). A row as the datatype keeps the counts in rows, so
// messages may exceed 2^31 bytes. The communicator is the MPI dialect's
// !mpi.comm (an i64 once converted), and the MPI library's ABI is chosen as
// the MPI dialect's lowering chooses it: the module's DLTI entry
// "MPI:Implementation", OpenMPI or MPICH (the default). Errors take MPI's
// default handler, MPI_ERRORS_ARE_FATAL: the job aborts.
//
//===----------------------------------------------------------------------===//

#include "moe/Conversion/MoEToLLVM/MoEToLLVM.h"

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Conversion/ConvertToLLVM/ToLLVMInterface.h"
#include "mlir/Conversion/LLVMCommon/MemRefBuilder.h"
#include "mlir/Conversion/LLVMCommon/Pattern.h"
#include "mlir/Dialect/LLVMIR/FunctionCallUtils.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// What differs between the MPI libraries' ABIs here.
struct MPIABI {
  bool openMPI;

  /// MPI_Datatype: a pointer (OpenMPI) or an int (MPICH).
  Type getDatatypeType(MLIRContext *context) const {
    if (openMPI)
      return LLVM::LLVMPointerType::get(context);
    return IntegerType::get(context, 32);
  }

  /// MPI_Comm from the converted !mpi.comm (an i64).
  Value getComm(OpBuilder &b, Location loc, Value comm) const {
    if (openMPI)
      return LLVM::IntToPtrOp::create(
          b, loc, LLVM::LLVMPointerType::get(b.getContext()), comm);
    return LLVM::TruncOp::create(b, loc, b.getI32Type(), comm);
  }

  /// MPI_BYTE.
  Value getByte(OpBuilder &b, Location loc, ModuleOp module) const {
    if (!openMPI)
      // MPICH's MPI_BYTE, ((MPI_Datatype)0x4c00010d).
      return LLVM::ConstantOp::create(b, loc, b.getI32Type(),
                                      b.getI32IntegerAttr(0x4c00010d));
    StringRef name = "ompi_mpi_byte";
    if (!module.lookupSymbol<LLVM::GlobalOp>(name)) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(module.getBody());
      LLVM::GlobalOp::create(b, loc,
                             LLVM::LLVMStructType::getOpaque(
                                 "ompi_predefined_datatype_t", b.getContext()),
                             /*isConstant=*/false, LLVM::Linkage::External,
                             name,
                             /*value=*/Attribute());
    }
    return LLVM::AddressOfOp::create(
        b, loc, LLVM::LLVMPointerType::get(b.getContext()), name);
  }

  static MPIABI of(ModuleOp module) {
    return MPIABI{getMPILibrary(module) == "OpenMPI"};
  }
};

/// Whether the rows (slices along dimension 0) of `type` are contiguous and
/// packed one after the other.
bool hasPackedRows(MemRefType type) {
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)))
    return false;
  int64_t expected = 1;
  for (int64_t d = type.getRank() - 1; d >= 0; --d) {
    if (strides[d] != expected)
      return false;
    int64_t size = type.getDimSize(d);
    if (d > 0 && ShapedType::isDynamic(size))
      return false;
    expected *= d > 0 ? size : 1;
  }
  return true;
}

/// What a rank prints before it ends the job over counts MPI cannot take.
constexpr StringLiteral kCountsMessage =
    "moe.all_to_all: a row count or offset exceeds MPI's int (2^31 - 1 "
    "rows); the job ends\n";

/// The global holding kCountsMessage.
LLVM::GlobalOp getOrCreateMessage(OpBuilder &b, ModuleOp module, Location loc) {
  StringRef name = "moe_all_to_all_counts_message";
  if (auto global = module.lookupSymbol<LLVM::GlobalOp>(name))
    return global;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  auto type = LLVM::LLVMArrayType::get(b.getI8Type(), kCountsMessage.size());
  return LLVM::GlobalOp::create(b, loc, type, /*isConstant=*/true,
                                LLVM::Linkage::Internal, name,
                                b.getStringAttr(kCountsMessage));
}

struct AllToAllToMPICalls : public ConvertOpToLLVMPattern<AllToAllOp> {
  using ConvertOpToLLVMPattern::ConvertOpToLLVMPattern;

  LogicalResult
  matchAndRewrite(AllToAllOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    auto inputType = llvm::dyn_cast<MemRefType>(op.getInput().getType());
    auto initType = llvm::dyn_cast<MemRefType>(op.getInit().getType());
    auto sendType = llvm::dyn_cast<MemRefType>(op.getSendCounts().getType());
    auto recvType = llvm::dyn_cast<MemRefType>(op.getRecvCounts().getType());
    if (!inputType || !initType || !sendType || !recvType)
      return rewriter.notifyMatchFailure(op, "not on buffers");
    if (!hasPackedRows(inputType) || !hasPackedRows(initType) ||
        !hasPackedRows(sendType) || !hasPackedRows(recvType))
      return op.emitOpError("needs buffers of packed rows (static row "
                            "shape, row-major without gaps), got ")
             << inputType << " and " << initType;
    int64_t elementBits = inputType.getElementTypeBitWidth();
    if (elementBits % 8 != 0)
      return op.emitOpError("needs whole bytes per element, got ")
             << inputType.getElementType();
    int64_t rowBytes = elementBits / 8;
    for (int64_t d = 1; d < inputType.getRank(); ++d)
      rowBytes *= inputType.getDimSize(d);
    if (rowBytes > std::numeric_limits<int32_t>::max())
      return op.emitOpError("rows of ")
             << rowBytes << " bytes exceed MPI's int count";

    auto module = op->getParentOfType<ModuleOp>();
    auto function = op->getParentOfType<FunctionOpInterface>();
    MPIABI abi = MPIABI::of(module);
    Type i32 = rewriter.getI32Type(), i64 = rewriter.getI64Type();
    Type ptr = LLVM::LLVMPointerType::get(context);
    Type datatype = abi.getDatatypeType(context);
    int64_t numRanks = op.getNumRanks();

    // The count arrays and the row datatype, on the function's stack.
    Value countArrays[4], rowType;
    {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(&function.getFunctionBody().front());
      Value ranks = LLVM::ConstantOp::create(
          rewriter, loc, i64, rewriter.getI64IntegerAttr(numRanks));
      for (Value &array : countArrays)
        array = LLVM::AllocaOp::create(rewriter, loc, ptr, i32, ranks);
      Value one = LLVM::ConstantOp::create(rewriter, loc, i64,
                                           rewriter.getI64IntegerAttr(1));
      rowType = LLVM::AllocaOp::create(rewriter, loc, ptr, datatype, one);
    }
    // counts[i] = (int) source[i]; displacements[i] = sum of counts[< i];
    // `outOfRange` when a count or a displacement does not fit MPI's int
    // (computed in i64, compared unsigned: negative counts too).
    Value intMax = LLVM::ConstantOp::create(
        rewriter, loc, i64,
        rewriter.getI64IntegerAttr(std::numeric_limits<int32_t>::max()));
    Value outOfRange = LLVM::ConstantOp::create(
        rewriter, loc, rewriter.getI1Type(), rewriter.getBoolAttr(false));
    auto tooLarge = [&](Value value) {
      outOfRange = LLVM::OrOp::create(
          rewriter, loc, outOfRange,
          LLVM::ICmpOp::create(rewriter, loc, LLVM::ICmpPredicate::ugt, value,
                               intMax));
    };
    auto fillCounts = [&](Value descriptor, MemRefType type, Value counts,
                          Value displacements) {
      Value base = MemRefDescriptor(descriptor)
                       .bufferPtr(rewriter, loc, *getTypeConverter(), type);
      Value sum = LLVM::ConstantOp::create(rewriter, loc, i64,
                                           rewriter.getI64IntegerAttr(0));
      for (int64_t i = 0; i < numRanks; ++i) {
        auto at = [&](Value array, Type element) -> Value {
          return LLVM::GEPOp::create(rewriter, loc, ptr, element, array,
                                     ArrayRef<LLVM::GEPArg>{i});
        };
        Value count = LLVM::LoadOp::create(rewriter, loc, i64, at(base, i64));
        tooLarge(count);
        tooLarge(sum);
        LLVM::StoreOp::create(rewriter, loc,
                              LLVM::TruncOp::create(rewriter, loc, i32, count),
                              at(counts, i32));
        LLVM::StoreOp::create(rewriter, loc,
                              LLVM::TruncOp::create(rewriter, loc, i32, sum),
                              at(displacements, i32));
        // Both below 2^31: no i64 overflow.
        sum = LLVM::AddOp::create(rewriter, loc, sum, count);
      }
    };
    fillCounts(adaptor.getSendCounts(), sendType, countArrays[0],
               countArrays[1]);
    fillCounts(adaptor.getRecvCounts(), recvType, countArrays[2],
               countArrays[3]);

    auto call = [&](StringRef name, ArrayRef<Value> args) -> LogicalResult {
      SmallVector<Type> types = llvm::to_vector(
          llvm::map_range(args, [](Value arg) { return arg.getType(); }));
      FailureOr<LLVM::LLVMFuncOp> callee =
          LLVM::lookupOrCreateFn(rewriter, module, name, types, i32);
      if (failed(callee))
        return failure();
      LLVM::CallOp::create(rewriter, loc, *callee, args);
      return success();
    };
    Value commValue = abi.getComm(rewriter, loc, adaptor.getComm());
    // Counts MPI cannot take: the job ends with one line, before any call.
    {
      Block *before = rewriter.getInsertionBlock();
      Block *after = rewriter.splitBlock(before, rewriter.getInsertionPoint());
      Block *abort = rewriter.createBlock(after);
      Value message = LLVM::AddressOfOp::create(
          rewriter, loc, getOrCreateMessage(rewriter, module, loc));
      Value stderrFd = LLVM::ConstantOp::create(rewriter, loc, i32,
                                                rewriter.getI32IntegerAttr(2));
      Value length = LLVM::ConstantOp::create(
          rewriter, loc, i64,
          rewriter.getI64IntegerAttr(kCountsMessage.size()));
      FailureOr<LLVM::LLVMFuncOp> write = LLVM::lookupOrCreateFn(
          rewriter, module, "write", {i32, ptr, i64}, i64);
      if (failed(write))
        return failure();
      LLVM::CallOp::create(rewriter, loc, *write,
                           ValueRange{stderrFd, message, length});
      if (failed(call("MPI_Abort",
                      {commValue, LLVM::ConstantOp::create(
                                      rewriter, loc, i32,
                                      rewriter.getI32IntegerAttr(1))})))
        return failure();
      LLVM::UnreachableOp::create(rewriter, loc);
      rewriter.setInsertionPointToEnd(before);
      LLVM::CondBrOp::create(rewriter, loc, outOfRange, abort, after);
      rewriter.setInsertionPointToStart(after);
    }
    Value rowBytesValue = LLVM::ConstantOp::create(
        rewriter, loc, i32, rewriter.getI32IntegerAttr(rowBytes));
    Value input = MemRefDescriptor(adaptor.getInput())
                      .bufferPtr(rewriter, loc, *getTypeConverter(), inputType);
    Value init = MemRefDescriptor(adaptor.getInit())
                     .bufferPtr(rewriter, loc, *getTypeConverter(), initType);
    if (failed(call(
            "MPI_Type_contiguous",
            {rowBytesValue, abi.getByte(rewriter, loc, module), rowType})) ||
        failed(call("MPI_Type_commit", {rowType})))
      return failure();
    Value row = LLVM::LoadOp::create(rewriter, loc, datatype, rowType);
    if (failed(call("MPI_Alltoallv",
                    {input, countArrays[0], countArrays[1], row, init,
                     countArrays[2], countArrays[3], row, commValue})) ||
        failed(call("MPI_Type_free", {rowType})))
      return failure();
    rewriter.eraseOp(op);
    return success();
  }
};

struct MoEToLLVMDialectInterface : public ConvertToLLVMPatternInterface {
  using ConvertToLLVMPatternInterface::ConvertToLLVMPatternInterface;

  void populateConvertToLLVMConversionPatterns(
      ConversionTarget &target, LLVMTypeConverter &typeConverter,
      RewritePatternSet &patterns) const final {
    populateAllToAllToLLVMPatterns(typeConverter, patterns);
  }
};

} // namespace

void mlir::moe::populateAllToAllToLLVMPatterns(LLVMTypeConverter &converter,
                                               RewritePatternSet &patterns) {
  patterns.add<AllToAllToMPICalls>(converter);
}

void mlir::moe::registerConvertMoEToLLVMInterface(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, MoeDialect *dialect) {
    dialect->addInterfaces<MoEToLLVMDialectInterface>();
  });
}
