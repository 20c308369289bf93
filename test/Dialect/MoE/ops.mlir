// Round-trip of every moe op, in the custom and in the generic form.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// An FP8 layer: f8E4M3FN weights with their block scales.
// CHECK-LABEL: func @layer_fp8
// CHECK: moe.layer %{{.*}} : tensor<?x16xf32> routing <softmax, top_k = 2> router(%{{.*}} : tensor<4x16xf32>) experts(up %{{.*}} : tensor<4x8x16xf8E4M3FN>, down %{{.*}} : tensor<4x16x8xf8E4M3FN>) activation gelu up_scale(%{{.*}} : tensor<4x1x1xf32>) down_scale(%{{.*}} : tensor<4x1x1xf32>) weight_block [128, 128] -> tensor<?x16xf32>
func.func @layer_fp8(%x: tensor<?x16xf32>, %r: tensor<4x16xf32>,
    %u: tensor<4x8x16xf8E4M3FN>, %d: tensor<4x16x8xf8E4M3FN>,
    %su: tensor<4x1x1xf32>, %sd: tensor<4x1x1xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%r : tensor<4x16xf32>)
      experts(up %u : tensor<4x8x16xf8E4M3FN>, down %d : tensor<4x16x8xf8E4M3FN>)
      activation gelu up_scale(%su : tensor<4x1x1xf32>)
      down_scale(%sd : tensor<4x1x1xf32>) weight_block [128, 128]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// An MXFP4 layer: e2m1 pairs (i8, K = 16 and 8 in 8 and 4 bytes) with
