// REQUIRES: cuda-toolkit
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s

// A DeepSeek-style layer (group routing with a selection bias, bf16
// experts and a shared expert) on the CUDA path: no value comes back to
// the host before the result, and 7 kernels run per call (with the
// alternative tilings of each projection, chosen on the host from T):
// the router (16 experts, fewer than the 32 whose router takes the tensor
// cores from 512 tokens: on the CUDA cores at every T) with the top-k
// scratch's fill and the shared expert's plan
// (which depends on T alone: moe-fuse-sibling-loops; a block per token
// and expert at few tokens, else a thread each), the routing block (the
// group top-k, which reads the selection bias, a vector weight, and the
// routed plan), the routed gate/up and down tiles, the shared expert's
// gate/up and down tiles, and the routed combine, which adds each token's
// sum to its row of the shared expert's output (moe.combine's init; the
// shared expert's combine is a view: one row per token, in order).
// From 1024 tokens an eighth, after the routing block, rounds the token rows
// to bf16 once for both gate/up projections (each has its tilings twice:
// on the rounded rows and on the f32 ones).
// After the input's copy the only copy is the result's, and the host
// waits once, at the end.
// CHECK-LABEL: func.func @forward
// CHECK: gpu.memcpy
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.wait [
// CHECK: gpu.launch_func {{.*}}@forward_team_0::
// CHECK: } else {
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.wait [
// CHECK: gpu.launch_func {{.*}}@forward_loop_1::
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.wait [
// CHECK: gpu.launch_func {{.*}}@forward_routing_2::
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.wait [
// CHECK: gpu.launch_func {{.*}}@forward_rows_3::
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.wait [
// CHECK-COUNT-11: gpu.launch_func {{.*}}@forward_tiles_
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.wait [
// CHECK-NOT: gpu.launch_func {{.*}}@forward_loop_
// CHECK-COUNT-11: gpu.launch_func {{.*}}@forward_tiles_
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.wait [
// CHECK: gpu.launch_func {{.*}}@forward_loop_26::
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.memcpy
// CHECK: gpu.wait [
// CHECK-NOT: gpu.wait [
// CHECK: return
// No kernel runs one thread.
// CHECK-NOT: gpu.module @forward_serial
func.func @forward(%x: tensor<?x64xf32>,
    %router: tensor<16x64xbf16> {moe.weight = "gate.weight"},
    %bias: tensor<16xf32> {moe.weight = "gate.e_score_correction_bias"},
    %w1: tensor<16x256x64xbf16> {moe.weight = "experts.{e}.gate_proj.weight"},
    %w3: tensor<16x256x64xbf16> {moe.weight = "experts.{e}.up_proj.weight"},
    %w2: tensor<16x64x256xbf16> {moe.weight = "experts.{e}.down_proj.weight"},
    %s1: tensor<256x64xbf16> {moe.weight = "shared.gate_proj.weight"},
    %s3: tensor<256x64xbf16> {moe.weight = "shared.up_proj.weight"},
    %s2: tensor<64x256xbf16> {moe.weight = "shared.down_proj.weight"}) -> tensor<?x64xf32> {
  %y = moe.layer %x : tensor<?x64xf32>
      routing <sigmoid, top_k = 4, renormalize, scale = 2.5, selection_bias, groups = 4, topk_groups = 2, group_score = sum_top2>
      router(%router : tensor<16x64xbf16>)
      score_bias(%bias : tensor<16xf32>)
      experts(gate %w1 : tensor<16x256x64xbf16>, up %w3 : tensor<16x256x64xbf16>,
              down %w2 : tensor<16x64x256xbf16>) activation silu
      shared_gate(%s1 : tensor<256x64xbf16>)
      shared_up(%s3 : tensor<256x64xbf16>)
      shared_down(%s2 : tensor<64x256xbf16>)
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
