// REQUIRES: cuda-toolkit
// RUN: moe-opt %s --moe-lower-to-cuda | FileCheck %s --check-prefixes=CHECK,FATBIN
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home format=isa" -o %t.isa.mlir
// RUN: %python %S/Inputs/gpu_objects.py %t.isa.mlir %t.ptx --ptxas %ptxas --arch sm_90 | FileCheck %s --check-prefix=PTXAS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home reference=1 format=isa" -o %t.ref.mlir
// RUN: %python %S/Inputs/gpu_objects.py %t.ref.mlir %t.ref.ptx --ptxas %ptxas --arch sm_90 | FileCheck %s --check-prefix=PTXAS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=KERNELS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home reference=1" --mlir-print-ir-after=moe-lower-grouped-matmul-to-mma -o /dev/null 2>&1 | FileCheck %s --check-prefix=REF
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home routing-block-size=0" --mlir-print-ir-after=moe-map-to-gpu -o /dev/null 2>&1 | FileCheck %s --check-prefix=SPLIT
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home chip=sm_80 features=+ptx70 format=isa" | FileCheck %s --check-prefix=SM80
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma format=isa" -o %t.wg.mlir
// RUN: FileCheck %s --check-prefix=WGTARGET < %t.wg.mlir
// RUN: %python %S/Inputs/gpu_objects.py %t.wg.mlir %t.wg.ptx --ptxas %ptxas --arch sm_90a --resources | FileCheck %s --check-prefix=WGPTX
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=WGKERNELS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma atomic-combine=1" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=ATOMIC
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized atomic-combine=1 format=isa" -o %t.atomic.mlir
// RUN: %python %S/Inputs/gpu_objects.py %t.atomic.mlir %t.atomic.ptx --ptxas %ptxas --arch sm_90a --resources | FileCheck %s --check-prefix=ATOMICPTX
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home fuse-combine=0 atomic-combine=1" 2>&1 | FileCheck %s --check-prefix=BADATOMIC
// RUN: FileCheck %s --check-prefix=ATOMICADD < %t.atomic.ptx/forward_tiles_7.ptx
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized format=isa" -o %t.ws.mlir
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=WSLAUNCH
// RUN: %python %S/Inputs/gpu_objects.py %t.ws.mlir %t.ws.ptx --ptxas %ptxas --arch sm_90a --resources | FileCheck %s --check-prefix=WSPTX
// RUN: FileCheck %s --check-prefix=EPILOGUE < %t.ws.ptx/forward_tiles_5.ptx
// RUN: FileCheck %s --check-prefix=DOWNPAIRS < %t.ws.ptx/forward_tiles_6.ptx
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized fast-epilogue-math=0 format=isa" -o %t.exact.mlir
// RUN: %python %S/Inputs/gpu_objects.py %t.exact.mlir %t.exact.ptx --ptxas %ptxas --arch sm_90a
// RUN: FileCheck %s --check-prefix=EXACTEPILOGUE < %t.exact.ptx/forward_tiles_5.ptx
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized" --mlir-print-ir-after=moe-map-to-gpu -o /dev/null 2>&1 | FileCheck %s --check-prefix=ORDER
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized tile-group-rows=5" --mlir-print-ir-after=moe-map-to-gpu -o /dev/null 2>&1 | FileCheck %s --check-prefix=ORDER5
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home tile-group-rows=-1" 2>&1 | FileCheck %s --check-prefix=BADORDER
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma max-groups-in-flight=0" 2>&1 | FileCheck %s --check-prefix=BADGROUPS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home" --mlir-print-ir-after=moe-map-to-gpu -o /dev/null 2>&1 | FileCheck %s --check-prefix=LANES
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home lane-routing-max-tokens=0" --mlir-print-ir-after=moe-map-to-gpu -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOLANES
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home lane-routing-max-tokens=-2" 2>&1 | FileCheck %s --check-prefix=BADLANES
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma narrow-inputs-min-tokens=0" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=ROUNDALWAYS
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma narrow-inputs-min-tokens=0 async-gather=0" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=REGGATHER
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma" --mlir-print-ir-after=moe-drop-unread-inits -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOFILL
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma" --mlir-print-ir-after=moe-programmatic-launches -o /dev/null 2>&1 | FileCheck %s --check-prefix=PDL
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home chip=sm_80 features=+ptx70" --mlir-print-ir-after-all -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOPDL
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma programmatic-launches=0" --mlir-print-ir-after-all -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOPDL
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=sync block-rows=8" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=CUDACORES
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home narrow-inputs-min-tokens=-3" 2>&1 | FileCheck %s --check-prefix=BADROUND
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma chip=sm_90" 2>&1 | FileCheck %s --check-prefix=WGCHIP
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%t.none" 2>&1 | FileCheck %s --check-prefix=NOTOOLKIT
// RUN: not moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home chip=90" 2>&1 | FileCheck %s --check-prefix=BADCHIP

