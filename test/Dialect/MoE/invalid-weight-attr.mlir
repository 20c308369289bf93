// RUN: moe-opt %s --split-input-file --verify-diagnostics

// One case per rule of the `moe.weight` argument attribute.

// expected-error @+1 {{'moe.weight' of argument 0 must be a non-empty string}}
func.func @not_a_string(%w: tensor<4xf32> {moe.weight = 3 : i64}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight' of argument 0 must be a non-empty string}}
func.func @empty_name(%w: tensor<4xf32> {moe.weight = ""}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight' of argument 0 has more than one '{e}'}}
func.func @two_placeholders(%w: tensor<4x2xf32> {moe.weight = "a.{e}.b.{e}"}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight' argument 0 must be a statically shaped tensor, got 'tensor<?x4xf32>'}}
func.func @dynamic_weight(%w: tensor<?x4xf32> {moe.weight = "w"}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight' argument 0 stacks per-expert tensors ('{e}') and needs rank >= 1, got 'tensor<f32>'}}
func.func @stacked_scalar(%w: tensor<f32> {moe.weight = "experts.{e}.scale"}) {
  return
}

// -----

// expected-error @+1 {{unknown moe argument attribute 'moe.wieght'}}
func.func @misspelled(%w: tensor<4xf32> {moe.wieght = "w"}) {
  return
}

// -----

// One case per rule of the `moe.packing` argument attribute.

// expected-error @+1 {{'moe.packing' of argument 0 must be {function = @symbol, shape = array<i64: ...>}}}
func.func @packing_not_a_dictionary(%w: tensor<2x1x4x8xf32> {moe.weight = "w.{e}", moe.packing = @f}) {
  return
}

// -----

// expected-error @+1 {{'moe.packing' of argument 0 must be {function = @symbol, shape = array<i64: ...>}}}
func.func @packing_extra_key(%w: tensor<2x1x4x8xf32> {moe.weight = "w.{e}", moe.packing = {function = @f, shape = array<i64: 2, 8, 4>, other = 1}}) {
  return
}

// -----

// expected-error @+1 {{'moe.packing' of argument 0 needs a static shape}}
func.func @packing_negative_shape(%w: tensor<2x1x4x8xf32> {moe.weight = "w.{e}", moe.packing = {function = @f, shape = array<i64: 2, -1, 4>}}) {
  return
}

// -----

// expected-error @+1 {{'moe.packing' argument 0 needs a 'moe.weight' binding}}
func.func @packing_without_weight(%w: tensor<2x1x4x8xf32> {moe.packing = {function = @f, shape = array<i64: 2, 8, 4>}}) {
  return
}

// -----

// The rules of `moe.weight_format`.
// expected-error @+1 {{'moe.weight_format' of argument 0 must be "mxfp4" or "e8m0"}}
func.func @unknown_format(%w: tensor<4x32xbf16> {moe.weight = "w", moe.weight_format = "nvfp4"}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight_format' argument 0 needs a 'moe.weight' binding of one tensor (no '{e}')}}
func.func @format_of_a_stack(%w: tensor<2x4x32xbf16> {moe.weight = "e.{e}", moe.weight_format = "mxfp4"}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight_format' argument 0 must be bf16 [..., N, K] with K a multiple of 32, got 'tensor<4x48xbf16>'}}
func.func @format_depth(%w: tensor<4x48xbf16> {moe.weight = "w", moe.weight_format = "mxfp4"}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight_format' "e8m0" argument 0 must have f32 elements, got 'tensor<4x2xbf16>'}}
func.func @e8m0_not_f32(%s: tensor<4x2xbf16> {moe.weight = "s", moe.weight_format = "e8m0"}) {
  return
}

// -----

// expected-error @+1 {{'moe.weight_format' argument 0 needs a 'moe.weight' binding of one tensor (no '{e}')}}
func.func @e8m0_of_a_stack(%s: tensor<2x4x2xf32> {moe.weight = "s.{e}", moe.weight_format = "e8m0"}) {
  return
}

// -----

// Well-formed ones, also once packed (the checkpoint shape is the
// packing's): MXFP4 decoded to bf16, e8m0 scales (any shape).
func.func @mxfp4(%w: tensor<4x64xbf16> {moe.weight = "w", moe.weight_format = "mxfp4"},
                 %p: tensor<1x1x32x16x2xbf16> {moe.weight = "p", moe.weight_format = "mxfp4",
                     moe.packing = {function = @f, shape = array<i64: 1, 16, 64>}},
                 %s: tensor<4x2xf32> {moe.weight = "s", moe.weight_format = "e8m0"},
                 %ps: tensor<4x1x2x16xf32> {moe.weight = "ps", moe.weight_format = "e8m0",
                     moe.packing = {function = @f, shape = array<i64: 4, 16, 2>}}) {
  return
}
func.func private @f()
