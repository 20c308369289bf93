// RUN: moe-opt %s -split-input-file --moe-shard-experts=ranks=2 | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-shard-experts=ranks=2 --moe-decompose | FileCheck %s --check-prefix=EXCHANGE
// RUN: not moe-opt %s -split-input-file --moe-shard-experts=ranks=6 2>&1 | FileCheck %s --check-prefix=TOO-MANY
// RUN: not moe-opt %s --moe-shard-experts=ranks=0 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: not moe-opt %s --moe-shard-experts="ranks=2 mpi=LAM" 2>&1 | FileCheck %s --check-prefix=LIBRARY

// Entry arguments used only as expert weights take the window's type (3 of
// 5 experts on 2 ranks) and moe.expert_window; the router stays whole.
// CHECK: module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "OpenMPI">, moe.mpi_ranks = 2 : i64}
// CHECK-LABEL: func.func @forward
// CHECK-SAME: %{{.*}}: tensor<5x16xf32> {moe.weight = "router"}
// CHECK-SAME: %{{.*}}: tensor<3x32x16xf32> {moe.expert_window = 5 : i64, moe.weight = "experts.{e}.w1"}
// CHECK-SAME: %{{.*}}: tensor<3x16x32xf32> {moe.expert_window = 5 : i64, moe.weight = "experts.{e}.w2"}
// CHECK: moe.layer {{.*}} expert_ranks 2

// The exchange: counts, rows, results back; the window dispatch with the
// rank's experts, the combine of the returned rows.
// EXCHANGE-LABEL: func.func @forward
// EXCHANGE: %[[ROWS:.*]], %{{.*}}, %[[MAP:.*]] = moe.dispatch %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<6xi64>, tensor<?x2xi32>
// EXCHANGE: %[[RANK:.*]] = mpi.comm_rank
// EXCHANGE: moe.all_to_all %{{.*}} counts(%{{.*}}, %{{.*}}) comm(%{{.*}}) : tensor<5xi64>, tensor<2xi64> outs(%{{.*}} : tensor<?xi64>) -> tensor<?xi64>
// EXCHANGE: %[[GOT:.*]] = moe.all_to_all %[[ROWS]] counts(%{{.*}}, %{{.*}})
// EXCHANGE: moe.dispatch %[[GOT]], %{{.*}} : tensor<?x16xf32>, tensor<?x1xi32> -> tensor<?x16xf32>, tensor<4xi64>, tensor<?x1xi32>
// EXCHANGE: moe.expert_matmul {{.*}} tensor<3x32x16xf32>
// EXCHANGE: %[[MINE:.*]] = moe.combine {{.*}} : tensor<?x16xf32>, tensor<?x1xf32>, tensor<?x1xi32> -> tensor<?x16xf32>
// EXCHANGE: %[[BACK:.*]] = moe.all_to_all %[[MINE]]
// EXCHANGE: moe.combine %[[BACK]], %{{.*}}, %[[MAP]]
// TOO-MANY: error: moe-shard-experts: ranks = 6 exceeds the layer's 5 experts
// ZERO: error: moe-shard-experts: ranks must be at least 1, got 0
// LIBRARY: error: moe-shard-experts: mpi must be OpenMPI or MPICH, got 'LAM'
func.func @forward(%x: tensor<?x16xf32>,
    %wg: tensor<5x16xf32> {moe.weight = "router"},
    %w1: tensor<5x32x16xf32> {moe.weight = "experts.{e}.w1"},
    %w2: tensor<5x16x32xf32> {moe.weight = "experts.{e}.w2"}) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%wg : tensor<5x16xf32>)
      experts(gate %w1 : tensor<5x32x16xf32>, up %w1 : tensor<5x32x16xf32>,
              down %w2 : tensor<5x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// An argument used otherwise (here also by the returned value) is sliced at
// the rank's window start (0 for rank 0, 2 for rank 1).
// CHECK-LABEL: func.func @shared_use
// CHECK-SAME: %[[UP:arg[0-9]+]]: tensor<5x32x16xf32>,
// CHECK: %[[STARTS:.*]] = arith.constant dense<[0, 2]> : tensor<2xi64>
// CHECK: mpi.comm_rank
// CHECK: %[[START:.*]] = tensor.extract %[[STARTS]]
// CHECK: %[[INDEX:.*]] = arith.index_cast %[[START]]
// CHECK: tensor.extract_slice %[[UP]][%[[INDEX]], 0, 0] [3, 32, 16] [1, 1, 1]
func.func @shared_use(%x: tensor<?x16xf32>, %wg: tensor<5x16xf32>,
    %up: tensor<5x32x16xf32>, %down: tensor<5x16x32xf32>)
    -> (tensor<?x16xf32>, tensor<5x32x16xf32>) {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%wg : tensor<5x16xf32>)
      experts(up %up : tensor<5x32x16xf32>, down %down : tensor<5x16x32xf32>)
      activation relu -> tensor<?x16xf32>
  return %y, %up : tensor<?x16xf32>, tensor<5x32x16xf32>
}

// -----

// A DLTI map without the MPI entry gets it; an entry point that the module
// also calls keeps its type (its caller passes the whole tensor): its
// expert weight is sliced.
// CHECK: module attributes {dlti.map = #dlti.map<"dlti.endianness" = "little", "MPI:Implementation" = "OpenMPI">, moe.mpi_ranks = 2 : i64}
// CHECK-LABEL: func.func @called
// CHECK-SAME: %{{.*}}: tensor<4x32x16xf32>, %{{.*}}: tensor<4x16x32xf32>)
// CHECK-COUNT-2: tensor.extract_slice
module attributes {dlti.map = #dlti.map<"dlti.endianness" = "little">} {
  func.func @called(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
      %up: tensor<4x32x16xf32>, %down: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
    %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
        router(%wg : tensor<4x16xf32>)
        experts(up %up : tensor<4x32x16xf32>, down %down : tensor<4x16x32xf32>)
        activation relu -> tensor<?x16xf32>
    return %y : tensor<?x16xf32>
  }
  func.func @caller(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
      %up: tensor<4x32x16xf32>, %down: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
    %y = func.call @called(%x, %wg, %up, %down)
        : (tensor<?x16xf32>, tensor<4x16xf32>, tensor<4x32x16xf32>, tensor<4x16x32xf32>) -> tensor<?x16xf32>
    return %y : tensor<?x16xf32>
  }
}
