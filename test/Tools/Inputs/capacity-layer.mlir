// Switch-style capacity routing: not lowered yet.
func.func @forward(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>, %w1: tensor<4x8x16xf32>,
                   %w2: tensor<4x16x8xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 1, capacity = fixed(4)>
      router(%wg : tensor<4x16xf32>)
      experts(up %w1 : tensor<4x8x16xf32>, down %w2 : tensor<4x16x8xf32>) activation relu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
