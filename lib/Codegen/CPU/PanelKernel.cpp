//===- PanelKernel.cpp - Outer-product kernel over packed weights ---------===//

#include "PanelKernel.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

#include "llvm/ADT/bit.h"

#include <cmath>
#include <numeric>

using namespace mlir;
using namespace mlir::moe::cpu;

/// Accumulator sets a one-row tile splits K over when it has fewer
/// accumulators than this: enough independent FMA chains to cover the FMA
/// latency.
static constexpr int64_t kMinIndependentAccumulators = 8;

PanelKernelEmitter::PanelKernelEmitter(OpBuilder &b, Location loc,
                                       int64_t vectorWidth, int64_t tileRows,
                                       Value input, ValueRange weights,
                                       Value output, Value depth,
                                       bool dotInstruction, bool byteLookup)
    : KernelBuilder(b, loc), tileRows(tileRows), input(input), output(output),
      depth(depth), weights(weights.begin(), weights.end()),
      dotInstruction(dotInstruction) {
  auto weightType = llvm::cast<MemRefType>(weights.front().getType());
  panelColumns = weightType.getDimSize(3);
  // Vectors that tile a panel exactly.
  lanes = std::gcd(panelColumns, vectorWidth);
  vectorsPerPanel = panelColumns / lanes;
  accType = VectorType::get({lanes}, b.getF32Type());
  zero = constant(0);
  e2m1 = isE2M1Pairs(weightType.getElementType());
  pairs = weightType.getRank() == 5 || e2m1;
  // vdpbf16ps has 4, 8 or 16 f32 lanes; panels that split into other
  // vectors take the FMA form.
  this->dotInstruction =
      dotInstruction && (lanes == 4 || lanes == 8 || lanes == 16);
  // vpermi2b looks bytes up in 128-byte tables, vpermw words in 32-word
  // ones: 512-bit vectors (e4m3 bytes; e2m1 codes as words).
  this->byteLookup = byteLookup && lanes == 16 && !e2m1;
  wordLookup = byteLookup && lanes == 16 && e2m1;
  lanePermuted = this->byteLookup && vectorsPerPanel % 2 == 0;
  bf16Halves = weightType.getRank() == 4 &&
               weightType.getElementType().isBF16() &&
               vectorsPerPanel % 2 == 0 && lanes % 2 == 0;
  if (pairs) {
    // [E, NP, KP, P, 2] as [E, NP, KP, 2P]: a row of pairs is one run
    // (as e2m1 pairs are).
    if (!e2m1)
      for (Value &weight : this->weights)
        weight = memref::CollapseShapeOp::create(
            b, loc, weight,
            ArrayRef<ReassociationIndices>{{0}, {1}, {2}, {3, 4}});
    wholePairs = arith::DivUIOp::create(b, loc, depth, constant(2));
    oddDepth = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::ne,
        arith::AndIOp::create(b, loc, depth, constant(1)), zero);
  }
}

void PanelKernelEmitter::setBlockScales(ValueRange blockScales,
                                        ArrayRef<int64_t> block) {
  scales.assign(blockScales.begin(), blockScales.end());
  blockColumns = block[0];
  blockDepth = block[1];
  // Per-column scales in panels: read as vectors, in column order (so not
  // with the byte lookup's lane order).
  packedScales =
      llvm::cast<MemRefType>(scales.front().getType()).getRank() == 4;
  if (packedScales)
    byteLookup = lanePermuted = false;
  bf16Halves = false;
  // In pairs, by widening: a row block of many rows decodes its panels
  // into bf16 pairs once. Byte lookups are cheap enough to repeat per tile
  // (they measured faster than staging at every T).
  if (!pairs || byteLookup || wordLookup)
    return;
  Value pairsWithTail = memref::DimOp::create(b, loc, weights.front(), 2);
  // Every panel of the weights (the tile's columns), staged for one expert
  // at a time and kept while consecutive row blocks are that expert's.
  Value panels = memref::DimOp::create(b, loc, weights.front(), 1);
  auto type = MemRefType::get(
      {ShapedType::kDynamic, ShapedType::kDynamic, panelColumns},
      b.getI32Type());
  for (size_t w = 0; w < weights.size(); ++w)
    staging.push_back(memref::AllocOp::create(
        b, loc, type, ValueRange{panels, pairsWithTail}));
  // (Heap, not stack: an alloca would keep the parallel loop's
  // alloca_scope, which must be inlined before its loops become blocks.)
  stagedExpert =
      memref::AllocOp::create(b, loc, MemRefType::get({1}, b.getIndexType()));
  memref::StoreOp::create(b, loc, constant(-1), stagedExpert, ValueRange{zero});
}

