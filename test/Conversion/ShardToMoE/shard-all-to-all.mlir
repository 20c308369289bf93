// RUN: moe-opt %s -split-input-file --moe-convert-shard-all-to-all | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-convert-shard-all-to-all --one-shot-bufferize="bufferize-function-boundaries" --convert-linalg-to-loops --convert-to-llvm --reconcile-unrealized-casts | FileCheck %s --check-prefix=LLVM

// The capacity layout of expert parallelism: [E, C, H] split along the
// experts, concatenated along the slots: [E / R, R * C, H] on each of the
// R = 2 ranks. Rows are the experts already; what arrives, [R, E / R, C, H]
// in source order, moves into the slots.
// CHECK: module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "OpenMPI">, moe.mpi_ranks = 2 : i64}
// CHECK-NOT: shard.grid
// CHECK-LABEL: func.func @capacity
// CHECK-SAME: (%[[SLOTS:.*]]: tensor<4x3x8xf32>)
// CHECK: %[[COUNTS:.*]] = arith.constant dense<2> : tensor<2xi64>
// CHECK: %[[COMM:.*]] = mpi.comm_world : !mpi.comm
// CHECK: %[[GOT:.*]] = moe.all_to_all %[[SLOTS]] counts(%[[COUNTS]], %[[COUNTS]]) comm(%[[COMM]]) : tensor<4x3x8xf32>, tensor<2xi64> outs(%{{.*}} : tensor<4x3x8xf32>) -> tensor<4x3x8xf32>
// CHECK: %[[PIECES:.*]] = tensor.expand_shape %[[GOT]] {{\[}}[0, 1], [2], [3]] output_shape [2, 2, 3, 8] : tensor<4x3x8xf32> into tensor<2x2x3x8xf32>
// CHECK: %[[MOVED:.*]] = linalg.transpose ins(%[[PIECES]] : tensor<2x2x3x8xf32>) outs(%{{.*}} : tensor<2x2x3x8xf32>) permutation = [1, 0, 2, 3]
// CHECK: %[[MERGED:.*]] = tensor.collapse_shape %[[MOVED]] {{\[}}[0], [1, 2], [3]] : tensor<2x2x3x8xf32> into tensor<2x6x8xf32>
// CHECK: return %[[MERGED]] : tensor<2x6x8xf32>
// LLVM: llvm.call @MPI_Alltoallv
shard.grid @ranks(shape = 2)
func.func @capacity(%slots: tensor<4x3x8xf32>) -> tensor<2x6x8xf32> {
  %by_expert = shard.all_to_all %slots on @ranks grid_axes = [0]
      split_axis = 0 concat_axis = 1 : tensor<4x3x8xf32> -> tensor<2x6x8xf32>
  return %by_expert : tensor<2x6x8xf32>
}

// -----

// And back: split along the slots, concatenated along the experts; the
// split axis moves to the front first and back at the end.
// CHECK-LABEL: func.func @back
// CHECK: linalg.transpose ins(%{{.*}} : tensor<2x6x8xf32>) outs(%{{.*}} : tensor<6x2x8xf32>) permutation = [1, 0, 2]
// CHECK: moe.all_to_all %{{.*}} counts(%{{.*}}, %{{.*}}) comm(%{{.*}}) : tensor<6x2x8xf32>, tensor<2xi64>
// CHECK: tensor.expand_shape %{{.*}} output_shape [2, 3, 2, 8] : tensor<6x2x8xf32> into tensor<2x3x2x8xf32>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<2x3x2x8xf32>) outs(%{{.*}} : tensor<3x2x2x8xf32>) permutation = [1, 0, 2, 3]
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0], [1, 2], [3]] : tensor<3x2x2x8xf32> into tensor<3x4x8xf32>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<3x4x8xf32>) outs(%{{.*}} : tensor<4x3x8xf32>) permutation = [1, 0, 2]
shard.grid @ranks(shape = 2)
func.func @back(%mine: tensor<2x6x8xf32>) -> tensor<4x3x8xf32> {
  %slots = shard.all_to_all %mine on @ranks grid_axes = [0]
      split_axis = 1 concat_axis = 0 : tensor<2x6x8xf32> -> tensor<4x3x8xf32>
  return %slots : tensor<4x3x8xf32>
}

// -----

// Split and concatenated along one axis: the rows as they arrive.
// CHECK-LABEL: func.func @same_axis
// CHECK: %[[GOT:.*]] = moe.all_to_all
// CHECK: %[[PIECES:.*]] = tensor.expand_shape %[[GOT]]
// CHECK: %[[MERGED:.*]] = tensor.collapse_shape %[[PIECES]]
// CHECK: return %[[MERGED]] : tensor<6x2xf32>
shard.grid @ranks(shape = 3)
func.func @same_axis(%x: tensor<6x2xf32>) -> tensor<6x2xf32> {
  %y = shard.all_to_all %x on @ranks grid_axes = [0]
      split_axis = 0 concat_axis = 0 : tensor<6x2xf32> -> tensor<6x2xf32>
  return %y : tensor<6x2xf32>
}

// -----

// A group of one device is the identity; the grid stays while used.
// CHECK-LABEL: func.func @alone
// CHECK-NEXT: return %arg0
shard.grid @grid2d(shape = 2x1)
func.func @alone(%x: tensor<4x2xf32>) -> tensor<4x2xf32> {
  %y = shard.all_to_all %x on @grid2d grid_axes = [1]
      split_axis = 0 concat_axis = 0 : tensor<4x2xf32> -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}
