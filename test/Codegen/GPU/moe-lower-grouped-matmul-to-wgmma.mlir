// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma="max-shared-bytes=32768" | FileCheck %s --check-prefix=SMALL
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma="async-gather=false" | FileCheck %s --check-prefix=REGS
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma="vector-reductions=false" | FileCheck %s --check-prefix=SCALARRED
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma="eight-row-stages=false" | FileCheck %s --check-prefix=NOFEW
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma="max-groups-in-flight=1" | FileCheck %s --check-prefix=ONEGROUP
// RUN: not moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma="max-groups-in-flight=0" 2>&1 | FileCheck %s --check-prefix=BADGROUPS
// BADGROUPS: error: moe-lower-grouped-matmul-to-wgmma: max-groups-in-flight must be at least 1, not 0

// One 64-row block x 128 columns of bf16 weights on a warpgroup. Before
// the launch, a TMA descriptor of the whole [E, N, K] weight with boxes of
// 1 x 128 x 64 (128-byte swizzle, zeros outside); the launch gets the
// ring's dynamic shared memory (2 stages of 8 KiB of A and 16 KiB of B,
// plus 1 KiB to align). In the kernel: one mbarrier per stage, initialized
// by thread 0; per step thread 0 expects the box's bytes and starts the
// TMA load at (depth, column, expert); every thread rounds 8 input depths
// of its row to bf16 and stores them at the swizzled chunk (chunk ^ row %
// 8), then fences them for the async proxy. The main loop waits on the
// stage's barrier, issues four m64n128k16 wgmma (K-major A and B) as one
// group, waits for the previous group, and refills its stage; after the
// loop the last group is waited for and each thread adds its sums to the
// outputs.
// CHECK-LABEL: func @bf16
// CHECK: %[[CAST:.*]] = memref.cast %{{.*}} : memref<4x128x64xbf16> to memref<*xbf16>
// CHECK: %[[DESC:.*]] = nvgpu.tma.create.descriptor %[[CAST]] box[%{{.*}}, %{{.*}}, %{{.*}}] : memref<*xbf16> -> <tensor = memref<1x128x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b, l2promo = l2promo_256b, oob = zero, interleave = none>
// CHECK: %[[SMEM:.*]] = arith.constant 50176 : i32
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK-SAME: dynamic_shared_memory_size %[[SMEM]]
// The ring starts at the first 1024-byte boundary past both the dynamic
// memory's symbol and the group's last mbarrier (static shared memory that
// ptxas may place after that symbol).
// CHECK: %[[BARS:.*]] = nvgpu.mbarrier.create -> <memorySpace = #gpu.address_space<workgroup>, num_barriers = 2>
// CHECK: %[[DYN:.*]] = gpu.dynamic_shared_memory
// CHECK: %[[BASE:.*]] = memref.extract_aligned_pointer_as_index %[[DYN]]
// CHECK: %[[LAST:.*]] = nvgpu.mbarrier.get %[[BARS]][%c1
// CHECK: %[[LASTX:.*]] = arith.index_castui %[[LAST]] : i32 to index
// CHECK: %[[END:.*]] = arith.addi %[[LASTX]], %c8
// CHECK: %[[FIRST:.*]] = arith.maxui %[[BASE]], %[[END]]
// CHECK: %[[ATOMS:.*]] = arith.ceildivui %[[FIRST]], %c1024
// CHECK: %[[START:.*]] = arith.muli %[[ATOMS]], %c1024
// CHECK: %[[SHIFT:.*]] = arith.subi %[[START]], %[[BASE]]
// CHECK: %[[RING:.*]] = memref.view %[[DYN]][%[[SHIFT]]][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<49152xi8, #gpu.address_space<workgroup>>
// CHECK: scf.if
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[BARS]][%{{.*}}], %c1
// CHECK: nvvm.fence.mbarrier.init
// CHECK: gpu.barrier
// CHECK: scf.for %[[BLOCK:.*]] = {{.*}} iter_args(
// CHECK:   memref.load %{{.*}}[%[[BLOCK]]] : memref<1xi32>
// CHECK:   memref.load %{{.*}} : memref<64xi32>
// The thread's row is one of the block's filled rows (else its A chunks
// are not stored: their products reach only rows the epilogue skips).
// CHECK:   %[[FILLED:.*]] = arith.cmpi ult, %{{.*}}, %{{.*}} : index
// Prologue:
// CHECK:   scf.for
// CHECK:     nvgpu.mbarrier.arrive.expect_tx %[[BARS]][%{{.*}}], %c16384
// CHECK:     nvgpu.tma.async.load %[[DESC]][%{{.*}}, %{{.*}}, %{{.*}}], %[[BARS]][%{{.*}}] to %{{.*}} : {{.*}} -> memref<1x128x64xbf16, #gpu.address_space<workgroup>>
// CHECK:     vector.load %{{.*}} {alignment = 16 : i64} : memref<?x64xf32>, vector<8xf32>
// A chunk that is not whole: element by element past K for a row with a
// source, zeros at once for a row without one (most rows at decode).
// CHECK:     } else {
// CHECK:       %[[ZEROS:.*]] = arith.constant dense<0.000000e+00> : vector<8xf32>
// CHECK:       scf.if %{{.*}} -> (vector<8xf32>) {
// CHECK-COUNT-8: memref.load %{{.*}} : memref<?x64xf32>
// CHECK:         vector.insert %{{.*}} [7] : f32 into vector<8xf32>
// CHECK:       } else {
// CHECK-NEXT:    scf.yield %[[ZEROS]] : vector<8xf32>
// CHECK:     scf.if %[[FILLED]] {
// CHECK:     arith.truncf %{{.*}} : vector<8xf32> to vector<8xbf16>
// CHECK:     arith.xori
// CHECK:     vector.store %{{.*}} {alignment = 16 : i64} : memref<64x64xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// CHECK:     nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// The first refill's A chunks, loaded before the main loop and carried
// through it (4 chunks of 8 f32 per thread):
// CHECK:   %[[PRE:.*]] = scf.if
// CHECK:     vector.load %{{.*}} : memref<?x64xf32>, vector<8xf32>
// The first step, emitted before the loop over the others (and not at all
// when K has no step: zeros): its group starts from no sums, the first
// wgmma's scale-d 0 and its accumulator operand undefined, so that no
// instruction writes the accumulators after its wgmma.fence (ptxas would
// serialize the wgmmas).
// CHECK:   scf.if %{{.*}} -> (!llvm.struct<(f32, f32
// CHECK:     nvgpu.mbarrier.try_wait.parity %[[BARS]][%{{.*}}], %{{.*}}, %{{.*}} :
// CHECK:     gpu.barrier
// CHECK:     nvvm.wgmma.fence.aligned
// CHECK:     %[[NONE:.*]] = llvm.mlir.poison : !llvm.struct
// CHECK:     nvvm.wgmma.mma_async %{{.*}}, %{{.*}}, %[[NONE]], <m = 64, n = 128, k = 16>, D[<f32>, <zero>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK-COUNT-3: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK:     nvvm.wgmma.commit.group.sync.aligned
// CHECK:     nvvm.wgmma.wait.group.sync.aligned 1
// CHECK:     gpu.barrier
// CHECK:     scf.if
// CHECK:       nvgpu.tma.async.load
// CHECK:       arith.truncf %[[PRE]] : vector<8xf32> to vector<8xbf16>
// The other steps:
// CHECK:     scf.for %{{.*}} = %c1{{.*}} iter_args(%{{[a-z0-9_]+}} = %{{[a-z0-9_#]+}}, %[[CHUNK:[a-z0-9_]+]] = %{{[a-z0-9_#]+}}, %{{.*}}) -> (!llvm.struct<(f32, f32
// CHECK:       nvgpu.mbarrier.try_wait.parity %[[BARS]][%{{.*}}], %{{.*}}, %{{.*}} :
// CHECK:       gpu.barrier
// CHECK:       nvvm.wgmma.fence.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 128, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK:       nvvm.wgmma.commit.group.sync.aligned
// CHECK:       nvvm.wgmma.wait.group.sync.aligned 1
// CHECK:       gpu.barrier
// The refill: the weights by TMA and the chunks the previous step loaded
// stored; then the next refill's chunks loaded, yielded to the next step.
// CHECK:       scf.if
// CHECK:         nvgpu.tma.async.load
// CHECK:         scf.if %[[FILLED]] {
// CHECK:           arith.truncf %[[CHUNK]] : vector<8xf32> to vector<8xbf16>
// CHECK-COUNT-4:   vector.store {{.*}} vector<8xbf16>
// CHECK-NEXT:    {{^ *}}}
// CHECK-NEXT:    nvvm.fence.proxy
// CHECK:       vector.load %{{.*}} : memref<?x64xf32>, vector<8xf32>
// CHECK:       scf.yield %{{.*}}, %{{.*}} : !llvm.struct<{{.*}}>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>
// CHECK:   } else {
// CHECK:     scf.yield %{{.*}}, %[[PRE]], %{{.*}}, %{{.*}}, %{{.*}} :
// The write-back by pairs of adjacent columns: one 8-byte vector add where
// the pair is aligned and both columns are in range, else one element
// each.
// CHECK:   nvvm.wgmma.wait.group.sync.aligned 0
// CHECK:   %[[NEXT:.*]] = arith.addi %{{.*}}, %c1{{.*}} : index
// CHECK:   %[[SECOND:.*]] = arith.cmpi ult, %[[NEXT]]
// CHECK:   llvm.extractvalue %{{.*}}[0]
// CHECK:   llvm.extractvalue %{{.*}}[1]
// CHECK:   scf.if
// CHECK:     memref.extract_aligned_pointer_as_index
// CHECK:     %[[ALIGNED:.*]] = arith.andi
// CHECK:     %[[BOTH:.*]] = arith.andi %[[SECOND]], %[[ALIGNED]]
// CHECK:     scf.if %[[BOTH]] {
// CHECK:       vector.load %{{.*}} {alignment = 8 : i64} : memref<64x128xf32>, vector<2xf32>
// CHECK:       vector.from_elements %{{.*}}, %{{.*}} : vector<2xf32>
// CHECK:       arith.addf %{{.*}} : vector<2xf32>
// CHECK:       vector.store %{{.*}} {alignment = 8 : i64} : memref<64x128xf32>, vector<2xf32>
// CHECK:     } else {
// CHECK:       memref.load %{{.*}} : memref<64x128xf32>
// CHECK:       arith.addf
// CHECK:       memref.store %{{.*}} : memref<64x128xf32>
// CHECK:       scf.if %[[SECOND]] {
// CHECK:         memref.load %{{.*}} : memref<64x128xf32>
// CHECK:         arith.addf
// CHECK:         memref.store %{{.*}} : memref<64x128xf32>
// CHECK:   llvm.extractvalue %{{.*}}[63]
// CHECK: gpu.barrier
// At the end thread 0 invalidates the barriers (the code may run again).
// CHECK: scf.if
// CHECK-COUNT-2: nvvm.mbarrier.inval
// CHECK: gpu.barrier
// CHECK-NOT: moe.grouped_matmul
// SMALL-LABEL: func @bf16
// SMALL: moe.grouped_matmul
func.func @bf16(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                %experts: memref<1xi32>, %sizes: memref<1xi32>,
                %sources: memref<64xi32>, %y: memref<64x128xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
        block_sizes(%sizes : memref<1xi32>)
        row_sources(%sources : memref<64xi32>)
        outs(%y : memref<64x128xf32>)
    gpu.terminator
  }
  return
}

