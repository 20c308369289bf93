// RUN: moe-opt %s -split-input-file -verify-diagnostics

// Hostile IR: malformed types, degenerate and huge sizes, wrong ranks, missing
// operands, unknown ops and attributes, malformed generic ops. Each case must
// give a located diagnostic (parser or verifier) and never crash.

//===----------------------------------------------------------------------===//
// Negative and out-of-range sizes in tensor types (parser errors)
//===----------------------------------------------------------------------===//

// negative size in a function argument type
// expected-error @+1 {{expected non-function type}}
func.func @negative_dim_arg(%x: tensor<-1x16xf32>) {
  return
}

// -----

// negative size in an op's type list
func.func @negative_dim_op_type(%l: tensor<?x8xf32>) {
  // expected-error @+2 {{expected non-function type}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x-8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// a size beyond int64
// expected-error @+1 {{invalid dimension}}
func.func @dim_beyond_int64(%x: tensor<9223372036854775808x16xf32>) {
  return
}

// -----

//===----------------------------------------------------------------------===//
// E = 0
//===----------------------------------------------------------------------===//

// E = 0 in moe.layer: a tensor<0x16xf32> router
func.func @layer_zero_experts(%x: tensor<?x16xf32>, %wg: tensor<0x16xf32>,
                              %w3: tensor<0x32x16xf32>, %w2: tensor<0x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router' dimension 0 (E) must be at least 1, got 0}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%wg : tensor<0x16xf32>)
      experts(up %w3 : tensor<0x32x16xf32>, down %w2 : tensor<0x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// E = 0 in moe.gate, with no tokens either
func.func @gate_zero_experts(%l: tensor<0x0xf32>) {
  // expected-error @+1 {{number of experts must be at least 1, got 0}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = fixed(0)>
      : tensor<0x0xf32> -> tensor<0x0xf32>, tensor<0x0xi32>
  return
}

// -----

// E = 0 in grouped moe.dispatch: expert_rows tensor<1xi64>
func.func @dispatch_zero_experts(%x: tensor<0x16xf32>, %ids: tensor<0x1xi32>) {
  // expected-error @+1 {{'expert_rows' must be [E+1] offsets with E >= 1, got 'tensor<1xi64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<0x16xf32>, tensor<0x1xi32> -> tensor<0x16xf32>, tensor<1xi64>, tensor<0x1xi32>
  return
}

// -----

// E = 0 in grouped moe.dispatch: expert_rows tensor<0xi64>
func.func @dispatch_empty_offsets(%x: tensor<?x16xf32>, %ids: tensor<?x1xi32>) {
  // expected-error @+1 {{'expert_rows' must be [E+1] offsets with E >= 1, got 'tensor<0xi64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x1xi32> -> tensor<?x16xf32>, tensor<0xi64>, tensor<?x1xi32>
  return
}

// -----

// E = 0 in moe.expert_matmul (capacity slots)
func.func @matmul_zero_experts(%x: tensor<0x4x16xf32>, %w: tensor<0x32x16xf32>) {
  // expected-error @+1 {{'weight' dimension 0 (E) must be at least 1, got 0}}
  %h = moe.expert_matmul %x, %w
      : tensor<0x4x16xf32>, tensor<0x32x16xf32> -> tensor<0x4x32xf32>
  return
}

// -----

// E = 0 in moe.combine (capacity slots)
func.func @combine_zero_experts(%rows: tensor<0x0x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' dimension 0 (E) must be at least 1, got 0}}
  %y = moe.combine %rows, %w, %map
      : tensor<0x0x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// K = 0
//===----------------------------------------------------------------------===//

// top_k = 0 in moe.gate
func.func @gate_top_k_zero(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: top_k must be at least 1, got 0}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 0>
      : tensor<?x8xf32> -> tensor<?x0xf32>, tensor<?x0xi32>
  return
}

// -----

// top_k = 0 in moe.layer
func.func @layer_top_k_zero(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                            %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{routing: top_k must be at least 1, got 0}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 0>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// the most negative top_k
func.func @gate_top_k_int64_min(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: top_k must be at least 1, got -9223372036854775808}}
  %w, %ids = moe.gate %l routing <softmax, top_k = -9223372036854775808>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// K = 0 in moe.dispatch: ids tensor<?x0xi32>
func.func @dispatch_zero_k(%x: tensor<?x16xf32>, %ids: tensor<?x0xi32>) {
  // expected-error @+1 {{'ids' dimension 1 (K) must be at least 1, got 0}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x0xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x0xi32>
  return
}

// -----

// K = 0 in moe.combine: weights tensor<?x0xf32>
func.func @combine_zero_k(%rows: tensor<?x16xf32>, %w: tensor<?x0xf32>, %map: tensor<?x0xi32>) {
  // expected-error @+1 {{'weights' dimension 1 (K) must be at least 1, got 0}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<?x0xf32>, tensor<?x0xi32> -> tensor<?x16xf32>
  return
}

// -----

// K = 0 in moe.expert_matmul: weight tensor<8x32x0xf32>
func.func @matmul_zero_k(%x: tensor<?x0xf32>, %w: tensor<8x32x0xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'weight' dimension 2 (K) must be at least 1, got 0}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x0xf32>, tensor<8x32x0xf32> -> tensor<?x32xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Huge sizes and integers
//===----------------------------------------------------------------------===//

// a router with 2^63 - 1 experts, and expert weights for 8
func.func @layer_huge_router(%x: tensor<?x16xf32>, %wg: tensor<9223372036854775807x16xf32>,
                             %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_up' dimension 0 (E) is 8, expected 9223372036854775807 from router}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<9223372036854775807x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// top_k = 2^63 - 1 with 8 experts
func.func @gate_huge_top_k(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing top_k (9223372036854775807) exceeds the number of experts (8)}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 9223372036854775807>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// top_k larger than int64
func.func @gate_top_k_beyond_int64(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{integer value too large}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 99999999999999999999>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// groups = 2^63 - 1 with 8 experts
func.func @gate_huge_groups(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing groups (9223372036854775807) must divide the number of experts (8)}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, groups = 9223372036854775807>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// a fixed capacity larger than int64
func.func @gate_capacity_beyond_int64(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{integer value too large}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, capacity = fixed(99999999999999999999)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// a scale that overflows double
func.func @gate_scale_overflow(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing: scale must be a finite positive number, got INF}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, scale = 1.0e400>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// an align larger than int64
func.func @dispatch_align_beyond_int64(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{integer constant out of range for attribute}}
  %rows, %off, %map = moe.dispatch %x, %ids align 99999999999999999999
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// 2^63 - 1 experts in moe.gate (expert ids are i32)
func.func @gate_huge_experts(%l: tensor<?x9223372036854775807xf32>) {
  // expected-error @+1 {{number of experts must be at most 2147483647 (expert ids are i32), got 9223372036854775807}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = fixed(2)>
      : tensor<?x9223372036854775807xf32> -> tensor<?x9223372036854775807xf32>, tensor<?x9223372036854775807xi32>
  return
}

// -----

// 2^63 - 1 experts in moe.layer, consistent across all weights
func.func @layer_huge_experts(%x: tensor<?x16xf32>, %wg: tensor<9223372036854775807x16xf32>,
                              %w3: tensor<9223372036854775807x32x16xf32>,
                              %w2: tensor<9223372036854775807x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{number of experts must be at most 2147483647 (expert ids are i32), got 9223372036854775807}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<9223372036854775807x16xf32>)
      experts(up %w3 : tensor<9223372036854775807x32x16xf32>,
              down %w2 : tensor<9223372036854775807x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// 2^63 - 2 experts in grouped moe.dispatch (expert_rows of 2^63 - 1)
func.func @dispatch_huge_offsets(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' implies more than 2147483647 experts (expert ids are i32)}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9223372036854775807xi64>, tensor<?x2xi32>
  return
}

// -----

// 2^63 - 1 experts and slots in capacity moe.dispatch
func.func @dispatch_huge_capacity(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' has more than 2147483647 experts (expert ids are i32)}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32>
      -> tensor<9223372036854775807x9223372036854775807x16xf32>, tensor<9223372036854775807xi64>, tensor<?x2xi32>
  return
}

// -----

// 2^63 - 1 experts in moe.expert_matmul (E + 1 offsets would overflow int64)
func.func @matmul_huge_experts(%x: tensor<?x16xf32>, %w: tensor<9223372036854775807x32x16xf32>,
                               %off: tensor<9xi64>) {
  // expected-error @+1 {{'weight' has 9223372036854775807 experts, more than 2147483647 (expert ids are i32)}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<9223372036854775807x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// huge capacity slots whose expert_rows disagree
func.func @dispatch_huge_slots(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' dimension 0 (E) is 8, expected 9223372036854775807 from rows}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32>
      -> tensor<9223372036854775807x9223372036854775807x16xf32>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Wrong ranks
//===----------------------------------------------------------------------===//

// rank-1 input to moe.layer
func.func @layer_rank1_input(%x: tensor<16xf32>, %wg: tensor<8x16xf32>,
                             %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{'input' must have shape [T, H] (rank 2), got 'tensor<16xf32>'}}
  %y = moe.layer %x : tensor<16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<16xf32>
  return %y : tensor<16xf32>
}

// -----

// rank-0 input to moe.layer
func.func @layer_rank0_input(%x: tensor<f32>, %wg: tensor<8x16xf32>,
                             %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<f32> {
  // expected-error @+1 {{'input' must have shape [T, H] (rank 2), got 'tensor<f32>'}}
  %y = moe.layer %x : tensor<f32> routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<f32>
  return %y : tensor<f32>
}

// -----

// rank-3 router
func.func @layer_rank3_router(%x: tensor<?x16xf32>, %wg: tensor<1x8x16xf32>,
                              %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router' must have shape [E, H] (rank 2), got 'tensor<1x8x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<1x8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// rank-0 logits
func.func @gate_rank0_logits(%l: tensor<f32>) {
  // expected-error @+1 {{'logits' must have shape [T, E] (rank 2), got 'tensor<f32>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<f32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// rank-4 rows from moe.dispatch
func.func @dispatch_rank4_rows(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' must have shape [N, H] (grouped) or [E, C, H] (capacity), got 'tensor<2x8x4x16xf32>'}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<2x8x4x16xf32>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// -----

// rank-4 rows into moe.combine
func.func @combine_rank4_rows(%rows: tensor<2x8x4x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' must have shape [R, H] (grouped) or [E, C, H] (capacity), got 'tensor<2x8x4x16xf32>'}}
  %y = moe.combine %rows, %w, %map
      : tensor<2x8x4x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// rank-4 input to moe.expert_matmul
func.func @matmul_rank4_input(%x: tensor<2x8x4x16xf32>, %w: tensor<8x32x16xf32>) {
  // expected-error @+1 {{'input' must have shape [R, K] (grouped) or [E, C, K] (capacity), got 'tensor<2x8x4x16xf32>'}}
  %h = moe.expert_matmul %x, %w
      : tensor<2x8x4x16xf32>, tensor<8x32x16xf32> -> tensor<2x8x4x32xf32>
  return
}

// -----

// rank-0 expert_rows
func.func @dispatch_rank0_offsets(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' must have shape [E+1] (rank 1), got 'tensor<i64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<i64>, tensor<?x2xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Unranked and non-tensor types
//===----------------------------------------------------------------------===//

// an unranked input
func.func @dispatch_unranked(%x: tensor<*xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+2 {{invalid kind of type specified: expected builtin.tensor, but found 'tensor<*xf32>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<*xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// a memref input
func.func @combine_memref(%rows: memref<?x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+2 {{invalid kind of type specified: expected builtin.tensor, but found 'memref<?x16xf32>'}}
  %y = moe.combine %rows, %w, %map
      : memref<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// a declared type that differs from the value's type
// expected-note @+1 {{prior use here}}
func.func @gate_type_mismatch(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{use of value '%l' expects different type than prior uses: 'tensor<?x4xf32>' vs 'tensor<?x8xf32>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Missing operands and clauses
//===----------------------------------------------------------------------===//

// experts(up ...) without down
func.func @layer_missing_down(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                              %w3: tensor<8x32x16xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      // expected-error @+1 {{expected ','}}
      experts(up %w3 : tensor<8x32x16xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// experts(...) without up
func.func @layer_missing_up(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                            %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      // expected-error @+1 {{expected 'up'}}
      experts(down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer without its router clause
func.func @layer_missing_router(%x: tensor<?x16xf32>,
                                %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      // expected-error @+1 {{expected 'router'}}
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer without routing
func.func @layer_missing_routing(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                 %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      // expected-error @+1 {{expected 'routing'}}
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.gate without logits
func.func @gate_missing_logits() {
  // expected-error @+1 {{expected SSA operand}}
  %w, %ids = moe.gate routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch without ids
func.func @dispatch_missing_ids(%x: tensor<?x16xf32>) {
  // expected-error @+1 {{expected ','}}
  %rows, %off, %map = moe.dispatch %x
      : tensor<?x16xf32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.combine without row_map
func.func @combine_missing_row_map(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>) {
  // expected-error @+1 {{expected ','}}
  %y = moe.combine %rows, %w
      : tensor<?x16xf32>, tensor<?x2xf32> -> tensor<?x16xf32>
  return
}

// -----

// moe.expert_matmul without weight
func.func @matmul_missing_weight(%x: tensor<?x16xf32>) {
  // expected-error @+1 {{expected ','}}
  %h = moe.expert_matmul %x : tensor<?x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// use of an undefined value
func.func @undefined_value(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{use of undeclared SSA value name}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// too few result names for moe.dispatch
func.func @dispatch_one_result(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{operation defines 3 results but was provided 1 to bind}}
  %rows = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Unknown ops, attributes and keywords
//===----------------------------------------------------------------------===//

// an unknown moe op, custom form
func.func @unknown_op_custom() {
  // expected-error @+1 {{custom op 'moe.nonexistent' is unknown}}
  moe.nonexistent
  return
}

// -----

// an unknown moe op, generic form
func.func @unknown_op_generic(%x: tensor<?x16xf32>) {
  // expected-error @+1 {{unregistered operation 'moe.nonexistent' found in dialect ('moe') that does not allow unknown operations}}
  %y = "moe.nonexistent"(%x) : (tensor<?x16xf32>) -> tensor<?x16xf32>
  return
}

// -----

// an unknown moe attribute
// expected-error @+1 {{unknown attribute `nonexistent` in dialect `moe`}}
func.func @unknown_attribute() attributes {r = #moe.nonexistent<1>} {
  return
}

// -----

// an unknown activation
func.func @unknown_activation(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                              %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'activation' [silu, gelu, gelu_tanh, relu, clamped_swiglu]}}
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation swish
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

//===----------------------------------------------------------------------===//
// Malformed generic ops
//===----------------------------------------------------------------------===//

// generic moe.gate without its routing attribute
func.func @generic_missing_routing(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'moe.gate' op requires attribute 'routing'}}
  %w, %ids = "moe.gate"(%l) {operandSegmentSizes = array<i32: 1, 0, 0, 0>}
      : (tensor<?x8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return
}

// -----

// generic moe.gate with a routing attribute of the wrong kind
func.func @generic_wrong_routing(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'routing' failed to satisfy constraint}}
  %w, %ids = "moe.gate"(%l) {routing = 2 : i64, operandSegmentSizes = array<i32: 1, 0, 0, 0>}
      : (tensor<?x8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return
}

// -----

// generic moe.gate with a statistics attribute of the wrong kind
func.func @generic_wrong_statistics(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'statistics' failed to satisfy constraint}}
  %w, %ids = "moe.gate"(%l) {routing = #moe.routing<softmax, top_k = 2>, statistics = ["z_loss"],
                             operandSegmentSizes = array<i32: 1, 0, 0, 0>}
      : (tensor<?x8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return
}

// -----

// generic moe.gate with one result
func.func @generic_one_result(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'moe.gate' op expected 2 or more results}}
  %w = "moe.gate"(%l) {routing = #moe.routing<softmax, top_k = 2>, operandSegmentSizes = array<i32: 1, 0, 0, 0>}
      : (tensor<?x8xf32>) -> tensor<?x2xf32>
  return
}

// -----

// generic moe.gate whose operand segments do not add up
func.func @generic_bad_segments(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'moe.gate' op operand count (1) does not match with the total size (3) specified in attribute 'operandSegmentSizes'}}
  %w, %ids = "moe.gate"(%l) {routing = #moe.routing<softmax, top_k = 2>, operandSegmentSizes = array<i32: 1, 1, 1, 0>}
      : (tensor<?x8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return
}

// -----

// generic moe.gate with a negative operand segment
func.func @generic_negative_segment(%l: tensor<?x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'operandSegmentSizes' attribute cannot have negative elements}}
  %w, %ids = "moe.gate"(%l, %b) {routing = #moe.routing<softmax, top_k = 2>, operandSegmentSizes = array<i32: 3, -1, 0, 0>}
      : (tensor<?x8xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return
}

// -----

// generic moe.layer with an optional segment larger than 1
func.func @generic_optional_segment_two(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                        %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'moe.layer' op operand group starting at #2 requires 0 or 1 element, but found 2}}
  %y = "moe.layer"(%x, %wg, %wg, %wg, %w3, %w2)
      {routing = #moe.routing<softmax, top_k = 2>, activation = 0 : i32,
       operandSegmentSizes = array<i32: 1, 1, 2, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0>}
      : (tensor<?x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>,
         tensor<8x32x16xf32>, tensor<8x16x32xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// generic moe.layer with an activation out of range
func.func @generic_bad_activation(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                  %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'moe.layer' op attribute 'activation' failed to satisfy constraint}}
  %y = "moe.layer"(%x, %wg, %w3, %w2)
      {routing = #moe.routing<softmax, top_k = 2>, activation = 7 : i32,
       operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0>}
      : (tensor<?x16xf32>, tensor<8x16xf32>, tensor<8x32x16xf32>, tensor<8x16x32xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// generic moe.dispatch with a non-integer align
func.func @generic_string_align(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op attribute 'align' failed to satisfy constraint: 64-bit signless integer attribute}}
  %rows, %off, %map = "moe.dispatch"(%x, %ids) {align = "four"}
      : (tensor<?x16xf32>, tensor<?x2xi32>) -> (tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>)
  return
}

// -----

// generic moe.combine with a missing operand
func.func @generic_combine_two_operands(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>) {
  // expected-error @+1 {{'moe.combine' op expected 3 or more operands, but found 2}}
  %y = "moe.combine"(%rows, %w)
      : (tensor<?x16xf32>, tensor<?x2xf32>) -> tensor<?x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Dynamic E
//===----------------------------------------------------------------------===//

// dynamic E in moe.layer
func.func @layer_dynamic_e(%x: tensor<?x16xf32>, %wg: tensor<?x16xf32>,
                           %w3: tensor<?x32x16xf32>, %w2: tensor<?x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router' dimension 0 (E) must be static, got 'tensor<?x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<?x16xf32>)
      experts(up %w3 : tensor<?x32x16xf32>, down %w2 : tensor<?x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// dynamic E in moe.layer's expert weights (router static)
func.func @layer_dynamic_e_weights(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                   %w3: tensor<?x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_up' dimension 0 (E) must be static, got 'tensor<?x32x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<?x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// dynamic E in moe.gate
func.func @gate_dynamic_e(%l: tensor<?x?xf32>) {
  // expected-error @+1 {{'logits' dimension 1 (E) must be static, got 'tensor<?x?xf32>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x?xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// dynamic E in grouped moe.dispatch
func.func @dispatch_dynamic_e(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' dimension 0 (E+1) must be static, got 'tensor<?xi64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<?xi64>, tensor<?x2xi32>
  return
}

// -----

// dynamic E and C in capacity moe.dispatch
func.func @dispatch_dynamic_e_capacity(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>, %c: index) {
  // expected-error @+1 {{'rows' dimension 0 (E) must be static, got 'tensor<?x?x16xf32>'}}
  %rows, %counts, %map = moe.dispatch %x, %ids capacity(%c)
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x?x16xf32>, tensor<?xi64>, tensor<?x2xi32>
  return
}

// -----

// dynamic E in moe.expert_matmul
func.func @matmul_dynamic_e(%x: tensor<?x?x16xf32>, %w: tensor<?x32x16xf32>) {
  // expected-error @+1 {{'weight' dimension 0 (E) must be static, got 'tensor<?x32x16xf32>'}}
  %h = moe.expert_matmul %x, %w
      : tensor<?x?x16xf32>, tensor<?x32x16xf32> -> tensor<?x?x32xf32>
  return
}
