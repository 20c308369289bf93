//===- Passes.td - GPU code generation passes ---------------*- tablegen -*-===//

#ifndef MOE_CODEGEN_GPU_PASSES_TD
#define MOE_CODEGEN_GPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoEFuseSiblingLoopsPass : Pass<"moe-fuse-sibling-loops", "func::FuncOp"> {
  let summary = "Run independent sibling parallel loops as one parallel "
                "loop";
  let description = [{
    Where parallel loops (`scf.parallel` without reductions, outside other
    parallel loops) follow one another, separated only by ops free of
    memory effects and by allocations, and touch no buffer another of them
    writes, they become one one-dimensional `scf.parallel` over the
    largest trip count whose body runs iteration `i` of each loop that has
    one (`scf.if i < its trip count`, the last dimension fastest). The ops
    between them move before it. On a GPU (`moe-map-to-gpu`) the loops are
    then one kernel launch instead of several: e.g. the element-wise
    routing plan of a shared expert (row sources, block experts and sizes,
    token rows), or a scratch buffer's fill next to the router.

    Buffers are told apart by the allocation they view; the function's
    arguments count as one buffer (a caller may pass the same memory
    twice), reads never conflict, and freeing a buffer writes it. Loops
    whose buffers cannot be told apart (an effect naming no buffer, a buffer
    that is neither an allocation, a global nor a function argument, such
    as one control flow yields, a write to a global) and loops holding
    `moe.grouped_matmul` tiles are left alone.

    Example:

    ```mlir
    scf.parallel (%i) = (%c0) to (%n) step (%c1) {
      memref.store %zero, %a[%i] : memref<?xi32>
      scf.reduce
    }
    %b = memref.alloc(%m) : memref<?xi32>
    scf.parallel (%j) = (%c0) to (%m) step (%c1) {
      memref.store %one, %b[%j] : memref<?xi32>
      scf.reduce
    }
    ```

    becomes one loop to `max(n, m)` whose body stores into `%a` when
    `i < n` and into `%b` when `i < m`, `%b` allocated before it.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect"];
}

def MoEHoistLoopAccumulatorsPass
    : Pass<"moe-hoist-loop-accumulators", "func::FuncOp"> {
  let summary = "Carry a reduction loop's sum in a register";
  let description = [{
    Where an `scf.for` loop's body loads an element of a buffer and later
    stores into the same element (loop-invariant buffer and indices, both
    ops directly in the body, the load first), and nothing else in the loop
    may touch that buffer, the element is loaded once before the loop,
    carried through it as an `iter_args` value, and stored once after it
    (both guarded by an `scf.if` unless the bounds are constants that make
    the loop run: a loop without iterations touches nothing). The
    arithmetic and its order are unchanged. This is what converting a
    linalg reduction to loops leaves: the router's matmul, which on a GPU
    then loads and stores its output in global memory for every
    multiply-add.

    Buffers are told apart as `moe-fuse-sibling-loops` tells them: by the
    allocation or global they view, the function's arguments counting as
    one buffer. An op in the loop whose effects name no buffer, or name one
    that cannot be told apart, leaves the loop alone.

    Example:

    ```mlir
    scf.for %k = %c0 to %n step %c1 {
      %a = memref.load %x[%i, %k] : memref<?x?xf32>
      %c = memref.load %acc[%i] : memref<?xf32>
      %s = arith.addf %c, %a : f32
      memref.store %s, %acc[%i] : memref<?xf32>
    }
    ```

    becomes, with `%acc` an allocation:

    ```mlir
    %init = memref.load %acc[%i] : memref<?xf32>
    %sum = scf.for %k = %c0 to %n step %c1 iter_args(%c = %init) -> (f32) {
      %a = memref.load %x[%i, %k] : memref<?x?xf32>
      %s = arith.addf %c, %a : f32
      scf.yield %s : f32
    }
    memref.store %sum, %acc[%i] : memref<?xf32>
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::ub::UBDialect"];
}

def MoEJamParallelReductionsPass
    : Pass<"moe-jam-parallel-reductions", "func::FuncOp"> {
  let summary = "Unroll and jam parallel loops of reductions into register "
                "tiles";
  let description = [{
    A parallel loop whose iterations each run one reduction loop (an
    `scf.for` carrying its sums, as `moe-hoist-loop-accumulators` leaves
    the router's matmul: a logit per token and expert, summed over the
    hidden depths) loads two operands per multiply-add. This pass makes
    each iteration of a new parallel loop run `factor` x `factor`
    iterations of the old one (over its first two dimensions) in a single
    reduction loop that carries all their sums, so that an operand that
    does not depend on one of the two dimensions is loaded once for
    `factor` sums (the copies are merged by CSE). Every sum keeps its order
    of operations: the results are the same, bit for bit.

    Iterations past the end of a dimension (its trip count not a multiple
    of `factor`) compute the last iteration's values, so that their loads
    stay in bounds, and their writes are skipped (`scf.if`). The loop
    stays one loop, so one kernel that `moe-fuse-sibling-loops` may merge
    with its neighbours: where the first dimension runs `min-trips`
    iterations or more, its first two upper bounds become the tiles'
    counts (an `arith.select` on the trip count) and iteration (i, j) runs
    tile (i, j), so that no iteration is without work (and
    `moe-split-parallel-reductions` counts tiles); where it runs fewer (a
    few tokens), each iteration runs its own body, as before (an `scf.if`
    on the trip count, the same in every iteration, chooses): there the
    `factor` x `factor` times more threads are worth more than the shared
    loads.

    The loop qualifies when: it has two or more dimensions of step 1 and
    no reductions, and is not inside another parallel loop; its body is
    pure ops, `memref.load`s and `memref.store`s without regions around
    exactly one `scf.for` with iteration arguments and signed bounds
    defined outside the loop; that `scf.for`'s body has no regions and
    only pure ops and loads, at least one of them independent of each of
    the two dimensions; and no load reads a buffer the body stores into,
    except the element an earlier store of the body wrote (the router's
    zeroed output: the stored value is used instead of the load). The
    iterations past the end then read what the last iteration read.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect"];
  let options = [
    Option<"factor", "factor", "int64_t", /*default=*/"4",
           "Iterations of each of the first two dimensions per new "
           "iteration (below 2: nothing changes)">,
    Option<"minTrips", "min-trips", "int64_t", /*default=*/"64",
           "Trip count of the first dimension from which the jammed loop "
           "runs (0: always, without the choice)">,
  ];
}

def MoESplitParallelReductionsPass
    : Pass<"moe-split-parallel-reductions", "func::FuncOp"> {
  let summary = "Split the reduction loops of few parallel iterations over "
                "lanes";
  let description = [{
    A parallel loop of few iterations whose iterations each run a long
    reduction loop (the router's matmul at decode: one logit per token and
    expert, each a sum over thousands of hidden depths) runs as many
    threads as it has iterations, each summing its depths one after
    another. This pass splits each such reduction loop over `lanes`
    parallel lanes: lane l runs the iterations l, l + lanes, ... of it
    from the reduction's neutral element (-0.0 for `arith.addf`), and an
    `scf.parallel` over the lanes combines their partial results with an
    `scf.reduce`; the loop's initial value is combined with that total.
    `moe-map-to-gpu` runs each iteration of a parallel loop holding such a
    loop on a block of threads, one lane each, combined by a
    `gpu.all_reduce`. The sums are reassociated: they differ from the
    unsplit loop's in rounding (a fixed order for given `lanes`, so the
    same inputs give the same results).

    A reduction loop qualifies when it is an `scf.for` inside the parallel
    loop (not inside another `scf.parallel`) over `index` with a signed
    comparison and a constant trip count, iteration arguments, and a body
    of pure ops and loads without regions, where each iteration argument
    has one use, by a commutative and associative arith op with a neutral
    element (`addf`, `mulf`, `addi`, `muli`, the min and max ops, `andi`,
    `ori`, `xori`; not `addi` or `muli` with overflow flags, nor `minnumf`
    or `maxnumf` under `nnan`, which regrouping could make poison) whose
    result is what the body yields for it and nothing else uses. It is split over
    the largest power of two of lanes, at most `lanes`, that leaves each
    lane `min-trips-per-lane` iterations or more (loops that leave fewer
    than 2 lanes stay as they are).

    With `max-iterations` N > 0, the parallel loop is only split when it
    has fewer than N iterations: an `scf.if` on its iteration count runs
    the split copy or the loop as it was (with many iterations, one thread
    per iteration fills the machine already and reads less). The
    parallel loop qualifies when it is not inside another parallel loop
    (`scf.parallel` or `scf.forall`), has no results, holds no
    `moe.grouped_matmul` and allocates no buffer of its own (a block of
    threads per iteration would need it shared).

    Example (`lanes=256`):

    ```mlir
    %sum = scf.for %k = %c0 to %c4096 step %c1 iter_args(%a = %init) -> (f32) {
      %x = memref.load %in[%t, %k] : memref<?x4096xf32>
      %s = arith.addf %a, %x : f32
      scf.yield %s : f32
    }
    ```

    becomes

    ```mlir
    %part = scf.parallel (%lane) = (%c0) to (%c256) step (%c1)
        init (%neg_zero) -> f32 {
      %first = arith.muli %lane, %c1 : index
      %step = arith.muli %c1, %c256 : index
      %p = scf.for %k = %first to %c4096 step %step
          iter_args(%a = %neg_zero) -> (f32) { ... }
      scf.reduce(%p : f32) {
      ^bb0(%l: f32, %r: f32):
        %c = arith.addf %l, %r : f32
        scf.reduce.return %c : f32
      }
    }
    %sum = arith.addf %init, %part : f32
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect"];
  let options = [
    Option<"lanes", "lanes", "int64_t", /*default=*/"256",
           "Most lanes a reduction loop is split over (a power of two; "
           "below 2: nothing changes)">,
    Option<"minTripsPerLane", "min-trips-per-lane", "int64_t",
           /*default=*/"8",
           "Fewest iterations of the reduction loop each lane runs">,
    Option<"maxIterations", "max-iterations", "int64_t", /*default=*/"0",
           "Split only parallel loops of fewer iterations, chosen at run "
           "time (0: always, without the choice)">,
  ];
}

def MoEExternDynamicSharedMemoryPass
    : Pass<"moe-extern-dynamic-shared-memory", "::mlir::gpu::GPUModuleOp"> {
  let summary = "Give the dynamic shared memory symbol external linkage";
  let description = [{
    Upstream's lowering of `gpu.dynamic_shared_memory` (in
    `convert-gpu-to-nvvm`) defines `@__dynamic_shmem__N` as an internal
    zero-sized array in address space 3. LLVM's NVPTX back end demotes such
    a global into its kernel as an ordinary one-byte `.shared` variable,
    which ptxas lays out among the static shared variables: static shared
    memory declared after it (mbarriers, workgroup attributions) lies at the
    addresses the kernel takes for its dynamic shared memory. With external
    linkage it stays a module-level `.extern .shared ... []` array, which
    ptxas places after all static shared memory, where the launch's dynamic
    shared memory is. Runs on `gpu.module`s after `convert-gpu-to-nvvm`;
    other globals are left alone.

    Example:

    ```mlir
    gpu.module @kernels {
      llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
    }
    ```

    becomes

    ```mlir
    gpu.module @kernels {
      llvm.mlir.global external @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
    }
    ```
  }];
}

def MoEPinEntryRegistersPass
    : Pass<"moe-pin-entry-registers", "::mlir::gpu::GPUModuleOp"> {
  let summary = "Give kernels that move registers between warpgroups a "
                "known register count at entry";
  let description = [{
    `setmaxnreg` (`nvvm.setmaxregister`) lets a warpgroup give registers
    back to its block's pool or take more from it: the specialized tiles'
    producer keeps few, their consumers take what it gave. ptxas keeps the
    instruction only when it knows the kernel's register count at entry;
    `.maxntid` alone does not fix it (ptxas then drops every `setmaxnreg`
    of the kernel with note C7508 and allocates the same count to every
    thread). With `.minnctapersm 1` as well the count at entry is the
    register file over the bound's threads (168 for 384 threads), from
    which the warpgroups' counts move. This pass gives every kernel
    (`llvm.func` with `nvvm.kernel`) holding an `nvvm.setmaxregister`
    `nvvm.minctasm = 1` unless it has one; such a kernel without
    `nvvm.maxntid` is an error (no count to start from). Runs on
    `gpu.module`s after `convert-gpu-to-nvvm`.

    Example:

    ```mlir
    llvm.func @tiles() attributes {nvvm.kernel, nvvm.maxntid = array<i32: 384, 1, 1>} {
      nvvm.setmaxregister decrease 40
      llvm.return
    }
    ```

    gets `nvvm.minctasm = 1 : i32`.
  }];
}

def MoEPassTensorMapsByValuePass
    : Pass<"moe-pass-tensor-maps-by-value", "::mlir::ModuleOp"> {
  let summary = "Pass TMA descriptors to kernels as grid-constant parameters";
  let description = [{
    Upstream's lowering of `nvgpu.tma.create.descriptor` calls
    `mgpuTensorMapEncodeTiledMemref`, which returns a device copy of the
    descriptor (128 bytes) that kernels then read from global memory. A
    device copy is an allocation and a host-to-device copy: made once per
    distinct descriptor and cached by the runtime, it suits a layer's
    weights, not a buffer of the call (whose descriptor changes with T and
    its address), and it cannot be made while a stream is captured into a
    CUDA graph. This pass hands such descriptors to the kernel by value
    instead, as CUTLASS's `__grid_constant__ const CUtensorMap` parameters
    are: on the host, the call becomes
    `mgpuTensorMapEncodeTiledMemrefInto`, which encodes the descriptor into
    a 64-byte aligned stack slot of the host function, whose 128 bytes
    (`!llvm.array<16 x i64>`) the launch passes; in the kernel, the
    parameter becomes a pointer with `llvm.byval`, `llvm.align = 64` and
    `nvvm.grid_constant`, so that the kernel reads the descriptor where
    the launch put it (NVPTX takes its generic address with `cvta.param`)
    and nothing is copied.

    Runs on the whole module after `gpu-to-llvm`, when host and kernels are
    in the LLVM dialect and a launch's operands are the kernel's parameters
    one for one. A kernel parameter changes only when every launch of the
    kernel passes it the result of `mgpuTensorMapEncodeTiledMemref` and the
    kernel only reads through it (loads and TMA copies);
    others are left alone. The declaration of
    `mgpuTensorMapEncodeTiledMemref` goes once nothing calls it.

    Example:

    ```mlir
    %map = llvm.call @mgpuTensorMapEncodeTiledMemref(%rank, %desc, %type,
        %interleave, %swizzle, %promotion, %oob, %box) : (...) -> !llvm.ptr
    gpu.launch_func @kernels::@tiles blocks in (...) threads in (...)
        args(%map : !llvm.ptr)
    ```

    becomes

    ```mlir
    %slot = llvm.alloca %one x !llvm.array<16 x i64> {alignment = 64 : i64}
        : (i64) -> !llvm.ptr    // in the entry block
    llvm.call @mgpuTensorMapEncodeTiledMemrefInto(%rank, %desc, %type,
        %interleave, %swizzle, %promotion, %oob, %box, %slot) : (...) -> ()
    %bytes = llvm.load %slot : !llvm.ptr -> !llvm.array<16 x i64>
    gpu.launch_func @kernels::@tiles blocks in (...) threads in (...)
        args(%bytes : !llvm.array<16 x i64>)
    ```

    and the kernel's parameter
    `!llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<16 x i64>,
    nvvm.grid_constant}`.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

def MoEProgrammaticLaunchesPass
    : Pass<"moe-programmatic-launches", "::mlir::ModuleOp"> {
  let summary = "Let each kernel start while the one before it ends "
                "(Hopper's programmatic dependent launch)";
  let description = [{
    On sm_90, a kernel launched with programmatic stream serialization may
    start before the kernel before it on the stream has finished: once
    every block of that kernel has run `griddepcontrol.launch_dependents`
    (or ended), its blocks are scheduled on the multiprocessors the tail
    of the other leaves idle, and `griddepcontrol.wait` holds each of them
    until that kernel has completed and its memory is visible. A layer's
    kernels at decode are short (a few microseconds each at Qwen3's
    T = 1), and the gap between two of them, a launch's latency and the
    ramp of its first blocks, is a share of the call that this removes;
    the same holds inside a CUDA graph, where such launches become
    programmatic edges.

    This pass, after `gpu-kernel-outlining`:
    - begins every kernel (`gpu.func` with the `kernel` attribute) of every
      `gpu.module` with `nvvm.griddepcontrol wait` and then
      `nvvm.griddepcontrol launch_dependents`: nothing a kernel does
      before the wait touches memory, so it never reads what the kernel
      before it has not finished writing, whatever that kernel is (another
      library's, on the caller's stream, too), and no block of it writes
      what the kernel before may still read;
    - begins every function that launches kernels (`gpu.launch_func`) with
      a call of the runtime's `mgpuAllowProgrammaticLaunches`, after which
      the runtime launches this call's kernels with the attribute
      (`cuLaunchKernelEx`; plain `cuLaunchKernel` where the driver lacks
      it, which only loses the overlap).

    The instructions need sm_90 (PTX 7.8): the CUDA pipeline runs this
    pass for such chips (`programmatic-launches`, on by default).

    Example:

    ```mlir
    func.func @forward(...) {
      gpu.launch_func @kernels::@tiles blocks in (...) threads in (...)
      ...
    }
    gpu.module @kernels {
      gpu.func @tiles(...) kernel { ... }
    }
    ```

    becomes

    ```mlir
    func.func @forward(...) {
      call @mgpuAllowProgrammaticLaunches() : () -> ()
      gpu.launch_func @kernels::@tiles blocks in (...) threads in (...)
      ...
    }
    func.func private @mgpuAllowProgrammaticLaunches()
    gpu.module @kernels {
      gpu.func @tiles(...) kernel {
        nvvm.griddepcontrol wait
        nvvm.griddepcontrol launch_dependents
        ...
      }
    }
    ```
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

def MoEMapToGPUPass : Pass<"moe-map-to-gpu", "func::FuncOp"> {
  let summary = "Run a bufferized function's loops as GPU kernels, its "
                "buffers in device memory";
  let description = [{
    Turns a function on buffers (after bufferization, its linalg ops
    lowered to loops and its `scf.forall` tiles to `scf.parallel`) into
    host code that launches kernels (`gpu.launch`) on one chain of
    asynchronous GPU operations (one stream per call). The function keeps
    its signature:

    * **Arguments.** A memref argument with a `moe.weight` attribute is
      device memory (the runtime uploads weights once per loaded module;
      the pass removes the attribute, recorded in the manifest already);
      any other memref argument is host memory, copied to the device
      (`gpu.memcpy`) when the call starts.
    * **Results.** Each returned memref is copied back to a host buffer
      (`memref.alloc`) when the call ends, the device buffer freed.
    * **Buffers.** `memref.alloc` and `memref.dealloc` become `gpu.alloc`
      and `gpu.dealloc`; `memref.copy` between contiguous buffers becomes
      `gpu.memcpy`; each constant `memref.global` the function reads gets a
      device copy at the start. A buffer of a loop body whose size is known
      outside the loop and that the body does not yield becomes one device
      buffer around the loop; inside a kernel, a buffer of a static size is
      the thread's stack memory, one of a dynamic size the device heap
      (freed at the end of its block).
    * **Parallel loops.** `scf.forall` loops on buffers are first
      `scf.parallel` loops (upstream `scf::forallToParallelLoop`), keeping
      their mapping. A top-level parallel loop becomes one kernel. When its
      body holds a `moe.grouped_matmul` (a tile of the tiled program), each
      iteration is one block of `warp-size` threads that computes the tile
      together, the loop's dimensions on the grid's x, y, z as its
      `#gpu.block` mapping says (as `moe-tile-grouped-matmul gpu-mapping`
      sets it), else linearized on x: the matmul is left for
      `moe-lower-grouped-matmul-to-mma`, nested parallel loops (fills,
      element-wise ops) are spread over the lanes, other writes run on lane
      0, each write preceded (for the other threads' reads) and followed by
      `gpu.barrier`, except where only ops without memory effects separate
      it from a barrier or from the start of the kernel or of a persistent
      grid's tile, and after a tile's last write (its tile ends there: the
      tiles are independent). When its body holds a parallel loop of reductions
      whose `scf.reduce` regions are each one commutative, associative
      arith op with a neutral element (`addf`, `mulf`, the min and max
      ops, `addi`, `muli`, `andi`, `ori`, `xori`) of its two arguments,
      and whose body only reads (the lanes of
      `moe-split-parallel-reductions`), and which allocates no buffer of
      its own, each iteration is one block
      (walking the iterations in steps of the grid past 2^31 - 1 blocks,
      or past `team-grid-limit`)
      of as many threads as that loop's constant iteration count (the
      largest, at most 1024): each thread combines its share of those
      iterations from the neutral element, a `gpu.all_reduce` (followed
      by a `gpu.barrier`, which frees its workgroup memory) combines the
      threads', and the loop's initial values are combined with that;
      the iteration's other ops run as on a tile's block (reads on every
      thread, writes on thread 0 between barriers). Otherwise the
      iterations are spread over blocks of `block-size` threads, one
      iteration each.
    * **Routing.** With `routing-block-size` N, everything before the
      first matmul tile (top-k, counts, the prefix sum of the block-aligned
      plan and the rows' positions) runs as one kernel of one block of N
      threads: parallel loops spread over the threads, other writes on
      thread 0 (results shared through workgroup memory), a `gpu.barrier`
      before and after each write. A parallel loop there that reads a
      weight matrix (an argument with `moe.weight` of rank 2 or more: the
      router's matmul) is launched over all multiprocessors instead, the
      routing kernel's ops before and after it on either side; one that
      reads only vector weights (a selection bias per expert) runs in the
      routing kernel, and so does an `scf.if` that chooses between such
      loops (moe-fuse-routing's loop on lanes and its loop of a thread per
      token). A parallel loop there whose iteration holds reductions over
      a range (nested `scf.parallel` with `scf.reduce`, the lanes' work of
      moe-fuse-routing `lane-max-tokens`) runs an iteration per warp: the
      lanes split its nested parallel loops (their reductions combined by
      a butterfly of xor shuffles, every lane getting the same bits), its
      stores run on lane 0, its reads and scalar code on every lane, each
      nested loop and store between `nvvm.bar.warp.sync`s, and its buffers
      (of static sizes, only loaded and stored) are each warp's copy in
      workgroup memory: as many of the block's warps take iterations as
      their copies fit in 32 KiB (the others wait at the block's barrier). With `multiprocessors` M, when the
      routing kernel's first op that touches memory is such a loop (or
      choice of loops) with no reductions of its own, bounds the host
      knows, and ops follow it, that first loop runs over
      `min(ceil(iterations / N), M)` blocks (at least 1; a thread's
      iterations a grid's stride apart), and the ops after it on the last
      block to finish it: each block's threads fence their writes
      (`nvvm.memory.barrier <gpu>`), thread 0 counts the block in a zeroed
      word (`memref.atomic_rmw addi`; `gpu.memset` before the launch), and
      the block that counted last fences and runs the rest, which reads
      what every block wrote: the tokens routed over several
      multiprocessors, the plan still in the same kernel.
    * **Names.** Each kernel, and the GPU module `gpu-kernel-outlining`
      makes of it, is named `<function>_<role>_<n>`: role `routing`,
      `tiles`, `team` (a block per iteration), `loop` (one iteration per
      thread) or `serial`, n counting
      the function's launches.
    * **Sequential code.** Runs of other top-level ops that touch memory
      (the loops that build the routing plan) run as one kernel of a single
      thread (of a warp when they hold a grouped matmul). A scalar that
      such a kernel computes or loads and the host needs (the dispatched
      row count that sizes later buffers) is copied back to the host, which
      waits for the stream there.

    Ops without memory effects stay on the host, where kernels capture
    their values (`gpu-kernel-outlining` passes them as arguments).

    **Tile order.** Blocks start in the order of their linear index, so
    the tiles resident at one time are consecutive in the order the grid
    walks them, and that order decides what they share in the L2 cache.
    Row blocks fastest over all of them (the mapped grid's x, then y) makes
    each wave read every row block's input rows once per column tile,
    which the L2 cannot hold for a long K. With `tile-group-rows` G, or
    with `multiprocessors` and the rule below when it is 0, a tile grid
    mapped on two or more dimensions walks its (row block, column) tiles in
    groups of G row blocks: row blocks fastest within a group, then the
    columns, then the next group (the last one holds the remaining row
    blocks), one block per tile on x. The rule takes the G that minimizes
    the bytes a wave of `multiprocessors` tiles reads when its G row
    blocks share their expert, `G x BM x K x a + (wave / G) x BN x W x K x
    w` (BM block rows, BN the tile's columns, W its weights, a and w the
    input's and the weights' bytes per element):
    `G = sqrt(wave x BN x W x w / (BM x a))`, rounded, at least 1 (11 for a
    128-row f32 block of 128-column gate/up pairs or a 256-column down
    tile over 132 multiprocessors). Without a static tile shape, without
    `multiprocessors` and a G, or for a grid mapped on one dimension, the
    tiles run row blocks fastest. A G of at least the row blocks is that
    plain order too.

    With `tile-grid-limit`, a tile grid of more tiles than that launches
    that many blocks (on x), each walking the tiles' linear indices in the
    tile order from its block id in steps of the grid size: a persistent
    grid whose blocks stay resident across tiles.

    With `tile-cluster` 2, a tile grid over (row block, column) tiles is
    launched in thread block clusters of two CTAs (on x): the CTAs of a
    cluster run row blocks 2i and 2i + 1 of one column tile (rank order),
    the clusters walking those pairs in the tile order (groups of G / 2
    pairs, rounded up); the second CTA of a last odd row block runs no
    tile. Such pairs read the same weight boxes when their row blocks
    belong to one expert, which moe-lower-grouped-matmul-to-wgmma then
    loads once for both (TMA multicast). With `tile-grid-limit` too: at
    most tile-grid-limit / 2 clusters (at least one), each walking the
    pairs from its cluster index (block id / 2) in steps of the clusters,
    so that both CTAs of a cluster walk alike.

    With `device-io`, the function's non-weight arguments and its results
    are device memory: no copies in or out, and the results' buffers are
    left to the caller, who frees them. The call must then need no host
    wait but its last (a value the host reads back, host control flow over
    kernels are errors), so that a runtime can enqueue it on its caller's
    stream and return without waiting; the function is marked
    `moe.device_io`. A host constant buffer (`memref.global`) is an error
    too (every call would copy it from host memory); buffers the function
    does not return are left to the runtime, which frees what the call
    allocated after copying the results out.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::scf::SCFDialect"];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "Threads per block of kernels that run one loop iteration per "
           "thread">,
    Option<"warpSize", "warp-size", "int64_t", /*default=*/"32",
           "Threads per block of kernels that compute matmul tiles (one "
           "warp)">,
    Option<"routingBlockSize", "routing-block-size", "int64_t",
           /*default=*/"0",
           "Threads of the one block that runs everything before the first "
           "matmul tile (routing and its plan) as one kernel; 0 launches "
           "each parallel loop on its own">,
    Option<"tileGridLimit", "tile-grid-limit", "int64_t", /*default=*/"0",
           "At most this many blocks per tile grid, each looping over the "
           "tiles from its block id in steps of the grid (a persistent "
           "grid; row blocks fastest); 0 launches one block per tile">,
    Option<"teamGridLimit", "team-grid-limit", "int64_t", /*default=*/"0",
           "At most this many blocks per team kernel (a block per "
           "iteration), each walking the iterations from its block id in "
           "steps of the grid; 0: one block per iteration (up to 2^31 - 1)">,
    Option<"tileGroupRows", "tile-group-rows", "int64_t", /*default=*/"0",
           "Row blocks per group of the tile order (row blocks fastest "
           "within a group, then columns); 0: the rule from the tile's shape "
           "and `multiprocessors`">,
    Option<"multiprocessors", "multiprocessors", "int64_t", /*default=*/"0",
           "Tiles resident at once, for the tile order's rule; 0 with "
           "tile-group-rows 0: row blocks fastest over all of them">,
    Option<"deviceIO", "device-io", "bool", /*default=*/"false",
           "Arguments (but weights) and results are device memory, and the "
           "call waits for nothing before its end">,
    Option<"tileCluster", "tile-cluster", "int64_t", /*default=*/"1",
           "CTAs per thread block cluster of a (row block, column) tile "
           "grid: 2 pairs row blocks 2i and 2i + 1 of a column tile in a "
           "cluster; 1: no clusters">,
  ];
}

def MoELowerGroupedMatmulToMMAPass
    : Pass<"moe-lower-grouped-matmul-to-mma"> {
  let summary = "Lower moe.grouped_matmul in GPU kernels to warp-level "
                "tensor-core code";
  let description = [{
    Replaces every `moe.grouped_matmul` on memrefs inside a `gpu.launch`
    whose blocks are whole warps (32 threads as `moe-map-to-gpu` launches
    matmul tiles under mma=sync; 128 or 384 under the wgmma forms, for the
    ops `moe-lower-grouped-matmul-to-wgmma` leaves) by code that the
    warps' lanes run together.

    Weights of bf16 or f16, and block-scaled FP8 (`f8E4M3FN`) or e2m1
    weights, in row blocks of a multiple of 16 rows use the tensor cores:
    for each slice of 16 rows, each group of 8 columns and each step of 16
    depths, one
    `nvvm.mma.sync` of shape m16n8k16 with f32 accumulators (a second one
    for the paired weight). Each lane gathers its elements of the A
    fragment from its rows' sources (rounded to the weights' 16-bit type,
    saturated to the f16 range for f16; rows past the block's filled rows,
    sources outside the input and depths past K read nothing and are zeros)
    and of the B fragment from the weights in their checkpoint layout
    `[E, N, K]`. Block-scaled weights whose depth blocks are whole steps of
    16 are multiplied as their exact values (e4m3 and e2m1 numbers are
    bf16 numbers), each depth block's sums added times the block's scale of
    each accumulator's column; with other depth blocks each weight is
    scaled in f32 and rounded to bf16. Each lane writes its four
    accumulators once at the end, two pairs of adjacent columns (one
    vector access for a pair where aligned, as under wgmma): through the
    epilogue, added to `init`, or scattered, times their scales, to their
    target rows (the blocks of a scattering op are then computed one after
    another, with a `gpu.barrier` between them, unless its adds are
    `atomic` or its targets `unique`).

    A warp gathers the fragments of 4 steps (2 for depth blocks of 32)
    before their mmas, so that it keeps 4 steps' loads in flight instead
    of waiting for each step's before the next (the mmas, and the sums,
    in the same order); the steps left over run one at a time.

    A block of several warps splits each row block's work: the warps take
    the slices that hold filled rows (ceil(filled / 16)) times the groups
    of 8 columns in turns, slices fastest (warps at one column group read
    the same weights); with one slice (BM = 16, or a decode block of at
    most 16 filled rows) they split the columns.

    Other weights (f32) and other block sizes use the CUDA cores: each lane
    computes whole columns of a block (the scalar implementation of the
    op's `TilingInterface`) in f32.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
}

def MoELowerGroupedMatmulToWGMMAPass
    : Pass<"moe-lower-grouped-matmul-to-wgmma"> {
  let summary = "Lower bf16 moe.grouped_matmul tiles in GPU kernels to "
                "Hopper warpgroup MMA fed by TMA";
  let description = [{
    Replaces each `moe.grouped_matmul` on memrefs inside a `gpu.launch`
    whose blocks are one, two or three warpgroups (128, 256 or 384 x 1 x 1
    threads) by code the warpgroups run together on sm_90a, when its blocks
    are of 64 rows (wgmma's M) for one or two warpgroups, or of 128 rows
    for three, its weights bf16 without block scales, each weight a
    unit-stride view of all of K of an `[E, N, K]` memref defined above the
    launch with 16-byte aligned start and row strides, its input a 2-d
    memref of floats with contiguous rows, and its tile at most 256
    columns (BN, the columns' constant upper bound rounded up to 8) whose
    accumulators fit in registers (weights x BN at most 256). Other ops
    are left as they are, with a remark saying why
    (`moe-lower-grouped-matmul-to-mma` then lowers them to the CUDA
    cores).

    Per row block and step of 64 depths:
    - the weights' `[1, BN, 64]` box comes by TMA
      (`nvgpu.tma.async.load` of a descriptor of the whole weight, made by
      `nvgpu.tma.create.descriptor` before the launch: 128-byte swizzle,
      zeros outside) on the stage's mbarrier, issued by thread 0;
    - the threads gather the `[rows, 64]` A slice from the rows' sources
      (f32 rounded to bf16, zeros for a filled row without a source and
      past K) into the same swizzled layout, then fence it for the async
      proxy; rows past the block's filled ones are not stored (at decode
      all but one of a block's 64), since their products reach only
      accumulator rows the epilogue does not write. bf16 rows starting at
      16-byte boundaries are copied by `cp.async` instead
      (`async-gather`, the default): 16 bytes a chunk from global to
      shared memory without registers, zero-filled past K and for a
      filled row without a source, each thread arriving on the stage's
      mbarrier once its copies land (`cp.async.mbarrier.arrive.noinc`:
      the mbarrier expects thread 0's arrival with the TMA bytes and the
      128 gathering threads'); the threads that multiply fence them for
      the async proxy after their wait, with no block barrier before the
      wgmmas; or,
      when the op has no row sources (the block's rows are the input's
      own, e.g. the down projection's hidden rows) and its input is bf16,
      a unit-stride view of all of K of a 2-d memref defined above the
      launch with 16-byte aligned start and row stride, A comes by TMA
      with the weights (a descriptor of the whole input, on the same
      mbarrier, the expected bytes counted at run time) in boxes of 8
      rows x 64 depths (one swizzle atom), as many as cover the block's
      filled rows, and no thread touches A. Rows past the last box hold
      whatever the buffer held: their products reach only their own
      accumulator rows, which the epilogue does not write;
    - `stages` buffers (the ring) keep stages - G steps' loads in flight
      besides G wgmma groups (G = 1 for wide tiles, up to 4 for narrow
      ones: "Groups in flight" below); after the mbarrier wait (and, when
      the threads store A, a block barrier at the first step, or at every
      step of a ring whose loads run only 1 step ahead: a refill's stores
      are otherwise ordered by the barrier after the next step's wgmmas),
      four `nvvm.wgmma.mma_async`
      m64nBNk16 per weight (both operands K-major in shared memory, f32
      accumulators) form one wgmma group; waiting for the group G steps
      back frees its buffers for the step stages - G ahead. The first step's
      group starts from no sums (scale-d 0) rather than from zeroed
      registers, whose zeroing could land after its `wgmma.fence` and
      make ptxas serialize the wgmmas.

    Each thread then writes its accumulators once (the m64nNk16 fragment
    layout): through the epilogue (the paired gate/up sums), added to
    `init`, or scattered times their scales, by pairs of adjacent columns
    (one target lookup; one vector store, or load and store, of both
    where their address is aligned to the pair, else one element each;
    atomic adds as below). At the end thread 0
    invalidates the mbarriers (the code may run again and initialize
    them anew).

    With two or three warpgroups the work is specialized: threads 0-127
    produce (the A gather, each step's chunks loaded one step ahead, and
    thread 0's TMA loads), the next 128 threads per 64 rows consume (the
    wgmma groups of their rows, sharing the stage's weight boxes, and the
    epilogue), with no block barrier in the loop. Each stage has two
    mbarriers: `full` of 128 arrivals (the producer's threads, thread 0's
    arrival expecting the TMA bytes) and `released` of 128 per consumer
    warpgroup (the consumers' threads, once the wgmma group that read the
    stage is done). The producer waits for a stage's previous release
    before refilling it (in the ring's first round, the phase before the
    first counts as done); the consumers wait for it to be full.

    With three warpgroups on 64-row blocks the two consumers take the row
    blocks in turns (ping-pong): the one whose turn a block is (the count
    of blocks the consumers took before it, modulo 2) multiplies all of
    it and writes it, the other skips it, so that one's epilogue runs
    while the other's wgmmas do. Two more mbarriers of 128 arrivals each
    hand the turn over: a consumer waits for its turn, and once it has
    waited for its block's last stage its threads arrive on the other's
    (its k-th turn waits for phase k of consumer 1's mbarrier, k - 1 of
    consumer 0's, the phase before the first counting as complete). The
    blocks' waits on the stages then follow the ring's order, and no
    consumer waits on a stage a round ahead of the phase it last saw
    complete. `released` counts one consumer's 128 arrivals. No cluster
    pairing (a block's stages are one consumer's).

    When such an op sits directly in an `scf.for` directly in the launch's
    body (a persistent grid's walk over tiles) whose other ops have no
    memory effects, and its row blocks are not a reduction (it does not
    scatter, or scatters `atomic` or `unique` adds), the ring spans the
    walk: its
    mbarriers are set up before the loop and invalidated after it, the
    roles split once there (threads 0-127 walk a copy of the loop as the
    producer, the others a copy as consumers), each copy carrying the
    ring's slot count from iteration to iteration, with no block barrier
    between iterations: the producer fills the next tile's stages while
    the consumers finish this one (with consumers in turns, the count of
    blocks they took is carried too). With two consumers (384 threads) the
    producer then gives registers back (`nvvm.setmaxregister decrease`: 40
    a thread when TMA or `cp.async` move A, 112 when it gathers A through
    its registers) and the consumers take them (`increase` to 232 or 192),
    from the 168 a thread of 384 has (`moe-pin-entry-registers` makes
    ptxas start the kernel there); each role returns to 168 before the
    roles join.

    In a launch of 2-CTA clusters (`gpu.launch clusters` of 2 x 1 x 1, as
    moe-map-to-gpu's `tile-cluster=2` makes), a specialized tile of one row
    block that each CTA runs at most once (only `scf.if`s without results
    around it) or once per iteration of such a walk whose bounds are the
    same in both CTAs (from the block id / 2, sizes, values above the
    launch), with half boxes of whole 8-row swizzle atoms (BN a multiple of
    16), shares its weight boxes with the other CTA when both load the
    same: each CTA writes a key (whether its row block is owned, the steps,
    the ring's position, each weight's expert, column and depth offsets)
    to its shared memory, the CTAs meet (`barrier.cluster`; a CTA that
    skips the tile clears its key and meets them in the branch that skips
    it), and each reads the other's through `mapa`. When the keys match,
    each producer's thread 0 expects the whole stage and loads its half of
    every box into both CTAs (half-box descriptors, multicast mask 0b11),
    and one thread of each consumer warpgroup releases a stage in both
    CTAs (`released` then counts 2 arrivals per consumer warpgroup); else
    each CTA loads both halves and its consumers arrive twice on their own
    `released`. The ring is set up at the start of the kernel (or of the
    walk) and the CTAs meet again before its mbarriers are invalidated.

    Stages: as many as `max-shared-bytes` holds (each
    `rows * 128 + W * BN * 128` bytes for W weights, plus 1 KiB to align the
    ring), at least 2, at most the steps of K, and at most 4 or the stages
    that keep 32 KiB of weights in flight, whichever is more (narrow
    tiles at decode need more than 4 for it). The launch's dynamic shared
    memory is set to the largest tile's need.

    With `eight-row-stages` (the default), a one-warpgroup op of one row
    block (the tiled program's tiles) whose ring holds more stages of 8
    A rows than of 64 also gets that second layout: when the block has at
    most 8 filled rows (every block at decode, T <= 8), each stage holds
    one 1 KiB swizzle atom of A and the weights' boxes, and the wgmmas'
    A descriptor names a stride of 0 between 8-row groups, so that all 64
    rows of its M read those 8 (rows past the filled ones reach only
    accumulator rows the epilogue does not write). The stages of 8 rows
    are as many as the 64-row ring's shared memory holds, at most 64 and
    at most the steps of K (below); the layout is chosen at run time from
    the block's filled rows (the stage count, a stage's bytes, where its
    boxes start, the descriptor's stride). A one-warpgroup block computes
    its first slot's stage and phase once and its steps count them on (no
    division by a stage count in the loop). The stages of 8 rows are
    bounded so that every stage's boxes and the last stage's 64-row view
    of A lie inside the ring, and their mbarriers within the shared memory
    the ring leaves. At decode a narrow tile's weight bytes in flight grow
    accordingly (16 columns of one weight: 17 stages of 2 KiB in 170 KiB
    become 55).

    Groups in flight: a step's wgmmas are one group, and its stage is
    refilled (one warpgroup) or released to the producer (specialized)
    once the group is done. A group's latency barely depends on its N, so
    a narrow tile that waited for each step's group before the next would
    multiply few weight bytes per group latency. The tile keeps the
    groups of as many steps in flight as cover 64 columns of weights
    (64 / (W * BN): 4 at 16 columns of one weight, 2 at 32 or at 16 of
    the gate/up pair, 1 from 64), at most `max-groups-in-flight` and at
    most half the stages; the TMA loads run that many steps less ahead (the stage rule above does not add stages
    for them: a narrow gate/up tile's ring would pass half of a
    multiprocessor's shared memory). A specialized consumer releases the
    stages of its last groups after its loop.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::nvgpu::NVGPUDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
  let options = [
    Option<"maxSharedBytes", "max-shared-bytes", "int64_t",
           /*default=*/"232448",
           "Dynamic shared memory a block may use (sm_90: 227 KiB)">,
    Option<"asyncGather", "async-gather", "bool", /*default=*/"true",
           "Gather bf16 A rows at 16-byte boundaries by cp.async (else "
           "through the threads' registers and stores)">,
    Option<"eightRowStages", "eight-row-stages", "bool", /*default=*/"true",
           "One warpgroup: row blocks of at most 8 filled rows run a ring "
           "of 8-row A stages (more stages in the same shared memory)">,
    Option<"maxGroupsInFlight", "max-groups-in-flight", "int64_t",
           /*default=*/"4",
           "The most wgmma groups (64-depth steps) a tile "
           "keeps in flight; narrow tiles keep as many as cover 64 weight "
           "columns (1: wait for each step's group before the next)">,
    Option<"vectorReductions", "vector-reductions", "bool",
           /*default=*/"true",
           "Add an atomic scatter's pairs of adjacent sums by one "
           "red.add.v2.f32 (PTX 8.1) where aligned (else one atomic add "
           "each)">,
  ];
}

#endif // MOE_CODEGEN_GPU_PASSES_TD
