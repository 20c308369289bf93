// RUN: moe-opt %s --moe-export-entries="cuda-chip=sm_90" | FileCheck %s
// RUN: not moe-opt %s --moe-export-entries="cuda-chip=sm90" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --moe-export-entries="cuda-chip=sm_" 2>&1 | FileCheck %s --check-prefix=EMPTY

// A module for a CUDA GPU: the manifest names the device code, and weight
// arguments keep their bindings for moe-map-to-gpu (device memory).
// CHECK-LABEL: func.func @forward
// CHECK-SAME: {bufferization.writable = false, moe.weight = "gate.weight"}
// CHECK: llvm.mlir.global external constant @moe_module_manifest
// CHECK-SAME: \22gpu\22:{\22api\22:\22cuda\22,\22chip\22:\22sm_90\22}

// BAD: moe-export-entries: cuda-chip must be sm_NN or sm_NNa, got 'sm90'
// EMPTY: moe-export-entries: cuda-chip must be sm_NN or sm_NNa, got 'sm_'
func.func @forward(%x: tensor<?x16xf32>,
                   %w: tensor<4x16xf32> {moe.weight = "gate.weight"}) -> tensor<?x16xf32> {
  return %x : tensor<?x16xf32>
}
