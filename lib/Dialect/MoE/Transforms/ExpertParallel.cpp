//===- ExpertParallel.cpp - Rows to their experts' ranks and back ---------===//
//
// The exchange of expert parallelism, on tensors, in two moe.all_to_all
// collectives each way:
//
//   1. every rank sends each rank the row counts of that rank's experts
//      (so the receiver knows which expert each incoming row is for);
//   2. the rows themselves, the dispatch's rows of each owner's experts
//      being contiguous (the dispatch groups rows by expert);
//   3. (after the experts ran) the results back, with the counts swapped.
//
// Ownership is static, known to every rank: rank r owns experts
// [floor(r E / R), floor((r+1) E / R)) and holds the window of ceil(E / R)
// experts that starts at min(floor(r E / R), E - ceil(E / R)).
//
//===----------------------------------------------------------------------===//

#include "ExpertParallel.h"

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MPI/IR/MPI.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The first expert rank `rank` owns.
int64_t getOwnedStart(int64_t numExperts, int64_t numRanks, int64_t rank) {
  return rank * numExperts / numRanks;
}

Value buildI64Vector(OpBuilder &b, Location loc, ArrayRef<int64_t> values) {
  auto type = RankedTensorType::get({static_cast<int64_t>(values.size())},
                                    b.getI64Type());
  return arith::ConstantOp::create(b, loc,
                                   DenseIntElementsAttr::get(type, values));
}

/// Element `index` of the i64 vector `vector`, as an index.
Value extractIndex(OpBuilder &b, Location loc, Value vector, Value index) {
  Value element = tensor::ExtractOp::create(b, loc, vector, index);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), element);
}

/// A `[size]` i64 vector whose element `i` is `element(i)` (an index).
Value buildI64Generate(
    OpBuilder &b, Location loc, int64_t size,
    function_ref<Value(OpBuilder &, Location, Value)> element) {
  auto type = RankedTensorType::get({size}, b.getI64Type());
  return tensor::GenerateOp::create(
             b, loc, type, ValueRange{},
             [&](OpBuilder &nb, Location nl, ValueRange ivs) {
               Value value = arith::IndexCastOp::create(
                   nb, nl, nb.getI64Type(), element(nb, nl, ivs[0]));
               tensor::YieldOp::create(nb, nl, value);
             })
      .getResult();
}

/// `moe.all_to_all` of `input` into a new `[rows, input dims 1..]` tensor.
Value buildAllToAll(OpBuilder &b, Location loc, Value input, Value sendCounts,
                    Value recvCounts, Value comm, Value rows) {
  auto type = llvm::cast<RankedTensorType>(input.getType());
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, input);
  sizes[0] = rows;
  Value init = tensor::EmptyOp::create(b, loc, sizes, type.getElementType());
  auto resultType = llvm::cast<RankedTensorType>(init.getType());
  return AllToAllOp::create(b, loc, TypeRange{resultType}, input, sendCounts,
                            recvCounts, comm, init)
      .getResult()[0];
}

} // namespace

LogicalResult mlir::moe::verifyExpertParallelLayers(Operation *root) {
  WalkResult result = root->walk([](LayerOp layer) -> WalkResult {
    std::optional<uint64_t> ranks = layer.getExpertRanks();
    if (!ranks)
      return WalkResult::advance();
    auto module = layer->getParentOfType<ModuleOp>();
    auto marked = module ? module->getAttrOfType<IntegerAttr>(kMPIRanksAttrName)
                         : IntegerAttr();
    if (marked && marked.getInt() == static_cast<int64_t>(*ranks))
      return WalkResult::advance();
    layer.emitError("a layer with 'expert_ranks' = ")
        << *ranks << " needs its module marked for as many MPI ranks ('"
        << kMPIRanksAttrName << "', as moe-shard-experts marks it), got "
        << (marked ? std::to_string(marked.getInt()) : std::string("none"));
    return WalkResult::interrupt();
  });
  return failure(result.wasInterrupted());
}

int64_t mlir::moe::getExpertWindowStart(int64_t numExperts, int64_t numRanks,
                                        int64_t rank) {
  int64_t window = llvm::divideCeil(numExperts, numRanks);
  return std::min(getOwnedStart(numExperts, numRanks, rank),
                  numExperts - window);
}

