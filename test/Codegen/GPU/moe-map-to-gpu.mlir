// RUN: moe-opt %s --split-input-file --moe-map-to-gpu | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="routing-block-size=128" | FileCheck %s --check-prefix=ROUTING
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="block-size=64" | FileCheck %s --check-prefix=BLOCK64
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="tile-grid-limit=4" | FileCheck %s --check-prefix=PERSISTENT
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="team-grid-limit=6" | FileCheck %s --check-prefix=TEAMGRID
// RUN: not moe-opt %s --split-input-file --moe-map-to-gpu="block-size=0" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="multiprocessors=8" | FileCheck %s --check-prefix=GROUPED
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="multiprocessors=8 tile-group-rows=2" | FileCheck %s --check-prefix=GROUP2
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="multiprocessors=8 tile-grid-limit=4" | FileCheck %s --check-prefix=PERSISTGROUPED
// RUN: not moe-opt %s --split-input-file --moe-map-to-gpu="team-grid-limit=-1" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --split-input-file --moe-map-to-gpu="tile-group-rows=-1" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --split-input-file --moe-map-to-gpu="multiprocessors=-1" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="multiprocessors=8 tile-cluster=2" | FileCheck %s --check-prefix=CLUSTER
// RUN: not moe-opt %s --split-input-file --moe-map-to-gpu="tile-cluster=3" 2>&1 | FileCheck %s --check-prefix=BAD-CLUSTER
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="multiprocessors=8 tile-cluster=2 tile-grid-limit=4" | FileCheck %s --check-prefix=CLUSTERPERSIST

// BAD: moe-map-to-gpu: block-size and warp-size must be at least 1, routing-block-size, tile-grid-limit, team-grid-limit, tile-group-rows and multiprocessors at least 0
// BAD-CLUSTER: moe-map-to-gpu: tile-cluster must be 1 or 2, not 3

// Host arguments are copied to the device when the call starts, weights
// (moe.weight, its attribute removed) are device memory already; a
// parallel loop is one kernel of one iteration per thread; the result is
// copied back to a host buffer, every device buffer freed, and the host
// waits once, at the end, on one chain of tokens.
// CHECK-LABEL: func @elementwise
// CHECK-SAME: (%[[X:.*]]: memref<?x8xf32>, %[[W:.*]]: memref<8xf32>) -> memref<?x8xf32>
// CHECK: %[[T:.*]] = memref.dim %[[X]], %c0
// CHECK: %[[START:.*]] = gpu.wait async
// CHECK: %[[DX:.*]], %[[A0:.*]] = gpu.alloc async [%[[START]]] (%[[T]]) : memref<?x8xf32>
// CHECK: %[[C0:.*]] = gpu.memcpy async [%[[A0]]] %[[DX]], %[[X]]
// CHECK: %[[Y:.*]], %[[A1:.*]] = gpu.alloc async [%[[C0]]] (%{{.*}}) : memref<?x8xf32>
// CHECK: %[[GRID:.*]] = arith.ceildivui %[[TOTAL:.*]], %c256
// CHECK: %[[K:.*]] = gpu.launch async [%[[A1]]] blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[GRID]], %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c256{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}})
// CHECK:   %[[FIRST:.*]] = arith.muli %[[BX]], %c256{{.*}}
// CHECK:   %[[LINEAR:.*]] = arith.addi %[[FIRST]], %[[TX]]
// CHECK:   %[[IN:.*]] = arith.cmpi ult, %[[LINEAR]], %[[TOTAL]]
// CHECK:   scf.if %[[IN]] {
// CHECK:     arith.remui %[[LINEAR]], %[[COLS:.*]] : index
// CHECK:     arith.divui %[[LINEAR]], %[[COLS]] : index
// CHECK:     memref.load %[[DX]]
// CHECK:     memref.load %[[W]]
// CHECK:     memref.store
// CHECK:   gpu.terminator
// CHECK: %[[HOST:.*]] = memref.alloc(%{{.*}}) : memref<?x8xf32>
// CHECK: %[[BACK:.*]] = gpu.memcpy async [%[[K]]] %[[HOST]], %[[Y]]
// CHECK: %[[F0:.*]] = gpu.dealloc async [%[[BACK]]] %[[Y]]
// CHECK: %[[F1:.*]] = gpu.dealloc async [%[[F0]]] %[[DX]]
// CHECK: gpu.wait [%[[F1]]]
// CHECK-NOT: gpu.wait
// CHECK: return %[[HOST]]
// BLOCK64-LABEL: func @elementwise
// BLOCK64: arith.ceildivui %{{.*}}, %c64
// BLOCK64: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c64
func.func @elementwise(%x: memref<?x8xf32>,
                       %w: memref<8xf32> {moe.weight = "w"}) -> memref<?x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %a = memref.load %x[%i, %j] : memref<?x8xf32>
    %b = memref.load %w[%j] : memref<8xf32>
    %s = arith.mulf %a, %b : f32
    memref.store %s, %y[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  return %y : memref<?x8xf32>
}

// -----

// Sequential code runs as a kernel of one thread; a scalar it computes
// that the host needs (the size of a later buffer) comes back through a
// device scratch buffer, the host waiting for it there, then a new chain.
// CHECK-LABEL: func @read_back
// CHECK: %[[SCRATCH:.*]], %{{.*}} = gpu.alloc async [%{{.*}}] () : memref<1xi64>
// CHECK: %[[K:.*]] = gpu.launch async [%{{.*}}] blocks({{.*}}) in (%{{.*}} = %c1{{.*}}, {{.*}}) threads({{.*}}) in (%{{.*}} = %c1{{.*}}, {{.*}})
// CHECK:   scf.for
// CHECK:     memref.store
// CHECK:   %[[SUM:.*]] = memref.load
// CHECK:   scf.if
// CHECK:     %[[BITS:.*]] = arith.index_castui %[[SUM]] : index to i64
// CHECK:     memref.store %[[BITS]], %[[SCRATCH]][%{{.*}}]
// CHECK: %[[HOST:.*]] = memref.alloca() : memref<1xi64>
// CHECK: %[[COPY:.*]] = gpu.memcpy async [%[[K]]] %[[HOST]], %[[SCRATCH]]
// CHECK: gpu.wait [%[[COPY]]]
// CHECK: %[[NEW:.*]] = gpu.wait async
// CHECK: gpu.dealloc async [%[[NEW]]] %[[SCRATCH]]
// CHECK: %[[READ:.*]] = memref.load %[[HOST]]
// CHECK: %[[N:.*]] = arith.index_castui %[[READ]] : i64 to index
// CHECK: gpu.alloc async [%{{.*}}] (%[[N]]) : memref<?xf32>
func.func @read_back(%counts: memref<4xindex> {moe.weight = "c"}) -> memref<?xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %prefix = memref.alloc() : memref<5xindex>
  memref.store %c0, %prefix[%c0] : memref<5xindex>
  scf.for %e = %c0 to %c4 step %c1 {
    %n = memref.load %counts[%e] : memref<4xindex>
    %p = memref.load %prefix[%e] : memref<5xindex>
    %q = arith.addi %p, %n : index
    %e1 = arith.addi %e, %c1 : index
    memref.store %q, %prefix[%e1] : memref<5xindex>
  }
  %total = memref.load %prefix[%c4] : memref<5xindex>
  %rows = memref.alloc(%total) : memref<?xf32>
  return %rows : memref<?xf32>
}

