// A bf16 BERT feed-forward block (fc1 + GELU + fc2 with biases, H = 48,
// I = 40) split into 4 experts by moe-dense-to-moe (mode=split experts=4
// routing=<softmax,top_k=4,unweighted>): its expert weights are gathered
// from the dense ones with a zero padding (a bf16 select), its biases
// copied. Input of moe-compile-bf16-moves.test.
#map = affine_map<(d0, d1, d2) -> (d0, d1)>
#map1 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#map2 = affine_map<(d0, d1, d2) -> (d0, d2)>
#map3 = affine_map<(d0, d1) -> (d0, d1)>
module {
  func.func @forward(%arg0: tensor<?x48xf32>, %arg1: tensor<40x48xbf16> {moe.weight = "mlp.fc1.weight"}, %arg2: tensor<48x40xbf16> {moe.weight = "mlp.fc2.weight"}, %arg3: tensor<40xbf16> {moe.weight = "mlp.fc1.bias"}, %arg4: tensor<48xbf16> {moe.weight = "mlp.fc2.bias"}, %arg5: tensor<40x48xbf16> {moe.weight = "mlp.fc1.weight"}) -> tensor<?x48xf32> {
    %cst = arith.constant dense<0.000000e+00> : tensor<1x48xf32>
    %expanded = tensor.expand_shape %arg1 [[0, 1], [2]] output_shape [1, 40, 48] : tensor<40x48xbf16> into tensor<1x40x48xbf16>
    %expanded_0 = tensor.expand_shape %arg2 [[0, 1], [2]] output_shape [1, 48, 40] : tensor<48x40xbf16> into tensor<1x48x40xbf16>
    %expanded_1 = tensor.expand_shape %arg3 [[0, 1]] output_shape [1, 40] : tensor<40xbf16> into tensor<1x40xbf16>
    %expanded_2 = tensor.expand_shape %arg4 [[0, 1]] output_shape [1, 48] : tensor<48xbf16> into tensor<1x48xbf16>
    %cst_3 = arith.constant dense<[[0, 4, 8, 12, 16, 20, 24, 28, 32, 36], [1, 5, 9, 13, 17, 21, 25, 29, 33, 37], [2, 6, 10, 14, 18, 22, 26, 30, 34, 38], [3, 7, 11, 15, 19, 23, 27, 31, 35, 39]]> : tensor<4x10xi64>
    %0 = tensor.empty() : tensor<4x10x48xbf16>
    %1 = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "parallel", "parallel"]} ins(%cst_3 : tensor<4x10xi64>) outs(%0 : tensor<4x10x48xbf16>) {
    ^bb0(%in: i64, %out: bf16):
      %c0_i64 = arith.constant 0 : i64
      %12 = arith.cmpi sge, %in, %c0_i64 : i64
      %13 = arith.select %12, %in, %c0_i64 : i64
      %14 = arith.index_cast %13 : i64 to index
      %c0 = arith.constant 0 : index
      %15 = linalg.index 2 : index
      %extracted = tensor.extract %expanded[%c0, %14, %15] : tensor<1x40x48xbf16>
      %cst_8 = arith.constant 0.000000e+00 : bf16
      %16 = arith.select %12, %extracted, %cst_8 : bf16
      linalg.yield %16 : bf16
    } -> tensor<4x10x48xbf16>
    %2 = tensor.empty() : tensor<4x48x10xbf16>
    %3 = linalg.generic {indexing_maps = [#map2, #map1], iterator_types = ["parallel", "parallel", "parallel"]} ins(%cst_3 : tensor<4x10xi64>) outs(%2 : tensor<4x48x10xbf16>) {
    ^bb0(%in: i64, %out: bf16):
      %c0_i64 = arith.constant 0 : i64
      %12 = arith.cmpi sge, %in, %c0_i64 : i64
      %13 = arith.select %12, %in, %c0_i64 : i64
      %14 = arith.index_cast %13 : i64 to index
      %c0 = arith.constant 0 : index
      %15 = linalg.index 1 : index
      %extracted = tensor.extract %expanded_0[%c0, %15, %14] : tensor<1x48x40xbf16>
      %cst_8 = arith.constant 0.000000e+00 : bf16
      %16 = arith.select %12, %extracted, %cst_8 : bf16
      linalg.yield %16 : bf16
    } -> tensor<4x48x10xbf16>
    %4 = tensor.empty() : tensor<4x10xbf16>
    %5 = linalg.generic {indexing_maps = [#map3, #map3], iterator_types = ["parallel", "parallel"]} ins(%cst_3 : tensor<4x10xi64>) outs(%4 : tensor<4x10xbf16>) {
    ^bb0(%in: i64, %out: bf16):
      %c0_i64 = arith.constant 0 : i64
      %12 = arith.cmpi sge, %in, %c0_i64 : i64
      %13 = arith.select %12, %in, %c0_i64 : i64
      %14 = arith.index_cast %13 : i64 to index
      %c0 = arith.constant 0 : index
      %extracted = tensor.extract %expanded_1[%c0, %14] : tensor<1x40xbf16>
      %cst_8 = arith.constant 0.000000e+00 : bf16
      %15 = arith.select %12, %extracted, %cst_8 : bf16
      linalg.yield %15 : bf16
    } -> tensor<4x10xbf16>
    %collapsed = tensor.collapse_shape %expanded_2 [[0, 1]] : tensor<1x48xbf16> into tensor<48xbf16>
    %6 = tensor.empty() : tensor<4x48xbf16>
    %broadcasted = linalg.broadcast ins(%collapsed : tensor<48xbf16>) outs(%6 : tensor<4x48xbf16>) dimensions = [0] 
    %7 = tensor.empty() : tensor<4x48xbf16>
    %8 = linalg.generic {indexing_maps = [#map3, #map3], iterator_types = ["parallel", "parallel"]} ins(%broadcasted : tensor<4x48xbf16>) outs(%7 : tensor<4x48xbf16>) {
    ^bb0(%in: bf16, %out: bf16):
      %12 = arith.extf %in : bf16 to f32
      %cst_8 = arith.constant 2.500000e-01 : f32
      %13 = arith.mulf %12, %cst_8 : f32
      %14 = arith.truncf %13 : f32 to bf16
      linalg.yield %14 : bf16
    } -> tensor<4x48xbf16>
    %expanded_4 = tensor.expand_shape %arg5 [[0, 1], [2]] output_shape [1, 40, 48] : tensor<40x48xbf16> into tensor<1x40x48xbf16>
    %cst_5 = arith.constant dense<[[0, 4, 8, 12, 16, 20, 24, 28, 32, 36], [1, 5, 9, 13, 17, 21, 25, 29, 33, 37], [2, 6, 10, 14, 18, 22, 26, 30, 34, 38], [3, 7, 11, 15, 19, 23, 27, 31, 35, 39]]> : tensor<4x10xi64>
    %cst_6 = arith.constant dense<1.000000e-01> : tensor<4x10xf32>
    %cst_7 = arith.constant 0.000000e+00 : f32
    %9 = tensor.empty() : tensor<4x48xf32>
    %10 = linalg.fill ins(%cst_7 : f32) outs(%9 : tensor<4x48xf32>) -> tensor<4x48xf32>
    %11 = linalg.generic {indexing_maps = [#map2, #map2, #map], iterator_types = ["parallel", "parallel", "reduction"]} ins(%cst_5, %cst_6 : tensor<4x10xi64>, tensor<4x10xf32>) outs(%10 : tensor<4x48xf32>) {
    ^bb0(%in: i64, %in_8: f32, %out: f32):
      %c0_i64 = arith.constant 0 : i64
      %12 = arith.maxsi %in, %c0_i64 : i64
      %13 = arith.index_cast %12 : i64 to index
      %c0 = arith.constant 0 : index
      %14 = linalg.index 1 : index
      %extracted = tensor.extract %expanded_4[%c0, %13, %14] : tensor<1x40x48xbf16>
      %15 = arith.extf %extracted : bf16 to f32
      %16 = arith.mulf %15, %in_8 : f32
      %17 = arith.addf %out, %16 : f32
      linalg.yield %17 : f32
    } -> tensor<4x48xf32>
    %result = moe.layer %arg0 : tensor<?x48xf32> routing <softmax, top_k = 4, unweighted> router(%11 : tensor<4x48xf32>) experts(up %1 : tensor<4x10x48xbf16>, down %3 : tensor<4x48x10xbf16>) activation gelu up_bias(%5 : tensor<4x10xbf16>) down_bias(%8 : tensor<4x48xbf16>) -> tensor<?x48xf32>
    return %result : tensor<?x48xf32>
  }
}

