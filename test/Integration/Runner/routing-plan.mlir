// The routing plan's counting sort, executed: every result of
// moe.routing_plan for a few routings, against values worked out by hand
// (ids outside [0, E) are not taken; rows follow assignment order within
// each expert; blocks past offsets[E] are -1 with 0 rows), with chunk
// boundaries of the parallel count (T = 130 > 2 * 64) and no token at all.
// REQUIRES: mlir-runner
// RUN: moe-opt %s --convert-moe-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   --scf-forall-to-for --convert-linalg-to-loops \
// RUN:   --expand-strided-metadata --lower-affine --convert-scf-to-cf \
// RUN:   --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | FileCheck %s

func.func private @printMemrefI32(tensor<*xi32>)
func.func private @printMemrefI64(tensor<*xi64>)

func.func @print32(%t: tensor<?xi32>) {
  %u = tensor.cast %t : tensor<?xi32> to tensor<*xi32>
  call @printMemrefI32(%u) : (tensor<*xi32>) -> ()
  return
}

func.func @print64(%t: tensor<?xi64>) {
  %u = tensor.cast %t : tensor<?xi64> to tensor<*xi64>
  call @printMemrefI64(%u) : (tensor<*xi64>) -> ()
  return
}

// 3 experts, blocks of 2 rows, each expert padded to 4 rows. Expert 0 takes
// (0,1) and (3,0); expert 1 nothing; expert 2 (0,0), (1,0), (2,1), (4,0).
// R = 4 * min(10, (10 + 3*3) / 4) = 16 rows, 8 blocks.
// CHECK-LABEL: offsets
// CHECK: [0,  4,  4,  8]
// CHECK: [0,  0,  2,  2,  -1,  -1,  -1,  -1]
// CHECK: [2,  0,  2,  2,  0,  0,  0,  0]
// CHECK: [0,  3,  -1,  -1,  0,  1,  2,  4,  -1,  -1,  -1,  -1,  -1,  -1,  -1,  -1]
// CHECK: {{\[}}[4,   0],
// CHECK-NEXT: [5,   -1],
// CHECK-NEXT: [-1,   6],
// CHECK-NEXT: [1,   -1],
// CHECK-NEXT: [7,   -1]]
func.func @small() {
  %ids = arith.constant dense<[[2, 0], [2, -1], [5, 2], [0, 3], [2, 7]]>
      : tensor<5x2xi32>
  %offsets, %blocks, %sizes, %sources, %map =
      moe.routing_plan %ids block_rows(2) align(4)
      : tensor<5x2xi32> -> tensor<4xi64>, tensor<8xi32>, tensor<8xi32>,
        tensor<16xi32>, tensor<5x2xi32>
  %o = tensor.cast %offsets : tensor<4xi64> to tensor<?xi64>
  call @print64(%o) : (tensor<?xi64>) -> ()
  %b = tensor.cast %blocks : tensor<8xi32> to tensor<?xi32>
  call @print32(%b) : (tensor<?xi32>) -> ()
  %s = tensor.cast %sizes : tensor<8xi32> to tensor<?xi32>
  call @print32(%s) : (tensor<?xi32>) -> ()
  %r = tensor.cast %sources : tensor<16xi32> to tensor<?xi32>
  call @print32(%r) : (tensor<?xi32>) -> ()
  %m = tensor.cast %map : tensor<5x2xi32> to tensor<*xi32>
  call @printMemrefI32(%m) : (tensor<*xi32>) -> ()
  return
}

// Token t goes to expert t % 3: 44, 43 and 43 tokens, counted over three
// chunks of up to 64 tokens; blocks of 4 rows with align 4.
// CHECK-LABEL: chunks
// CHECK: [0,  44,  88,  132]
// Blocks 20..23: expert 1's last two (rows 80..87, the last with 3 rows),
// then expert 2's first two.
// CHECK: [4,  3,  4,  4]
// The last rows of expert 2: tokens 125 and 128, then one padding row.
// CHECK: [125,  128,  -1,  -1]
func.func @chunks() {
  %c130 = arith.constant 130 : index
  %ids = tensor.generate %c130 {
  ^bb0(%t: index, %k: index):
    %c3 = arith.constant 3 : index
    %e = arith.remui %t, %c3 : index
    %id = arith.index_cast %e : index to i32
    tensor.yield %id : i32
  } : tensor<?x1xi32>
  %offsets, %blocks, %sizes, %sources, %map =
      moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x1xi32> -> tensor<4xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x1xi32>
  %o = tensor.cast %offsets : tensor<4xi64> to tensor<?xi64>
  call @print64(%o) : (tensor<?xi64>) -> ()
  %filled = tensor.extract_slice %sizes[20] [4] [1]
      : tensor<?xi32> to tensor<4xi32>
  %f = tensor.cast %filled : tensor<4xi32> to tensor<?xi32>
  call @print32(%f) : (tensor<?xi32>) -> ()
  %tail = tensor.extract_slice %sources[129] [4] [1]
      : tensor<?xi32> to tensor<4xi32>
  %t = tensor.cast %tail : tensor<4xi32> to tensor<?xi32>
  call @print32(%t) : (tensor<?xi32>) -> ()
  return
}

