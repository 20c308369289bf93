// Input of grouped-matmul-transform-tiling.mlir: depth tiles of 4 over a
// weight whose scale blocks are 8 deep.
func.func @tile_scaled_misaligned(%rows: tensor<24x16xf32>, %w: tensor<2x32x16xf8E4M3FN>,
                                  %s: tensor<2x2x2xf32>, %blocks: tensor<6xi32>,
                                  %acc: tensor<24x32xf32>) -> tensor<24x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<24x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<6xi32>)
      scale(%s : tensor<2x2x2xf32>) block [16, 8]
      outs(%acc : tensor<24x32xf32>) -> tensor<24x32xf32>
  return %r : tensor<24x32xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["moe.grouped_matmul"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %l0, %l1 = transform.structured.tile_using_for %op tile_sizes [0, 16, 4]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}
