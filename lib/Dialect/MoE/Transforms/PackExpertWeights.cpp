//===- PackExpertWeights.cpp - Expert weights packed once per module ------===//
//
// A weight argument read only by grouped matmuls, directly or through view
// ops (reshapes, slices, transposes of a fused or transposed checkpoint
// tensor), changes type from the layout [E, N, K] they read to panels [E,
// ceil(N/P), K, P] (bf16 and block-scaled FP8 ones, optionally, to panels of
// pairs of K [E, ceil(N/P), ceil(K/2), P, 2]; block-scaled ones to panels whose
// width divides the scale block; MXFP4 e2m1 pairs to [E, ceil(N/P),
// ceil(K/2), P] bytes, with their per-column scales packed in the same
// panels), and the module gains the function that packs it (linalg.pack). The runtime binds the
// checkpoint tensor, calls that function once into a buffer of its own and
// passes the packed buffer to every call of the entry point.
//
//===----------------------------------------------------------------------===//

#include "ManifestGlobal.h"
#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/DenseSet.h"

#include <numeric>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPACKEXPERTWEIGHTSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether `use` is a checkpoint-layout weight (or paired weight) of a
/// grouped matmul on tensors.
bool isWeightUse(OpOperand &use) {
  auto matmul = llvm::dyn_cast<GroupedMatmulOp>(use.getOwner());
  if (!matmul || matmul.getResult().empty())
    return false;
  MutableOperandRange paired = matmul.getPairedWeightMutable();
  return &use == &matmul.getWeightMutable() ||
         (!paired.empty() && &use == &paired[0]);
}

/// Whether `use` reads an [N, K] value as the [1, N, K] weights of one
/// expert (a shared expert, moe-decompose) that only grouped matmuls read.
bool isUnitExpertUse(OpOperand &use) {
  auto expand = llvm::dyn_cast<tensor::ExpandShapeOp>(use.getOwner());
  if (!expand || expand.getResultType().getRank() != 3 ||
      expand.getResultType().getDimSize(0) != 1 || expand->use_empty() ||
      expand.getSrcType().getShape() !=
          expand.getResultType().getShape().drop_front())
    return false;
  for (OpOperand &expandUse : expand->getUses())
    if (!isWeightUse(expandUse))
      return false;
  return true;
}

/// The linalg.generic around `use` when `use` is the read of a neuron
/// gather (moe-dense-to-moe): `use` is the tensor of a tensor.extract in the
/// body of a generic on tensors with a static result whose one input is a
/// constant table of the neurons to read; null otherwise.
linalg::GenericOp getNeuronGather(OpOperand &use) {
  auto extract = llvm::dyn_cast<tensor::ExtractOp>(use.getOwner());
  if (!extract || use.getOperandNumber() != 0)
    return {};
  auto generic = llvm::dyn_cast<linalg::GenericOp>(extract->getParentOp());
  if (!generic || !generic.hasPureTensorSemantics() ||
      generic.getNumDpsInputs() != 1 || generic.getNumDpsInits() != 1 ||
      !generic.getDpsInputOperand(0)
           ->get()
           .getDefiningOp<arith::ConstantOp>() ||
      !generic.getDpsInitOperand(0)->get().getDefiningOp<tensor::EmptyOp>() ||
      !llvm::cast<RankedTensorType>(generic.getResultTypes()[0])
           .hasStaticShape())
    return {};
  // Whatever else the body reads from above is a constant, which the
  // packing function clones.
  llvm::SetVector<Value> captured;
  getUsedValuesDefinedAbove(generic.getRegion(), captured);
  for (Value value : captured)
    if (value != use.get() && !matchPattern(value, m_Constant()))
      return {};
  return generic;
}