// per-column scales of [1, 32] blocks, and a shared expert of them.
// CHECK-LABEL: func @layer_mxfp4
// CHECK: moe.layer %{{.*}} : tensor<?x16xf32> routing <softmax, top_k = 2> router(%{{.*}} : tensor<4x16xf32>) experts(up %{{.*}} : tensor<4x8x8xi8>, down %{{.*}} : tensor<4x16x4xi8>) activation gelu shared_up(%{{.*}} : tensor<6x8xi8>) shared_down(%{{.*}} : tensor<16x3xi8>) up_scale(%{{.*}} : tensor<4x8x1xf32>) down_scale(%{{.*}} : tensor<4x16x1xf32>) shared_up_scale(%{{.*}} : tensor<6x1xf32>) shared_down_scale(%{{.*}} : tensor<16x1xf32>) weight_block [1, 32] -> tensor<?x16xf32>
func.func @layer_mxfp4(%x: tensor<?x16xf32>, %r: tensor<4x16xf32>,
    %u: tensor<4x8x8xi8>, %d: tensor<4x16x4xi8>,
    %su: tensor<4x8x1xf32>, %sd: tensor<4x16x1xf32>,
    %shu: tensor<6x8xi8>, %shd: tensor<16x3xi8>,
    %sshu: tensor<6x1xf32>, %sshd: tensor<16x1xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 2>
      router(%r : tensor<4x16xf32>)
      experts(up %u : tensor<4x8x8xi8>, down %d : tensor<4x16x4xi8>)
      activation gelu
      shared_up(%shu : tensor<6x8xi8>) shared_down(%shd : tensor<16x3xi8>)
      up_scale(%su : tensor<4x8x1xf32>) down_scale(%sd : tensor<4x16x1xf32>)
      shared_up_scale(%sshu : tensor<6x1xf32>)
      shared_down_scale(%sshd : tensor<16x1xf32>) weight_block [1, 32]
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// CHECK-LABEL: func @layer_mixtral
// CHECK: moe.layer %{{.*}} : tensor<?x16xf32> routing <softmax, top_k = 2, renormalize>
// CHECK-SAME: router(%{{.*}} : tensor<8x16xf32>)
// CHECK-SAME: experts(gate %{{.*}} : tensor<8x32x16xf32>, up %{{.*}} : tensor<8x32x16xf32>, down %{{.*}} : tensor<8x16x32xf32>)
// CHECK-SAME: activation silu -> tensor<?x16xf32>
func.func @layer_mixtral(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                         %w1: tensor<8x32x16xf32>, %w3: tensor<8x32x16xf32>,
                         %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// Llama 4: the routing weight scales each expert's input.
// CHECK-LABEL: func @layer_llama4
// CHECK: activation silu weight_inputs shared_gate
func.func @layer_llama4(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                        %w1: tensor<8x32x16xf32>, %w3: tensor<8x32x16xf32>,
                        %w2: tensor<8x16x32xf32>, %sg: tensor<32x16xf32>,
                        %su: tensor<32x16xf32>, %sd: tensor<16x32xf32>)
    -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 1>
      router(%wg : tensor<8x16xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu weight_inputs
      shared_gate(%sg : tensor<32x16xf32>) shared_up(%su : tensor<32x16xf32>)
      shared_down(%sd : tensor<16x32xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// LongCat-Flash: 2 zero (identity) experts among 10 candidates.
// CHECK-LABEL: func @layer_zero_experts
// CHECK: router(%{{.*}} : tensor<10x16xf32>) score_bias(%{{.*}} : tensor<10xf32>)
// CHECK-SAME: activation silu zero_experts 2 -> tensor<?x16xf32>
func.func @layer_zero_experts(%x: tensor<?x16xf32>, %wg: tensor<10x16xf32>,
                              %b: tensor<10xf32>, %w1: tensor<8x32x16xf32>,
                              %w3: tensor<8x32x16xf32>,
                              %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 3, scale = 6.0, selection_bias>
      router(%wg : tensor<10x16xf32>) score_bias(%b : tensor<10xf32>)
      experts(gate %w1 : tensor<8x32x16xf32>, up %w3 : tensor<8x32x16xf32>,
              down %w2 : tensor<8x16x32xf32>) activation silu zero_experts 2
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// gpt-oss: router bias, biased experts, the clamped SwiGLU.
// CHECK-LABEL: func @layer_gpt_oss
// CHECK: router(%{{.*}} : tensor<8x16xf32>) router_bias(%{{.*}} : tensor<8xbf16>)
// CHECK-SAME: activation clamped_swiglu swiglu_alpha 1.702000e+00 swiglu_limit 7.000000e+00
func.func @layer_gpt_oss(%x: tensor<?x16xf32>, %wg: tensor<8x16xf32>,
                         %rb: tensor<8xbf16>, %w1: tensor<8x32x16xbf16>,
                         %w3: tensor<8x32x16xbf16>, %w2: tensor<8x16x32xbf16>,
                         %b1: tensor<8x32xbf16>, %b3: tensor<8x32xbf16>,
                         %b2: tensor<8x16xbf16>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 4, renormalize>
      router(%wg : tensor<8x16xf32>) router_bias(%rb : tensor<8xbf16>)
      experts(gate %w1 : tensor<8x32x16xbf16>, up %w3 : tensor<8x32x16xbf16>,
              down %w2 : tensor<8x16x32xbf16>)
      activation clamped_swiglu swiglu_alpha 1.702 swiglu_limit 7.0
      gate_bias(%b1 : tensor<8x32xbf16>) up_bias(%b3 : tensor<8x32xbf16>)
      down_bias(%b2 : tensor<8x16xbf16>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// CHECK-LABEL: func @layer_qwen2_bf16
// CHECK: moe.layer %{{.*}} : tensor<?x16xbf16> routing <softmax, top_k = 4>
// CHECK-SAME: shared_gate(%{{.*}} : tensor<24x16xbf16>) shared_up(%{{.*}} : tensor<24x16xbf16>) shared_down(%{{.*}} : tensor<16x24xbf16>)
// CHECK-SAME: shared_expert_gate(%{{.*}} : tensor<1x16xbf16>)
func.func @layer_qwen2_bf16(%x: tensor<?x16xbf16>, %wg: tensor<6x16xbf16>,
    %w1: tensor<6x8x16xbf16>, %w3: tensor<6x8x16xbf16>, %w2: tensor<6x16x8xbf16>,
    %s1: tensor<24x16xbf16>, %s3: tensor<24x16xbf16>, %s2: tensor<16x24xbf16>,
    %sg: tensor<1x16xbf16>) -> tensor<?x16xbf16> {
  %y = moe.layer %x : tensor<?x16xbf16>
      routing <softmax, top_k = 4>
      router(%wg : tensor<6x16xbf16>)
      experts(gate %w1 : tensor<6x8x16xbf16>, up %w3 : tensor<6x8x16xbf16>,
              down %w2 : tensor<6x16x8xbf16>) activation silu
      shared_gate(%s1 : tensor<24x16xbf16>) shared_up(%s3 : tensor<24x16xbf16>)
      shared_down(%s2 : tensor<16x24xbf16>)
      shared_expert_gate(%sg : tensor<1x16xbf16>)
      -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// CHECK-LABEL: func @layer_deepseek_v3
// CHECK: routing <sigmoid, top_k = 4, renormalize, scale = 2.500000e+00, selection_bias, groups = 4, topk_groups = 2, group_score = sum_top2>
// CHECK-SAME: score_bias(%{{.*}} : tensor<16xf32>)
// CHECK-SAME: statistics [tokens_per_expert, load_balancing_loss] -> tensor<?x16xf32>, tensor<16xi64>, tensor<f32>
func.func @layer_deepseek_v3(%x: tensor<?x16xf32>, %wg: tensor<16x16xf32>,
    %b: tensor<16xf32>, %w1: tensor<16x8x16xbf16>, %w3: tensor<16x8x16xbf16>,
    %w2: tensor<16x16x8xbf16>, %s1: tensor<8x16xbf16>, %s3: tensor<8x16xbf16>,
    %s2: tensor<16x8xbf16>) -> (tensor<?x16xf32>, tensor<16xi64>, tensor<f32>) {
  %y, %load, %aux = moe.layer %x : tensor<?x16xf32>
      routing <sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias,
               groups = 4, topk_groups = 2, group_score = sum_top2>
      router(%wg : tensor<16x16xf32>) score_bias(%b : tensor<16xf32>)
      experts(gate %w1 : tensor<16x8x16xbf16>, up %w3 : tensor<16x8x16xbf16>,
              down %w2 : tensor<16x16x8xbf16>) activation silu
      shared_gate(%s1 : tensor<8x16xbf16>) shared_up(%s3 : tensor<8x16xbf16>)
      shared_down(%s2 : tensor<16x8xbf16>)
      statistics [tokens_per_expert, load_balancing_loss]
      -> tensor<?x16xf32>, tensor<16xi64>, tensor<f32>
  return %y, %load, %aux : tensor<?x16xf32>, tensor<16xi64>, tensor<f32>
}

// CHECK-LABEL: func @layer_nllb_biased_relu
// CHECK: routing <softmax, top_k = 2, renormalize = kept, capacity = fraction(2.500000e-01), priority = score>
// CHECK-SAME: experts(up %{{.*}} : tensor<4x32x16xf32>, down %{{.*}} : tensor<4x16x32xf32>) activation relu
// CHECK-SAME: up_bias(%{{.*}} : tensor<4x32xf32>) down_bias(%{{.*}} : tensor<4x16xf32>)
func.func @layer_nllb_biased_relu(%x: tensor<7x16xf32>, %wg: tensor<4x16xf32>,
    %wi: tensor<4x32x16xf32>, %wo: tensor<4x16x32xf32>, %bi: tensor<4x32xf32>,
    %bo: tensor<4x16xf32>) -> tensor<7x16xf32> {
  %y = moe.layer %x : tensor<7x16xf32>
      routing <softmax, top_k = 2, renormalize = kept, capacity = fraction(0.25),
               priority = score>
      router(%wg : tensor<4x16xf32>)
      experts(up %wi : tensor<4x32x16xf32>, down %wo : tensor<4x16x32xf32>)
      activation relu
      up_bias(%bi : tensor<4x32xf32>) down_bias(%bo : tensor<4x16xf32>)
      -> tensor<7x16xf32>
  return %y : tensor<7x16xf32>
}

// CHECK-LABEL: func @layer_noisy_random
// CHECK: routing <softmax, top_k = 2, renormalize = kept, capacity = factor(2.000000e+00, ceil, min = 4), group_size = 64, second = random, noisy>
// CHECK-SAME: noise_router(%{{.*}} : tensor<4x16xf32>) noise(%{{.*}} : tensor<?x4xf32>) uniform(%{{.*}} : tensor<?xf32>)
// CHECK-SAME: activation gelu_tanh gate_bias(%{{.*}} : tensor<4x32xf32>)
func.func @layer_noisy_random(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>,
    %wn: tensor<4x16xf32>, %n: tensor<?x4xf32>, %u: tensor<?xf32>,
    %w1: tensor<4x32x16xf32>, %w3: tensor<4x32x16xf32>, %w2: tensor<4x16x32xf32>,
    %b1: tensor<4x32xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize = kept,
               capacity = factor(2.0, ceil, min = 4), group_size = 64,
               second = random, noisy>
      router(%wg : tensor<4x16xf32>) noise_router(%wn : tensor<4x16xf32>)
      noise(%n : tensor<?x4xf32>) uniform(%u : tensor<?xf32>)
      experts(gate %w1 : tensor<4x32x16xf32>, up %w3 : tensor<4x32x16xf32>,
              down %w2 : tensor<4x16x32xf32>) activation gelu_tanh
      gate_bias(%b1 : tensor<4x32xf32>)
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// CHECK-LABEL: func @gate_all_statistics
// CHECK: moe.gate %{{.*}} routing <softmax, top_k = 1, capacity = fixed(3)>
// CHECK-SAME: statistics [tokens_per_expert, tokens_per_expert_before_drop, dropped_count, load_balancing_loss, z_loss, importance_loss]
// CHECK-SAME: : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi32>, tensor<4xi64>, tensor<4xi64>, tensor<i64>, tensor<f32>, tensor<f32>, tensor<f32>
func.func @gate_all_statistics(%logits: tensor<?x4xf32>) -> tensor<?x1xi32> {
  %w, %ids, %kept, %routed, %dropped, %aux, %z, %imp = moe.gate %logits
      routing <softmax, top_k = 1, capacity = fixed(3)>
      statistics [tokens_per_expert, tokens_per_expert_before_drop,
                  dropped_count, load_balancing_loss, z_loss, importance_loss]
      : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi32>, tensor<4xi64>,
        tensor<4xi64>, tensor<i64>, tensor<f32>, tensor<f32>, tensor<f32>
  return %ids : tensor<?x1xi32>
}

// CHECK-LABEL: func @gate_expert_choice
// CHECK: moe.gate %{{.*}} routing <softmax, expert_choice, capacity = factor(2.000000e+00, round)> : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
func.func @gate_expert_choice(%logits: tensor<?x8xf32>) -> tensor<?x8xi32> {
  %w, %ids = moe.gate %logits
      routing <softmax, expert_choice, capacity = factor(2.0, round)>
      : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x8xi32>
  return %ids : tensor<?x8xi32>
}

// CHECK-LABEL: func @gate_noise_uniform
// CHECK: moe.gate %{{.*}} noise(%{{.*}} : tensor<?x8xf32>) uniform(%{{.*}} : tensor<?xf32>) routing <softmax, top_k = 2, renormalize = kept, capacity = fixed(4), second = random, noisy>
func.func @gate_noise_uniform(%logits: tensor<?x8xf32>, %n: tensor<?x8xf32>,
                              %u: tensor<?xf32>) -> tensor<?x2xi32> {
  %w, %ids = moe.gate %logits noise(%n : tensor<?x8xf32>) uniform(%u : tensor<?xf32>)
      routing <softmax, top_k = 2, renormalize = kept, capacity = fixed(4),
               second = random, noisy>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %ids : tensor<?x2xi32>
}

// CHECK-LABEL: func @dispatch_layouts
// CHECK: moe.dispatch %{{.*}}, %{{.*}} : tensor<?x16xbf16>, tensor<?x2xi32> -> tensor<?x16xbf16>, tensor<9xi64>, tensor<?x2xi32>
// CHECK: moe.dispatch %{{.*}}, %{{.*}} align 16 : tensor<?x16xbf16>
// CHECK: moe.dispatch %{{.*}}, %{{.*}} capacity(%{{.*}}) : tensor<?x16xbf16>, tensor<?x2xi32> -> tensor<8x?x16xbf16>, tensor<8xi64>, tensor<?x2xi32>
// CHECK: moe.dispatch %{{.*}}, %{{.*}} : tensor<?x16xbf16>, tensor<?x2xi32> -> tensor<8x4x16xbf16>, tensor<8xi64>, tensor<?x2xi32>
func.func @dispatch_layouts(%x: tensor<?x16xbf16>, %ids: tensor<?x2xi32>,
                            %c: index) {
  %r0, %o0, %m0 = moe.dispatch %x, %ids
      : tensor<?x16xbf16>, tensor<?x2xi32>
      -> tensor<?x16xbf16>, tensor<9xi64>, tensor<?x2xi32>
  %r1, %o1, %m1 = moe.dispatch %x, %ids align 16
      : tensor<?x16xbf16>, tensor<?x2xi32>
      -> tensor<?x16xbf16>, tensor<9xi64>, tensor<?x2xi32>
  %r2, %o2, %m2 = moe.dispatch %x, %ids capacity(%c)
      : tensor<?x16xbf16>, tensor<?x2xi32>
      -> tensor<8x?x16xbf16>, tensor<8xi64>, tensor<?x2xi32>
  %r3, %o3, %m3 = moe.dispatch %x, %ids
      : tensor<?x16xbf16>, tensor<?x2xi32>
      -> tensor<8x4x16xbf16>, tensor<8xi64>, tensor<?x2xi32>
  return
}

// Static token counts fix the plan's row bound R = A * min(T*K,
// (T*K + E*(A-1)) / A): 64 rows for 10 assignments of 8 experts padded to 8,
// 8 rows (2 blocks of 4, one per assignment) for 2 assignments.
// CHECK-LABEL: func @routing_plans
// CHECK: moe.routing_plan %{{.*}} block_rows(16) align(16) : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
// CHECK: moe.routing_plan %{{.*}} block_rows(4) align(8) : tensor<5x2xi32> -> tensor<9xi64>, tensor<16xi32>, tensor<16xi32>, tensor<64xi32>, tensor<5x2xi32>
// CHECK: moe.routing_plan %{{.*}} block_rows(2) align(4) : tensor<1x2xi32> -> tensor<9xi64>, tensor<4xi32>, tensor<4xi32>, tensor<8xi32>, tensor<1x2xi32>
func.func @routing_plans(%ids: tensor<?x2xi32>, %few: tensor<5x2xi32>,
                         %one: tensor<1x2xi32>) {
  %o0, %b0, %s0, %r0, %m0 = moe.routing_plan %ids block_rows(16) align(16)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  %o1, %b1, %s1, %r1, %m1 = moe.routing_plan %few block_rows(4) align(8)
      : tensor<5x2xi32> -> tensor<9xi64>, tensor<16xi32>, tensor<16xi32>,
        tensor<64xi32>, tensor<5x2xi32>
  %o2, %b2, %s2, %r2, %m2 = moe.routing_plan %one block_rows(2) align(4)
      : tensor<1x2xi32> -> tensor<9xi64>, tensor<4xi32>, tensor<4xi32>,
        tensor<8xi32>, tensor<1x2xi32>
  return
}

// CHECK-LABEL: func @expert_matmul_forms
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} offsets(%{{.*}} : tensor<9xi64>) bias(%{{.*}} : tensor<8x32xbf16>) : tensor<?x16xf32>, tensor<8x32x16xbf16> -> tensor<?x32xf32>
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} : tensor<8x?x16xf32>, tensor<8x32x16xbf16> -> tensor<8x?x32xf32>
func.func @expert_matmul_forms(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xbf16>,
    %off: tensor<9xi64>, %b: tensor<8x32xbf16>, %slots: tensor<8x?x16xf32>) {
  %0 = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      bias(%b : tensor<8x32xbf16>)
      : tensor<?x16xf32>, tensor<8x32x16xbf16> -> tensor<?x32xf32>
  %1 = moe.expert_matmul %slots, %w
      : tensor<8x?x16xf32>, tensor<8x32x16xbf16> -> tensor<8x?x32xf32>
  return
}

// bf16 rows with f32 sums (the bf16 terms of an f32 linear).
// CHECK-LABEL: func @expert_matmul_f32_sums
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} offsets(%{{.*}} : tensor<2xi64>) : tensor<?x16xbf16>, tensor<1x32x16xbf16> -> tensor<?x32xf32>
func.func @expert_matmul_f32_sums(%rows: tensor<?x16xbf16>, %w: tensor<1x32x16xbf16>,
    %off: tensor<2xi64>) {
  %0 = moe.expert_matmul %rows, %w offsets(%off : tensor<2xi64>)
      : tensor<?x16xbf16>, tensor<1x32x16xbf16> -> tensor<?x32xf32>
  return
}

// Exact products (a router's logits: f32 rows no lowering rounds to bf16).
// CHECK-LABEL: func @expert_matmul_exact
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} offsets(%{{.*}} : tensor<2xi64>) exact_products : tensor<?x16xf32>, tensor<1x32x16xbf16> -> tensor<?x32xf32>
func.func @expert_matmul_exact(%rows: tensor<?x16xf32>, %w: tensor<1x32x16xbf16>,
    %off: tensor<2xi64>) {
  %0 = moe.expert_matmul %rows, %w offsets(%off : tensor<2xi64>) exact_products
      : tensor<?x16xf32>, tensor<1x32x16xbf16> -> tensor<?x32xf32>
  return
}

// Block-scaled FP8 weights: N = 32, K = 16 in blocks of 16 x 16.
// CHECK-LABEL: func @expert_matmul_fp8
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} offsets(%{{.*}} : tensor<9xi64>) scale(%{{.*}} : tensor<8x2x1xf32>) block [16, 16] : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} scale(%{{.*}} : tensor<8x2x1xf32>) block [16, 16] : tensor<8x?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<8x?x32xf32>
func.func @expert_matmul_fp8(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xf8E4M3FN>,
    %s: tensor<8x2x1xf32>, %off: tensor<9xi64>, %slots: tensor<8x?x16xf32>) {
  %0 = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      scale(%s : tensor<8x2x1xf32>) block [16, 16]
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  %1 = moe.expert_matmul %slots, %w scale(%s : tensor<8x2x1xf32>) block [16, 16]
      : tensor<8x?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<8x?x32xf32>
  return
}

// MXFP4 weights: e2m1 pairs, K = 15 in 8 bytes, per-column scales.
// CHECK-LABEL: func @expert_matmul_mxfp4
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} offsets(%{{.*}} : tensor<9xi64>) scale(%{{.*}} : tensor<8x32x1xf32>) block [1, 32] : tensor<?x15xf32>, tensor<8x32x8xi8> -> tensor<?x32xf32>
// CHECK: moe.expert_matmul %{{.*}}, %{{.*}} scale(%{{.*}} : tensor<8x32x1xf32>) block [1, 32] : tensor<8x?x15xf32>, tensor<8x32x8xi8> -> tensor<8x?x32xf32>
func.func @expert_matmul_mxfp4(%rows: tensor<?x15xf32>, %w: tensor<8x32x8xi8>,
    %s: tensor<8x32x1xf32>, %off: tensor<9xi64>, %slots: tensor<8x?x15xf32>) {
  %0 = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      scale(%s : tensor<8x32x1xf32>) block [1, 32]
      : tensor<?x15xf32>, tensor<8x32x8xi8> -> tensor<?x32xf32>
  %1 = moe.expert_matmul %slots, %w scale(%s : tensor<8x32x1xf32>) block [1, 32]
      : tensor<8x?x15xf32>, tensor<8x32x8xi8> -> tensor<8x?x32xf32>
  return
}

// CHECK-LABEL: func @combine_forms
// CHECK: moe.combine %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
// CHECK: moe.combine %{{.*}}, %{{.*}}, %{{.*}} : tensor<8x?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
// CHECK: moe.combine %{{.*}}, %{{.*}}, %{{.*}} init(%{{.*}} : tensor<?x16xf32>) : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
// CHECK: moe.combine %{{.*}}, %{{.*}}, %{{.*}} init(%{{.*}} : tensor<?x16xf32>) : tensor<?x16xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xbf16>
// CHECK: moe.combine %{{.*}}, %{{.*}}, %{{.*}} init(%{{.*}} : tensor<4x16xbf16>) : tensor<8x?x16xbf16>, tensor<4x2xf32>, tensor<4x2xi32> -> tensor<4x16xbf16>
func.func @combine_forms(%rows: tensor<?x16xf32>, %slots: tensor<8x?x16xf32>,
                         %w: tensor<?x2xf32>, %map: tensor<?x2xi32>,
                         %shared: tensor<?x16xf32>, %rows16: tensor<?x16xbf16>,
                         %slots16: tensor<8x?x16xbf16>, %w4: tensor<4x2xf32>,
                         %map4: tensor<4x2xi32>, %shared16: tensor<4x16xbf16>) {
  %0 = moe.combine %rows, %w, %map
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  %1 = moe.combine %slots, %w, %map
      : tensor<8x?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  // Onto an init: f32 whatever the result's type, or the result's type.
  %2 = moe.combine %rows, %w, %map init(%shared : tensor<?x16xf32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  %3 = moe.combine %rows16, %w, %map init(%shared : tensor<?x16xf32>)
      : tensor<?x16xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xbf16>
  %4 = moe.combine %slots16, %w4, %map4 init(%shared16 : tensor<4x16xbf16>)
      : tensor<8x?x16xbf16>, tensor<4x2xf32>, tensor<4x2xi32> -> tensor<4x16xbf16>
  return
}

// CHECK-LABEL: func @grouped_matmul_tensors
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>) outs(%{{.*}} : tensor<?x32xf32>) -> tensor<?x32xf32>
func.func @grouped_matmul_tensors(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xbf16>,
                                  %blocks: tensor<?xi32>, %acc: tensor<?x32xf32>)
    -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>)
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// Block-scaled FP8 weights: scales of blocks of 16 columns x 8 depth, in
// the checkpoint layout with a paired weight, and packed in panels of 8
// columns (dividing the block) in memref form, single or in pairs of K.
// CHECK-LABEL: func @grouped_matmul_block_scaled
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x20xf32>, tensor<2x32x20xf8E4M3FN>, tensor<?xi32>) paired(%{{.*}} : tensor<2x32x20xf8E4M3FN>) scale(%{{.*}} : tensor<2x2x3xf32>) paired_scale(%{{.*}} : tensor<2x2x3xf32>) block [16, 8] outs(%{{.*}} : tensor<?x32xf32>) epilogue {
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<8x20xf32>, memref<2x4x20x8xf8E4M3FN>, memref<2xi32>) scale(%{{.*}} : memref<2x2x3xf32>) block [16, 8] outs(%{{.*}} : memref<8x32xf32>)
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<8x20xf32>, memref<2x4x10x8x2xf8E4M3FN>, memref<2xi32>) scale(%{{.*}} : memref<2x2x3xf32>) block [16, 8] outs(%{{.*}} : memref<8x32xf32>)
func.func @grouped_matmul_block_scaled(%rows: tensor<?x20xf32>,
    %wg: tensor<2x32x20xf8E4M3FN>, %wu: tensor<2x32x20xf8E4M3FN>,
    %sg: tensor<2x2x3xf32>, %su: tensor<2x2x3xf32>, %blocks: tensor<?xi32>,
    %acc: tensor<?x32xf32>, %mrows: memref<8x20xf32>,
    %mw: memref<2x4x20x8xf8E4M3FN>, %ms: memref<2x2x3xf32>,
    %mblocks: memref<2xi32>, %macc: memref<8x32xf32>,
    %mpairs: memref<2x4x10x8x2xf8E4M3FN>) -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %wg, %blocks : tensor<?x20xf32>, tensor<2x32x20xf8E4M3FN>, tensor<?xi32>)
      paired(%wu : tensor<2x32x20xf8E4M3FN>)
      scale(%sg : tensor<2x2x3xf32>) paired_scale(%su : tensor<2x2x3xf32>)
      block [16, 8]
      outs(%acc : tensor<?x32xf32>)
      epilogue {
      ^bb0(%g: f32, %u: f32, %old: f32):
        %y = arith.mulf %g, %u : f32
        moe.yield %y : f32
      } -> tensor<?x32xf32>
  moe.grouped_matmul block_rows(4)
      ins(%mrows, %mw, %mblocks : memref<8x20xf32>, memref<2x4x20x8xf8E4M3FN>, memref<2xi32>)
      scale(%ms : memref<2x2x3xf32>) block [16, 8]
      outs(%macc : memref<8x32xf32>)
  moe.grouped_matmul block_rows(4)
      ins(%mrows, %mpairs, %mblocks : memref<8x20xf32>, memref<2x4x10x8x2xf8E4M3FN>, memref<2xi32>)
      scale(%ms : memref<2x2x3xf32>) block [16, 8]
      outs(%macc : memref<8x32xf32>)
  return %r : tensor<?x32xf32>
}