// -----

// Exact products of f32 rows (a router's logits): the steps run over the
// depths three times (ceil(K / 64) x 3; K = 64: 3 steps, so 3 stages of
// 24 KiB), step s at depth (s mod ceil(K / 64)) x 64 for the weights' TMA
// box and the rows' chunks, in pass s / ceil(K / 64) over the depths,
// the lowest term first: pass 0 the last 8 bits, pass 1 the middle ones
// (the upper 16 bits of the rest, none where a value is its first term:
// an infinite one), pass 2 the upper 16 bits (mask 0xFFFF0000). A term is
// stored as its upper 16 bits (exact, no rounding conversion).
// CHECK-LABEL: func @exact
// CHECK: dynamic_shared_memory_size %c74752_i32
// CHECK: %[[STEPS:.*]] = arith.ceildivui %{{.*}}, %c64
// CHECK: %[[DIVISOR:.*]] = arith.maxui %[[STEPS]], %c1
// CHECK: arith.muli %[[STEPS]], %c3
// CHECK: %[[AHEAD:.*]] = arith.minui %{{.*}}, %c2
// CHECK: scf.for %[[STEP:[a-z0-9_]+]] = %{{.*}} to %[[AHEAD]]
// CHECK: %[[INDEPTH:.*]] = arith.remui %[[STEP]], %[[DIVISOR]]
// CHECK: %[[DEPTH:.*]] = arith.muli %[[INDEPTH]], %c64
// CHECK: nvgpu.mbarrier.arrive.expect_tx
// CHECK: %[[AT:.*]] = arith.addi %{{.*}}, %[[DEPTH]]
// CHECK: nvgpu.tma.async.load %{{.*}}[%[[AT]],
// CHECK: arith.remui %[[STEP]], %[[DIVISOR]]
// CHECK: %[[PASS:.*]] = arith.divui %[[STEP]], %[[DIVISOR]]
// CHECK: %[[MASK:.*]] = arith.constant dense<-65536> : vector<8xi32>
// CHECK: %[[BITS:.*]] = arith.bitcast %[[X:.*]] : vector<8xf32> to vector<8xi32>
// CHECK: %[[UPPER:.*]] = arith.andi %[[BITS]], %[[MASK]]
// CHECK: %[[X0:.*]] = arith.bitcast %[[UPPER]] : vector<8xi32> to vector<8xf32>
// CHECK: %[[WHOLE:.*]] = arith.cmpf oeq, %[[X]], %[[X0]]
// CHECK: %[[DIFF:.*]] = arith.subf %[[X]], %[[X0]]
// CHECK: %[[REST:.*]] = arith.select %[[WHOLE]], %{{.*}}, %[[DIFF]]
// CHECK: arith.andi
// CHECK: %[[X1:.*]] = arith.bitcast %{{.*}} : vector<8xi32> to vector<8xf32>
// CHECK: %[[X2:.*]] = arith.subf %[[REST]], %[[X1]]
// CHECK: %[[IS1:.*]] = arith.cmpi eq, %[[PASS]], %c1
// CHECK: %[[PICK1:.*]] = arith.select %[[IS1]], %[[X1]], %[[X2]] : vector<8xf32>
// CHECK: %[[IS2:.*]] = arith.cmpi eq, %[[PASS]], %c2
// CHECK: arith.select %[[IS2]], %[[X0]], %[[PICK1]] : vector<8xf32>
// CHECK-NOT: arith.truncf
// CHECK: arith.shrui %{{.*}} : vector<8xi32>
// CHECK: arith.trunci %{{.*}} : vector<8xi32> to vector<8xi16>
// CHECK: arith.bitcast %{{.*}} : vector<8xi16> to vector<8xbf16>
// CHECK: vector.store
// CHECK-NOT: arith.truncf
// CHECK: nvvm.wgmma.mma_async
// CHECK-NOT: moe.grouped_matmul
func.func @exact(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                 %experts: memref<1xi32>, %sizes: memref<1xi32>,
                 %sources: memref<64xi32>, %y: memref<64x128xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
        block_sizes(%sizes : memref<1xi32>)
        row_sources(%sources : memref<64xi32>)
        exact_products
        outs(%y : memref<64x128xf32>)
    gpu.terminator
  }
  return
}

// -----

// Blocks of two warpgroups (256 threads, as moe-map-to-gpu launches tiles
// for mma=wgmma-specialized block-rows=64): two groups of mbarriers, `full` and
// `released`, each of 128 arrivals, the ring past both. Threads 0-127
// produce: per step each waits until the consumer released the stage (the
// phase before the first counts as complete: parity xor 1), stores its A
// chunks (loaded one step ahead), thread 0 expects the weights' bytes and
// starts their TMA load, the others arrive. Threads 128-255 consume: wait
// for the stage, one wgmma group, wait for the previous group and release
// its stage; after the loop the last group and stage, then the epilogue
// as thread - 128 of the accumulators' warpgroup layout (the consumer's
// part of the rows, (thread - 128) / 128, is 0: its A at offset 0).
// CHECK-LABEL: func @specialized
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK: %[[FULL:.*]] = nvgpu.mbarrier.create -> <memorySpace = #gpu.address_space<workgroup>, num_barriers = 2>
// CHECK: %[[RELEASED:.*]] = nvgpu.mbarrier.create -> <memorySpace = #gpu.address_space<workgroup>, num_barriers = 2>
// CHECK: nvgpu.mbarrier.get %[[FULL]][%c1
// CHECK: arith.maxui
// CHECK: nvgpu.mbarrier.get %[[RELEASED]][%c1
// CHECK: arith.maxui
// CHECK: memref.view
// CHECK: scf.if
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[FULL]][%{{.*}}], %c128
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[RELEASED]][%{{.*}}], %c128
// CHECK: gpu.barrier
// CHECK: scf.for %[[BLOCK:.*]] = {{.*}} iter_args(
// CHECK:   %[[PRODUCER:.*]] = arith.cmpi ult, %[[TID]], %c128
// CHECK:   scf.if %[[PRODUCER]] {
// CHECK:     scf.for {{.*}} iter_args(
// CHECK:       %[[PREVIOUS:.*]] = arith.xori %{{.*}}, %true
// CHECK:       nvgpu.mbarrier.try_wait.parity %[[RELEASED]][%{{.*}}], %[[PREVIOUS]]
// CHECK:       arith.truncf
// CHECK:       vector.store
// CHECK:       nvvm.fence.proxy
// CHECK:       nvgpu.mbarrier.arrive.expect_tx %[[FULL]]
// CHECK:       nvgpu.tma.async.load
// CHECK:       %[[OTHERS:.*]] = arith.cmpi ne, %[[TID]], %c0
// CHECK:       scf.if %[[OTHERS]] {
// CHECK:         nvgpu.mbarrier.arrive %[[FULL]]
// CHECK:       vector.load
// CHECK:   } else {
// CHECK:     %[[LOCAL:.*]] = arith.subi %[[TID]], %c128
// CHECK:     %[[PART:.*]] = arith.divui %[[LOCAL]], %c128
// The consumer's first step (its group from no sums: scale-d 0), then the
// others, each releasing the previous step's stage.
// CHECK:     scf.if %{{.*}} -> (!llvm.struct
// CHECK:       nvgpu.mbarrier.try_wait.parity %[[FULL]]
// CHECK-NOT:   gpu.barrier
// CHECK:       nvvm.wgmma.fence.aligned
// CHECK:       arith.muli %[[PART]], %c8192
// CHECK:       nvvm.wgmma.mma_async {{.*}}, D[<f32>, <zero>]
// CHECK-COUNT-3: nvvm.wgmma.mma_async {{.*}}, D[<f32>, <one>]
// CHECK:       nvvm.wgmma.commit.group.sync.aligned
// CHECK:       nvvm.wgmma.wait.group.sync.aligned 1
// CHECK-NOT:   nvgpu.mbarrier.arrive
// CHECK:       scf.for %{{.*}} = %c1
// CHECK:         nvgpu.mbarrier.try_wait.parity %[[FULL]]
// CHECK-NOT:     gpu.barrier
// CHECK:         nvvm.wgmma.fence.aligned
// CHECK-COUNT-4: nvvm.wgmma.mma_async {{.*}}, D[<f32>, <one>]
// CHECK:         nvvm.wgmma.commit.group.sync.aligned
// CHECK:         nvvm.wgmma.wait.group.sync.aligned 1
// CHECK:         nvgpu.mbarrier.arrive %[[RELEASED]]
// CHECK:     } else {
// CHECK:     nvvm.wgmma.wait.group.sync.aligned 0
// After the last group, the last step's stage (of the last one group in
// flight) is released:
// CHECK:     %[[TAIL:.*]] = arith.subi %{{.*}}, %c1
// CHECK:     scf.for %[[T:.*]] = %[[TAIL]] to
// CHECK:       nvgpu.mbarrier.arrive %[[RELEASED]]
// CHECK:     %[[THREAD:.*]] = arith.remui %[[LOCAL]], %c128
// CHECK:     arith.divui %[[THREAD]], %c32
// CHECK:     memref.store %{{.*}} : memref<64x128xf32>
// CHECK:   gpu.barrier
// CHECK: scf.if
// CHECK-COUNT-4: nvvm.mbarrier.inval
// CHECK-NOT: moe.grouped_matmul
func.func @specialized(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                       %experts: memref<1xi32>, %sizes: memref<1xi32>,
                       %sources: memref<64xi32>, %y: memref<64x128xf32>) {
  %c1 = arith.constant 1 : index
  %c256 = arith.constant 256 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c256, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
        block_sizes(%sizes : memref<1xi32>)
        row_sources(%sources : memref<64xi32>)
        outs(%y : memref<64x128xf32>)
    gpu.terminator
  }
  return
}