Value PanelKernelEmitter::scaleFactor(Value scale, Value panel,
                                      Value depthBlock, int64_t j) {
  if (packedScales)
    return vector::TransferReadOp::create(
        b, loc, accType, scale,
        ValueRange{expert, panel, depthBlock, constant(j * lanes)},
        arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0)),
        ArrayRef<bool>{true});
  // The panel's block of columns (P divides BN).
  Value columnBlock = arith::DivUIOp::create(
      b, loc, panel, constant(blockColumns / panelColumns));
  return vector::BroadcastOp::create(
      b, loc, accType,
      memref::LoadOp::create(b, loc, scale,
                             ValueRange{expert, columnBlock, depthBlock}));
}

void PanelKernelEmitter::finish() {
  for (Value buffer : staging)
    memref::DeallocOp::create(b, loc, buffer);
  if (stagedExpert)
    memref::DeallocOp::create(b, loc, stagedExpert);
}

/// The bf16 bits of the e4m3 magnitude `m` (7 bits): every e4m3 value is
/// a bf16 one, so these are exact; 0x7F is NaN.
static uint16_t bf16BitsOfE4M3Magnitude(unsigned m) {
  if (m == 0x7F)
    return 0x7FC0;
  unsigned exponent = m >> 3, mantissa = m & 7;
  // Subnormals: mantissa x 2^-9; normals: (1 + mantissa/8) x 2^(e - 7).
  float value = exponent == 0
                    ? std::ldexp(static_cast<float>(mantissa), -9)
                    : std::ldexp(1.0f + mantissa / 8.0f,
                                 static_cast<int>(exponent) - 7);
  return static_cast<uint16_t>(llvm::bit_cast<uint32_t>(value) >> 16);
}

Value PanelKernelEmitter::lookupE2M1Pairs(Value words) {
  auto wordsType = llvm::cast<VectorType>(words.getType());
  auto halvesType = VectorType::get({2 * lanes}, b.getI16Type());
  auto splat = [&](int32_t v) {
    return createScalarOrSplatConstant(b, loc, wordsType, v);
  };
  // The byte at the bottom of the low half and at bits 12-19: the high
  // half's bottom 4 bits are the high nibble. vpermw reads the bottom 5
  // bits of each half: the low half's fifth bit (the high nibble's first)
  // is ignored by a table that repeats its 16 entries.
  Value codes = arith::OrIOp::create(
      b, loc, words, arith::ShLIOp::create(b, loc, words, splat(12)));
  // The bf16 bits of each code (exact: every e2m1 value is a bf16 one),
  // entry i that of code i mod 16.
  SmallVector<int16_t, 32> entries;
  for (unsigned code = 0; code < 2 * static_cast<unsigned>(lanes); ++code) {
    float magnitude = code % 8 < 2 ? 0.5f * (code % 8)
                                   : std::ldexp(1.0f + 0.5f * (code % 2),
                                                static_cast<int>(code % 8) / 2 -
                                                    1);
    float value = code & 8 ? -magnitude : magnitude;
    entries.push_back(static_cast<int16_t>(
        llvm::bit_cast<uint32_t>(value) >> 16));
  }
  Value table = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(halvesType, ArrayRef<int16_t>(entries)));
  // vpermw: word i is table[index[i] & 31].
  Value bf16 = LLVM::CallIntrinsicOp::create(
                   b, loc, halvesType,
                   b.getStringAttr("llvm.x86.avx512.permvar.hi.512"),
                   ValueRange{table, vector::BitCastOp::create(
                                         b, loc, halvesType, codes)})
                   .getResult(0);
  return vector::BitCastOp::create(
      b, loc, VectorType::get({2 * lanes}, b.getBF16Type()), bf16);
}

std::pair<Value, Value> PanelKernelEmitter::lookupBf16Bytes(Value bytes) {
  auto type = VectorType::get({64}, b.getI8Type());
  // Four 64-byte tables: the high and the low bytes of the 128 magnitudes.
  auto table = [&](bool highByte, unsigned half) {
    SmallVector<int8_t, 64> entries;
    for (unsigned m = 64 * half; m < 64 * (half + 1); ++m) {
      uint16_t bits = bf16BitsOfE4M3Magnitude(m);
      entries.push_back(static_cast<int8_t>(highByte ? bits >> 8 : bits));
    }
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(type, ArrayRef<int8_t>(entries)));
  };
  auto splat = [&](int8_t v) {
    return createScalarOrSplatConstant(b, loc, type, v);
  };
  // vpermi2b: byte i is table[index[i] & 127], bit 6 choosing the second
  // half.
  auto lookup = [&](bool highByte, Value index) -> Value {
    return LLVM::CallIntrinsicOp::create(
               b, loc, type,
               b.getStringAttr("llvm.x86.avx512.vpermi2var.qi.512"),
               ValueRange{table(highByte, 0), index, table(highByte, 1)})
        .getResult(0);
  };
  Value magnitude = arith::AndIOp::create(b, loc, bytes, splat(0x7F));
  Value sign = arith::AndIOp::create(b, loc, bytes,
                                     splat(static_cast<int8_t>(0x80)));
  Value high = arith::OrIOp::create(b, loc, lookup(true, magnitude), sign);
  return {high, lookup(false, magnitude)};
}

