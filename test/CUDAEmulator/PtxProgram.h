//===- PtxProgram.h - Parsed PTX kernels for the emulator -------*- C++ -*-===//
//
// A kernel as the interpreter runs it: its parameters, its shared and local
// variables, and its instructions decoded once (opcode, types, modifiers and
// operands resolved to register slots, immediates and addresses).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_CUDAEMULATOR_PTXPROGRAM_H
#define MOE_TEST_CUDAEMULATOR_PTXPROGRAM_H

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ptxemu {

/// Scalar types by their PTX suffix.
enum class Type : uint8_t {
  None,
  Pred,
  B8,
  B16,
  B32,
  B64,
  U8,
  U16,
  U32,
  U64,
  S8,
  S16,
  S32,
  S64,
  F16,
  BF16,
  BF16x2,
  F16x2,
  F32,
  F64
};
unsigned typeBytes(Type type);
bool isSigned(Type type);
bool isFloat(Type type);

/// SharedCluster: an address in the cluster's shared memory (a CTA's own
/// shared::cta addresses are shared::cluster addresses of its own memory).
enum class Space : uint8_t {
  Generic,
  Global,
  Shared,
  SharedCluster,
  Local,
  Param
};

/// Special registers.
enum class Special : uint8_t {
  TidX,
  TidY,
  TidZ,
  NtidX,
  NtidY,
  NtidZ,
  CtaidX,
  CtaidY,
  CtaidZ,
  NctaidX,
  NctaidY,
  NctaidZ,
  LaneId,
  WarpId,
  // Thread block clusters: the CTA's rank and position in its cluster, the
  // cluster's position in the grid, and their extents.
  ClusterCtaRank,
  ClusterNCtaRank,
  ClusterCtaIdX,
  ClusterCtaIdY,
  ClusterCtaIdZ,
  ClusterNCtaIdX,
  ClusterNCtaIdY,
  ClusterNCtaIdZ,
  ClusterIdX,
  ClusterIdY,
  ClusterIdZ,
  NClusterIdX,
  NClusterIdY,
  NClusterIdZ
};

struct Operand {
  /// Sink: `_`, a part of a vector unpack that is not kept.
  enum Kind : uint8_t {
    None,
    Reg,
    Imm,
    Special,
    Symbol,
    Mem,
    Vec,
    Sink
  } kind = None;
  int32_t reg = -1; // Reg; Mem's base register (or -1)
  uint64_t imm = 0; // Imm (bits); Mem's offset; Symbol's address
  ptxemu::Special special = ptxemu::Special::TidX;
  Space symbolSpace = Space::Generic; // Symbol and Mem on a symbol
  bool symbolBase = false;            // Mem based on a symbol
  bool dynamicSymbol = false; // an `.extern .shared` array: dynamic memory
  std::vector<Operand> elements;      // Vec; Mem's tensor coordinates
};

enum class Op : uint16_t {
  Add,
  Sub,
  Mul,
  Mad,
  Div,
  Rem,
  Min,
  Max,
  Neg,
  Abs,
  And,
  Or,
  Xor,
  Not,
  Shl,
  Shr,
  Bfe,
  /// prmt.b32 in its default mode: each byte of the result picked from
  /// the 8 bytes of b:a by a selector nibble of c (bit 3: the byte's sign
  /// replicated).
  Prmt,
  Copysign,
  Mov,
  Selp,
  Setp,
  Cvt,
  Cvta,
  Fma,
  Rcp,
  Sqrt,
  Rsqrt,
  Ex2,
  Lg2,
  Ld,
  St,
  Bra,
  Ret,
  Exit,
  BarSync,
  MbarInit,
  MbarArriveExpectTx,
  MbarArrive,
  MbarTryWait,
  MbarInval,
  Fence,
  TmaLoad,
  /// cp.async.{ca,cg}.shared.global [dst], [src], cp-size{, src-size}: a
  /// copy of cp-size bytes, src-size of them read (the rest zeros).
  CpAsync,
  /// cp.async.mbarrier.arrive{.noinc}: an arrival on the mbarrier once the
  /// thread's earlier cp.async copies landed (.noinc: one of the expected
  /// arrivals; else it leaves the count as it was).
  CpAsyncArrive,
  WgmmaFence,
  WgmmaCommit,
  WgmmaWait,
  Wgmma,
  MmaSync,
  Shfl,
  /// bar.warp.sync: the lanes its mask names wait for each other; the
  /// stores each made before it are ordered before what each does after.
  WarpSync,
  Atom,
  Red, // atom without its result; .v2/.v4 of f32 add element by element
  /// griddepcontrol.wait: the grids before this one have completed (a
  /// programmatic launch touches no global memory before it).
  GridDepWait,
  /// griddepcontrol.launch_dependents: the next grid may start.
  GridDepLaunchDependents,
  /// setmaxnreg.{inc,dec}.sync.aligned.u32 n: the warpgroup's registers
  /// per thread become n, taken from (or given back to) the block's pool
  /// (an increase waits until the pool holds them).
  SetMaxNReg,
  /// mapa{.shared::cluster}.{u32,u64} d, a, rank: the address of what `a`
  /// addresses in the shared memory of the cluster's CTA `rank`.
  Mapa,
  /// barrier.cluster.arrive{.relaxed}{.aligned}: the thread arrives at the
  /// cluster's barrier (.relaxed: releasing nothing).
  ClusterArrive,
  /// barrier.cluster.wait{.aligned}: waits until every thread of the
  /// cluster has arrived in the phase of its last arrival.
  ClusterWait,
  Nop
};

/// How a compare or a rounding is asked for.
enum class Cmp : uint8_t {
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  Equ,
  Neu,
  Ltu,
  Leu,
  Gtu,
  Geu,
  Num,
  Nan
};
enum class Round : uint8_t { Default, Rn, Rz, Rm, Rp, Rni, Rzi, Rmi, Rpi };

struct Instruction {
  Op op = Op::Nop;
  Type type = Type::None;       // the operation's (destination) type
  Type sourceType = Type::None; // cvt's source; mma.sync's inputs
  Space space = Space::Generic;
  Cmp cmp = Cmp::Eq;
  Round round = Round::Default;
  bool saturate = false, ftz = false, wide = false, hi = false;
  bool nanMinMax = false; // min/max.NaN
  unsigned vector = 1;    // ld/st .v2/.v4
  unsigned dims = 0;      // TMA tensor rank
  unsigned shapeN = 0;    // wgmma's N
  std::string atomOp;     // atom's operation
  std::string shuffleMode; // shfl.sync's: up, down, bfly or idx
  bool increase = false;   // setmaxnreg.inc (else .dec)
  bool relaxed = false;    // barrier.cluster.arrive.relaxed
  bool multicast = false;  // a TMA load's .multicast::cluster
  int32_t guard = -1;     // predicate slot, or -1
  bool guardNegated = false;
  int32_t target = -1; // branch target (instruction index)
  std::vector<Operand> operands;
  unsigned line = 0; // in the PTX text, for errors
  std::string text;  // the opcode as written, for errors
};

struct Variable {
  std::string name;
  Space space;
  uint64_t align = 1, bytes = 0;
  uint64_t offset = 0; // in its space's window (shared) or the thread's
                       // local frame
  bool dynamic = false; // `.extern .shared name[]`: the dynamic memory
};

struct Kernel {
  std::string name;
  std::vector<unsigned> paramOffsets, paramBytes;
  unsigned paramTotal = 0;
  unsigned registers = 0; // slots
  /// The threads .maxntid allows a block (their product; 0: no bound).
  unsigned maxThreads = 0;
  std::vector<Instruction> code;
  uint64_t staticShared = 0; // the window's end of static shared variables
  uint64_t dynamicShared = 0; // where the launch's dynamic memory starts
  uint64_t localBytes = 0;
};

/// Where the shared window's static variables start: the 1 KiB that sm_90
/// reserves comes first, as in ptxas's layout.
constexpr uint64_t kSharedReserved = 1024;

struct Program {
  std::map<std::string, std::unique_ptr<Kernel>> kernels;
};

/// `message` with bytes outside printable ASCII as \xNN (errors quote the
/// PTX, which may hold anything).
std::string printable(const std::string &message);

/// Parses PTX text; on failure returns null and sets `error` to one line.
std::unique_ptr<Program> parseProgram(const std::string &text,
                                      std::string &error);

} // namespace ptxemu

#endif
