// RUN: moe-opt %s -split-input-file --moe-decompose -verify-diagnostics
// RUN: moe-opt %s -split-input-file --convert-moe-to-linalg -verify-diagnostics
// A layer under expert parallelism must be in a module marked for its
// ranks (moe.mpi_ranks, which the runtime checks against MPI_COMM_WORLD).

func.func @unmarked(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{a layer with 'expert_ranks' = 2 needs its module marked for as many MPI ranks ('moe.mpi_ranks', as moe-shard-experts marks it), got none}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%wg : tensor<4x16xf32>)
      experts(up %w1 : tensor<2x32x16xf32>, down %w2 : tensor<2x16x32xf32>)
      activation relu expert_ranks 2 -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

module attributes {moe.mpi_ranks = 4 : i64} {
  func.func @other(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
      %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>) -> tensor<?x16xf32> {
    // expected-error @+1 {{a layer with 'expert_ranks' = 2 needs its module marked for as many MPI ranks ('moe.mpi_ranks', as moe-shard-experts marks it), got 4}}
    %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
        router(%wg : tensor<4x16xf32>)
        experts(up %w1 : tensor<2x32x16xf32>, down %w2 : tensor<2x16x32xf32>)
        activation relu expert_ranks 2 -> tensor<?x16xf32>
    return %y : tensor<?x16xf32>
  }
}
