//===- ShapeChecker.cpp - Symbolic shape checks for verifiers -------------===//

#include "ShapeChecker.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe::detail;

std::string
mlir::moe::detail::formatSpec(llvm::ArrayRef<llvm::StringRef> dims) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "[";
  llvm::interleaveComma(dims, os);
  os << "]";
  return text;
}

void ShapeChecker::fix(llvm::StringRef symbol, int64_t size,
                       llvm::StringRef source) {
  known[symbol] = Known{size, source.str()};
}

int64_t ShapeChecker::get(llvm::StringRef symbol) const {
  auto it = known.find(symbol);
  return it == known.end() ? ShapedType::kDynamic : it->second.size;
}

LogicalResult
ShapeChecker::checkOptional(llvm::StringRef operand, Value value,
                            llvm::ArrayRef<llvm::StringRef> dims) {
  return value ? check(operand, value.getType(), dims) : success();
}

LogicalResult ShapeChecker::check(llvm::StringRef operand, Type type,
                                  llvm::ArrayRef<llvm::StringRef> dims) {
  auto tensor = llvm::dyn_cast<ShapedType>(type);
  if (!tensor || !tensor.hasRank() ||
      tensor.getRank() != static_cast<int64_t>(dims.size()))
    return op->emitOpError()
           << "'" << operand << "' must have shape " << formatSpec(dims)
           << " (rank " << dims.size() << "), got " << type;
  for (auto [index, symbol] : llvm::enumerate(dims)) {
    int64_t actual = tensor.getDimSize(index);
    int64_t literal;
    bool isLiteral = !symbol.getAsInteger(10, literal);
    if (ShapedType::isDynamic(actual)) {
      if (isLiteral || staticSymbols.contains(symbol))
        return op->emitOpError()
               << "'" << operand << "' dimension " << index << " (" << symbol
               << ") must be static, got " << type;
      continue;
    }
    if (isLiteral) {
      if (actual != literal)
        return op->emitOpError()
               << "'" << operand << "' dimension " << index << " must be "
               << literal << ", got " << actual << " in " << type;
      continue;
    }
    if (actual < 1 && positiveSymbols.contains(symbol))
      return op->emitOpError()
             << "'" << operand << "' dimension " << index << " (" << symbol
             << ") must be at least 1, got " << actual;
    auto it = known.find(symbol);
    if (it == known.end() || ShapedType::isDynamic(it->second.size)) {
      fix(symbol, actual, operand);
      continue;
    }
    if (it->second.size != actual)
      return op->emitOpError()
             << "'" << operand << "' dimension " << index << " (" << symbol
             << ") is " << actual << ", expected " << it->second.size
             << " from " << it->second.source;
  }
  return success();
}
