// Options and layers moe-dense-to-moe refuses, each with one error.
// RUN: not moe-opt %s --moe-dense-to-moe="mode=merge" 2>&1 | FileCheck %s --check-prefix=MODE
// RUN: not moe-opt %s --moe-dense-to-moe="experts=0" 2>&1 | FileCheck %s --check-prefix=EXPERTS
// RUN: not moe-opt %s --moe-dense-to-moe="shared=-1" 2>&1 | FileCheck %s --check-prefix=SHARED
// RUN: not moe-opt %s --moe-dense-to-moe="mode=upcycle shared=2" 2>&1 | FileCheck %s --check-prefix=UPSHARED
// RUN: not moe-opt %s --moe-dense-to-moe="experts=4 top-k=5" 2>&1 | FileCheck %s --check-prefix=TOPK
// RUN: not moe-opt %s --moe-dense-to-moe="routing=<softmax,top_k=9>" 2>&1 | FileCheck %s --check-prefix=ROUTINGK
// RUN: not moe-opt %s --moe-dense-to-moe="routing=<softmax>>" 2>&1 | FileCheck %s --check-prefix=SYNTAX
// RUN: not moe-opt %s --moe-dense-to-moe="routing=<softmax,top_k=2,noisy>" 2>&1 | FileCheck %s --check-prefix=NOISY
// RUN: not moe-opt %s --moe-dense-to-moe="top-k=1 routing=<softmax,top_k=2>" 2>&1 | FileCheck %s --check-prefix=MISMATCH
// RUN: not moe-opt %s --moe-dense-to-moe="experts=7 shared=2" 2>&1 | FileCheck %s --check-prefix=FEW
// RUN: not moe-opt %s --moe-dense-to-moe="experts=2 router-weight=r" 2>&1 | FileCheck %s --check-prefix=TWO
// RUN: not moe-opt %s --split-input-file --moe-dense-to-moe="experts=2" 2>&1 | FileCheck %s --check-prefix=LAYER

// MODE: error: moe-dense-to-moe: mode must be 'split' or 'upcycle', got 'merge'
// EXPERTS: error: moe-dense-to-moe: experts must be at least 1, got 0
// SHARED: error: moe-dense-to-moe: shared must be non-negative, got -1
// UPSHARED: error: moe-dense-to-moe: shared neurons apply to mode=split
// TOPK: error: moe-dense-to-moe: top-k must be 0 (the routing's) or in [1, experts = 4], got 5
// ROUTINGK: error: moe-dense-to-moe: routing top_k (9) exceeds the number of experts (8)
// SYNTAX: error: moe-dense-to-moe: routing '<softmax>>' is not a #moe.routing attribute
// NOISY: error: moe-dense-to-moe: routing '<softmax,top_k=2,noisy>' needs operands
// MISMATCH: error: moe-dense-to-moe: top-k = 1 but the routing has top_k = 2
// FEW: error: 'moe.layer' op moe-dense-to-moe: 8 neurons with 2 shared leave fewer than one for each of 7 experts
// TWO: error: moe-dense-to-moe: 'router-weight' names one checkpoint tensor, but {{[0-9]+}} dense layers would bind it
func.func @two(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
               %wd: tensor<1x16x8xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu -> tensor<?x16xf32>
  %b = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu -> tensor<?x16xf32>
  return %a, %b : tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// LAYER: error: 'moe.layer' op 'moe.neuron_importance' has 3 scores for 8 neurons
func.func @importance_size(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                           %wd: tensor<1x16x8xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu {moe.neuron_importance = array<f32: 1.0, 2.0, 3.0>}
      -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

// LAYER: error: 'moe.layer' op 'moe.neuron_importance' must be an array or rank-1 dense elements of floats
func.func @importance_kind(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                           %wd: tensor<1x16x8xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu {moe.neuron_importance = "high"}
      -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

// LAYER: error: 'moe.layer' op 'moe.neuron_importance' scores must be finite
func.func @importance_nan(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                          %wd: tensor<1x16x8xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu {moe.neuron_importance = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0x7FC00000]> : tensor<8xf32>}
      -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

// LAYER: error: 'moe.layer' op moe-dense-to-moe: mode=split needs a static intermediate size
func.func @dynamic_neurons(%x: tensor<?x16xf32>, %wu: tensor<1x?x16xf32>,
                           %wd: tensor<1x16x?xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x?x16xf32>, down %wd : tensor<1x16x?xf32>)
      activation relu -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

// RUN: not moe-opt %s --split-input-file --moe-dense-to-moe="experts=2 shared=2" 2>&1 | FileCheck %s --check-prefix=SHAREDLAYER
// SHAREDLAYER: error: 'moe.layer' op moe-dense-to-moe: the shared neurons become the shared expert, which this layer has already
// SHAREDLAYER: error: 'moe.layer' op moe-dense-to-moe: the shared neurons become the shared expert, which has no gate or up biases
func.func @has_shared(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                      %wd: tensor<1x16x8xf32>, %su: tensor<4x16xf32>,
                      %sd: tensor<16x4xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu shared_up(%su : tensor<4x16xf32>)
      shared_down(%sd : tensor<16x4xf32>) -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

func.func @up_bias(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                   %wd: tensor<1x16x8xf32>, %bu: tensor<1x8xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu up_bias(%bu : tensor<1x8xf32>) -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

// LAYER: error: 'moe.layer' op 'moe.neuron_importance' must be an array or rank-1 dense elements of floats
func.func @importance_rank(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                           %wd: tensor<1x16x8xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu {moe.neuron_importance = dense<1.0> : tensor<2x4xf32>}
      -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

// -----

// A bound router is a new argument, which a called function cannot take.
// RUN: not moe-opt %s --split-input-file --moe-dense-to-moe="experts=2 router-weight=r" 2>&1 | FileCheck %s --check-prefix=CALLED
// CALLED: error: 'moe.layer' op moe-dense-to-moe: 'router-weight' binds a new argument of @called, which its callers do not pass
func.func private @called(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                          %wd: tensor<1x16x8xf32>) -> tensor<?x16xf32> {
  %r = arith.constant dense<0.0> : tensor<1x16xf32>
  %a = moe.layer %x : tensor<?x16xf32> routing <softmax, top_k = 1>
      router(%r : tensor<1x16xf32>)
      experts(up %wu : tensor<1x8x16xf32>, down %wd : tensor<1x16x8xf32>)
      activation relu -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}
func.func @caller(%x: tensor<?x16xf32>, %wu: tensor<1x8x16xf32>,
                  %wd: tensor<1x16x8xf32>) -> tensor<?x16xf32> {
  %y = func.call @called(%x, %wu, %wd)
      : (tensor<?x16xf32>, tensor<1x8x16xf32>, tensor<1x16x8xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