// The whole pipeline: host code in the LLVM dialect with the entry point's
// C interface and a manifest naming the device code, calling the runtime's
// mgpu* functions, and the kernels as sm_90 binaries (a fatbinary: the
// cubin and its PTX).
// The tiles run in groups of row blocks (moe-map-to-gpu's rule over 132
// multiprocessors and 128-row blocks of bf16 weights: 8-column gate/up
// pairs of f32 token rows give groups of 3, of the rounded rows 4, and
// 16-column down tiles of the bf16 hidden rows groups of 4), or of
// tile-group-rows.
// ORDER: gpu.launch {{.*}}module(@forward_tiles_4)
// ORDER-NEXT: arith.constant 4 : index
// ORDER: gpu.launch {{.*}}module(@forward_tiles_5)
// ORDER-NEXT: arith.constant 3 : index
// ORDER: gpu.launch {{.*}}module(@forward_tiles_6)
// ORDER-NEXT: arith.constant 4 : index
// ORDER5: gpu.launch {{.*}}module(@forward_tiles_4)
// ORDER5-NEXT: arith.constant 5 : index
// narrow-inputs-min-tokens=0: the token rows are rounded at every call, by
// a kernel over all multiprocessors after the routing block (not in it:
// it reads the token rows, as the router does), and one gate/up tiling
// reads them.
// ROUNDALWAYS: gpu.launch_func {{.*}}@forward_routing_2::@forward_routing_2 blocks in (%{{.*}}, %c1, %c1)
// ROUNDALWAYS-NOT: scf.if
// ROUNDALWAYS: gpu.launch_func {{.*}}@forward_rows_3::@forward_rows_3 {{.*}}threads in (%c256, %c1, %c1)  args({{.*}}: memref<?x16xf32>, {{.*}}: memref<?x16xbf16>)
// ROUNDALWAYS-NOT: scf.if
// ROUNDALWAYS: gpu.launch_func {{.*}}@forward_tiles_4::@forward_tiles_4 {{.*}}: memref<?x16xbf16>
// ROUNDALWAYS: gpu.launch_func {{.*}}@forward_tiles_5::@forward_tiles_5
// ROUNDALWAYS: gpu.launch_func {{.*}}@forward_loop_6::@forward_loop_6
// The gate/up tiles gather the rounded rows (32 bytes each) by cp.async,
// arriving on the stage's mbarrier; with async-gather=0 through the
// threads' registers.
// ROUNDALWAYS: gpu.module @forward_tiles_4
// ROUNDALWAYS: nvvm.cp.async.shared.global {{.*}}, 16, cache =  cg, {{.*}} : !llvm.ptr<3>, !llvm.ptr<1>, i32
// ROUNDALWAYS: nvvm.cp.async.mbarrier.arrive {{.*}} {noinc = true}
// ROUNDALWAYS: gpu.module @forward_tiles_5
// REGGATHER: gpu.module @forward_tiles_4
// REGGATHER-NOT: nvvm.cp.async.shared.global
// REGGATHER: vector.store {{.*}} : memref<64x64xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// REGGATHER-NOT: nvvm.cp.async.shared.global
// REGGATHER: gpu.module @forward_tiles_5
// The down projection writes its sums into a fresh accumulator (an
// epilogue, no zero fill): the combine reads only the rows of the plan's
// blocks, which its blocks provably cover.
// NOFILL: %[[ACC:.*]] = bufferization.alloc_tensor(%{{.*}}) : tensor<?x16xf32>
// NOFILL-NEXT: %[[Y:.*]] = moe.grouped_matmul block_rows(64) ins({{.*}}) block_sizes({{.*}}) outs(%[[ACC]] : tensor<?x16xf32>) epilogue {
// NOFILL-NEXT: ^bb0(%[[S:.*]]: f32, %{{.*}}: f32):
// NOFILL-NEXT: moe.yield %[[S]] : f32
// NOFILL: moe.combine %[[Y]],
// On sm_90, every kernel waits for the kernel before it (griddepcontrol)
// before it touches memory and lets the next start at once; the entry asks
// the runtime for programmatic launches. Not on sm_80, nor with
// programmatic-launches=0.
// PDL-LABEL: func.func @forward
// PDL-NEXT: call @mgpuAllowProgrammaticLaunches() : () -> ()
// PDL: gpu.func @forward_tiles_{{[0-9]+}}
// PDL-NEXT: nvvm.griddepcontrol {{ *}}wait
// PDL-NEXT: nvvm.griddepcontrol {{ *}}launch_dependents
// NOPDL-NOT: griddepcontrol
// NOPDL-NOT: mgpuAllowProgrammaticLaunches
// Tiles on the CUDA cores (8-row blocks, no multiple of the mma's 16 rows)
// multiply f32 rows:
// nothing is rounded for them, neither the token rows nor the hidden rows.
// CUDACORES-LABEL: func.func @forward
// CUDACORES-NOT: <?x16xbf16>
// CUDACORES-NOT: <?x8xbf16>
// CUDACORES: gpu.module
// BADROUND: moe-narrow-grouped-matmul-inputs: min-rows must be at least 0, got -3
// BADORDER: moe-map-to-gpu: block-size and warp-size must be at least 1, routing-block-size, tile-grid-limit, team-grid-limit, tile-group-rows and multiprocessors at least 0
// BADGROUPS: moe-lower-to-cuda: max-groups-in-flight must be at least 1, got 0

