//===- ShapeChecker.h - Symbolic shape checks for verifiers -----*- C++ -*-===//
//
// Verifiers of the moe ops check operand shapes against symbolic specs such as
// [E, I, H]. ShapeChecker learns each symbol's size from the first operand
// that fixes it and reports, for any later disagreement, the operand, the
// dimension, the expected and the actual size and where the expectation came
// from.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_DIALECT_MOE_IR_SHAPECHECKER_H
#define MOE_LIB_DIALECT_MOE_IR_SHAPECHECKER_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <string>

namespace mlir::moe::detail {

class ShapeChecker {
public:
  explicit ShapeChecker(Operation *op) : op(op) {}

  /// Symbols that must be static wherever they appear (E, K, ...).
  void requireStatic(llvm::StringRef symbol) { staticSymbols.insert(symbol); }
  /// Symbols whose static size must be at least 1 (E, H, ...).
  void requirePositive(llvm::StringRef symbol) {
    positiveSymbols.insert(symbol);
  }
  /// Fixes `symbol` to `size`, as required by `source`.
  void fix(llvm::StringRef symbol, int64_t size, llvm::StringRef source);

  /// Checks that `type` is a ranked tensor (or memref) of shape `dims` (symbols, or
  /// decimal literals for fixed sizes). `operand` names it in diagnostics.
  LogicalResult check(llvm::StringRef operand, Type type,
                      llvm::ArrayRef<llvm::StringRef> dims);
  /// Same as `check` for an optional operand or result (null `value`: no-op).
  LogicalResult checkOptional(llvm::StringRef operand, Value value,
                              llvm::ArrayRef<llvm::StringRef> dims);

  /// The static size learned for `symbol`, or ShapedType::kDynamic.
  int64_t get(llvm::StringRef symbol) const;

private:
  struct Known {
    int64_t size;
    std::string source;
  };
  Operation *op;
  llvm::StringMap<Known> known;
  llvm::StringSet<> staticSymbols;
  llvm::StringSet<> positiveSymbols;
};

/// Formats a symbolic shape as `[E, I, H]`.
std::string formatSpec(llvm::ArrayRef<llvm::StringRef> dims);

} // namespace mlir::moe::detail

#endif // MOE_LIB_DIALECT_MOE_IR_SHAPECHECKER_H
