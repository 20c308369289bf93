// LLVM 22's parsers of linalg.transpose, linalg.broadcast and linalg.reduce
// report a malformed permutation or dimensions list and then dereference the
// null attribute it left (mlir-opt 22 crashes on each case below). The tools
// parse their input under crash recovery first: the errors, exit 1.
// RUN: not moe-opt --split-input-file %s 2>&1 | FileCheck %s
// RUN: not moe-opt --split-input-file --verify-diagnostics %s 2>&1 \
// RUN:   | FileCheck %s --check-prefix=VERIFY
// RUN: sed -n '/^func.func @transpose/,/^}/p' %s > %t.mlir
// RUN: not moe-compile %t.mlir -o %t.o 2>&1 | FileCheck %s --check-prefix=COMPILE
// RUN: not moe-opt - < %t.mlir 2>&1 | FileCheck %s --check-prefix=STDIN
// RUN: sed -n '/^func.func @broadcast/,/^}/p' %s | not moe-opt 2>&1 \
// RUN:   | FileCheck %s --check-prefix=BROADCAST
// RUN: sed -n '/^func.func @reduce/,/^}/p' %s | not moe-opt 2>&1 \
// RUN:   | FileCheck %s --check-prefix=REDUCE

// The first chunk's errors, and nothing of the chunks after it.
// CHECK: error: custom op 'linalg.transpose' expected integer value
// CHECK-NOT: linalg.broadcast
// CHECK-NOT: linalg.reduce
// VERIFY: error: custom op 'linalg.transpose' expected integer value
// COMPILE: error: custom op 'linalg.transpose' expected integer value
// BROADCAST: error: custom op 'linalg.broadcast' expected integer value
// REDUCE: error: expected ']'
// STDIN: <stdin>:2:{{[0-9]+}}: error: custom op 'linalg.transpose' expected integer value

func.func @transpose(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %r = linalg.transpose ins(%a : tensor<2x3xf32>) outs(%b : tensor<3x2xf32>) permutation = [1, x]
  return %r : tensor<3x2xf32>
}

// -----

func.func @broadcast(%a: tensor<3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %r = linalg.broadcast ins(%a : tensor<3xf32>) outs(%b : tensor<2x3xf32>) dimensions = [y]
  return %r : tensor<2x3xf32>
}

// -----

func.func @reduce(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<3xf32> {
  %r = linalg.reduce ins(%a : tensor<2x3xf32>) outs(%b : tensor<3xf32>) dimensions = [0 1]
    (%x: f32, %y: f32) {
      %s = arith.addf %x, %y : f32
      linalg.yield %s : f32
    }
  return %r : tensor<3xf32>
}