// CHECK-DAG: llvm.func @_mlir_ciface_forward(
// CHECK-DAG: llvm.mlir.global external constant @moe_module_manifest({{.*}}\22gpu\22:{\22api\22:\22cuda\22,\22chip\22:\22sm_90\22,\22io\22:\22host\22}
// CHECK-DAG: llvm.call @mgpuMemAlloc
// CHECK-DAG: llvm.call @mgpuMemcpy
// CHECK-DAG: llvm.call @mgpuStreamSynchronize
// CHECK-DAG: gpu.launch_func
// FATBIN-DAG: gpu.binary @forward_routing_2 {{.*}}#nvvm.target<O = 3, chip = "sm_90", features = "+ptx81">
// CHECK-NOT: func.func
// CHECK-NOT: memref.
// CHECK-NOT: moe.

// Every kernel's PTX assembles for sm_90.
// PTXAS-COUNT-2: ptx accepted by ptxas -arch=sm_90

// The kernels: the router's matmul over all multiprocessors, its logits'
// zero fill fused in: below 132 x 256 logits a block of threads per token
// and expert, each summing a strided part of its depths (here 16: 2
// threads of 8), combined by a gpu.all_reduce; else a thread per token
// and expert (an scf.if on the host chooses, no wait). Then one routing
// kernel of one 512-thread block (top-k, weights, counts, the prefix sum
// of the block-aligned plan and the rows' positions), then the tiles, one
// warp each, of the gate/up projection (SwiGLU in its epilogue) and of the
// down projection on the tensor cores, over the plan's row bound (the host
// reads nothing back before them), then the weighted combine of each
// token's rows; the host waits once, for the result's copy. Each kernel,
// and its GPU module, is named after the function, what it runs and its
// launch's place.
// KERNELS-LABEL: func.func @forward
// KERNELS: scf.if
// KERNELS: gpu.launch_func {{.*}}@forward_team_0::@forward_team_0 blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%c2,
// KERNELS: } else {
// KERNELS: gpu.launch_func {{.*}}@forward_loop_1::@forward_loop_1 blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%c256
// KERNELS-NOT: gpu.wait [
// The routing kernel's blocks: ceil(T / 16) for the tokens' routing on
// warps, ceil(T / 512) for a thread per token, at most one per
// multiprocessor; the last to finish builds the plan, counted in a zeroed
// word.
// KERNELS: arith.ceildivui %{{.*}}, %c16
// KERNELS: arith.ceildivui %{{.*}}, %c512
// KERNELS: arith.select
// KERNELS: %[[RBLOCKS:.*]] = arith.minui %{{.*}}, %c132
// KERNELS: gpu.memset async {{.*}} : memref<1xi32>, i32
// KERNELS: gpu.launch_func {{.*}}@forward_routing_2::@forward_routing_2 blocks in (%[[RBLOCKS]], %c1, %c1) threads in (%c512
// KERNELS-NOT: gpu.memcpy
// KERNELS-NOT: gpu.wait [
// KERNELS: scf.if %{{.*}} {
// KERNELS: gpu.launch_func {{.*}}@forward_rows_3::@forward_rows_3 {{.*}}threads in (%c256
// KERNELS-NOT: gpu.wait [
// KERNELS: gpu.launch_func {{.*}}@forward_tiles_4::@forward_tiles_4 {{.*}}threads in (%c32
// KERNELS: } else {
// KERNELS: gpu.launch_func {{.*}}@forward_tiles_5::@forward_tiles_5 {{.*}}threads in (%c32
// KERNELS-NOT: gpu.wait [
// KERNELS: gpu.launch_func {{.*}}@forward_tiles_6::@forward_tiles_6 {{.*}}threads in (%c32
// KERNELS-NOT: gpu.wait [
// KERNELS: gpu.launch_func {{.*}}threads in (%c256
// KERNELS-NOT: gpu.launch_func
// KERNELS: gpu.memcpy
// KERNELS: gpu.wait [
// KERNELS-NOT: gpu.launch_func
// KERNELS: gpu.module @forward_team_0
// KERNELS: scf.for {{.*}} = %thread_id_x to
// KERNELS: arith.mulf
// KERNELS: gpu.all_reduce add
// KERNELS: gpu.module @forward_loop_1
// KERNELS: scf.for
// KERNELS: arith.mulf
// KERNELS-NOT: gpu.all_reduce
// KERNELS: gpu.module @forward_routing_2
// KERNELS-DAG: gpu.barrier
// KERNELS-DAG: math.exp
// KERNELS: gpu.module @forward_rows_3
// KERNELS: arith.truncf {{.*}} : f32 to bf16
// KERNELS: gpu.module @forward_tiles_4
// KERNELS: gpu.func @forward_tiles_4({{.*}}: memref<?x16xbf16>
// KERNELS-COUNT-2: nvvm.mma.sync {{.*}}#nvvm.mma_type<bf16>{{.*}}shape = #nvvm.shape<m = 16, n = 8, k = 16>
// KERNELS: math.exp
// KERNELS: gpu.module @forward_tiles_5
// KERNELS: gpu.func @forward_tiles_5({{.*}}: memref<?x16xf32>
// KERNELS-COUNT-2: nvvm.mma.sync {{.*}}#nvvm.mma_type<bf16>{{.*}}shape = #nvvm.shape<m = 16, n = 8, k = 16>
// KERNELS: math.exp
// KERNELS: gpu.module @forward_tiles_6
// KERNELS: nvvm.mma.sync {{.*}}#nvvm.mma_type<bf16>
// KERNELS: gpu.module @forward_loop_7
// KERNELS-NOT: nvvm.mma.sync

