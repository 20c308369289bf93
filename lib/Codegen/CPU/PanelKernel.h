//===- PanelKernel.h - Outer-product kernel over packed weights -*- C++ -*-===//
//
// Internal to MoECPUCodegen. The micro-kernel of grouped matmuls whose
// weights are packed in panels ([E, NP, K, P], moe-pack-expert-weights):
// each step of the reduction loads one row of P contiguous weights of the
// panel and broadcasts one input element per tile row, so a register tile
// of MR rows x P columns is MR * P/VW accumulators updated by outer
// products, with no lane sums at the end:
//
//   for panel p:  for m0 in rows step MR:
//     acc[MR][P/VW] = 0
//     for k in 0..K:
//       w[j] = weight[e, p, k, j*VW : (j+1)*VW]          (contiguous)
//       acc[i][j] = fma(broadcast(input[row0 + m0 + i, k]), w[j], acc[i][j])
//     out[row0 + m0 + i, p*P + j*VW : ...] += acc[i][j]  (masked past N)
//
// MR loads plus P/VW vector loads feed MR * P/VW FMAs (8 x 2: 10 loads, 16
// FMAs, most loads broadcasts folded into the FMAs). Rows left over after
// the MR tiles run as tiles of MR/2, MR/4, ..., 1 rows; a tile of one row
// splits K over several accumulator sets so that its FMAs do not wait on
// each other (decode: one token per expert).
//
// With two weights (a grouped matmul's weight and paired weight: gate and
// up), each broadcast input element feeds the panels of both, MR x 2 x
// P/VW accumulators (4 x 2 x 2: 8 loads, 16 FMAs), and the epilogue
// combines the two finished sums in registers before the one write.
//
// bf16 weights in panels of single K whose P/VW vectors pair up are
// widened a pair at a time: one read of 2*VW bf16 as VW 32-bit words, the
// low halves shifted up (the even columns' f32) and the high halves masked
// (the odd columns'): two integer operations per 2*VW weights, where
// widening each vector takes a shuffle (vpmovzxwd) and a shift. The tile's
// sums are interleaved back into column order once, before the write.
// (On one Zen 3 core, qwen3-s bf16 T = 512 went from 155 to 123 ms.)
//
// bf16 weights packed in pairs of K ([E, NP, KP, P, 2]) are multiplied two
// K at a time by bf16 dot products: each step reads a row of P pairs
// (P/VW vectors of 2*VW bf16) and broadcasts one 32-bit pair of inputs per
// tile row, `acc = vdpbf16ps(acc, pair, w)` (x86vector.avx512.dot). Inputs
// are read as bf16 pairs: bf16 inputs (rounded once, before the matmul, by
// moe-pack-expert-weights) as they are, others rounded in the loop; an odd
// K's last input is paired with a zero. Without the instruction the same
// products run as two f32 FMAs per pair (the bf16 halves widened by
// shifts), with the same rounded inputs.
//
// Block-scaled FP8 weights (f8E4M3FN, one f32 scale per block of BN
// columns x BK depth, P dividing BN) are decoded on the fly; the bytes are
// read as they are stored: one byte per weight streams from memory, half
// of bf16. In panels of single K ([E, NP, K, P]) each vector of bytes is
// widened once per step (`arith.extf`, which moe-expand-float8 lowers to
// integer arithmetic) and multiplied by the panel's scale of the step's
// depth block. In panels of pairs of K ([E, NP, KP, P, 2], BK even) a row
// of byte pairs decodes to bf16 pairs of the exact e4m3 values (every
// e4m3 is a bf16), which the pair step multiplies (vdpbf16ps or its FMA
// form); each depth block's sums are then added times the block's scale.
// The decode is two byte-table lookups (vpermi2b: the bf16's high and low
// bytes of each 7-bit magnitude) and in-lane unpacks that interleave them
// (the columns then in another order within each 32, restored once per
// tile), 64 weights at a time, where the target has AVX512_VBMI
// (`byteLookup`): cheap enough to repeat for every tile of rows. Otherwise
// the widening to f32 and the f32's high half; a row block of more than
// one tile's rows then multiplies its expert's panels decoded once into a
// staging buffer of bf16 pairs, and fewer rows (decode) decode in
// registers.
//
//
// MXFP4 weights (e2m1 pairs, [E, NP, KP, P] bytes: a byte per column holds
// its two values of a pair of K) take the same pair steps: each vector of
// P/VW columns is VW bytes, widened to 32-bit lanes, each nibble decoded
// to its bf16 by integer arithmetic and a select (exact), the even K's
// the lane's low half and the odd K's its high half. Their scales are per
// column (BN = 1), packed in the weights' panels ([E, NP, KB, P]): each
// depth block's sums are added times a vector of the columns' scales
// instead of one broadcast scale. With `byteLookup` they decode by one
// word-table lookup per vector (vpermw; 16 lanes), cheap enough to repeat
// for every tile; otherwise staging and decoding in registers follow FP8's
// rules.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_CPU_PANELKERNEL_H
#define MOE_LIB_CODEGEN_CPU_PANELKERNEL_H

