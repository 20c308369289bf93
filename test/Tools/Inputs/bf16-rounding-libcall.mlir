// A layer-shaped entry whose element-wise body rounds to bf16 with an LLVM
// instruction the pipeline leaves as it is: for a target without
// AVX512_BF16 the code generator calls compiler-rt (__truncsfbf2) for it.
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x4xf32>
  %init = tensor.empty(%t) : tensor<?x4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<?x4xf32>) outs(%init : tensor<?x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %b = llvm.fptrunc %in : f32 to bf16
    %f = llvm.fpext %b : bf16 to f32
    linalg.yield %f : f32
  } -> tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}