// MXFP4 weights (e2m1 pairs, K = 20 in 10 bytes) with per-column scales:
// in the checkpoint layout, and packed in panels of 8 columns with the
// scales packed alike ([E, NP, KB, P]).
// CHECK-LABEL: func @grouped_matmul_mxfp4
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x20xf32>, tensor<2x32x10xi8>, tensor<?xi32>) scale(%{{.*}} : tensor<2x32x1xf32>) block [1, 32] outs(%{{.*}} : tensor<?x32xf32>) -> tensor<?x32xf32>
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<8x20xf32>, memref<2x4x10x8xi8>, memref<2xi32>) scale(%{{.*}} : memref<2x4x1x8xf32>) block [1, 32] outs(%{{.*}} : memref<8x32xf32>)
func.func @grouped_matmul_mxfp4(%rows: tensor<?x20xf32>, %w: tensor<2x32x10xi8>,
    %s: tensor<2x32x1xf32>, %blocks: tensor<?xi32>, %acc: tensor<?x32xf32>,
    %mrows: memref<8x20xf32>, %mw: memref<2x4x10x8xi8>,
    %ms: memref<2x4x1x8xf32>, %mblocks: memref<2xi32>,
    %macc: memref<8x32xf32>) -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x20xf32>, tensor<2x32x10xi8>, tensor<?xi32>)
      scale(%s : tensor<2x32x1xf32>) block [1, 32]
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  moe.grouped_matmul block_rows(4)
      ins(%mrows, %mw, %mblocks : memref<8x20xf32>, memref<2x4x10x8xi8>, memref<2xi32>)
      scale(%ms : memref<2x4x1x8xf32>) block [1, 32]
      outs(%macc : memref<8x32xf32>)
  return %r : tensor<?x32xf32>
}