SmallVector<Value> PanelKernelEmitter::decodePairs(Value weight, Value panel,
                                                   Value pair) {
  Type f8 = llvm::cast<MemRefType>(weight.getType()).getElementType();
  auto bf16Type = VectorType::get({2 * lanes}, b.getBF16Type());
  if (e2m1) {
    // A byte per column holds its pair: each nibble's f32 (exact, its low
    // half zero) gives the bf16 of its half of the 32-bit lane; or, with
    // `wordLookup`, each nibble moved to the bottom of its half and the
    // halves looked up in a table of the 16 bf16 values (vpermw).
    auto wordsType = VectorType::get({lanes}, b.getI32Type());
    auto splat = [&](int32_t v) {
      return createScalarOrSplatConstant(b, loc, wordsType, v);
    };
    Value padding = arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0));
    SmallVector<Value> vectors;
    for (int64_t j = 0; j < vectorsPerPanel; ++j) {
      Value bytes = vector::TransferReadOp::create(
          b, loc, VectorType::get({lanes}, b.getI8Type()), weight,
          ValueRange{expert, panel, pair, constant(j * lanes)}, padding,
          ArrayRef<bool>{true});
      Value words = arith::ExtUIOp::create(b, loc, wordsType, bytes);
      if (wordLookup) {
        vectors.push_back(lookupE2M1Pairs(words));
        continue;
      }
      auto bitsOf = [&](Value codes) -> Value {
        return arith::BitcastOp::create(b, loc, wordsType,
                                        buildE2M1ToF32(b, loc, codes));
      };
      Value even = arith::ShRUIOp::create(b, loc, bitsOf(words), splat(16));
      Value odd = arith::AndIOp::create(
          b, loc, bitsOf(arith::ShRUIOp::create(b, loc, words, splat(4))),
          splat(static_cast<int32_t>(0xFFFF0000u)));
      vectors.push_back(vector::BitCastOp::create(
          b, loc, bf16Type, arith::OrIOp::create(b, loc, even, odd)));
    }
    return vectors;
  }
  Value padding = arith::ConstantOp::create(b, loc, b.getZeroAttr(f8));
  auto read = [&](int64_t bytes, int64_t offset) -> Value {
    return vector::TransferReadOp::create(
        b, loc, VectorType::get({bytes}, f8), weight,
        ValueRange{expert, panel, pair, constant(offset)}, padding,
        ArrayRef<bool>{true});
  };
  SmallVector<Value> vectors;
  if (!byteLookup) {
    // Widened to f32 (exact), whose high half is the bf16.
    auto wideType = VectorType::get({2 * lanes}, b.getI32Type());
    Value sixteen = createScalarOrSplatConstant(b, loc, wideType, 16);
    for (int64_t j = 0; j < vectorsPerPanel; ++j) {
      Value f32 = arith::ExtFOp::create(
          b, loc, VectorType::get({2 * lanes}, b.getF32Type()),
          read(2 * lanes, 2 * j * lanes));
      Value words = arith::ShRUIOp::create(
          b, loc, arith::BitcastOp::create(b, loc, wideType, f32), sixteen);
      vectors.push_back(arith::BitcastOp::create(
          b, loc, bf16Type,
          arith::TruncIOp::create(
              b, loc, VectorType::get({2 * lanes}, b.getI16Type()), words)));
    }
    return vectors;
  }
  // 64 bytes (two vectors of 16 pairs) per lookup; a panel of 16 columns
  // repeats its 32 bytes to fill the lookup's register.
  auto bytesType = VectorType::get({64}, b.getI8Type());
  for (int64_t j = 0; j < vectorsPerPanel; j += 2) {
    int64_t count = std::min<int64_t>(2, vectorsPerPanel - j);
    Value bytes = read(32 * count, 32 * j);
    if (count == 1) {
      SmallVector<int64_t, 64> twice;
      for (int64_t i = 0; i < 64; ++i)
        twice.push_back(i % 32);
      bytes = vector::ShuffleOp::create(b, loc, bytes, bytes, twice);
    }
    auto [high, low] =
        lookupBf16Bytes(vector::BitCastOp::create(b, loc, bytesType, bytes));
    // Vector v of the two: its bf16 i is low[32v + i], high[32v + i]; with
    // whole pairs of vectors, the bytes of each 128-bit lane instead
    // (vpunpcklbw, vpunpckhbw: no lane crossing), the columns in the order
    // `lanePermuted` says.
    for (int64_t v = 0; v < count; ++v) {
      SmallVector<int64_t, 64> interleave;
      for (int64_t i = 0; i < 32; ++i) {
        int64_t byte = count == 2 ? 16 * (i / 8) + 8 * v + i % 8 : 32 * v + i;
        interleave.push_back(byte);
        interleave.push_back(64 + byte);
      }
      vectors.push_back(vector::BitCastOp::create(
          b, loc, bf16Type,
          vector::ShuffleOp::create(b, loc, low, high, interleave)));
    }
  }
  return vectors;
}