// -----

// In 2-CTA clusters (moe-map-to-gpu tile-cluster=2) the specialized tile
// shares weight boxes with the cluster's other CTA: the descriptors are of
// half boxes (64 of the 128 columns); the ring is set up at the launch's
// start, `released` takes 4 arrivals (one thread per consumer warpgroup,
// twice), and the CTAs meet (barrier.cluster) once set up. Each CTA writes
// its key (owned, steps, the ring's position, the weight's expert, column
// and depth offsets) to its workgroup buffer (two keys: a walk's tiles
// alternate), meets its partner (also on the path that skips the
// op: the added else branch), and compares it with the partner's, read
// through mapa. When they match, the producer loads its half of the box
// (rank x 64 columns) into both CTAs (multicast mask 0b11), else both
// halves into its own; a consumer warpgroup's thread 0 releases a stage in
// both CTAs, or twice in its own. The CTAs meet again before the mbarriers
// are invalidated at the launch's end.
// CHECK-LABEL: func @cluster_pairs
// CHECK: %[[DESC:.*]] = nvgpu.tma.create.descriptor %{{.*}} box[%{{.*}}, %c64{{.*}}, %c64{{.*}}] : memref<*xbf16> -> <tensor = memref<1x64x64xbf16
// CHECK: gpu.launch clusters
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK-SAME: workgroup(%[[KEY:.*]] : memref<12xi64, #gpu.address_space<workgroup>>)
// CHECK-NEXT: %[[FULL:.*]] = nvgpu.mbarrier.create
// CHECK-NEXT: %[[RELEASED:.*]] = nvgpu.mbarrier.create
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[FULL]][%{{.*}}], %c128
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[RELEASED]][%{{.*}}], %c4
// CHECK: gpu.barrier
// CHECK: %[[RANK:.*]] = nvvm.read.ptx.sreg.cluster.ctarank : i32
// CHECK: %[[PARTNER:.*]] = arith.xori %[[RANK]], %c1_i32
// CHECK: memref.store %c0_i64, %[[KEY]][%c0
// CHECK: memref.store %c0_i64{{.*}}, %[[KEY]][%c6
// CHECK: nvvm.cluster.arrive
// CHECK-NEXT: nvvm.cluster.wait
// CHECK: scf.if %{{.*}} {
// CHECK: scf.if %{{.*}} -> (index, i1) {
// CHECK-COUNT-6: memref.store %{{.*}}, %[[KEY]]
// CHECK: nvvm.cluster.arrive
// CHECK-NEXT: nvvm.cluster.wait
// CHECK: %[[THEIRS:.*]] = nvvm.mapa %{{.*}}, %[[PARTNER]] : !llvm.ptr<3> -> !llvm.ptr<7>
// CHECK-COUNT-6: llvm.load %{{.*}} : !llvm.ptr<7> -> i64
// CHECK: %[[PRODUCER:.*]] = arith.cmpi ult, %[[TID]], %c128
// CHECK: scf.if %[[PRODUCER]] {
// CHECK:   nvgpu.mbarrier.arrive.expect_tx %[[FULL]][%{{.*}}], %c16384
// CHECK:   scf.if %[[SHARED:.*]] {
// CHECK:     %[[HALF:.*]] = arith.index_castui %[[RANK]] : i32 to index
// CHECK:     arith.muli %[[HALF]], %c64
// CHECK:     arith.muli %[[HALF]], %c8192
// CHECK:     nvgpu.tma.async.load %[[DESC]]{{.*}} multicast_mask = %c3_i16
// CHECK:   } else {
// CHECK-COUNT-2: nvgpu.tma.async.load %[[DESC]]{{.*}} to %{{[a-z_0-9]+}} :
// CHECK: } else {
// CHECK:   nvvm.wgmma.mma_async
// CHECK:   scf.if %[[SHARED]] {
// CHECK:     nvvm.mbarrier.arrive %[[MINE:.*]], %c1_i32{{.*}} : !llvm.ptr<3> -> i64
// CHECK:     %[[REMOTE:.*]] = nvvm.mapa %[[MINE]], %[[PARTNER]]
// CHECK:     nvvm.mbarrier.arrive %[[REMOTE]], %c1_i32{{.*}} {scope = #nvvm.mem_scope<cluster>} : !llvm.ptr<7>
// CHECK:   } else {
// CHECK:     nvvm.mbarrier.arrive %{{.*}}, %c2_i32 : !llvm.ptr<3> -> i64
// CHECK: nvvm.cluster.arrive
// CHECK-NEXT: nvvm.cluster.wait
// CHECK-NEXT: }
// CHECK-NEXT: nvvm.cluster.arrive
// CHECK-NEXT: nvvm.cluster.wait
// CHECK: gpu.barrier
// CHECK-COUNT-4: nvvm.mbarrier.inval
// CHECK-NOT: moe.grouped_matmul
func.func @cluster_pairs(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                         %experts: memref<1xi32>, %sizes: memref<1xi32>,
                         %sources: memref<128xi32>, %y: memref<128x128xf32>,
                         %exists: i1) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c384 = arith.constant 384 : index
  gpu.launch clusters(%cx, %cy, %cz) in (%ncx = %c2, %ncy = %c1, %ncz = %c1)
             blocks(%bx, %by, %bz) in (%gx = %c2, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    scf.if %exists {
      moe.grouped_matmul block_rows(128)
          ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
          block_sizes(%sizes : memref<1xi32>)
          row_sources(%sources : memref<128xi32>)
          outs(%y : memref<128x128xf32>)
    }
    gpu.terminator
  }
  return
}

// -----

// A cluster launch whose op runs in a loop that the cluster's two CTAs
// may run a different number of times (from the block id): each CTA
// loads its own boxes (whole ones), as without clusters.
// CHECK-LABEL: func @cluster_loop
// CHECK: nvgpu.tma.create.descriptor %{{.*}} box[%{{.*}}, %c128{{.*}}, %c64{{.*}}]
// CHECK-NOT: nvvm.mapa
// CHECK-NOT: multicast_mask
// CHECK-NOT: nvvm.cluster
// CHECK: return
func.func @cluster_loop(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                        %experts: memref<1xi32>, %sizes: memref<1xi32>,
                        %sources: memref<128xi32>, %y: memref<128x128xf32>,
                        %n: index) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c384 = arith.constant 384 : index
  gpu.launch clusters(%cx, %cy, %cz) in (%ncx = %c2, %ncy = %c1, %ncz = %c1)
             blocks(%bx, %by, %bz) in (%gx = %c2, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    scf.for %i = %bx to %n step %gx {
      moe.grouped_matmul block_rows(128)
          ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
          block_sizes(%sizes : memref<1xi32>)
          row_sources(%sources : memref<128xi32>)
          outs(%y : memref<128x128xf32>)
    }
    gpu.terminator
  }
  return
}

// -----

// A cluster's persistent walk (moe-map-to-gpu tile-cluster=2 with
// tile-grid-limit), which both CTAs run alike (from the block id / 2): the
// ring, the keys and the rendezvous are set up before the roles split;
// each role's walk alternates between the two keys by its tile count,
// meets the partner at every tile (in the guard's else branch when it has
// none), and carries the ring's slot through the guard (unchanged when it
// skips the tile); the CTAs meet again before the teardown.
// CHECK-LABEL: func @cluster_walk
// CHECK: gpu.launch clusters
// CHECK-SAME: blocks(%[[BX:[a-z0-9]+]],
// CHECK-SAME: workgroup(%[[KEY:.*]] : memref<12xi64, #gpu.address_space<workgroup>>)
// CHECK: %[[FIRST:.*]] = arith.divui %[[BX]], %c2
// CHECK: nvvm.read.ptx.sreg.cluster.ctarank
// CHECK: nvvm.cluster.arrive
// CHECK-NEXT: nvvm.cluster.wait
// CHECK: scf.if %{{.*}} {
// CHECK:   nvvm.setmaxregister {{ *}}decrease 112
// CHECK:   scf.for %[[TILE:.*]] = %[[FIRST]] to %{{.*}} step %{{.*}} iter_args(%[[SLOT:.*]] = %c0{{.*}}) -> (index) {
// CHECK:     %[[COUNT:.*]] = arith.subi %[[TILE]], %[[FIRST]]
// CHECK:     %[[NTH:.*]] = arith.divui %[[COUNT]],
// CHECK:     %[[PARITY:.*]] = arith.remui %[[NTH]], %c2
// CHECK:     %[[NEXT:.*]] = scf.if %{{.*}} -> (index) {
// CHECK:       arith.remui %[[SLOT]], %c4
// CHECK:       arith.muli %[[PARITY]], %c6
// CHECK:       nvvm.cluster.arrive
// CHECK:       nvvm.mapa
// CHECK:       nvgpu.tma.async.load {{.*}} multicast_mask
// CHECK:       nvvm.cluster.arrive
// CHECK-NEXT:  nvvm.cluster.wait
// CHECK-NEXT:  scf.yield %[[SLOT]] : index
// CHECK:     scf.yield %[[NEXT]] : index
// CHECK:   nvvm.setmaxregister {{ *}}increase 168
// CHECK: } else {
// CHECK:   nvvm.setmaxregister {{ *}}increase 192
// CHECK:   scf.for
// CHECK:     nvvm.wgmma.mma_async
// CHECK:     nvvm.cluster.arrive
// CHECK:   nvvm.setmaxregister {{ *}}decrease 168
// CHECK: }
// CHECK-NEXT: nvvm.cluster.arrive
// CHECK-NEXT: nvvm.cluster.wait
// CHECK-NEXT: gpu.barrier
// CHECK-NOT: moe.grouped_matmul
func.func @cluster_walk(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                        %experts: memref<1xi32>, %sizes: memref<1xi32>,
                        %sources: memref<128xi32>, %y: memref<128x128xf32>,
                        %pairs: index, %rows: index) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %c384 = arith.constant 384 : index
  gpu.launch clusters(%cx, %cy, %cz) in (%ncx = %c2, %ncy = %c1, %ncz = %c1)
             blocks(%bx, %by, %bz) in (%gx = %c4, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    %first = arith.divui %bx, %c2 : index
    %clusters = arith.divui %gx, %c2 : index
    scf.for %pair = %first to %pairs step %clusters {
      %twice = arith.muli %pair, %c2 : index
      %rank = arith.remui %bx, %c2 : index
      %block = arith.addi %twice, %rank : index
      %exists = arith.cmpi ult, %block, %rows : index
      scf.if %exists {
        moe.grouped_matmul block_rows(128)
            ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
            block_sizes(%sizes : memref<1xi32>)
            row_sources(%sources : memref<128xi32>)
            outs(%y : memref<128x128xf32>)
      }
    }
    gpu.terminator
  }
  return
}

