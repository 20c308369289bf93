// RUN: moe-opt %s --moe-lower-pack-ops | FileCheck %s

// linalg.pack becomes pad (zeros past N = 37), expand_shape splitting N into
// (panel, column) and a transpose into the pack's destination.
// CHECK-LABEL: func.func @pack(
// CHECK-SAME: %[[SRC:.*]]: tensor<2x37x16xbf16>, %[[DST:.*]]: tensor<2x3x16x16xbf16>
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : bf16
// CHECK: %[[PADDED:.*]] = tensor.pad %[[SRC]] low[0, 0, 0] high[0, 11, 0]
// CHECK:   tensor.yield %[[ZERO]] : bf16
// CHECK: } : tensor<2x37x16xbf16> to tensor<2x48x16xbf16>
// CHECK: %[[SPLIT:.*]] = tensor.expand_shape %[[PADDED]] {{\[}}[0], [1, 2], [3]] output_shape [2, 3, 16, 16] : tensor<2x48x16xbf16> into tensor<2x3x16x16xbf16>
// CHECK: %[[T:.*]] = linalg.transpose ins(%[[SPLIT]] : tensor<2x3x16x16xbf16>) outs(%[[DST]] : tensor<2x3x16x16xbf16>) permutation = [0, 1, 3, 2]
// CHECK: return %[[T]]
// CHECK-NOT: linalg.pack
func.func @pack(%src: tensor<2x37x16xbf16>, %dst: tensor<2x3x16x16xbf16>) -> tensor<2x3x16x16xbf16> {
  %zero = arith.constant 0.0 : bf16
  %p = linalg.pack %src padding_value(%zero : bf16) inner_dims_pos = [1] inner_tiles = [16]
      into %dst : tensor<2x37x16xbf16> -> tensor<2x3x16x16xbf16>
  return %p : tensor<2x3x16x16xbf16>
}
