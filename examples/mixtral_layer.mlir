// A Mixtral-style MoE block (scaled down): 8 SwiGLU experts, softmax top-2
// routing with renormalization, any number of tokens.
//
//   moe-opt examples/mixtral_layer.mlir --moe-decompose
func.func @forward(%x: tensor<?x64xf32>,
                   %router: tensor<8x64xf32>,
                   %w1: tensor<8x128x64xf32>,
                   %w3: tensor<8x128x64xf32>,
                   %w2: tensor<8x64x128xf32>) -> tensor<?x64xf32> {
  %y = moe.layer %x : tensor<?x64xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%router : tensor<8x64xf32>)
      experts(gate %w1 : tensor<8x128x64xf32>, up %w3 : tensor<8x128x64xf32>,
              down %w2 : tensor<8x64x128xf32>) activation silu
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
