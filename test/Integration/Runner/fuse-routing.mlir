// moe-fuse-routing (chunked and token-parallel) computes exactly what the
// reference lowering of the gate and the routing plan computes: weights
// (compared as bit patterns), ids and every plan result, for 130 tokens
// (three chunks) whose logits have ties, a NaN and a row of equal values, on
// softmax, DeepSeek-V2/V3 grouped routing, switch routing and noisy random
// second choices; also with the tokens routed on lanes.
// REQUIRES: mlir-runner
// RUN: moe-opt %s --moe-fuse-routing | FileCheck %s --check-prefix=FUSED
// RUN: moe-opt %s --convert-moe-to-linalg --convert-elementwise-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   --scf-forall-to-for --convert-linalg-to-loops \
// RUN:   --expand-strided-metadata --lower-affine --convert-scf-to-cf \
// RUN:   --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | grep -v base@ > %t.reference
// RUN: moe-opt %s --moe-fuse-routing --convert-moe-to-linalg \
// RUN:   --convert-elementwise-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   --scf-forall-to-for --convert-linalg-to-loops \
// RUN:   --expand-strided-metadata --lower-affine --convert-scf-to-cf \
// RUN:   --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | grep -v base@ > %t.fused
// RUN: diff %t.reference %t.fused
// The same with the tokens routed in parallel and counted per chunk after
// (token-parallel, the CUDA pipeline's default).
// RUN: moe-opt %s --moe-fuse-routing=token-parallel --convert-moe-to-linalg \
// RUN:   --convert-elementwise-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   --scf-forall-to-for --convert-linalg-to-loops \
// RUN:   --expand-strided-metadata --lower-affine --convert-scf-to-cf \
// RUN:   --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | grep -v base@ > %t.tokens
// RUN: diff %t.reference %t.tokens
// And on lanes (lane-max-tokens: the 130 tokens by reductions over the
// experts), whose reductions run in expert order here: the same bits.
// RUN: moe-opt %s --moe-fuse-routing="token-parallel lane-max-tokens=130" \
// RUN:   --convert-moe-to-linalg --convert-elementwise-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   --scf-forall-to-for --convert-linalg-to-loops \
// RUN:   --expand-strided-metadata --lower-affine --convert-scf-to-cf \
// RUN:   --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | %mlir_runner -e main | grep -v base@ > %t.lanes
// RUN: diff %t.reference %t.lanes
// RUN: FileCheck %s < %t.fused

// Every gate and plan is fused.
// FUSED-NOT: moe.gate
// FUSED-NOT: moe.routing_plan

func.func private @printMemrefI32(tensor<*xi32>)
func.func private @printMemrefI64(tensor<*xi64>)

func.func @print(%weights: tensor<?x?xf32>, %ids: tensor<?x?xi32>,
                 %offsets: tensor<*xi64>, %blocks: tensor<?xi32>,
                 %sizes: tensor<?xi32>, %sources: tensor<?xi32>,
                 %map: tensor<?x?xi32>) {
  %bits = arith.bitcast %weights : tensor<?x?xf32> to tensor<?x?xi32>
  %b = tensor.cast %bits : tensor<?x?xi32> to tensor<*xi32>
  call @printMemrefI32(%b) : (tensor<*xi32>) -> ()
  %i = tensor.cast %ids : tensor<?x?xi32> to tensor<*xi32>
  call @printMemrefI32(%i) : (tensor<*xi32>) -> ()
  call @printMemrefI64(%offsets) : (tensor<*xi64>) -> ()
  %bl = tensor.cast %blocks : tensor<?xi32> to tensor<*xi32>
  call @printMemrefI32(%bl) : (tensor<*xi32>) -> ()
  %s = tensor.cast %sizes : tensor<?xi32> to tensor<*xi32>
  call @printMemrefI32(%s) : (tensor<*xi32>) -> ()
  %r = tensor.cast %sources : tensor<?xi32> to tensor<*xi32>
  call @printMemrefI32(%r) : (tensor<*xi32>) -> ()
  %m = tensor.cast %map : tensor<?x?xi32> to tensor<*xi32>
  call @printMemrefI32(%m) : (tensor<*xi32>) -> ()
  return
}

