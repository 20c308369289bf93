// RUN: moe-opt %s | moe-opt | FileCheck %s
// Round trip of moe.all_to_all on tensors and buffers, and of a layer under
// expert parallelism (expert operands hold a window of ceil(E / R) experts).

// CHECK-LABEL: func.func @exchange
// CHECK: %[[COMM:.*]] = mpi.comm_world : !mpi.comm
// CHECK: moe.all_to_all %{{.*}} counts(%{{.*}}, %{{.*}}) comm(%[[COMM]]) : tensor<?x16xbf16>, tensor<4xi64> outs(%{{.*}} : tensor<?x16xbf16>) -> tensor<?x16xbf16>
func.func @exchange(%rows: tensor<?x16xbf16>, %send: tensor<4xi64>,
                    %recv: tensor<4xi64>, %init: tensor<?x16xbf16>)
    -> tensor<?x16xbf16> {
  %comm = mpi.comm_world : !mpi.comm
  %got = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : tensor<?x16xbf16>, tensor<4xi64> outs(%init : tensor<?x16xbf16>)
      -> tensor<?x16xbf16>
  return %got : tensor<?x16xbf16>
}

// CHECK-LABEL: func.func @exchange_buffers
// CHECK: moe.all_to_all %{{.*}} counts(%{{.*}}, %{{.*}}) comm(%{{.*}}) : memref<?xi64>, memref<2xi64> outs(%{{.*}} : memref<?xi64>){{$}}
func.func @exchange_buffers(%counts: memref<?xi64>, %send: memref<2xi64>,
                            %recv: memref<2xi64>, %init: memref<?xi64>) {
  %comm = mpi.comm_world : !mpi.comm
  moe.all_to_all %counts counts(%send, %recv) comm(%comm)
      : memref<?xi64>, memref<2xi64> outs(%init : memref<?xi64>)
  return
}

// CHECK-LABEL: func.func @windowed_layer
// CHECK: experts(gate %{{.*}} : tensor<3x32x16xf32>, up %{{.*}} : tensor<3x32x16xf32>, down %{{.*}} : tensor<3x16x32xf32>) activation silu expert_ranks 2
func.func @windowed_layer(%x: tensor<?x16xf32>, %wg: tensor<5x16xf32>,
    %w1: tensor<3x32x16xf32> {moe.expert_window = 5 : i64, moe.weight = "e.{e}.w1"},
    %w3: tensor<3x32x16xf32>, %w2: tensor<3x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%wg : tensor<5x16xf32>)
      experts(gate %w1 : tensor<3x32x16xf32>, up %w3 : tensor<3x32x16xf32>,
              down %w2 : tensor<3x16x32xf32>) activation silu expert_ranks 2
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
