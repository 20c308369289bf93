//===- ExportEntries.cpp - Entry points and their manifest ----------------===//
//
// The bridge between the compiler and the runtime: public functions get the C
// interface, and their signatures and weight bindings are recorded as JSON in
// the global `moe_module_manifest`, which the runtime reads after dlopen.
//
//===----------------------------------------------------------------------===//

#include "ManifestGlobal.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"
#include "moe/Version.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/JSON.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEEXPORTENTRIESPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The manifest's name of a tensor element type, or "" when entry points
/// cannot take it.
StringRef getDTypeName(Type type) {
  if (type.isF32())
    return "f32";
  if (type.isBF16())
    return "bf16";
  if (type.isF16())
    return "f16";
  if (type.isInteger(32))
    return "i32";
  if (type.isInteger(64))
    return "i64";
  if (type.isInteger(8))
    return "i8";
  if (llvm::isa<Float8E4M3FNType>(type))
    return "f8e4m3fn";
  return "";
}

/// `{"dtype", "shape"}` of an entry point's tensor, or an error on `func`.
FailureOr<llvm::json::Object> describeTensor(func::FuncOp func, Type type,
                                             StringRef what) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  StringRef dtype = tensor ? getDTypeName(tensor.getElementType()) : "";
  if (dtype.empty())
    return func.emitError() << "entry point " << what
                            << " must be a ranked tensor of f32, bf16, f16, "
                               "i8, i32, i64 or f8E4M3FN, got "
                            << type;
  llvm::json::Array shape;
  for (int64_t size : tensor.getShape())
    shape.push_back(ShapedType::isDynamic(size) ? int64_t(-1) : size);
  return llvm::json::Object{{"dtype", dtype}, {"shape", std::move(shape)}};
}

/// Routing whose tokens are independent of each other: dropless token choice
/// without statistics.
bool isTokenLocal(RoutingAttr routing, bool withStatistics) {
  return !routing.isExpertChoice() && !routing.hasCapacity() &&
         !withStatistics;
}

/// Whether every token's output of `func` depends on that token alone.
/// Conservative: only moe ops with token-local routing, constants, the
/// return, and ops on weights alone (weight views: reshapes, slices,
/// transposes, broadcasts and their empty destinations; widening casts),
/// every tensor
/// operand a weight argument or such an op's result.
bool isTokenParallel(func::FuncOp func) {
  llvm::SmallPtrSet<Value, 16> weightOnly;
  for (BlockArgument arg : func.getArguments())
    if (func.getArgAttr(arg.getArgNumber(), kWeightAttrName))
      weightOnly.insert(arg);
  // Pre-order, so that a view's own body (linalg.transpose's) is skipped.
  WalkResult result = func.getBody().walk<WalkOrder::PreOrder>(
      [&](Operation *op) -> WalkResult {
        bool local = false;
        // Under expert parallelism every call is a collective.
        if (auto layer = dyn_cast<LayerOp>(op))
          local = isTokenLocal(layer.getRouting(), !layer.getStats().empty()) &&
                  !layer.getExpertRanks();
        else if (auto gate = dyn_cast<GateOp>(op))
          local = isTokenLocal(gate.getRouting(),
                               !gate.getRequestedStatistics().empty());
        else if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp,
                     tensor::ExtractSliceOp, linalg::TransposeOp,
                     linalg::BroadcastOp, tensor::EmptyOp, arith::ExtFOp>(op) &&
                 llvm::all_of(op->getOperands(), [&](Value operand) {
                   return !isa<TensorType>(operand.getType()) ||
                          weightOnly.contains(operand);
                 })) {
          weightOnly.insert(op->result_begin(), op->result_end());
          return WalkResult::skip();
        } else
          local =
              isa<DispatchOp, ExpertMatmulOp, CombineOp, func::ReturnOp,
                  arith::ConstantOp, bufferization::MaterializeInDestinationOp>(
                  op);
        return local ? WalkResult::advance() : WalkResult::interrupt();
      });
  return !result.wasInterrupted();
}

/// Device-io entries in destination-passing style: each result gets an
/// argument of its type, the caller's buffer, into which the entry writes
/// it (`bufferization.materialize_in_destination`, which bufferization
/// turns into the result's producer writing there) and which it returns.
/// Maps each such argument to its result.
FailureOr<llvm::DenseMap<unsigned, unsigned>>
addOutputArguments(func::FuncOp func) {
  llvm::DenseMap<unsigned, unsigned> outputs;
  SmallVector<BlockArgument> destinations;
  for (auto [index, type] : llvm::enumerate(func.getResultTypes())) {
    if (!llvm::isa<RankedTensorType>(type))
      return func.emitError() << "entry point result " << index
                              << " must be a ranked tensor, got " << type;
    unsigned position = func.getNumArguments();
    if (failed(func.insertArgument(position, type, /*argAttrs=*/{},
                                   func.getLoc())))
      return failure();
    outputs[position] = index;
    destinations.push_back(func.getArgument(position));
  }
  func.walk([&](func::ReturnOp ret) {
    OpBuilder b(ret);
    for (OpOperand &operand : ret->getOpOperands())
      operand.set(bufferization::MaterializeInDestinationOp::create(
                      b, ret.getLoc(), operand.get(),
                      destinations[operand.getOperandNumber()])
                      .getResult());
  });
  return outputs;
}

