// RUN: moe-opt %s --convert-moe-to-linalg --split-input-file -verify-diagnostics

// Routing that has no lowering yet fails with one error naming the feature.

func.func @statistics(%logits: tensor<?x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>) {
  // expected-error @+1 {{routing statistics}}
  %w, %ids, %n = moe.gate %logits routing <softmax, top_k = 2> statistics [tokens_per_expert]
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>
  return %w, %ids, %n : tensor<?x2xf32>, tensor<?x2xi32>, tensor<4xi64>
}


// -----

func.func @layer_with_statistics(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>, %w1: tensor<4x8x16xf32>,
                                 %w2: tensor<4x16x8xf32>) -> (tensor<?x16xf32>, tensor<f32>) {
  // expected-error @+1 {{'moe.layer' op cannot be lowered yet: routing statistics is not supported by convert-moe-to-linalg}}
  %y, %z = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 1, capacity = fixed(4)>
      router(%wg : tensor<4x16xf32>)
      experts(up %w1 : tensor<4x8x16xf32>, down %w2 : tensor<4x16x8xf32>) activation relu
      statistics [z_loss]
      -> tensor<?x16xf32>, tensor<f32>
  return %y, %z : tensor<?x16xf32>, tensor<f32>
}
