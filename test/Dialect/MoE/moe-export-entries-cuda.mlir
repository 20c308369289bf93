// RUN: moe-opt %s --moe-export-entries="cuda-chip=sm_90" | FileCheck %s
// RUN: not moe-opt %s --moe-export-entries="cuda-chip=sm90" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --moe-export-entries="cuda-chip=sm_" 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: moe-opt %s --moe-export-entries="cuda-chip=sm_90a device-io" | FileCheck %s --check-prefix=DEVICE
// RUN: not moe-opt %s --moe-export-entries="device-io" 2>&1 | FileCheck %s --check-prefix=NOCHIP

// A module for a CUDA GPU: the manifest names the device code, and weight
// arguments keep their bindings for moe-map-to-gpu (device memory).
// CHECK-LABEL: func.func @forward
// CHECK-SAME: {bufferization.writable = false, moe.weight = "gate.weight"}
// CHECK: llvm.mlir.global external constant @moe_module_manifest
// CHECK-SAME: \22gpu\22:{\22api\22:\22cuda\22,\22chip\22:\22sm_90\22,\22io\22:\22host\22}

// With device-io the entries' inputs and results are device memory, and
// the entries are in destination-passing style: each result gets a last
// argument of its type, the caller's buffer (writable), into which the
// entry materializes it and which it returns; the manifest names it an
// output of result 0.
// DEVICE-LABEL: func.func @forward
// DEVICE-SAME: %[[X:.*]]: tensor<?x16xf32> {bufferization.writable = false},
// DEVICE-SAME: {bufferization.writable = false, moe.weight = "gate.weight"},
// DEVICE-SAME: %[[OUT:.*]]: tensor<?x16xf32> {bufferization.writable = true}) -> tensor<?x16xf32>
// DEVICE: %[[R:.*]] = bufferization.materialize_in_destination %[[X]] in %[[OUT]] : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
// DEVICE: return %[[R]]
// DEVICE: {\22dtype\22:\22f32\22,\22kind\22:\22output\22,\22result\22:0,\22shape\22:[-1,16]}]
// DEVICE-SAME: \22gpu\22:{\22api\22:\22cuda\22,\22chip\22:\22sm_90a\22,\22io\22:\22device\22}
// NOCHIP: moe-export-entries: device-io needs cuda-chip

// BAD: moe-export-entries: cuda-chip must be sm_NN or sm_NNa, got 'sm90'
// EMPTY: moe-export-entries: cuda-chip must be sm_NN or sm_NNa, got 'sm_'
func.func @forward(%x: tensor<?x16xf32>,
                   %w: tensor<4x16xf32> {moe.weight = "gate.weight"}) -> tensor<?x16xf32> {
  return %x : tensor<?x16xf32>
}
