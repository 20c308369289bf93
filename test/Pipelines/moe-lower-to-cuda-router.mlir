// REQUIRES: cuda-toolkit
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma" --mlir-print-ir-after=moe-linears-to-bf16-terms -o /dev/null 2>&1 | FileCheck %s --check-prefix=TERMS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=KERNELS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma tensor-core-router-min-tokens=0" --mlir-print-ir-after=moe-linears-to-bf16-terms -o /dev/null 2>&1 | FileCheck %s --check-prefix=ALWAYS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma tensor-core-router-min-tokens=-1" --mlir-print-ir-after=moe-form-grouped-matmul -o /dev/null 2>&1 | FileCheck %s --check-prefix=NEVER
// The default narrow tilings are those below an explicit tile-n, and none
// without multiprocessors to choose by: both lower.
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma tile-n=64" -o /dev/null
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma multiprocessors=0" -o /dev/null
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home reference=1" --mlir-print-ir-after=moe-decompose -o /dev/null 2>&1 | FileCheck %s --check-prefix=NEVER

// The router's logits (f32 over bf16 weights of 32 experts, the fewest
// that take the tensor cores) from 512 tokens on the tensor cores: the
// host chooses on T between the bf16 terms on one expert's grouped matmul
// and the f32 matmul.
// TERMS-LABEL: func.func @forward
// TERMS:         %[[ENOUGH:.*]] = arith.cmpi uge, %{{.*}}, %c512
// TERMS:         %[[LOGITS:.*]] = scf.if %[[ENOUGH]] -> (tensor<?x32xf32>) {
// TERMS-NOT:       linalg.generic
// TERMS-NOT:       moe.dispatch
// TERMS:           moe.grouped_matmul block_rows(64) ins(%{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<1x32x64xbf16>) exact_products outs(%{{.*}} : tensor<?x32xf32>) -> tensor<?x32xf32>
// TERMS:         } else {
// TERMS:           linalg.matmul
// TERMS:         moe.gate %[[LOGITS]]
// TERMS-NOT:     scf.if %[[ENOUGH]]
// With tensor-core-router-min-tokens=0, at every T.
// ALWAYS-LABEL: func.func @forward
// ALWAYS-NOT:    linalg.matmul
// ALWAYS:        moe.grouped_matmul {{.*}} tensor<1x32x64xbf16>) exact_products
// ALWAYS-NOT:    linalg.matmul
// ALWAYS:        moe.gate
// Never (negative), nor in the reference lowering.
// NEVER-LABEL: func.func @forward
// NEVER-NOT:     tensor<1x32x64xbf16>
// NEVER:         linalg.matmul
// NEVER-NOT:     tensor<1x32x64xbf16>
// NEVER:         return

// Kernels: from 512 tokens the router's tiles (32 columns, or 16 while
// 32-column ones would not fill the GPU; a dense grouped matmul, with no
// routing plan to compute first), which split the f32 token rows into
// bf16 terms as they load them and write the logits; below 512 tokens the
// CUDA-core router; then the routing block (top-k and the experts' plan),
// which starts after them: routing and plan in two kernels at every T.
// KERNELS-LABEL: func.func @forward
// KERNELS:         scf.if
// KERNELS-NOT:       gpu.launch_func
// KERNELS:           scf.if
// KERNELS:             gpu.launch_func {{.*}} @forward_tiles_0::@forward_tiles_0 blocks in {{.*}} threads in (%c128
// KERNELS:           } else {
// KERNELS:             gpu.launch_func {{.*}} @forward_tiles_1::@forward_tiles_1 blocks in {{.*}} threads in (%c128
// KERNELS-NOT:       gpu.launch_func
// KERNELS:         } else {
// KERNELS:           gpu.launch_func {{.*}} @forward_team_2::@forward_team_2
// KERNELS:           gpu.launch_func {{.*}} @forward_loop_3::@forward_loop_3
// KERNELS-NOT:     gpu.launch_func
// KERNELS:         gpu.memset
// KERNELS:         gpu.launch_func {{.*}} @forward_routing_4::@forward_routing_4 blocks in (%{{.*}}, %c1, %c1) threads in (%c512
// KERNELS:         gpu.launch_func {{.*}} @forward_{{rows|tiles}}_{{[0-9]+}}::

func.func @forward(%x: tensor<?x64xf32>,
    %wg: tensor<32x64xbf16> {moe.weight = "gate.weight"},
    %w1: tensor<32x16x64xbf16> {moe.weight = "experts.{e}.w1.weight"},
    %w3: tensor<32x16x64xbf16> {moe.weight = "experts.{e}.w3.weight"},
    %w2: tensor<32x64x16xbf16> {moe.weight = "experts.{e}.w2.weight"}) -> tensor<?x64xf32> {
  %y = moe.layer %x : tensor<?x64xf32>
      routing <softmax, top_k = 4, renormalize>
      router(%wg : tensor<32x64xbf16>)
      experts(gate %w1 : tensor<32x16x64xbf16>, up %w3 : tensor<32x16x64xbf16>,
              down %w2 : tensor<32x64x16xbf16>) activation silu
      -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