/// The op that `use` reads a checkpoint tensor into an operand's layout
/// with (docs/CompiledModules.md, "Weight views"), when it does nothing
/// else: a static reshape, a static slice, a transpose, a broadcast
/// (upcycled experts) or a neuron gather (split experts). The packing
/// function replays these ops before it packs. Null otherwise.
Operation *getViewOp(OpOperand &use) {
  Operation *op = use.getOwner();
  auto staticResult = [&] {
    auto type = llvm::dyn_cast<RankedTensorType>(op->getResult(0).getType());
    return type && type.hasStaticShape();
  };
  if (llvm::isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
    return staticResult() ? op : nullptr;
  if (auto slice = llvm::dyn_cast<tensor::ExtractSliceOp>(op))
    return use.getOperandNumber() == 0 && slice.getOffsets().empty() &&
                   slice.getSizes().empty() && slice.getStrides().empty() &&
                   staticResult()
               ? op
               : nullptr;
  if (llvm::isa<linalg::TransposeOp, linalg::BroadcastOp>(op)) {
    auto linalgOp = llvm::cast<linalg::LinalgOp>(op);
    return &use == linalgOp.getDpsInputOperand(0) &&
                   linalgOp.hasPureTensorSemantics() && staticResult()
               ? op
               : nullptr;
  }
  return getNeuronGather(use);
}

bool isViewUse(OpOperand &use) { return getViewOp(use) != nullptr; }

/// The value a view op reads (its source operand, or the tensor a neuron
/// gather reads); null when `op` is no view op.
Value getViewSource(Operation *op) {
  if (llvm::isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp,
                tensor::ExtractSliceOp, linalg::TransposeOp,
                linalg::BroadcastOp>(op))
    return op->getOperand(0);
  auto generic = llvm::dyn_cast<linalg::GenericOp>(op);
  if (!generic)
    return {};
  for (auto extract : generic.getBody()->getOps<tensor::ExtractOp>())
    if (getNeuronGather(extract.getTensorMutable()) == generic)
      return extract.getTensor();
  return {};
}

/// The view ops an argument is read through: from `arg`, each op the only
/// user of the previous value (and a view of it), in order. Empty when the
/// argument is read as it is.
SmallVector<Operation *> viewChain(BlockArgument arg) {
  SmallVector<Operation *> chain;
  Value value = arg;
  while (value.hasOneUse() && isViewUse(*value.getUses().begin()) &&
         // A reshape to one expert's weights ends the chain: it is the
         // unit-expert read below.
         !isUnitExpertUse(*value.getUses().begin())) {
    Operation *op = getViewOp(*value.getUses().begin());
    chain.push_back(op);
    value = op->getResult(0);
  }
  return chain;
}

/// The value grouped matmuls read `arg` as: the end of its view chain.
Value viewedValue(BlockArgument arg, ArrayRef<Operation *> chain) {
  return chain.empty() ? Value(arg) : chain.back()->getResult(0);
}

/// The static [E, N, K] type the grouped matmuls read `arg` as, when every
/// use of it (through its view chain) is a weight of a grouped matmul on
/// tensors ([1, N, K] for an [N, K] value that every use expands to one
/// expert's weights); null otherwise.
RankedTensorType packableType(BlockArgument arg) {
  Value value = viewedValue(arg, viewChain(arg));
  auto type = llvm::dyn_cast<RankedTensorType>(value.getType());
  if (!type || !type.hasStaticShape() || value.use_empty() ||
      !llvm::cast<RankedTensorType>(arg.getType()).hasStaticShape())
    return {};
  if (type.getRank() == 2 && llvm::all_of(value.getUses(), isUnitExpertUse))
    return RankedTensorType::get({1, type.getDimSize(0), type.getDimSize(1)},
                                 type.getElementType());
  if (type.getRank() != 3)
    return {};
  for (OpOperand &use : value.getUses())
    if (!isWeightUse(use))
      return {};
  return type;
}

/// The argument `weight` (a grouped matmul's) is, directly, expanded to one
/// expert's weights or through view ops; null otherwise.
BlockArgument weightArgument(Value weight) {
  while (Operation *op = weight.getDefiningOp()) {
    weight = getViewSource(op);
    if (!weight)
      return {};
  }
  return llvm::dyn_cast<BlockArgument>(weight);
}

/// The grouped matmuls that read `arg` as a weight (through its views).
SmallVector<Operation *> weightReaders(BlockArgument arg) {
  SmallVector<Operation *> readers;
  for (Operation *user : viewedValue(arg, viewChain(arg)).getUsers()) {
    if (llvm::isa<GroupedMatmulOp>(user))
      readers.push_back(user);
    else
      llvm::append_range(readers, user->getUsers());
  }
  return readers;
}

/// Whether `matmul` has one block scale per column (BN = 1, MXFP4): its
/// scales are packed with its weights.
bool hasColumnScales(GroupedMatmulOp matmul) {
  std::optional<ArrayRef<int64_t>> block = matmul.getWeightBlock();
  return block && (*block)[0] == 1;
}

/// Whether `use` is the block scale (or paired scale) of a grouped matmul
/// on tensors with per-column scales, in the checkpoint layout.
bool isColumnScaleUse(OpOperand &use) {
  auto matmul = llvm::dyn_cast<GroupedMatmulOp>(use.getOwner());
  if (!matmul || matmul.getResult().empty() || !hasColumnScales(matmul) ||
      llvm::cast<ShapedType>(use.get().getType()).getRank() != 3)
    return false;
  MutableOperandRange scale = matmul.getWeightScaleMutable();
  MutableOperandRange paired = matmul.getPairedWeightScaleMutable();
  return (!scale.empty() && &use == &scale[0]) ||
         (!paired.empty() && &use == &paired[0]);
}

/// Whether the weight-bound `arg` holds per-column scales that can be
/// packed: static, and read (through its views) only as such scales.
bool isPackableColumnScale(BlockArgument arg,
                           function_ref<bool(BlockArgument)> isWeight) {
  Value value = viewedValue(arg, viewChain(arg));
  auto type = llvm::dyn_cast<RankedTensorType>(value.getType());
  return isWeight(arg) && type && type.hasStaticShape() &&
         llvm::cast<RankedTensorType>(arg.getType()).hasStaticShape() &&
         !value.use_empty() && llvm::all_of(value.getUses(), isColumnScaleUse);
}

/// The arguments of `entry` to pack: weights that `packableType` accepts,
/// less those paired in a grouped matmul with a weight that is not packed
/// (both weights of a matmul have one type), and less the weights of
/// matmuls with per-column scales where those scales cannot be packed too
/// or are shared with a matmul whose weights are not packed, to a fixed
/// point.
llvm::SmallDenseSet<BlockArgument>
selectPackedArguments(func::FuncOp entry,
                      function_ref<bool(BlockArgument)> isWeight) {
  llvm::SmallDenseSet<BlockArgument> packed;
  for (BlockArgument arg : entry.getArguments())
    if (isWeight(arg) && packableType(arg))
      packed.insert(arg);
  auto isPacked = [&](Value weight) {
    BlockArgument arg = weightArgument(weight);
    return arg && packed.contains(arg);
  };
  auto unpack = [&](GroupedMatmulOp matmul) {
    bool any = false;
    for (Value weight : matmul.getWeights())
      if (isPacked(weight)) {
        packed.erase(weightArgument(weight));
        any = true;
      }
    return any;
  };
  bool changed = true;
  while (changed) {
    changed = false;
    entry.walk([&](GroupedMatmulOp matmul) {
      SmallVector<Value> weights = matmul.getWeights();
      if (!llvm::all_of(weights, isPacked)) {
        changed |= unpack(matmul);
        return;
      }
      if (!hasColumnScales(matmul) || weights.empty())
        return;
      for (Value scale : matmul.getWeightScales()) {
        BlockArgument arg = weightArgument(scale);
        // Every reader of the scales has its weights packed, in panels of
        // the full width (no reader of those weights narrows them to a
        // scale block of several columns): one panel width for the scales.
        auto fullPanels = [&](Value weight) {
          BlockArgument weightArg = weightArgument(weight);
          return weightArg &&
                 llvm::all_of(weightReaders(weightArg), [](Operation *op) {
                   std::optional<ArrayRef<int64_t>> block =
                       llvm::cast<GroupedMatmulOp>(op).getWeightBlock();
                   return !block || (*block)[0] == 1;
                 });
        };
        bool shared =
            arg && isPackableColumnScale(arg, isWeight) &&
            llvm::all_of(viewedValue(arg, viewChain(arg)).getUsers(),
                         [&](Operation *reader) {
                           SmallVector<Value> readerWeights =
                               llvm::cast<GroupedMatmulOp>(reader).getWeights();
                           return llvm::all_of(readerWeights, isPacked) &&
                                  llvm::all_of(readerWeights, fullPanels);
                         });
        if (!shared) {
          changed |= unpack(matmul);
          return;
        }
      }
    });
  }
  return packed;
}

/// The panel width of the packed weights whose per-column scales `arg`
/// holds: 0 when `arg` is no such scales or their weights are not packed,
/// -1 when its readers' weights have different panels.
int64_t packedScalePanel(BlockArgument arg,
                         function_ref<bool(BlockArgument)> isWeight) {
  if (!isPackableColumnScale(arg, isWeight))
    return 0;
  int64_t panel = 0;
  bool first = true;
  for (Operation *reader : viewedValue(arg, viewChain(arg)).getUsers()) {
    int64_t readerPanel = llvm::cast<GroupedMatmulOp>(reader).getPanelColumns();
    if (!first && readerPanel != panel)
      return -1;
    panel = readerPanel;
    first = false;
  }
  return panel;
}

/// `@<func>__pack<index>(%src: tensor, %dst: memref)`: linalg.pack of the
/// checkpoint tensor seen through the argument's view ops `views`, zero
/// padded, written into the caller's buffer. The
/// pack's destination is that buffer as a tensor (`to_tensor restrict
/// writable`), so bufferization packs in place and the function returns
/// nothing.
func::FuncOp createPackingFunction(OpBuilder &b, func::FuncOp entry,
                                   unsigned index, RankedTensorType checkpoint,
                                   RankedTensorType source,
                                   RankedTensorType packed, int64_t panel,
                                   bool depthPairs,
                                   ArrayRef<Operation *> views) {
  Location loc = entry.getLoc();
  auto destination =
      MemRefType::get(packed.getShape(), packed.getElementType());
  auto type = b.getFunctionType({checkpoint, destination}, {});
  std::string name = (entry.getSymName() + "__pack" + Twine(index)).str();
  auto func = func::FuncOp::create(b, loc, name, type);
  MLIRContext *ctx = b.getContext();
  func->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                UnitAttr::get(ctx));
  // The source is the caller's read-only buffer.
  func.setArgAttr(0, "bufferization.writable", BoolAttr::get(ctx, false));
  Block *body = func.addEntryBlock();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(body);
  Value zero =
      arith::ConstantOp::create(b, loc, b.getZeroAttr(source.getElementType()));
  Value dst = body->getArgument(1);
  Value weights = body->getArgument(0);
  for (Operation *view : views) {
    // Operands other than the source are made anew: a destination is a
    // tensor.empty of its type (whatever the entry's is), and anything else
    // (a neuron table, a constant its body reads) is a constant, cloned.
    IRMapping mapping;
    mapping.map(getViewSource(view), weights);
    if (auto dps = llvm::dyn_cast<DestinationStyleOpInterface>(view))
      for (OpOperand &init : dps.getDpsInitsMutable()) {
        auto type = llvm::cast<RankedTensorType>(init.get().getType());
        mapping.map(init.get(), tensor::EmptyOp::create(b, loc, type.getShape(),
                                                        type.getElementType()));
      }
    llvm::SetVector<Value> reads(view->getOperands().begin(),
                                 view->getOperands().end());
    getUsedValuesDefinedAbove(view->getRegions(), reads);
    for (Value operand : reads)
      if (!mapping.contains(operand))
        mapping.map(operand, b.clone(*operand.getDefiningOp())->getResult(0));
    weights = b.clone(*view, mapping)->getResult(0);
  }
  // One expert's [N, K] weights as [1, N, K].
  if (weights.getType() != source)
    weights = tensor::ExpandShapeOp::create(
        b, loc, source, weights, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  Value init = bufferization::ToTensorOp::create(
      b, loc, packed, dst, /*restrict=*/true, /*writable=*/true);
  SmallVector<int64_t, 2> innerDims = {1};
  SmallVector<OpFoldResult, 2> innerTiles = {b.getIndexAttr(panel)};
  if (depthPairs) {
    innerDims.push_back(2);
    innerTiles.push_back(b.getIndexAttr(2));
  }
  Value result =
      linalg::PackOp::create(b, loc, weights, init, innerDims, innerTiles, zero,
                             /*outerDimsPerm=*/ArrayRef<int64_t>{});
  auto store =
      bufferization::MaterializeInDestinationOp::create(b, loc, result, dst);
  store.setRestrict(true);
  store.setWritable(true);
  func::ReturnOp::create(b, loc);
  return func;
}

/// The inputs of grouped matmuls whose weights are packed in pairs (or are
/// block-scaled FP8 ones, which kernels decode to bf16 pairs), with
/// `bf16Pairs`, and of those on e2m1 pairs always, rounded to bf16 once
/// (`arith.truncf` on the tensor): the other operand of their bf16 dot
/// products, read as pairs without converting each time a tile reads them.
void roundPairedInputs(func::FuncOp entry, bool bf16Pairs) {
  entry.walk([&](GroupedMatmulOp matmul) {
    auto type = llvm::dyn_cast<RankedTensorType>(matmul.getInput().getType());
    bool paired = matmul.hasE2M1Pairs() ||
                  (bf16Pairs &&
                   (matmul.isDepthPaired() || matmul.getWeightScale()));
    if (!paired || !type || type.getElementType().isBF16())
      return;
    OpBuilder b(matmul);
    Location loc = matmul.getLoc();
    Value input = matmul.getInput();
    // f16 is as wide as bf16: through f32.
    if (!type.getElementType().isF32())
      input = arith::ExtFOp::create(b, loc, type.clone(b.getF32Type()), input);
    input = arith::TruncFOp::create(b, loc, type.clone(b.getBF16Type()), input);
    matmul.getInputMutable().assign(input);
  });
}

struct MoEPackExpertWeightsPass
    : public moe::impl::MoEPackExpertWeightsPassBase<MoEPackExpertWeightsPass> {
  using MoEPackExpertWeightsPassBase::MoEPackExpertWeightsPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (panelCols < 1)
      return emitError(UnknownLoc::get(context))
             << "moe-pack-expert-weights: panel-cols must be at least 1, got "
             << static_cast<int64_t>(panelCols);
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    FailureOr<std::optional<llvm::json::Value>> manifest = readManifest(module);
    if (failed(manifest))
      return signalPassFailure();
    SymbolTable symbols(module);
    SmallVector<func::FuncOp> entries;
    for (auto func : module.getOps<func::FuncOp>())
      if (func.isPublic() && !func.isExternal())
        entries.push_back(func);

    bool changed = false;
    SmallVector<func::FuncOp> packings;
    for (func::FuncOp entry : entries) {
      // Weights only: bound by `moe.weight`, or recorded as a weight in
      // the manifest once moe-export-entries has taken the attribute.
      auto isWeight = [&](BlockArgument arg) {
        unsigned index = arg.getArgNumber();
        return entry.getArgAttr(index, kWeightAttrName) ||
               (*manifest &&
                isManifestWeight(**manifest, entry.getSymName(), index));
      };
      llvm::SmallDenseSet<BlockArgument> selected =
          selectPackedArguments(entry, isWeight);
      // Packing functions follow their entry, in argument order.
      Operation *last = entry;
      // Packs `arg` (read as `source` through its views) into `packed`.
      auto pack = [&](BlockArgument arg, RankedTensorType source,
                      RankedTensorType packed, int64_t panel,
                      bool depthPairs) {
        unsigned index = arg.getArgNumber();
        auto checkpoint = llvm::cast<RankedTensorType>(arg.getType());
        SmallVector<Operation *> views = viewChain(arg);
        Value viewed = viewedValue(arg, views);
        OpBuilder b(ctx);
        b.setInsertionPointAfter(last);
        func::FuncOp packing =
            createPackingFunction(b, entry, index, checkpoint, source, packed,
                                  panel, depthPairs, views);
        // One function per distinct packing: arguments bound to one tensor
        // and packed alike then name the same function, which is how the
        // runtime knows it may share their packed buffer.
        auto same = llvm::find_if(packings, [&](func::FuncOp other) {
          return other.getFunctionType() == packing.getFunctionType() &&
                 other.getAllArgAttrs() == packing.getAllArgAttrs() &&
                 OperationEquivalence::isRegionEquivalentTo(
                     &other.getBody(), &packing.getBody(),
                     OperationEquivalence::IgnoreLocations);
        });
        if (same != packings.end()) {
          packing.erase();
          packing = *same;
        } else {
          last = packing;
          symbols.insert(packing);
          packings.push_back(packing);
        }

        // The one expert's weights, or the weights seen through the views,
        // are the packed argument itself.
        for (Operation *user : llvm::make_early_inc_range(viewed.getUsers()))
          if (auto expand = llvm::dyn_cast<tensor::ExpandShapeOp>(user)) {
            expand.getResult().replaceAllUsesWith(arg);
            expand.erase();
          }
        if (viewed != arg)
          viewed.replaceAllUsesWith(arg);
        for (Operation *view : llvm::reverse(views)) {
          // The destination or neuron table, unless shared.
          SmallVector<Operation *> operands;
          for (Value operand : view->getOperands())
            if (Operation *def = operand.getDefiningOp();
                def && operand != getViewSource(view))
              operands.push_back(def);
          view->erase();
          for (Operation *def : operands)
            if (def->use_empty() && isMemoryEffectFree(def))
              def->erase();
        }
        arg.setType(packed);
        // Recorded in the manifest, or for moe-export-entries to record.
        if (*manifest)
          recordPacking(**manifest, entry.getSymName(), index,
                        packed.getShape(), packing.getSymName(),
                        checkpoint.getShape());
        else
          entry.setArgAttr(
              index, kPackingAttrName,
              DictionaryAttr::get(
                  ctx,
                  {b.getNamedAttr("function", FlatSymbolRefAttr::get(packing)),
                   b.getNamedAttr("shape", b.getDenseI64ArrayAttr(
                                               checkpoint.getShape()))}));
        changed = true;
      };
      for (BlockArgument arg : entry.getArguments()) {
        if (!selected.contains(arg))
          continue;
        // [E, N, K] as the grouped matmuls read it, or [1, N, K] for one
        // expert's [N, K] weights.
        RankedTensorType source = packableType(arg);
        ArrayRef<int64_t> shape = source.getShape();
        SmallVector<Operation *> readers = weightReaders(arg);
        // Block-scaled weights: panels within one scale block of columns,
        // or any panels with per-column scales (packed alike, below).
        int64_t panel = panelCols;
        for (Operation *reader : readers)
          if (std::optional<ArrayRef<int64_t>> block =
                  llvm::cast<GroupedMatmulOp>(reader).getWeightBlock();
              block && (*block)[0] != 1)
            panel = std::gcd(panel, (*block)[0]);
        int64_t panels = llvm::divideCeilSigned(shape[1], panel);
        // FP8 in pairs when its blocks are (even BK): decoded to bf16 pairs.
        // (e2m1 pairs are pairs already: [E, NP, KP, P] of bytes.) Not for
        // exact products: the pairs' kernels round the rows to bf16.
        Type element = source.getElementType();
        bool depthPairs =
            bf16Pairs &&
            llvm::none_of(
                readers,
                [](Operation *reader) {
                  return llvm::cast<GroupedMatmulOp>(reader).getExactProducts();
                }) &&
            (element.isBF16() ||
             (llvm::isa<Float8E4M3FNType>(element) &&
              llvm::all_of(readers, [](Operation *reader) {
                std::optional<ArrayRef<int64_t>> block =
                    llvm::cast<GroupedMatmulOp>(reader).getWeightBlock();
                return block && (*block)[1] % 2 == 0;
              })));
        auto packed =
            depthPairs
                ? RankedTensorType::get({shape[0], panels,
                                         llvm::divideCeilSigned(shape[2], 2),
                                         panel, 2},
                                        source.getElementType())
                : RankedTensorType::get({shape[0], panels, shape[2], panel},
                                        source.getElementType());
        pack(arg, source, packed, panel, depthPairs);
      }
      // Per-column scales (BN = 1: MXFP4's) of the packed weights, in the
      // weights' panels [E, NP, KB, P]: a kernel reads a panel's scales of
      // one depth block as one vector.
      for (BlockArgument arg : entry.getArguments()) {
        int64_t panel = packedScalePanel(arg, isWeight);
        if (panel < 0) {
          entry.emitError() << "moe-pack-expert-weights: argument "
                            << arg.getArgNumber()
                            << " holds per-column scales of weights packed "
                               "in panels of different widths";
          return signalPassFailure();
        }
        if (panel > 0) {
          RankedTensorType source =
              llvm::cast<RankedTensorType>(viewedValue(arg, viewChain(arg)).getType());
          ArrayRef<int64_t> shape = source.getShape();
          auto packed = RankedTensorType::get(
              {shape[0], llvm::divideCeilSigned(shape[1], panel), shape[2],
               panel},
              source.getElementType());
          pack(arg, source, packed, panel, /*depthPairs=*/false);
        }
      }
      if (last != entry) {
        entry.setType(FunctionType::get(ctx, entry.getBody().getArgumentTypes(),
                                        entry.getResultTypes()));
        roundPairedInputs(entry, bf16Pairs);
      }
    }
    if (changed && *manifest)
      writeManifest(module, **manifest);
  }
};

} // namespace