void PanelKernelEmitter::stagePanel(Value panel) {
  auto wordsType = VectorType::get({lanes}, b.getI32Type());
  Value pairsWithTail = memref::DimOp::create(b, loc, staging.front(), 1);
  for (size_t w = 0; w < weights.size(); ++w)
    forLoop(zero, pairsWithTail, 1, [&](Value pair) {
      SmallVector<Value> vectors = decodePairs(weights[w], panel, pair);
      for (int64_t j = 0; j < vectorsPerPanel; ++j)
        vector::TransferWriteOp::create(
            b, loc, vector::BitCastOp::create(b, loc, wordsType, vectors[j]),
            staging[w], ValueRange{panel, pair, constant(j * lanes)},
            ArrayRef<bool>{true});
    });
}

Value PanelKernelEmitter::loadInputPair(Value row, Value pair, bool last) {
  Type element = llvm::cast<MemRefType>(input.getType()).getElementType();
  Value k = arith::MulIOp::create(b, loc, pair, constant(2));
  auto bf16Pair = VectorType::get({2}, b.getBF16Type());
  Value x;
  if (last) {
    // The odd K's last input, and a zero.
    Value scalar = memref::LoadOp::create(b, loc, input, ValueRange{row, k});
    x = vector::BroadcastOp::create(
        b, loc, VectorType::get({2}, element),
        arith::ConstantOp::create(b, loc, b.getZeroAttr(element)));
    x = vector::InsertOp::create(b, loc, scalar, x, ArrayRef<int64_t>{0});
  } else {
    x = vector::LoadOp::create(b, loc, VectorType::get({2}, element), input,
                               ValueRange{row, k});
  }
  if (!element.isBF16()) {
    if (!element.isF32())
      x = arith::ExtFOp::create(b, loc, VectorType::get({2}, b.getF32Type()),
                                x);
    x = arith::TruncFOp::create(b, loc, bf16Pair, x);
  }
  x = vector::BitCastOp::create(b, loc, VectorType::get({1}, b.getI32Type()),
                                x);
  return vector::ExtractOp::create(b, loc, x, ArrayRef<int64_t>{0});
}

void PanelKernelEmitter::emitRows(Value first, Value rows, Value columns,
                                  Value expertId) {
  firstRow = first;
  expert = expertId;
  int64_t mr = tileRows;
  Value mainRows = arith::SubIOp::create(
      b, loc, rows, arith::RemUIOp::create(b, loc, rows, constant(mr)));
  Value panels =
      arith::CeilDivUIOp::create(b, loc, columns, constant(panelColumns));
  auto tiles = [&](Value panel, bool staged) {
    auto tile = [&](Value row, int64_t count) {
      if (pairs && !scales.empty())
        emitScaledPairTile(row, panel, count, staged);
      else
        emitTile(row, panel, count);
    };
    forLoop(zero, mainRows, mr, [&](Value row) { tile(row, mr); });
    // The rest (< MR rows) as tiles of the powers of two below MR, each
    // taken when its bit is set in the count: MR = 8 leaves 4 + 2 + 1.
    Value row = mainRows;
    Value rest = arith::SubIOp::create(b, loc, rows, mainRows);
    for (int64_t h = llvm::PowerOf2Ceil(mr) / 2; h >= 1; h /= 2) {
      Value taken = arith::CmpIOp::create(
          b, loc, arith::CmpIPredicate::ne,
          arith::AndIOp::create(b, loc, rest, constant(h)), zero);
      auto ifOp = scf::IfOp::create(b, loc, taken, /*withElse=*/false);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        tile(row, h);
      }
      row = arith::SelectOp::create(b, loc, taken, add(row, constant(h)), row);
    }
  };
  auto allPanels = [&](bool staged) {
    forLoop(zero, panels, 1, [&](Value panel) { tiles(panel, staged); });
  };
  if (staging.empty())
    return allPanels(/*staged=*/false);
  // FP8 in pairs, widened: a block of more than one tile's rows multiplies
  // its expert's panels staged as bf16 pairs, staged when the previous
  // block was another expert's; fewer rows (decode) decode in registers.
  Value stage = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, rows,
                                      constant(mr));
  scf::IfOp::create(
      b, loc, stage,
      [&](OpBuilder &, Location) {
        Value staged =
            memref::LoadOp::create(b, loc, stagedExpert, ValueRange{zero});
        Value other = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                            staged, expert);
        scf::IfOp::create(b, loc, other, [&](OpBuilder &, Location) {
          Value stagedPanels =
              memref::DimOp::create(b, loc, staging.front(), 0);
          forLoop(zero, stagedPanels, 1,
                  [&](Value panel) { stagePanel(panel); });
          memref::StoreOp::create(b, loc, expert, stagedExpert,
                                  ValueRange{zero});
          scf::YieldOp::create(b, loc);
        });
        allPanels(/*staged=*/true);
        scf::YieldOp::create(b, loc);
      },
      [&](OpBuilder &, Location) {
        allPanels(/*staged=*/false);
        scf::YieldOp::create(b, loc);
      });
}

