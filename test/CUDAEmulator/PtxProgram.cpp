//===- PtxProgram.cpp - Parse PTX text into decoded kernels ---------------===//
//
// Reads the PTX that LLVM's NVPTX back end and MLIR's inline assembly emit:
// `.entry` kernels, their `.reg`, `.shared` and `.local` declarations, and
// statements with `{ }` scopes (inline assembly declares registers and
// labels of its own inside them).
//
//===----------------------------------------------------------------------===//

#include "PtxProgram.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ptxemu {

/// parseProgram before its error is made printable.
static std::unique_ptr<Program> parseText(const std::string &text,
                                          std::string &error);

unsigned typeBytes(Type type) {
  switch (type) {
  case Type::B8:
  case Type::U8:
  case Type::S8:
    return 1;
  case Type::B16:
  case Type::U16:
  case Type::S16:
  case Type::F16:
  case Type::BF16:
    return 2;
  case Type::B32:
  case Type::U32:
  case Type::S32:
  case Type::F32:
  case Type::BF16x2:
  case Type::F16x2:
    return 4;
  case Type::B64:
  case Type::U64:
  case Type::S64:
  case Type::F64:
    return 8;
  default:
    return 0;
  }
}
bool isSigned(Type type) {
  return type == Type::S8 || type == Type::S16 || type == Type::S32 ||
         type == Type::S64;
}
bool isFloat(Type type) {
  return type == Type::F16 || type == Type::BF16 || type == Type::F32 ||
         type == Type::F64 || type == Type::BF16x2 || type == Type::F16x2;
}

namespace {

/// Bounds on what a kernel declares (the interpreter allocates them).
constexpr unsigned kMaxRegisters = 1 << 20;
constexpr uint64_t kMaxVariableBytes = uint64_t{1} << 24;

bool parseType(const std::string &s, Type &type) {
  static const std::map<std::string, Type> types = {
      {"pred", Type::Pred},     {"b8", Type::B8},       {"b16", Type::B16},
      {"b32", Type::B32},       {"b64", Type::B64},     {"u8", Type::U8},
      {"u16", Type::U16},       {"u32", Type::U32},     {"u64", Type::U64},
      {"s8", Type::S8},         {"s16", Type::S16},     {"s32", Type::S32},
      {"s64", Type::S64},       {"f16", Type::F16},     {"bf16", Type::BF16},
      {"bf16x2", Type::BF16x2}, {"f16x2", Type::F16x2}, {"f32", Type::F32},
      {"f64", Type::F64}};
  auto it = types.find(s);
  if (it == types.end())
    return false;
  type = it->second;
  return true;
}

std::string trim(const std::string &s) {
  size_t b = 0, e = s.size();
  while (b < e && isspace(static_cast<unsigned char>(s[b])))
    ++b;
  while (e > b && isspace(static_cast<unsigned char>(s[e - 1])))
    --e;
  return s.substr(b, e - b);
}

std::vector<std::string> splitTopLevel(const std::string &s, char sep) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string current;
  for (char c : s) {
    if (c == '[' || c == '{' || c == '(')
      ++depth;
    if (c == ']' || c == '}' || c == ')')
      --depth;
    if (c == sep && depth == 0) {
      parts.push_back(trim(current));
      current.clear();
      continue;
    }
    current += c;
  }
  if (!trim(current).empty())
    parts.push_back(trim(current));
  return parts;
}

/// Comments become spaces (line numbers are kept).
std::string stripComments(const std::string &text) {
  std::string out = text;
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '"') {
      size_t j = out.find('"', i + 1);
      i = j == std::string::npos ? out.size() : j;
      continue;
    }
    if (out[i] == '/' && out[i + 1] == '/') {
      while (i < out.size() && out[i] != '\n')
        out[i++] = ' ';
    } else if (out[i] == '/' && out[i + 1] == '*') {
      size_t j = i;
      while (j + 1 < out.size() && !(out[j] == '*' && out[j + 1] == '/')) {
        if (out[j] != '\n')
          out[j] = ' ';
        ++j;
      }
      for (size_t k = j; k < j + 2 && k < out.size(); ++k)
        out[k] = ' ';
      i = j + 1;
    }
  }
  return out;
}

struct Statement {
  std::string text;
  unsigned line;
  std::vector<int> scopes; // innermost last
};

struct KernelParser {
  Kernel &kernel;
  std::string &error;
  // Register names: per scope, name -> slot; "%r" ranges are names too.
  std::vector<std::map<std::string, int>> registerScopes;
  std::map<std::string, std::vector<std::pair<int, int>>> ranges; // prefix
  std::map<std::pair<int, std::string>, int> labels; // (scope, name) -> pc
  std::map<std::string, Variable> variables;
  std::map<std::string, unsigned> params;
  std::vector<std::pair<size_t, std::pair<std::vector<int>, std::string>>>
      pendingBranches;
  unsigned currentLine = 0;

  bool fail(const std::string &message) {
    if (error.empty())
      error = "line " + std::to_string(currentLine) + ": " + message;
    return false;
  }