// CHECK-LABEL: func @grouped_matmul_block_sizes
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>) block_sizes(%{{.*}} : tensor<2xi32>) outs(%{{.*}} : tensor<8x32xf32>) -> tensor<8x32xf32>
func.func @grouped_matmul_block_sizes(%rows: tensor<8x16xf32>, %w: tensor<2x32x16xf32>,
                                      %blocks: tensor<2xi32>, %sizes: tensor<2xi32>,
                                      %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<8x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>)
      block_sizes(%sizes : tensor<2xi32>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// Scattered rows: 8 rows add, scaled, to rows of a [T = 3, 32] result;
// with gathered rows too (S = 5 tokens), in memref form.
// CHECK-LABEL: func @grouped_matmul_scatter
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>) scatter(%{{.*}}, %{{.*}} : tensor<8xi32>, tensor<8xf32>) outs(%{{.*}} : tensor<3x32xf32>) -> tensor<3x32xf32>
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<5x16xf32>, memref<2x32x16xf32>, memref<2xi32>) row_sources(%{{.*}} : memref<8xi32>) scatter(%{{.*}}, %{{.*}} : memref<8xi32>, memref<8xf32>) outs(%{{.*}} : memref<3x32xf32>)
func.func @grouped_matmul_scatter(%rows: tensor<8x16xf32>, %w: tensor<2x32x16xf32>,
                                  %blocks: tensor<2xi32>, %targets: tensor<8xi32>,
                                  %scales: tensor<8xf32>, %acc: tensor<3x32xf32>,
                                  %x: memref<5x16xf32>, %wm: memref<2x32x16xf32>,
                                  %bm: memref<2xi32>, %src: memref<8xi32>,
                                  %tm: memref<8xi32>, %sm: memref<8xf32>,
                                  %out: memref<3x32xf32>) -> tensor<3x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<8x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>)
      scatter(%targets, %scales : tensor<8xi32>, tensor<8xf32>)
      outs(%acc : tensor<3x32xf32>) -> tensor<3x32xf32>
  moe.grouped_matmul block_rows(4)
      ins(%x, %wm, %bm : memref<5x16xf32>, memref<2x32x16xf32>, memref<2xi32>)
      row_sources(%src : memref<8xi32>)
      scatter(%tm, %sm : memref<8xi32>, memref<8xf32>)
      outs(%out : memref<3x32xf32>)
  return %r : tensor<3x32xf32>
}