#include "DotKernel.h"

#include "mlir/IR/BuiltinTypes.h"

namespace mlir::moe::cpu {

class PanelKernelEmitter : public KernelBuilder {
public:
  /// `input` is a float `[M, K]` memref, `weights` one or more packed float
  /// `[E, NP, K, P]` memrefs of one type with a static P, `output` an f32
  /// `[M, N]` memref; `depth` is K, read as is (the caller clamps it).
  /// Weights may also be packed in pairs (`[E, NP, KP, P, 2]` bf16);
  /// `dotInstruction` says whether the target has vdpbf16ps for them (used
  /// when the panel's vectors have 4, 8 or 16 lanes).
  /// FP8 weights may be packed in pairs too; `byteLookup` says whether the
  /// target has AVX512_VBMI to decode them by table lookups (used with
  /// 16-lane vectors).
  PanelKernelEmitter(OpBuilder &b, Location loc, int64_t vectorWidth,
                     int64_t tileRows, Value input, ValueRange weights,
                     Value output, Value depth, bool dotInstruction = false,
                     bool byteLookup = false);

  /// Block-scaled f8E4M3FN weights: `scales[w]` is weight w's f32
  /// `[E, ceil(N/BN), ceil(K/BK)]` scale and `block` is [BN, BK], BN a
  /// multiple of P (and BK even for weights in pairs). Each step decodes its
  /// weight vectors once (shared by the tile's rows).
  void setBlockScales(ValueRange scales, ArrayRef<int64_t> block);
  /// Releases what the kernel allocated (the FP8 staging panels); call once
  /// after the last emitRows, where its buffers may go.
  void finish();
  /// out[firstRow + i, c] += sum_k input[firstRow + i, k] * W[expert, c, k]
  /// for i < rows and c < columns, W the unpacked weight (with an epilogue,
  /// out[..] = epilogue(the sums of every weight, out[..])).
  void emitRows(Value firstRow, Value rows, Value columns, Value expert);

private:
  void emitTile(Value row, Value panel, int64_t mr);
  /// FP8 in pairs: the row `pair` of `weight`'s panel of the current
  /// expert as its P/VW vectors of bf16 pairs (exact e4m3 values, unscaled).
  SmallVector<Value> decodePairs(Value weight, Value panel, Value pair);
  /// The bf16 pairs of 16 e2m1 pairs (`words`: one zero-extended byte
  /// per 32-bit lane), by a word-table lookup (vpermw).
  Value lookupE2M1Pairs(Value words);
  /// The bf16 high and low bytes of 64 e4m3 bytes, by table lookups.
  std::pair<Value, Value> lookupBf16Bytes(Value bytes);
  /// FP8 in pairs: decodes every weight's panel of the current expert into
  /// staging[w][panel].
  void stagePanel(Value panel);
  /// A tile of FP8 weights in pairs: the pair step per pair of the decoded
  /// (or `staged`) panel, each depth block's sums times its scale.
  void emitScaledPairTile(Value row, Value panel, int64_t mr, bool staged);
  /// The scales of vector `j` of `panel`'s columns in depth block
  /// `depthBlock` of weight scale `scale`: one broadcast scale per panel,
  /// or a vector of per-column scales packed in panels.
  Value scaleFactor(Value scale, Value panel, Value depthBlock, int64_t j);
  /// Replaces each pair of accumulators (x, y) by the shuffles `first` and
  /// `second` of x and y (columns back in order).
  void shufflePairs(SmallVectorImpl<Value> &acc, ArrayRef<int64_t> first,
                    ArrayRef<int64_t> second);
  /// Writes (or combines through the epilogue) the tile's sums `acc`.
  void writeTile(Value row, Value panel, int64_t mr,
                 ArrayRef<std::pair<Value, Value>> rows, ArrayRef<Value> acc);
  SmallVector<Value> step(ArrayRef<std::pair<Value, Value>> rows, Value panel,
                          int64_t mr, Value k, ValueRange acc);
  SmallVector<Value> pairStep(ArrayRef<std::pair<Value, Value>> rows,
                              Value panel, int64_t mr, Value pair,
                              ValueRange acc, bool last);
  /// The pair step on weight vectors `w` (each 2 * lanes bf16) already read.
  SmallVector<Value> pairProducts(ArrayRef<std::pair<Value, Value>> rows,
                                  ArrayRef<Value> w, int64_t mr, Value pair,
                                  ValueRange acc, bool last);
  /// Inputs `2 * pair` and `2 * pair + 1` of `row` as one i32 of two bf16
  /// (`last`: input `2 * pair` and a zero).
  Value loadInputPair(Value row, Value pair, bool last);

