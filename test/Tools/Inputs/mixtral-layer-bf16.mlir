// The small Mixtral-style layer of mixtral-layer.mlir with bf16 expert weights.
func.func @forward(%x: tensor<?x64xf32>,
    %router: tensor<8x64xf32> {moe.weight = "gate.weight"},
    %w1: tensor<8x128x64xbf16> {moe.weight = "experts.{e}.w1.weight"},
    %w3: tensor<8x128x64xbf16> {moe.weight = "experts.{e}.w3.weight"},
    %w2: tensor<8x64x128xbf16> {moe.weight = "experts.{e}.w2.weight"}) -> tensor<?x64xf32> {
  %y = moe.layer %x : tensor<?x64xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%router : tensor<8x64xf32>)
      experts(gate %w1 : tensor<8x128x64xbf16>, up %w3 : tensor<8x128x64xbf16>,
              down %w2 : tensor<8x64x128xbf16>) activation silu
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