// -----

// Blocks of 128 rows on three warpgroups (384 threads, as moe-map-to-gpu
// launches tiles for mma=wgmma-specialized): one producer gathers both
// 64-row parts (two rows per thread, one in each part's A buffer: 8 KiB
// apart) and loads one weight box per stage, which both consumers read;
// `released` takes 256 arrivals (the two consumers' threads). Consumer
// warpgroup p = (thread - 128) / 128 multiplies the A at p x 8 KiB and
// writes rows 64 p + ... of the block; when the block's filled rows end
// before 64 p, it only waits for each stage and releases it (no wgmma, no
// writes).
// CHECK-LABEL: func @two_consumers
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK-SAME: dynamic_shared_memory_size %c66560_i32
// CHECK: %[[FULL:.*]] = nvgpu.mbarrier.create
// CHECK: %[[RELEASED:.*]] = nvgpu.mbarrier.create
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[FULL]][%{{.*}}], %c128
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[RELEASED]][%{{.*}}], %c256
// CHECK: scf.for
// CHECK:   %[[PRODUCER:.*]] = arith.cmpi ult, %[[TID]], %c128
// CHECK:   scf.if %[[PRODUCER]] {
// CHECK:     memref.load %[[SOURCES:.*]][%{{.*}}] : memref<128xi32>
// CHECK:     memref.load %[[SOURCES]][%{{.*}}] : memref<128xi32>
// CHECK:     scf.for
// CHECK:       nvgpu.mbarrier.try_wait.parity %[[RELEASED]]
// CHECK:       arith.muli %c0{{.*}}, %c8192
// CHECK:       vector.store
// CHECK:       arith.muli %c1{{.*}}, %c8192
// CHECK:       vector.store
// CHECK:       nvgpu.mbarrier.arrive.expect_tx %[[FULL]][%{{.*}}], %c16384
// CHECK:       nvgpu.tma.async.load
// CHECK-NOT:   nvgpu.tma.async.load
// CHECK:   } else {
// CHECK:     %[[LOCAL:.*]] = arith.subi %[[TID]], %c128
// CHECK:     %[[PART:.*]] = arith.divui %[[LOCAL]], %c128
// CHECK:     %[[PARTROW:.*]] = arith.muli %[[PART]], %c64
// CHECK:     %[[BUSY:.*]] = arith.cmpi ult, %[[PARTROW]], %[[FILLED:.*]] :
// CHECK:     scf.if %[[BUSY]] {
// CHECK:       scf.for
// CHECK:         nvgpu.mbarrier.try_wait.parity %[[FULL]]
// CHECK:         arith.muli %[[PART]], %c8192
// CHECK:         nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 16>
// CHECK:         nvgpu.mbarrier.arrive %[[RELEASED]]
// CHECK:       nvgpu.mbarrier.arrive %[[RELEASED]]
// CHECK:       %[[THREAD:.*]] = arith.remui %[[LOCAL]], %c128
// CHECK:       %[[EPIROW:.*]] = arith.muli %[[PART]], %c64
// CHECK:       arith.divui %[[THREAD]], %c32
// CHECK:       %[[ROWBASE:.*]] = arith.addi %[[EPIROW]], %{{.*}}
// CHECK:       %[[ROW:.*]] = arith.addi %[[ROWBASE]], %c0
// CHECK:       arith.cmpi ult, %[[ROW]], %[[FILLED]]
// CHECK:       memref.store %{{.*}} : memref<128x128xf32>
// CHECK:     } else {
// CHECK:       scf.for
// CHECK-NOT:     nvvm.wgmma
// CHECK-NOT:     memref.store
// CHECK:         nvgpu.mbarrier.try_wait.parity %[[FULL]]
// CHECK-NOT:     nvvm.wgmma
// CHECK-NOT:     memref.store
// CHECK:         nvgpu.mbarrier.arrive %[[RELEASED]]
// CHECK-NOT:     nvvm.wgmma
// CHECK-NOT:     memref.store
// CHECK:         scf.yield
// CHECK-NOT: moe.grouped_matmul
func.func @two_consumers(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                         %experts: memref<1xi32>, %sizes: memref<1xi32>,
                         %sources: memref<128xi32>, %y: memref<128x128xf32>) {
  %c1 = arith.constant 1 : index
  %c384 = arith.constant 384 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(128)
        ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
        block_sizes(%sizes : memref<1xi32>)
        row_sources(%sources : memref<128xi32>)
        outs(%y : memref<128x128xf32>)
    gpu.terminator
  }
  return
}

// -----

// A persistent grid's walk over tiles (as moe-map-to-gpu builds it for
// persistent=N: the op its body's only op with memory effects) with
// specialized tiles: the ring's mbarriers are initialized once, before the
// walk, and invalidated once after it (a barrier first); the roles split
// once, each walking a copy of the tiles (the producer's warpgroup gives
// registers back, the consumers take them: this producer gathers f32 rows
// through its registers, so it keeps 112 and the consumers get 192, and
// each role returns to the entry's 168 before they join), each
// copy carrying the ring's slot count from tile to tile (the block loop
// starts at it and yields where it ended); nothing synchronizes the block
// between tiles, so that the producer fills the next tile's stages while
// the consumers write this one's epilogue.
// CHECK-LABEL: func @persistent_walk
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK: %[[FULL:.*]] = nvgpu.mbarrier.create
// CHECK: %[[RELEASED:.*]] = nvgpu.mbarrier.create
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[FULL]][%{{.*}}], %c128
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[RELEASED]][%{{.*}}], %c256
// CHECK: gpu.barrier
// CHECK: %[[PRODUCER:.*]] = arith.cmpi ult, %[[TID]], %c128
// CHECK: scf.if %[[PRODUCER]] {
// CHECK-NEXT: nvvm.setmaxregister decrease 112
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[SLOT:.*]] = %c0{{.*}}) -> (index) {
// CHECK-NOT: gpu.barrier
// CHECK-NOT: nvvm.wgmma
// CHECK:   %[[END:.*]] = scf.for %{{.*}} = %c0{{.*}} to %{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %[[SLOT]]) -> (index) {
// CHECK-NOT: gpu.barrier
// CHECK-NOT: nvvm.wgmma
// CHECK:     nvgpu.tma.async.load
// CHECK-NOT: gpu.barrier
// CHECK-NOT: nvvm.wgmma
// CHECK:   scf.yield %[[END]] : index
// CHECK: }
// CHECK-NEXT: nvvm.setmaxregister increase 168
// CHECK-NEXT: } else {
// CHECK-NEXT: nvvm.setmaxregister increase 192
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[CSLOT:.*]] = %c0{{.*}}) -> (index) {
// CHECK-NOT: gpu.barrier
// CHECK-NOT: nvgpu.tma.async.load
// CHECK:   %[[CEND:.*]] = scf.for %{{.*}} = %c0{{.*}} to %{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %[[CSLOT]]) -> (index) {
// CHECK-NOT: gpu.barrier
// CHECK-NOT: nvgpu.tma.async.load
// CHECK:     nvvm.wgmma.mma_async
// CHECK-NOT: gpu.barrier
// CHECK-NOT: nvgpu.tma.async.load
// CHECK:   scf.yield %[[CEND]] : index
// CHECK: }
// CHECK-NEXT: nvvm.setmaxregister decrease 168
// CHECK-NEXT: }
// CHECK-NEXT: gpu.barrier
// CHECK-COUNT-4: nvvm.mbarrier.inval
// CHECK: gpu.barrier
// CHECK-NEXT: gpu.terminator
func.func @persistent_walk(%x: memref<?x64xf32>, %w: memref<4x512x64xbf16>,
                           %experts: memref<4xi32>, %sizes: memref<4xi32>,
                           %sources: memref<512xi32>, %y: memref<512x512xf32>,
                           %tiles: index) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %c128 = arith.constant 128 : index
  %c384 = arith.constant 384 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c2, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    scf.for %tile = %bx to %tiles step %gx {
      %block = arith.remui %tile, %c4 : index
      %column = arith.divui %tile, %c4 : index
      %row = arith.muli %block, %c128 : index
      %col = arith.muli %column, %c128 : index
      %wt = memref.subview %w[0, %col, 0] [4, 128, 64] [1, 1, 1] : memref<4x512x64xbf16> to memref<4x128x64xbf16, strided<[32768, 64, 1], offset: ?>>
      %e = memref.subview %experts[%block] [1] [1] : memref<4xi32> to memref<1xi32, strided<[1], offset: ?>>
      %n = memref.subview %sizes[%block] [1] [1] : memref<4xi32> to memref<1xi32, strided<[1], offset: ?>>
      %src = memref.subview %sources[%row] [128] [1] : memref<512xi32> to memref<128xi32, strided<[1], offset: ?>>
      %out = memref.subview %y[%row, %col] [128, 128] [1, 1] : memref<512x512xf32> to memref<128x128xf32, strided<[512, 1], offset: ?>>
      moe.grouped_matmul block_rows(128)
          ins(%x, %wt, %e : memref<?x64xf32>, memref<4x128x64xbf16, strided<[32768, 64, 1], offset: ?>>, memref<1xi32, strided<[1], offset: ?>>)
          block_sizes(%n : memref<1xi32, strided<[1], offset: ?>>)
          row_sources(%src : memref<128xi32, strided<[1], offset: ?>>)
          outs(%out : memref<128x128xf32, strided<[512, 1], offset: ?>>)
    }
    gpu.terminator
  }
  return
}

