// RUN: moe-opt %s --convert-moe-to-linalg --canonicalize --cse --split-input-file | FileCheck %s

// Capacity-limited, random-second, noisy and expert-choice routing
// (docs/Routing.md conventions; numerics in python/tests/test_routing_compiled.py).

// GShard/V-MoE style: groups of 8 tokens, capacity factor(1.5, ceil, min = 2)
// computed per group in f64 from the group's own size, tokens ordered by
// descending top score, ranks placed one after the other into per-expert
// counters; assignments at or over capacity get id -1; weights renormalized
// over the kept choices (at least eps_f32).
// CHECK-LABEL: func @gate_capacity_score
// CHECK: tensor.parallel_insert_slice
// CHECK: scf.for %[[G:[a-z0-9_]+]] = %c0 to %{{.*}} step %c1 iter_args
// CHECK: %[[START:.*]] = arith.muli %[[G]], %c8
// CHECK: %[[END:.*]] = arith.minsi
// CHECK: %[[SIZE:.*]] = arith.subi %[[END]], %[[START]]
// CHECK: arith.sitofp %{{.*}} : i64 to f64
// CHECK: arith.mulf
// CHECK: arith.mulf
// CHECK: arith.divf
// CHECK: math.ceil
// CHECK: %[[CAP:.*]] = arith.maxsi %{{.*}}, %c2
// CHECK: %[[ORDER:.*]] = scf.for %[[U:[a-z0-9_]+]] = %[[START]] to %[[END]]
// CHECK: tensor.extract %{{.*}}[%[[U]]] : tensor<?xf32>
// CHECK: tensor.insert %[[U]] into %{{.*}} : tensor<?xindex>
// CHECK: %[[COUNTS:.*]] = linalg.fill ins(%c0 : index) {{.*}} -> tensor<4xindex>
// CHECK: scf.for %[[R:[a-z0-9_]+]] = %c0 to %c2
// CHECK: scf.for %[[I:[a-z0-9_]+]] = %c0 to %[[SIZE]]
// CHECK: %[[T:.*]] = tensor.extract %[[ORDER]][%[[I]]]
// CHECK: scf.if
// CHECK: %[[POS:.*]] = tensor.extract %{{.*}} : tensor<4xindex>
// CHECK: %[[OVER:.*]] = arith.cmpi sge, %[[POS]], %[[CAP]]
// CHECK: arith.select %[[OVER]], %c-1_i32
// CHECK: tensor.insert %{{.*}}[%[[T]], %[[R]]] : tensor<?x2xi32>
// CHECK: arith.maximumf %{{.*}}, %cst
// CHECK: arith.divf
// CHECK: arith.select
func.func @gate_capacity_score(%logits: tensor<?x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits
      routing <softmax, top_k = 2, renormalize = kept,
               capacity = factor(1.5, ceil, min = 2), group_size = 8, priority = score>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// Switch style: one group (the batch), fixed capacity, tokens in order (no
// order tensor), no renormalization: dropped weights become 0.
// CHECK-LABEL: func @gate_capacity_fixed
// CHECK-NOT: tensor<?xindex>
// CHECK: arith.ceildivui
// CHECK-NOT: tensor<?xindex>
// CHECK: arith.cmpi sge, %{{.*}}, %c3
// CHECK: arith.select %{{.*}}, %c-1_i32
// CHECK-NOT: arith.divf
// CHECK: arith.select
// CHECK: return
func.func @gate_capacity_fixed(%logits: tensor<?x4xf32>) -> (tensor<?x1xf32>, tensor<?x1xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 1, capacity = fixed(3)>
      : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi32>
  return %w, %ids : tensor<?x1xf32>, tensor<?x1xi32>
}

// -----

// NLLB style: capacity = ceil(fraction * S) with S the batch (at least 1).
// CHECK-LABEL: func @gate_capacity_fraction
// CHECK: %[[S:.*]] = arith.maxui %{{.*}}, %c1
// CHECK: arith.mulf %{{.*}}, %cst{{.*}} : f64
// CHECK-NEXT: math.ceil
func.func @gate_capacity_fraction(%logits: tensor<?x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2, renormalize = kept, capacity = fraction(0.25)>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// Random routing of the second expert: dispatched iff 2 * gate > u[t]
// (before capacity, so skipped choices take no slot).
// CHECK-LABEL: func @gate_random_second
// CHECK-SAME: %[[U:[a-z0-9_]+]]: tensor<?xf32>
// CHECK: tensor.parallel_insert_slice
// CHECK: scf.for %[[T:[a-z0-9_]+]] =
// CHECK: %[[G2:.*]] = tensor.extract %{{.*}}[%[[T]], %c1] : tensor<?x2xf32>
// CHECK: %[[TWICE:.*]] = arith.addf %[[G2]], %[[G2]]
// CHECK: %[[SAMPLE:.*]] = tensor.extract %[[U]][%[[T]]]
// CHECK: arith.cmpf ogt, %[[TWICE]], %[[SAMPLE]]
// CHECK: tensor.insert %{{.*}}[%[[T]], %c1] : tensor<?x2xi32>
// CHECK: math.roundeven
func.func @gate_random_second(%logits: tensor<?x4xf32>, %u: tensor<?xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits uniform(%u : tensor<?xf32>)
      routing <softmax, top_k = 2, renormalize = kept, capacity = factor(2.0, round), second = random>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// Noisy top-k: the (already scaled) noise is added to the logits first.
// CHECK-LABEL: func @gate_noisy
// CHECK-SAME: (%[[L:[a-z0-9_]+]]: tensor<?x4xf32>, %[[N:[a-z0-9_]+]]: tensor<?x4xf32>)
// CHECK: %[[NOISY:.*]] = linalg.generic
// CHECK: tensor.extract %[[L]]
// CHECK: tensor.extract %[[N]]
// CHECK: arith.addf
// CHECK: linalg.generic {{.*}} ins(%[[NOISY]] : tensor<?x4xf32>)
func.func @gate_noisy(%logits: tensor<?x4xf32>, %noise: tensor<?x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits noise(%noise : tensor<?x4xf32>)
      routing <softmax, top_k = 2, renormalize, noisy>
      : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// Expert choice: per (t, e), the rank of token t among its group (groups of
// 4) by the expert's score, kept iff below min(C, S); slot e holds expert e.
// CHECK-LABEL: func @gate_expert_choice
// CHECK: arith.divf
// CHECK: %[[CHOSEN:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK: arith.divui %{{.*}}, %c4
// CHECK: math.roundeven
// CHECK: %[[TAKE:.*]] = arith.minsi
// CHECK: %[[RANK:.*]] = scf.for
// CHECK: arith.cmpi slt, %[[RANK]], %[[TAKE]]
// CHECK: -> tensor<?x3xi1>
// CHECK: linalg.generic
// CHECK: arith.mulf %{{.*}}, %cst
// CHECK: tensor.extract %[[CHOSEN]]
// CHECK: -> tensor<?x3xf32>
// CHECK: linalg.generic
// CHECK: tensor.extract %[[CHOSEN]]
// CHECK: arith.select %{{.*}}, %{{.*}}, %c-1_i32
// CHECK: -> tensor<?x3xi32>
func.func @gate_expert_choice(%logits: tensor<?x3xf32>) -> (tensor<?x3xf32>, tensor<?x3xi32>) {
  %w, %ids = moe.gate %logits
      routing <softmax, expert_choice, scale = 2.0, capacity = factor(2.0, round), group_size = 4>
      : tensor<?x3xf32> -> tensor<?x3xf32>, tensor<?x3xi32>
  return %w, %ids : tensor<?x3xf32>, tensor<?x3xi32>
}
