// RUN: moe-opt %s -split-input-file -verify-diagnostics

// Verifier diagnostics of the moe ops: one case per rule, each named by the
// op and the constraint id (c1, c2, ...) of its ODS description.

//===----------------------------------------------------------------------===//
// moe.layer
//===----------------------------------------------------------------------===//

// moe.layer c1: input must be rank 2 [T, H]
func.func @layer_input_rank(%x: tensor<16xf32>, %wg: tensor<8x16xf32>,
                            %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{'moe.layer' op 'input' must have shape [T, H] (rank 2), got 'tensor<16xf32>'}}
  %y = moe.layer %x : tensor<16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<16xf32>
  return %y : tensor<16xf32>
}

// -----

// moe.layer c1: hidden size H of the input must be at least 1
func.func @layer_input_h_zero(%x: tensor<?x0xf32>, %wg: tensor<8x0xf32>,
                              %w3: tensor<8x32x0xf32>, %w2: tensor<8x0x32xf32>) -> tensor<?x0xf32> {
  // expected-error @+1 {{'input' dimension 1 (H) must be at least 1, got 0}}
  %y = moe.layer %x : tensor<?x0xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x0xf32>)
      experts(up %w3 : tensor<8x32x0xf32>, down %w2 : tensor<8x0x32xf32>) activation silu
      -> tensor<?x0xf32>
  return %y : tensor<?x0xf32>
}

// -----