// Atomic scattered adds (row blocks parallel).
// CHECK-LABEL: func @grouped_matmul_atomic_scatter
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>) scatter(%{{.*}}, %{{.*}} : tensor<8xi32>, tensor<8xf32>) atomic outs(%{{.*}} : tensor<3x32xf32>) -> tensor<3x32xf32>
func.func @grouped_matmul_atomic_scatter(%rows: tensor<8x16xf32>,
    %w: tensor<2x32x16xf32>, %blocks: tensor<2xi32>, %targets: tensor<8xi32>,
    %scales: tensor<8xf32>, %acc: tensor<3x32xf32>) -> tensor<3x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<8x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>)
      scatter(%targets, %scales : tensor<8xi32>, tensor<8xf32>) atomic
      outs(%acc : tensor<3x32xf32>) -> tensor<3x32xf32>
  return %r : tensor<3x32xf32>
}

// Scattered rows of unique targets (row blocks parallel, plain adds).
// CHECK-LABEL: func @grouped_matmul_unique_scatter
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<8x16xf32>, memref<2x32x16xf32>, memref<2xi32>) scatter(%{{.*}}, %{{.*}} : memref<8xi32>, memref<8xf32>) unique outs(%{{.*}} : memref<8x32xf32>)
func.func @grouped_matmul_unique_scatter(%rows: memref<8x16xf32>,
    %w: memref<2x32x16xf32>, %blocks: memref<2xi32>, %targets: memref<8xi32>,
    %scales: memref<8xf32>, %out: memref<8x32xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<8x16xf32>, memref<2x32x16xf32>, memref<2xi32>)
      scatter(%targets, %scales : memref<8xi32>, memref<8xf32>) unique
      outs(%out : memref<8x32xf32>)
  return
}

