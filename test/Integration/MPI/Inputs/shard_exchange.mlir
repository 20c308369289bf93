// Two ranks, 4 tokens each (T = 8 in all), as the capacity slots [E, C, H]
// of 2 experts with 2 slots: each rank gets its expert's slots from both
// ranks (shard.all_to_all split along the experts, concatenated along the
// slots), so rank r returns rows 2r, 2r+1 of rank 0, then of rank 1.
shard.grid @ranks(shape = 2)
func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %tokens = tensor.cast %x : tensor<?x8xf32> to tensor<4x8xf32>
  %slots = tensor.expand_shape %tokens [[0, 1], [2]] output_shape [2, 2, 8]
      : tensor<4x8xf32> into tensor<2x2x8xf32>
  %mine = shard.all_to_all %slots on @ranks grid_axes = [0]
      split_axis = 0 concat_axis = 1 : tensor<2x2x8xf32> -> tensor<1x4x8xf32>
  %rows = tensor.collapse_shape %mine [[0, 1], [2]]
      : tensor<1x4x8xf32> into tensor<4x8xf32>
  %y = tensor.cast %rows : tensor<4x8xf32> to tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