ExpertExchange mlir::moe::buildExpertExchange(OpBuilder &b, Location loc,
                                              DispatchOp dispatch,
                                              int64_t numRanks) {
  int64_t numExperts = dispatch.getNumExperts();
  SmallVector<int64_t> ownedStarts, windowStarts, ownedCounts;
  for (int64_t rank = 0; rank <= numRanks; ++rank)
    ownedStarts.push_back(getOwnedStart(numExperts, numRanks, rank));
  for (int64_t rank = 0; rank < numRanks; ++rank) {
    windowStarts.push_back(getExpertWindowStart(numExperts, numRanks, rank));
    ownedCounts.push_back(ownedStarts[rank + 1] - ownedStarts[rank]);
  }
  Value ownedStartTable = buildI64Vector(b, loc, ownedStarts);
  Value windowStartTable = buildI64Vector(b, loc, windowStarts);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0),
        one = arith::ConstantIndexOp::create(b, loc, 1);

  ExpertExchange exchange;
  exchange.comm =
      mpi::CommWorldOp::create(b, loc, mpi::CommType::get(b.getContext()));
  Value rank = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      mpi::CommRankOp::create(b, loc, Type(), b.getI32Type(), exchange.comm)
          .getRank());
  Value ownedStart = extractIndex(b, loc, ownedStartTable, rank);
  Value ownedEnd = extractIndex(b, loc, ownedStartTable,
                                arith::AddIOp::create(b, loc, rank, one));
  Value owned = arith::SubIOp::create(b, loc, ownedEnd, ownedStart);
  // Where the rank's first expert is in its window.
  Value windowOffset = arith::SubIOp::create(
      b, loc, ownedStart, extractIndex(b, loc, windowStartTable, rank));

  // 1. Row counts per expert, to the experts' owners.
  Value expertRows = dispatch.getExpertRows();
  auto rowsBetween = [&](OpBuilder &nb, Location nl, Value first,
                         Value last) -> Value {
    return arith::SubIOp::create(nb, nl, extractIndex(nb, nl, expertRows, last),
                                 extractIndex(nb, nl, expertRows, first));
  };
  Value countsPerExpert = buildI64Generate(
      b, loc, numExperts, [&](OpBuilder &nb, Location nl, Value expert) {
        return rowsBetween(nb, nl, expert,
                           arith::AddIOp::create(nb, nl, expert, one));
      });
  Value ownedCountTable = buildI64Vector(b, loc, ownedCounts);
  Value ownedCountsFromEach = buildI64Generate(
      b, loc, numRanks,
      [&](OpBuilder &, Location, Value) -> Value { return owned; });
  Value numRanksValue = arith::ConstantIndexOp::create(b, loc, numRanks);
  Value receivedCounts = buildAllToAll(
      b, loc, countsPerExpert, ownedCountTable, ownedCountsFromEach,
      exchange.comm, arith::MulIOp::create(b, loc, numRanksValue, owned));

  // 2. The rows: those of rank p's experts are contiguous.
  exchange.sendCounts = buildI64Generate(
      b, loc, numRanks, [&](OpBuilder &nb, Location nl, Value peer) {
        Value first = extractIndex(nb, nl, ownedStartTable, peer);
        Value last = extractIndex(nb, nl, ownedStartTable,
                                  arith::AddIOp::create(nb, nl, peer, one));
        return rowsBetween(nb, nl, first, last);
      });
  // Rows from rank p: the sum of its counts for this rank's experts.
  exchange.recvCounts = buildI64Generate(
      b, loc, numRanks, [&](OpBuilder &nb, Location nl, Value peer) {
        Value first = arith::MulIOp::create(nb, nl, peer, owned);
        Value last = arith::AddIOp::create(nb, nl, first, owned);
        Value c0 = arith::ConstantIndexOp::create(nb, nl, 0),
              c1 = arith::ConstantIndexOp::create(nb, nl, 1);
        return scf::ForOp::create(
                   nb, nl, first, last, c1, ValueRange{c0},
                   [&](OpBuilder &lb, Location ll, Value i, ValueRange sum) {
                     Value count = extractIndex(lb, ll, receivedCounts, i);
                     scf::YieldOp::create(lb, ll,
                                          ValueRange{arith::AddIOp::create(
                                              lb, ll, sum[0], count)});
                   })
            .getResult(0);
      });
  Value receivedRows =
      scf::ForOp::create(
          b, loc, zero, numRanksValue, one, ValueRange{zero},
          [&](OpBuilder &lb, Location ll, Value peer, ValueRange sum) {
            Value count = extractIndex(lb, ll, exchange.recvCounts, peer);
            scf::YieldOp::create(
                lb, ll,
                ValueRange{arith::AddIOp::create(lb, ll, sum[0], count)});
          })
          .getResult(0);
  exchange.rows =
      buildAllToAll(b, loc, dispatch.getRows(), exchange.sendCounts,
                    exchange.recvCounts, exchange.comm, receivedRows);

  // The received rows' experts, run by run: run f = p * owned + j holds
  // the rows of rank p for the rank's expert j.
  Type i32 = b.getI32Type();
  Value ids = tensor::EmptyOp::create(
      b, loc, ArrayRef<OpFoldResult>{receivedRows, b.getIndexAttr(1)}, i32);
  Value runs = arith::MulIOp::create(b, loc, numRanksValue, owned);
  exchange.windowIds =
      scf::ForOp::create(
          b, loc, zero, runs, one, ValueRange{ids, zero},
          [&](OpBuilder &lb, Location ll, Value run, ValueRange state) {
            Value count = extractIndex(lb, ll, receivedCounts, run);
            Value expert = arith::AddIOp::create(
                lb, ll, arith::RemUIOp::create(lb, ll, run, owned),
                windowOffset);
            Value id = arith::IndexCastOp::create(lb, ll, i32, expert);
            SmallVector<OpFoldResult> offsets = {state[1], lb.getIndexAttr(0)};
            SmallVector<OpFoldResult> sizes = {count, lb.getIndexAttr(1)};
            SmallVector<OpFoldResult> strides(2, lb.getIndexAttr(1));
            Value slice = tensor::ExtractSliceOp::create(
                lb, ll, state[0], offsets, sizes, strides);
            Value filled = linalg::FillOp::create(lb, ll, ValueRange{id},
                                                  ValueRange{slice})
                               .getResult(0);
            Value updated = tensor::InsertSliceOp::create(
                lb, ll, filled, state[0], offsets, sizes, strides);
            scf::YieldOp::create(
                lb, ll,
                ValueRange{updated,
                           arith::AddIOp::create(lb, ll, state[1], count)});
          })
          .getResult(0);
  exchange.sentRows = extractIndex(
      b, loc, expertRows, arith::ConstantIndexOp::create(b, loc, numExperts));
  return exchange;
}

Value mlir::moe::buildReturnExchange(OpBuilder &b, Location loc,
                                     const ExpertExchange &exchange,
                                     Value results) {
  return buildAllToAll(b, loc, results, exchange.recvCounts,
                       exchange.sendCounts, exchange.comm, exchange.sentRows);
}