// moe.layer c1: input must be a ranked tensor of floats (ODS type constraint)
func.func @layer_input_int(%x: tensor<?x16xi32>, %wg: tensor<8x16xf32>,
                           %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xi32> {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<?x16xi32>'}}
  %y = moe.layer %x : tensor<?x16xi32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xi32>
  return %y : tensor<?x16xi32>
}

// -----

// moe.layer c2: router must be rank 2 [E, H]
func.func @layer_router_rank(%x: tensor<?x16xf32>, %wg: tensor<2x8x16xf32>,
                             %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router' must have shape [E, H] (rank 2), got 'tensor<2x8x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<2x8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c2: router H must match the input H
func.func @layer_router_h(%x: tensor<?x16xf32>, %wg: tensor<8x12xf32>,
                          %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router' dimension 1 (H) is 12, expected 16 from input}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x12xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c2: the number of experts E (router dimension 0) must be static
func.func @layer_router_dynamic_e(%x: tensor<?x16xf32>, %wg: tensor<?x16xf32>,
                                  %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router' dimension 0 (E) must be static, got 'tensor<?x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<?x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c2: E >= 1 (router tensor<0x16xf32>)
func.func @layer_router_zero_e(%x: tensor<?x16xf32>, %wg: tensor<0x16xf32>,
                               %w3: tensor<0x32x16xf32>, %w2: tensor<0x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router' dimension 0 (E) must be at least 1, got 0}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 1>
      router(%wg : tensor<0x16xf32>)
      experts(up %w3 : tensor<0x32x16xf32>, down %w2 : tensor<0x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c2: E <= 2^31 - 1 (expert ids are i32)
func.func @layer_router_too_many_e(%x: tensor<?x16xf32>, %wg: tensor<2147483648x16xf32>,
                                   %w3: tensor<2147483648x32x16xf32>,
                                   %w2: tensor<2147483648x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{number of experts must be at most 2147483647 (expert ids are i32), got 2147483648}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<2147483648x16xf32>)
      experts(up %w3 : tensor<2147483648x32x16xf32>, down %w2 : tensor<2147483648x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: noise_router must be [E, H]
func.func @layer_noise_router_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %wn: tensor<4x16xf32>,
                                    %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'noise_router' dimension 0 (E) is 4, expected 8 from router}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, noisy>
      router(%wg : tensor<8x16xf32>)
      noise_router(%wn : tensor<4x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: score_bias must be [E]
func.func @layer_score_bias_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %b: tensor<4xf32>,
                                  %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'score_bias' dimension 0 (E) is 4, expected 8 from router}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 2, selection_bias>
      router(%wg : tensor<8x16xf32>)
      score_bias(%b : tensor<4xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: score_bias must be f32 (ODS type constraint)
func.func @layer_score_bias_bf16(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %b: tensor<8xbf16>,
                                 %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{operand #2 must be ranked tensor of 32-bit float values, but got 'tensor<8xbf16>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 2, selection_bias>
      router(%wg : tensor<8x16xf32>)
      score_bias(%b : tensor<8xbf16>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c14: router_bias is [E]
func.func @layer_router_bias_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %rb: tensor<4xf32>,
                                   %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'router_bias' dimension 0 (E) is 4, expected 8 from router}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      router_bias(%rb : tensor<4xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c15: zero_experts is positive
func.func @layer_zero_experts_zero(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                   %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'zero_experts' must be positive, got 0}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      zero_experts 0
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: with zero experts, the experts are the router's rows less them
func.func @layer_zero_experts_rows(%x: tensor<?x16xf32>, %wg: tensor<10x16xf32>,
                                   %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_up' dimension 0 (E) is 8, expected 7 from router rows less zero_experts}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<10x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      zero_experts 3
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c2: the router has rows for experts beside the zero experts
func.func @layer_only_zero_experts(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                   %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{the router's 8 rows leave no expert beside 'zero_experts' = 8}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      zero_experts 8
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c13: clamped_swiglu needs gated experts
func.func @layer_clamped_swiglu_ungated(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                        %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'clamped_swiglu' needs gated experts}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>)
      activation clamped_swiglu swiglu_alpha 1.702 swiglu_limit 7.0
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c13: clamped_swiglu needs swiglu_alpha and swiglu_limit
func.func @layer_clamped_swiglu_no_limit(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %w1: tensor<8x32x16xf32>,
                                         %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'clamped_swiglu' needs 'swiglu_alpha' and 'swiglu_limit'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>)
      activation clamped_swiglu swiglu_alpha 1.702
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c13: swiglu_limit is positive
func.func @layer_clamped_swiglu_limit(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %w1: tensor<8x32x16xf32>,
                                      %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'swiglu_limit' must be positive, got 0}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>)
      activation clamped_swiglu swiglu_alpha 1.702 swiglu_limit 0.0
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c13: swiglu_alpha and swiglu_limit go with clamped_swiglu only
func.func @layer_silu_with_limit(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %w1: tensor<8x32x16xf32>,
                                 %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'swiglu_alpha' and 'swiglu_limit' go with activation 'clamped_swiglu' only}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>)
      activation silu swiglu_limit 7.0
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: noise must be [T, E] with the input's T
func.func @layer_noise_t(%x: tensor<4x16xf32>, %wg: tensor<8x16xf32>, %wn: tensor<8x16xf32>,
                         %n: tensor<5x8xf32>,
                         %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'noise' dimension 0 (T) is 5, expected 4 from input}}
  %y = moe.layer %x : tensor<4x16xf32>
      routing <softmax, top_k = 2, noisy>
      router(%wg : tensor<8x16xf32>)
      noise_router(%wn : tensor<8x16xf32>)
      noise(%n : tensor<5x8xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// moe.layer c3: noise must be [T, E] with the router's E
func.func @layer_noise_e(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %wn: tensor<8x16xf32>,
                         %n: tensor<?x6xf32>,
                         %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'noise' dimension 1 (E) is 6, expected 8 from router}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, noisy>
      router(%wg : tensor<8x16xf32>)
      noise_router(%wn : tensor<8x16xf32>)
      noise(%n : tensor<?x6xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: uniform must be [T]
func.func @layer_uniform_rank(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %u: tensor<?x2xf32>,
                              %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'uniform' must have shape [T] (rank 1), got 'tensor<?x2xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, second = random>
      router(%wg : tensor<8x16xf32>)
      uniform(%u : tensor<?x2xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: expert gate projection must be [E, I, H]
func.func @layer_expert_gate_h(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %w1: tensor<8x32x8xf32>,
                               %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_gate' dimension 2 (H) is 8, expected 16 from input}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x8xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: expert up projection must have the gate projection's I
func.func @layer_expert_up_i(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %w1: tensor<8x32x16xf32>,
                             %w3: tensor<8x64x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_up' dimension 1 (I) is 64, expected 32 from expert_gate}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x64x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: expert up projection must have the router's E
func.func @layer_expert_up_e(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                             %w3: tensor<4x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_up' dimension 0 (E) is 4, expected 8 from router}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<4x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: intermediate size I must be at least 1
func.func @layer_expert_up_i_zero(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                  %w3: tensor<8x0x16xf32>, %w2: tensor<8x16x0xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_up' dimension 1 (I) must be at least 1, got 0}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x0x16xf32>, down %w2 : tensor<8x16x0xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: expert down projection is [E, H, I] (checkpoint layout [out, in])
func.func @layer_expert_down_layout(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                    %w3: tensor<8x32x16xf32>, %w2: tensor<8x32x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_down' dimension 1 (H) is 32, expected 16 from input}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x32x16xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: expert down projection must be rank 3
func.func @layer_expert_down_rank(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                  %w3: tensor<8x32x16xf32>, %w2: tensor<16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_down' must have shape [E, H, I] (rank 3), got 'tensor<16x32xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: gate_bias must be [E, I]
func.func @layer_gate_bias_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %w1: tensor<8x32x16xf32>,
                                 %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                 %b1: tensor<8x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gate_bias' dimension 1 (I) is 16, expected 32 from expert_gate}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu
      gate_bias(%b1 : tensor<8x16xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: up_bias must be [E, I]
func.func @layer_up_bias_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                               %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                               %b3: tensor<32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'up_bias' must have shape [E, I] (rank 2), got 'tensor<32xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      up_bias(%b3 : tensor<32xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: down_bias must be [E, H]
func.func @layer_down_bias_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                 %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                 %b2: tensor<8x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'down_bias' dimension 1 (H) is 32, expected 16 from input}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      down_bias(%b2 : tensor<8x32xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: gate_bias needs a gated expert (a 'gate' projection)
func.func @layer_gate_bias_without_gate(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                        %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                        %b1: tensor<8x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gate_bias' given but the experts have no 'gate' projection}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      gate_bias(%b1 : tensor<8x32xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: shared_gate must be [S, H]
func.func @layer_shared_gate_h(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                               %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                               %sg: tensor<64x8xf32>, %su: tensor<64x16xf32>,
                               %sd: tensor<16x64xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_gate' dimension 1 (H) is 8, expected 16 from input}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_gate(%sg : tensor<64x8xf32>) shared_up(%su : tensor<64x16xf32>)
      shared_down(%sd : tensor<16x64xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: shared_up must have the shared_gate's S
func.func @layer_shared_up_s(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                             %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                             %sg: tensor<64x16xf32>, %su: tensor<48x16xf32>,
                             %sd: tensor<16x64xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_up' dimension 0 (S) is 48, expected 64 from shared_gate}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_gate(%sg : tensor<64x16xf32>) shared_up(%su : tensor<48x16xf32>)
      shared_down(%sd : tensor<16x64xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: shared expert size S must be at least 1
func.func @layer_shared_up_s_zero(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                  %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                  %su: tensor<0x16xf32>, %sd: tensor<16x0xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_up' dimension 0 (S) must be at least 1, got 0}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_up(%su : tensor<0x16xf32>) shared_down(%sd : tensor<16x0xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: shared_down must be [H, S]
func.func @layer_shared_down_layout(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                    %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                    %su: tensor<64x16xf32>, %sd: tensor<64x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_down' dimension 0 (H) is 64, expected 16 from input}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_up(%su : tensor<64x16xf32>) shared_down(%sd : tensor<64x16xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: shared_expert_gate must be [1, H]
func.func @layer_shared_expert_gate_rows(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                         %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                         %su: tensor<64x16xf32>, %sd: tensor<16x64xf32>,
                                         %seg: tensor<2x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_expert_gate' dimension 0 must be 1, got 2 in 'tensor<2x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_up(%su : tensor<64x16xf32>) shared_down(%sd : tensor<16x64xf32>)
      shared_expert_gate(%seg : tensor<2x16xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: the fixed size 1 of shared_expert_gate must be static
func.func @layer_shared_expert_gate_dynamic(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                            %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                            %su: tensor<64x16xf32>, %sd: tensor<16x64xf32>,
                                            %seg: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_expert_gate' dimension 0 (1) must be static, got 'tensor<?x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_up(%su : tensor<64x16xf32>) shared_down(%sd : tensor<16x64xf32>)
      shared_expert_gate(%seg : tensor<?x16xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c4: routing top_k must not exceed E
func.func @layer_topk_exceeds_e(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
                                %w3: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{routing top_k (6) exceeds the number of experts (4)}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 6>
      router(%wg : tensor<4x16xf32>)
      experts(up %w3 : tensor<4x32x16xf32>, down %w2 : tensor<4x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c4: routing groups must divide E
func.func @layer_groups_divide_e(%x: tensor<?x16xf32>, %wg: tensor<6x16xf32>,
                                 %w3: tensor<6x32x16xf32>, %w2: tensor<6x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{routing groups (4) must divide the number of experts (6)}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, groups = 4, topk_groups = 2, group_score = max>
      router(%wg : tensor<6x16xf32>)
      experts(up %w3 : tensor<6x32x16xf32>, down %w2 : tensor<6x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c5: score_bias given but routing has no selection_bias
func.func @layer_score_bias_unused(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %b: tensor<8xf32>,
                                   %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'score_bias' given but routing selection_bias is not set}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      score_bias(%b : tensor<8xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c5: routing selection_bias requires score_bias
func.func @layer_score_bias_missing(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                    %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'score_bias' required by routing selection_bias}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 2, selection_bias>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c6: noise_router given but routing is not noisy
func.func @layer_noise_router_unused(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %wn: tensor<8x16xf32>,
                                     %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'noise_router' given but routing noisy is not set}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      noise_router(%wn : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c6: routing noisy requires noise_router
func.func @layer_noise_router_missing(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                      %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'noise_router' required by routing noisy}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, noisy>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c6: noise only with routing noisy
func.func @layer_noise_unused(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %n: tensor<?x8xf32>,
                              %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'noise' given but routing noisy is not set}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      noise(%n : tensor<?x8xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c7: uniform given but routing second is not random
func.func @layer_uniform_unused(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>, %u: tensor<?xf32>,
                                %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'uniform' given but routing second = random is not set}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      uniform(%u : tensor<?xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c7: routing second = random requires uniform
func.func @layer_uniform_missing(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                 %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'uniform' required by routing second = random}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, capacity = factor(2.0, ceil), second = random>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c8: shared expert needs shared_down with shared_up
func.func @layer_shared_up_only(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                %su: tensor<64x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{shared expert needs both 'shared_up' and 'shared_down'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_up(%su : tensor<64x16xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c8: shared expert needs shared_up with shared_down
func.func @layer_shared_down_only(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                  %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                  %sd: tensor<16x64xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{shared expert needs both 'shared_up' and 'shared_down'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_down(%sd : tensor<16x64xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c8: shared_gate without a shared expert
func.func @layer_shared_gate_only(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                  %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                  %sg: tensor<64x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_gate' and 'shared_expert_gate' need a shared expert ('shared_up', 'shared_down')}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_gate(%sg : tensor<64x16xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c8: shared_expert_gate without a shared expert
func.func @layer_shared_expert_gate_only(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                         %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>,
                                         %seg: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'shared_gate' and 'shared_expert_gate' need a shared expert ('shared_up', 'shared_down')}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      shared_expert_gate(%seg : tensor<1x16xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c9: result must have the input type (element type)
func.func @layer_result_element_type(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                     %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xbf16> {
  // expected-error @+1 {{result must have the input type 'tensor<?x16xf32>', got 'tensor<?x16xbf16>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

// moe.layer c9: result must have the input type (shape)
func.func @layer_result_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                              %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{result must have the input type 'tensor<?x16xf32>', got 'tensor<4x16xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// moe.layer c11: block scales need weight_block
func.func @layer_scale_without_block(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xf8E4M3FN>, %w2: tensor<8x16x32xf8E4M3FN>, %su: tensor<8x1x1xf32>, %sd: tensor<8x1x1xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{block scales and 'weight_block' come together}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf8E4M3FN>, down %w2 : tensor<8x16x32xf8E4M3FN>) activation silu
      up_scale(%su : tensor<8x1x1xf32>) down_scale(%sd : tensor<8x1x1xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c11: weight_block needs block scales
func.func @layer_block_without_scale(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{block scales and 'weight_block' come together}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      weight_block [128, 128]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c11: weight_block is two sizes of at least 1
func.func @layer_block_sizes(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xf8E4M3FN>, %w2: tensor<8x16x32xf8E4M3FN>, %su: tensor<8x1x1xf32>, %sd: tensor<8x1x1xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'weight_block' must be two sizes of at least 1 (rows and columns of a weight per scale)}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf8E4M3FN>, down %w2 : tensor<8x16x32xf8E4M3FN>) activation silu
      up_scale(%su : tensor<8x1x1xf32>) down_scale(%sd : tensor<8x1x1xf32>) weight_block [128]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c11: a scale needs its weight
func.func @layer_scale_without_weight(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xf8E4M3FN>, %w2: tensor<8x16x32xf8E4M3FN>, %su: tensor<8x1x1xf32>, %sd: tensor<8x1x1xf32>, %sg: tensor<8x1x1xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gate_scale' given without 'expert_gate'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf8E4M3FN>, down %w2 : tensor<8x16x32xf8E4M3FN>) activation silu
      gate_scale(%sg : tensor<8x1x1xf32>) up_scale(%su : tensor<8x1x1xf32>) down_scale(%sd : tensor<8x1x1xf32>) weight_block [128, 128]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c11: a scale has its weight in blocks
func.func @layer_scale_shape(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xf8E4M3FN>, %w2: tensor<8x16x32xf8E4M3FN>, %su: tensor<8x1x1xf32>, %sd: tensor<8x1x2xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'up_scale' must be 'tensor<8x2x1xf32>' ('expert_up' in blocks of 16 x 16), got 'tensor<8x1x1xf32>'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf8E4M3FN>, down %w2 : tensor<8x16x32xf8E4M3FN>) activation silu
      up_scale(%su : tensor<8x1x1xf32>) down_scale(%sd : tensor<8x1x2xf32>) weight_block [16, 16]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c12: an e2m1-pair weight has its scale
func.func @layer_e2m1_without_scale(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x8xi8>, %w2: tensor<8x16x16xi8>, %su: tensor<8x32x1xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{the e2m1-pair (i8) 'expert_down' needs its block scale 'down_scale'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x8xi8>, down %w2 : tensor<8x16x16xi8>) activation silu
      up_scale(%su : tensor<8x32x1xf32>) weight_block [1, 32]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c3: e2m1 pairs hold their depth in ceil(depth / 2) bytes
func.func @layer_e2m1_depth(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xi8>, %w2: tensor<8x16x16xi8>, %su: tensor<8x32x1xf32>,
    %sd: tensor<8x16x1xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'expert_up' dimension 2 (ceil(H/2)) is 16, expected 8 from H / 2 rounded up (e2m1 pairs)}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xi8>, down %w2 : tensor<8x16x16xi8>) activation silu
      up_scale(%su : tensor<8x32x1xf32>) down_scale(%sd : tensor<8x16x1xf32>)
      weight_block [1, 32]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c11: an e2m1-pair weight's scales block its logical depth
func.func @layer_e2m1_scale_shape(%x: tensor<?x64xf32>, %wg: tensor<8x64xf32>,
    %w3: tensor<8x32x32xi8>, %w2: tensor<8x64x16xi8>, %su: tensor<8x32x1xf32>,
    %sd: tensor<8x64x1xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{'up_scale' must be 'tensor<8x32x2xf32>' ('expert_up' in blocks of 1 x 32), got 'tensor<8x32x1xf32>'}}
  %y = moe.layer %x : tensor<?x64xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x64xf32>)
      experts(up %w3 : tensor<8x32x32xi8>, down %w2 : tensor<8x64x16xi8>) activation silu
      up_scale(%su : tensor<8x32x1xf32>) down_scale(%sd : tensor<8x64x1xf32>)
      weight_block [1, 32]
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// moe.layer c12: an e2m1-pair weight is scaled in blocks of whole pairs
func.func @layer_e2m1_odd_block(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x8xi8>, %w2: tensor<8x16x16xi8>, %su: tensor<8x32x6xf32>,
    %sd: tensor<8x16x11xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{the e2m1-pair (i8) 'expert_up' needs an even block depth, got 3}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x8xi8>, down %w2 : tensor<8x16x16xi8>) activation silu
      up_scale(%su : tensor<8x32x6xf32>) down_scale(%sd : tensor<8x16x11xf32>)
      weight_block [1, 3]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c12: an f8E4M3FN weight has its scale
func.func @layer_fp8_without_scale(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xf8E4M3FN>, %w2: tensor<8x16x32xf8E4M3FN>, %su: tensor<8x1x1xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{the f8E4M3FN 'expert_down' needs its block scale 'down_scale'}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf8E4M3FN>, down %w2 : tensor<8x16x32xf8E4M3FN>) activation silu
      up_scale(%su : tensor<8x1x1xf32>) weight_block [128, 128]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c10: one result per requested statistic (too few)
func.func @layer_stats_count(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                             %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{requests 2 statistics but has 1 statistics results}}
  %y, %s = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      statistics [tokens_per_expert, z_loss]
      -> tensor<?x16xf32>, tensor<8xi64>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c10: statistics results without requested statistics
func.func @layer_stats_unrequested(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                                   %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{requests 0 statistics but has 1 statistics results}}
  %y, %s = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>, tensor<f32>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c10: tokens_per_expert must be tensor<Exi64>
func.func @layer_stats_type(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                            %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{statistic 'tokens_per_expert' must be 'tensor<8xi64>', got 'tensor<4xi64>'}}
  %y, %s = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      statistics [tokens_per_expert]
      -> tensor<?x16xf32>, tensor<4xi64>
  return %y : tensor<?x16xf32>
}

// -----

// moe.layer c10: no statistic requested twice
func.func @layer_stats_twice(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                             %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{statistic 'z_loss' requested twice}}
  %y, %s0, %s1 = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>) activation silu
      statistics [z_loss, z_loss]
      -> tensor<?x16xf32>, tensor<f32>, tensor<f32>
  return %y : tensor<?x16xf32>
}

// -----

//===----------------------------------------------------------------------===//
// moe.gate
//===----------------------------------------------------------------------===//

// moe.gate c1: logits must be rank 2 [T, E]
func.func @gate_logits_rank(%l: tensor<8xf32>) {
  // expected-error @+1 {{'logits' must have shape [T, E] (rank 2), got 'tensor<8xf32>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c1: logits must be f32 (ODS type constraint)
func.func @gate_logits_bf16(%l: tensor<?x8xbf16>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float values, but got 'tensor<?x8xbf16>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x8xbf16> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c1: the number of experts E must be static
func.func @gate_logits_dynamic_e(%l: tensor<?x?xf32>) {
  // expected-error @+1 {{'logits' dimension 1 (E) must be static, got 'tensor<?x?xf32>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x?xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c1: E >= 1 (logits tensor<?x0xf32>)
func.func @gate_logits_zero_e(%l: tensor<?x0xf32>) {
  // expected-error @+1 {{number of experts must be at least 1, got 0}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 1>
      : tensor<?x0xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  return
}

// -----

// moe.gate c1: E <= 2^31 - 1 (expert ids are i32)
func.func @gate_logits_too_many_e(%l: tensor<?x2147483648xf32>) {
  // expected-error @+1 {{number of experts must be at most 2147483647 (expert ids are i32), got 2147483648}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 1>
      : tensor<?x2147483648xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  return
}

// -----

// moe.gate c2: routing top_k must not exceed E (K > E)
func.func @gate_topk_exceeds_e(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing top_k (9) exceeds the number of experts (8)}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 9>
      : tensor<?x8xf32> -> tensor<?x9xf32>, tensor<?x9xi32>
  return
}

// -----

// moe.gate c2: routing groups must divide E
func.func @gate_groups_divide_e(%l: tensor<?x10xf32>) {
  // expected-error @+1 {{routing groups (4) must divide the number of experts (10)}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, groups = 4, topk_groups = 2>
      : tensor<?x10xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c2: routing groups must not exceed E
func.func @gate_groups_exceed_e(%l: tensor<?x4xf32>) {
  // expected-error @+1 {{routing groups (8) must divide the number of experts (4)}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 1, groups = 8, topk_groups = 1, group_score = max>
      : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  return
}

// -----

// moe.gate c2: group_score = sum_top2 needs at least 2 experts per group
func.func @gate_sum_top2_per_group(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{routing group_score = sum_top2 needs at least 2 experts per group, got 1}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, groups = 8, topk_groups = 4, group_score = sum_top2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c2: topk_groups * experts per group must be at least top_k
func.func @gate_topk_groups_too_few(%l: tensor<?x16xf32>) {
  // expected-error @+1 {{routing keeps 1 groups of 4 experts, fewer than top_k = 6}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 6, groups = 4, topk_groups = 1>
      : tensor<?x16xf32> -> tensor<?x6xf32>, tensor<?x6xi32>
  return
}

// -----

// moe.gate c3: weights must be rank 2 [T, C]
func.func @gate_weights_rank(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'weights' must have shape [T, C] (rank 2), got 'tensor<?xf32>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c3: weights C must be top_k for token choice
func.func @gate_weights_c(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'weights' dimension 1 (C) is 3, expected 2 from routing top_k}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x3xf32>, tensor<?x3xi32>
  return
}

// -----

// moe.gate c3: weights C must be E for expert choice
func.func @gate_weights_c_expert_choice(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'weights' dimension 1 (C) is 2, expected 8 from the number of experts (expert choice)}}
  %w, %ids = moe.gate %l routing <softmax, expert_choice, capacity = factor(2.0, round)>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c3: weights C must be static
func.func @gate_weights_dynamic_c(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'weights' dimension 1 (C) must be static, got 'tensor<?x?xf32>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c3: weights must have the logits' T
func.func @gate_weights_t(%l: tensor<4x8xf32>) {
  // expected-error @+1 {{'weights' dimension 0 (T) is 5, expected 4 from logits}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<4x8xf32> -> tensor<5x2xf32>, tensor<4x2xi32>
  return
}

// -----

// moe.gate c3: ids must be [T, C]
func.func @gate_ids_c(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'ids' dimension 1 (C) is 1, expected 2 from routing top_k}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x1xi32>
  return
}

// -----

// moe.gate c3: ids must be i32 (ODS type constraint)
func.func @gate_ids_i64(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{result #1 must be ranked tensor of 32-bit signless integer values, but got 'tensor<?x2xi64>'}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi64>
  return
}

// -----

// moe.gate c4: bias must be [E]
func.func @gate_bias_shape(%l: tensor<?x8xf32>, %b: tensor<16xf32>) {
  // expected-error @+1 {{'bias' dimension 0 (E) is 16, expected 8 from logits}}
  %w, %ids = moe.gate %l bias(%b : tensor<16xf32>) routing <sigmoid, top_k = 2, selection_bias>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c4: bias present iff selection_bias (bias without selection_bias)
func.func @gate_bias_unused(%l: tensor<?x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'bias' given but routing selection_bias is not set}}
  %w, %ids = moe.gate %l bias(%b : tensor<8xf32>) routing <sigmoid, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c4: bias present iff selection_bias (selection_bias without bias)
func.func @gate_bias_missing(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'bias' required by routing selection_bias}}
  %w, %ids = moe.gate %l routing <sigmoid, top_k = 2, selection_bias>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c5: noise must be [T, E]
func.func @gate_noise_shape(%l: tensor<?x8xf32>, %n: tensor<?x4xf32>) {
  // expected-error @+1 {{'noise' dimension 1 (E) is 4, expected 8 from logits}}
  %w, %ids = moe.gate %l noise(%n : tensor<?x4xf32>) routing <softmax, top_k = 2, noisy>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c5: noise only with routing noisy
func.func @gate_noise_unused(%l: tensor<?x8xf32>, %n: tensor<?x8xf32>) {
  // expected-error @+1 {{'noise' given but routing noisy is not set}}
  %w, %ids = moe.gate %l noise(%n : tensor<?x8xf32>) routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c6: uniform must be [T]
func.func @gate_uniform_t(%l: tensor<4x8xf32>, %u: tensor<3xf32>) {
  // expected-error @+1 {{'uniform' dimension 0 (T) is 3, expected 4 from logits}}
  %w, %ids = moe.gate %l uniform(%u : tensor<3xf32>) routing <softmax, top_k = 2, second = random>
      : tensor<4x8xf32> -> tensor<4x2xf32>, tensor<4x2xi32>
  return
}

// -----

// moe.gate c6: uniform present iff second = random (uniform without random)
func.func @gate_uniform_unused(%l: tensor<?x8xf32>, %u: tensor<?xf32>) {
  // expected-error @+1 {{'uniform' given but routing second = random is not set}}
  %w, %ids = moe.gate %l uniform(%u : tensor<?xf32>) routing <softmax, top_k = 2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c6: uniform present iff second = random (random without uniform)
func.func @gate_uniform_missing(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'uniform' required by routing second = random}}
  %w, %ids = moe.gate %l routing <softmax, top_k = 2, second = random>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

// moe.gate c7: one result per requested statistic (too many results)
func.func @gate_stats_count(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{requests 1 statistics but has 2 statistics results}}
  %w, %ids, %s0, %s1 = moe.gate %l routing <softmax, top_k = 2>
      statistics [z_loss]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>, tensor<f32>
  return
}

// -----

// moe.gate c7: dropped_count must be tensor<i64>
func.func @gate_stats_dropped_type(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{statistic 'dropped_count' must be 'tensor<i64>', got 'tensor<f32>'}}
  %w, %ids, %s = moe.gate %l routing <softmax, top_k = 2, capacity = fixed(4)>
      statistics [dropped_count]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<f32>
  return
}

// -----

// moe.gate c7: load_balancing_loss must be tensor<f32>
func.func @gate_stats_loss_type(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{statistic 'load_balancing_loss' must be 'tensor<f32>', got 'tensor<8xf32>'}}
  %w, %ids, %s0, %s1 = moe.gate %l routing <softmax, top_k = 2>
      statistics [tokens_per_expert_before_drop, load_balancing_loss]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<8xi64>, tensor<8xf32>
  return
}

// -----

// moe.gate c7: no statistic requested twice
func.func @gate_stats_twice(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{statistic 'tokens_per_expert' requested twice}}
  %w, %ids, %s0, %s1, %s2 = moe.gate %l routing <softmax, top_k = 2>
      statistics [tokens_per_expert, importance_loss, tokens_per_expert]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<8xi64>, tensor<f32>, tensor<8xi64>
  return
}

// -----

// moe.gate c7: statistics results must be f32 or i64 tensors (ODS type constraint)
func.func @gate_stats_element_type(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{result #2 must be variadic of ranked tensor of 32-bit float or 64-bit signless integer values, but got 'tensor<8xi32>'}}
  %w, %ids, %s = moe.gate %l routing <softmax, top_k = 2>
      statistics [tokens_per_expert]
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<8xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// moe.dispatch
//===----------------------------------------------------------------------===//

// moe.dispatch c1: input must be rank 2 [T, H]
func.func @dispatch_input_rank(%x: tensor<2x?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'input' must have shape [T, H] (rank 2), got 'tensor<2x?x16xf32>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<2x?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c2: ids must be rank 2 [T, K]
func.func @dispatch_ids_rank(%x: tensor<?x16xf32>, %ids: tensor<?xi32>) {
  // expected-error @+1 {{'ids' must have shape [T, K] (rank 2), got 'tensor<?xi32>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c2: ids must have the input's T
func.func @dispatch_ids_t(%x: tensor<4x16xf32>, %ids: tensor<6x2xi32>) {
  // expected-error @+1 {{'ids' dimension 0 (T) is 6, expected 4 from input}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<4x16xf32>, tensor<6x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<6x2xi32>
  return
}

// -----

// moe.dispatch c2: K (ids dimension 1) must be at least 1
func.func @dispatch_ids_k_zero(%x: tensor<?x16xf32>, %ids: tensor<?x0xi32>) {
  // expected-error @+1 {{'ids' dimension 1 (K) must be at least 1, got 0}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x0xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x0xi32>
  return
}

// -----

// moe.dispatch c2: ids must be i32 (ODS type constraint)
func.func @dispatch_ids_i64(%x: tensor<?x16xf32>, %ids: tensor<?x2xi64>) {
  // expected-error @+1 {{operand #1 must be ranked tensor of 32-bit signless integer values, but got 'tensor<?x2xi64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi64> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c3: rows must be rank 2 (grouped) or 3 (capacity)
func.func @dispatch_rows_rank(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' must have shape [N, H] (grouped) or [E, C, H] (capacity), got 'tensor<?xf32>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c3: rows must have the input's element type
func.func @dispatch_rows_element_type(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' element type 'bf16' must match the input element type 'f32'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xbf16>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c3: grouped rows must have the input's H
func.func @dispatch_rows_h(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' dimension 1 (H) is 32, expected 16 from input}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c3: capacity rows must have the input's H
func.func @dispatch_slots_h(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' dimension 2 (H) is 8, expected 16 from input}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<8x4x8xf32>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: grouped expert_rows must be rank 1 [E+1]
func.func @dispatch_offsets_rank(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' must have shape [E+1] (rank 1), got 'tensor<9x1xi64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9x1xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: grouped expert_rows [E+1] must be static
func.func @dispatch_offsets_dynamic(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' dimension 0 (E+1) must be static, got 'tensor<?xi64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<?xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: grouped expert_rows [E+1] needs E >= 1
func.func @dispatch_offsets_zero_e(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' must be [E+1] offsets with E >= 1, got 'tensor<1xi64>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<1xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: grouped layout E <= 2^31 - 1 (expert ids are i32)
func.func @dispatch_offsets_too_many_e(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' implies more than 2147483647 experts (expert ids are i32)}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<2147483649xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: expert_rows must be i64 (ODS type constraint)
func.func @dispatch_offsets_i32(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{result #1 must be ranked tensor of 64-bit signless integer values, but got 'tensor<9xi32>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: capacity expert_rows must be [E] matching rows
func.func @dispatch_counts_e(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'expert_rows' dimension 0 (E) is 9, expected 8 from rows}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<8x4x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: capacity layout E must be static
func.func @dispatch_slots_dynamic_e(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' dimension 0 (E) must be static, got 'tensor<?x4x16xf32>'}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x4x16xf32>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: capacity layout needs E >= 1
func.func @dispatch_slots_zero_e(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' dimension 0 (E) must be at least 1, got 0}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<0x4x16xf32>, tensor<0xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c4: capacity layout E <= 2^31 - 1 (expert ids are i32)
func.func @dispatch_slots_too_many_e(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' has more than 2147483647 experts (expert ids are i32)}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<2147483648x4x16xf32>, tensor<2147483648xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c5: capacity operand required when the slot dimension is dynamic
func.func @dispatch_capacity_missing(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'capacity' operand required: the slot dimension of 'rows' is dynamic}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<8x?x16xf32>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c5: capacity operand not allowed with a static slot dimension
func.func @dispatch_capacity_static(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>, %c: index) {
  // expected-error @+1 {{'capacity' operand given but the slot dimension of 'rows' is static}}
  %rows, %counts, %map = moe.dispatch %x, %ids capacity(%c)
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<8x4x16xf32>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c5: capacity operand only in the capacity layout
func.func @dispatch_capacity_grouped(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>, %c: index) {
  // expected-error @+1 {{'capacity' operand applies to the [E, C, H] capacity layout only}}
  %rows, %off, %map = moe.dispatch %x, %ids capacity(%c)
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c6: align must be at least 1
func.func @dispatch_align_zero(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{align must be at least 1, got 0}}
  %rows, %off, %map = moe.dispatch %x, %ids align 0
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c6: align only in the grouped layout
func.func @dispatch_align_capacity(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{align applies to the grouped layout only}}
  %rows, %counts, %map = moe.dispatch %x, %ids align 4
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<8x4x16xf32>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.dispatch c7: row_map must be rank 2 [T, K]
func.func @dispatch_row_map_rank(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'row_map' must have shape [T, K] (rank 2), got 'tensor<?xi32>'}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?xi32>
  return
}

// -----

// moe.dispatch c7: row_map must have the ids' K
func.func @dispatch_row_map_k(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'row_map' dimension 1 (K) is 4, expected 2 from ids}}
  %rows, %off, %map = moe.dispatch %x, %ids
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x4xi32>
  return
}

// -----

// moe.dispatch c7: row_map must have the input's T
func.func @dispatch_row_map_t(%x: tensor<4x16xf32>, %ids: tensor<4x2xi32>) {
  // expected-error @+1 {{'row_map' dimension 0 (T) is 8, expected 4 from input}}
  %rows, %counts, %map = moe.dispatch %x, %ids
      : tensor<4x16xf32>, tensor<4x2xi32> -> tensor<8x4x16xf32>, tensor<8xi64>, tensor<8x2xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// moe.routing_plan
//===----------------------------------------------------------------------===//

// moe.routing_plan c1: ids must be [T, K]
func.func @routing_plan_0(%ids: tensor<?xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'ids' must have shape [T, K] (rank 2), got 'tensor<?xi32>'}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.routing_plan c2: offsets must be [E+1]
func.func @routing_plan_1(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'offsets' must have shape [E+1] (rank 1), got 'tensor<9x1xi64>'}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9x1xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.routing_plan c2: E must be at least 1
func.func @routing_plan_2(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'offsets' must be [E+1] offsets with E >= 1, got 'tensor<1xi64>'}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<1xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.routing_plan c2: offsets must be static
func.func @routing_plan_3(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'offsets' dimension 0 (E+1) must be static}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<?xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.routing_plan c3: block_sizes must have as many blocks as block_experts
func.func @routing_plan_4(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'block_sizes' dimension 0 (B) is 8, expected 16 from block_experts}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<16xi32>, tensor<8xi32>, tensor<?xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.routing_plan c3: R = B * block_rows
func.func @routing_plan_5(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'row_sources' has 60 rows for 16 blocks of 4, expected B * block_rows}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<16xi32>, tensor<16xi32>, tensor<60xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.routing_plan c3: R is the bound for a static T
func.func @routing_plan_6(%ids: tensor<5x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'row_sources' has 40 rows, expected 64 for T*K = 10, E = 8, align 8}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(8)
      : tensor<5x2xi32> -> tensor<9xi64>, tensor<10xi32>, tensor<10xi32>, tensor<40xi32>, tensor<5x2xi32>
  return
}

// -----

// moe.routing_plan c3: B is the bound for a static T
func.func @routing_plan_7(%ids: tensor<5x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'block_experts' has 8 blocks, expected 16 for T*K = 10, E = 8, align 8}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(8)
      : tensor<5x2xi32> -> tensor<9xi64>, tensor<8xi32>, tensor<8xi32>, tensor<?xi32>, tensor<5x2xi32>
  return
}

// -----

// moe.routing_plan c3: the row bound must fit in int64
func.func @routing_plan_overflow(%ids: tensor<4611686018427387904x4xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op the row bound for T = 4611686018427387904, K = 4, E = 8, align 4 overflows int64}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<4611686018427387904x4xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<4611686018427387904x4xi32>
  return
}

// -----

// moe.routing_plan c4: row_map must be [T, K] like ids
func.func @routing_plan_8(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op 'row_map' dimension 1 (K) is 3, expected 2 from ids}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x3xi32>
  return
}

// -----

// moe.routing_plan c5: block_rows must be at least 1
func.func @routing_plan_9(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op block_rows must be at least 1, got 0}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(0) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  return
}

// -----

// moe.routing_plan c5: align must be a multiple of block_rows
func.func @routing_plan_10(%ids: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.routing_plan' op align must be a positive multiple of block_rows (4), got 6}}
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(6)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// moe.expert_matmul
//===----------------------------------------------------------------------===//

// moe.expert_matmul c1: input must be [R, K] or [E, C, K]
func.func @matmul_input_rank(%x: tensor<16xf32>, %w: tensor<8x32x16xf32>) {
  // expected-error @+1 {{'input' must have shape [R, K] (grouped) or [E, C, K] (capacity), got 'tensor<16xf32>'}}
  %h = moe.expert_matmul %x, %w
      : tensor<16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c2: weight must be rank 3 [E, N, K]
func.func @matmul_weight_rank(%x: tensor<?x16xf32>, %w: tensor<32x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'weight' must have shape [E, N, K] (rank 3), got 'tensor<32x16xf32>'}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c2: E must be static
func.func @matmul_weight_dynamic_e(%x: tensor<?x16xf32>, %w: tensor<?x32x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'weight' dimension 0 (E) must be static, got 'tensor<?x32x16xf32>'}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<?x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c2: E >= 1
func.func @matmul_weight_zero_e(%x: tensor<?x16xf32>, %w: tensor<0x32x16xf32>, %off: tensor<1xi64>) {
  // expected-error @+1 {{'weight' dimension 0 (E) must be at least 1, got 0}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<1xi64>)
      : tensor<?x16xf32>, tensor<0x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c2: E <= 2^31 - 1 (expert ids are i32)
func.func @matmul_weight_too_many_e(%x: tensor<2147483648x4x16xf32>, %w: tensor<2147483648x32x16xf32>) {
  // expected-error @+1 {{'weight' has 2147483648 experts, more than 2147483647 (expert ids are i32)}}
  %h = moe.expert_matmul %x, %w
      : tensor<2147483648x4x16xf32>, tensor<2147483648x32x16xf32> -> tensor<2147483648x4x32xf32>
  return
}

// -----

// moe.expert_matmul c2: output size N >= 1
func.func @matmul_weight_zero_n(%x: tensor<?x16xf32>, %w: tensor<8x0x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'weight' dimension 1 (N) must be at least 1, got 0}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x0x16xf32> -> tensor<?x0xf32>
  return
}

// -----

// moe.expert_matmul c2: weight K must match the input's K
func.func @matmul_input_k(%x: tensor<?x12xf32>, %w: tensor<8x32x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'input' dimension 1 (K) is 12, expected 16 from weight}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x12xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c3: offsets required for grouped rows
func.func @matmul_offsets_missing(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf32>) {
  // expected-error @+1 {{'offsets' required for grouped rows [R, K]}}
  %h = moe.expert_matmul %x, %w
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c3: offsets must be [E+1]
func.func @matmul_offsets_size(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf32>, %off: tensor<8xi64>) {
  // expected-error @+1 {{'offsets' dimension 0 (E+1) is 8, expected 9 from 'weight' (E + 1)}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<8xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c3: offsets [E+1] must be static
func.func @matmul_offsets_dynamic(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf32>, %off: tensor<?xi64>) {
  // expected-error @+1 {{'offsets' dimension 0 (E+1) must be static, got 'tensor<?xi64>'}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<?xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c3: offsets only for grouped rows
func.func @matmul_offsets_capacity(%x: tensor<8x4x16xf32>, %w: tensor<8x32x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'offsets' apply to grouped rows only, not to [E, C, K] capacity slots}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<8x4x16xf32>, tensor<8x32x16xf32> -> tensor<8x4x32xf32>
  return
}

// -----

// moe.expert_matmul c4: capacity input must have the weight's E
func.func @matmul_capacity_e(%x: tensor<4x4x16xf32>, %w: tensor<8x32x16xf32>) {
  // expected-error @+1 {{'input' dimension 0 (E) is 4, expected 8 from weight}}
  %h = moe.expert_matmul %x, %w
      : tensor<4x4x16xf32>, tensor<8x32x16xf32> -> tensor<4x4x32xf32>
  return
}

// -----

// moe.expert_matmul c5: bias must be [E, N]
func.func @matmul_bias_n(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf32>, %off: tensor<9xi64>,
                         %b: tensor<8x16xf32>) {
  // expected-error @+1 {{'bias' dimension 1 (N) is 16, expected 32 from weight}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>) bias(%b : tensor<8x16xf32>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c5: bias must be rank 2 [E, N]
func.func @matmul_bias_rank(%x: tensor<8x4x16xf32>, %w: tensor<8x32x16xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{'bias' must have shape [E, N] (rank 2), got 'tensor<32xf32>'}}
  %h = moe.expert_matmul %x, %w bias(%b : tensor<32xf32>)
      : tensor<8x4x16xf32>, tensor<8x32x16xf32> -> tensor<8x4x32xf32>
  return
}

// -----

// moe.expert_matmul c7: a scale needs its block
func.func @matmul_scale_without_block(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf8E4M3FN>,
                                      %off: tensor<9xi64>, %s: tensor<8x1x1xf32>) {
  // expected-error @+1 {{'scale' and 'block' come together}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>) scale(%s : tensor<8x1x1xf32>)
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c7: a block needs its scale
func.func @matmul_block_without_scale(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf32>,
                                      %off: tensor<9xi64>) {
  // expected-error @+1 {{'scale' and 'block' come together}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>) block [16, 16]
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c7: a block is two sizes of at least 1
func.func @matmul_block_sizes(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf8E4M3FN>,
                              %off: tensor<9xi64>, %s: tensor<8x1x1xf32>) {
  // expected-error @+1 {{'block' must be two sizes of at least 1 (rows and columns of the weight per scale)}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>) scale(%s : tensor<8x1x1xf32>) block [32, 0]
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c8: the scale is [E, ceil(N / BN), ceil(K / BK)]
func.func @matmul_scale_shape(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf8E4M3FN>,
                              %off: tensor<9xi64>, %s: tensor<8x2x2xf32>) {
  // expected-error @+1 {{'scale' dimension 1 (NB) is 2, expected 3 from 'weight' (ceil(N / BN))}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>) scale(%s : tensor<8x2x2xf32>) block [12, 8]
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c8: scales are f32
func.func @matmul_scale_type(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf8E4M3FN>,
                             %off: tensor<9xi64>, %s: tensor<8x1x1xbf16>) {
  // expected-error @+1 {{operand #3 must be ranked tensor of 32-bit float values, but got 'tensor<8x1x1xbf16>'}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>) scale(%s : tensor<8x1x1xbf16>) block [32, 16]
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c9: e2m1-pair weights are block-scaled
func.func @matmul_e2m1_without_scale(%x: tensor<?x16xf32>, %w: tensor<8x32x8xi8>,
                                     %off: tensor<9xi64>) {
  // expected-error @+1 {{an e2m1-pair (i8) 'weight' needs its block 'scale'}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x8xi8> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c2: e2m1 pairs hold K in ceil(K / 2) bytes
func.func @matmul_e2m1_depth(%x: tensor<?x16xf32>, %w: tensor<8x32x16xi8>,
                             %s: tensor<8x32x1xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'weight' of e2m1 pairs (i8) has 16 bytes of depth for K = 16, expected 8}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      scale(%s : tensor<8x32x1xf32>) block [1, 32]
      : tensor<?x16xf32>, tensor<8x32x16xi8> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c8: e2m1 pairs are scaled in blocks of whole pairs
func.func @matmul_e2m1_odd_block(%x: tensor<?x16xf32>, %w: tensor<8x32x8xi8>,
                                 %s: tensor<8x32x6xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{an e2m1-pair (i8) 'weight' needs an even block depth, got 3}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      scale(%s : tensor<8x32x6xf32>) block [1, 3]
      : tensor<?x16xf32>, tensor<8x32x8xi8> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c9: FP8 weights are block-scaled
func.func @matmul_fp8_without_scale(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf8E4M3FN>,
                                    %off: tensor<9xi64>) {
  // expected-error @+1 {{an f8E4M3FN 'weight' needs its block 'scale'}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c10: exact products go with unscaled weights
func.func @matmul_exact_scaled(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf8E4M3FN>,
                               %off: tensor<9xi64>, %s: tensor<8x1x1xf32>) {
  // expected-error @+1 {{'exact_products' goes with unscaled weights}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>) scale(%s : tensor<8x1x1xf32>) block [32, 16] exact_products
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c6: grouped result must be [R, N]
func.func @matmul_result_n(%x: tensor<?x16xf32>, %w: tensor<8x32x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'result' dimension 1 (N) is 16, expected 32 from weight}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x16xf32>
  return
}

// -----

// moe.expert_matmul c6: grouped result must have the input's R
func.func @matmul_result_r(%x: tensor<10x16xf32>, %w: tensor<8x32x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{'result' dimension 0 (R) is 12, expected 10 from input}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<10x16xf32>, tensor<8x32x16xf32> -> tensor<12x32xf32>
  return
}

// -----

// moe.expert_matmul c6: capacity result must be [E, C, N]
func.func @matmul_result_c(%x: tensor<8x4x16xf32>, %w: tensor<8x32x16xf32>) {
  // expected-error @+1 {{'result' dimension 1 (C) is 2, expected 4 from input}}
  %h = moe.expert_matmul %x, %w
      : tensor<8x4x16xf32>, tensor<8x32x16xf32> -> tensor<8x2x32xf32>
  return
}

// -----

// moe.expert_matmul c6: capacity result must be rank 3
func.func @matmul_result_rank(%x: tensor<8x4x16xf32>, %w: tensor<8x32x16xf32>) {
  // expected-error @+1 {{'result' must have shape [E, C, N] (rank 3), got 'tensor<?x32xf32>'}}
  %h = moe.expert_matmul %x, %w
      : tensor<8x4x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return
}

// -----

// moe.expert_matmul c6: result has the input's element type or f32
func.func @matmul_result_element_type(%x: tensor<?x16xf32>, %w: tensor<8x32x16xbf16>, %off: tensor<9xi64>) {
  // expected-error @+1 {{result element type 'bf16' must match the input element type 'f32'}}
  %h = moe.expert_matmul %x, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xbf16> -> tensor<?x32xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// moe.combine
//===----------------------------------------------------------------------===//

// moe.combine c1: rows must be [R, H] or [E, C, H]
func.func @combine_rows_rank(%rows: tensor<?xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' must have shape [R, H] (grouped) or [E, C, H] (capacity), got 'tensor<?xf32>'}}
  %y = moe.combine %rows, %w, %map
      : tensor<?xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c1: capacity rows need E >= 1
func.func @combine_slots_zero_e(%rows: tensor<0x4x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{'rows' dimension 0 (E) must be at least 1, got 0}}
  %y = moe.combine %rows, %w, %map
      : tensor<0x4x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c2: weights must be rank 2 [T, K]
func.func @combine_weights_rank(%rows: tensor<?x16xf32>, %w: tensor<?xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{'weights' must have shape [T, K] (rank 2), got 'tensor<?xf32>'}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<?xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c2: K (weights dimension 1) must be at least 1
func.func @combine_weights_k_zero(%rows: tensor<?x16xf32>, %w: tensor<?x0xf32>, %map: tensor<?x0xi32>) {
  // expected-error @+1 {{'weights' dimension 1 (K) must be at least 1, got 0}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<?x0xf32>, tensor<?x0xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c2: weights must be f32 (ODS type constraint)
func.func @combine_weights_bf16(%rows: tensor<?x16xf32>, %w: tensor<?x2xbf16>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{operand #1 must be ranked tensor of 32-bit float values, but got 'tensor<?x2xbf16>'}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<?x2xbf16>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c3: row_map must have the weights' K
func.func @combine_row_map_k(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x3xi32>) {
  // expected-error @+1 {{'row_map' dimension 1 (K) is 3, expected 2 from weights}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x3xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c3: row_map must have the weights' T
func.func @combine_row_map_t(%rows: tensor<?x16xf32>, %w: tensor<4x2xf32>, %map: tensor<5x2xi32>) {
  // expected-error @+1 {{'row_map' dimension 0 (T) is 5, expected 4 from weights}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<4x2xf32>, tensor<5x2xi32> -> tensor<4x16xf32>
  return
}

// -----

// moe.combine c3: row_map must be rank 2
func.func @combine_row_map_rank(%rows: tensor<8x4x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2x1xi32>) {
  // expected-error @+1 {{'row_map' must have shape [T, K] (rank 2), got 'tensor<?x2x1xi32>'}}
  %y = moe.combine %rows, %w, %map
      : tensor<8x4x16xf32>, tensor<?x2xf32>, tensor<?x2x1xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c4: result must have the rows' H
func.func @combine_result_h(%rows: tensor<8x4x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{'result' dimension 1 (H) is 32, expected 16 from rows}}
  %y = moe.combine %rows, %w, %map
      : tensor<8x4x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x32xf32>
  return
}

// -----

// moe.combine c4: result must have the weights' T
func.func @combine_result_t(%rows: tensor<?x16xf32>, %w: tensor<4x2xf32>, %map: tensor<4x2xi32>) {
  // expected-error @+1 {{'result' dimension 0 (T) is 6, expected 4 from weights}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<4x2xf32>, tensor<4x2xi32> -> tensor<6x16xf32>
  return
}

// -----

// moe.combine c4: result must be rank 2 [T, H]
func.func @combine_result_rank(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{'result' must have shape [T, H] (rank 2), got 'tensor<?x2x16xf32>'}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x2x16xf32>
  return
}

// -----

// moe.combine c5: init must be rank 2 [T, H]
func.func @combine_init_rank(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>, %init: tensor<?xf32>) {
  // expected-error @+1 {{'init' must have shape [T, H] (rank 2), got 'tensor<?xf32>'}}
  %y = moe.combine %rows, %w, %map init(%init : tensor<?xf32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c5: init must have the weights' T
func.func @combine_init_t(%rows: tensor<?x16xf32>, %w: tensor<4x2xf32>, %map: tensor<4x2xi32>, %init: tensor<5x16xf32>) {
  // expected-error @+1 {{'init' dimension 0 (T) is 5, expected 4 from weights}}
  %y = moe.combine %rows, %w, %map init(%init : tensor<5x16xf32>)
      : tensor<?x16xf32>, tensor<4x2xf32>, tensor<4x2xi32> -> tensor<4x16xf32>
  return
}

// -----

// moe.combine c5: init must have the rows' H
func.func @combine_init_h(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>, %init: tensor<?x8xf32>) {
  // expected-error @+1 {{'init' dimension 1 (H) is 8, expected 16 from rows}}
  %y = moe.combine %rows, %w, %map init(%init : tensor<?x8xf32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c5: init must be f32 or of the result's element type
func.func @combine_init_element(%rows: tensor<?x16xbf16>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>, %init: tensor<?x16xf16>) {
  // expected-error @+1 {{init element type 'f16' must match the result element type 'bf16'}}
  %y = moe.combine %rows, %w, %map init(%init : tensor<?x16xf16>)
      : tensor<?x16xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xbf16>
  return
}

// -----

// moe.combine c5: an f32 result needs an f32 init
func.func @combine_init_narrow(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>, %init: tensor<?x16xbf16>) {
  // expected-error @+1 {{init element type 'bf16' must match the result element type 'f32'}}
  %y = moe.combine %rows, %w, %map init(%init : tensor<?x16xbf16>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c5: init must be a ranked float tensor (ODS type constraint)
func.func @combine_init_integer(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>, %init: tensor<?x16xi32>) {
  // expected-error @+1 {{operand #3 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<?x16xi32>'}}
  %y = moe.combine %rows, %w, %map init(%init : tensor<?x16xi32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.combine c4: result must have the rows' element type
func.func @combine_result_element_type(%rows: tensor<?x16xbf16>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) {
  // expected-error @+1 {{result element type 'f32' must match the rows element type 'bf16'}}
  %y = moe.combine %rows, %w, %map
      : tensor<?x16xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return
}

// -----

// moe.dispatch c6: a negative align is rejected (not read as unsigned)
func.func @dispatch_negative_align(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>) {
  // expected-error @+1 {{align must be at least 1, got -8}}
  %r, %o, %m = moe.dispatch %x, %ids align -8
      : tensor<?x16xf32>, tensor<?x2xi32>
      -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  return
}

// -----

// moe.layer c1: f64 activations are not a checkpoint float type
func.func @layer_f64_input(%x: tensor<?x16xf64>, %wg: tensor<8x16xf32>,
    %w3: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<?x16xf64>'}}
  %y = moe.layer %x : tensor<?x16xf64> routing <softmax, top_k = 2>
      router(%wg : tensor<8x16xf32>)
      experts(up %w3 : tensor<8x32x16xf32>, down %w2 : tensor<8x16x32xf32>)
      activation silu -> tensor<?x16xf64>
  return
}

// -----

//===----------------------------------------------------------------------===//
// moe.grouped_matmul
//===----------------------------------------------------------------------===//

// moe.grouped_matmul c1: tensors and memrefs are not mixed
func.func @grouped_matmul_mixed(%x: memref<8x16xf32>, %w: tensor<2x4x16xf32>,
                                %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op operands must be all ranked tensors or all memrefs, got 'memref<8x16xf32>' with 'init' of type 'tensor<8x4xf32>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : memref<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c1: on tensors, one result of the type of init
func.func @grouped_matmul_no_result(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                    %b: tensor<2xi32>, %acc: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.grouped_matmul' op on tensors, needs one result of the type of 'init' ('tensor<8x4xf32>')}}
  moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>)
  return
}

// -----

// moe.grouped_matmul c1: on memrefs, no result
func.func @grouped_matmul_memref_result(%x: memref<8x16xf32>, %w: memref<2x4x16xf32>,
                                        %b: memref<2xi32>, %acc: memref<8x4xf32>) {
  // expected-error @+1 {{'moe.grouped_matmul' op on memrefs, has no result}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : memref<8x16xf32>, memref<2x4x16xf32>, memref<2xi32>)
      outs(%acc : memref<8x4xf32>) -> tensor<8x4xf32>
  return
}

// -----

// moe.grouped_matmul c2: input is [R, K]
func.func @grouped_matmul_input_k(%x: tensor<8x12xf32>, %w: tensor<2x4x16xf32>,
                                  %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'input' dimension 1 (K) is 12, expected 16 from weight}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x12xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c2: input and weight are f32, bf16 or f16
func.func @grouped_matmul_input_type(%x: tensor<8x16xf64>, %w: tensor<2x4x16xf32>,
                                     %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'input' and 'weight' must have f32, bf16 or f16 elements}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf64>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c13: scale and block come together
func.func @grouped_matmul_scale_no_block(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>, %s: tensor<2x2x2xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scale' and 'block' come together}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x2xf32>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c13: e2m1-pair weights have scales
func.func @grouped_matmul_e2m1_no_scale(%x: tensor<8x16xf32>, %w: tensor<2x32x8xi8>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op e2m1-pair (i8) weights need their block 'scale'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x8xi8>, tensor<2xi32>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c7: e2m1 pairs hold KP = ceil(K / 2) bytes
func.func @grouped_matmul_e2m1_depth(%x: tensor<8x15xf32>, %w: tensor<2x32x7xi8>, %s: tensor<2x32x1xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' packed in pairs of K has KP = 7 pairs for K = 15, expected 8}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x15xf32>, tensor<2x32x7xi8>, tensor<2xi32>)
      scale(%s : tensor<2x32x1xf32>) block [1, 32]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c14: scales in panels go with packed weights
func.func @grouped_matmul_panel_scales_unpacked(%x: tensor<8x16xf32>, %w: tensor<2x32x8xi8>, %s: tensor<2x2x1x16xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op scales in panels [E, NP, KB, P] need packed weights and blocks of one column (BN = 1)}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x8xi8>, tensor<2xi32>)
      scale(%s : tensor<2x2x1x16xf32>) block [1, 32]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c14: scales in panels are per column (BN = 1)
func.func @grouped_matmul_panel_scales_block(%x: tensor<8x16xf32>, %w: tensor<2x2x8x16xi8>, %s: tensor<2x2x1x16xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op scales in panels [E, NP, KB, P] need packed weights and blocks of one column (BN = 1)}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x2x8x16xi8>, tensor<2xi32>)
      scale(%s : tensor<2x2x1x16xf32>) block [2, 32]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c14: scales in panels are [E, NP, KB, P]
func.func @grouped_matmul_panel_scales_shape(%x: tensor<8x16xf32>, %w: tensor<2x2x8x16xi8>, %s: tensor<2x2x1x8xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scale' dimension 3 (P) is 8, expected 16 from weight}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x2x8x16xi8>, tensor<2xi32>)
      scale(%s : tensor<2x2x1x8xf32>) block [1, 32]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c13: f8E4M3FN weights have scales
func.func @grouped_matmul_fp8_no_scale(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>, 
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op f8E4M3FN weights need their block 'scale'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c13: a paired scale needs a scale
func.func @grouped_matmul_paired_scale_alone(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf32>, %s: tensor<2x2x2xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'paired_scale' needs a 'scale'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>)
      paired_scale(%s : tensor<2x2x2xf32>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c13: scales are for f8E4M3FN weights
func.func @grouped_matmul_scale_bf16(%x: tensor<8x16xf32>, %w: tensor<2x32x16xbf16>, %s: tensor<2x2x2xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op block scales are for f8E4M3FN or e2m1-pair (i8) weights, got 'tensor<2x32x16xbf16>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xbf16>, tensor<2xi32>)
      scale(%s : tensor<2x2x2xf32>) block [16, 8]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c13: block is two sizes >= 1
func.func @grouped_matmul_block_zero(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>, %s: tensor<2x2x2xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'block' must be two sizes of at least 1}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x2xf32>) block [0, 8]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c14: scale is [E, ceil(N/BN), ceil(K/BK)]
func.func @grouped_matmul_scale_shape(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>, %s: tensor<2x2x3xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scale' dimension 2}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x3xf32>) block [16, 8]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c14: scale has f32 elements
func.func @grouped_matmul_scale_f16(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>, %s: tensor<2x2x2xf16>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scale' must have f32 elements, got 'tensor<2x2x2xf16>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x2xf16>) block [16, 8]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c16: packed scaled weights have P dividing BN
func.func @grouped_matmul_scale_panel(%x: tensor<8x16xf32>, %w: tensor<2x1x16x32xf8E4M3FN>, %s: tensor<2x2x2xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op packed scaled weights need panels that divide the scale block (or per-column scales in panels too): P = 32, BN = 16}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x1x16x32xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x2xf32>) block [16, 8]
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c17: exact products go with unscaled weights
func.func @grouped_matmul_exact_scaled(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>, %s: tensor<2x2x2xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'exact_products' goes with unscaled weights}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x2xf32>) block [16, 8] exact_products
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c18: a dense op has one expert
func.func @grouped_matmul_dense_experts(%x: tensor<8x16xf32>, %w: tensor<2x32x16xbf16>,
    %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op a dense op (no 'block_experts') has one expert, got E = 2}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w : tensor<8x16xf32>, tensor<2x32x16xbf16>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c18: a dense op has no block sizes
func.func @grouped_matmul_dense_sizes(%x: tensor<8x16xf32>, %w: tensor<1x32x16xbf16>,
    %sizes: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op a dense op (no 'block_experts') has no 'block_sizes', 'row_sources' or 'scatter'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w : tensor<8x16xf32>, tensor<1x32x16xbf16>)
      block_sizes(%sizes : tensor<2xi32>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c18: a dense op has no row sources
func.func @grouped_matmul_dense_sources(%x: tensor<5x16xf32>, %w: tensor<1x32x16xbf16>,
    %sources: tensor<8xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op a dense op (no 'block_experts') has no 'block_sizes', 'row_sources' or 'scatter'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w : tensor<5x16xf32>, tensor<1x32x16xbf16>)
      row_sources(%sources : tensor<8xi32>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c19: atomic adds are scattered ones
func.func @grouped_matmul_atomic_without_scatter(%x: tensor<8x16xf32>,
    %w: tensor<2x32x16xbf16>, %blocks: tensor<2xi32>,
    %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'atomic' and 'unique' go with 'scatter': they say how scattered rows share their targets}}
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x32x16xbf16>, tensor<2xi32>)
      atomic outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c19: unique adds are scattered ones too
func.func @grouped_matmul_unique_without_scatter(%x: tensor<8x16xf32>,
    %w: tensor<2x32x16xbf16>, %blocks: tensor<2xi32>,
    %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'atomic' and 'unique' go with 'scatter'}}
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x32x16xbf16>, tensor<2xi32>)
      unique outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c19: atomic and unique do not go together
func.func @grouped_matmul_atomic_and_unique(%x: tensor<8x16xf32>,
    %w: tensor<2x32x16xbf16>, %blocks: tensor<2xi32>, %targets: tensor<8xi32>,
    %scales: tensor<8xf32>, %acc: tensor<3x32xf32>) -> tensor<3x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'atomic' and 'unique' exclude each other: unique targets need no atomic adds}}
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x32x16xbf16>, tensor<2xi32>)
      scatter(%targets, %scales : tensor<8xi32>, tensor<8xf32>) atomic unique
      outs(%acc : tensor<3x32xf32>) -> tensor<3x32xf32>
  return %r : tensor<3x32xf32>
}

// -----

// moe.grouped_matmul c18: a dense op does not scatter
func.func @grouped_matmul_dense_scatter(%x: tensor<8x16xf32>, %w: tensor<1x32x16xbf16>,
    %targets: tensor<8xi32>, %scales: tensor<8xf32>, %acc: tensor<3x32xf32>) -> tensor<3x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op a dense op (no 'block_experts') has no 'block_sizes', 'row_sources' or 'scatter'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w : tensor<8x16xf32>, tensor<1x32x16xbf16>)
      scatter(%targets, %scales : tensor<8xi32>, tensor<8xf32>)
      outs(%acc : tensor<3x32xf32>) -> tensor<3x32xf32>
  return %r : tensor<3x32xf32>
}

// -----

// moe.grouped_matmul c16: scaled weights in pairs of K have an even BK
func.func @grouped_matmul_scale_pairs_odd_depth(%x: tensor<8x6xf32>, %w: tensor<2x1x3x16x2xf8E4M3FN>, %s: tensor<2x1x2xf32>,
    %b: tensor<2xi32>, %acc: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op scaled weights packed in pairs of K need an even block depth, got BK = 3}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x6xf32>, tensor<2x1x3x16x2xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x1x2xf32>) block [16, 3]
      outs(%acc : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %r : tensor<8x16xf32>
}

// -----

// moe.grouped_matmul c15: a scaled op with a paired weight has a paired scale
func.func @grouped_matmul_paired_no_scale(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>,
    %s: tensor<2x2x2xf32>, %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op a scaled op has 'paired_scale' exactly when it has 'paired_weight'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      paired(%w : tensor<2x32x16xf8E4M3FN>) scale(%s : tensor<2x2x2xf32>) block [16, 8]
      outs(%acc : tensor<8x32xf32>) epilogue {
      ^bb0(%g: f32, %u: f32, %old: f32):
        moe.yield %g : f32
      } -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c15: the paired scale has the type of the scale
func.func @grouped_matmul_paired_scale_type(%x: tensor<8x16xf32>, %w: tensor<2x32x16xf8E4M3FN>,
    %s: tensor<2x2x2xf32>, %ps: tensor<2x2x?xf32>, %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'paired_scale' must have the type of 'scale' ('tensor<2x2x2xf32>'), got 'tensor<2x2x?xf32>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x32x16xf8E4M3FN>, tensor<2xi32>)
      paired(%w : tensor<2x32x16xf8E4M3FN>) scale(%s : tensor<2x2x2xf32>)
      paired_scale(%ps : tensor<2x2x?xf32>) block [16, 8]
      outs(%acc : tensor<8x32xf32>) epilogue {
      ^bb0(%g: f32, %u: f32, %old: f32):
        moe.yield %g : f32
      } -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// moe.grouped_matmul c3: weight is [E, N, K] with a static E
func.func @grouped_matmul_weight_dynamic_e(%x: tensor<8x16xf32>, %w: tensor<?x4x16xf32>,
                                           %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' dimension 0 (E) must be static, got 'tensor<?x4x16xf32>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<?x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c4: block_experts is [B] i32
func.func @grouped_matmul_blocks_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                      %b: tensor<2xi64>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'block_experts' must have i32 elements, got 'tensor<2xi64>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi64>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c4: block_sizes is [B] like block_experts
func.func @grouped_matmul_sizes_shape(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                      %b: tensor<2xi32>, %s: tensor<3xi32>,
                                      %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'block_sizes' dimension 0 (B) is 3, expected 2 from block_experts}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      block_sizes(%s : tensor<3xi32>) outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c4: block_sizes has i32 elements
func.func @grouped_matmul_sizes_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                     %b: tensor<2xi32>, %s: tensor<2xi64>,
                                     %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'block_sizes' must have i32 elements, got 'tensor<2xi64>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      block_sizes(%s : tensor<2xi64>) outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c3: at most 2^31 - 1 experts (ids are i32)
func.func @grouped_matmul_too_many_experts(%x: tensor<8x16xf32>, %w: tensor<2147483648x4x16xf32>,
                                           %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' has 2147483648 experts, more than 2147483647 (expert ids are i32)}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2147483648x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c5: init is [R, N]
func.func @grouped_matmul_init_n(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                 %b: tensor<2xi32>, %acc: tensor<8x5xf32>) -> tensor<8x5xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'init' dimension 1 (N) is 5, expected 4 from weight}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x5xf32>) -> tensor<8x5xf32>
  return %r : tensor<8x5xf32>
}

// -----

// moe.grouped_matmul c5: init is the f32 accumulator (bf16 only with an epilogue)
func.func @grouped_matmul_init_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                    %b: tensor<2xi32>, %acc: tensor<8x4xbf16>) -> tensor<8x4xbf16> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'init' is the f32 accumulator (or f32, bf16 or f16 with an epilogue), got 'tensor<8x4xbf16>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xbf16>) -> tensor<8x4xbf16>
  return %r : tensor<8x4xbf16>
}

// -----

// moe.grouped_matmul c5: an epilogue writes f32, bf16 or f16, not integers
func.func @grouped_matmul_epilogue_init_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                             %b: tensor<2xi32>, %acc: tensor<8x4xi16>) -> tensor<8x4xi16> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'init' is the f32 accumulator (or f32, bf16 or f16 with an epilogue), got 'tensor<8x4xi16>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xi16>) epilogue {
      ^bb0(%s: f32, %old: f32):
        moe.yield %s : f32
      } -> tensor<8x4xi16>
  return %r : tensor<8x4xi16>
}

// -----

// moe.grouped_matmul c6: block_rows >= 1
func.func @grouped_matmul_block_rows(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                     %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'block_rows' must be at least 1, got 0}}
  %r = moe.grouped_matmul block_rows(0) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c6: R is whole blocks
func.func @grouped_matmul_partial_block(%x: tensor<6x16xf32>, %w: tensor<2x4x16xf32>,
                                        %b: tensor<?xi32>, %acc: tensor<6x4xf32>) -> tensor<6x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op R = 6 rows are not whole blocks of 4}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<6x16xf32>, tensor<2x4x16xf32>, tensor<?xi32>)
      outs(%acc : tensor<6x4xf32>) -> tensor<6x4xf32>
  return %r : tensor<6x4xf32>
}

// -----

// moe.grouped_matmul c6: R = B * block_rows
func.func @grouped_matmul_block_count(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                      %b: tensor<3xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op R = 8 rows, expected B * block_rows = 3 * 4}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<3xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c3: a weight is [E, N, K], packed [E, NP, K, P] or
// packed in pairs [E, NP, KP, P, 2]
func.func @grouped_matmul_weight_rank(%x: tensor<8x16xf32>, %w: tensor<2x1x8x4x2x1xbf16>,
                                      %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' must have shape [E, N, K]}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x1x8x4x2x1xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c3: the innermost dimension of pairs is 2
func.func @grouped_matmul_pairs_of_three(%x: tensor<8x16xf32>, %w: tensor<2x1x8x4x3xbf16>,
                                         %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' dimension 4 must be 2, got 3 in 'tensor<2x1x8x4x3xbf16>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x1x8x4x3xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c3: weights packed in pairs hold bf16 or f8E4M3FN
func.func @grouped_matmul_pairs_f32(%x: tensor<8x16xf32>, %w: tensor<2x1x8x4x2xf32>,
                                    %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' packed in pairs of K must have bf16 or f8E4M3FN elements, got 'tensor<2x1x8x4x2xf32>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x1x8x4x2xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c7: KP = ceil(K / 2) pairs
func.func @grouped_matmul_pairs_depth(%x: tensor<8x15xf32>, %w: tensor<2x1x7x4x2xbf16>,
                                      %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' packed in pairs of K has KP = 7 pairs for K = 15, expected 8}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x15xf32>, tensor<2x1x7x4x2xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c7: a packed weight has a static panel width P
func.func @grouped_matmul_packed_dynamic_panel(%x: tensor<8x16xf32>, %w: tensor<2x1x16x?xf32>,
                                               %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'weight' dimension 3 (P) must be static, got 'tensor<2x1x16x?xf32>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x1x16x?xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c7: panels of at least one column
func.func @grouped_matmul_packed_empty_panel(%x: tensor<8x16xf32>, %w: tensor<2x1x16x0xf32>,
                                             %b: tensor<2xi32>, %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op packed 'weight' needs panels of at least 1 column, got P = 0}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x1x16x0xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c7: NP = ceil(N / P) panels
func.func @grouped_matmul_packed_panels(%x: tensor<8x16xf32>, %w: tensor<2x3x16x4xf32>,
                                        %b: tensor<2xi32>, %acc: tensor<8x5xf32>) -> tensor<8x5xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op packed 'weight' has NP = 3 panels of 4 columns for N = 5, expected 2}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x3x16x4xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x5xf32>) -> tensor<8x5xf32>
  return %r : tensor<8x5xf32>
}

// -----

// moe.grouped_matmul c2/c7: a packed weight's K is the input's
func.func @grouped_matmul_packed_depth(%x: tensor<8x16xf32>, %w: tensor<2x2x12x4xf32>,
                                       %b: tensor<2xi32>, %acc: tensor<8x5xf32>) -> tensor<8x5xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'input' dimension 1 (K) is 16, expected 12 from weight}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x2x12x4xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x5xf32>) -> tensor<8x5xf32>
  return %r : tensor<8x5xf32>
}

// -----

// moe.grouped_matmul c2: row_sources is [R] like init's rows
func.func @grouped_matmul_row_sources_rows(%x: tensor<5x16xf32>, %w: tensor<2x4x16xf32>,
                                           %b: tensor<2xi32>, %src: tensor<6xi32>,
                                           %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'row_sources' dimension 0 (R) is 6, expected 8 from init}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<5x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      row_sources(%src : tensor<6xi32>) outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c8: scatter_rows without scatter_scales (generic form)
func.func @grouped_matmul_scatter_alone(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                        %b: tensor<2xi32>, %t: tensor<8xi32>,
                                        %acc: tensor<3x4xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scatter_rows' and 'scatter_scales' come together}}
  %r = "moe.grouped_matmul"(%x, %w, %b, %t, %acc) <{block_rows = 4 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1>}>
      : (tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>, tensor<8xi32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// -----

// moe.grouped_matmul c8: scatter_rows is [R] like the input's rows
func.func @grouped_matmul_scatter_rows(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                       %b: tensor<2xi32>, %t: tensor<6xi32>, %s: tensor<6xf32>,
                                       %acc: tensor<3x4xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scatter_rows' dimension 0 (R) is 6, expected 8 from input}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      scatter(%t, %s : tensor<6xi32>, tensor<6xf32>) outs(%acc : tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// -----

// moe.grouped_matmul c8: scatter_scales is [R] like scatter_rows
func.func @grouped_matmul_scatter_scales_rows(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                              %b: tensor<2xi32>, %t: tensor<8xi32>, %s: tensor<4xf32>,
                                              %acc: tensor<3x4xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scatter_scales' dimension 0 (R) is 4, expected 8 from input}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      scatter(%t, %s : tensor<8xi32>, tensor<4xf32>) outs(%acc : tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// -----

// moe.grouped_matmul c8: scatter_rows has i32 elements
func.func @grouped_matmul_scatter_rows_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                            %b: tensor<2xi32>, %t: tensor<8xi64>, %s: tensor<8xf32>,
                                            %acc: tensor<3x4xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scatter_rows' must have i32 elements, got 'tensor<8xi64>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      scatter(%t, %s : tensor<8xi64>, tensor<8xf32>) outs(%acc : tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// -----

// moe.grouped_matmul c8: scatter_scales has f32 elements
func.func @grouped_matmul_scatter_scales_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                              %b: tensor<2xi32>, %t: tensor<8xi32>, %s: tensor<8xbf16>,
                                              %acc: tensor<3x4xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'scatter_scales' must have f32 elements, got 'tensor<8xbf16>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      scatter(%t, %s : tensor<8xi32>, tensor<8xbf16>) outs(%acc : tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// -----

// moe.grouped_matmul c5: a scattering init is [T, N]
func.func @grouped_matmul_scatter_init(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                       %b: tensor<2xi32>, %t: tensor<8xi32>, %s: tensor<8xf32>,
                                       %acc: tensor<3x5xf32>) -> tensor<3x5xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'init' dimension 1 (N) is 5, expected 4 from weight}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      scatter(%t, %s : tensor<8xi32>, tensor<8xf32>) outs(%acc : tensor<3x5xf32>) -> tensor<3x5xf32>
  return %r : tensor<3x5xf32>
}

// -----

// moe.grouped_matmul c2: row_sources has i32 elements
func.func @grouped_matmul_row_sources_type(%x: tensor<5x16xf32>, %w: tensor<2x4x16xf32>,
                                           %b: tensor<2xi32>, %src: tensor<8xi64>,
                                           %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'row_sources' must have i32 elements, got 'tensor<8xi64>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<5x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      row_sources(%src : tensor<8xi64>) outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c9: paired_weight has the type of weight
func.func @grouped_matmul_paired_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                      %wu: tensor<2x4x16xbf16>, %b: tensor<2xi32>,
                                      %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'paired_weight' must have the type of 'weight' ('tensor<2x4x16xf32>'), got 'tensor<2x4x16xbf16>'}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      paired(%wu : tensor<2x4x16xbf16>) outs(%acc : tensor<8x4xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    moe.yield %g : f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c9: paired_weight comes with an epilogue
func.func @grouped_matmul_paired_alone(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                       %wu: tensor<2x4x16xf32>, %b: tensor<2xi32>,
                                       %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'paired_weight' needs an epilogue to combine the two sums}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      paired(%wu : tensor<2x4x16xf32>) outs(%acc : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c10: one f32 argument per weight, then init's element
func.func @grouped_matmul_epilogue_arity(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                         %b: tensor<2xi32>,
                                         %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'epilogue' takes 2 f32 arguments (one sum per weight, then the element of 'init'), got 3}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    moe.yield %g : f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c10: the arguments are f32
func.func @grouped_matmul_epilogue_argument_type(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                                 %b: tensor<2xi32>,
                                                 %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'epilogue' takes 2 f32 arguments (one sum per weight, then the element of 'init'), got 2}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) epilogue {
  ^bb0(%s: f16, %o: f32):
    moe.yield %o : f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c10: the epilogue yields one f32
func.func @grouped_matmul_epilogue_yield(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                         %b: tensor<2xi32>,
                                         %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op 'epilogue' must end in a moe.yield of one f32}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) epilogue {
  ^bb0(%s: f32, %o: f32):
    moe.yield %s, %o : f32, f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c11: only scalar element-wise ops and constants
func.func @grouped_matmul_epilogue_op(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                      %b: tensor<2xi32>,
                                      %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) epilogue {
  ^bb0(%s: f32, %o: f32):
    // expected-error @+1 {{'vector.broadcast' op in a grouped matmul's 'epilogue' must be a scalar element-wise op or a constant}}
    %v = vector.broadcast %s : f32 to vector<4xf32>
    moe.yield %o : f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c11: element-wise ops on scalars only
func.func @grouped_matmul_epilogue_vector(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                          %b: tensor<2xi32>,
                                          %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) epilogue {
  ^bb0(%s: f32, %o: f32):
    // expected-error @+1 {{'arith.constant' op in a grouped matmul's 'epilogue' must be a scalar element-wise op or a constant}}
    %c = arith.constant dense<1.0> : vector<4xf32>
    moe.yield %o : f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul c12: an epilogue does not scatter
func.func @grouped_matmul_epilogue_scatter(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                           %b: tensor<2xi32>, %t: tensor<8xi32>, %s: tensor<8xf32>,
                                           %acc: tensor<3x4xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op an epilogue writes rows in place; it cannot scatter}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      scatter(%t, %s : tensor<8xi32>, tensor<8xf32>) outs(%acc : tensor<3x4xf32>) epilogue {
  ^bb0(%v: f32, %o: f32):
    moe.yield %v : f32
  } -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// -----

// moe.grouped_matmul: at most one epilogue region (generic form)
func.func @grouped_matmul_two_epilogues(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                        %b: tensor<2xi32>,
                                        %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'moe.grouped_matmul' op has at most one 'epilogue' region}}
  %r = "moe.grouped_matmul"(%x, %w, %b, %acc) <{block_rows = 4 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1>}> ({
  ^bb0(%v: f32, %o: f32):
    moe.yield %v : f32
  }, {
  ^bb0(%v: f32, %o: f32):
    moe.yield %v : f32
  }) : (tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.grouped_matmul: the epilogue is isolated from above
func.func @grouped_matmul_epilogue_isolated(%x: tensor<8x16xf32>, %w: tensor<2x4x16xf32>,
                                            %b: tensor<2xi32>, %c: f32,
                                            %acc: tensor<8x4xf32>) -> tensor<8x4xf32> {
  // expected-note @+1 {{required by region isolation constraints}}
  %r = moe.grouped_matmul block_rows(4) ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x4xf32>) epilogue {
  ^bb0(%v: f32, %o: f32):
    // expected-error @+1 {{using value defined outside the region}}
    %y = arith.addf %v, %c : f32
    moe.yield %y : f32
  } -> tensor<8x4xf32>
  return %r : tensor<8x4xf32>
}

// -----

// moe.yield: only in a grouped matmul's epilogue
func.func @yield_outside(%v: f32) {
  // expected-error @+1 {{'moe.yield' op expects parent op 'moe.grouped_matmul'}}
  moe.yield %v : f32
}
