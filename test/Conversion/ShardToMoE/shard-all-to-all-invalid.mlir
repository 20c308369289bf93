// RUN: moe-opt %s -split-input-file --moe-convert-shard-all-to-all -verify-diagnostics

// Part of a grid is a sub-communicator.
shard.grid @grid2d(shape = 2x2)
func.func @part(%x: tensor<4x2xf32>) -> tensor<4x2xf32> {
  // expected-error @+1 {{exchanges within part of the grid (2 of 4 devices) need sub-communicators}}
  %y = shard.all_to_all %x on @grid2d grid_axes = [0]
      split_axis = 0 concat_axis = 0 : tensor<4x2xf32> -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// Dynamic shapes.
shard.grid @ranks(shape = 2)
func.func @dynamic(%x: tensor<?x2xf32>) -> tensor<?x1xf32> {
  // expected-error @+1 {{needs static shapes}}
  %y = shard.all_to_all %x on @ranks grid_axes = [0]
      split_axis = 1 concat_axis = 0 : tensor<?x2xf32> -> tensor<?x1xf32>
  return %y : tensor<?x1xf32>
}

// -----

// Two world sizes in one module.
shard.grid @two(shape = 2)
shard.grid @four(shape = 4)
func.func @two_grids(%x: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<4x2xf32>) {
  %y = shard.all_to_all %x on @two grid_axes = [0]
      split_axis = 0 concat_axis = 0 : tensor<4x2xf32> -> tensor<4x2xf32>
  // expected-error @+1 {{grids of 2 and 4 devices in one module}}
  %z = shard.all_to_all %x on @four grid_axes = [0]
      split_axis = 0 concat_axis = 0 : tensor<4x2xf32> -> tensor<4x2xf32>
  return %y, %z : tensor<4x2xf32>, tensor<4x2xf32>
}

// -----

// Grid axes out of order number the devices otherwise than the world.
shard.grid @grid2d(shape = 2x2)
func.func @order(%x: tensor<4x2xf32>) -> tensor<4x2xf32> {
  // expected-error @+1 {{grid axes out of order (1 before 0) number the devices otherwise than MPI_COMM_WORLD}}
  %y = shard.all_to_all %x on @grid2d grid_axes = [1, 0]
      split_axis = 0 concat_axis = 0 : tensor<4x2xf32> -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}