  int newSlot() { return static_cast<int>(kernel.registers++); }

  int lookupRegister(const std::string &name) {
    for (auto it = registerScopes.rbegin(); it != registerScopes.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end())
        return found->second;
    }
    // %r12 from a `.reg .b32 %r<N>` range.
    size_t digits = name.size();
    while (digits > 0 && isdigit(static_cast<unsigned char>(name[digits - 1])))
      --digits;
    if (digits == name.size() || digits == 0)
      return -1;
    auto range = ranges.find(name.substr(0, digits));
    if (range == ranges.end())
      return -1;
    long index = std::strtol(name.c_str() + digits, nullptr, 10);
    for (auto [base, count] : range->second)
      if (index < count)
        return base + static_cast<int>(index);
    return -1;
  }

  bool declareRegisters(const std::string &rest) {
    // ".b32 %r<107>" or ".pred p" or ".b32 %a, %b"
    std::istringstream in(rest);
    std::string type;
    in >> type;
    std::string names;
    std::getline(in, names);
    for (const std::string &n : splitTopLevel(names, ',')) {
      size_t open = n.find('<');
      if (open != std::string::npos) {
        int count = std::atoi(n.c_str() + open + 1);
        if (count < 0 || kernel.registers + count > kMaxRegisters)
          return fail("too many registers");
        std::string prefix = trim(n.substr(0, open));
        ranges[prefix].push_back({static_cast<int>(kernel.registers), count});
        kernel.registers += count;
      } else {
        if (kernel.registers + 1 > kMaxRegisters)
          return fail("too many registers");
        registerScopes.back()[trim(n)] = newSlot();
      }
    }
    return true;
  }

  bool declareVariable(const std::string &statement, Space space,
                       bool dynamic = false) {
    // ".shared .align 16 .b8 name[1024]" (or without a size)
    std::istringstream in(statement);
    std::string word;
    Variable v;
    v.space = space;
    unsigned elementBytes = 1;
    while (in >> word) {
      if (word == ".align") {
        in >> v.align;
      } else if (word[0] == '.') {
        Type t;
        if (parseType(word.substr(1), t))
          elementBytes = typeBytes(t);
      } else {
        size_t open = word.find('[');
        v.name = word.substr(0, open);
        uint64_t count = 1;
        if (open != std::string::npos)
          count = std::strtoull(word.c_str() + open + 1, nullptr, 10);
        if (count > kMaxVariableBytes)
          return fail("a variable of more than 16 MiB");
        v.bytes = count * elementBytes;
      }
    }
    if (v.name.empty())
      return fail("a variable without a name");
    if (v.align == 0)
      v.align = 1;
    if (v.align > 4096)
      return fail("an alignment above 4096");
    if (dynamic) {
      v.dynamic = true;
      variables[v.name] = v;
      return true;
    }
    uint64_t &end =
        space == Space::Shared ? kernel.staticShared : kernel.localBytes;
    if (end + v.bytes + v.align > kMaxVariableBytes)
      return fail("more than 16 MiB of variables");
    end = (end + v.align - 1) / v.align * v.align;
    v.offset = end;
    end += v.bytes;
    variables[v.name] = v;
    return true;
  }

  bool parseOperand(const std::string &textIn, Operand &operand) {
    std::string text = trim(textIn);
    if (text.empty())
      return fail("an empty operand");
    if (text[0] == '{') {
      operand.kind = Operand::Vec;
      for (const std::string &e :
           splitTopLevel(text.substr(1, text.size() - 2), ',')) {
        Operand element;
        if (!parseOperand(e, element))
          return false;
        operand.elements.push_back(element);
      }
      return true;
    }
    if (text[0] == '[') {
      operand.kind = Operand::Mem;
      std::string inner = trim(text.substr(1, text.size() - 2));
      std::vector<std::string> parts = splitTopLevel(inner, ',');
      if (parts.size() == 2) { // a tensor map and its coordinates
        Operand coordinates;
        if (!parseOperand(parts[1], coordinates))
          return false;
        operand.elements = coordinates.elements;
        inner = parts[0];
      }
      std::string base = inner;
      int64_t offset = 0;
      size_t plus = inner.find_first_of("+-", 1);
      if (plus != std::string::npos) {
        base = trim(inner.substr(0, plus));
        // "+16", "-4" and LLVM's "+-4".
        const char *digits = inner.c_str() + plus;
        bool negative = false;
        while (*digits == '+' || *digits == '-' ||
               isspace(static_cast<unsigned char>(*digits)))
          negative ^= *digits++ == '-';
        offset = std::strtoll(digits, nullptr, 0);
        if (negative)
          offset = -offset;
      }
      operand.imm = static_cast<uint64_t>(offset);
      if (isdigit(static_cast<unsigned char>(base[0]))) {
        operand.imm += std::strtoull(base.c_str(), nullptr, 0);
        return true;
      }
      int slot = lookupRegister(base);
      if (slot >= 0) {
        operand.reg = slot;
        return true;
      }
      auto param = params.find(base);
      if (param != params.end()) {
        operand.symbolBase = true;
        operand.symbolSpace = Space::Param;
        operand.imm += param->second;
        return true;
      }
      auto variable = variables.find(base);
      if (variable != variables.end()) {
        operand.symbolBase = true;
        operand.symbolSpace = variable->second.space;
        operand.dynamicSymbol = variable->second.dynamic;
        operand.imm += variable->second.offset;
        return true;
      }
      return fail("unknown address base '" + base + "'");
    }
    if (text[0] == '%') {
      static const std::map<std::string, Special> specials = {
          {"%tid.x", Special::TidX},
          {"%tid.y", Special::TidY},
          {"%tid.z", Special::TidZ},
          {"%ntid.x", Special::NtidX},
          {"%ntid.y", Special::NtidY},
          {"%ntid.z", Special::NtidZ},
          {"%ctaid.x", Special::CtaidX},
          {"%ctaid.y", Special::CtaidY},
          {"%ctaid.z", Special::CtaidZ},
          {"%nctaid.x", Special::NctaidX},
          {"%nctaid.y", Special::NctaidY},
          {"%nctaid.z", Special::NctaidZ},
          {"%laneid", Special::LaneId},
          {"%warpid", Special::WarpId},
          {"%cluster_ctarank", Special::ClusterCtaRank},
          {"%cluster_nctarank", Special::ClusterNCtaRank},
          {"%cluster_ctaid.x", Special::ClusterCtaIdX},
          {"%cluster_ctaid.y", Special::ClusterCtaIdY},
          {"%cluster_ctaid.z", Special::ClusterCtaIdZ},
          {"%cluster_nctaid.x", Special::ClusterNCtaIdX},
          {"%cluster_nctaid.y", Special::ClusterNCtaIdY},
          {"%cluster_nctaid.z", Special::ClusterNCtaIdZ},
          {"%clusterid.x", Special::ClusterIdX},
          {"%clusterid.y", Special::ClusterIdY},
          {"%clusterid.z", Special::ClusterIdZ},
          {"%nclusterid.x", Special::NClusterIdX},
          {"%nclusterid.y", Special::NClusterIdY},
          {"%nclusterid.z", Special::NClusterIdZ}};
      auto special = specials.find(text);
      if (special != specials.end()) {
        operand.kind = Operand::Special;
        operand.special = special->second;
        return true;
      }
    }
    if (text.size() > 2 && text[0] == '0' &&
        (text[1] == 'f' || text[1] == 'F')) {
      operand.kind = Operand::Imm;
      operand.imm = std::strtoull(text.c_str() + 2, nullptr, 16);
      return true;
    }
    if (text.size() > 2 && text[0] == '0' &&
        (text[1] == 'd' || text[1] == 'D')) {
      operand.kind = Operand::Imm;
      operand.imm = std::strtoull(text.c_str() + 2, nullptr, 16);
      return true;
    }
    if (isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-') {
      operand.kind = Operand::Imm;
      operand.imm =
          static_cast<uint64_t>(std::strtoll(text.c_str(), nullptr, 0));
      if (text[0] != '-' && text.size() > 2 && text[1] == 'x')
        operand.imm = std::strtoull(text.c_str(), nullptr, 16);
      else if (text[0] != '-')
        operand.imm = std::strtoull(text.c_str(), nullptr, 10);
      return true;
    }
    if (text == "_") {
      operand.kind = Operand::Sink;
      return true;
    }
    int slot = lookupRegister(text);
    if (slot >= 0) {
      operand.kind = Operand::Reg;
      operand.reg = slot;
      return true;
    }
    auto variable = variables.find(text);
    if (variable != variables.end()) {
      operand.kind = Operand::Symbol;
      operand.symbolSpace = variable->second.space;
      operand.dynamicSymbol = variable->second.dynamic;
      operand.imm = variable->second.offset;
      return true;
    }
    auto param = params.find(text);
    if (param != params.end()) {
      operand.kind = Operand::Symbol;
      operand.symbolSpace = Space::Param;
      operand.imm = param->second;
      return true;
    }
    return fail("unknown operand '" + text + "'");
  }

  bool decode(const Statement &statement) {
    currentLine = statement.line;
    std::string text = statement.text;
    Instruction inst;
    inst.line = statement.line;
    if (text[0] == '@') {
      size_t space = text.find_first_of(" \t\r\n");
      if (space == std::string::npos)
        return fail("a guard without an instruction");
      std::string guard = text.substr(1, space - 1);
      inst.guardNegated = guard[0] == '!';
      if (inst.guardNegated)
        guard = guard.substr(1);
      inst.guard = lookupRegister(guard);
      if (inst.guard < 0)
        return fail("unknown predicate '" + guard + "'");
      text = trim(text.substr(space));
    }
    size_t space = text.find_first_of(" \t\r\n");
    std::string opcode = text.substr(0, space);
    std::string rest =
        space == std::string::npos ? "" : trim(text.substr(space));
    inst.text = opcode;
    std::vector<std::string> parts;
    {
      std::string part;
      std::istringstream in(opcode);
      while (std::getline(in, part, '.'))
        parts.push_back(part);
    }
    const std::string &base = parts[0];
    std::vector<Type> types;
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string &m = parts[i];
      Type t;
      if (parseType(m, t)) {
        types.push_back(t);
        continue;
      }
      static const std::map<std::string, Space> spaces = {
          {"global", Space::Global},
          {"shared", Space::Shared},
          {"local", Space::Local},
          {"param", Space::Param},
          {"shared::cta", Space::Shared},
          {"shared::cluster", Space::SharedCluster}};
      auto sp = spaces.find(m);
      if (sp != spaces.end() && inst.space == Space::Generic)
        inst.space = sp->second;
      static const std::map<std::string, Cmp> cmps = {
          {"eq", Cmp::Eq},   {"ne", Cmp::Ne},   {"lt", Cmp::Lt},
          {"le", Cmp::Le},   {"gt", Cmp::Gt},   {"ge", Cmp::Ge},
          {"equ", Cmp::Equ}, {"neu", Cmp::Neu}, {"ltu", Cmp::Ltu},
          {"leu", Cmp::Leu}, {"gtu", Cmp::Gtu}, {"geu", Cmp::Geu},
          {"num", Cmp::Num}, {"nan", Cmp::Nan}, {"lo", Cmp::Lt},
          {"ls", Cmp::Le},   {"hi", Cmp::Gt},   {"hs", Cmp::Ge}};
      auto cmp = cmps.find(m);
      if (cmp != cmps.end() && base == "setp")
        inst.cmp = cmp->second;
      static const std::map<std::string, Round> rounds = {
          {"rn", Round::Rn},   {"rz", Round::Rz},   {"rm", Round::Rm},
          {"rp", Round::Rp},   {"rni", Round::Rni}, {"rzi", Round::Rzi},
          {"rmi", Round::Rmi}, {"rpi", Round::Rpi}};
      auto round = rounds.find(m);
      if (round != rounds.end())
        inst.round = round->second;
      if (m == "sat")
        inst.saturate = true;
      if (m == "ftz")
        inst.ftz = true;
      if (m == "wide")
        inst.wide = true;
      if (m == "hi")
        inst.hi = true;
      if (m == "NaN")
        inst.nanMinMax = true;
      if (m == "v2")
        inst.vector = 2;
      if (m == "v4")
        inst.vector = 4;
      if (m.size() == 2 && m[1] == 'd' &&
          isdigit(static_cast<unsigned char>(m[0])))
        inst.dims = m[0] - '0';
      if (m.size() > 4 && m[0] == 'm' && m.find('n') != std::string::npos &&
          m.find('k') != std::string::npos)
        inst.shapeN = std::atoi(m.c_str() + m.find('n') + 1);
    }
    if (!types.empty())
      inst.type = types.front();
    static const std::map<std::string, Op> simple = {
        {"add", Op::Add},      {"sub", Op::Sub},
        {"mul", Op::Mul},      {"mad", Op::Mad},
        {"div", Op::Div},      {"rem", Op::Rem},
        {"min", Op::Min},      {"max", Op::Max},
        {"neg", Op::Neg},      {"abs", Op::Abs},
        {"and", Op::And},      {"or", Op::Or},
        {"xor", Op::Xor},      {"not", Op::Not},
        {"shl", Op::Shl},      {"shr", Op::Shr},
        {"bfe", Op::Bfe},      {"prmt", Op::Prmt},
        {"mov", Op::Mov},      {"copysign", Op::Copysign},
        {"selp", Op::Selp},    {"setp", Op::Setp},
        {"cvt", Op::Cvt},      {"cvta", Op::Cvta},
        {"fma", Op::Fma},      {"rcp", Op::Rcp},
        {"sqrt", Op::Sqrt},    {"rsqrt", Op::Rsqrt},
        {"ex2", Op::Ex2},      {"lg2", Op::Lg2},
        {"ld", Op::Ld},        {"st", Op::St},
        {"bra", Op::Bra},      {"ret", Op::Ret},
        {"exit", Op::Exit},    {"fence", Op::Fence},
        {"membar", Op::Fence}, {"atom", Op::Atom},
        {"red", Op::Red}};
    auto found = simple.find(base);
    if (found != simple.end()) {
      inst.op = found->second;
    } else if (opcode == "bar.warp.sync") {
      inst.op = Op::WarpSync;
    } else if (opcode == "setmaxnreg.inc.sync.aligned.u32" ||
               opcode == "setmaxnreg.dec.sync.aligned.u32") {
      inst.op = Op::SetMaxNReg;
      inst.increase = parts[1] == "inc";
    } else if (opcode.rfind("barrier.cluster.", 0) == 0) {
      // barrier.cluster.arrive{.relaxed}{.aligned}, .wait{.aligned}.
      bool aligned = parts.back() == "aligned";
      size_t named = parts.size() - (aligned ? 1 : 0);
      if (named < 3) {
        return fail("unsupported instruction '" + opcode + "'");
      } else if (named == 3 && parts[2] == "wait") {
        inst.op = Op::ClusterWait;
      } else if (parts[2] == "arrive" &&
                 (named == 3 || (named == 4 && parts[3] == "relaxed"))) {
        inst.op = Op::ClusterArrive;
        inst.relaxed = named == 4;
      } else {
        return fail("unsupported instruction '" + opcode + "'");
      }
    } else if (base == "bar" || base == "barrier") {
      inst.op = Op::BarSync;
    } else if (base == "mapa" && parts.size() <= 3 &&
               (parts.back() == "u32" || parts.back() == "u64") &&
               (parts.size() == 2 || parts[1] == "shared::cluster")) {
      inst.op = Op::Mapa;
    } else if (base == "mbarrier" && parts.size() > 1) {
      const std::string &what = parts[1];
      if (what == "init")
        inst.op = Op::MbarInit;
      else if (what == "arrive" &&
               opcode.find("expect_tx") != std::string::npos)
        inst.op = Op::MbarArriveExpectTx;
      else if (what == "arrive")
        inst.op = Op::MbarArrive;
      else if (what == "try_wait" || what == "test_wait")
        inst.op = Op::MbarTryWait;
      else if (what == "inval")
        inst.op = Op::MbarInval;
      else
        return fail("unsupported instruction '" + opcode + "'");
    } else if (opcode == "cp.async.ca.shared.global" ||
               opcode == "cp.async.cg.shared.global") {
      inst.op = Op::CpAsync;
    } else if (opcode.rfind("cp.async.mbarrier.arrive.", 0) == 0 &&
               opcode.find(".shared") != std::string::npos &&
               opcode.find(".b64") != std::string::npos) {
      inst.op = Op::CpAsyncArrive;
    } else if (opcode.rfind("cp.async.bulk.tensor.", 0) == 0 &&
               opcode.find(".global.") != std::string::npos &&
               opcode.find("tile") != std::string::npos &&
               opcode.find("complete_tx::bytes") != std::string::npos) {
      inst.op = Op::TmaLoad;
      inst.multicast = opcode.find(".multicast::cluster") != std::string::npos;
    } else if (opcode == "griddepcontrol.wait") {
      inst.op = Op::GridDepWait;
    } else if (opcode == "griddepcontrol.launch_dependents") {
      inst.op = Op::GridDepLaunchDependents;
    } else if (opcode == "wgmma.fence.sync.aligned") {
      inst.op = Op::WgmmaFence;
    } else if (opcode == "wgmma.commit_group.sync.aligned") {
      inst.op = Op::WgmmaCommit;
    } else if (opcode == "wgmma.wait_group.sync.aligned") {
      inst.op = Op::WgmmaWait;
    } else if (base == "wgmma" &&
               opcode.find("mma_async") != std::string::npos &&
               opcode.find(".f32.bf16.bf16") != std::string::npos &&
               opcode.find("k16") != std::string::npos) {
      inst.op = Op::Wgmma;
    } else if (opcode ==
                   "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" ||
               opcode == "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32") {
      inst.op = Op::MmaSync;
      inst.sourceType =
          opcode.find("bf16") != std::string::npos ? Type::BF16 : Type::F16;
    } else if (parts.size() == 4 && base == "shfl" && parts[1] == "sync" &&
               (parts[2] == "up" || parts[2] == "down" || parts[2] == "bfly" ||
                parts[2] == "idx") &&
               parts[3] == "b32") {
      inst.op = Op::Shfl;
      inst.shuffleMode = parts[2];
    } else {
      return fail("unsupported instruction '" + opcode + "'");
    }
    // prmt's modes (f4e, b4e, rc8, ecl, ecr, rc16) are not modelled.
    if (inst.op == Op::Prmt && parts.size() != 2)
      return fail("unsupported instruction '" + opcode + "'");
    if (inst.op == Op::Cvt && types.size() == 2) {
      // f16x2 packs two f16 as bf16x2 packs two bf16.
      inst.type = types[0];
      inst.sourceType = types[1];
    }
    if (inst.op == Op::Atom || inst.op == Op::Red) {
      for (size_t i = 1; i < parts.size(); ++i)
        if (parts[i] == "add" || parts[i] == "max" || parts[i] == "min" ||
            parts[i] == "exch" || parts[i] == "cas")
          inst.atomOp = parts[i];
      if (inst.atomOp.empty() ||
          (inst.op == Op::Red &&
           (inst.atomOp == "exch" || inst.atomOp == "cas")))
        return fail("unsupported instruction '" + opcode + "'");
      inst.type = types.empty() ? Type::None : types.back();
      if (typeBytes(inst.type) == 0)
        return fail("'" + opcode + "' with no type");
    }
    if (inst.op == Op::Bra) {
      std::string label = rest;
      pendingBranches.push_back(
          {kernel.code.size(), {statement.scopes, label}});
    } else if (!rest.empty()) {
      for (const std::string &o : splitTopLevel(rest, ',')) {
        Operand operand;
        // shfl.sync's "d|p": the value and the predicate, as a vector.
        size_t bar = o.find('|');
        if (inst.op == Op::Shfl && inst.operands.empty() &&
            bar != std::string::npos) {
          operand.kind = Operand::Vec;
          for (const std::string &e : {o.substr(0, bar), o.substr(bar + 1)}) {
            Operand element;
            if (!parseOperand(e, element))
              return false;
            operand.elements.push_back(element);
          }
        } else if (!parseOperand(o, operand)) {
          return false;
        }
        inst.operands.push_back(operand);
      }
    }
    if (inst.op != Op::Bra && !checkOperands(inst))
      return false;
    kernel.code.push_back(std::move(inst));
    return true;
  }

  /// Whether `inst` has the operands the interpreter reads.
  bool checkOperands(const Instruction &inst) {
    size_t least = 0, most = 8;
    switch (inst.op) {
    case Op::Ret:
    case Op::Exit:
    case Op::Fence:
    case Op::WgmmaFence:
    case Op::WgmmaCommit:
    case Op::GridDepWait:
    case Op::GridDepLaunchDependents:
    case Op::Nop:
      most = 0;
      break;
    case Op::BarSync:
      most = 2;
      break;
    case Op::MbarInval:
    case Op::WgmmaWait:
    case Op::CpAsyncArrive:
      least = most = 1;
      break;
    case Op::CpAsync:
      least = 3, most = 4;
      break;
    case Op::MbarArrive:
      least = 1, most = 3;
      break;
    case Op::MbarArriveExpectTx:
      least = 2, most = 3;
      break;
    case Op::Neg:
    case Op::Abs:
    case Op::Not:
    case Op::Mov:
    case Op::Cvta:
    case Op::Rcp:
    case Op::Sqrt:
    case Op::Rsqrt:
    case Op::Ex2:
    case Op::Lg2:
    case Op::Ld:
    case Op::St:
    case Op::MbarInit:
      least = most = 2;
      break;
    case Op::Cvt:
      least = 2, most = 3;
      break;
    case Op::MbarTryWait:
      least = 3, most = 4;
      break;
    case Op::Mad:
    case Op::Fma:
    case Op::Bfe:
    case Op::Prmt:
    case Op::Selp:
    case Op::MmaSync:
      least = most = 4;
      break;
    case Op::Atom:
      least = 3, most = 4;
      break;
    case Op::Red:
      least = most = 2;
      break;
    case Op::TmaLoad:
      least = most = inst.multicast ? 4 : 3;
      break;
    case Op::ClusterArrive:
    case Op::ClusterWait:
      most = 0;
      break;
    case Op::Wgmma:
      least = most = 8;
      break;
    case Op::Shfl:
      least = most = 5;
      break;
    case Op::WarpSync:
    case Op::SetMaxNReg:
      least = most = 1;
      break;
    default:
      least = most = 3;
    }
    if (inst.operands.size() < least || inst.operands.size() > most)
      return fail("'" + inst.text + "' with " +
                  std::to_string(inst.operands.size()) + " operands");
    if (inst.op == Op::Cvt &&
        (inst.type == Type::BF16x2 || inst.type == Type::F16x2) !=
            (inst.operands.size() == 3))
      return fail("'" + inst.text + "' with the wrong operands");
    // `_` only discards a part of a vector that mov unpacks.
    for (size_t i = 0; i < inst.operands.size(); ++i) {
      const Operand &o = inst.operands[i];
      bool sinkAllowed = inst.op == Op::Mov && i == 0 && o.kind == Operand::Vec;
      // ... and mbarrier.arrive's state, which a remote arrival has none of.
      bool stateSink =
          (inst.op == Op::MbarArrive || inst.op == Op::MbarArriveExpectTx) &&
          i == 0 && inst.operands.size() > 1;
      if ((o.kind == Operand::Sink && !stateSink) ||
          (!sinkAllowed && std::any_of(o.elements.begin(), o.elements.end(),
                                       [](const Operand &e) {
                                         return e.kind == Operand::Sink;
                                       })))
        return fail("'" + inst.text + "' with '_' where a value is needed");
    }
    if (inst.op == Op::Shfl) {
      const Operand &d = inst.operands[0];
      if (d.kind != Operand::Reg &&
          (d.kind != Operand::Vec || d.elements.size() != 2 ||
           d.elements[0].kind != Operand::Reg ||
           d.elements[1].kind != Operand::Reg))
        return fail("'" + inst.text + "' with the wrong operands");
    }
    if (inst.op == Op::Red &&
        (inst.operands[0].kind != Operand::Mem ||
         (inst.operands[1].kind == Operand::Vec) != (inst.vector > 1) ||
         (inst.vector > 1 && (inst.operands[1].elements.size() != inst.vector ||
                              inst.atomOp != "add" || inst.type != Type::F32))))
      return fail("'" + inst.text + "' with the wrong operands");
    if (inst.op == Op::Ld || inst.op == Op::St) {
      const Operand &data = inst.operands[inst.op == Op::Ld ? 0 : 1];
      bool vector = data.kind == Operand::Vec;
      if (vector != (inst.vector > 1) ||
          (vector && data.elements.size() != inst.vector) ||
          inst.operands[inst.op == Op::Ld ? 1 : 0].kind != Operand::Mem)
        return fail("'" + inst.text + "' with the wrong operands");
    }
    return true;
  }

  bool parseBody(const std::string &body, unsigned firstLine) {
    registerScopes.emplace_back();
    std::vector<int> scopes = {0};
    int nextScope = 1;
    std::vector<Statement> statements;
    std::string current;
    unsigned line = firstLine, startLine = firstLine;
    auto atStart = [&] { return trim(current).empty(); };
    // Statements, scope braces and labels, in order; labels resolve later.
    for (size_t i = 0; i < body.size(); ++i) {
      char c = body[i];
      if (c == '\n')
        ++line;
      if (atStart()) {
        if (isspace(static_cast<unsigned char>(c)))
          continue;
        startLine = line;
        if (c == '{') {
          scopes.push_back(nextScope++);
          statements.push_back({"{", line, scopes});
          continue;
        }
        if (c == '}') {
          statements.push_back({"}", line, scopes});
          if (scopes.size() > 1)
            scopes.pop_back();
          continue;
        }
        // A label: an identifier and one ':'.
        size_t j = i;
        while (j < body.size() &&
               (isalnum(static_cast<unsigned char>(body[j])) ||
                body[j] == '_' || body[j] == '$'))
          ++j;
        if (j > i && j < body.size() && body[j] == ':' &&
            (j + 1 >= body.size() || body[j + 1] != ':')) {
          statements.push_back({body.substr(i, j - i) + ":", line, scopes});
          i = j;
          continue;
        }
      }
      if (c == ';') {
        // An empty statement (";;") is nothing.
        if (!trim(current).empty())
          statements.push_back({trim(current), startLine, scopes});
        current.clear();
        continue;
      }
      current += c;
    }
    if (!atStart())
      return fail("a statement without ';' at the end of '" + kernel.name +
                  "'");
    // Declarations and instructions.
    std::vector<int> active = {0};
    for (const Statement &s : statements) {
      currentLine = s.line;
      if (s.text == "{") {
        registerScopes.emplace_back();
        continue;
      }
      if (s.text == "}") {
        if (registerScopes.size() > 1)
          registerScopes.pop_back();
        continue;
      }
      if (s.text.back() == ':') {
        std::string name = s.text.substr(0, s.text.size() - 1);
        labels[{s.scopes.back(), name}] = static_cast<int>(kernel.code.size());
        continue;
      }
      if (s.text.rfind(".reg", 0) == 0) {
        if (!declareRegisters(s.text.substr(4)))
          return false;
        continue;
      }
      if (s.text.rfind(".shared", 0) == 0) {
        if (!declareVariable(s.text.substr(7), Space::Shared))
          return false;
        continue;
      }
      if (s.text.rfind(".local", 0) == 0) {
        if (!declareVariable(s.text.substr(6), Space::Local))
          return false;
        continue;
      }
      if (s.text.rfind(".pragma", 0) == 0)
        continue;
      if (s.text[0] == '.')
        return fail("unsupported directive '" + s.text.substr(0, 24) + "'");
      if (!decode(s))
        return false;
    }
    for (auto &[index, where] : pendingBranches) {
      auto &[chain, label] = where;
      int target = -1;
      for (auto it = chain.rbegin(); it != chain.rend() && target < 0; ++it) {
        auto found = labels.find({*it, label});
        if (found != labels.end())
          target = found->second;
      }
      if (target < 0) {
        currentLine = kernel.code[index].line;
        return fail("unknown label '" + label + "'");
      }
      kernel.code[index].target = target;
    }
    // The window: the reserved 1 KiB, the static variables, then the
    // dynamic memory at the `.extern` arrays' alignment (at least 16).
    kernel.staticShared += kSharedReserved;
    uint64_t align = 16;
    for (const auto &[name, v] : variables)
      if (v.dynamic)
        align = std::max(align, v.align);
    kernel.dynamicShared = (kernel.staticShared + align - 1) / align * align;
    for (Instruction &inst : kernel.code)
      for (Operand &o : inst.operands)
        if ((o.kind == Operand::Symbol || o.symbolBase) &&
            o.symbolSpace == Space::Shared)
          o.imm += o.dynamicSymbol ? kernel.dynamicShared : kSharedReserved;
    return true;
  }
};

} // namespace