/// acc[i][w][j] += the dot products of the pair `pair` of input row i
/// with the pairs of weights[w][expert, panel, pair, j-th vector] (`last`:
/// the pair of an odd K's last input and a zero).
SmallVector<Value>
PanelKernelEmitter::pairStep(ArrayRef<std::pair<Value, Value>> rows,
                             Value panel, int64_t mr, Value pair,
                             ValueRange acc, bool last) {
  auto bf16Type = VectorType::get({2 * lanes}, b.getBF16Type());
  Value padding =
      arith::ConstantOp::create(b, loc, b.getZeroAttr(b.getBF16Type()));
  SmallVector<Value> w;
  for (Value weight : weights)
    for (int64_t j = 0; j < vectorsPerPanel; ++j)
      w.push_back(vector::TransferReadOp::create(
          b, loc, bf16Type, weight,
          ValueRange{expert, panel, pair, constant(2 * j * lanes)}, padding,
          ArrayRef<bool>{true}));
  return pairProducts(rows, w, mr, pair, acc, last);
}

SmallVector<Value>
PanelKernelEmitter::pairProducts(ArrayRef<std::pair<Value, Value>> rows,
                                 ArrayRef<Value> w, int64_t mr, Value pair,
                                 ValueRange acc, bool last) {
  Type i32 = b.getI32Type(), f32 = b.getF32Type();
  auto bf16Type = VectorType::get({2 * lanes}, b.getBF16Type());
  auto pairType = VectorType::get({lanes}, i32);
  // Without the instruction: the even-K half of a pair is its low 16 bits,
  // the odd-K half its high ones; each is an f32 with the low bits zero.
  auto halves = [&](Value words) -> std::pair<Value, Value> {
    Type type = words.getType();
    auto constantOf = [&](int32_t v) {
      return createScalarOrSplatConstant(b, loc, type, v);
    };
    Type floats = f32;
    if (auto vector = llvm::dyn_cast<VectorType>(type))
      floats = VectorType::get(vector.getShape(), f32);
    Value even = arith::ShLIOp::create(b, loc, words, constantOf(16));
    Value odd = arith::AndIOp::create(
        b, loc, words, constantOf(static_cast<int32_t>(0xFFFF0000u)));
    return {arith::BitcastOp::create(b, loc, floats, even),
            arith::BitcastOp::create(b, loc, floats, odd)};
  };
  SmallVector<std::pair<Value, Value>> wHalves;
  if (!dotInstruction)
    for (Value v : w)
      wHalves.push_back(halves(vector::BitCastOp::create(b, loc, pairType, v)));
  SmallVector<Value> next;
  for (int64_t i = 0; i < mr; ++i) {
    Value x = loadInputPair(rows[i].first, pair, last);
    if (dotInstruction) {
      Value a = vector::BitCastOp::create(
          b, loc, bf16Type, vector::BroadcastOp::create(b, loc, pairType, x));
      for (auto [j, wj] : llvm::enumerate(w))
        next.push_back(x86vector::DotBF16Op::create(
            b, loc, accType, acc[i * w.size() + j], a, wj));
      continue;
    }
    auto [even, odd] = halves(x);
    Value evenLanes = vector::BroadcastOp::create(b, loc, accType, even);
    Value oddLanes = vector::BroadcastOp::create(b, loc, accType, odd);
    for (auto [j, wj] : llvm::enumerate(wHalves)) {
      Value sum = vector::FMAOp::create(b, loc, evenLanes, wj.first,
                                        acc[i * w.size() + j]);
      next.push_back(vector::FMAOp::create(b, loc, oddLanes, wj.second, sum));
    }
  }
  return next;
}