// -----

// Scalar arithmetic on what a sequential kernel computes joins that
// kernel when the host does not need it: nothing is read back (the value
// goes on to the next sequential op, a store, in the same kernel).
// CHECK-LABEL: func @scalar_joins
// CHECK: gpu.launch async
// CHECK:   %[[V:.*]] = memref.load
// CHECK:   %[[W:.*]] = arith.addi %[[V]], %{{.*}} : index
// CHECK:   memref.store %[[W]]
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: memref.alloca
// CHECK: return
func.func @scalar_joins(%counts: memref<4xindex> {moe.weight = "c"},
                        %out: memref<4xindex> {moe.weight = "o"}) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %v = memref.load %counts[%c0] : memref<4xindex>
  %w = arith.addi %v, %c1 : index
  memref.store %w, %out[%c1] : memref<4xindex>
  return
}

// -----

// A tile of the tiled program (a parallel iteration holding a grouped
// matmul) is one block of one warp: the matmul stays for
// moe-lower-grouped-matmul-to-mma, the fill of its accumulator is spread
// over the lanes, a barrier after it (none after the matmul, which ends
// the kernel). Kernels are named after the function, what they run and
// their launch's place.
// CHECK-LABEL: func @tiles
// CHECK: gpu.launch async [%{{.*}}] blocks(%[[B:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[BLOCKS:.*]], %{{.*}}, %{{.*}}) threads(%[[LANE:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c32{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) module(@tiles_tiles_0) function(@tiles_tiles_0)
// CHECK:   scf.for %[[I:.*]] = %[[LANE]] to %{{.*}} step %c32
// CHECK:     memref.store %{{.*}}, %[[ACC:.*]][
// CHECK:   gpu.barrier
// CHECK-NEXT: moe.grouped_matmul
// CHECK-NEXT: gpu.terminator
// ROUTING-LABEL: func @tiles
// ROUTING: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c32
func.func @tiles(%x: memref<?x16xf32>, %w: memref<4x32x16xbf16> {moe.weight = "w"},
                 %experts: memref<?xi32>) -> memref<?x32xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c32 = arith.constant 32 : index
  %zero = arith.constant 0.0 : f32
  %nb = memref.dim %experts, %c0 : memref<?xi32>
  %rows = arith.muli %nb, %c16 : index
  %y = memref.alloc(%rows) : memref<?x32xf32>
  scf.parallel (%b) = (%c0) to (%nb) step (%c1) {
    %r = arith.muli %b, %c16 : index
    %xs = memref.subview %x[%r, 0] [16, 16] [1, 1] : memref<?x16xf32> to memref<16x16xf32, strided<[16, 1], offset: ?>>
    %es = memref.subview %experts[%b] [1] [1] : memref<?xi32> to memref<1xi32, strided<[1], offset: ?>>
    %ys = memref.subview %y[%r, 0] [16, 32] [1, 1] : memref<?x32xf32> to memref<16x32xf32, strided<[32, 1], offset: ?>>
    scf.parallel (%i, %j) = (%c0, %c0) to (%c16, %c32) step (%c1, %c1) {
      memref.store %zero, %ys[%i, %j] : memref<16x32xf32, strided<[32, 1], offset: ?>>
      scf.reduce
    }
    moe.grouped_matmul block_rows(16)
        ins(%xs, %w, %es : memref<16x16xf32, strided<[16, 1], offset: ?>>, memref<4x32x16xbf16>, memref<1xi32, strided<[1], offset: ?>>)
        outs(%ys : memref<16x32xf32, strided<[32, 1], offset: ?>>)
    scf.reduce
  }
  return %y : memref<?x32xf32>
}

// -----

// With routing-block-size, everything before the first tile is one kernel
// of one block: its parallel loops spread over the threads, writes of
// sequential code on thread 0, a barrier after each; a result of an op
// that writes reaches the other threads through workgroup memory.
// ROUTING-LABEL: func @routing
// ROUTING: %[[K:.*]] = gpu.launch async [%{{.*}}] blocks({{.*}}) in (%{{.*}} = %c1{{.*}}, {{.*}}) threads(%[[TID:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c128{{.*}}, {{.*}}) module(@routing_routing_0) function(@routing_routing_0) workgroup(%[[SHARED:.*]] : memref<1xi64, #gpu.address_space<workgroup>>)
// ROUTING:   scf.for %{{.*}} = %[[TID]] to %{{.*}} step %c128
// ROUTING:     memref.store
// ROUTING:   gpu.barrier
// ROUTING:   %[[FIRST:.*]] = arith.cmpi eq, %[[TID]], %c0
// ROUTING:   scf.if %[[FIRST]] {
// ROUTING:     %[[SUM:.*]] = scf.for
// ROUTING:     memref.store %{{.*}}, %[[SHARED]]
// ROUTING:   gpu.barrier
// ROUTING:   %[[BITS:.*]] = memref.load %[[SHARED]]
// ROUTING:   %[[SHARED_SUM:.*]] = arith.index_castui %[[BITS]] : i64 to index
// ROUTING:   scf.for %{{.*}} = %[[TID]] to %{{.*}} step %c128
// ROUTING:     memref.store %[[SHARED_SUM]]
// ROUTING:   gpu.barrier
// ROUTING:   gpu.terminator
// ROUTING-NOT: gpu.launch
// ROUTING: return
// Without it: three kernels.
// CHECK-LABEL: func @routing
// CHECK-COUNT-3: gpu.launch
// CHECK-NOT: gpu.launch
func.func @routing(%scores: memref<?x4xf32>) -> memref<?x4xindex> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %t = memref.dim %scores, %c0 : memref<?x4xf32>
  %counts = memref.alloc(%t) : memref<?x4xindex>
  scf.parallel (%i, %e) = (%c0, %c0) to (%t, %c4) step (%c1, %c1) {
    memref.store %c1, %counts[%i, %e] : memref<?x4xindex>
    scf.reduce
  }
  %sum = scf.for %i = %c0 to %t step %c1 iter_args(%s = %c0) -> (index) {
    %n = memref.load %counts[%i, %c0] : memref<?x4xindex>
    memref.store %s, %counts[%i, %c1] : memref<?x4xindex>
    %next = arith.addi %s, %n : index
    scf.yield %next : index
  }
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    memref.store %sum, %counts[%i, %c0] : memref<?x4xindex>
    scf.reduce
  }
  return %counts : memref<?x4xindex>
}