// No token: every offset is 0 and the plan has no row.
// CHECK-LABEL: empty
// CHECK: [0,  0,  0,  0,  0]
// CHECK: sizes = [0]
func.func @empty() {
  %ids = tensor.empty() : tensor<0x2xi32>
  %offsets, %blocks, %sizes, %sources, %map =
      moe.routing_plan %ids block_rows(8) align(8)
      : tensor<0x2xi32> -> tensor<5xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<0x2xi32>
  %o = tensor.cast %offsets : tensor<5xi64> to tensor<?xi64>
  call @print64(%o) : (tensor<?xi64>) -> ()
  call @print32(%sources) : (tensor<?xi32>) -> ()
  return
}

// One expert that every token picks once (a shared expert's plan): a fill
// of zeros is planned element-wise, without the counting sort; the same
// ids made otherwise take the counting sort. Both give token t row t, the
// first ceil(T / 4) * 4 rows to expert 0, blocks of min(2, T - 2b) rows.
// CHECK-LABEL: every_token
// CHECK: [0,  8]
// CHECK: [0,  0,  0,  0]
// CHECK: [2,  2,  1,  0]
// CHECK: [0,  1,  2,  3,  4,  -1,  -1,  -1]
// CHECK: [0,  1,  2,  3,  4]
// CHECK: [0,  8]
// CHECK: [0,  0,  0,  0]
// CHECK: [2,  2,  1,  0]
// CHECK: [0,  1,  2,  3,  4,  -1,  -1,  -1]
// CHECK: [0,  1,  2,  3,  4]
// No token: no row either way.
// CHECK: [0,  0]
// CHECK: sizes = [0]
// CHECK: [0,  0]
// CHECK: sizes = [0]
func.func @print_plan(%offsets: tensor<2xi64>, %blocks: tensor<?xi32>,
                      %sizes: tensor<?xi32>, %sources: tensor<?xi32>,
                      %map: tensor<?x1xi32>) {
  %o = tensor.cast %offsets : tensor<2xi64> to tensor<?xi64>
  call @print64(%o) : (tensor<?xi64>) -> ()
  call @print32(%blocks) : (tensor<?xi32>) -> ()
  call @print32(%sizes) : (tensor<?xi32>) -> ()
  call @print32(%sources) : (tensor<?xi32>) -> ()
  %flat = tensor.collapse_shape %map [[0, 1]] : tensor<?x1xi32> into tensor<?xi32>
  call @print32(%flat) : (tensor<?xi32>) -> ()
  return
}

func.func @every_token(%n: index) {
  %zero = arith.constant 0 : i32
  %empty = tensor.empty(%n) : tensor<?x1xi32>
  %filled = linalg.fill ins(%zero : i32) outs(%empty : tensor<?x1xi32>)
      -> tensor<?x1xi32>
  %o1, %b1, %s1, %r1, %m1 = moe.routing_plan %filled block_rows(2) align(4)
      : tensor<?x1xi32> -> tensor<2xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x1xi32>
  call @print_plan(%o1, %b1, %s1, %r1, %m1)
      : (tensor<2xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>,
         tensor<?x1xi32>) -> ()
  %generated = tensor.generate %n {
  ^bb0(%t: index, %k: index):
    tensor.yield %zero : i32
  } : tensor<?x1xi32>
  %o2, %b2, %s2, %r2, %m2 = moe.routing_plan %generated block_rows(2) align(4)
      : tensor<?x1xi32> -> tensor<2xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x1xi32>
  call @print_plan(%o2, %b2, %s2, %r2, %m2)
      : (tensor<2xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>,
         tensor<?x1xi32>) -> ()
  return
}

func.func @main() {
  vector.print str "offsets\n"
  call @small() : () -> ()
  vector.print str "chunks\n"
  call @chunks() : () -> ()
  vector.print str "empty\n"
  call @empty() : () -> ()
  vector.print str "every_token\n"
  %c5 = arith.constant 5 : index
  call @every_token(%c5) : (index) -> ()
  %c0 = arith.constant 0 : index
  call @every_token(%c0) : (index) -> ()
  return
}
