// A Mixtral-style MoE block (scaled down): 8 SwiGLU experts, softmax top-2
// routing with renormalization, any number of tokens. Weights are bound to
// layer 0 of a Hugging Face Mixtral checkpoint (`{e}` stacks the experts);
// `utils/dev.sh demo` writes such a checkpoint to build/demo/ckpt.
//
//   moe-opt examples/mixtral_layer.mlir --moe-decompose
//   moe-run examples/mixtral_layer.mlir --weights build/demo/ckpt \
//       --input build/demo/x.npy --output y.npy
func.func @forward(
    %x: tensor<?x64xf32>,
    %router: tensor<8x64xf32> {moe.weight = "model.layers.0.block_sparse_moe.gate.weight"},
    %w1: tensor<8x128x64xf32> {moe.weight = "model.layers.0.block_sparse_moe.experts.{e}.w1.weight"},
    %w3: tensor<8x128x64xf32> {moe.weight = "model.layers.0.block_sparse_moe.experts.{e}.w3.weight"},
    %w2: tensor<8x64x128xf32> {moe.weight = "model.layers.0.block_sparse_moe.experts.{e}.w2.weight"})
    -> tensor<?x64xf32> {
  %y = moe.layer %x : tensor<?x64xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%router : tensor<8x64xf32>)
      experts(gate %w1 : tensor<8x128x64xf32>, up %w3 : tensor<8x128x64xf32>,
              down %w2 : tensor<8x64x128xf32>) activation silu
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
