//===- ManifestGlobal.cpp - The module manifest as a JSON global ----------===//

#include "ManifestGlobal.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr llvm::StringLiteral kManifestSymbol = "moe_module_manifest";

llvm::json::Array toJson(ArrayRef<int64_t> shape) {
  llvm::json::Array array;
  for (int64_t size : shape)
    array.push_back(ShapedType::isDynamic(size) ? int64_t(-1) : size);
  return array;
}

/// The JSON object of argument `index` of entry `entry`, or null; const
/// when `manifest` is.
template <typename JsonValue>
auto findArg(JsonValue &manifest, StringRef entry, unsigned index)
    -> decltype(manifest.getAsObject()) {
  auto *root = manifest.getAsObject();
  auto *entries = root ? root->getArray("entries") : nullptr;
  if (!entries)
    return nullptr;
  for (auto &value : *entries) {
    auto *object = value.getAsObject();
    if (!object || object->getString("name") != entry)
      continue;
    auto *args = object->getArray("args");
    if (!args || index >= args->size())
      return nullptr;
    return (*args)[index].getAsObject();
  }
  return nullptr;
}

} // namespace

FailureOr<std::optional<llvm::json::Value>> moe::readManifest(ModuleOp module) {
  auto global = module.lookupSymbol<LLVM::GlobalOp>(kManifestSymbol);
  if (!global)
    return std::optional<llvm::json::Value>();
  auto text = llvm::dyn_cast_or_null<StringAttr>(global.getValueOrNull());
  if (!text)
    return global.emitError("the module manifest is not a string");
  StringRef json = text.getValue();
  json.consume_back(StringRef("\0", 1));
  llvm::Expected<llvm::json::Value> value = llvm::json::parse(json);
  if (!value)
    return global.emitError() << "the module manifest is not JSON: "
                              << llvm::toString(value.takeError());
  return std::optional<llvm::json::Value>(std::move(*value));
}

void moe::writeManifest(ModuleOp module, const llvm::json::Value &manifest) {
  std::string text;
  llvm::raw_string_ostream(text) << manifest;
  text.push_back('\0');
  if (Operation *old = module.lookupSymbol(kManifestSymbol))
    old->erase();
  OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
  auto type = LLVM::LLVMArrayType::get(builder.getI8Type(), text.size());
  LLVM::GlobalOp::create(builder, module.getLoc(), type, /*isConstant=*/true,
                         LLVM::Linkage::External, kManifestSymbol,
                         builder.getStringAttr(text));
}

llvm::json::Object moe::describePacking(StringRef function,
                                        ArrayRef<int64_t> sourceShape) {
  return llvm::json::Object{{"symbol", ("_mlir_ciface_" + function).str()},
                            {"shape", toJson(sourceShape)}};
}

bool moe::isManifestWeight(const llvm::json::Value &manifest, StringRef entry,
                           unsigned index) {
  const llvm::json::Object *arg = findArg(manifest, entry, index);
  return arg && arg->getString("kind") == "weight";
}

void moe::recordPacking(llvm::json::Value &manifest, StringRef entry,
                        unsigned index, ArrayRef<int64_t> packedShape,
                        StringRef function, ArrayRef<int64_t> sourceShape) {
  llvm::json::Object *arg = findArg(manifest, entry, index);
  if (!arg)
    return;
  (*arg)["shape"] = toJson(packedShape);
  (*arg)["packing"] = describePacking(function, sourceShape);
}