// -----

// In the routing region, a parallel loop that reads a weight matrix (the
// router's matmul) is a kernel over all multiprocessors, a thread per
// iteration; what follows it is the routing kernel of one block, with the
// loop that reads a vector weight (a bias per expert).
// ROUTING-LABEL: func @router_matmul
// ROUTING: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c256{{.*}}) module(@router_matmul_loop_0)
// ROUTING:   memref.load %arg1
// ROUTING: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c128{{.*}}) module(@router_matmul_routing_1)
// ROUTING:   memref.load %arg2
// ROUTING-NOT: gpu.launch
// ROUTING: return
// CHECK-LABEL: func @router_matmul
// CHECK-COUNT-2: gpu.launch
func.func @router_matmul(%x: memref<?x8xf32>,
                         %router: memref<4x8xf32> {moe.weight = "gate.weight"},
                         %bias: memref<4xf32> {moe.weight = "gate.bias"})
    -> memref<?x4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %logits = memref.alloc(%t) : memref<?x4xf32>
  scf.parallel (%i, %e) = (%c0, %c0) to (%t, %c4) step (%c1, %c1) {
    memref.store %zero, %logits[%i, %e] : memref<?x4xf32>
    scf.for %k = %c0 to %c8 step %c1 {
      %a = memref.load %x[%i, %k] : memref<?x8xf32>
      %w = memref.load %router[%e, %k] : memref<4x8xf32>
      %old = memref.load %logits[%i, %e] : memref<?x4xf32>
      %p = arith.mulf %a, %w : f32
      %s = arith.addf %old, %p : f32
      memref.store %s, %logits[%i, %e] : memref<?x4xf32>
    }
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %v = memref.load %logits[%i, %c0] : memref<?x4xf32>
    %b = memref.load %bias[%c0] : memref<4xf32>
    %d = arith.addf %v, %b : f32
    memref.store %d, %logits[%i, %c1] : memref<?x4xf32>
    scf.reduce
  }
  return %logits : memref<?x4xf32>
}

// -----

// A loop that reads the token rows the router reads (here their device
// copy: rounding them for the tiles) is a kernel over all multiprocessors
// too, between routing kernels; a loop that reads only what the routing
// wrote stays in one.
// ROUTING-LABEL: func @token_rows
// ROUTING: module(@token_rows_loop_0)
// ROUTING: module(@token_rows_routing_1)
// ROUTING: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c256{{.*}}) module(@token_rows_rows_2)
// ROUTING: arith.truncf
// ROUTING: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c128{{.*}}) module(@token_rows_routing_3)
// ROUTING-NOT: gpu.launch
// ROUTING: return
func.func @token_rows(%x: memref<?x8xf32>,
                      %router: memref<4x8xf32> {moe.weight = "gate.weight"})
    -> (memref<?x4xf32>, memref<?x8xbf16>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %logits = memref.alloc(%t) : memref<?x4xf32>
  scf.parallel (%i, %e) = (%c0, %c0) to (%t, %c4) step (%c1, %c1) {
    %sum = scf.for %k = %c0 to %c8 step %c1 iter_args(%acc = %zero) -> (f32) {
      %a = memref.load %x[%i, %k] : memref<?x8xf32>
      %w = memref.load %router[%e, %k] : memref<4x8xf32>
      %p = arith.mulf %a, %w : f32
      %s = arith.addf %acc, %p : f32
      scf.yield %s : f32
    }
    memref.store %sum, %logits[%i, %e] : memref<?x4xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %v = memref.load %logits[%i, %c0] : memref<?x4xf32>
    %d = arith.addf %v, %v : f32
    memref.store %d, %logits[%i, %c1] : memref<?x4xf32>
    scf.reduce
  }
  %rounded = memref.alloc(%t) : memref<?x8xbf16>
  scf.parallel (%i, %k) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %a = memref.load %x[%i, %k] : memref<?x8xf32>
    %r = arith.truncf %a : f32 to bf16
    memref.store %r, %rounded[%i, %k] : memref<?x8xbf16>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %v = memref.load %logits[%i, %c1] : memref<?x4xf32>
    %d = arith.addf %v, %v : f32
    memref.store %d, %logits[%i, %c0] : memref<?x4xf32>
    scf.reduce
  }
  return %logits, %rounded : memref<?x4xf32>, memref<?x8xbf16>
}

// -----

