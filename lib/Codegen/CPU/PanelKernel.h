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
  PanelKernelEmitter(OpBuilder &b, Location loc, int64_t vectorWidth,
                     int64_t tileRows, Value input, ValueRange weights,
                     Value output, Value depth);

  /// out[firstRow + i, c] += sum_k input[firstRow + i, k] * W[expert, c, k]
  /// for i < rows and c < columns, W the unpacked weight (with an epilogue,
  /// out[..] = epilogue(the sums of every weight, out[..])).
  void emitRows(Value firstRow, Value rows, Value columns, Value expert);

private:
  void emitTile(Value row, Value panel, int64_t mr);
  SmallVector<Value> step(ArrayRef<std::pair<Value, Value>> rows, Value panel,
                          int64_t mr, Value k, ValueRange acc);

  int64_t lanes, vectorsPerPanel, panelColumns, tileRows;
  Value input, output, depth;
  SmallVector<Value, 2> weights;
  Value firstRow, expert, zero;
  VectorType accType;
};

} // namespace mlir::moe::cpu

#endif // MOE_LIB_CODEGEN_CPU_PANELKERNEL_H
