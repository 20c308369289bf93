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