// -----

// 64-row blocks on three warpgroups: a producer and two consumers that
// take the blocks in turns (ping-pong), over a persistent grid's walk. A
// third pair of mbarriers (128 arrivals each) hands the turn over;
// `released` counts one consumer's 128 arrivals. The consumers' walk
// carries the ring's slot and the count of blocks taken (the producer's
// only the slot); the consumer
// whose turn a block is (count % 2 == its index) waits on its own turn
// mbarrier (parity (count / 2 + index + 1) % 2), multiplies, arrives on
// the other's once it has waited for the block's last stage (before its
// last wgmma group is done and before its epilogue), and each owned
// block counts one more taken.
// CHECK-LABEL: func @pingpong_walk
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK: %[[FULL:.*]] = nvgpu.mbarrier.create
// CHECK: %[[RELEASED:.*]] = nvgpu.mbarrier.create
// CHECK: %[[TURNS:.*]] = nvgpu.mbarrier.create -> <memorySpace = #gpu.address_space<workgroup>, num_barriers = 2>
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[FULL]][%{{.*}}], %c128
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[RELEASED]][%{{.*}}], %c128
// CHECK-COUNT-2: nvgpu.mbarrier.init %[[TURNS]][%{{.*}}], %c128
// CHECK: scf.if %{{.*}} {
// CHECK-NEXT: nvvm.setmaxregister decrease 112
// CHECK: scf.for %{{.*}} iter_args(%{{.*}} = %c0{{.*}}) -> (index) {
// CHECK-NOT: nvvm.wgmma
// CHECK:     nvgpu.tma.async.load
// CHECK: nvvm.setmaxregister increase 168
// CHECK-NEXT: } else {
// CHECK-NEXT: nvvm.setmaxregister increase 192
// CHECK: scf.for %{{.*}} iter_args(%{{.*}} = %c0{{.*}}, %{{.*}} = %c0{{.*}}) -> (index, index) {
// CHECK:   scf.for %{{.*}} iter_args(%{{.*}} = %{{.*}}, %[[TAKEN:.*]] = %{{.*}}) -> (index, index) {
// CHECK:     scf.if %{{.*}} -> (index, index) {
// CHECK:       %[[CONSUMER:.*]] = arith.divui %{{.*}}, %c128
// CHECK:       %[[TURN:.*]] = arith.remui %[[TAKEN]], %c2
// CHECK:       %[[MINE:.*]] = arith.cmpi eq, %[[TURN]], %[[CONSUMER]]
// CHECK:       scf.if %[[MINE]] {
// CHECK:         %[[ROUND:.*]] = arith.divui %[[TAKEN]], %c2
// CHECK:         %[[NEXT:.*]] = arith.addi %[[CONSUMER]], %c1
// CHECK:         %[[SUM:.*]] = arith.addi %[[ROUND]], %[[NEXT]]
// CHECK:         %[[PARITY:.*]] = arith.remui %[[SUM]], %c2
// CHECK:         %[[BIT:.*]] = arith.index_castui %[[PARITY]] : index to i1
// CHECK:         nvgpu.mbarrier.try_wait.parity %[[TURNS]][%[[CONSUMER]]], %[[BIT]]
// CHECK:         %[[OTHER:.*]] = arith.subi %c1{{.*}}, %[[CONSUMER]]
// CHECK:         nvvm.wgmma.mma_async
// CHECK:         nvgpu.mbarrier.arrive %[[TURNS]][%[[OTHER]]]
// CHECK-NEXT:    nvvm.wgmma.wait.group.sync.aligned 0
// CHECK:         nvgpu.mbarrier.arrive %[[RELEASED]]
// CHECK:         memref.store
// CHECK:       %[[COUNTED:.*]] = arith.addi %[[TAKEN]], %c1
// CHECK:       scf.yield %{{.*}}, %[[COUNTED]] : index, index
// CHECK:     } else {
// CHECK:       scf.yield %{{.*}}, %[[TAKEN]] : index, index
// CHECK: nvvm.setmaxregister decrease 168
// CHECK: gpu.barrier
// CHECK-COUNT-6: nvvm.mbarrier.inval
func.func @pingpong_walk(%x: memref<?x64xf32>, %w: memref<4x512x64xbf16>,
                         %experts: memref<8xi32>, %sizes: memref<8xi32>,
                         %sources: memref<512xi32>, %y: memref<512x512xf32>,
                         %tiles: index) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %c384 = arith.constant 384 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c2, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    scf.for %tile = %bx to %tiles step %gx {
      %block = arith.remui %tile, %c8 : index
      %column = arith.divui %tile, %c8 : index
      %row = arith.muli %block, %c64 : index
      %col = arith.muli %column, %c128 : index
      %wt = memref.subview %w[0, %col, 0] [4, 128, 64] [1, 1, 1] : memref<4x512x64xbf16> to memref<4x128x64xbf16, strided<[32768, 64, 1], offset: ?>>
      %e = memref.subview %experts[%block] [1] [1] : memref<8xi32> to memref<1xi32, strided<[1], offset: ?>>
      %n = memref.subview %sizes[%block] [1] [1] : memref<8xi32> to memref<1xi32, strided<[1], offset: ?>>
      %src = memref.subview %sources[%row] [64] [1] : memref<512xi32> to memref<64xi32, strided<[1], offset: ?>>
      %out = memref.subview %y[%row, %col] [64, 128] [1, 1] : memref<512x512xf32> to memref<64x128xf32, strided<[512, 1], offset: ?>>
      moe.grouped_matmul block_rows(64)
          ins(%x, %wt, %e : memref<?x64xf32>, memref<4x128x64xbf16, strided<[32768, 64, 1], offset: ?>>, memref<1xi32, strided<[1], offset: ?>>)
          block_sizes(%n : memref<1xi32, strided<[1], offset: ?>>)
          row_sources(%src : memref<64xi32, strided<[1], offset: ?>>)
          outs(%out : memref<64x128xf32, strided<[512, 1], offset: ?>>)
    }
    gpu.terminator
  }
  return
}

// -----

// A loop with results (or other ops with memory effects in its body) is
// no walk the roles could each copy: the ring stays around the op, set up
// and torn down in each iteration, the roles split per row block, and no
// registers move.
// CHECK-LABEL: func @loop_with_result
// CHECK: scf.for {{.*}} iter_args
// CHECK:   nvgpu.mbarrier.create
// CHECK:   nvgpu.mbarrier.init
// CHECK:   nvvm.mbarrier.inval
// CHECK:   scf.yield
// CHECK-NOT: nvvm.setmaxregister
// CHECK: memref.store
func.func @loop_with_result(%x: memref<?x64xf32>, %w: memref<4x128x64xbf16>,
                            %experts: memref<1xi32>, %sizes: memref<1xi32>,
                            %sources: memref<128xi32>, %y: memref<128x128xf32>,
                            %n: index, %out: memref<1xindex>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c384 = arith.constant 384 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    %r = scf.for %i = %c0 to %n step %c1 iter_args(%a = %c0) -> (index) {
      moe.grouped_matmul block_rows(128)
          ins(%x, %w, %experts : memref<?x64xf32>, memref<4x128x64xbf16>, memref<1xi32>)
          block_sizes(%sizes : memref<1xi32>)
          row_sources(%sources : memref<128xi32>)
          outs(%y : memref<128x128xf32>)
      %b = arith.addi %a, %c1 : index
      scf.yield %b : index
    }
    memref.store %r, %out[%c0] : memref<1xindex>
    gpu.terminator
  }
  return
}

// -----

