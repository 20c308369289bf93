// RUN: moe-opt %s --moe-export-entries --split-input-file --verify-diagnostics | FileCheck %s

// Public functions get the C interface and a manifest entry; weight bindings
// move from the arguments into the manifest. Private functions and
// declarations are not entry points.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%{{.*}}: tensor<?x16xf32> {bufferization.writable = false}, %{{.*}}: tensor<4x16xf32> {bufferization.writable = false}, %{{.*}}: tensor<4x8x16xbf16> {bufferization.writable = false}, %{{.*}}: tensor<4x16x8xbf16> {bufferization.writable = false}) -> tensor<?x16xf32> attributes {llvm.emit_c_interface}
// CHECK-NOT: moe.weight =
// CHECK: func.func private @helper
// CHECK-NOT: llvm.emit_c_interface
// CHECK: llvm.mlir.global external constant @moe_module_manifest
// CHECK-SAME: {\22entries\22:[{\22args\22:[
// CHECK-SAME: {\22dtype\22:\22f32\22,\22kind\22:\22input\22,\22shape\22:[-1,16]},
// CHECK-SAME: {\22dtype\22:\22f32\22,\22kind\22:\22weight\22,\22name\22:\22model.layers.0.mlp.gate.weight\22,\22shape\22:[4,16]},
// CHECK-SAME: {\22dtype\22:\22bf16\22,\22kind\22:\22weight\22,\22name\22:\22model.layers.0.mlp.experts.{e}.up_proj.weight\22,\22shape\22:[4,8,16]},
// CHECK-SAME: {\22dtype\22:\22bf16\22,\22kind\22:\22weight\22,\22name\22:\22model.layers.0.mlp.experts.{e}.down_proj.weight\22,\22shape\22:[4,16,8]}],
// CHECK-SAME: \22name\22:\22forward\22,\22results\22:[{\22dtype\22:\22f32\22,\22shape\22:[-1,16]}],
// CHECK-SAME: \22symbol\22:\22_mlir_ciface_forward\22,\22token_parallel\22:true},
// CHECK-SAME: {\22args\22:[],\22name\22:\22capacity\22,
// CHECK-SAME: \22token_parallel\22:false}
// CHECK-SAME: \22producer\22:\22moe-mlir {{[0-9]+\.[0-9]+\.[0-9]+}}\22,
// CHECK-SAME: \22version\22:1}\00")
func.func @forward(%x: tensor<?x16xf32>,
    %wg: tensor<4x16xf32> {moe.weight = "model.layers.0.mlp.gate.weight"},
    %up: tensor<4x8x16xbf16> {moe.weight = "model.layers.0.mlp.experts.{e}.up_proj.weight"},
    %down: tensor<4x16x8xbf16> {moe.weight = "model.layers.0.mlp.experts.{e}.down_proj.weight"})
    -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<4x16xf32>)
      experts(up %up : tensor<4x8x16xbf16>, down %down : tensor<4x16x8xbf16>) activation relu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// Capacity routing couples tokens: not token-parallel.
func.func @capacity() -> (tensor<3x1xf32>) {
  %logits = arith.constant dense<1.0> : tensor<3x4xf32>
  %w, %ids = moe.gate %logits routing <softmax, top_k = 1, capacity = fixed(1)>
      : tensor<3x4xf32> -> tensor<3x1xf32>, tensor<3x1xi32>
  return %w : tensor<3x1xf32>
}

func.func private @helper(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}

func.func private @external(tensor<2xf32>) -> tensor<2xf32>

// -----

// Any op outside the moe ops makes the entry conservatively not
// token-parallel; a rerun replaces the manifest.
// CHECK-LABEL: func.func @mixes_tokens
// CHECK: llvm.mlir.global external constant @moe_module_manifest
// CHECK-SAME: \22token_parallel\22:false
// CHECK-NOT: @moe_module_manifest
func.func @mixes_tokens(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %c = arith.constant 0 : index
  %d = tensor.dim %x, %c : tensor<?x4xf32>
  return %x : tensor<?x4xf32>
}
llvm.mlir.global external constant @moe_module_manifest("stale\00") {addr_space = 0 : i32}

// -----

// Views of weights (a slice and transpose of a fused tensor) keep an entry
// token-parallel; the same ops on the tokens do not.
// CHECK-LABEL: func.func @weight_views
// CHECK: llvm.mlir.global external constant @moe_module_manifest
// CHECK-SAME: \22name\22:\22weight_views\22,{{.*}}\22token_parallel\22:true
// CHECK-SAME: \22name\22:\22token_views\22,{{.*}}\22token_parallel\22:false
func.func @weight_views(%x: tensor<?x16xf32>,
    %wg: tensor<4x16xf32> {moe.weight = "gate"},
    %gu: tensor<4x16x16xf32> {moe.weight = "gate_up"},
    %down: tensor<4x8x16xf32> {moe.weight = "down"})
    -> tensor<?x16xf32> {
  %s = tensor.extract_slice %gu[0, 0, 1] [4, 16, 8] [1, 1, 2] : tensor<4x16x16xf32> to tensor<4x16x8xf32>
  %e = tensor.empty() : tensor<4x8x16xf32>
  %up = linalg.transpose ins(%s : tensor<4x16x8xf32>) outs(%e : tensor<4x8x16xf32>) permutation = [0, 2, 1]
  %de = tensor.empty() : tensor<4x16x8xf32>
  %d = linalg.transpose ins(%down : tensor<4x8x16xf32>) outs(%de : tensor<4x16x8xf32>) permutation = [0, 2, 1]
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<4x16xf32>)
      experts(up %up : tensor<4x8x16xf32>, down %d : tensor<4x16x8xf32>) activation relu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

func.func @token_views(%x: tensor<8x16xf32>,
    %wg: tensor<4x16xf32> {moe.weight = "gate"},
    %up: tensor<4x8x16xf32> {moe.weight = "up"},
    %down: tensor<4x16x8xf32> {moe.weight = "down"})
    -> tensor<4x16xf32> {
  %s = tensor.extract_slice %x[4, 0] [4, 16] [1, 1] : tensor<8x16xf32> to tensor<4x16xf32>
  %y = moe.layer %s : tensor<4x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<4x16xf32>)
      experts(up %up : tensor<4x8x16xf32>, down %down : tensor<4x16x8xf32>) activation relu
      -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// expected-error @+1 {{entry point argument 0 must be a ranked tensor of f32, bf16, f16, i8, i32, i64 or f8E4M3FN, got 'index'}}
func.func @scalar_argument(%n: index) -> tensor<?x4xf32> {
  %e = tensor.empty(%n) : tensor<?x4xf32>
  return %e : tensor<?x4xf32>
}

// -----

// expected-error @+1 {{entry point result 0 must be a ranked tensor of f32, bf16, f16, i8, i32, i64 or f8E4M3FN, got 'tensor<4xf64>'}}
func.func @f64_result(%x: tensor<4xf32>) -> tensor<4xf64> {
  %y = arith.extf %x : tensor<4xf32> to tensor<4xf64>
  return %y : tensor<4xf64>
}
