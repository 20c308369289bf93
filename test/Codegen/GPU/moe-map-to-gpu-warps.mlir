// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="routing-block-size=128" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="routing-block-size=16" | FileCheck %s --check-prefix=NARROW

// In the routing kernel, a loop whose iteration holds a reduction over a
// range (moe-fuse-routing's tokens on lanes) runs an iteration per warp:
// each of the 4 warps of 128 threads walks the tokens from its own, its
// lanes split the reduction (every 32nd expert from the lane's) and
// combine their partial maxima by five xor shuffles; the parallel loop
// that writes the token's buffer is spread over the lanes between
// bar.warp.syncs, that buffer is the warp's copy in workgroup memory
// (4 x 8 floats), and the token's store is lane 0's. The scf.if that picks
// this loop or a thread per token joins the routing kernel: one launch.
// With 16 threads (no whole warp) the loop is spread over the threads.
// CHECK-LABEL: func @token_per_warp
// CHECK: gpu.launch
// CHECK-SAME: threads({{.*}}) in ({{.*}} = %c128
// CHECK-SAME: workgroup(%[[COPIES:.*]] : memref<32xf32, #gpu.address_space<workgroup>>)
// CHECK: scf.if
// CHECK:   %[[WARP:.*]] = arith.divui %{{.*}}, %c32
// CHECK:   %[[LANE:.*]] = arith.remui %{{.*}}, %c32
// CHECK:   gpu.barrier
// CHECK:   scf.for %{{.*}} = %[[WARP]] to %{{.*}} step %c4
// CHECK:     %[[OFFSET:.*]] = arith.muli %[[WARP]], %c8
// CHECK:     %[[MINE:.*]] = memref.reinterpret_cast %[[COPIES]] to offset: [%[[OFFSET]]], sizes: [8], strides: [1]
// CHECK:     nvvm.bar.warp.sync
// CHECK:     scf.for %{{.*}} = %[[LANE]] to %{{.*}} step %c32
// CHECK:       memref.store %{{.*}}, %[[MINE]][%{{.*}}]
// CHECK:     nvvm.bar.warp.sync
// CHECK:     nvvm.bar.warp.sync
// CHECK:     scf.for %{{.*}} = %[[LANE]] to %{{.*}} step %c32{{.*}} iter_args
// CHECK:       memref.load %[[MINE]]
// CHECK:       arith.maximumf
// CHECK-COUNT-5: gpu.shuffle  xor
// CHECK:     nvvm.bar.warp.sync
// CHECK:     nvvm.bar.warp.sync
// CHECK:     %[[FIRST:.*]] = arith.cmpi eq, %[[LANE]], %c0
// CHECK:     scf.if %[[FIRST]] {
// CHECK:       memref.store
// CHECK:     nvvm.bar.warp.sync
// CHECK:   gpu.barrier
// CHECK: } else {
// CHECK:   scf.for
// CHECK-NOT: gpu.launch
// CHECK: return
// NARROW-LABEL: func @token_per_warp
// NARROW-NOT: nvvm.bar.warp.sync
// NARROW-NOT: gpu.shuffle
// NARROW: return
func.func @token_per_warp(%logits: memref<?x8xf32>, %best: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %ninf = arith.constant 0xFF800000 : f32
  %t = memref.dim %logits, %c0 : memref<?x8xf32>
  %few = arith.cmpi ule, %t, %c16 : index
  scf.if %few {
    scf.parallel (%i) = (%c0) to (%t) step (%c1) {
      %scratch = memref.alloc() : memref<8xf32>
      scf.parallel (%e) = (%c0) to (%c8) step (%c1) {
        %l = memref.load %logits[%i, %e] : memref<?x8xf32>
        memref.store %l, %scratch[%e] : memref<8xf32>
        scf.reduce
      }
      %max = scf.parallel (%e) = (%c0) to (%c8) step (%c1) init (%ninf) -> f32 {
        %v = memref.load %scratch[%e] : memref<8xf32>
        scf.reduce(%v : f32) {
        ^bb0(%a: f32, %b: f32):
          %m = arith.maximumf %a, %b : f32
          scf.reduce.return %m : f32
        }
      }
      memref.store %max, %best[%i] : memref<?xf32>
      memref.dealloc %scratch : memref<8xf32>
      scf.reduce
    }
  } else {
    scf.parallel (%i) = (%c0) to (%t) step (%c1) {
      %m = scf.for %e = %c0 to %c8 step %c1 iter_args(%acc = %ninf) -> f32 {
        %l = memref.load %logits[%i, %e] : memref<?x8xf32>
        %n = arith.maximumf %acc, %l : f32
        scf.yield %n : f32
      }
      memref.store %m, %best[%i] : memref<?xf32>
      scf.reduce
    }
  }
  return
}

// -----

// 64-bit reductions (moe-fuse-routing's selection keys) shuffle their two
// words. A buffer of 4096 floats per warp fits the warps' 32 KiB of
// workgroup memory twice: 2 of the 4 warps take iterations, the others
// wait at the block's barrier.
// CHECK-LABEL: func @keys_and_large_buffers
// CHECK: gpu.launch
// CHECK-SAME: workgroup(%[[COPIES:.*]] : memref<8192xf32, #gpu.address_space<workgroup>>)
// CHECK: %[[WARP:.*]] = arith.divui %{{.*}}, %c32
// CHECK: arith.cmpi ult, %[[WARP]], %c4
// CHECK: arith.trunci %{{.*}} : i64 to i32
// CHECK: arith.shrui
// CHECK: gpu.shuffle  xor
// CHECK: gpu.shuffle  xor
// CHECK: arith.maxui
// CHECK: %[[WARP2:.*]] = arith.divui %{{.*}}, %c32
// CHECK: %[[TAKES:.*]] = arith.cmpi ult, %[[WARP2]], %c2
// CHECK: scf.if %[[TAKES]] {
// CHECK:   scf.for %{{.*}} = %[[WARP2]] to %{{.*}} step %c2
// CHECK:     memref.reinterpret_cast %[[COPIES]]
// CHECK: gpu.barrier
// CHECK: return
func.func @keys_and_large_buffers(%keys: memref<?x8xi64>, %best: memref<?xi64>,
                                  %big: memref<?x4096xf32>, %out: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c4096 = arith.constant 4096 : index
  %zero = arith.constant 0 : i64
  %fzero = arith.constant 0.0 : f32
  %t = memref.dim %keys, %c0 : memref<?x8xi64>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %k = scf.parallel (%e) = (%c0) to (%c8) step (%c1) init (%zero) -> i64 {
      %v = memref.load %keys[%i, %e] : memref<?x8xi64>
      scf.reduce(%v : i64) {
      ^bb0(%a: i64, %b: i64):
        %m = arith.maxui %a, %b : i64
        scf.reduce.return %m : i64
      }
    }
    memref.store %k, %best[%i] : memref<?xi64>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %scratch = memref.alloc() : memref<4096xf32>
    %s = scf.parallel (%e) = (%c0) to (%c4096) step (%c1) init (%fzero) -> f32 {
      %v = memref.load %big[%i, %e] : memref<?x4096xf32>
      memref.store %v, %scratch[%e] : memref<4096xf32>
      scf.reduce(%v : f32) {
      ^bb0(%a: f32, %b: f32):
        %m = arith.addf %a, %b : f32
        scf.reduce.return %m : f32
      }
    }
    memref.store %s, %out[%i] : memref<?xf32>
    memref.dealloc %scratch : memref<4096xf32>
    scf.reduce
  }
  return
}