std::string printable(const std::string &message) {
  std::string out;
  for (unsigned char c : message) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      continue;
    }
    char escaped[8];
    std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
    out += escaped;
  }
  return out;
}

std::unique_ptr<Program> parseProgram(const std::string &text,
                                      std::string &error) {
  std::unique_ptr<Program> program = parseText(text, error);
  error = printable(error);
  return program;
}

static std::unique_ptr<Program> parseText(const std::string &textIn,
                                          std::string &error) {
  std::string text = stripComments(textIn);
  auto program = std::make_unique<Program>();
  // Module-level `.extern .shared` arrays: every kernel's dynamic memory.
  std::vector<std::string> externs;
  for (size_t e = text.find(".extern"); e != std::string::npos;
       e = text.find(".extern", e + 1)) {
    size_t end = text.find(';', e);
    std::string declaration = trim(text.substr(e + 7, end - e - 7));
    if (declaration.rfind(".shared", 0) != 0) {
      error = "unsupported module-level declaration '.extern " +
              declaration.substr(0, 24) + "'";
      return nullptr;
    }
    externs.push_back(declaration.substr(7));
  }
  size_t at = 0;
  while ((at = text.find(".entry", at)) != std::string::npos) {
    unsigned line = 1 + static_cast<unsigned>(
                            std::count(text.begin(), text.begin() + at, '\n'));
    size_t nameStart = at + 6;
    while (nameStart < text.size() &&
           isspace(static_cast<unsigned char>(text[nameStart])))
      ++nameStart;
    size_t open = text.find('(', nameStart);
    size_t close = text.find(')', open);
    size_t bodyOpen = text.find('{', close);
    if (open == std::string::npos || close == std::string::npos ||
        bodyOpen == std::string::npos) {
      error = "line " + std::to_string(line) + ": a malformed .entry";
      return nullptr;
    }
    auto kernel = std::make_unique<Kernel>();
    kernel->name = trim(text.substr(nameStart, open - nameStart));
    // Performance directives between the parameters and the body: the
    // threads .maxntid allows (x, y, z; those not given are 1).
    std::string directives = text.substr(close + 1, bodyOpen - close - 1);
    if (size_t bound = directives.find(".maxntid");
        bound != std::string::npos) {
      uint64_t product = 1;
      bool valid = true;
      unsigned given = 0;
      for (const std::string &dim :
           splitTopLevel(directives.substr(bound + 8), ',')) {
        std::string digits = trim(dim);
        size_t end = 0;
        while (end < digits.size() &&
               isdigit(static_cast<unsigned char>(digits[end])))
          ++end;
        if (end == 0 || end > 5 || ++given > 3) {
          valid = false;
          break;
        }
        product *= std::stoul(digits.substr(0, end));
        if (end < digits.size())
          break; // the next directive follows this number
      }
      if (!valid || product == 0 || product > 1024) {
        error = "line " + std::to_string(line) + ": a malformed .maxntid of '" +
                kernel->name + "'";
        return nullptr;
      }
      kernel->maxThreads = static_cast<unsigned>(product);
    }
    KernelParser parser{*kernel, error, {}, {}, {}, {}, {}, {}, line};
    for (const std::string &declaration : externs)
      if (!parser.declareVariable(declaration, Space::Shared, /*dynamic=*/true))
        return nullptr;
    // Parameters: ".param .u64 .ptr .align 1 name" or ".param .align 8 .b8
    // name[16]".
    for (const std::string &p :
         splitTopLevel(text.substr(open + 1, close - open - 1), ',')) {
      if (trim(p).empty())
        continue;
      std::istringstream in(p);
      std::string word, name;
      unsigned bytes = 0, align = 1, count = 1;
      while (in >> word) {
        Type t;
        if (word == ".align") {
          in >> align;
        } else if (word[0] == '.' && parseType(word.substr(1), t)) {
          bytes = typeBytes(t);
        } else if (word[0] != '.') {
          size_t bracket = word.find('[');
          name = word.substr(0, bracket);
          if (bracket != std::string::npos)
            count =
                static_cast<unsigned>(std::atoi(word.c_str() + bracket + 1));
        }
      }
      if (align < bytes)
        align = bytes;
      if (bytes == 0 || name.empty()) {
        error = "line " + std::to_string(line) + ": a parameter of '" +
                kernel->name + "' without a type or a name";
        return nullptr;
      }
      if (align == 0 || align > 4096 || count > 4096 ||
          kernel->paramTotal > 65536) {
        error = "line " + std::to_string(line) + ": a parameter of '" +
                kernel->name + "' out of range";
        return nullptr;
      }
      unsigned offset = (kernel->paramTotal + align - 1) / align * align;
      kernel->paramOffsets.push_back(offset);
      kernel->paramBytes.push_back(bytes * count);
      kernel->paramTotal = offset + bytes * count;
      parser.params[name] = offset;
    }
    // The body: to the brace that closes the one that opens it.
    int depth = 0;
    size_t end = bodyOpen;
    for (; end < text.size(); ++end) {
      if (text[end] == '{')
        ++depth;
      if (text[end] == '}' && --depth == 0)
        break;
    }
    if (end >= text.size()) {
      error = "line " + std::to_string(line) + ": '" + kernel->name +
              "' has no closing brace";
      return nullptr;
    }
    unsigned bodyLine =
        line + static_cast<unsigned>(std::count(text.begin() + at,
                                                text.begin() + bodyOpen, '\n'));
    if (!parser.parseBody(text.substr(bodyOpen + 1, end - bodyOpen - 1),
                          bodyLine))
      return nullptr;
    program->kernels[kernel->name] = std::move(kernel);
    at = end;
  }
  if (program->kernels.empty()) {
    error = "no .entry kernel in the PTX";
    return nullptr;
  }
  return program;
}

} // namespace ptxemu
