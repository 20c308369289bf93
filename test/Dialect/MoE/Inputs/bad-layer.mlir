// Hostile input of hostile-exit.test: a Mixtral-style layer that asks for
// more experts per token than it has. Line numbers are checked there.
func.func @bad(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
               %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 12, renormalize>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