FailureOr<llvm::json::Object>
describeEntry(func::FuncOp func,
              const llvm::DenseMap<unsigned, unsigned> &outputs) {
  llvm::json::Array args;
  for (auto [index, type] : llvm::enumerate(func.getArgumentTypes())) {
    std::string what = "argument " + std::to_string(index);
    FailureOr<llvm::json::Object> arg = describeTensor(func, type, what);
    if (failed(arg))
      return failure();
    if (auto output = outputs.find(index); output != outputs.end()) {
      (*arg)["kind"] = "output";
      (*arg)["result"] = static_cast<int64_t>(output->second);
    } else if (auto name =
                   func.getArgAttrOfType<StringAttr>(index, kWeightAttrName)) {
      (*arg)["kind"] = "weight";
      (*arg)["name"] = name.getValue();
      // Checked by the dialect's argument-attribute verifier.
      if (auto format = func.getArgAttrOfType<StringAttr>(
              index, kWeightFormatAttrName))
        (*arg)["format"] = format.getValue();
      // A rank's window of the experts (moe-shard-experts).
      if (auto experts =
              func.getArgAttrOfType<IntegerAttr>(index, kExpertWindowAttrName))
        (*arg)["experts"] = experts.getInt();
      // A packed weight: the function and the checkpoint shape it reads.
      if (auto packing =
              func.getArgAttrOfType<DictionaryAttr>(index, kPackingAttrName)) {
        auto function = packing.getAs<FlatSymbolRefAttr>("function");
        auto shape = packing.getAs<DenseI64ArrayAttr>("shape");
        if (!function || !shape)
          return func.emitError()
                 << "argument " << index << ": '" << kPackingAttrName
                 << "' needs a 'function' symbol and a 'shape' array";
        (*arg)["packing"] =
            describePacking(function.getValue(), shape.asArrayRef());
      }
    } else {
      (*arg)["kind"] = "input";
    }
    args.push_back(std::move(*arg));
  }
  llvm::json::Array results;
  for (auto [index, type] : llvm::enumerate(func.getResultTypes())) {
    FailureOr<llvm::json::Object> result =
        describeTensor(func, type, "result " + std::to_string(index));
    if (failed(result))
      return failure();
    results.push_back(std::move(*result));
  }
  return llvm::json::Object{
      {"name", func.getSymName()},
      {"symbol", ("_mlir_ciface_" + func.getSymName()).str()},
      {"token_parallel", isTokenParallel(func)},
      {"args", std::move(args)},
      {"results", std::move(results)}};
}

struct MoEExportEntriesPass
    : public moe::impl::MoEExportEntriesPassBase<MoEExportEntriesPass> {
  using MoEExportEntriesPassBase::MoEExportEntriesPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    StringRef chip = cudaChip;
    // sm_NN, or sm_NNa for architecture-specific code (sm_90a: wgmma).
    StringRef number = chip.drop_front(3);
    number.consume_back("a");
    if (!chip.empty() && (!chip.starts_with("sm_") || number.empty() ||
                          !llvm::all_of(number, llvm::isDigit))) {
      module.emitError("moe-export-entries: cuda-chip must be sm_NN or "
                       "sm_NNa, got '")
          << chip << "'";
      return signalPassFailure();
    }
    if (deviceIO && chip.empty()) {
      module.emitError("moe-export-entries: device-io needs cuda-chip");
      return signalPassFailure();
    }
    // Packing functions (moe-pack-expert-weights) are called through the
    // weights they pack, not entry points.
    llvm::StringSet<> packingFunctions;
    for (auto func : module.getOps<func::FuncOp>())
      for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
        if (auto packing =
                func.getArgAttrOfType<DictionaryAttr>(i, kPackingAttrName))
          if (auto function = packing.getAs<FlatSymbolRefAttr>("function"))
            packingFunctions.insert(function.getValue());
    llvm::json::Array entries;
    for (auto func : module.getOps<func::FuncOp>()) {
      if (!func.isPublic() || func.isExternal() ||
          packingFunctions.contains(func.getSymName()))
        continue;
      llvm::DenseMap<unsigned, unsigned> outputs;
      if (deviceIO) {
        FailureOr<llvm::DenseMap<unsigned, unsigned>> added =
            addOutputArguments(func);
        if (failed(added))
          return signalPassFailure();
        outputs = std::move(*added);
      }
      FailureOr<llvm::json::Object> entry = describeEntry(func, outputs);
      if (failed(entry))
        return signalPassFailure();
      entries.push_back(std::move(*entry));
      // The manifest holds the bindings now; LLVM translation has no use
      // for them.
      // Arguments are the caller's buffers (inputs, weights in a read-only
      // checkpoint mapping): bufferization must never write into them,
      // but for the outputs it writes the results into. On a GPU,
      // moe-map-to-gpu still needs to know the weights.
      for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i) {
        if (chip.empty())
          func.removeArgAttr(i, kWeightAttrName);
        func.removeArgAttr(i, kPackingAttrName);
        func.removeArgAttr(i, kWeightFormatAttrName);
        func.removeArgAttr(i, kExpertWindowAttrName);
        func.setArgAttr(i, "bufferization.writable",
                        BoolAttr::get(&getContext(), outputs.contains(i)));
      }
      func->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                    UnitAttr::get(&getContext()));
    }
    llvm::json::Object manifest{{"version", 1},
                                {"producer", "moe-mlir " MOE_VERSION_STRING},
                                {"entries", std::move(entries)}};
    if (!chip.empty())
      manifest["gpu"] =
          llvm::json::Object{{"api", "cuda"},
                             {"chip", chip},
                             {"io", deviceIO ? "device" : "host"}};
    // Expert parallelism: the ranks of MPI_COMM_WORLD the module runs on.
    if (auto ranks = module->getAttrOfType<IntegerAttr>(kMPIRanksAttrName)) {
      manifest["parallel"] =
          llvm::json::Object{{"api", "mpi"},
                             {"library", getMPILibrary(module)},
                             {"ranks", ranks.getInt()}};
    }
    writeManifest(module, std::move(manifest));
  }
};

} // namespace
