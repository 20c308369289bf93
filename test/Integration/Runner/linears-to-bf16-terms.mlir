// moe-linears-to-bf16-terms computes what the f32 linear computes: its
// grouped matmul with exact products (the CPU's f32 products; the GPU
// tiles split the rows into bf16 terms) gives every element bit for bit
// where each output is one product (one nonzero weight per row of w), so
// that a rounded row would show: 2^24 - 1 (three full terms), 1 + 2^-23, negative
// and signed-zero rows, f32's largest (whose product overflows), a
// subnormal, infinities (their first term alone) and a NaN; f32 rows
// (three terms, dynamic and static T, above and below min-rows), f16
// rows (two terms) and bf16 rows (one). The moe ops go through their
// reference lowering (a dense grouped matmul's last block partly filled:
// T = 5 over blocks of 4).
// REQUIRES: mlir-runner
// RUN: moe-opt %s --moe-linears-to-bf16-terms="min-rows=3 block-rows=4" | FileCheck %s --check-prefix=TERMS
// RUN: moe-opt %s --convert-moe-to-linalg --convert-elementwise-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   --scf-forall-to-for --convert-linalg-to-loops \
// RUN:   --expand-strided-metadata --lower-affine --convert-scf-to-cf \
// RUN:   --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | grep -v base@ > %t.reference
// RUN: moe-opt %s --moe-linears-to-bf16-terms="min-rows=3 block-rows=4" \
// RUN:   --convert-moe-to-linalg --convert-elementwise-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   --moe-grouped-matmul-to-loops --scf-forall-to-for --convert-linalg-to-loops \
// RUN:   --expand-strided-metadata --lower-affine --convert-scf-to-cf \
// RUN:   --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | grep -v base@ > %t.terms
// RUN: diff %t.reference %t.terms
// RUN: FileCheck %s --input-file=%t.terms

// TERMS-LABEL: func.func @linear(
// TERMS: scf.if
// TERMS: moe.grouped_matmul block_rows(4) {{.*}} exact_products {{.*}} -> tensor<?x6xf32>
// TERMS: } else {
// TERMS: linalg.matmul
// TERMS-LABEL: func.func @linear_static(
// TERMS-NOT: scf.if
// TERMS: moe.grouped_matmul
// TERMS-LABEL: func.func @main(

func.func private @printMemrefI32(tensor<*xi32>)

func.func @print(%y: tensor<?x6xf32>) {
  %bits = arith.bitcast %y : tensor<?x6xf32> to tensor<?x6xi32>
  %b = tensor.cast %bits : tensor<?x6xi32> to tensor<*xi32>
  call @printMemrefI32(%b) : (tensor<*xi32>) -> ()
  return
}

func.func @linear(%x: tensor<?x4xf32>, %w: tensor<6x4xbf16>) -> tensor<?x6xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x4xf32>
  %e = tensor.empty(%t) : tensor<?x6xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x6xf32>) -> tensor<?x6xf32>
  %y = linalg.matmul
      indexing_maps = [affine_map<(m, n, k) -> (m, k)>,
                       affine_map<(m, n, k) -> (n, k)>,
                       affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : tensor<?x4xf32>, tensor<6x4xbf16>)
      outs(%f : tensor<?x6xf32>) -> tensor<?x6xf32>
  return %y : tensor<?x6xf32>
}

func.func @linear_static(%x: tensor<5x4xf32>, %w: tensor<6x4xbf16>) -> tensor<5x6xf32> {
  %e = tensor.empty() : tensor<5x6xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<5x6xf32>) -> tensor<5x6xf32>
  %y = linalg.matmul
      indexing_maps = [affine_map<(m, n, k) -> (m, k)>,
                       affine_map<(m, n, k) -> (n, k)>,
                       affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : tensor<5x4xf32>, tensor<6x4xbf16>)
      outs(%f : tensor<5x6xf32>) -> tensor<5x6xf32>
  return %y : tensor<5x6xf32>
}

func.func @linear_f16(%x: tensor<?x4xf16>, %w: tensor<6x4xbf16>) -> tensor<?x6xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x4xf16>
  %e = tensor.empty(%t) : tensor<?x6xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x6xf32>) -> tensor<?x6xf32>
  %y = linalg.matmul
      indexing_maps = [affine_map<(m, n, k) -> (m, k)>,
                       affine_map<(m, n, k) -> (n, k)>,
                       affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : tensor<?x4xf16>, tensor<6x4xbf16>)
      outs(%f : tensor<?x6xf32>) -> tensor<?x6xf32>
  return %y : tensor<?x6xf32>
}

func.func @linear_bf16(%x: tensor<?x4xbf16>, %w: tensor<6x4xbf16>) -> tensor<?x6xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x4xbf16>
  %e = tensor.empty(%t) : tensor<?x6xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x6xf32>) -> tensor<?x6xf32>
  %y = linalg.matmul
      indexing_maps = [affine_map<(m, n, k) -> (m, k)>,
                       affine_map<(m, n, k) -> (n, k)>,
                       affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : tensor<?x4xbf16>, tensor<6x4xbf16>)
      outs(%f : tensor<?x6xf32>) -> tensor<?x6xf32>
  return %y : tensor<?x6xf32>
}

