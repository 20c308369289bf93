// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="device-io" --verify-diagnostics

// A device-io call waits for the GPU only at its end: a value the host
// reads back is an error.
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
  // expected-error @below {{moe-map-to-gpu: device-io: the host needs a value a kernel computes, so the call would wait for the GPU before its end}}
  %total = memref.load %prefix[%c4] : memref<5xindex>
  %rows = memref.alloc(%total) : memref<?xf32>
  return %rows : memref<?xf32>
}

// -----

// So is host control flow over kernels and sequential code (here reading
// what a kernel wrote).
func.func @host_control(%x: memref<8xf32>, %go: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  // expected-error @below {{moe-map-to-gpu: device-io: host control flow over kernels waits for the GPU before the call's end}}
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
  return
}

// -----

memref.global "private" constant @table : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>

// And so is a host constant buffer, which every call would copy.
func.func @constant_table(%x: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  // expected-error @below {{moe-map-to-gpu: device-io: the function reads the host constant buffer @table, which every call would copy to the device}}
  %t = memref.get_global @table : memref<4xf32>
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %v = memref.load %t[%i] : memref<4xf32>
    memref.store %v, %x[%i] : memref<4xf32>
    scf.reduce
  }
  return
}
