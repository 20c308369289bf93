// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma="max-shared-bytes=65536" --verify-diagnostics

func.func @host(%x: memref<64x64xf32>, %w: memref<2x32x64xbf16>,
                %experts: memref<1xi32>, %y: memref<64x32xf32>) {
  // expected-error @below {{moe-lower-grouped-matmul-to-wgmma: expects the op in a gpu.launch}}
  moe.grouped_matmul block_rows(64)
      ins(%x, %w, %experts : memref<64x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
      outs(%y : memref<64x32xf32>)
  return
}

// -----

func.func @tensors(%x: tensor<64x64xf32>, %w: tensor<2x32x64xbf16>,
                   %experts: tensor<1xi32>, %y: tensor<64x32xf32>) -> tensor<64x32xf32> {
  // expected-error @below {{moe-lower-grouped-matmul-to-wgmma: expects the memref form (run after bufferization)}}
  %r = moe.grouped_matmul block_rows(64)
      ins(%x, %w, %experts : tensor<64x64xf32>, tensor<2x32x64xbf16>, tensor<1xi32>)
      outs(%y : tensor<64x32xf32>) -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}

// -----

// Left for moe-lower-grouped-matmul-to-mma (the CUDA cores), each with a
// remark saying why.
func.func @left(%x: memref<64x64xf32>, %wf: memref<2x32x64xf32>,
                %w: memref<2x32x64xbf16>, %experts: memref<1xi32>,
                %experts4: memref<4xi32>, %y: memref<64x32xf32>,
                %xs: memref<64x64xf32, strided<[128, 2]>>,
                %wo: memref<2x32x64xbf16, strided<[2048, 64, 1], offset: 4>>,
                %wk: memref<2x32x72xbf16>, %w256: memref<2x256x64xbf16>,
                %y256: memref<64x256xf32>, %x128: memref<128x64xf32>,
                %y128: memref<128x32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c128 = arith.constant 128 : index
  %c256 = arith.constant 256 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    // expected-remark @below {{moe-lower-grouped-matmul-to-wgmma: left for moe-lower-grouped-matmul-to-mma: its weights are not [E, N, K] memrefs of bf16}}
    moe.grouped_matmul block_rows(64)
        ins(%x, %wf, %experts : memref<64x64xf32>, memref<2x32x64xf32>, memref<1xi32>)
        outs(%y : memref<64x32xf32>)
    // expected-remark @below {{its blocks are not of 64 or 128 rows (one or two of wgmma's M)}}
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts4 : memref<64x64xf32>, memref<2x32x64xbf16>, memref<4xi32>)
        outs(%y : memref<64x32xf32>)
    // expected-remark @below {{its blocks of 128 rows take one warpgroup (64 rows), a producer and one warpgroup per 64 rows, or a producer and two taking 64-row blocks in turns, not the 1 of its gpu.launch}}
    moe.grouped_matmul block_rows(128)
        ins(%x128, %w, %experts : memref<128x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
        outs(%y128 : memref<128x32xf32>)
    %local = memref.alloca() : memref<2x32x64xbf16>
    // expected-remark @below {{a weight is not a unit-stride subview of a memref defined above the launch}}
    moe.grouped_matmul block_rows(64)
        ins(%x, %local, %experts : memref<64x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
        outs(%y : memref<64x32xf32>)
    // expected-remark @below {{its input is not a 2-d memref of floats with contiguous rows}}
    moe.grouped_matmul block_rows(64)
        ins(%xs, %w, %experts : memref<64x64xf32, strided<[128, 2]>>, memref<2x32x64xbf16>, memref<1xi32>)
        outs(%y : memref<64x32xf32>)
    // expected-remark @below {{a weight's rows are not contiguous with 16-byte aligned strides and start (TMA)}}
    moe.grouped_matmul block_rows(64)
        ins(%x, %wo, %experts : memref<64x64xf32>, memref<2x32x64xbf16, strided<[2048, 64, 1], offset: 4>>, memref<1xi32>)
        outs(%y : memref<64x32xf32>)
    %wpart = memref.subview %wk[0, 0, 0] [2, 32, 64] [1, 1, 1] : memref<2x32x72xbf16> to memref<2x32x64xbf16, strided<[2304, 72, 1]>>
    // expected-remark @below {{a weight's depth is dynamic or a part of its tensor's}}
    moe.grouped_matmul block_rows(64)
        ins(%x, %wpart, %experts : memref<64x64xf32>, memref<2x32x64xbf16, strided<[2304, 72, 1]>>, memref<1xi32>)
        outs(%y : memref<64x32xf32>)
    // expected-remark @below {{its accumulators would not fit in registers (weights x columns above 256)}}
    moe.grouped_matmul block_rows(64)
        ins(%x, %w256, %experts : memref<64x64xf32>, memref<2x256x64xbf16>, memref<1xi32>)
        paired(%w256 : memref<2x256x64xbf16>)
        outs(%y256 : memref<64x256xf32>)
        epilogue {
        ^bb0(%g: f32, %u: f32, %old: f32):
          %r = arith.mulf %g, %u : f32
          moe.yield %r : f32
        }
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    // expected-remark @below {{its gpu.launch does not run blocks of one, two or three warpgroups (128, 256 or 384 x 1 x 1 threads)}}
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
        outs(%y : memref<64x32xf32>)
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c256, %sy = %c1, %sz = %c1) {
    // expected-remark @below {{its blocks of 128 rows take one warpgroup (64 rows), a producer and one warpgroup per 64 rows, or a producer and two taking 64-row blocks in turns, not the 2 of its gpu.launch}}
    moe.grouped_matmul block_rows(128)
        ins(%x128, %w, %experts : memref<128x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
        outs(%y128 : memref<128x32xf32>)
    gpu.terminator
  }
  return
}

// -----

// Two stages of a 128-column paired tile (2 x (8 + 32) KiB) do not fit
// in 64 KiB of shared memory.
func.func @small_shared(%x: memref<64x64xf32>, %w: memref<2x128x64xbf16>,
                        %experts: memref<1xi32>, %y: memref<64x128xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    // expected-remark @below {{two stages of its tile do not fit in shared memory}}
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x64xf32>, memref<2x128x64xbf16>, memref<1xi32>)
        paired(%w : memref<2x128x64xbf16>)
        outs(%y : memref<64x128xf32>)
        epilogue {
        ^bb0(%g: f32, %u: f32, %old: f32):
          %r = arith.mulf %g, %u : f32
          moe.yield %r : f32
        }
    gpu.terminator
  }
  return
}