  int64_t lanes, vectorsPerPanel, panelColumns, tileRows;
  Value input, output, depth;
  SmallVector<Value, 2> weights;
  Value firstRow, expert, zero;
  VectorType accType;
  /// In pairs: K's whole pairs, whether K is odd (i1), whether the dot
  /// product is an instruction, and whether FP8 pairs decode by vpermi2b.
  bool pairs = false, dotInstruction = false, byteLookup = false;
  /// Weights of e2m1 pairs ([E, NP, KP, P] i8: MXFP4), always in pairs,
  /// and whether they decode by vpermw (with `byteLookup` requested: the
  /// target has AVX512_VBMI, so AVX512_BW).
  bool e2m1 = false, wordLookup = false;
  /// Per-column block scales packed in the weights' panels
  /// ([E, NP, KB, P]).
  bool packedScales = false;
  /// Decoded FP8 pairs hold a panel's 32 columns in two vectors of 16 in
  /// the order in-lane unpacks leave them: the first vector's lane 4l + u
  /// column 8l + u, the second's 8l + 4 + u (l < 4, u < 4); the tiles' sums
  /// are put back in order before they are written.
  bool lanePermuted = false;
  /// bf16 weights in panels of whole pairs of vectors: each step reads a
  /// pair as 32-bit words, and its accumulators hold even and odd columns.
  bool bf16Halves = false;
  Value wholePairs, oddDepth;
  /// Block scales of the weights (setBlockScales), and the block.
  SmallVector<Value, 2> scales;
  int64_t blockColumns = 0, blockDepth = 0;
  /// FP8 in pairs: per weight, an `[NP, ceil(K/2), P]` i32 buffer of its
  /// panels' bf16 pairs for one expert (none otherwise), and that expert's
  /// id (memref<1xindex>, -1 before the first).
  SmallVector<Value, 2> staging;
  Value stagedExpert;
};

} // namespace mlir::moe::cpu

#endif // MOE_LIB_CODEGEN_CPU_PANELKERNEL_H