// An epilogue writing bf16 rows (init of bf16, its element widened to the
// region's f32), on tensors.
// CHECK-LABEL: func @grouped_matmul_epilogue_bf16_rows
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>) paired(%{{.*}} : tensor<8x32x16xbf16>) outs(%{{.*}} : tensor<?x32xbf16>) epilogue {
// CHECK-NEXT: ^bb0(%{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32):
// CHECK: } -> tensor<?x32xbf16>
func.func @grouped_matmul_epilogue_bf16_rows(%x: tensor<?x16xf32>, %wg: tensor<8x32x16xbf16>,
                                             %wu: tensor<8x32x16xbf16>, %blocks: tensor<?xi32>,
                                             %acc: tensor<?x32xbf16>) -> tensor<?x32xbf16> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %wg, %blocks : tensor<?x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>)
      paired(%wu : tensor<8x32x16xbf16>)
      outs(%acc : tensor<?x32xbf16>) epilogue {
  ^bb0(%g: f32, %u: f32, %old: f32):
    %y = arith.mulf %g, %u : f32
    moe.yield %y : f32
  } -> tensor<?x32xbf16>
  return %r : tensor<?x32xbf16>
}

// An epilogue: gate and up (paired) sums combined by SwiGLU, packed
// weights, on tensors; one weight with a ReLU that adds to init, on
// memrefs.
// CHECK-LABEL: func @grouped_matmul_epilogue
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<8x2x16x32xbf16>, tensor<?xi32>) paired(%{{.*}} : tensor<8x2x16x32xbf16>) block_sizes(%{{.*}} : tensor<?xi32>) row_sources(%{{.*}} : tensor<?xi32>) outs(%{{.*}} : tensor<?x37xf32>) epilogue {
// CHECK-NEXT: ^bb0(%[[G:.*]]: f32, %[[U:.*]]: f32, %{{.*}}: f32):
// CHECK: math.exp
// CHECK: %[[Y:.*]] = arith.mulf %{{.*}}, %[[U]] : f32
// CHECK-NEXT: moe.yield %[[Y]] : f32
// CHECK-NEXT: } -> tensor<?x37xf32>
// CHECK: moe.grouped_matmul block_rows(2) ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<4x16xf32>, memref<2x8x16xf16>, memref<2xi32>) outs(%{{.*}} : memref<4x8xf32>) epilogue {
// CHECK-NEXT: ^bb0(%[[S:.*]]: f32, %[[OLD:.*]]: f32):
// CHECK: %[[R:.*]] = arith.maximumf %[[S]], %{{.*}} : f32
// CHECK: arith.addf %[[OLD]], %[[R]] : f32
// CHECK: moe.yield
func.func @grouped_matmul_epilogue(%x: tensor<?x16xf32>, %wg: tensor<8x2x16x32xbf16>,
                                   %wu: tensor<8x2x16x32xbf16>, %blocks: tensor<?xi32>,
                                   %sizes: tensor<?xi32>, %src: tensor<?xi32>,
                                   %acc: tensor<?x37xf32>, %xm: memref<4x16xf32>,
                                   %wm: memref<2x8x16xf16>, %bm: memref<2xi32>,
                                   %out: memref<4x8xf32>) -> tensor<?x37xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %wg, %blocks : tensor<?x16xf32>, tensor<8x2x16x32xbf16>, tensor<?xi32>)
      paired(%wu : tensor<8x2x16x32xbf16>)
      block_sizes(%sizes : tensor<?xi32>) row_sources(%src : tensor<?xi32>)
      outs(%acc : tensor<?x37xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %old: f32):
    %one = arith.constant 1.0 : f32
    %neg = arith.negf %g : f32
    %exp = math.exp %neg : f32
    %den = arith.addf %one, %exp : f32
    %silu = arith.divf %g, %den : f32
    %y = arith.mulf %silu, %u : f32
    moe.yield %y : f32
  } -> tensor<?x37xf32>
  moe.grouped_matmul block_rows(2)
      ins(%xm, %wm, %bm : memref<4x16xf32>, memref<2x8x16xf16>, memref<2xi32>)
      outs(%out : memref<4x8xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    %zero = arith.constant 0.0 : f32
    %relu = arith.maximumf %s, %zero : f32
    %sum = arith.addf %old, %relu : f32
    moe.yield %sum : f32
  }
  return %r : tensor<?x37xf32>
}

