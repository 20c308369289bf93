// A small Mixtral-style layer with checkpoint bindings, for the tool tests.
func.func @forward(%x: tensor<?x64xf32>,
    %router: tensor<8x64xf32> {moe.weight = "gate.weight"},
    %w1: tensor<8x128x64xf32> {moe.weight = "experts.{e}.w1.weight"},
    %w3: tensor<8x128x64xf32> {moe.weight = "experts.{e}.w3.weight"},
    %w2: tensor<8x64x128xf32> {moe.weight = "experts.{e}.w2.weight"}) -> tensor<?x64xf32> {
  %y = moe.layer %x : tensor<?x64xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%router : tensor<8x64xf32>)
      experts(gate %w1 : tensor<8x128x64xf32>, up %w3 : tensor<8x128x64xf32>,
              down %w2 : tensor<8x64x128xf32>) activation silu
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
