// A layer returning routing statistics after its output.
func.func @forward(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>, %w1: tensor<4x8x16xf32>,
                   %w2: tensor<4x16x8xf32>) -> (tensor<?x16xf32>, tensor<4xi64>, tensor<i64>, tensor<f32>) {
  %y, %n, %d, %z = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 1, capacity = fixed(4)>
      router(%wg : tensor<4x16xf32>)
      experts(up %w1 : tensor<4x8x16xf32>, down %w2 : tensor<4x16x8xf32>) activation relu
      statistics [tokens_per_expert, dropped_count, z_loss]
      -> tensor<?x16xf32>, tensor<4xi64>, tensor<i64>, tensor<f32>
  return %y, %n, %d, %z : tensor<?x16xf32>, tensor<4xi64>, tensor<i64>, tensor<f32>
}
