// The pipelines refuse, before building, options out of range that no pass
// would check and options given that the lowering they select ignores:
// one line naming the option, a non-zero exit. (The checks are of the
// options alone; the module is not read.)
//
// RUN: not moe-opt %s --moe-lower-to-cpu="reference=1 tile-n=8" 2>&1 | FileCheck %s --check-prefix=CPUREF
// CPUREF: error: moe-lower-to-cpu: tile-n applies to the fast path, which the reference lowering (reference=1) does not use
// RUN: not moe-opt %s --moe-lower-to-cpu="reference=1 openmp=0" 2>&1 | FileCheck %s --check-prefix=CPUREFOMP
// CPUREFOMP: error: moe-lower-to-cpu: openmp applies to the fast path
// RUN: not moe-opt %s --moe-lower-to-cpu="pack-weights=0 panel-rows=4" 2>&1 | FileCheck %s --check-prefix=UNPACKED
// UNPACKED: error: moe-lower-to-cpu: panel-rows applies to packed weights, which pack-weights=0 does not use
// RUN: not moe-opt %s --moe-lower-to-cpu="pack-weights=0 bf16-matmul=pairs-fma" 2>&1 | FileCheck %s --check-prefix=UNPACKEDBF16
// UNPACKEDBF16: error: moe-lower-to-cpu: bf16-matmul applies to packed weights, which pack-weights=0 does not use
// RUN: not moe-opt %s --moe-lower-to-cpu="fuse-routing=0 token-parallel-routing=1" 2>&1 | FileCheck %s --check-prefix=CPUUNFUSED
// CPUUNFUSED: error: moe-lower-to-cpu: token-parallel-routing applies to the fused routing, which fuse-routing=0 does not use
// RUN: not moe-opt %s --moe-lower-to-cpu="ranks=-1" 2>&1 | FileCheck %s --check-prefix=RANKS
// RANKS: error: moe-lower-to-cpu: ranks must be at least 0, got -1
//
// RUN: not moe-opt %s --moe-lower-to-cuda="multiprocessors=-5" 2>&1 | FileCheck %s --check-prefix=SMS
// SMS: error: moe-lower-to-cuda: multiprocessors must be at least 0, got -5
// RUN: not moe-opt %s --moe-lower-to-cuda="max-groups-in-flight=0" 2>&1 | FileCheck %s --check-prefix=GROUPS
// GROUPS: error: moe-lower-to-cuda: max-groups-in-flight must be at least 1, got 0
// RUN: not moe-opt %s --moe-lower-to-cuda="persistent=-1" 2>&1 | FileCheck %s --check-prefix=PERSISTENT
// PERSISTENT: error: moe-lower-to-cuda: persistent must be at least 0, got -1
// RUN: not moe-opt %s --moe-lower-to-cuda="reference=1 mma=wgmma" 2>&1 | FileCheck %s --check-prefix=CUDAREF
// CUDAREF: error: moe-lower-to-cuda: mma applies to the fast path, which the reference lowering (reference=1) does not use
// RUN: not moe-opt %s --moe-lower-to-cuda="reference=1 narrow-tile-n=32" 2>&1 | FileCheck %s --check-prefix=CUDAREFLIST
// CUDAREFLIST: error: moe-lower-to-cuda: narrow-tile-n applies to the fast path
// RUN: not moe-opt %s --moe-lower-to-cuda="reference=1 multiprocessors=8" 2>&1 | FileCheck %s --check-prefix=CUDAREFSMS
// CUDAREFSMS: error: moe-lower-to-cuda: multiprocessors applies to the fast path
// RUN: not moe-opt %s --moe-lower-to-cuda="async-gather=0" 2>&1 | FileCheck %s --check-prefix=SYNCGATHER
// SYNCGATHER: error: moe-lower-to-cuda: async-gather applies to the wgmma forms, which mma=sync does not use
// RUN: not moe-opt %s --moe-lower-to-cuda="mma=sync max-groups-in-flight=2" 2>&1 | FileCheck %s --check-prefix=SYNCGROUPS
// SYNCGROUPS: error: moe-lower-to-cuda: max-groups-in-flight applies to the wgmma forms, which mma=sync does not use
// RUN: not moe-opt %s --moe-lower-to-cuda="mma=wgmma-pingpong eight-row-stages=1" 2>&1 | FileCheck %s --check-prefix=EIGHT
// EIGHT: error: moe-lower-to-cuda: eight-row-stages applies to mma=wgmma, which mma=wgmma-pingpong does not use
// RUN: not moe-opt %s --moe-lower-to-cuda="mma=wgmma cluster=2" 2>&1 | FileCheck %s --check-prefix=CLUSTER
// CLUSTER: error: moe-lower-to-cuda: cluster applies to mma=wgmma-specialized, which mma=wgmma does not use
// RUN: not moe-opt %s --moe-lower-to-cuda="fuse-routing=0 lane-routing-max-tokens=0" 2>&1 | FileCheck %s --check-prefix=CUDAUNFUSED
// CUDAUNFUSED: error: moe-lower-to-cuda: lane-routing-max-tokens applies to the fused routing, which fuse-routing=0 does not use
// RUN: not moe-opt %s --moe-lower-to-cuda="token-parallel-routing=0 lane-routing-max-tokens=4" 2>&1 | FileCheck %s --check-prefix=CHUNKED
// CHUNKED: error: moe-lower-to-cuda: lane-routing-max-tokens applies to the token-parallel routing, which token-parallel-routing=0 does not use
// RUN: not moe-opt %s --moe-lower-to-cuda="chip=sm_80 features=+ptx70 programmatic-launches=1" 2>&1 | FileCheck %s --check-prefix=PDL
// PDL: error: moe-lower-to-cuda: programmatic-launches needs sm_90 or later and PTX 7.8 or later (griddepcontrol), not chip sm_80 with features '+ptx70'
// RUN: not moe-opt %s --moe-lower-to-cuda="reference=1 chip=sm_80 programmatic-launches=1" 2>&1 | FileCheck %s --check-prefix=PDLREF
// PDLREF: error: moe-lower-to-cuda: programmatic-launches needs {{.*}}, not chip sm_80
// RUN: not moe-opt %s --moe-lower-to-cuda="mma=wgmma features=+ptx75 programmatic-launches=1" 2>&1 | FileCheck %s --check-prefix=PDLPTX
// PDLPTX: error: moe-lower-to-cuda: programmatic-launches needs {{.*}}, not chip sm_90a with features '+ptx75'
//
// What each form uses is accepted (the defaults given explicitly too).
// RUN: moe-opt %s --moe-lower-to-cuda="mma=wgmma-specialized cluster=2 async-gather=1 max-groups-in-flight=2 format=isa" -o /dev/null
// RUN: moe-opt %s --moe-lower-to-cuda="mma=wgmma eight-row-stages=0 cluster=1 format=isa" -o /dev/null
// RUN: moe-opt %s --moe-lower-to-cuda="reference=1 device-io format=isa chip=sm_80 features=+ptx70 programmatic-launches=0" -o /dev/null
// RUN: moe-opt %s --moe-lower-to-cuda="chip=sm_80 features=+ptx70 programmatic-launches=0" -o /dev/null
// RUN: moe-opt %s --moe-lower-to-cpu="pack-weights=1 panel-rows=4" -o /dev/null
// RUN: moe-opt %s --moe-lower-to-cpu="reference=1 ranks=0" -o /dev/null
//
// moe-compile checks the same, naming itself.
// RUN: not moe-compile %s --target cuda --pipeline-options="mma=wgmma cluster=2" -o %t.so 2>&1 | FileCheck %s --check-prefix=COMPILE
// COMPILE: moe-compile: error: moe-lower-to-cuda: cluster applies to mma=wgmma-specialized, which mma=wgmma does not use
// COMPILE-NOT: error

func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}