// Gate and up over K = 200 (4 steps, the last one partial): one
// descriptor per weight, 4 stages (as many as 227 KiB hold, at most 4),
// eight wgmma per step (two accumulators), the epilogue applied to each
// pair of sums. The weights are views of the checkpoint's tensors at the
// tile's columns (from the block id): the TMA loads start there. The
// input's rows of 200 f32 are 16-byte aligned.
// CHECK-LABEL: func @paired_epilogue
// CHECK-COUNT-2: nvgpu.tma.create.descriptor {{.*}} -> <tensor = memref<1x64x64xbf16
// CHECK: %[[SMEM:.*]] = arith.constant 99328 : i32
// CHECK: gpu.launch blocks(%[[BX:[a-z0-9]+]],
// CHECK-SAME: dynamic_shared_memory_size %[[SMEM]]
// CHECK: %[[COL:.*]] = arith.muli %[[BY:.*]], %c64
// CHECK: num_barriers = 4
// CHECK: nvgpu.mbarrier.arrive.expect_tx %{{.*}}, %c16384
// CHECK: %[[AT:.*]] = arith.addi %[[COL]], %c0
// CHECK: nvgpu.tma.async.load %{{.*}}[%{{.*}}, %[[AT]], %{{.*}}]
// CHECK: nvgpu.tma.async.load
// CHECK: scf.for
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: scf.if
// CHECK:   math.exp
// CHECK:   math.exp
// CHECK:   vector.store %{{.*}} {alignment = 8 : i64} : memref<64x64xf32, strided<[256, 1], offset: ?>>, vector<2xf32>
// CHECK: } else {
// CHECK:   memref.store
func.func @paired_epilogue(%x: memref<64x200xf32>, %wg: memref<2x256x200xbf16>,
                           %wu: memref<2x256x200xbf16>, %experts: memref<1xi32>,
                           %y: memref<64x256xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c4, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    %col = arith.muli %by, %c64 : index
    %g = memref.subview %wg[0, %col, 0] [2, 64, 200] [1, 1, 1] : memref<2x256x200xbf16> to memref<2x64x200xbf16, strided<[51200, 200, 1], offset: ?>>
    %u = memref.subview %wu[0, %col, 0] [2, 64, 200] [1, 1, 1] : memref<2x256x200xbf16> to memref<2x64x200xbf16, strided<[51200, 200, 1], offset: ?>>
    %o = memref.subview %y[0, %col] [64, 64] [1, 1] : memref<64x256xf32> to memref<64x64xf32, strided<[256, 1], offset: ?>>
    moe.grouped_matmul block_rows(64)
        ins(%x, %g, %experts : memref<64x200xf32>, memref<2x64x200xbf16, strided<[51200, 200, 1], offset: ?>>, memref<1xi32>)
        paired(%u : memref<2x64x200xbf16, strided<[51200, 200, 1], offset: ?>>)
        outs(%o : memref<64x64xf32, strided<[256, 1], offset: ?>>)
        epilogue {
        ^bb0(%gs: f32, %us: f32, %old: f32):
          %one = arith.constant 1.0 : f32
          %n = arith.negf %gs : f32
          %e = math.exp %n : f32
          %d = arith.addf %one, %e : f32
          %s = arith.divf %gs, %d : f32
          %r = arith.mulf %s, %us : f32
          moe.yield %r : f32
        }
    gpu.terminator
  }
  return
}

// -----

// bf16 rows in and out (the down projection's input after
// moe-narrow-epilogue-outputs, and an epilogue writing bf16), gathered
// through row sources. A chunk of 8 depths is one 16-byte cp.async from
// the row to its swizzled place (no registers), zero-filled past the
// elements it reads; each thread arrives on the stage's mbarrier once its
// copies land (129 arrivals: thread 0's with the TMA bytes and the 128
// threads'). Each step waits for the stage, fences the copies for the
// async proxy and multiplies, with no block barrier between. Each value
// is rounded to bf16 as it is stored.
// CHECK-LABEL: func @bf16_rows
// CHECK: nvgpu.mbarrier.init %{{.*}}, %c129
// CHECK: scf.for
// CHECK: nvgpu.tma.async.load
// CHECK-COUNT-4: nvgpu.device_async_copy %{{.*}}, 8, %{{.*}} {bypassL1} : memref<64x64xbf16> to memref<64x64xbf16, #gpu.address_space<workgroup>>
// CHECK: nvvm.cp.async.mbarrier.arrive %{{.*}} {noinc = true} : !llvm.ptr<3>
// CHECK: nvgpu.mbarrier.try_wait.parity
// CHECK-NEXT: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK-NEXT: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async
// CHECK-NOT: vector.load %{{.*}} : memref<64x64xbf16>
// A pair of adjacent columns is rounded and stored as one 4-byte vector
// where aligned, else one element each.
// CHECK: scf.if
// CHECK:   %[[PAIR:.*]] = vector.from_elements %{{.*}}, %{{.*}} : vector<2xf32>
// CHECK:   %[[V2:.*]] = arith.truncf %[[PAIR]] : vector<2xf32> to vector<2xbf16>
// CHECK:   vector.store %[[V2]], %{{.*}} {alignment = 4 : i64} : memref<64x64xbf16>, vector<2xbf16>
// CHECK: } else {
// CHECK:   %[[V:.*]] = arith.truncf %{{.*}} : f32 to bf16
// CHECK:   memref.store %[[V]], %{{.*}} : memref<64x64xbf16>
// Without async-gather, the threads load each chunk (one 16-byte load of
// 8 bf16) and store it.
// REGS-LABEL: func @bf16_rows
// REGS: nvgpu.mbarrier.init %{{.*}}, %c1{{(_[0-9]+)?}} :
// REGS: vector.load %{{.*}} : memref<64x64xbf16>, vector<8xbf16>
// REGS: vector.store
// REGS: nvvm.fence.proxy
// REGS: nvgpu.mbarrier.try_wait.parity
// REGS-NEXT: gpu.barrier
// REGS-NOT: nvgpu.device_async_copy
// REGS: nvvm.wgmma.mma_async
func.func @bf16_rows(%x: memref<64x64xbf16>, %w: memref<2x64x64xbf16>,
                     %experts: memref<1xi32>, %sources: memref<64xi32>,
                     %y: memref<64x64xbf16>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x64xbf16>, memref<2x64x64xbf16>, memref<1xi32>)
        row_sources(%sources : memref<64xi32>)
        outs(%y : memref<64x64xbf16>)
        epilogue {
        ^bb0(%s: f32, %old: f32):
          %zero = arith.constant 0.0 : f32
          %r = arith.maximumf %s, %zero : f32
          moe.yield %r : f32
        }
    gpu.terminator
  }
  return
}

// -----

// bf16 rows read in place (no row sources: the block's rows are the
// input's own, as the down projection reads the hidden rows): A comes by
// TMA too, from a descriptor of the whole input with boxes of 8 rows x 64
// depths (one swizzle atom), as many per step as cover the block's filled
// rows (here all 64: 8), each at (depth, first row + 8 i) into the stage's
// A buffer + 1 KiB i, completing on the stage's mbarrier with the weights'
// box: thread 0 expects 8 KiB + 1 KiB per box. No thread loads or stores
// A, nothing is fenced, and no block barrier stands between the mbarrier
// wait and the wgmma group.
// CHECK-LABEL: func @bf16_rows_in_place
// CHECK: nvgpu.tma.create.descriptor {{.*}} -> <tensor = memref<1x64x64xbf16
// CHECK: %[[CAST:.*]] = memref.cast %{{.*}} : memref<256x64xbf16> to memref<*xbf16>
// CHECK: %[[ROWS:.*]] = nvgpu.tma.create.descriptor %[[CAST]] box[%c8{{.*}}, %c64{{.*}}] : memref<*xbf16> -> <tensor = memref<8x64xbf16, #gpu.address_space<workgroup>>, swizzle = swizzle_128b, l2promo = l2promo_256b, oob = zero, interleave = none>
// CHECK: gpu.launch blocks(%[[BX:[a-z0-9]+]],
// CHECK: %[[VIEWROW:.*]] = arith.muli %[[BX]], %c64
// CHECK: %[[BOXES:.*]] = arith.ceildivui %{{.*}}, %c8
// CHECK-NOT: vector.load
// CHECK: %[[BOXBYTES:.*]] = arith.muli %[[BOXES]], %c1024
// CHECK: %[[BYTES:.*]] = arith.addi %c8192{{.*}}, %[[BOXBYTES]]
// CHECK: nvgpu.mbarrier.arrive.expect_tx %{{.*}}, %[[BYTES]]
// CHECK: nvgpu.tma.async.load
// CHECK: %[[ROWBASE:.*]] = arith.addi %[[VIEWROW]], %{{.*}}
// CHECK: scf.for %[[BOX:.*]] = %{{.*}} to %[[BOXES]]
// CHECK:   %[[SHIFT:.*]] = arith.muli %[[BOX]], %c1024
// CHECK:   memref.view %{{.*}} : memref<{{[0-9]+}}xi8, #gpu.address_space<workgroup>> to memref<8x64xbf16, #gpu.address_space<workgroup>>
// CHECK:   %[[BOXROW:.*]] = arith.muli %[[BOX]], %c8
// CHECK:   %[[ROW:.*]] = arith.addi %[[ROWBASE]], %[[BOXROW]]
// CHECK:   nvgpu.tma.async.load %[[ROWS]][%{{.*}}, %[[ROW]]], %{{.*}} to %{{.*}} : {{.*}} -> memref<8x64xbf16, #gpu.address_space<workgroup>>
// CHECK-NOT: vector.load
// CHECK-NOT: nvvm.fence.proxy
// CHECK: nvgpu.mbarrier.try_wait.parity
// CHECK-NEXT: nvvm.wgmma.fence.aligned
// CHECK-NOT: vector.load
// CHECK-NOT: nvvm.fence.proxy
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// bf16 rows whose starts are not all at 16-byte boundaries (a view of 64
// of 68 columns: rows 136 bytes apart) are gathered through the threads'
// registers: cp.async copies 16 aligned bytes.
// CHECK-LABEL: func @bf16_rows_unaligned
// CHECK-NOT: nvgpu.device_async_copy
// CHECK: vector.load %{{.*}} : memref<64x64xbf16, strided<[68, 1]>>, vector<8xbf16>
// CHECK-NOT: nvgpu.device_async_copy
// CHECK: return
func.func @bf16_rows_in_place(%x: memref<256x64xbf16>, %w: memref<2x64x64xbf16>,
                              %experts: memref<1xi32>, %y: memref<256x64xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c4, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    %row = arith.muli %bx, %c64 : index
    %rows = memref.subview %x[%row, 0] [64, 64] [1, 1] : memref<256x64xbf16> to memref<64x64xbf16, strided<[64, 1], offset: ?>>
    %out = memref.subview %y[%row, 0] [64, 64] [1, 1] : memref<256x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
    moe.grouped_matmul block_rows(64)
        ins(%rows, %w, %experts : memref<64x64xbf16, strided<[64, 1], offset: ?>>, memref<2x64x64xbf16>, memref<1xi32>)
        outs(%out : memref<64x64xf32, strided<[64, 1], offset: ?>>)
    gpu.terminator
  }
  return
}
func.func @bf16_rows_unaligned(%x: memref<64x68xbf16>, %w: memref<2x64x64xbf16>,
                               %experts: memref<1xi32>, %sources: memref<64xi32>,
                               %y: memref<64x64xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    %rows = memref.subview %x[0, 0] [64, 64] [1, 1] : memref<64x68xbf16> to memref<64x64xbf16, strided<[68, 1]>>
    moe.grouped_matmul block_rows(64)
        ins(%rows, %w, %experts : memref<64x64xbf16, strided<[68, 1]>>, memref<2x64x64xbf16>, memref<1xi32>)
        row_sources(%sources : memref<64xi32>)
        outs(%y : memref<64x64xf32>)
    gpu.terminator
  }
  return
}