// Packed weights: N = 37 columns in 2 panels of 32, the last zero-padded.
// CHECK-LABEL: func @grouped_matmul_packed
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<8x2x16x32xbf16>, tensor<?xi32>) outs(%{{.*}} : tensor<?x37xf32>) -> tensor<?x37xf32>
func.func @grouped_matmul_packed(%rows: tensor<?x16xf32>, %w: tensor<8x2x16x32xbf16>,
                                 %blocks: tensor<?xi32>, %acc: tensor<?x37xf32>)
    -> tensor<?x37xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x2x16x32xbf16>, tensor<?xi32>)
      outs(%acc : tensor<?x37xf32>) -> tensor<?x37xf32>
  return %r : tensor<?x37xf32>
}

// Packed in pairs of K: K = 15 in 8 pairs (the last padded), bf16 rows.
// CHECK-LABEL: func @grouped_matmul_pairs
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x15xbf16>, tensor<8x2x8x32x2xbf16>, tensor<?xi32>) outs(%{{.*}} : tensor<?x37xf32>) -> tensor<?x37xf32>
func.func @grouped_matmul_pairs(%rows: tensor<?x15xbf16>, %w: tensor<8x2x8x32x2xbf16>,
                                %blocks: tensor<?xi32>, %acc: tensor<?x37xf32>)
    -> tensor<?x37xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x15xbf16>, tensor<8x2x8x32x2xbf16>, tensor<?xi32>)
      outs(%acc : tensor<?x37xf32>) -> tensor<?x37xf32>
  return %r : tensor<?x37xf32>
}