/// acc[i][w][j] += input[row + i, k] *
///                  weights[w][expert, panel, k, j-th vector].
SmallVector<Value>
PanelKernelEmitter::step(ArrayRef<std::pair<Value, Value>> rows, Value panel,
                         int64_t mr, Value k, ValueRange acc) {
  auto weightType = llvm::cast<MemRefType>(weights.front().getType());
  Type f32 = b.getF32Type();
  SmallVector<Value> w;
  Value padding = arith::ConstantOp::create(
      b, loc, b.getZeroAttr(weightType.getElementType()));
  Value depthBlock;
  if (!scales.empty())
    depthBlock = arith::DivUIOp::create(b, loc, k, constant(blockDepth));
  // bf16 in pairs of vectors: one read of a pair's 2 x lanes bf16 as lanes
  // 32-bit words; their low halves shifted up are the even columns' f32,
  // their high halves masked the odd columns'. Two integer operations per
  // pair of vectors, where widening each vector takes a shuffle and a
  // shift (emitTile puts the columns back in order once per tile).
  auto wordsType = VectorType::get({lanes}, b.getI32Type());
  auto splat = [&](int32_t word) -> Value {
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(wordsType, b.getI32IntegerAttr(word)));
  };
  Value sixteen, highHalves;
  if (bf16Halves) {
    sixteen = splat(16);
    highHalves = splat(-65536);
  }
  for (auto [index, weight] : llvm::enumerate(weights)) {
    if (bf16Halves) {
      for (int64_t j = 0; j < vectorsPerPanel; j += 2) {
        Value pair = vector::TransferReadOp::create(
            b, loc, VectorType::get({2 * lanes}, weightType.getElementType()),
            weight, ValueRange{expert, panel, k, constant(j * lanes)}, padding,
            ArrayRef<bool>{true});
        Value words = vector::BitCastOp::create(b, loc, wordsType, pair);
        w.push_back(vector::BitCastOp::create(
            b, loc, accType, arith::ShLIOp::create(b, loc, words, sixteen)));
        w.push_back(vector::BitCastOp::create(
            b, loc, accType, arith::AndIOp::create(b, loc, words, highHalves)));
      }
      continue;
    }
    for (int64_t j = 0; j < vectorsPerPanel; ++j) {
      Value factor;
      if (!scales.empty())
        factor = scaleFactor(scales[index], panel, depthBlock, j);
      Value v = vector::TransferReadOp::create(
          b, loc, VectorType::get({lanes}, weightType.getElementType()), weight,
          ValueRange{expert, panel, k, constant(j * lanes)}, padding,
          ArrayRef<bool>{true});
      if (factor)
        v = arith::MulFOp::create(
            b, loc, arith::ExtFOp::create(b, loc, accType, v), factor);
      else if (weightType.getElementType() != f32)
        v = arith::ExtFOp::create(b, loc, accType, v);
      w.push_back(v);
    }
  }
  SmallVector<Value> next;
  for (int64_t i = 0; i < mr; ++i) {
    Value x =
        memref::LoadOp::create(b, loc, input, ValueRange{rows[i].first, k});
    if (x.getType() != f32)
      x = arith::ExtFOp::create(b, loc, f32, x);
    Value a = vector::BroadcastOp::create(b, loc, accType, x);
    for (auto [j, wj] : llvm::enumerate(w))
      next.push_back(
          vector::FMAOp::create(b, loc, a, wj, acc[i * w.size() + j]));
  }
  return next;
}

void PanelKernelEmitter::shufflePairs(SmallVectorImpl<Value> &acc,
                                      ArrayRef<int64_t> first,
                                      ArrayRef<int64_t> second) {
  for (size_t a = 0; a + 1 < acc.size(); a += 2) {
    Value x = acc[a], y = acc[a + 1];
    acc[a] = vector::ShuffleOp::create(b, loc, x, y, first);
    acc[a + 1] = vector::ShuffleOp::create(b, loc, x, y, second);
  }
}

