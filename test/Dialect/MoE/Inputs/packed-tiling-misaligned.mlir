// Input of grouped-matmul-transform-tiling.mlir: column tiles of 8 over
// weight panels of 16 columns.
func.func @tile_packed_misaligned(%rows: tensor<24x16xf32>, %w: tensor<2x2x16x16xf32>,
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
    %tiled, %forall = transform.structured.tile_using_forall %op tile_sizes [2, 8, 0]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
