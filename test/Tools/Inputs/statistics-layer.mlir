// A layer returning routing statistics: not lowered yet.
func.func @forward(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>, %w1: tensor<4x8x16xf32>,
                   %w2: tensor<4x16x8xf32>) -> (tensor<?x16xf32>, tensor<f32>) {
  %y, %z = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 1, capacity = fixed(4)>
      router(%wg : tensor<4x16xf32>)
      experts(up %w1 : tensor<4x8x16xf32>, down %w2 : tensor<4x16x8xf32>) activation relu
      statistics [z_loss]
      -> tensor<?x16xf32>, tensor<f32>
  return %y, %z : tensor<?x16xf32>, tensor<f32>
}
