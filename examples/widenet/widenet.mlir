// WideNet (Xue et al. 2022): one MoE layer shared across the layers of a
// stack. Two blocks, each `h + moe(h)` (the per-block layer norms and the
// attention are left out), both bound to the same checkpoint tensors: the
// runtime gathers each stack of expert weights once for the two arguments
// naming it. layer.json describes the shared layer, for random-weights and
// the reference.
//
//   /usr/bin/python3 -m moe_mlir random-weights --spec layer.json -o ckpt
//   moe-run widenet.mlir --weights ckpt --input x.npy --output y.npy
func.func @forward(
    %x: tensor<?x32xf32>,
    %router0: tensor<8x32xf32> {moe.weight = "moe.router.weight"},
    %up0: tensor<8x48x32xf32> {moe.weight = "moe.experts.{e}.up.weight"},
    %down0: tensor<8x32x48xf32> {moe.weight = "moe.experts.{e}.down.weight"},
    %router1: tensor<8x32xf32> {moe.weight = "moe.router.weight"},
    %up1: tensor<8x48x32xf32> {moe.weight = "moe.experts.{e}.up.weight"},
    %down1: tensor<8x32x48xf32> {moe.weight = "moe.experts.{e}.down.weight"})
    -> tensor<?x32xf32> {
  %m0 = moe.layer %x : tensor<?x32xf32>
      routing <softmax, top_k = 2, renormalize = kept, capacity = factor(1.25, ceil)>
      router(%router0 : tensor<8x32xf32>)
      experts(up %up0 : tensor<8x48x32xf32>, down %down0 : tensor<8x32x48xf32>)
      activation gelu
      -> tensor<?x32xf32>
  %h = arith.addf %x, %m0 : tensor<?x32xf32>
  %m1 = moe.layer %h : tensor<?x32xf32>
      routing <softmax, top_k = 2, renormalize = kept, capacity = factor(1.25, ceil)>
      router(%router1 : tensor<8x32xf32>)
      experts(up %up1 : tensor<8x48x32xf32>, down %down1 : tensor<8x32x48xf32>)
      activation gelu
      -> tensor<?x32xf32>
  %y = arith.addf %h, %m1 : tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