// A loop whose iterations each combine the lanes of a parallel loop of
// reductions (moe-split-parallel-reductions' form: the router's matmul at
// few tokens) runs a block per iteration, of as many threads as it has
// lanes, walking the iterations from its block id in steps of the grid
// (the grid at most 2^31 - 1 blocks, or team-grid-limit): each thread sums its strided share
// of the lanes from the neutral element, a gpu.all_reduce combines the
// threads' sums (a barrier after it frees its workgroup memory, and
// orders every thread's read of the logit before the store) and every
// thread adds the initial value; thread 0 stores the logit, a barrier
// after it. The zero fill before it is thread 0's too. In the routing
// region too, where the team launch reads the weight like the loop it
// replaces.
// CHECK-LABEL: func @team_reduction
// CHECK: %[[GRID:.*]] = arith.minui %[[COUNT:.*]], %c2147483647
// CHECK: gpu.launch async [%{{.*}}] blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%[[GX:.*]] = %[[GRID]], %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c16{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) module(@team_reduction_team_0)
// CHECK:   scf.for %[[ITER:.*]] = %[[BX]] to %[[COUNT]] step %[[GX]] {
// CHECK:     %[[FIRST:.*]] = arith.cmpi eq, %[[TX]], %c0
// CHECK:     scf.if %[[FIRST]] {
// CHECK:       memref.store %{{.*}}, %[[LOGITS:.*]][
// CHECK:     gpu.barrier
// CHECK:     %[[OLD:.*]] = memref.load %[[LOGITS]][
// CHECK:     %[[MINE:.*]] = scf.for %{{.*}} = %[[TX]] to %{{.*}} step %c16{{.*}} iter_args(%[[A:.*]] = %cst{{.*}}) -> (f32) {
// CHECK:       %[[PART:.*]] = scf.for
// CHECK:       %[[NEXT:.*]] = arith.addf %[[A]], %[[PART]] : f32
// CHECK:       scf.yield %[[NEXT]]
// CHECK:     %[[ALL:.*]] = gpu.all_reduce add %[[MINE]] uniform
// CHECK:     gpu.barrier
// CHECK:     %[[SUM:.*]] = arith.addf %[[OLD]], %{{.*}} : f32
// CHECK-NOT: gpu.barrier
// CHECK:     scf.if
// CHECK:       memref.store %[[SUM]], %[[LOGITS]][
// CHECK:     gpu.barrier
// CHECK: return
// TEAMGRID-LABEL: func @team_reduction
// TEAMGRID: %[[GRID:.*]] = arith.minui %[[COUNT:.*]], %c6
// TEAMGRID: gpu.launch async [%{{.*}}] blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%[[GX:.*]] = %[[GRID]],
// TEAMGRID:   scf.for %{{.*}} = %[[BX]] to %[[COUNT]] step %[[GX]] {
// ROUTING-LABEL: func @team_reduction
// ROUTING: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c16{{.*}}) module(@team_reduction_team_0)
// ROUTING:   gpu.all_reduce add
// ROUTING-NOT: gpu.launch
// ROUTING: return
func.func @team_reduction(%x: memref<?x64xf32>,
                          %router: memref<4x64xf32> {moe.weight = "gate.weight"})
    -> memref<?x4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c16 = arith.constant 16 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %neg_zero = arith.constant -0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x64xf32>
  %logits = memref.alloc(%t) : memref<?x4xf32>
  scf.parallel (%i, %e) = (%c0, %c0) to (%t, %c4) step (%c1, %c1) {
    memref.store %zero, %logits[%i, %e] : memref<?x4xf32>
    %init = memref.load %logits[%i, %e] : memref<?x4xf32>
    %parts = scf.parallel (%lane) = (%c0) to (%c16) step (%c1)
        init (%neg_zero) -> f32 {
      %part = scf.for %k = %lane to %c64 step %c16
          iter_args(%a = %neg_zero) -> (f32) {
        %xv = memref.load %x[%i, %k] : memref<?x64xf32>
        %wv = memref.load %router[%e, %k] : memref<4x64xf32>
        %p = arith.mulf %xv, %wv : f32
        %s = arith.addf %a, %p : f32
        scf.yield %s : f32
      }
      scf.reduce(%part : f32) {
      ^bb0(%l: f32, %r: f32):
        %c = arith.addf %l, %r : f32
        scf.reduce.return %c : f32
      }
    }
    %sum = arith.addf %init, %parts : f32
    memref.store %sum, %logits[%i, %e] : memref<?x4xf32>
    scf.reduce
  }
  return %logits : memref<?x4xf32>
}

// -----

// The same lanes in an iteration that allocates a buffer of its own: no
// team kernel (the buffer would be each thread's while thread 0 alone
// wrote it); a thread per iteration runs the lanes in sequence.
// CHECK-LABEL: func @team_private_buffer
// CHECK: gpu.launch {{.*}} module(@team_private_buffer_loop_0)
// CHECK-NOT: gpu.all_reduce
// CHECK: return
func.func @team_private_buffer(%x: memref<?x64xf32>, %out: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c64 = arith.constant 64 : index
  %neg_zero = arith.constant -0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x64xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %scratch = memref.alloca() : memref<1xf32>
    %parts = scf.parallel (%lane) = (%c0) to (%c16) step (%c1)
        init (%neg_zero) -> f32 {
      %part = scf.for %k = %lane to %c64 step %c16
          iter_args(%a = %neg_zero) -> (f32) {
        %v = memref.load %x[%i, %k] : memref<?x64xf32>
        %s = arith.addf %a, %v : f32
        scf.yield %s : f32
      }
      scf.reduce(%part : f32) {
      ^bb0(%l: f32, %r: f32):
        %c = arith.addf %l, %r : f32
        scf.reduce.return %c : f32
      }
    }
    memref.store %parts, %scratch[%c0] : memref<1xf32>
    %back = memref.load %scratch[%c0] : memref<1xf32>
    memref.store %back, %out[%i] : memref<?xf32>
    scf.reduce
  }
  return
}

// -----

// Control flow that allocates or launches stays on the host: the GPU work
// before it is waited for, each region maps on its own chain and ends
// waiting for it. A scratch buffer of a loop body whose size is known
// outside the loop becomes one device buffer, allocated before and freed
// after the loop; one of a size known only inside a parallel iteration
// would stay (a kernel's stack when static).
// CHECK-LABEL: func @host_control
// CHECK: %[[SCRATCH:.*]], %{{.*}} = gpu.alloc async [%{{.*}}] () : memref<8xf32>
// CHECK: gpu.wait [%{{.*}}]
// CHECK: scf.if %{{.*}} {
// CHECK:   %[[START:.*]] = gpu.wait async
// CHECK:   %[[K:.*]] = gpu.launch async [%[[START]]]
// CHECK:   %[[ONE:.*]] = gpu.launch async [%[[K]]]
// CHECK:   gpu.wait [%[[ONE]]]
// CHECK: }
// CHECK: gpu.dealloc async [%{{.*}}] %[[SCRATCH]]
// CHECK: gpu.launch
// CHECK:   %[[STACK:.*]] = memref.alloca() : memref<4xf32>
// CHECK:   memref.store %{{.*}}, %[[STACK]]
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @host_control(%x: memref<8xf32>, %go: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  scf.if %go {
    %s = memref.alloc() : memref<8xf32>
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %v = memref.load %x[%i] : memref<8xf32>
      memref.store %v, %s[%i] : memref<8xf32>
      scf.reduce
    }
    %first = memref.load %s[%c0] : memref<8xf32>
    memref.store %first, %x[%c1] : memref<8xf32>
    memref.dealloc %s : memref<8xf32>
  }
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    %p = memref.alloc() : memref<4xf32>
    memref.store %zero, %p[%c0] : memref<4xf32>
    %v = memref.load %p[%c0] : memref<4xf32>
    memref.store %v, %x[%i] : memref<8xf32>
    memref.dealloc %p : memref<4xf32>
    scf.reduce
  }
  return
}

// -----

