// RUN: moe-opt %s -split-input-file -verify-diagnostics
// One case per verifier rule of moe.all_to_all (c1-c3), of moe.layer's
// expert_ranks (c16) and of the moe.expert_window argument attribute.

// c3: tensors and buffers mixed
func.func @mixed(%rows: tensor<?x16xf32>, %send: memref<2xi64>, %recv: memref<2xi64>,
                 %init: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{operands must be all ranked tensors or all memrefs}}
  %r = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : tensor<?x16xf32>, memref<2xi64> outs(%init : tensor<?x16xf32>) -> tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// c3: buffers have no result
func.func @buffer_result(%rows: memref<?x16xf32>, %send: memref<2xi64>, %recv: memref<2xi64>,
                         %init: memref<?x16xf32>) {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{on buffers has no result}}
  %r = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : memref<?x16xf32>, memref<2xi64> outs(%init : memref<?x16xf32>) -> tensor<?x16xf32>
  return
}

// -----

// c1: the rows differ
func.func @row_shape(%rows: tensor<?x16xf32>, %send: tensor<2xi64>, %recv: tensor<2xi64>,
                     %init: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{rows of 'input' and 'init' differ in dimension 1: 16 vs 8}}
  %r = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : tensor<?x16xf32>, tensor<2xi64> outs(%init : tensor<?x8xf32>) -> tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}

// -----

// c1: element types differ
func.func @element_type(%rows: tensor<?x16xf32>, %send: tensor<2xi64>, %recv: tensor<2xi64>,
                        %init: tensor<?x16xbf16>) -> tensor<?x16xbf16> {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{'input' and 'init' must have one element type}}
  %r = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : tensor<?x16xf32>, tensor<2xi64> outs(%init : tensor<?x16xbf16>) -> tensor<?x16xbf16>
  return %r : tensor<?x16xbf16>
}

// -----

// c1: ranks differ
func.func @rank(%rows: tensor<?x16xf32>, %send: tensor<2xi64>, %recv: tensor<2xi64>,
                %init: tensor<?xf32>) -> tensor<?xf32> {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{'input' and 'init' must have one rank of at least 1}}
  %r = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : tensor<?x16xf32>, tensor<2xi64> outs(%init : tensor<?xf32>) -> tensor<?xf32>
  return %r : tensor<?xf32>
}

// -----

// c2: counts of a dynamic size
func.func @counts(%rows: tensor<?x16xf32>, %send: tensor<?xi64>, %recv: tensor<?xi64>,
                  %init: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{'send_counts' must be [R] i64 with a static R >= 1}}
  %r = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : tensor<?x16xf32>, tensor<?xi64> outs(%init : tensor<?x16xf32>) -> tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// c3: the result is init's type
func.func @result_type(%rows: tensor<?x16xf32>, %send: tensor<2xi64>, %recv: tensor<2xi64>,
                       %init: tensor<?x16xf32>) -> tensor<8x16xf32> {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{result must have the type of 'init'}}
  %r = moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : tensor<?x16xf32>, tensor<2xi64> outs(%init : tensor<?x16xf32>) -> tensor<8x16xf32>
  return %r : tensor<8x16xf32>
}

// -----

// layer c16: more ranks than experts
func.func @too_many_ranks(%x: tensor<?x16xf32>, %wg: tensor<2x16xf32>,
    %w1: tensor<1x32x16xf32>, %w2: tensor<1x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_ranks' must be between 1 and the 2 experts, got 3}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%wg : tensor<2x16xf32>)
      experts(up %w1 : tensor<1x32x16xf32>, down %w2 : tensor<1x16x32xf32>)
      activation relu expert_ranks 3 -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// layer c16: the expert operands hold the window of ceil(E / R) experts
func.func @window(%x: tensor<?x16xf32>, %wg: tensor<5x16xf32>,
    %w1: tensor<5x32x16xf32>, %w2: tensor<5x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{expert_up}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%wg : tensor<5x16xf32>)
      experts(up %w1 : tensor<5x32x16xf32>, down %w2 : tensor<5x16x32xf32>)
      activation relu expert_ranks 2 -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.expert_window: a window larger than the experts
// expected-error @+1 {{'moe.expert_window' argument 0 must have a static window of at most 2 experts}}
func.func @window_attr(%w: tensor<3x4xf32> {moe.expert_window = 2 : i64}) {
  return
}

// -----

// moe.expert_window: not a positive i64
// expected-error @+1 {{'moe.expert_window' of argument 0 must be a positive i64}}
func.func @window_attr_value(%w: tensor<3x4xf32> {moe.expert_window = "all"}) {
  return
}

// -----

// c4: one buffer sent and received
func.func @same_buffer(%rows: memref<?x16xf32>, %send: memref<2xi64>, %recv: memref<2xi64>) {
  %comm = mpi.comm_world : !mpi.comm
  // expected-error @+1 {{'input' and 'init' must be different values}}
  moe.all_to_all %rows counts(%send, %recv) comm(%comm)
      : memref<?x16xf32>, memref<2xi64> outs(%rows : memref<?x16xf32>)
  return
}