// mma=wgmma: the tiles are warpgroups (128 threads) of 64-row blocks; the
// host makes each weight's TMA descriptor (gate and up, then down, and the
// down projection's bf16 hidden rows, which its tiles read in place) before
// their launch, which gets the ring's dynamic shared memory (2 stages of
// 8 KiB of A and 2 x 8 rows x 128 bytes of B, and 1 KiB to align). The
// kernels are sm_90a code with wgmma fed by TMA and waits on mbarriers;
// ptxas spills nothing and warns of nothing (no serialized wgmma).
// From 1024 tokens the gate/up tiles read the token rows rounded to bf16
// by a kernel before them (forward_rows_3), below that the f32 rows.
// atomic-combine: each row's combine weight and the result's zero fill
// (one kernel: moe-fuse-sibling-loops merges the two loops), then the down
// projection's tiles, which add their rows times those weights to the
// tokens' rows by atomic adds; no combine kernel after them, no
// single-thread kernel.
// ATOMIC-LABEL: func.func @forward
// ATOMIC-NOT: forward_serial
// ATOMIC: gpu.launch_func {{.*}}@forward_loop_6::@forward_loop_6 {{.*}}args({{.*}}memref<?xi32{{.*}}memref<?xf32>{{.*}}: memref<?x16xf32>)
// ATOMIC: gpu.launch_func {{.*}}@forward_tiles_7::@forward_tiles_7 {{.*}}threads in (%c128, %c1, %c1)
// ATOMIC-NOT: gpu.launch_func
// ATOMIC: gpu.module @forward_tiles_7
// ATOMIC: memref.atomic_rmw addf
// BADATOMIC: moe-form-grouped-matmul: atomic-combine needs fuse-combine
// The specialized tiles assemble (PTX 8.1), with no spills, the atomic
// adds in the down tile by pairs of columns (one red.add.v2.f32 for both,
// or two atomic adds where the pair is not aligned).
// ATOMICPTX: forward_tiles_7: wgmma 4, tma 2, {{.*}}spill_stores 0, spill_loads 0, stack 0
// ATOMICADD: .version 8.1
// ATOMICADD: atom.global.add.f32
// ATOMICADD: red.add.v2.f32
// The gate/up tiles' SwiGLU by the approximate instructions
// (moe-approximate-epilogue-math), each thread's adjacent pair of bf16
// hidden values rounded by one cvt and stored by one 4-byte store where
// aligned; the down tiles store f32 pairs by 8-byte stores.
// EPILOGUE: ex2.approx.f32
// EPILOGUE: rcp.approx.f32
// EPILOGUE: cvt.rn.bf16x2.f32
// EPILOGUE: st.global.b32
// DOWNPAIRS: st.global.v2.b32
// With fast-epilogue-math=0, libdevice's exact exp and division.
// EXACTEPILOGUE-NOT: {{rcp.approx|ex2.approx.f32}}
// EXACTEPILOGUE: rcp.rn.f32
// EXACTEPILOGUE-NOT: {{rcp.approx|ex2.approx.f32}}
// WGKERNELS-LABEL: func.func @forward
// WGKERNELS: gpu.launch_func {{.*}}threads in (%c512
// WGKERNELS: gpu.launch_func {{.*}}@forward_rows_3::@forward_rows_3 {{.*}}threads in (%c256, %c1, %c1)  args({{.*}}: memref<?x16xf32>, {{.*}}: memref<?x16xbf16>)
// WGKERNELS-COUNT-2: llvm.call @mgpuTensorMapEncodeTiledMemref
// WGKERNELS: gpu.launch_func {{.*}}@forward_tiles_4::@forward_tiles_4 {{.*}}threads in (%c128, %c1, %c1)  dynamic_shared_memory_size %c21504_i32
// WGKERNELS: } else {
// WGKERNELS-COUNT-2: llvm.call @mgpuTensorMapEncodeTiledMemref
// WGKERNELS: gpu.launch_func {{.*}}@forward_tiles_5::@forward_tiles_5 {{.*}}threads in (%c128, %c1, %c1)  dynamic_shared_memory_size %c21504_i32
// WGKERNELS-COUNT-2: llvm.call @mgpuTensorMapEncodeTiledMemref
// WGKERNELS: gpu.launch_func {{.*}}@forward_tiles_6::@forward_tiles_6 {{.*}}threads in (%c128, %c1, %c1)  dynamic_shared_memory_size
// WGTARGET: gpu.binary @forward_tiles_4 {{.*}}#nvvm.target<O = 3, chip = "sm_90a"
// The dynamic shared memory is a module-level `.extern` array (after the
// static mbarriers), not a variable demoted into the kernel.
// RUN: FileCheck %s --check-prefix=WGSHARED < %t.wg.ptx/forward_tiles_4.ptx
// WGSHARED-NOT: __dynamic_shmem__0 has been demoted
// WGSHARED: .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// WGSHARED-NOT: __dynamic_shmem__0 has been demoted
// WGSHARED: .shared .align 8 .b8 __mbarrier[
// The kernels take the descriptors by value (grid-constant parameters of
// 128 bytes, read through their generic address), which the host encodes
// into its own memory at each launch (no device copy).
// RUN: FileCheck %s --check-prefix=WGBYVALUE < %t.wg.ptx/forward_tiles_6.ptx
// WGBYVALUE: .param .align 64 .b8 forward_tiles_6_param_{{[0-9]+}}[128],
// WGBYVALUE-NEXT: .param .align 64 .b8 forward_tiles_6_param_{{[0-9]+}}[128],
// WGBYVALUE: cvta.param.u64
// WGBYVALUE: cvta.param.u64
// WGBYVALUE-COUNT-2: cp.async.bulk.tensor
// RUN: FileCheck %s --check-prefix=WGHOST < %t.wg.mlir
// WGHOST-NOT: @mgpuTensorMapEncodeTiledMemref(
// WGHOST-COUNT-6: llvm.call @mgpuTensorMapEncodeTiledMemrefInto
// WGHOST-NOT: @mgpuTensorMapEncodeTiledMemref(
// WGPTX: forward_tiles_4: ptx accepted by ptxas -arch=sm_90a
// WGPTX-NEXT: forward_tiles_4: wgmma 8, tma 2, mbarrier_waits 1, mma_sync 0, cp_async 4, setmaxnreg 0, registers {{[0-9]+}}, spill_stores 0, spill_loads 0, stack 0
// WGPTX-NOT: ptxas:
// WGPTX: forward_tiles_5: ptx accepted by ptxas -arch=sm_90a
// WGPTX-NEXT: forward_tiles_5: wgmma 8, tma 2, mbarrier_waits 1, mma_sync 0, cp_async 0, setmaxnreg 0, registers {{[0-9]+}}, spill_stores 0, spill_loads 0, stack 0
// WGPTX-NOT: ptxas:
// WGPTX: forward_tiles_6: ptx accepted by ptxas -arch=sm_90a
// WGPTX-NEXT: forward_tiles_6: wgmma 4, tma 2, mbarrier_waits 1, mma_sync 0, cp_async 0, setmaxnreg 0, registers {{[0-9]+}}, spill_stores 0, spill_loads 0, stack 0
// WGPTX-NOT: ptxas:

// mma=wgmma-specialized: the tiles are 128-row blocks of three warpgroups
// (384 threads), a producer and two consumers; each role waits on its own
// mbarriers (the stage filled, the stage released); the kernels declare
// their block size (.maxntid 384, so that ptxas keeps to the 168
// registers a thread may then have) and ptxas spills nothing.
// WSLAUNCH: gpu.launch_func {{.*}}@forward_tiles_4::@forward_tiles_4 {{.*}}threads in (%c384, %c1, %c1)  dynamic_shared_memory_size
// WSLAUNCH: gpu.launch_func {{.*}}@forward_tiles_5::@forward_tiles_5 {{.*}}threads in (%c384, %c1, %c1)  dynamic_shared_memory_size
// WSLAUNCH: gpu.launch_func {{.*}}@forward_tiles_6::@forward_tiles_6 {{.*}}threads in (%c384, %c1, %c1)  dynamic_shared_memory_size
// RUN: FileCheck %s --check-prefix=WSBOUND < %t.ws.ptx/forward_tiles_4.ptx
// WSBOUND: .maxntid 384, 1, 1
// With block-rows=64 the blocks are a producer and one consumer (256).
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized block-rows=64" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=WS64
// WS64: gpu.launch_func {{.*}}@forward_tiles_4::@forward_tiles_4 {{.*}}threads in (%c256, %c1, %c1)  dynamic_shared_memory_size
// Consumers in turns: 64-row blocks of three warpgroups on a persistent
// grid (the walk's blocks walk the tiles: setmaxnreg moves registers,
// three mbarrier waits: stage filled, stage released, turn), and with no
// count of multiprocessors one block per tile.
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-pingpong format=isa" -o %t.pp.mlir
// RUN: %python %S/Inputs/gpu_objects.py %t.pp.mlir %t.pp.ptx --ptxas %ptxas --arch sm_90a --resources | FileCheck %s --check-prefix=PINGPONG
// PINGPONG: forward_tiles_4: wgmma 8, tma 2, mbarrier_waits 3, mma_sync 0, cp_async 4, setmaxnreg 4, registers 168, spill_stores 0, spill_loads 0
// PINGPONG-NOT: ptxas:
// PINGPONG: forward_tiles_5: wgmma 8, tma 2, mbarrier_waits 3, mma_sync 0, cp_async 0, setmaxnreg 4, registers 168, spill_stores 0, spill_loads 0
// PINGPONG-NOT: ptxas:
// PINGPONG: forward_tiles_6: wgmma 4, tma 2, mbarrier_waits 3, mma_sync 0, cp_async 0, setmaxnreg 4, registers 168, spill_stores 0, spill_loads 0
// PINGPONG-NOT: ptxas:
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-pingpong multiprocessors=0" --mlir-print-ir-after=gpu-kernel-outlining -o /dev/null 2>&1 | FileCheck %s --check-prefix=PPLAUNCH
// PPLAUNCH: gpu.launch_func {{.*}}@forward_tiles_4::@forward_tiles_4 {{.*}}threads in (%c384, %c1, %c1)  dynamic_shared_memory_size
// WSPTX: forward_tiles_4: ptx accepted by ptxas -arch=sm_90a
// WSPTX-NEXT: forward_tiles_4: wgmma 8, tma 2, mbarrier_waits 2, mma_sync 0, cp_async 8, setmaxnreg 0, registers {{[0-9]+}}, spill_stores 0, spill_loads 0, stack 0
// WSPTX-NOT: ptxas:
// WSPTX: forward_tiles_5: ptx accepted by ptxas -arch=sm_90a
// WSPTX-NEXT: forward_tiles_5: wgmma 8, tma 2, mbarrier_waits 2, mma_sync 0, cp_async 0, setmaxnreg 0, registers {{[0-9]+}}, spill_stores 0, spill_loads 0, stack 0
// WSPTX-NOT: ptxas:
// WSPTX: forward_tiles_6: ptx accepted by ptxas -arch=sm_90a
// WSPTX-NEXT: forward_tiles_6: wgmma 4, tma 2, mbarrier_waits 2, mma_sync 0, cp_async 0, setmaxnreg 0, registers {{[0-9]+}}, spill_stores 0, spill_loads 0, stack 0
// WSPTX-NOT: ptxas:
// On a persistent grid the roles split once (a copy of the walk over tiles
// each): the producer gives registers back, the consumers take them
// (setmaxnreg.dec and .inc; each returns to 168 before they join), and
// the kernels' .minnctapersm 1
// (moe-pin-entry-registers) gives ptxas the count they start from, the
// 168 of 384 threads (without it ptxas drops both with note C7508).
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized persistent=1 format=isa" -o %t.wsp.mlir
// RUN: %python %S/Inputs/gpu_objects.py %t.wsp.mlir %t.wsp.ptx --ptxas %ptxas --arch sm_90a --resources | FileCheck %s --check-prefix=WSPERSIST
// WSPERSIST: forward_tiles_4: ptx accepted by ptxas -arch=sm_90a
// WSPERSIST-NEXT: forward_tiles_4: wgmma 8, tma 2, mbarrier_waits 2, mma_sync 0, cp_async 8, setmaxnreg 4, registers 168, spill_stores 0, spill_loads 0, stack 0
// WSPERSIST-NOT: ptxas:
// WSPERSIST: forward_tiles_5: ptx accepted by ptxas -arch=sm_90a
// WSPERSIST-NEXT: forward_tiles_5: wgmma 8, tma 2, mbarrier_waits 2, mma_sync 0, cp_async 0, setmaxnreg 4, registers 168, spill_stores 0, spill_loads 0, stack 0
// WSPERSIST-NOT: ptxas:
// WSPERSIST: forward_tiles_6: ptx accepted by ptxas -arch=sm_90a
// WSPERSIST-NEXT: forward_tiles_6: wgmma 4, tma 2, mbarrier_waits 2, mma_sync 0, cp_async 0, setmaxnreg 4, registers 168, spill_stores 0, spill_loads 0, stack 0
// WSPERSIST-NOT: ptxas:
// In clusters of two CTAs (cluster=2) the tile launches name the cluster
// size, every tile kernel is accepted (no spills); the down tiles (16
// columns: halves of 8, one swizzle atom each) share their weight boxes:
// keys compared through mapa after barrier.cluster, multicast TMA loads,
// stages released in both CTAs (the gate/up tiles' 8 columns do not halve
// into whole atoms: each CTA loads its own).
// RUN: moe-opt %s --moe-lower-to-cuda="toolkit=%cuda_home mma=wgmma-specialized cluster=2 format=isa" -o %t.wsc.mlir
// RUN: FileCheck %s --check-prefix=WSCLAUNCH < %t.wsc.mlir
// WSCLAUNCH-COUNT-3: gpu.launch_func {{.*}}@forward_tiles_{{[0-9]+}}::@forward_tiles_{{[0-9]+}} clusters in
// RUN: %python %S/Inputs/gpu_objects.py %t.wsc.mlir %t.wsc.ptx --ptxas %ptxas --arch sm_90a --resources | FileCheck %s --check-prefix=WSCLUSTER
// WSCLUSTER: forward_tiles_6: ptx accepted by ptxas -arch=sm_90a
// WSCLUSTER-NEXT: forward_tiles_6: wgmma 4, tma 4, mbarrier_waits 2, mma_sync 0, cp_async 0, setmaxnreg 0, registers {{[0-9]+}}, spill_stores 0, spill_loads 0, stack 0
// WSCLUSTER-NOT: ptxas:
// RUN: FileCheck %s --check-prefix=WSCPTX < %t.wsc.ptx/forward_tiles_6.ptx
// WSCPTX: barrier.cluster.arrive;
// WSCPTX: barrier.cluster.wait;
// WSCPTX: mapa.shared::cluster.u64
// WSCPTX: ld.shared::cluster.b64
// WSCPTX-DAG: cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster
// WSCPTX-DAG: mbarrier.arrive.release.cluster.shared::cluster.b64 _,
// RUN: FileCheck %s --check-prefix=WSPBOUND < %t.wsp.ptx/forward_tiles_4.ptx
// WSPBOUND: .maxntid 384, 1, 1
// WSPBOUND-NEXT: .minnctapersm 1
// WSPBOUND-DAG: setmaxnreg.dec.sync.aligned.u32 40;
// WSPBOUND-DAG: setmaxnreg.inc.sync.aligned.u32 168;
// WSPBOUND-DAG: setmaxnreg.inc.sync.aligned.u32 232;
// WSPBOUND-DAG: setmaxnreg.dec.sync.aligned.u32 168;

