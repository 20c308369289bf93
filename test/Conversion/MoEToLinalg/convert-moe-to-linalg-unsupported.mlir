// RUN: moe-opt %s --convert-moe-to-linalg --split-input-file -verify-diagnostics

// Routing that has no lowering yet fails with one error naming the feature.

func.func @expert_choice(%logits: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<?x4xi32>) {
  // expected-error @+1 {{'moe.gate' op cannot be lowered yet: expert-choice routing is not supported by convert-moe-to-linalg}}
  %w, %ids = moe.gate %logits routing <softmax, expert_choice, capacity = fixed(2)>
      : tensor<?x4xf32> -> tensor<?x4xf32>, tensor<?x4xi32>
  return %w, %ids : tensor<?x4xf32>, tensor<?x4xi32>
}

// -----

func.func @capacity(%logits: tensor<?x4xf32>) -> (tensor<?x1xf32>, tensor<?x1xi32>) {
  // expected-error @+1 {{capacity-limited routing}}
  %w, %ids = moe.gate %logits routing <softmax, top_k = 1, capacity = fixed(2)>
      : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  return %w, %ids : tensor<?x1xf32>, tensor<?x1xi32>
}

// -----

func.func @random_second(%logits: tensor<?x4xf32>, %u: tensor<?xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  // expected-error @+1 {{random second-choice routing}}
  %w, %ids = moe.gate %logits uniform(%u : tensor<?xf32>)
      routing <softmax, top_k = 2, capacity = fixed(2), second = random>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

func.func @noisy(%logits: tensor<?x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  // expected-error @+1 {{noisy gating}}
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2, noisy>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

func.func @statistics(%logits: tensor<?x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>) {
  // expected-error @+1 {{routing statistics}}
  %w, %ids, %n = moe.gate %logits routing <softmax, top_k = 2> statistics [tokens_per_expert]
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>
  return %w, %ids, %n : tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>
}

// -----

func.func @layer_with_capacity(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>, %w1: tensor<4x8x16xf32>,
                               %w2: tensor<4x16x8xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'moe.layer' op cannot be lowered yet: capacity-limited routing}}
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 1, capacity = fixed(4)>
      router(%wg : tensor<4x16xf32>)
      experts(up %w1 : tensor<4x8x16xf32>, down %w2 : tensor<4x16x8xf32>) activation relu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