func.func @main() {
  // One nonzero weight per row: column n is x[:, n mod 4] times 1, -2 or
  // 0.5.
  %w = arith.constant dense<[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0],
                             [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0],
                             [-2.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]]>
      : tensor<6x4xbf16>
  // 2^24 - 1, 1 + 2^-23, pi, -1.2345678e-3; 3.4028235e38, -0.0, 2^-130
  // (subnormal), -16777213; +inf (a row of its own: inf * 0 is NaN), then
  // -inf, then a NaN.
  %x = arith.constant dense<[
      [16777215.0, 1.00000012, 3.14159274, -1.23456784e-3],
      [3.40282347e38, -0.0, 7.34683969e-40, -16777213.0],
      [0x7F800000, 0.0, 0.0, 0.0],
      [0.0, 0xFF800000, 0.0, 0.0],
      [0.0, 0.0, 0x7FC00000, 0.0]]> : tensor<5x4xf32>
  %xd = tensor.cast %x : tensor<5x4xf32> to tensor<?x4xf32>
  // The products' bit patterns: 2^24 - 1, 1 + 2^-23, pi, -1.2345678e-3,
  // -(2^25 - 2), 0.5 + 2^-24; f32's largest, +0, 2^-130, -16777213,
  // -inf, +0; inf and NaNs (inf * 0); -inf and NaNs; NaNs.
  // CHECK:      {{\[}}[1266679807, 1065353217, 1078530011, -1163800263, -872415233, 1056964609],
  // CHECK-NEXT: [2139095039, 0, 524288, -880803843, -8388608, 0],
  // CHECK-NEXT: [2139095040, -4194304, -4194304, -4194304, -8388608, -4194304],
  // CHECK-NEXT: [-4194304, -8388608, -4194304, -4194304, -4194304, -8388608],
  // CHECK-NEXT: [2143289344, 2143289344, 2143289344, 2143289344, 2143289344, 2143289344]]
  %y = call @linear(%xd, %w) : (tensor<?x4xf32>, tensor<6x4xbf16>) -> tensor<?x6xf32>
  call @print(%y) : (tensor<?x6xf32>) -> ()
  // Two rows: below min-rows, the f32 linear itself.
  %x2 = tensor.extract_slice %x[0, 0] [2, 4] [1, 1] : tensor<5x4xf32> to tensor<2x4xf32>
  %x2d = tensor.cast %x2 : tensor<2x4xf32> to tensor<?x4xf32>
  %y2 = call @linear(%x2d, %w) : (tensor<?x4xf32>, tensor<6x4xbf16>) -> tensor<?x6xf32>
  call @print(%y2) : (tensor<?x6xf32>) -> ()
  %ys = call @linear_static(%x, %w) : (tensor<5x4xf32>, tensor<6x4xbf16>) -> tensor<5x6xf32>
  %ysd = tensor.cast %ys : tensor<5x6xf32> to tensor<?x6xf32>
  call @print(%ysd) : (tensor<?x6xf32>) -> ()
  // f16: 2047 (11 bits), -1.0009765625 (1 + 2^-10), 65504 (f16's
  // largest), 6.0e-8 (a subnormal); +inf, -inf and a NaN rows.
  %x16 = arith.constant dense<[
      [2047.0, -1.0009765625, 65504.0, 5.96046448e-8],
      [0x7C00, 0.0, 0.0, 0.0], [0.0, 0xFC00, 0.0, 0.0],
      [0.0, 0.0, 0x7E00, 0.0]]> : tensor<4x4xf16>
  %x16d = tensor.cast %x16 : tensor<4x4xf16> to tensor<?x4xf16>
  // 2047, -1.0009765625, 65504, 2^-24, -4094, -0.50048828125.
  // CHECK: {{\[}}[1157619712, -1082122240, 1199562752, 864026624, -981475328, -1090510848],
  %y16 = call @linear_f16(%x16d, %w) : (tensor<?x4xf16>, tensor<6x4xbf16>) -> tensor<?x6xf32>
  call @print(%y16) : (tensor<?x6xf32>) -> ()
  %xb = arith.constant dense<[[3.0, -0.5, 1.0e30, 0x7F80], [1.0, 2.0, 3.0, 4.0],
                              [0.0, 0.0, 0.0, 0.0]]> : tensor<3x4xbf16>
  %xbd = tensor.cast %xb : tensor<3x4xbf16> to tensor<?x4xbf16>
  // CHECK: {{\[}}[-4194304, -4194304, -4194304, 2139095040, -4194304, -4194304],
  // CHECK-NEXT: [1065353216, 1073741824, 1077936128, 1082130432, -1073741824, 1065353216],
  %yb = call @linear_bf16(%xbd, %w) : (tensor<?x4xbf16>, tensor<6x4xbf16>) -> tensor<?x6xf32>
  call @print(%yb) : (tensor<?x6xf32>) -> ()
  return
}