// wgmma is sm_90a code: another chip is refused.
// WGCHIP: error: 'nvvm.wgmma.fence.aligned' op is not supported on sm_90

// The reference lowering: no tensor cores.
// REF-NOT: nvvm.mma.sync

// routing-block-size=0: each loop of the routing its own kernel.
// SPLIT-COUNT-8: gpu.launch

// SM80: #nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">
// SM80: .target sm_80

// NOTOOLKIT: error: CUDA path: {{.*}}none does not exist or is not a directory
// BADCHIP: moe-export-entries: cuda-chip must be sm_NN or sm_NNa, got '90'

// Up to a token per warp of the routing kernel (16 warps of 512 threads
// per block, a block per multiprocessor: 2112 tokens), it routes each
// token on a warp's lanes (its softmax and choices as shuffle butterflies,
// its scores in the warp's workgroup memory); past that, a thread per
// token: one routing kernel either way.
// LANES-LABEL: func.func @forward
// LANES: arith.cmpi ule, %{{.*}}, %c2112
// LANES: gpu.launch
// LANES-SAME: threads({{.*}}) in ({{.*}} = %c512
// LANES-SAME: module(@forward_routing_2) {{.*}}workgroup(%{{.*}} : memref<64xf32, #gpu.address_space<workgroup>>,
// LANES: scf.if
// LANES: nvvm.bar.warp.sync
// LANES: gpu.shuffle  xor
// LANES: } else {
// LANES-NOT: gpu.launch
// LANES: gpu.terminator
// NOLANES-LABEL: func.func @forward
// NOLANES-NOT: nvvm.bar.warp.sync
// NOLANES-NOT: gpu.shuffle
// NOLANES: return
// BADLANES: moe-fuse-routing: lane-max-tokens must be at least 0
func.func @forward(%x: tensor<?x16xf32>,
    %wg: tensor<4x16xf32> {moe.weight = "gate.weight"},
    %w1: tensor<4x8x16xbf16> {moe.weight = "experts.{e}.w1.weight"},
    %w3: tensor<4x8x16xbf16> {moe.weight = "experts.{e}.w3.weight"},
    %w2: tensor<4x16x8xbf16> {moe.weight = "experts.{e}.w2.weight"}) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%wg : tensor<4x16xf32>)
      experts(gate %w1 : tensor<4x8x16xbf16>, up %w3 : tensor<4x8x16xbf16>,
              down %w2 : tensor<4x16x8xbf16>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