// -----

// In place under a producer and two consumers (128-row blocks): the
// boxes of 8 rows fill both consumers' A buffers (consecutive in the
// stage), up to 16 of them, with the weights' 16 KiB; the producer gathers
// nothing.
// CHECK-LABEL: func @in_place_two_consumers
// CHECK: nvgpu.tma.create.descriptor {{.*}} -> <tensor = memref<8x64xbf16
// CHECK: gpu.launch
// CHECK: arith.ceildivui %{{.*}}, %c8
// CHECK: scf.if %{{.*}} {
// CHECK-NOT: vector.store
// CHECK:   arith.addi %c16384{{.*}}, %{{.*}}
// CHECK:   nvgpu.mbarrier.arrive.expect_tx
// CHECK:   nvgpu.tma.async.load
// CHECK:   scf.for
// CHECK:     nvgpu.tma.async.load {{.*}} -> memref<8x64xbf16, #gpu.address_space<workgroup>>
// CHECK: } else {
// CHECK: nvvm.wgmma.mma_async
func.func @in_place_two_consumers(%x: memref<128x64xbf16>,
                                  %w: memref<2x128x64xbf16>,
                                  %experts: memref<1xi32>,
                                  %y: memref<128x128xf32>) {
  %c1 = arith.constant 1 : index
  %c384 = arith.constant 384 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c384, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(128)
        ins(%x, %w, %experts : memref<128x64xbf16>, memref<2x128x64xbf16>, memref<1xi32>)
        outs(%y : memref<128x128xf32>)
    gpu.terminator
  }
  return
}

// -----

// A decode tile: 16 columns of one weight over K = 4096 (64 steps). Its
// 64-row stages take 8 KiB of A and 2 KiB of weights: 17 stages keep 32
// KiB of weights in flight (175104 bytes with the alignment). When its one
// row block has at most 8 filled rows, the same ring takes eight-row
// stages: 1 KiB of A (which the wgmmas read for all 64 rows: the A
// descriptor's 8-row stride 0) and the 2 KiB box, 55 of them (the last
// one's 64-row view of A ends inside the ring: (174080 - 8192) / 3072 + 1;
// 55 mbarriers, set up and invalidated in loops). The block divides its
// first slot by the chosen count once; its steps count stage and phase on.
// It keeps 4 steps' wgmma groups in flight (64 / 16 columns): its loads
// run stages - 4 steps ahead.
// CHECK-LABEL: func @eight_row_stages
// CHECK: dynamic_shared_memory_size %c175104_i32
// CHECK: %[[BARS:.*]] = nvgpu.mbarrier.create -> <memorySpace = #gpu.address_space<workgroup>, num_barriers = 55>
// CHECK: scf.for %[[S:.*]] = %{{.*}} to %c55
// CHECK:   nvgpu.mbarrier.init %[[BARS]][%[[S]]], %c1
// CHECK: scf.for
// CHECK:   %[[FEW:.*]] = arith.cmpi ule, %{{.*}}, %c8{{.*}} : index
// CHECK:   %[[STAGES:.*]] = arith.select %[[FEW]], %c55, %c17{{.*}} : index
// CHECK:   %[[STAGE:.*]] = arith.select %[[FEW]], %c3072, %c10240{{.*}} : index
// CHECK:   %[[A:.*]] = arith.select %[[FEW]], %c1024{{.*}}, %c8192{{.*}} : index
// CHECK:   %[[STRIDE:.*]] = arith.select %[[FEW]], %c0_i64{{.*}}, %c274877906944_i64 : i64
// CHECK:   %[[AHEAD:.*]] = arith.subi %[[STAGES]], %c4
// The stage and phase of the block's first slot (once per block; the
// steps count them on):
// CHECK:   %[[FIRST:.*]] = arith.remui %[[SLOT:[a-z0-9_]+]], %[[STAGES]]
// CHECK:   %[[ROUND:.*]] = arith.divui %[[SLOT]], %[[STAGES]]
// CHECK:   %[[PARITY:.*]] = arith.remui %[[ROUND]], %c2
// CHECK:   %[[P1:.*]] = arith.index_castui %[[PARITY]] : index to i1
// CHECK:   %[[PROLOGUE:.*]] = arith.minui %{{.*}}, %[[AHEAD]]
// CHECK:   scf.for %[[S:.*]] = %{{.*}} to %[[PROLOGUE]]
// CHECK:     %[[SUM:.*]] = arith.addi %[[FIRST]], %[[S]]
// CHECK:     %[[PAST:.*]] = arith.cmpi uge, %[[SUM]], %[[STAGES]]
// CHECK:     %[[BACK:.*]] = arith.subi %[[SUM]], %[[STAGES]]
// CHECK:     %[[AT:.*]] = arith.select %[[PAST]], %[[BACK]], %[[SUM]]
// CHECK:     nvgpu.mbarrier.arrive.expect_tx %[[BARS]][%[[AT]]], %c2048
// CHECK:     %[[START:.*]] = arith.muli %[[AT]], %[[STAGE]]
// CHECK:     %[[OFFSET:.*]] = arith.addi %[[START]], %[[A]]
// CHECK:     memref.view %{{.*}}[%[[OFFSET]]][] : memref<174080xi8, #gpu.address_space<workgroup>> to memref<1x16x64xbf16, #gpu.address_space<workgroup>>
// The first step's barrier orders the prologue's A stores (f32 rows,
// stored by the threads); the other steps have none before their wgmmas
// (a refill's stores, 13 or more steps ahead, are ordered by the barrier
// after the next step's wgmmas).
// CHECK:   nvgpu.mbarrier.try_wait.parity %[[BARS]][%[[FIRST]]], %[[P1]]
// CHECK:   gpu.barrier
// CHECK:   %[[FIELDS:.*]] = arith.ori %[[STRIDE]], %c4611686018427453440_i64 : i64
// CHECK:   %[[ADESC:.*]] = arith.ori %{{.*}}, %[[FIELDS]] : i64
// CHECK:   nvvm.wgmma.mma_async %[[ADESC]], %{{.*}}, <m = 64, n = 16, k = 16>
// Four groups stay in flight; the refill goes to the stage the step four
// back read (stage + stages - 4, wrapped), and the next step's stage is
// one on, its phase flipped past the last:
// CHECK:   nvvm.wgmma.wait.group.sync.aligned 4
// CHECK:   arith.addi %[[FIRST]], %[[AHEAD]]
// CHECK:   %[[ON:.*]] = arith.addi %[[FIRST]], %c1
// CHECK:   %[[WRAPS:.*]] = arith.cmpi eq, %[[ON]], %[[STAGES]]
// CHECK:   %[[NEXT:.*]] = arith.select %[[WRAPS]], %c0{{.*}}, %[[ON]]
// CHECK:   %[[NEXTP:.*]] = arith.xori %[[P1]], %[[WRAPS]] : i1
// CHECK:   scf.for {{.*}} iter_args({{.*}}, %[[CS:[a-z0-9_]+]] = %[[NEXT]], %[[CP:[a-z0-9_]+]] = %[[NEXTP]]) -> ({{.*}}, index, i1)
// CHECK:     nvgpu.mbarrier.try_wait.parity %[[BARS]][%[[CS]]], %[[CP]]
// CHECK-NOT: gpu.barrier
// CHECK:     nvvm.wgmma.fence.aligned
// CHECK:     nvvm.wgmma.wait.group.sync.aligned 4
// CHECK:     gpu.barrier
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: scf.for %{{.*}} = %{{.*}} to %c55
// CHECK:   nvvm.mbarrier.inval
// The same tile over two row blocks keeps one layout (the ring's slots
// count on across its blocks): 17 stages of 64 rows.
// CHECK-LABEL: func @eight_row_stages_two_blocks
// CHECK: num_barriers = 17>
// CHECK-NOT: arith.cmpi ule, %{{.*}}, %c8
// CHECK: arith.remui %{{.*}}, %c17
// CHECK: arith.divui %{{.*}}, %c17
// CHECK: nvgpu.mbarrier.try_wait.parity
// CHECK: arith.ori %c274877906944_i64{{.*}}, %c4611686018427453440_i64
// CHECK: nvvm.wgmma.wait.group.sync.aligned 4
// Without eight-row stages: 17 stages of 64 rows, constants.
// NOFEW-LABEL: func @eight_row_stages
// NOFEW: num_barriers = 17>
// NOFEW-NOT: arith.cmpi ule, %{{.*}}, %c8
// NOFEW: arith.remui %{{.*}}, %c17
// NOFEW: arith.divui %{{.*}}, %c17
// NOFEW: nvgpu.mbarrier.try_wait.parity
// NOFEW: arith.ori %c274877906944_i64{{.*}}, %c4611686018427453440_i64
// With one group in flight: the same ring, the loads stages - 1 steps
// ahead.
// ONEGROUP-LABEL: func @eight_row_stages
// ONEGROUP: dynamic_shared_memory_size %c175104_i32
// ONEGROUP: num_barriers = 55>
// ONEGROUP: %[[STAGES:.*]] = arith.select %{{.*}}, %c55, %c17{{.*}} : index
// ONEGROUP: arith.subi %[[STAGES]], %c1
// ONEGROUP: nvvm.wgmma.mma_async
// ONEGROUP: nvvm.wgmma.wait.group.sync.aligned 1
// ONEGROUP-NOT: nvvm.wgmma.wait.group.sync.aligned 4
// ONEGROUP-LABEL: func @eight_row_stages_two_blocks
func.func @eight_row_stages(%x: memref<?x4096xf32>, %w: memref<4x16x4096xbf16>,
                            %experts: memref<1xi32>, %sizes: memref<1xi32>,
                            %sources: memref<64xi32>, %y: memref<64x16xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<?x4096xf32>, memref<4x16x4096xbf16>, memref<1xi32>)
        block_sizes(%sizes : memref<1xi32>)
        row_sources(%sources : memref<64xi32>)
        outs(%y : memref<64x16xf32>)
    gpu.terminator
  }
  return
}
func.func @eight_row_stages_two_blocks(
    %x: memref<?x4096xf32>, %w: memref<4x16x4096xbf16>,
    %experts: memref<2xi32>, %sizes: memref<2xi32>,
    %sources: memref<128xi32>, %targets: memref<128xi32>,
    %scales: memref<128xf32>, %y: memref<?x16xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<?x4096xf32>, memref<4x16x4096xbf16>, memref<2xi32>)
        block_sizes(%sizes : memref<2xi32>)
        row_sources(%sources : memref<128xi32>)
        scatter(%targets, %scales : memref<128xi32>, memref<128xf32>)
        outs(%y : memref<?x16xf32>)
    gpu.terminator
  }
  return
}