// Control flow that only launches kernels (host arithmetic and parallel
// loops, no results: the tiling variants of moe-tile-grouped-matmul)
// continues the call's chain: its kernels in either region depend on the
// work before it, what follows on the same chain (one stream), and the
// host never waits in between.
// CHECK-LABEL: func @only_launches
// CHECK: %[[FIRST:.*]] = gpu.launch async [%{{.*}}]
// CHECK-NOT: gpu.wait [
// CHECK: scf.if %{{.*}} {
// CHECK-NOT: gpu.wait
// CHECK:   gpu.launch async [%[[FIRST]]]
// CHECK: } else {
// CHECK:   gpu.launch async [%[[FIRST]]]
// CHECK: }
// CHECK-NOT: gpu.wait [
// CHECK: gpu.launch async [%[[FIRST]]]
// CHECK: gpu.wait [
// CHECK-NOT: gpu.wait [
// CHECK: return
func.func @only_launches(%x: memref<8xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %x[%i] : memref<8xf32>
    scf.reduce
  }
  %wide = arith.cmpi uge, %n, %c4 : index
  scf.if %wide {
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %v = memref.load %x[%i] : memref<8xf32>
      %w = arith.addf %v, %v : f32
      memref.store %w, %x[%i] : memref<8xf32>
      scf.reduce
    }
  } else {
    %half = arith.divui %c8, %c4 : index
    scf.parallel (%i) = (%c0) to (%half) step (%c1) {
      %v = memref.load %x[%i] : memref<8xf32>
      %w = arith.mulf %v, %v : f32
      memref.store %w, %x[%i] : memref<8xf32>
      scf.reduce
    }
  }
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    %v = memref.load %x[%i] : memref<8xf32>
    %w = arith.subf %v, %v : f32
    memref.store %w, %x[%i] : memref<8xf32>
    scf.reduce
  }
  return
}

// -----

// A constant buffer (memref.global) is host memory: one device copy at the
// start, which the kernels read.
// CHECK-LABEL: func @global_table
// CHECK: %[[HOST:.*]] = memref.get_global @table : memref<4xf32>
// CHECK: %[[DEV:.*]], %[[A:.*]] = gpu.alloc async [%{{.*}}] () : memref<4xf32>
// CHECK: gpu.memcpy async [%[[A]]] %[[DEV]], %[[HOST]]
// CHECK: gpu.launch
// CHECK:   memref.load %[[DEV]]
// CHECK: gpu.dealloc async [%{{.*}}] %[[DEV]]
memref.global "private" constant @table : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
func.func @global_table(%x: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %t = memref.get_global @table : memref<4xf32>
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %v = memref.load %t[%i] : memref<4xf32>
    memref.store %v, %x[%i] : memref<4xf32>
    scf.reduce
  }
  return
}

// -----

// A buffer a region yields outlives the region: it is not hoisted and
// freed after it.
// CHECK-LABEL: func @yielded_buffer
// CHECK: scf.if %{{.*}} -> (memref<8xf32>) {
// CHECK:   gpu.alloc async
// CHECK:   scf.yield
// CHECK: } else {
// CHECK-NOT: gpu.dealloc
// CHECK: gpu.launch
func.func @yielded_buffer(%x: memref<8xf32>, %go: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %b = scf.if %go -> (memref<8xf32>) {
    %a = memref.alloc() : memref<8xf32>
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      memref.store %zero, %a[%i] : memref<8xf32>
      scf.reduce
    }
    scf.yield %a : memref<8xf32>
  } else {
    scf.yield %x : memref<8xf32>
  }
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    %v = memref.load %b[%i] : memref<8xf32>
    memref.store %v, %x[%i] : memref<8xf32>
    scf.reduce
  }
  return
}

// -----

// In a block's team, a write waits for every thread's earlier reads; a
// value thread 0 computes that the host needs is read back from what it
// shared with the other threads.
// ROUTING-LABEL: func @team_read_back
// ROUTING: gpu.launch {{.*}}threads(%[[TID:[a-z0-9]+]],
// ROUTING:   %[[READ:.*]] = memref.load %{{.*}}[%c0{{.*}}] : memref<4xindex>
// ROUTING:   gpu.barrier
// ROUTING:   scf.if
// ROUTING:     memref.store %{{.*}}, %{{.*}}[%c0{{.*}}] : memref<4xindex>
// ROUTING:   gpu.barrier
// ROUTING:   %[[SHARED:.*]] = memref.load %{{.*}} : memref<1xi64, #gpu.address_space<workgroup>>
// ROUTING:   %[[N:.*]] = arith.index_castui %[[SHARED]] : i64 to index
// ROUTING:   scf.if
// ROUTING:     %[[BITS:.*]] = arith.index_castui %[[N]] : index to i64
// ROUTING:     memref.store %[[BITS]]
// ROUTING: gpu.wait [
// ROUTING: %[[BACK:.*]] = memref.load %alloca
// ROUTING: %[[SIZE:.*]] = arith.index_castui %[[BACK]] : i64 to index
// ROUTING: gpu.alloc async [%{{.*}}] (%[[SIZE]]) : memref<?xf32>
func.func @team_read_back(%counts: memref<4xindex> {moe.weight = "c"}, %n: index) -> memref<?xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %first = memref.load %counts[%c0] : memref<4xindex>
  %sum = scf.for %i = %c0 to %n step %c1 iter_args(%s = %first) -> (index) {
    memref.store %s, %counts[%c0] : memref<4xindex>
    %next = arith.addi %s, %c1 : index
    scf.yield %next : index
  }
  %rows = memref.alloc(%sum) : memref<?xf32>
  return %rows : memref<?xf32>
}

// -----