// Gathered rows: row r reads input row row_sources[r] (S = 5 tokens).
// CHECK-LABEL: func @grouped_matmul_row_sources
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<5x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>) block_sizes(%{{.*}} : tensor<2xi32>) row_sources(%{{.*}} : tensor<8xi32>) outs(%{{.*}} : tensor<8x32xf32>) -> tensor<8x32xf32>
func.func @grouped_matmul_row_sources(%x: tensor<5x16xf32>, %w: tensor<2x32x16xf32>,
                                      %blocks: tensor<2xi32>, %sizes: tensor<2xi32>,
                                      %sources: tensor<8xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<5x16xf32>, tensor<2x32x16xf32>, tensor<2xi32>)
      block_sizes(%sizes : tensor<2xi32>) row_sources(%sources : tensor<8xi32>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// Exact products, gathering their rows.
// CHECK-LABEL: func @grouped_matmul_exact
// CHECK: moe.grouped_matmul block_rows(64) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<1x32x16xbf16>, tensor<?xi32>) row_sources(%{{.*}} : tensor<?xi32>) exact_products outs(%{{.*}} : tensor<?x32xf32>) -> tensor<?x32xf32>
func.func @grouped_matmul_exact(%x: tensor<?x16xf32>, %w: tensor<1x32x16xbf16>,
                                %blocks: tensor<?xi32>, %sources: tensor<?xi32>,
                                %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(64)
      ins(%x, %w, %blocks : tensor<?x16xf32>, tensor<1x32x16xbf16>, tensor<?xi32>)
      row_sources(%sources : tensor<?xi32>) exact_products
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// Dense (no block ids): one expert's rows, any number of them (R = 70 is
// not whole blocks of 64), on tensors and memrefs, with an epilogue too.
// CHECK-LABEL: func @grouped_matmul_dense
// CHECK: moe.grouped_matmul block_rows(64) ins(%{{.*}}, %{{.*}} : tensor<70x16xf32>, tensor<1x32x16xbf16>) exact_products outs(%{{.*}} : tensor<70x32xf32>) -> tensor<70x32xf32>
// CHECK: moe.grouped_matmul block_rows(16) ins(%{{.*}}, %{{.*}} : memref<?x16xbf16>, memref<1x32x16xbf16>) paired(%{{.*}} : memref<1x32x16xbf16>) outs(%{{.*}} : memref<?x32xbf16>) epilogue {
func.func @grouped_matmul_dense(%x: tensor<70x16xf32>, %w: tensor<1x32x16xbf16>,
                                %acc: tensor<70x32xf32>, %xm: memref<?x16xbf16>,
                                %wm: memref<1x32x16xbf16>, %hm: memref<?x32xbf16>)
    -> tensor<70x32xf32> {
  %r = moe.grouped_matmul block_rows(64)
      ins(%x, %w : tensor<70x16xf32>, tensor<1x32x16xbf16>) exact_products
      outs(%acc : tensor<70x32xf32>) -> tensor<70x32xf32>
  moe.grouped_matmul block_rows(16)
      ins(%xm, %wm : memref<?x16xbf16>, memref<1x32x16xbf16>)
      paired(%wm : memref<1x32x16xbf16>)
      outs(%hm : memref<?x32xbf16>)
      epilogue {
      ^bb0(%g: f32, %u: f32, %old: f32):
        %y = arith.mulf %g, %u : f32
        moe.yield %y : f32
      }
  return %r : tensor<70x32xf32>
}

// A packed weight argument and its packing function.
// CHECK-LABEL: func @packed_argument
// CHECK-SAME: moe.packing = {function = @packed_argument__pack0, shape = array<i64: 8, 37, 16>}
func.func @packed_argument(%w: tensor<8x2x16x32xbf16> {moe.weight = "experts.{e}.w1", moe.packing = {function = @packed_argument__pack0, shape = array<i64: 8, 37, 16>}}) {
  return
}

// CHECK-LABEL: func @grouped_matmul_memrefs
// CHECK: moe.grouped_matmul block_rows(2) ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<6x16xf16>, memref<1x8x16xf32>, memref<3xi32>) outs(%{{.*}} : memref<6x8xf32>)
// CHECK-NOT: ->
func.func @grouped_matmul_memrefs(%rows: memref<6x16xf16>, %w: memref<1x8x16xf32>,
                                  %blocks: memref<3xi32>, %acc: memref<6x8xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : memref<6x16xf16>, memref<1x8x16xf32>, memref<3xi32>)
      outs(%acc : memref<6x8xf32>)
  return
}