// [T, E] logits ((7t + 13e) mod 17) * 0.37 - 3 (many ties), token 5 with a
// NaN for expert 3, token 6 with every logit 1.
func.func @logits(%tokens: index, %experts: index) -> tensor<?x?xf32> {
  %l = tensor.generate %tokens, %experts {
  ^bb0(%t: index, %e: index):
    %c7 = arith.constant 7 : index
    %c13 = arith.constant 13 : index
    %c17 = arith.constant 17 : index
    %a = arith.muli %t, %c7 : index
    %b = arith.muli %e, %c13 : index
    %s = arith.addi %a, %b : index
    %m = arith.remui %s, %c17 : index
    %i = arith.index_cast %m : index to i32
    %f = arith.sitofp %i : i32 to f32
    %scale = arith.constant 0.37 : f32
    %shift = arith.constant 3.0 : f32
    %v = arith.mulf %f, %scale : f32
    %w = arith.subf %v, %shift : f32
    %c3 = arith.constant 3 : index
    %c5 = arith.constant 5 : index
    %c6 = arith.constant 6 : index
    %is5 = arith.cmpi eq, %t, %c5 : index
    %is3 = arith.cmpi eq, %e, %c3 : index
    %nanHere = arith.andi %is5, %is3 : i1
    %nan = arith.constant 0x7FC00000 : f32
    %x = arith.select %nanHere, %nan, %w : f32
    %is6 = arith.cmpi eq, %t, %c6 : index
    %one = arith.constant 1.0 : f32
    %y = arith.select %is6, %one, %x : f32
    tensor.yield %y : f32
  } : tensor<?x?xf32>
  return %l : tensor<?x?xf32>
}