void PanelKernelEmitter::emitTile(Value row, Value panel, int64_t mr) {
  int64_t perRow = vectorsPerPanel * static_cast<int64_t>(weights.size());
  int64_t perSet = mr * perRow;
  // Accumulator sets over which K is split (interleaved, k mod sets).
  int64_t sets = 1;
  while (perSet * sets < kMinIndependentAccumulators)
    sets *= 2;
  Value zeros = arith::ConstantOp::create(
      b, loc, accType, DenseElementsAttr::get(accType, b.getF32FloatAttr(0)));
  SmallVector<Value> init(perSet * sets, zeros);
  SmallVector<std::pair<Value, Value>> rows = inputRows(add(firstRow, row), mr);
  // In pairs the loops count whole pairs; an odd K's last input follows.
  Value depth = pairs ? wholePairs : this->depth;
  auto step = [&](Value k, ValueRange acc) {
    return pairs ? pairStep(rows, panel, mr, k, acc, /*last=*/false)
                 : this->step(rows, panel, mr, k, acc);
  };
  Value mainDepth = arith::SubIOp::create(
      b, loc, depth, arith::RemUIOp::create(b, loc, depth, constant(sets)));
  auto loop = scf::ForOp::create(
      b, loc, zero, mainDepth, constant(sets), init,
      [&](OpBuilder &, Location, Value k, ValueRange acc) {
        SmallVector<Value> next;
        for (int64_t s = 0; s < sets; ++s)
          llvm::append_range(next, step(s ? add(k, constant(s)) : k,
                                        acc.slice(s * perSet, perSet)));
        scf::YieldOp::create(b, loc, next);
      });
  // Fold the sets into the first, then the depth's remainder.
  SmallVector<Value> acc(loop.getResults().take_front(perSet));
  for (int64_t s = 1; s < sets; ++s)
    for (int64_t a = 0; a < perSet; ++a)
      acc[a] =
          arith::AddFOp::create(b, loc, acc[a], loop.getResult(s * perSet + a));
  if (sets > 1) {
    auto rest =
        scf::ForOp::create(b, loc, mainDepth, depth, constant(1), acc,
                           [&](OpBuilder &, Location, Value k, ValueRange acc) {
                             scf::YieldOp::create(b, loc, step(k, acc));
                           });
    acc.assign(rest.getResults().begin(), rest.getResults().end());
  }
  if (pairs) {
    auto last = scf::IfOp::create(
        b, loc, oddDepth,
        [&](OpBuilder &, Location) {
          scf::YieldOp::create(b, loc,
                               pairStep(rows, panel, mr, wholePairs, acc,
                                        /*last=*/true));
        },
        [&](OpBuilder &, Location) { scf::YieldOp::create(b, loc, acc); });
    acc.assign(last.getResults().begin(), last.getResults().end());
  }
  if (bf16Halves) {
    // Of each pair of vectors, the first holds columns 2i and the second
    // 2i + 1 (step): interleaved back, the first's half and the second's.
    SmallVector<int64_t, 16> first, second;
    for (int64_t c = 0; c < lanes; ++c) {
      first.push_back((c % 2 ? lanes : 0) + c / 2);
      second.push_back((c % 2 ? lanes : 0) + lanes / 2 + c / 2);
    }
    shufflePairs(acc, first, second);
  }
  writeTile(row, panel, mr, rows, acc);
}

