// RUN: moe-opt %s -split-input-file --moe-shard-experts=ranks=2 -verify-diagnostics
// Errors of moe-shard-experts.

// A layer sharded for other ranks already.
func.func @other_ranks(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %w1: tensor<1x32x16xf32>, %w2: tensor<1x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{moe-shard-experts: the layer runs on 4 ranks already, not 2}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%wg : tensor<4x16xf32>)
      experts(up %w1 : tensor<1x32x16xf32>, down %w2 : tensor<1x16x32xf32>)
      activation relu expert_ranks 4 -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// A module whose DLTI map names another MPI library.
// expected-error @+1 {{the module's DLTI map names another MPI library than OpenMPI}}
module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  func.func @library(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
      %w1: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
    %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
        router(%wg : tensor<4x16xf32>)
        experts(up %w1 : tensor<4x32x16xf32>, down %w2 : tensor<4x16x32xf32>)
        activation relu -> tensor<?x16xf32>
    return %y : tensor<?x16xf32>
  }
}

// -----

// A module marked for other ranks.
// expected-error @+1 {{the module runs on 4 MPI ranks already, not 2}}
module attributes {moe.mpi_ranks = 4 : i64} {
  func.func @marked(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
      %w1: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
    %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
        router(%wg : tensor<4x16xf32>)
        experts(up %w1 : tensor<4x32x16xf32>, down %w2 : tensor<4x16x32xf32>)
        activation relu -> tensor<?x16xf32>
    return %y : tensor<?x16xf32>
  }
}