// -----

// A narrow specialized tile (16 columns of one weight, K = 4096): its
// consumer keeps 4 groups in flight, releasing the stage of the step 4
// back from the fifth step on and the last 4 (or all, with fewer steps)
// after its last group; the producer's waits on the released stages are
// unchanged.
// CHECK-LABEL: func @specialized_groups
// CHECK: %[[FULL:.*]] = nvgpu.mbarrier.create
// CHECK: %[[RELEASED:.*]] = nvgpu.mbarrier.create
// CHECK:       nvvm.wgmma.wait.group.sync.aligned 4
// CHECK-NOT:   nvgpu.mbarrier.arrive
// CHECK:       scf.for %[[STEP:.*]] = %c1
// CHECK:         nvgpu.mbarrier.try_wait.parity %[[FULL]]
// CHECK:         nvvm.wgmma.wait.group.sync.aligned 4
// CHECK:         %[[PAST:.*]] = arith.cmpi uge, %[[STEP]], %c4
// CHECK:         scf.if %[[PAST]] {
// CHECK:           arith.subi %{{.*}}, %c4
// CHECK:           nvgpu.mbarrier.arrive %[[RELEASED]]
// CHECK:     nvvm.wgmma.wait.group.sync.aligned 0
// CHECK:     %[[MOST:.*]] = arith.maxui %{{.*}}, %c4
// CHECK:     %[[TAIL:.*]] = arith.subi %[[MOST]], %c4
// CHECK:     scf.for %{{.*}} = %[[TAIL]] to
// CHECK:       nvgpu.mbarrier.arrive %[[RELEASED]]
// ONEGROUP-LABEL: func @specialized_groups
// ONEGROUP:       nvvm.wgmma.wait.group.sync.aligned 1
// ONEGROUP-NOT:   nvvm.wgmma.wait.group.sync.aligned 4
// ONEGROUP:     nvvm.wgmma.wait.group.sync.aligned 0
func.func @specialized_groups(%x: memref<?x4096xbf16>,
                              %w: memref<4x16x4096xbf16>,
                              %experts: memref<1xi32>, %sizes: memref<1xi32>,
                              %sources: memref<64xi32>,
                              %y: memref<64x16xf32>) {
  %c1 = arith.constant 1 : index
  %c256 = arith.constant 256 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c256, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<?x4096xbf16>, memref<4x16x4096xbf16>, memref<1xi32>)
        block_sizes(%sizes : memref<1xi32>)
        row_sources(%sources : memref<64xi32>)
        outs(%y : memref<64x16xf32>)
    gpu.terminator
  }
  return
}

// -----

// Rows scattered to the tokens: the sums times their scales, added to the
// target rows (a pair of adjacent columns: one target lookup, one vector
// add where aligned); a barrier after each block.
// CHECK-LABEL: func @scatter
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: memref.load %{{.*}} : memref<64xi32>
// CHECK: memref.load %{{.*}} : memref<64xf32>
// CHECK-NOT: memref.load %{{.*}} : memref<64xi32>
// CHECK: scf.if
// CHECK:   arith.mulf
// CHECK:   arith.mulf
// CHECK:   scf.if
// CHECK:     vector.load %{{.*}} {alignment = 8 : i64} : memref<?x32xf32>, vector<2xf32>
// CHECK:     arith.addf %{{.*}} : vector<2xf32>
// CHECK:     vector.store
// CHECK:   } else {
// CHECK:     arith.addf
// CHECK: gpu.barrier
// CHECK-NEXT: scf.yield
func.func @scatter(%x: memref<64x64xf32>, %w: memref<2x32x64xbf16>,
                   %experts: memref<1xi32>, %targets: memref<64xi32>,
                   %scales: memref<64xf32>, %y: memref<?x32xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
        scatter(%targets, %scales : memref<64xi32>, memref<64xf32>)
        outs(%y : memref<?x32xf32>)
    gpu.terminator
  }
  return
}


// -----

// Atomic scattered adds: the sums of a thread's two adjacent columns times
// their row's scale (one target lookup), added by one red.add.v2.f32 where
// the pair is adjacent in memory and 8-byte aligned, else by an atomic
// read-modify-write each (tiles of other row blocks add to the same rows
// at the same time); nothing loaded or stored. (The one-warpgroup form's
// barrier after each block stays: the next block refills the ring.)
// CHECK-LABEL: func @atomic_scatter
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: memref.load %{{.*}} : memref<64xi32>
// CHECK: memref.load %{{.*}} : memref<64xf32>
// CHECK-NOT: memref.load %{{.*}} : memref<64xi32>
// CHECK: scf.if
// CHECK:   %[[FIRST:.*]] = arith.mulf
// CHECK:   %[[SECOND:.*]] = arith.mulf
// CHECK:   memref.extract_strided_metadata
// CHECK:   memref.extract_aligned_pointer_as_index
// CHECK:   scf.if
// CHECK:     %[[ADDRESS:.*]] = arith.index_castui %{{.*}} : index to i64
// CHECK:     llvm.inline_asm has_side_effects "red.add.v2.f32 [$0], {$1, $2};", "l,f,f,~{memory}" %[[ADDRESS]], %[[FIRST]], %[[SECOND]]
// CHECK:   } else {
// CHECK-NOT: memref.load %{{.*}} : memref<?x32xf32>
// CHECK:     memref.atomic_rmw addf %[[FIRST]], %{{.*}} : (f32, memref<?x32xf32>) -> f32
// CHECK:     scf.if
// CHECK:       memref.atomic_rmw addf %[[SECOND]], %{{.*}} : (f32, memref<?x32xf32>) -> f32
// CHECK-NOT: memref.store %{{.*}} : memref<?x32xf32>
// CHECK: gpu.terminator
// Without vector reductions (PTX before 8.1), an atomic add each.
// SCALARRED-LABEL: func @atomic_scatter
// SCALARRED-NOT: llvm.inline_asm
// SCALARRED: memref.atomic_rmw addf
// SCALARRED: memref.atomic_rmw addf
// SCALARRED-NOT: llvm.inline_asm
// SCALARRED: gpu.terminator
func.func @atomic_scatter(%x: memref<64x64xf32>, %w: memref<2x32x64xbf16>,
                          %experts: memref<1xi32>, %targets: memref<64xi32>,
                          %scales: memref<64xf32>, %y: memref<?x32xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
        scatter(%targets, %scales : memref<64xi32>, memref<64xf32>) atomic
        outs(%y : memref<?x32xf32>)
    gpu.terminator
  }
  return
}

// -----

// One weight read by two tiles of different widths in one launch: a
// descriptor for each box.
// CHECK-LABEL: func @two_widths
// CHECK: nvgpu.tma.create.descriptor {{.*}} -> <tensor = memref<1x128x64xbf16
// CHECK: nvgpu.tma.create.descriptor {{.*}} -> <tensor = memref<1x64x64xbf16
// CHECK: gpu.launch
func.func @two_widths(%x: memref<64x64xf32>, %w: memref<2x128x64xbf16>,
                      %experts: memref<1xi32>, %y: memref<64x128xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x64xf32>, memref<2x128x64xbf16>, memref<1xi32>)
        outs(%y : memref<64x128xf32>)
    %half = memref.subview %w[0, 0, 0] [2, 64, 64] [1, 1, 1] : memref<2x128x64xbf16> to memref<2x64x64xbf16, strided<[8192, 64, 1]>>
    %out = memref.subview %y[0, 0] [64, 64] [1, 1] : memref<64x128xf32> to memref<64x64xf32, strided<[128, 1]>>
    moe.grouped_matmul block_rows(64)
        ins(%x, %half, %experts : memref<64x64xf32>, memref<2x64x64xbf16, strided<[8192, 64, 1]>>, memref<1xi32>)
        outs(%out : memref<64x64xf32, strided<[128, 1]>>)
    gpu.terminator
  }
  return
}

// -----

// Dense (no block ids, the router's logits): ceil(R / 64) row blocks, each
// the one expert's (no id loaded), its filled rows those left from its
// first row (the last block's rows past R gather zeros and are not
// written); the weight's expert coordinate is 0.
// CHECK-LABEL: func @dense
// CHECK: %[[R:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x128xf32>
// CHECK: %[[B:.*]] = arith.ceildivui %[[R]], %{{.*}} : index
// CHECK-NOT: memref.load %{{.*}} : memref<{{.*}}xi32>
// CHECK: scf.for %[[BLK:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args
// CHECK:   scf.if %true
// CHECK:     %[[RS:.*]] = arith.minui %{{.*}}, %{{.*}} : index
// CHECK:     %[[FIRST:.*]] = arith.muli %[[BLK]], %{{.*}} : index
// CHECK:     %[[PAST:.*]] = arith.maxui %[[RS]], %[[FIRST]]
// CHECK:     %[[LEFT:.*]] = arith.subi %[[PAST]], %[[FIRST]]
// CHECK:     arith.minui %[[LEFT]], %{{.*}} : index
// CHECK:     nvgpu.tma.async.load
// CHECK:     nvvm.wgmma.mma_async
func.func @dense(%x: memref<?x64xf32>, %w: memref<1x128x64xbf16>, %y: memref<?x128xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w : memref<?x64xf32>, memref<1x128x64xbf16>)
        exact_products
        outs(%y : memref<?x128xf32>)
    gpu.terminator
  }
  return
}
