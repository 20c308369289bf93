//===- RoutingPlanBuilders.h - Counting-sort builders for routing -*- C++
//-*-===//
//
// The pieces of the block-aligned routing (moe.routing_plan, the grouped
// moe.dispatch and the fused routing of moe-fuse-routing) on tensors:
// per-expert counts taken over chunks of tokens in parallel, the aligned
// prefix sum, the expert and fill of every row block, and the sequential
// placement that gives every taken assignment its row. Nothing is sized by
// T*E and nothing sorts.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CONVERSION_MOETOLINALG_ROUTINGPLANBUILDERS_H
#define MOE_LIB_CONVERSION_MOETOLINALG_ROUTINGPLANBUILDERS_H

#include "mlir/IR/Builders.h"

namespace mlir::moe {
class RoutingPlanOp;
} // namespace mlir::moe

namespace mlir::moe::lowering {

/// Tokens per iteration of the chunked routing loops: enough work per
/// iteration to amortize it, few enough count rows to sum.
constexpr int64_t kRoutingChunkTokens = 64;

/// Number of chunks of `chunkTokens` tokens covering `numTokens`.
Value buildNumChunks(OpBuilder &b, Location loc, Value numTokens,
                     OpFoldResult chunkTokens);

/// Tokens per chunk of the routing plan's counting and placement for
/// `numTokens` tokens of `choices` assignments each (`index`): a chunk's
/// thread places chunkTokens x choices assignments one after another and
/// each expert's thread sums T / chunkTokens chunk counts, so
/// floor(sqrt(T / choices)) balances the two, within [1,
/// kRoutingChunkTokens] (at T = 64 of 8 choices: 2 tokens, 16 and 32
/// steps, where 64-token chunks made one thread place all 512).
Value buildPlanChunkTokens(OpBuilder &b, Location loc, Value numTokens,
                           int64_t choices);

/// Body of a chunk of tokens: its first token and token count (`index`),
/// the chunk's `[n, X]` rows of each per-token tensor and its `[1, X]` row
/// of each per-chunk tensor in; their new values out, in that order.
using ChunkBody = function_ref<SmallVector<Value>(
    OpBuilder &, Location, Value firstToken, Value chunkTokens,
    ValueRange tokenRows, ValueRange chunkRows)>;

/// An scf.forall over the chunks of `chunkTokens` of `numTokens` tokens,
/// each iteration updating its own rows of the rank-2 `perToken` (`[T, X]`)
/// and `perChunk` (`[chunks, X]`) tensors in place
/// (tensor.parallel_insert_slice). Returns the updated tensors, per-token
/// ones first.
SmallVector<Value> buildChunkParallel(OpBuilder &b, Location loc,
                                      Value numTokens, ValueRange perToken,
                                      ValueRange perChunk, ChunkBody body,
                                      OpFoldResult chunkTokens);

/// `[chunks, E]` i32 zeros: per-chunk expert counts to fill.
Value buildChunkCountsInit(OpBuilder &b, Location loc, Value numChunks,
                           int64_t numExperts);

/// `counts` (a chunk's `[1, X]` row, X >= E, of i32 or of f32 holding
/// integers) with one more in column `e` for an id `e` (i32) in `[0, E)`.
Value buildCountAssignment(OpBuilder &b, Location loc, Value counts, Value id,
                           int64_t numExperts);

/// `[E]` i32 per-expert counts of the taken ids of `ids` `[T,K]` i32,
/// counted per chunk of tokens in parallel.
Value buildExpertCounts(OpBuilder &b, Location loc, Value ids,
                        int64_t numExperts);

/// `[E]` i32 totals of per-chunk counts, columns `[0, E)` of a
/// `[chunks, X]` tensor of i32 or of f32 holding integers.
Value buildSumOfChunkCounts(OpBuilder &b, Location loc, Value chunkCounts,
                            int64_t numExperts);

/// `[E+1]` i64 offsets: the prefix sum of `counts` `[E]` i32, each rounded
/// up to a multiple of `align`.
Value buildAlignedOffsets(OpBuilder &b, Location loc, Value counts,
                          int64_t align);

/// Where an assignment to expert `e` (`index`) goes when `placed` of that
/// expert's assignments went before it: its row, and whether it is placed
/// at all (i1; capacity).
using RowOfAssignment = function_ref<std::pair<Value, Value>(
    OpBuilder &, Location, Value e, Value placed)>;

/// Every taken assignment of `ids` `[T,K]` i32 (id in `[0, E)`), visited in
/// assignment order, placed where `rowOf` says.
struct Placement {
  /// `rowSources` with the token of each placed row written.
  Value rowSources;
  /// `[T,K]` i32: the row of each assignment, -1 where not placed.
  Value rowMap;
  /// `[E]` of `countType`: the assignments placed per expert.
  Value counts;
};
Placement buildPlacement(OpBuilder &b, Location loc, Value ids,
                         int64_t numExperts, Value rowSources,
                         Type countType, RowOfAssignment rowOf);

/// The grouped placement: expert e's assignments from row `offsets[e]` on
/// (`offsets` `[E+1]` i64); `rowSources` has at least offsets[E] rows.
/// Returns the row sources and the row map.
std::pair<Value, Value> buildPlacement(OpBuilder &b, Location loc, Value ids,
                                       Value offsets, Value rowSources);

/// The grouped placement of `buildPlacement` with the same rows, built in
/// parallel from `chunkCounts` (`[chunks, X]`, the taken assignments per
/// chunk of `chunkTokens` tokens and expert in columns [0, E), i32
/// or f32 holding integers): each expert's first row per chunk (an
/// exclusive prefix over the chunks, in parallel over the experts), each
/// chunk's assignments placed from there (in parallel over the chunks),
/// then each token's rows' sources written (in parallel over the tokens).
/// Returns the row sources and the row map.
std::pair<Value, Value>
buildChunkedPlacement(OpBuilder &b, Location loc, Value ids, Value offsets,
                      Value chunkCounts, Value chunkTokens, Value rowSources);

/// `[chunks, E]` i32: the taken assignments of `ids` `[T,K]` i32 per chunk
/// of `chunkTokens` tokens and expert, counted in parallel.
Value buildChunkExpertCounts(OpBuilder &b, Location loc, Value ids,
                             int64_t numExperts, OpFoldResult chunkTokens);

/// `[numBlocks]` i32 expert and filled rows of each block of `blockRows`
/// rows laid out by `offsets` and `counts`: -1 and 0 past offsets[E].
std::pair<Value, Value> buildBlockTable(OpBuilder &b, Location loc,
                                        Value counts, Value offsets,
                                        Value numBlocks, int64_t blockRows);

/// The results of `plan` (offsets, block experts, block sizes, row sources,
/// row map, typed as its results) for `ids` `[T,K]` i32 whose counts per
/// chunk of `chunkTokens` tokens and expert (`chunkCounts`, as
/// buildChunkedPlacement takes them) are known.
SmallVector<Value> buildRoutingPlanResults(OpBuilder &b, Location loc,
                                           RoutingPlanOp plan, Value ids,
                                           Value chunkCounts,
                                           Value chunkTokens);

/// A rank-1 `[size]` tensor of `value` of integer type `type`.
Value buildFilledVector(OpBuilder &b, Location loc, OpFoldResult size,
                        Type type, int64_t value);

} // namespace mlir::moe::lowering

#endif // MOE_LIB_CONVERSION_MOETOLINALG_ROUTINGPLANBUILDERS_H