// CHECK-LABEL: softmax
// CHECK-LABEL: deepseek_v3
// CHECK-LABEL: deepseek_v2
// CHECK-LABEL: switch
// CHECK-LABEL: random_second
func.func @main() {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %c130 = arith.constant 130 : index
  %l8d = call @logits(%c130, %c8) : (index, index) -> tensor<?x?xf32>
  %l8 = tensor.cast %l8d : tensor<?x?xf32> to tensor<?x8xf32>
  %l16d = call @logits(%c130, %c16) : (index, index) -> tensor<?x?xf32>
  %l16 = tensor.cast %l16d : tensor<?x?xf32> to tensor<?x16xf32>

  vector.print str "softmax\n"
  %w0, %i0 = moe.gate %l8 routing <softmax, top_k = 2, renormalize>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %o0, %b0, %s0, %r0, %m0 = moe.routing_plan %i0 block_rows(4) align(8)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  %w0d = tensor.cast %w0 : tensor<?x2xf32> to tensor<?x?xf32>
  %i0d = tensor.cast %i0 : tensor<?x2xi32> to tensor<?x?xi32>
  %o0d = tensor.cast %o0 : tensor<9xi64> to tensor<*xi64>
  %m0d = tensor.cast %m0 : tensor<?x2xi32> to tensor<?x?xi32>
  call @print(%w0d, %i0d, %o0d, %b0, %s0, %r0, %m0d)
      : (tensor<?x?xf32>, tensor<?x?xi32>, tensor<*xi64>, tensor<?xi32>,
         tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> ()

  vector.print str "deepseek_v3\n"
  %bias = arith.constant dense<[0.1, -0.2, 0.0, 0.3, 0.05, -0.1, 0.2, 0.0,
                                0.0, 0.1, -0.3, 0.2, 0.1, 0.0, -0.05, 0.15]>
      : tensor<16xf32>
  %w1, %i1 = moe.gate %l16 bias(%bias : tensor<16xf32>)
      routing <sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias,
               groups = 4, topk_groups = 2, group_score = sum_top2>
      : tensor<?x16xf32> -> tensor<?x4xf32>, tensor<?x4xi32>
  %o1, %b1, %s1, %r1, %m1 = moe.routing_plan %i1 block_rows(16) align(16)
      : tensor<?x4xi32> -> tensor<17xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x4xi32>
  %w1d = tensor.cast %w1 : tensor<?x4xf32> to tensor<?x?xf32>
  %i1d = tensor.cast %i1 : tensor<?x4xi32> to tensor<?x?xi32>
  %o1d = tensor.cast %o1 : tensor<17xi64> to tensor<*xi64>
  %m1d = tensor.cast %m1 : tensor<?x4xi32> to tensor<?x?xi32>
  call @print(%w1d, %i1d, %o1d, %b1, %s1, %r1, %m1d)
      : (tensor<?x?xf32>, tensor<?x?xi32>, tensor<*xi64>, tensor<?xi32>,
         tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> ()

  vector.print str "deepseek_v2\n"
  %w2, %i2 = moe.gate %l16
      routing <softmax, top_k = 3, groups = 4, topk_groups = 2,
               group_score = max>
      : tensor<?x16xf32> -> tensor<?x3xf32>, tensor<?x3xi32>
  %o2, %b2, %s2, %r2, %m2 = moe.routing_plan %i2 block_rows(2) align(2)
      : tensor<?x3xi32> -> tensor<17xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x3xi32>
  %w2d = tensor.cast %w2 : tensor<?x3xf32> to tensor<?x?xf32>
  %i2d = tensor.cast %i2 : tensor<?x3xi32> to tensor<?x?xi32>
  %o2d = tensor.cast %o2 : tensor<17xi64> to tensor<*xi64>
  %m2d = tensor.cast %m2 : tensor<?x3xi32> to tensor<?x?xi32>
  call @print(%w2d, %i2d, %o2d, %b2, %s2, %r2, %m2d)
      : (tensor<?x?xf32>, tensor<?x?xi32>, tensor<*xi64>, tensor<?xi32>,
         tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> ()

  vector.print str "switch\n"
  %w3, %i3 = moe.gate %l8 routing <softmax, top_k = 1, scale = 0.5>
      : tensor<?x8xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  %o3, %b3, %s3, %r3, %m3 = moe.routing_plan %i3 block_rows(8) align(8)
      : tensor<?x1xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x1xi32>
  %w3d = tensor.cast %w3 : tensor<?x1xf32> to tensor<?x?xf32>
  %i3d = tensor.cast %i3 : tensor<?x1xi32> to tensor<?x?xi32>
  %o3d = tensor.cast %o3 : tensor<9xi64> to tensor<*xi64>
  %m3d = tensor.cast %m3 : tensor<?x1xi32> to tensor<?x?xi32>
  call @print(%w3d, %i3d, %o3d, %b3, %s3, %r3, %m3d)
      : (tensor<?x?xf32>, tensor<?x?xi32>, tensor<*xi64>, tensor<?xi32>,
         tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> ()

  vector.print str "random_second\n"
  %noise = arith.constant 0.25 : f32
  %noiseT = tensor.generate %c130 {
  ^bb0(%t: index, %e: index):
    %c3 = arith.constant 3 : index
    %r = arith.remui %t, %c3 : index
    %is0 = arith.cmpi eq, %r, %c0 : index
    %zero = arith.constant 0.0 : f32
    %n = arith.select %is0, %noise, %zero : f32
    tensor.yield %n : f32
  } : tensor<?x8xf32>
  %uniform = tensor.generate %c130 {
  ^bb0(%t: index):
    %c10 = arith.constant 10 : index
    %r = arith.remui %t, %c10 : index
    %i = arith.index_cast %r : index to i32
    %f = arith.sitofp %i : i32 to f32
    %tenth = arith.constant 0.1 : f32
    %u = arith.mulf %f, %tenth : f32
    tensor.yield %u : f32
  } : tensor<?xf32>
  %w4, %i4 = moe.gate %l8 noise(%noiseT : tensor<?x8xf32>)
      uniform(%uniform : tensor<?xf32>)
      routing <softmax, top_k = 2, renormalize, second = random, noisy>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %o4, %b4, %s4, %r4, %m4 = moe.routing_plan %i4 block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  %w4d = tensor.cast %w4 : tensor<?x2xf32> to tensor<?x?xf32>
  %i4d = tensor.cast %i4 : tensor<?x2xi32> to tensor<?x?xi32>
  %o4d = tensor.cast %o4 : tensor<9xi64> to tensor<*xi64>
  %m4d = tensor.cast %m4 : tensor<?x2xi32> to tensor<?x?xi32>
  call @print(%w4d, %i4d, %o4d, %b4, %s4, %r4, %m4d)
      : (tensor<?x?xf32>, tensor<?x?xi32>, tensor<*xi64>, tensor<?xi32>,
         tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> ()
  return
}