void PanelKernelEmitter::emitScaledPairTile(Value row, Value panel,
                                            int64_t mr, bool staged) {
  int64_t perRow = vectorsPerPanel * static_cast<int64_t>(weights.size());
  int64_t perSet = mr * perRow;
  // Decoding in registers (few rows), a depth block's pairs are split over
  // accumulator sets as in emitTile.
  int64_t sets = 1;
  while (!staged && perSet * sets < kMinIndependentAccumulators)
    sets *= 2;
  Value zeros = arith::ConstantOp::create(
      b, loc, accType, DenseElementsAttr::get(accType, b.getF32FloatAttr(0)));
  SmallVector<Value> init(perSet, zeros);
  SmallVector<std::pair<Value, Value>> rows = inputRows(add(firstRow, row), mr);
  auto wordsType = VectorType::get({lanes}, b.getI32Type());
  auto bf16Type = VectorType::get({2 * lanes}, b.getBF16Type());
  Value noWord = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0));
  auto products = [&](Value pair, ValueRange acc, bool last) {
    SmallVector<Value> w;
    if (!staged) {
      for (Value weight : weights)
        llvm::append_range(w, decodePairs(weight, panel, pair));
      return pairProducts(rows, w, mr, pair, acc, last);
    }
    for (Value buffer : staging)
      for (int64_t j = 0; j < vectorsPerPanel; ++j)
        w.push_back(vector::BitCastOp::create(
            b, loc, bf16Type,
            vector::TransferReadOp::create(
                b, loc, wordsType, buffer,
                ValueRange{panel, pair, constant(j * lanes)}, noWord,
                ArrayRef<bool>{true})));
    return pairProducts(rows, w, mr, pair, acc, last);
  };
  // The sums of the whole pairs [first, end), `sets` at a time, then one
  // at a time.
  auto blockSums = [&](Value first, Value end) {
    Value count = arith::SubIOp::create(b, loc, end, first);
    Value mainEnd = arith::SubIOp::create(
        b, loc, end, arith::RemUIOp::create(b, loc, count, constant(sets)));
    SmallVector<Value> setsInit(perSet * sets, zeros);
    auto loop = scf::ForOp::create(
        b, loc, first, mainEnd, constant(sets), setsInit,
        [&](OpBuilder &, Location, Value pair, ValueRange acc) {
          SmallVector<Value> next;
          for (int64_t s = 0; s < sets; ++s)
            llvm::append_range(
                next, products(s ? add(pair, constant(s)) : pair,
                               acc.slice(s * perSet, perSet), false));
          scf::YieldOp::create(b, loc, next);
        });
    SmallVector<Value> sums(loop.getResults().take_front(perSet));
    for (int64_t s = 1; s < sets; ++s)
      for (int64_t a = 0; a < perSet; ++a)
        sums[a] = arith::AddFOp::create(b, loc, sums[a],
                                        loop.getResult(s * perSet + a));
    if (sets == 1)
      return sums;
    auto rest = scf::ForOp::create(
        b, loc, mainEnd, end, constant(1), sums,
        [&](OpBuilder &, Location, Value pair, ValueRange acc) {
          scf::YieldOp::create(b, loc, products(pair, acc, false));
        });
    return SmallVector<Value>(rest.getResults());
  };
  // Per depth block: its pairs' dot products, then times the block's scale.
  int64_t blockPairs = blockDepth / 2;
  Value blocks =
      arith::CeilDivUIOp::create(b, loc, depth, constant(blockDepth));
  Value lastBlock = arith::SubIOp::create(b, loc, blocks, constant(1));
  auto loop = scf::ForOp::create(
      b, loc, zero, blocks, constant(1), init,
      [&](OpBuilder &, Location, Value block, ValueRange acc) {
        Value first =
            arith::MulIOp::create(b, loc, block, constant(blockPairs));
        Value end =
            minIndex(b, loc, add(first, constant(blockPairs)), wholePairs);
        SmallVector<Value> sums = blockSums(first, end);
        // An odd K's last input is in the last block.
        Value tail = arith::AndIOp::create(
            b, loc, oddDepth,
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, block,
                                  lastBlock));
        auto withTail = scf::IfOp::create(
            b, loc, tail,
            [&](OpBuilder &, Location) {
              scf::YieldOp::create(b, loc, products(wholePairs, sums, true));
            },
            [&](OpBuilder &, Location) { scf::YieldOp::create(b, loc, sums); });
        SmallVector<Value> next;
        for (int64_t i = 0; i < mr; ++i)
          for (auto [w, scale] : llvm::enumerate(scales)) {
            for (int64_t j = 0; j < vectorsPerPanel; ++j) {
              Value factor = scaleFactor(scale, panel, block, j);
              int64_t a = i * perRow + w * vectorsPerPanel + j;
              next.push_back(vector::FMAOp::create(
                  b, loc, withTail.getResult(a), factor, acc[a]));
            }
          }
        scf::YieldOp::create(b, loc, next);
      });
  SmallVector<Value> acc(loop.getResults());
  if (lanePermuted) {
    // Lane d = 4l + u of a pair's first vector holds column 8l + u, of its
    // second 8l + 4 + u: back to columns in order, two shuffles of 128-bit
    // chunks per pair of accumulators.
    SmallVector<int64_t, 16> first, second;
    for (int64_t c = 0; c < 16; ++c) {
      int64_t fromSecond = (c / 4) % 2 ? 16 : 0;
      first.push_back(fromSecond + 4 * (c / 8) + c % 4);
      second.push_back(fromSecond + 4 * (2 + c / 8) + c % 4);
    }
    shufflePairs(acc, first, second);
  }
  writeTile(row, panel, mr, rows, acc);
}

void PanelKernelEmitter::writeTile(Value row, Value panel, int64_t mr,
                                   ArrayRef<std::pair<Value, Value>> rows,
                                   ArrayRef<Value> acc) {
  int64_t perRow = vectorsPerPanel * static_cast<int64_t>(weights.size());
  // Columns past N (the zero padding of the last panel) are masked off.
  Value firstColumn =
      arith::MulIOp::create(b, loc, panel, constant(panelColumns));
  for (int64_t i = 0; i < mr; ++i) {
    writeBack(add(add(firstRow, row), constant(i)), [&](Value r, Scale scale) {
      for (int64_t j = 0; j < vectorsPerPanel; ++j) {
        Value c = add(firstColumn, constant(j * lanes));
        SmallVector<Value, 2> sums;
        for (size_t w = 0; w < weights.size(); ++w)
          sums.push_back(keepValid(rows[i].second,
                                   acc[i * perRow + w * vectorsPerPanel + j]));
        Value value = combine(
            sums,
            [&]() -> Value {
              return readOutput(output, r, c, accType, /*inBounds=*/false);
            },
            scale);
        writeOutput(value, output, r, c, /*inBounds=*/false);
      }
    });
  }
}
