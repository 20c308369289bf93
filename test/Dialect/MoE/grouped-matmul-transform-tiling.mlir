// RUN: moe-opt %s --transform-interpreter --split-input-file | FileCheck %s
// RUN: not moe-opt %S/Inputs/packed-tiling-misaligned.mlir --transform-interpreter 2>&1 | FileCheck %s --check-prefix=MISALIGNED
// RUN: not moe-opt %S/Inputs/scaled-tiling-misaligned.mlir --transform-interpreter 2>&1 | FileCheck %s --check-prefix=SCALED

// A column tile that would start inside a panel of a packed weight cannot be
// a slice of it (Inputs/packed-tiling-misaligned.mlir: tiles of 8 columns,
// panels of 16).
// MISALIGNED: error: 'moe.grouped_matmul' op packed weight: the column tile offset must be a multiple of the panel width 16
// SCALED: error: 'moe.grouped_matmul' op block-scaled weight: tile offsets must be whole scale blocks (16 columns, 8 depth)

// moe.grouped_matmul implements TilingInterface: upstream transform ops tile
// it like any linalg op (here tile_using_forall over blocks of 2 row blocks
// and 8 columns, then tile_using_for over the depth).
// CHECK-LABEL: func @tile_with_transforms
// CHECK: scf.forall (%{{.*}}, %{{.*}}) in (3, 4)
// CHECK:   scf.for
// CHECK:     moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x4xf32>, tensor<2x8x4xf32>, tensor<2xi32>) outs(%{{.*}} : tensor<8x8xf32>)
func.func @tile_with_transforms(%rows: tensor<24x16xf32>, %w: tensor<2x32x16xf32>,
                                %blocks: tensor<6xi32>, %acc: tensor<24x32xf32>) -> tensor<24x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<24x16xf32>, tensor<2x32x16xf32>, tensor<6xi32>)
      outs(%acc : tensor<24x32xf32>) -> tensor<24x32xf32>
  return %r : tensor<24x32xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["moe.grouped_matmul"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %op tile_sizes [2, 8, 0]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %inner, %loop = transform.structured.tile_using_for %tiled tile_sizes [0, 0, 4]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Packed weights (panels of P = 16 columns) tile by whole panels: a column
// tile of 16 reads panel n / 16 of every expert.
// CHECK-LABEL: func @tile_packed
// CHECK: scf.forall (%{{.*}}, %{{.*}}) in (3, 2)
// CHECK:   moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<2x1x16x16xf32>, tensor<2xi32>) outs(%{{.*}} : tensor<8x16xf32>)
func.func @tile_packed(%rows: tensor<24x16xf32>, %w: tensor<2x2x16x16xf32>,
                       %blocks: tensor<6xi32>, %acc: tensor<24x32xf32>) -> tensor<24x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<24x16xf32>, tensor<2x2x16x16xf32>, tensor<6xi32>)
      outs(%acc : tensor<24x32xf32>) -> tensor<24x32xf32>
  return %r : tensor<24x32xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["moe.grouped_matmul"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %op tile_sizes [2, 16, 0]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