// The tiles' forall with a GPU block mapping: its dimensions on the grid
// as mapped (column tiles on y, row blocks on x), one warp per tile.
// CHECK-LABEL: func @mapped_tiles
// CHECK: %[[COLS:.*]] = arith.ceildivui %{{.*}}, %c1
// CHECK: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c1
// CHECK: gpu.launch async [%{{.*}}] blocks(%[[BX:.*]], %[[BY:.*]], %{{.*}}) in (%{{.*}} = %[[ROWS]], %{{.*}} = %[[COLS]], %{{.*}} = %c1{{.*}}) threads({{.*}}) in (%{{.*}} = %c32
// CHECK:   arith.muli %[[BY]], %c1
// CHECK:   arith.muli %[[BX]], %c1
// CHECK:   moe.grouped_matmul
// With tile-grid-limit, a persistent grid: min(tiles, 4) blocks on x, each
// walking the tiles' linear indices from its block id in steps of the
// grid, row blocks (x) fastest, then column tiles (y); no barrier between
// the tiles (independent iterations).
// PERSISTENT-LABEL: func @mapped_tiles
// PERSISTENT: %[[COLS:.*]] = arith.ceildivui %{{.*}}, %c1
// PERSISTENT: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c1
// PERSISTENT: %[[TOTAL:.*]] = arith.muli %{{.*}}, %[[ROWS]]
// PERSISTENT: %[[GRID:.*]] = arith.minui %[[TOTAL]], %c4
// PERSISTENT: gpu.launch async [%{{.*}}] blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%[[GX:.*]] = %[[GRID]], %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads({{.*}}) in (%{{.*}} = %c32
// PERSISTENT:   scf.for %[[TILE:.*]] = %[[BX]] to %[[TOTAL]] step %[[GX]] {
// PERSISTENT:     %[[B:.*]] = arith.remui %[[TILE]], %[[ROWS]]
// PERSISTENT:     %[[REST:.*]] = arith.divui %[[TILE]], %[[ROWS]]
// PERSISTENT:     %[[N:.*]] = arith.remui %[[REST]], %[[COLS]]
// PERSISTENT:     arith.muli %[[N]], %c1
// PERSISTENT:     arith.muli %[[B]], %c1
// PERSISTENT-NOT: gpu.barrier
// PERSISTENT:     moe.grouped_matmul
// PERSISTENT-NEXT: }
// With multiprocessors (8 tiles at once), the tile order's rule: groups
// of G = round(sqrt(8 x 32 columns x 1 weight x 16 bits / (16 rows x 32
// bits))) = 3 row blocks, one block per tile on x; tile t of a group of
// `height` row blocks (3, or fewer in the last) is row block
// first + (t mod height) and column tile t / height.
// GROUPED-LABEL: func @mapped_tiles
// GROUPED: %[[COLS:.*]] = arith.ceildivui %{{.*}}, %c1
// GROUPED: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c1
// GROUPED: %[[TOTAL:.*]] = arith.muli %{{.*}}, %[[ROWS]]
// GROUPED: gpu.launch async [%{{.*}}] blocks(%[[BX:[^,]*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[TOTAL]], %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads({{.*}}) in (%{{.*}} = %c32
// GROUPED:   %[[G:.*]] = arith.constant 3 : index
// GROUPED:   %[[GT:.*]] = arith.muli %[[G]], %[[COLS]]
// GROUPED:   %[[GROUP:.*]] = arith.divui %[[BX]], %[[GT]]
// GROUPED:   %[[FIRST:.*]] = arith.muli %[[GROUP]], %[[G]]
// GROUPED:   %[[LEFT:.*]] = arith.subi %[[ROWS]], %[[FIRST]]
// GROUPED:   %[[HEIGHT:.*]] = arith.minui %[[LEFT]], %[[G]]
// GROUPED:   %[[BEFORE:.*]] = arith.muli %[[GROUP]], %[[GT]]
// GROUPED:   %[[LOCAL:.*]] = arith.subi %[[BX]], %[[BEFORE]]
// GROUPED:   %[[INGROUP:.*]] = arith.remui %[[LOCAL]], %[[HEIGHT]]
// GROUPED:   %[[B:.*]] = arith.addi %[[FIRST]], %[[INGROUP]]
// GROUPED:   %[[N:.*]] = arith.divui %[[LOCAL]], %[[HEIGHT]]
// GROUPED:   arith.muli %[[N]], %c1
// GROUPED:   arith.muli %[[B]], %c1
// GROUPED:   moe.grouped_matmul
// tile-group-rows sets G.
// GROUP2-LABEL: func @mapped_tiles
// GROUP2: gpu.launch
// GROUP2:   %[[G:.*]] = arith.constant 2 : index
// GROUP2:   arith.muli %[[G]], %{{.*}}
// GROUP2:   moe.grouped_matmul
// Clusters of two CTAs: the grid is twice the pairs of row blocks x
// columns; a cluster (block id / 2) walks the pairs in the tile order (G
// of 3 row blocks: 2 pairs), its CTA (block id mod 2) runs row block
// 2 x pair + rank, if there is one.
// CLUSTER-LABEL: func @mapped_tiles
// CLUSTER: %[[COLS:.*]] = arith.ceildivui %{{.*}}, %c1
// CLUSTER: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c1
// CLUSTER: %[[PAIRS:.*]] = arith.ceildivui %[[ROWS]], %c2
// CLUSTER: %[[BYCOL:.*]] = arith.muli %{{.*}}, %[[COLS]]
// CLUSTER: %[[TOTAL:.*]] = arith.muli %[[BYCOL]], %[[PAIRS]]
// CLUSTER: %[[GRID:.*]] = arith.muli %[[TOTAL]], %c2
// CLUSTER: gpu.launch async [%{{.*}}] clusters({{.*}}) in (%{{.*}} = %c2{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) blocks(%[[BX:[^,]*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[GRID]], %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}})
// CLUSTER:   %[[CLUSTER:.*]] = arith.divui %[[BX]], %c2
// CLUSTER:   arith.muli %c2{{.*}}, %[[COLS]]
// CLUSTER:   arith.divui %[[CLUSTER]],
// CLUSTER:   %[[PAIR:.*]] = arith.addi
// CLUSTER:   %[[TWICE:.*]] = arith.muli %[[PAIR]], %c2
// CLUSTER:   %[[RANK:.*]] = arith.remui %[[BX]], %c2
// CLUSTER:   %[[B:.*]] = arith.addi %[[TWICE]], %[[RANK]]
// CLUSTER:   %[[EXISTS:.*]] = arith.cmpi ult, %[[B]], %[[ROWS]]
// CLUSTER:   scf.if %[[EXISTS]] {
// CLUSTER:     arith.muli %[[B]], %c1
// CLUSTER:     moe.grouped_matmul
// CLUSTER-NEXT: }
// CLUSTER-NEXT: gpu.terminator
// A persistent grid in clusters: at most tile-grid-limit / 2 clusters,
// each walking the pairs from its cluster id in steps of the clusters.
// CLUSTERPERSIST-LABEL: func @mapped_tiles
// CLUSTERPERSIST: arith.ceildivui %{{.*}}, %c1
// CLUSTERPERSIST: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c1
// CLUSTERPERSIST: %[[HALF:.*]] = arith.ceildivui %[[ROWS]], %c2
// CLUSTERPERSIST: %[[PAIRS:.*]] = arith.muli %{{.*}}, %[[HALF]]
// CLUSTERPERSIST: %[[CLUSTERS:.*]] = arith.minui %[[PAIRS]], %c2
// CLUSTERPERSIST: %[[GRID:.*]] = arith.muli %[[CLUSTERS]], %c2
// CLUSTERPERSIST: gpu.launch async [%{{.*}}] clusters({{.*}}) in (%{{.*}} = %c2{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) blocks(%[[BX:[^,]*]], %{{.*}}, %{{.*}}) in (%[[GX:.*]] = %[[GRID]],
// CLUSTERPERSIST:   %[[FIRST:.*]] = arith.divui %[[BX]], %[[TWO:.*]] :
// CLUSTERPERSIST:   %[[STEP:.*]] = arith.divui %[[GX]], %[[TWO]]
// CLUSTERPERSIST:   scf.for %[[PAIR:.*]] = %[[FIRST]] to %[[PAIRS]] step %[[STEP]] {
// CLUSTERPERSIST:     arith.divui %[[PAIR]],
// CLUSTERPERSIST:     %[[RANK:.*]] = arith.remui %[[BX]], %{{.*}}
// CLUSTERPERSIST:     %[[B:.*]] = arith.addi %{{.*}}, %[[RANK]]
// CLUSTERPERSIST:     %[[EXISTS:.*]] = arith.cmpi ult, %[[B]], %[[ROWS]]
// CLUSTERPERSIST:     scf.if %[[EXISTS]] {
// CLUSTERPERSIST:       moe.grouped_matmul
// A persistent grid walks the tiles in the same order.
// PERSISTGROUPED-LABEL: func @mapped_tiles
// PERSISTGROUPED: %[[COLS:.*]] = arith.ceildivui %{{.*}}, %c1
// PERSISTGROUPED: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c1
// PERSISTGROUPED: %[[TOTAL:.*]] = arith.muli %{{.*}}, %[[ROWS]]
// PERSISTGROUPED: %[[GRID:.*]] = arith.minui %[[TOTAL]], %c4
// PERSISTGROUPED: gpu.launch async [%{{.*}}] blocks(%[[BX:[^,]*]], %{{.*}}, %{{.*}}) in (%[[GX:.*]] = %[[GRID]],
// PERSISTGROUPED:   scf.for %[[TILE:.*]] = %[[BX]] to %[[TOTAL]] step %[[GX]] {
// PERSISTGROUPED:     %[[G:.*]] = arith.constant 3 : index
// PERSISTGROUPED:     %[[GT:.*]] = arith.muli %[[G]], %[[COLS]]
// PERSISTGROUPED:     arith.divui %[[TILE]], %[[GT]]
// PERSISTGROUPED:     moe.grouped_matmul
func.func @mapped_tiles(%x: memref<?x16xf32>, %w: memref<4x64x16xbf16> {moe.weight = "w"},
                        %experts: memref<?xi32>) -> memref<?x64xf32> {
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  %nb = memref.dim %experts, %c0 : memref<?xi32>
  %rows = arith.muli %nb, %c16 : index
  %y = memref.alloc(%rows) : memref<?x64xf32>
  scf.forall (%n, %b) in (2, %nb) {
    %r = arith.muli %b, %c16 : index
    %c = arith.muli %n, %c16 : index
    %es = memref.subview %experts[%b] [1] [1] : memref<?xi32> to memref<1xi32, strided<[1], offset: ?>>
    %xs = memref.subview %x[%r, 0] [16, 16] [1, 1] : memref<?x16xf32> to memref<16x16xf32, strided<[16, 1], offset: ?>>
    %ws = memref.subview %w[0, %c, 0] [4, 32, 16] [1, 1, 1] : memref<4x64x16xbf16> to memref<4x32x16xbf16, strided<[1024, 16, 1], offset: ?>>
    %ys = memref.subview %y[%r, %c] [16, 32] [1, 1] : memref<?x64xf32> to memref<16x32xf32, strided<[64, 1], offset: ?>>
    moe.grouped_matmul block_rows(16)
        ins(%xs, %ws, %es : memref<16x16xf32, strided<[16, 1], offset: ?>>, memref<4x32x16xbf16, strided<[1024, 16, 1], offset: ?>>, memref<1xi32, strided<[1], offset: ?>>)
        outs(%ys : memref<16x32xf32, strided<[64, 1], offset: ?>>)
  } {mapping = [#gpu.block<y>, #gpu.block<x>]}
  return %y : memref<?x64xf32>
}

// -----

// A tile grid mapped on three dimensions: the groups walk x (row blocks)
// and y (columns) of each z in turn, z outermost.
// GROUP2-LABEL: func @mapped_tiles_3d
// GROUP2: %[[ZS:.*]] = arith.ceildivui %{{.*}}, %c1
// GROUP2: %[[COLS:.*]] = arith.ceildivui %{{.*}}, %c1
// GROUP2: %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c1
// GROUP2: gpu.launch async [%{{.*}}] blocks(%[[BX:[^,]*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}})
// GROUP2:   %[[PLANE:.*]] = arith.muli %[[ROWS]], %[[COLS]]
// GROUP2:   %[[IN:.*]] = arith.remui %[[BX]], %[[PLANE]]
// GROUP2:   %[[Z:.*]] = arith.divui %[[BX]], %[[PLANE]]
// GROUP2:   %[[G:.*]] = arith.constant 2 : index
// GROUP2:   %[[GT:.*]] = arith.muli %[[G]], %[[COLS]]
// GROUP2:   arith.divui %[[IN]], %[[GT]]
// GROUP2:   arith.remui %[[Z]], %[[ZS]]
// GROUP2:   moe.grouped_matmul
func.func @mapped_tiles_3d(%x: memref<?x16xf32>, %w: memref<4x64x16xbf16> {moe.weight = "w"},
                           %experts: memref<?xi32>) -> memref<?x64xf32> {
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  %nb = memref.dim %experts, %c0 : memref<?xi32>
  %rows = arith.muli %nb, %c16 : index
  %y = memref.alloc(%rows) : memref<?x64xf32>
  scf.forall (%k, %n, %b) in (1, 2, %nb) {
    %r = arith.muli %b, %c16 : index
    %c = arith.muli %n, %c16 : index
    %es = memref.subview %experts[%b] [1] [1] : memref<?xi32> to memref<1xi32, strided<[1], offset: ?>>
    %xs = memref.subview %x[%r, 0] [16, 16] [1, 1] : memref<?x16xf32> to memref<16x16xf32, strided<[16, 1], offset: ?>>
    %ws = memref.subview %w[0, %c, 0] [4, 32, 16] [1, 1, 1] : memref<4x64x16xbf16> to memref<4x32x16xbf16, strided<[1024, 16, 1], offset: ?>>
    %ys = memref.subview %y[%r, %c] [16, 32] [1, 1] : memref<?x64xf32> to memref<16x32xf32, strided<[64, 1], offset: ?>>
    moe.grouped_matmul block_rows(16)
        ins(%xs, %ws, %es : memref<16x16xf32, strided<[16, 1], offset: ?>>, memref<4x32x16xbf16, strided<[1024, 16, 1], offset: ?>>, memref<1xi32, strided<[1], offset: ?>>)
        outs(%ys : memref<16x32xf32, strided<[64, 1], offset: ?>>)
  } {mapping = [#gpu.block<z>, #gpu.block<y>, #gpu.block<x>]}
  return %y : memref<?x64xf32>
}

// -----

// Tiles of one expert (the router's logits at prefill) do not end the
// routing region: they run on the grid, and what reads what they wrote
// (a loop over the logits, then a sequential one, as a top-k would) is
// routing, in the one block of the routing kernel after them. The
// routing region ends at the tiles of the experts (a weight of 4), after
// which a loop is a kernel over the grid.
// ROUTING-LABEL: func @one_expert_tiles
// ROUTING: gpu.launch {{.*}} module(@one_expert_tiles_tiles_0)
// ROUTING: gpu.launch {{.*}} blocks({{.*}}) in (%{{.*}} = %c1{{.*}}, {{.*}}) threads({{.*}}) in (%{{.*}} = %c128{{.*}}) module(@one_expert_tiles_routing_1)
// ROUTING:   scf.for
// ROUTING:   scf.for
// ROUTING: gpu.launch {{.*}} module(@one_expert_tiles_tiles_2)
// ROUTING: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c256{{.*}}) module(@one_expert_tiles_loop_3)
// ROUTING-NOT: gpu.launch
// ROUTING: return
func.func @one_expert_tiles(%x: memref<?x16xbf16>,
                            %w1: memref<1x32x16xbf16> {moe.weight = "router"},
                            %w4: memref<4x32x16xbf16> {moe.weight = "w"},
                            %experts: memref<?xi32>) -> memref<?x32xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c32 = arith.constant 32 : index
  %zero = arith.constant 0.0 : f32
  %nb = memref.dim %experts, %c0 : memref<?xi32>
  %rows = arith.muli %nb, %c16 : index
  %p = memref.alloc(%rows) : memref<?x32xf32>
  scf.parallel (%b) = (%c0) to (%nb) step (%c1) {
    %r = arith.muli %b, %c16 : index
    %xs = memref.subview %x[%r, 0] [16, 16] [1, 1] : memref<?x16xbf16> to memref<16x16xbf16, strided<[16, 1], offset: ?>>
    %es = memref.subview %experts[%b] [1] [1] : memref<?xi32> to memref<1xi32, strided<[1], offset: ?>>
    %ps = memref.subview %p[%r, 0] [16, 32] [1, 1] : memref<?x32xf32> to memref<16x32xf32, strided<[32, 1], offset: ?>>
    moe.grouped_matmul block_rows(16)
        ins(%xs, %w1, %es : memref<16x16xbf16, strided<[16, 1], offset: ?>>, memref<1x32x16xbf16>, memref<1xi32, strided<[1], offset: ?>>)
        outs(%ps : memref<16x32xf32, strided<[32, 1], offset: ?>>)
    scf.reduce
  }
  %logits = memref.alloc(%rows) : memref<?x32xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%rows, %c32) step (%c1, %c1) {
    %v = memref.load %p[%i, %j] : memref<?x32xf32>
    %s = arith.addf %v, %v : f32
    memref.store %s, %logits[%i, %j] : memref<?x32xf32>
    scf.reduce
  }
  scf.for %i = %c0 to %rows step %c1 {
    %v = memref.load %logits[%i, %c0] : memref<?x32xf32>
    memref.store %v, %logits[%i, %c1] : memref<?x32xf32>
  }
  %y = memref.alloc(%rows) : memref<?x32xf32>
  scf.parallel (%b) = (%c0) to (%nb) step (%c1) {
    %r = arith.muli %b, %c16 : index
    %xs = memref.subview %x[%r, 0] [16, 16] [1, 1] : memref<?x16xbf16> to memref<16x16xbf16, strided<[16, 1], offset: ?>>
    %es = memref.subview %experts[%b] [1] [1] : memref<?xi32> to memref<1xi32, strided<[1], offset: ?>>
    %ys = memref.subview %y[%r, 0] [16, 32] [1, 1] : memref<?x32xf32> to memref<16x32xf32, strided<[32, 1], offset: ?>>
    moe.grouped_matmul block_rows(16)
        ins(%xs, %w4, %es : memref<16x16xbf16, strided<[16, 1], offset: ?>>, memref<4x32x16xbf16>, memref<1xi32, strided<[1], offset: ?>>)
        outs(%ys : memref<16x32xf32, strided<[32, 1], offset: ?>>)
    scf.reduce
  }
  scf.parallel (%i, %j) = (%c0, %c0) to (%rows, %c32) step (%c1, %c1) {
    %v = memref.load %logits[%i, %j] : memref<?x32xf32>
    memref.store %v, %y[%i, %j] : memref<?x32xf32>
    scf.reduce
  }
  return %y : memref<?x32xf32>
}

// -----

// A buffer allocated in a branch, of a size the host computes in that
// branch from values known before it (the router's bf16 terms under the
// scf.if on T), is allocated before the scf.if with that arithmetic, so
// the branch only launches and the chain goes on without a host wait (a
// device-io call allows none). A size from a division by a value that
// may be 0 cannot run whichever branch is taken: that buffer stays, and
// so does the host's control.
// CHECK-LABEL: func @sized_in_branch
// CHECK: %[[ROWS:.*]] = arith.muli %{{.*}}, %c3
// CHECK: %[[TERMS:.*]], %{{.*}} = gpu.alloc async [%{{.*}}] (%[[ROWS]]) : memref<?xf32>
// CHECK-NOT: gpu.wait [
// CHECK: scf.if %{{.*}} {
// CHECK-NOT: gpu.wait
// CHECK:   gpu.launch async
// CHECK:   gpu.launch async
// CHECK: }
// CHECK: gpu.dealloc async [%{{.*}}] %[[TERMS]]
// CHECK-LABEL: func @divided_in_branch
// CHECK: gpu.wait [
// CHECK: scf.if %{{.*}} {
// CHECK:   arith.divui
// CHECK:   gpu.alloc async
func.func @sized_in_branch(%x: memref<8xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %wide = arith.cmpi uge, %n, %c8 : index
  scf.if %wide {
    %rows = arith.muli %n, %c3 : index
    %a = memref.alloc(%rows) : memref<?xf32>
    scf.parallel (%i) = (%c0) to (%rows) step (%c1) {
      memref.store %zero, %a[%i] : memref<?xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %v = memref.load %a[%i] : memref<?xf32>
      memref.store %v, %x[%i] : memref<8xf32>
      scf.reduce
    }
  }
  return
}

func.func @divided_in_branch(%x: memref<8xf32>, %n: index, %m: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %wide = arith.cmpi uge, %n, %c8 : index
  scf.if %wide {
    %rows = arith.divui %n, %m : index
    %a = memref.alloc(%rows) : memref<?xf32>
    scf.parallel (%i) = (%c0) to (%rows) step (%c1) {
      memref.store %zero, %a[%i] : memref<?xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %v = memref.load %a[%i] : memref<?xf32>
      memref.store %v, %x[%i] : memref<8xf32>
      scf.reduce
    }
  }
  return
}
