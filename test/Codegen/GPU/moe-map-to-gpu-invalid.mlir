// RUN: moe-opt %s --split-input-file --moe-map-to-gpu --verify-diagnostics

// An input is copied to the device as one contiguous block.
// expected-error @below {{moe-map-to-gpu: argument 0 is not a contiguous row-major buffer}}
func.func @strided_input(%x: memref<4x4xf32, strided<[8, 1]>>) {
  return
}

// -----

// expected-error @below {{moe-map-to-gpu: expects a function of one block (structured control flow)}}
func.func @blocks(%x: memref<4xf32>, %c: i1) {
  cf.cond_br %c, ^a, ^b
^a:
  return
^b:
  return
}

// -----

// A device buffer the host computes the layout of must be row-major.
func.func @strided_alloc() {
  // expected-error @below {{moe-map-to-gpu: allocation of a non-identity layout}}
  %a = memref.alloc() : memref<4x4xf32, strided<[8, 1]>>
  return
}

// -----

// A kernel's stack holds buffers of a static size only.
func.func @dynamic_stack(%n: index, %x: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    // expected-error @below {{moe-map-to-gpu: a kernel allocates on its stack a buffer of dynamic size 'memref<?xf32>'}}
    %p = memref.alloca(%n) : memref<?xf32>
    %v = memref.load %x[%i] : memref<8xf32>
    memref.store %v, %p[%c0] : memref<?xf32>
    scf.reduce
  }
  return
}

// -----

// The host reads back scalars only (a scalar computed from a kernel's
// vector would join that kernel; the vector itself cannot come back).
func.func @vector_result(%x: memref<8xf32>) -> vector<2xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant dense<0.0> : vector<2xf32>
  // expected-error @below {{moe-map-to-gpu: the host needs a value of type 'vector<2xf32>' that a kernel computes}}
  %v = scf.for %i = %c0 to %c8 step %c1 iter_args(%acc = %zero) -> (vector<2xf32>) {
    %e = vector.extract %acc[0] : f32 from vector<2xf32>
    memref.store %e, %x[%i] : memref<8xf32>
    scf.yield %acc : vector<2xf32>
  }
  return %v : vector<2xf32>
}
