//===- PtxMachine.cpp - Run decoded PTX kernels on the CPU ----------------===//
//
// Each block runs its threads one at a time: a thread runs until it exits
// or must wait (bar.sync, an mbarrier phase not yet complete, a warp- or
// warpgroup-wide instruction the others have not reached), then the next
// one runs. Waits are released when their condition holds; when nothing can
// run and threads still wait, the kernel has deadlocked and the launch
// fails. Asynchronous work is modelled where its order matters: a wgmma
// reads its shared-memory operands when a wait_group retires it (so a ring
// slot overwritten too early gives wrong numbers), TMA loads land at once
// and complete their bytes on the mbarrier; cp.async copies land at once
// but, like TMA data, may be touched (by their own thread too) only once
// the mbarrier phase the thread's cp.async.mbarrier.arrive completes is
// seen (and read by the async proxy only after a fence.proxy.async of a
// thread that has seen it). The mbarrier's state lives in
// its 8 bytes of shared memory with a check pattern, so a kernel that
// overwrites a live mbarrier fails.
//
// Since the order in which threads run hides most races, the async
// proxy's hazards are checked by rule rather than by their effect: a
// thread (or a wgmma, for every thread of its warpgroup) may touch bytes a
// TMA load wrote only once it has seen the completion of the mbarrier
// phase the load completes on (by its own wait, or a bar.sync after
// another thread's), and a thread may write bytes (by a store or a TMA
// load) that a wgmma read only once it has seen the wgmma.wait_group that
// retired that wgmma. The same happens-before order covers the threads'
// own shared-memory accesses: a thread (or a wgmma, for every thread of
// its warpgroup) may read or overwrite bytes another thread stored only
// once a bar.sync or an mbarrier phase orders that store before it. Each
// thread has one vector clock: what it has seen of every thread's
// releases (its arrivals and bar.syncs) and of every warpgroup's retired
// wgmmas. Its warpgroup's wait_group advances the latter, an mbarrier
// arrival passes the thread's clock to the waiters of the phase it
// completes, and bar.sync joins the clocks of all threads.
//
// A cluster launch runs each cluster's CTAs together, as one run whose
// threads are the CTAs' threads one CTA after another and whose shared
// memory is their windows side by side: a CTA's shared::cta addresses
// name its own window; a shared::cluster address names CTA r's byte o as
// (r + 1) << 24 | o (mapa makes them; a CTA's own addresses stay valid).
// bar.sync waits for the threads of one CTA, barrier.cluster for all of
// them; mbarriers may be arrived at from other CTAs, and a multicast TMA
// load writes the same box at the same offset of each CTA its mask names,
// completing its bytes on the mbarrier at the same offset in each.
//
//===----------------------------------------------------------------------===//

#include "PtxEmulator.h"
#include "PtxProgram.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

using namespace ptxemu;

namespace {

std::mutex trackedMutex;
/// Instructions one block may run (ptxemu_set_step_limit).
uint64_t stepLimit = uint64_t{1} << 36;
std::map<uintptr_t, size_t> tracked; // device allocations: start -> bytes

/// The same bits as another type of the same size.
template <typename To, typename From> To bitCast(From from) {
  static_assert(sizeof(To) == sizeof(From), "sizes differ");
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}
/// Register bits as f32 (the low 32) or f64, and back.
float asFloat(uint64_t bits) {
  return bitCast<float>(static_cast<uint32_t>(bits));
}
uint64_t floatBits(float f) { return bitCast<uint32_t>(f); }
double asDouble(uint64_t bits) { return bitCast<double>(bits); }
uint64_t doubleBits(double d) { return bitCast<uint64_t>(d); }
/// bf16 to f32 and back (round to nearest even; NaN stays NaN).
float bf16ToFloat(uint16_t h) {
  return asFloat(static_cast<uint64_t>(h) << 16);
}
uint16_t floatToBf16(float f) {
  uint32_t b = static_cast<uint32_t>(floatBits(f));
  if (std::isnan(f))
    return static_cast<uint16_t>((b >> 16) | 0x40);
  b += 0x7FFF + ((b >> 16) & 1);
  return static_cast<uint16_t>(b >> 16);
}
float f16ToFloat(uint16_t h) {
  return static_cast<float>(bitCast<_Float16>(h));
}
uint16_t floatToF16(float f) {
  return bitCast<uint16_t>(static_cast<_Float16>(f));
}
float flush(float f) {
  return std::fpclassify(f) == FP_SUBNORMAL ? 0.0f * f : f;
}

uint64_t mask(Type type, uint64_t v) {
  unsigned bits = typeBytes(type) * 8;
  if (type == Type::Pred)
    return v & 1;
  return bits >= 64 || bits == 0 ? v : v & ((uint64_t{1} << bits) - 1);
}
int64_t signExtend(Type type, uint64_t v) {
  unsigned bits = typeBytes(type) * 8;
  if (bits >= 64 || bits == 0)
    return static_cast<int64_t>(v);
  uint64_t m = uint64_t{1} << (bits - 1);
  v &= (uint64_t{1} << bits) - 1;
  return static_cast<int64_t>((v ^ m) - m);
}

/// The stand-in's tensor map, 128 bytes.
struct TensorMap {
  uint64_t address;
  uint32_t rank, type, swizzle, oob;
  uint32_t box[5];
  uint32_t pad;
  uint64_t dims[5];
  uint64_t strides[4];
  uint64_t unused;
};
static_assert(sizeof(TensorMap) == 128, "a tensor map is 128 bytes");

unsigned tensorElementBytes(uint32_t type) {
  static const unsigned bytes[] = {1, 2, 4, 4, 8, 8, 2, 4, 8, 2, 4, 4, 4};
  return type < 13 ? bytes[type] : 0;
}

/// Shared-memory address swizzles (by the address's bits, as the hardware
/// does): 128B xors bits 4-6 with 7-9, 64B bits 4-5 with 7-8, 32B bit 4
/// with 7.
uint64_t swizzle(uint64_t address, unsigned mode128) {
  switch (mode128) {
  case 128:
    return address ^ (((address >> 7) & 7) << 4);
  case 64:
    return address ^ (((address >> 7) & 3) << 4);
  case 32:
    return address ^ (((address >> 7) & 1) << 4);
  default:
    return address;
  }
}

constexpr uint64_t kMbarMagic = 0x5A;

struct Launch {
  const Kernel *kernel;
  unsigned grid[3], block[3], dynamicShared;
  std::vector<uint8_t> params;
  /// CTAs per cluster in each dimension (cuLaunchKernelEx's cluster
  /// dimension; 1 x 1 x 1 without).
  unsigned cluster[3] = {1, 1, 1};
  /// Launched with programmatic stream serialization: the kernel before it
  /// may still run until a thread's griddepcontrol.wait.
  bool programmatic = false;
};

/// A TMA load into shared memory: its bytes may be read once the
/// mbarrier at `mbarrier` has completed more than `completions` phases and
/// the reader has seen it.
struct TmaWrite {
  uint64_t mbarrier, completions;
  unsigned line;
  /// A cp.async copy (else a TMA load): until its thread's
  /// cp.async.mbarrier.arrive, `mbarrier` is kNotArrived.
  bool copy = false;
};
constexpr uint64_t kNotArrived = ~uint64_t{0};

struct PendingWgmma {
  unsigned n;
  uint64_t descA, descB;
  bool scaleD;
  int scaleA, scaleB;
  std::vector<std::vector<int>> dSlots; // per thread of the warpgroup
  unsigned line;
  uint64_t window; // where its CTA's shared memory starts
};

enum class Wait : uint8_t { None, Barrier, Collective, Mbarrier, Cluster };

/// The bit above a shared::cluster address's offset in its CTA's window
/// (windows are at most 227 KiB); the bits above it hold the CTA's rank + 1.
constexpr unsigned kClusterRankShift = 24;

struct Failure {
  std::string message;
};

class BlockRun {
public:
  /// The cluster whose first CTA is block (bx, by, bz).
  BlockRun(const Launch &launch, unsigned bx, unsigned by, unsigned bz)
      : launch(launch), kernel(*launch.kernel) {
    ctaid[0] = bx;
    ctaid[1] = by;
    ctaid[2] = bz;
    ctas = launch.cluster[0] * launch.cluster[1] * launch.cluster[2];
    blockThreads = launch.block[0] * launch.block[1] * launch.block[2];
    threads = ctas * blockThreads;
    regs.assign(static_cast<size_t>(threads) * kernel.registers, 0);
    local.assign(static_cast<size_t>(threads) * (kernel.localBytes + 16), 0);
    dynamicStart = kernel.dynamicShared;
    window = dynamicStart + launch.dynamicShared;
    // Each CTA's window starts at a multiple of 1 KiB, as its shared::cta
    // address 0 is aligned on the GPU.
    stride =
        (window + kWindowAlignment - 1) / kWindowAlignment * kWindowAlignment;
    shared.assign(static_cast<size_t>(ctas) * stride, 0);
    registerPool.assign(ctas, 0);
    clusterArrivals.assign(threads, 0);
    clusterWaits.assign(threads, 0);
    unfenced.assign(shared.size(), -1);
    unfencedRanges.resize(threads);
    pendingCopies.resize(threads);
    tmaWriter.assign(shared.size(), -1);
    seen.resize(threads);
    groupsPerCta = (blockThreads + 127) / 128;
    groups = ctas * groupsPerCta;
    chunkReads.assign((shared.size() / 16 + 1) * groups, 0);
    issued.assign(groups, 0);
    retired.assign(groups, 0);
    wgmmaLines.resize(groups);
    releases.assign(threads, 1);
    known.assign(threads, std::make_shared<Clock>(threads + groups, 0));
    clusterArriving.assign(threads + groups, 0);
    clusterCompleted.assign(threads + groups, 0);
    storer.assign(shared.size(), -1);
    storeRelease.assign(shared.size(), 0);
    storeLine.assign(shared.size(), 0);
    pc.assign(threads, 0);
    waits.assign(threads, Wait::None);
    exited.assign(threads, false);
    gridsAwaited.assign(threads, !launch.programmatic);
    pending.resize(groups);
    open.resize(groups);
    // What ptxas gives each thread under .maxntid (the register file's
    // 64 K over the bound's warps, in steps of 8), before any setmaxnreg.
    unsigned boundWarps = (kernel.maxThreads + 31) / 32;
    registerLimit.assign(
        groups,
        boundWarps ? std::min(256u, 65536 / (boundWarps * 32) / 8 * 8) : 0);
  }

  void run();

private:
  const Launch &launch;
  const Kernel &kernel;
  unsigned ctaid[3]; // the cluster's first CTA
  // The cluster's CTAs, each CTA's threads and shared memory (its window),
  // and their totals.
  unsigned ctas, blockThreads, threads;
  // A CTA's shared memory, and where the next CTA's starts in `shared`.
  uint64_t window, stride;
  static constexpr uint64_t kWindowAlignment = 1024;
  unsigned ctaOf(unsigned thread) const { return thread / blockThreads; }
  uint64_t windowOf(unsigned thread) const { return ctaOf(thread) * stride; }
  /// Warpgroups are formed within each CTA: warpgroup `groupOf(t)` of the
  /// cluster, `groupsPerCta` to a CTA.
  unsigned groupsPerCta;
  unsigned groupOf(unsigned thread) const {
    return ctaOf(thread) * groupsPerCta + thread % blockThreads / 128;
  }
  unsigned firstOfGroup(unsigned group) const {
    return group / groupsPerCta * blockThreads + group % groupsPerCta * 128;
  }
  /// Byte `index` of `shared` and thread `thread`, as errors name them:
  /// within their CTA's, which they name in a cluster of several.
  std::string ctaName(uint64_t rank) const {
    return "block (" + std::to_string(ctaIndex(rank, 0)) + "," +
           std::to_string(ctaIndex(rank, 1)) + "," +
           std::to_string(ctaIndex(rank, 2)) + ")";
  }
  std::string sharedName(uint64_t index) const {
    return std::to_string(index % stride) +
           (ctas > 1 ? " of " + ctaName(index / stride) : "");
  }
  std::string threadName(unsigned thread) const {
    return std::to_string(thread % blockThreads) +
           (ctas > 1 ? " of " + ctaName(ctaOf(thread)) : "");
  }
  /// The shared::cluster address of byte `offset` of CTA `rank`'s window.
  static uint64_t clusterAddress(uint64_t rank, uint64_t offset) {
    return (rank + 1) << kClusterRankShift | offset;
  }
  /// CTA `rank`'s index in the grid along dimension `d`.
  unsigned ctaIndex(unsigned rank, unsigned d) const {
    const unsigned *c = launch.cluster;
    unsigned within = d == 0   ? rank % c[0]
                      : d == 1 ? rank / c[0] % c[1]
                               : rank / (c[0] * c[1]);
    return ctaid[d] + within;
  }
  // Each warpgroup's registers per thread, and the registers setmaxnreg.dec
  // gave back to its CTA's pool that no setmaxnreg.inc took yet.
  std::vector<unsigned> registerLimit;
  std::vector<int64_t> registerPool;
  // barrier.cluster: per thread, its arrivals and completed waits; the
  // phases completed, and what the threads arriving in the current phase
  // and in the last completed one released (clocks, mbarrier phases seen).
  std::vector<uint32_t> clusterArrivals, clusterWaits;
  uint32_t clusterPhases = 0;
  unsigned clusterArrived = 0;
  std::vector<uint64_t> regs;
  std::vector<uint8_t> local, shared;
  // Per thread, whether the grids before a programmatic launch are known
  // to have completed (griddepcontrol.wait; always, for another launch).
  std::vector<bool> gridsAwaited;
  // The async proxy (TMA, wgmma) sees a thread's generic stores to shared
  // memory only after that thread's fence.proxy.async: the thread whose
  // store wrote each byte and has not fenced since (-1: none), and the
  // ranges each thread wrote since its last fence.
  std::vector<int32_t> unfenced;
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> unfencedRanges;
  // Per thread, its cp.async copies (indices into tmaWrites) since its
  // last cp.async.mbarrier.arrive; and every copy's shared range, until a
  // fence.proxy.async of a thread that has seen its phase lets the async
  // proxy read it.
  std::vector<std::vector<int32_t>> pendingCopies;
  struct CopiedRange {
    uint64_t offset, bytes;
    int32_t copy;
  };
  std::vector<CopiedRange> copiedUnfenced;
  // The TMA load (an index into tmaWrites) that last wrote each byte, -1
  // for none; the phases each mbarrier has completed (by address, across
  // re-initializations); and what each thread has seen of them.
  std::vector<int32_t> tmaWriter;
  std::vector<TmaWrite> tmaWrites;
  std::map<uint64_t, uint64_t> mbarrierCompletions;
  std::vector<std::map<uint64_t, uint64_t>> seen;
  // Per warpgroup, the wgmmas it issued and retired (in order), and the
  // PTX line of each; per 16-byte chunk of shared memory and warpgroup,
  // 1 + the index of the last of its wgmmas that read the chunk (0: none).
  unsigned groups;
  std::vector<uint32_t> chunkReads, issued, retired;
  std::vector<std::vector<unsigned>> wgmmaLines;
  // Per thread, how many times it has released (an mbarrier arrival, a
  // bar.sync), and its vector clock: what it knows of each thread's
  // releases, then of each warpgroup's retired wgmmas (shared among
  // threads while they know the same; copied when one learns more); per
  // byte of shared memory, the thread whose store wrote it (-1: none or a
  // TMA load), at which of its releases, and the store's PTX line.
  using Clock = std::vector<uint32_t>;
  std::vector<uint32_t> releases;
  std::vector<std::shared_ptr<Clock>> known;
  std::vector<int32_t> storer;
  std::vector<uint32_t> storeRelease, storeLine;
  struct MbarrierClocks {
    Clock arrived, completed; // this phase's arrivals; completed phases'
  };
  std::map<uint64_t, MbarrierClocks> mbarrierClocks;
  Clock clusterArriving, clusterCompleted;
  std::map<uint64_t, uint64_t> clusterSeenArriving, clusterSeenCompleted;
  static void join(Clock &into, const Clock &from) {
    for (size_t g = 0; g < into.size() && g < from.size(); ++g)
      into[g] = std::max(into[g], from[g]);
  }
  MbarrierClocks &mbarrierClock(uint64_t address) {
    MbarrierClocks &c = mbarrierClocks[address];
    c.arrived.resize(threads + groups, 0);
    c.completed.resize(threads + groups, 0);
    return c;
  }
  /// `thread`'s clock, joined with `more` (copied first if shared).
  void learn(unsigned thread, const Clock &more) {
    const Clock &mine = *known[thread];
    for (size_t i = 0; i < mine.size(); ++i)
      if (more[i] > mine[i]) {
        auto joined = std::make_shared<Clock>(mine);
        join(*joined, more);
        known[thread] = std::move(joined);
        return;
      }
  }
  /// Whether `thread` knows of `other`'s `release`-th release.
  bool knows(unsigned thread, int32_t other, uint32_t release) const {
    return static_cast<int32_t>(thread) == other ||
           (*known[thread])[other] >= release;
  }
  uint64_t dynamicStart;
  std::vector<uint32_t> pc;
  std::vector<Wait> waits;
  std::vector<bool> exited;
  std::vector<std::vector<std::vector<PendingWgmma>>> pending; // committed
  std::vector<std::vector<PendingWgmma>> open;
  uint64_t steps = 0;

  [[noreturn]] void fail(unsigned thread, const Instruction &inst,
                         const std::string &message) {
    throw Failure{"kernel '" + kernel.name + "' " + ctaName(ctaOf(thread)) +
                  " thread " + std::to_string(thread % blockThreads) +
                  ", PTX line " + std::to_string(inst.line) + " (" + inst.text +
                  "): " + message};
  }

  uint64_t &reg(unsigned thread, int slot) {
    return regs[static_cast<size_t>(thread) * kernel.registers + slot];
  }
  uint8_t *localBase(unsigned thread) {
    return local.data() +
           static_cast<size_t>(thread) * (kernel.localBytes + 16);
  }
  uint64_t special(unsigned thread, Special s) {
    unsigned rank = ctaOf(thread), inBlock = thread % blockThreads;
    unsigned tx = inBlock % launch.block[0];
    unsigned ty = (inBlock / launch.block[0]) % launch.block[1];
    unsigned tz = inBlock / (launch.block[0] * launch.block[1]);
    const unsigned *c = launch.cluster;
    switch (s) {
    case Special::TidX:
      return tx;
    case Special::TidY:
      return ty;
    case Special::TidZ:
      return tz;
    case Special::NtidX:
      return launch.block[0];
    case Special::NtidY:
      return launch.block[1];
    case Special::NtidZ:
      return launch.block[2];
    case Special::CtaidX:
      return ctaIndex(rank, 0);
    case Special::CtaidY:
      return ctaIndex(rank, 1);
    case Special::CtaidZ:
      return ctaIndex(rank, 2);
    case Special::NctaidX:
      return launch.grid[0];
    case Special::NctaidY:
      return launch.grid[1];
    case Special::NctaidZ:
      return launch.grid[2];
    case Special::LaneId:
      return inBlock % 32;
    case Special::WarpId:
      return inBlock / 32;
    case Special::ClusterCtaRank:
      return rank;
    case Special::ClusterNCtaRank:
      return ctas;
    case Special::ClusterCtaIdX:
      return ctaIndex(rank, 0) % c[0];
    case Special::ClusterCtaIdY:
      return ctaIndex(rank, 1) % c[1];
    case Special::ClusterCtaIdZ:
      return ctaIndex(rank, 2) % c[2];
    case Special::ClusterNCtaIdX:
      return c[0];
    case Special::ClusterNCtaIdY:
      return c[1];
    case Special::ClusterNCtaIdZ:
      return c[2];
    case Special::ClusterIdX:
      return ctaid[0] / c[0];
    case Special::ClusterIdY:
      return ctaid[1] / c[1];
    case Special::ClusterIdZ:
      return ctaid[2] / c[2];
    case Special::NClusterIdX:
      return launch.grid[0] / c[0];
    case Special::NClusterIdY:
      return launch.grid[1] / c[1];
    case Special::NClusterIdZ:
      return launch.grid[2] / c[2];
    }
    return 0;
  }

  uint64_t value(unsigned thread, const Operand &o) {
    switch (o.kind) {
    case Operand::Reg:
      return reg(thread, o.reg);
    case Operand::Imm:
      return o.imm;
    case Operand::Special:
      return special(thread, o.special);
    case Operand::Symbol:
      return o.imm;
    default:
      return 0;
    }
  }
  void set(unsigned thread, const Operand &o, Type type, uint64_t v,
           const Instruction &inst) {
    if (o.kind != Operand::Reg)
      fail(thread, inst, "the destination is not a register");
    reg(thread, o.reg) = mask(type, v);
  }

  /// The host address of `bytes` at `address` of `space`, checked.
  uint8_t *resolve(unsigned thread, const Instruction &inst, Space space,
                   uint64_t address, uint64_t bytes) {
    // [address, address + bytes) within [0, size), with no wrap-around
    // (an address near 2^64 plus the access's bytes wraps to a small one).
    auto within = [&](uint64_t size) {
      return bytes <= size && address <= size - bytes;
    };
    switch (space) {
    case Space::Shared:
      if (!within(window))
        fail(thread, inst,
             "shared address " + std::to_string(address) + " (+" +
                 std::to_string(bytes) + ") past the block's " +
                 std::to_string(window) + " bytes");
      return shared.data() + windowOf(thread) + address;
    case Space::SharedCluster: {
      // The thread's own window below the first rank's bit.
      uint64_t rank = address >> kClusterRankShift;
      if (rank == 0)
        return resolve(thread, inst, Space::Shared, address, bytes);
      if (rank > ctas)
        fail(thread, inst,
             "shared::cluster address " + std::to_string(address) +
                 " names CTA " + std::to_string(rank - 1) +
                 " of a cluster of " + std::to_string(ctas));
      uint64_t offset = address & ((uint64_t{1} << kClusterRankShift) - 1);
      if (bytes > window || offset > window - bytes)
        fail(thread, inst,
             "shared::cluster address " + std::to_string(address) + " (+" +
                 std::to_string(bytes) + ") past CTA " +
                 std::to_string(rank - 1) + "'s " + std::to_string(window) +
                 " bytes");
      return shared.data() + (rank - 1) * stride + offset;
    }
    case Space::Local:
      if (!within(kernel.localBytes + 16))
        fail(thread, inst, "local address out of the thread's frame");
      return localBase(thread) + address;
    case Space::Param:
      if (!within(launch.params.size()))
        fail(thread, inst, "parameter address out of range");
      return const_cast<uint8_t *>(launch.params.data()) + address;
    case Space::Generic:
    case Space::Global: {
      uintptr_t a = static_cast<uintptr_t>(address);
      auto inside = [&](const uint8_t *base, size_t size) {
        uintptr_t b = reinterpret_cast<uintptr_t>(base);
        return a >= b && bytes <= size && a - b <= size - bytes;
      };
      // Generic addresses of the block's shared memory, the threads'
      // frames and the kernel's parameters (cvta.param: a grid-constant
      // parameter, such as a TMA descriptor passed by value).
      if (space == Space::Generic) {
        if (inside(shared.data(), shared.size()) ||
            inside(local.data(), local.size()) ||
            inside(launch.params.data(), launch.params.size()))
          return reinterpret_cast<uint8_t *>(a);
      }
      std::lock_guard<std::mutex> lock(trackedMutex);
      auto it = tracked.upper_bound(a);
      if (it != tracked.begin()) {
        --it;
        if (a >= it->first && bytes <= it->second &&
            a - it->first <= it->second - bytes) {
          if (!gridsAwaited[thread])
            fail(thread, inst,
                 "global memory touched before griddepcontrol.wait in a "
                 "programmatic launch (the kernel before it may still run)");
          return reinterpret_cast<uint8_t *>(a);
        }
      }
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%llx",
                    static_cast<unsigned long long>(address));
      fail(thread, inst,
           std::string("global address ") + hex + " (+" +
               std::to_string(bytes) + ") is outside every allocation");
    }
    }
    return nullptr;
  }

  /// A generic store of `bytes` at host address `p`: marked unfenced if it
  /// is shared memory.
  void genericStore(unsigned thread, const uint8_t *p, uint64_t bytes) {
    if (p < shared.data() || p >= shared.data() + shared.size())
      return;
    uint64_t offset = static_cast<uint64_t>(p - shared.data());
    for (uint64_t i = 0; i < bytes; ++i)
      unfenced[offset + i] = static_cast<int32_t>(thread);
    unfencedRanges[thread].push_back({offset, bytes});
  }
  void proxyFence(unsigned thread) {
    for (auto [offset, bytes] : unfencedRanges[thread])
      for (uint64_t i = 0; i < bytes; ++i)
        if (unfenced[offset + i] == static_cast<int32_t>(thread))
          unfenced[offset + i] = -1;
    unfencedRanges[thread].clear();
    // cp.async copies whose mbarrier phase this thread has seen (bytes a
    // later copy or store wrote stay as they are).
    auto fenced = [&](const CopiedRange &r) {
      const TmaWrite &w = tmaWrites[r.copy];
      auto it = seen[thread].find(w.mbarrier);
      if (w.mbarrier == kNotArrived || it == seen[thread].end() ||
          it->second <= w.completions)
        return false;
      for (uint64_t i = 0; i < r.bytes; ++i)
        if (tmaWriter[r.offset + i] == r.copy)
          unfenced[r.offset + i] = -1;
      return true;
    };
    copiedUnfenced.erase(
        std::remove_if(copiedUnfenced.begin(), copiedUnfenced.end(), fenced),
        copiedUnfenced.end());
  }
  /// cp.async: `inst` copies into shared memory at once; the bytes stay
  /// the thread's own until its next cp.async.mbarrier.arrive.
  void asyncCopy(unsigned thread, const Instruction &inst);
  /// cp.async.mbarrier.arrive: releases the thread's copies and arrives.
  void asyncCopyArrive(unsigned thread, const Instruction &inst);

  uint64_t memoryAddress(unsigned thread, const Operand &o) {
    uint64_t base = o.reg >= 0 ? reg(thread, o.reg) : 0;
    return base + o.imm;
  }

  // Mbarriers: 8 bytes of shared memory holding expected (0-15), pending
  // (16-31), tx-count (32-55, signed), a check pattern (56-62), the phase
  // (63). A shadow copy of each live one tells a plain store over it.
  std::map<uint64_t, uint64_t> mbarrierShadows;
  struct MbarrierRef {
    uint64_t &word, &shadow;
    uint64_t index; // its offset in `shared`: the key of its records
    MbarrierRef(uint64_t &word, uint64_t &shadow, uint64_t index)
        : word(word), shadow(shadow), index(index) {}
    MbarrierRef(const MbarrierRef &) = delete;
    ~MbarrierRef() { shadow = word; }
  };
  /// The mbarrier operand `o` addresses (in the thread's own shared
  /// memory, or the cluster's for a shared::cluster instruction).
  MbarrierRef mbarrier(unsigned thread, const Instruction &inst,
                       const Operand &o, bool mustBeLive = true) {
    Space space =
        inst.space == Space::SharedCluster ? inst.space : Space::Shared;
    return mbarrierAt(thread, inst,
                      resolve(thread, inst, space, memoryAddress(thread, o), 8),
                      mustBeLive);
  }
  MbarrierRef mbarrierAt(unsigned thread, const Instruction &inst, uint8_t *p,
                         bool mustBeLive = true) {
    auto index = static_cast<uint64_t>(p - shared.data());
    if (index % 8)
      fail(thread, inst, "a misaligned mbarrier");
    uint64_t &word = *reinterpret_cast<uint64_t *>(p);
    auto shadow = mbarrierShadows.find(index);
    if (mustBeLive &&
        (shadow == mbarrierShadows.end() || shadow->second != word ||
         ((word >> 56) & 0x7F) != kMbarMagic))
      fail(thread, inst,
           "the mbarrier at shared address " + sharedName(index) +
               " is not initialized (or was overwritten)");
    return MbarrierRef(word, mbarrierShadows[index], index);
  }
  /// Arrivals and transaction bytes on the mbarrier at `address`, by
  /// `thread` at `inst`.
  void mbarrierUpdate(unsigned thread, const Instruction &inst,
                      uint64_t address, uint64_t &word, int64_t arrivals,
                      int64_t tx) {
    uint64_t expected = word & 0xFFFF;
    int64_t pendingCount =
        static_cast<int64_t>((word >> 16) & 0xFFFF) - arrivals;
    // A phase waiting for its transaction bytes after all its arrivals
    // takes no more: one more would be undefined on the GPU.
    if (pendingCount < 0)
      fail(thread, inst,
           "an arrival on the mbarrier at shared address " +
               sharedName(address) + " beyond the " + std::to_string(expected) +
               " its phase expects");
    int64_t txCount = static_cast<int64_t>((word >> 32) & 0xFFFFFF);
    if (txCount & 0x800000)
      txCount -= 0x1000000;
    txCount += tx;
    uint64_t phase = word >> 63;
    if (pendingCount <= 0 && txCount == 0) {
      phase ^= 1;
      pendingCount = static_cast<int64_t>(expected);
      ++mbarrierCompletions[address];
      MbarrierClocks &c = mbarrierClock(address);
      join(c.completed, c.arrived);
      std::fill(c.arrived.begin(), c.arrived.end(), 0);
    }
    word = (phase << 63) | (kMbarMagic << 56) |
           ((static_cast<uint64_t>(txCount) & 0xFFFFFF) << 32) |
           ((static_cast<uint64_t>(pendingCount) & 0xFFFF) << 16) | expected;
  }

  /// Fails unless `thread` has seen the completion of TMA load `writer`,
  /// which wrote shared `address`.
  void checkWriteSeen(unsigned thread, const Instruction &inst, int32_t writer,
                      uint64_t address);
  /// Fails unless `thread` has seen the completion of every TMA load that
  /// wrote a byte of [offset, offset + bytes) of shared memory.
  void checkTmaSeen(unsigned thread, const Instruction &inst, uint64_t offset,
                    uint64_t bytes);
  /// Fails unless `thread` has seen retired every wgmma that read a byte
  /// of [offset, offset + bytes), which `what` (a thread's store, a TMA
  /// load) is about to write.
  void checkReadsRetired(unsigned thread, const Instruction &inst,
                         uint64_t offset, uint64_t bytes, const char *what);
  /// Fails unless `thread` knows of the store that wrote each byte of
  /// [offset, offset + bytes) of shared memory, which it `what`s.
  void checkStoresOrdered(unsigned thread, const Instruction &inst,
                          uint64_t offset, uint64_t bytes, const char *what);
  /// A thread's load, store or atomic update of shared memory at host
  /// address `p`. Atomics of several threads on one word need no order,
  /// and stores are checked against other threads' by their caller, which
  /// lets threads store the same value unordered (the first warp of an
  /// upstream `gpu.all_reduce` stores its one result from every lane).
  enum class Access { Load, Store, Atomic };
  void sharedAccess(unsigned thread, const Instruction &inst, const uint8_t *p,
                    uint64_t bytes, Access access);
  /// atom's or red's update of the element of `inst.type` at `p` with
  /// operand `b` (and cas's `c`); returns the element before it.
  uint64_t atomicUpdate(unsigned thread, const Instruction &inst, uint8_t *p,
                        uint64_t b, uint64_t c) {
    unsigned size = typeBytes(inst.type);
    sharedAccess(thread, inst, p, size, Access::Atomic);
    uint64_t old = 0, r = 0;
    std::memcpy(&old, p, size);
    if (inst.atomOp == "add")
      r = inst.type == Type::F32 ? floatBits(asFloat(old) + asFloat(b))
                                 : old + b;
    else if (inst.atomOp == "exch")
      r = b;
    else if (inst.atomOp == "cas")
      r = mask(inst.type, old) == mask(inst.type, b) ? c : old;
    else if (isSigned(inst.type))
      r = static_cast<uint64_t>(
          inst.atomOp == "max"
              ? std::max(signExtend(inst.type, old), signExtend(inst.type, b))
              : std::min(signExtend(inst.type, old), signExtend(inst.type, b)));
    else
      r = inst.atomOp == "max"
              ? std::max(mask(inst.type, old), mask(inst.type, b))
              : std::min(mask(inst.type, old), mask(inst.type, b));
    std::memcpy(p, &r, size);
    genericStore(thread, p, size);
    return old;
  }
  /// The shared-memory offset of element (row, k) of a K-major wgmma
  /// operand; `line` names the wgmma when it lies outside.
  uint64_t wgmmaOperandAddress(const PendingWgmma &w, uint64_t desc,
                               unsigned row, unsigned k);
  /// Calls `f(offset)` for the first byte of each bf16 element a wgmma
  /// reads (its A rows, then its B columns).
  template <typename F> void forEachWgmmaOperand(const PendingWgmma &w, F f) {
    for (unsigned m = 0; m < 64; ++m)
      for (unsigned k = 0; k < 16; ++k)
        f(wgmmaOperandAddress(w, w.descA, m, k));
    for (unsigned n = 0; n < w.n; ++n)
      for (unsigned k = 0; k < 16; ++k)
        f(wgmmaOperandAddress(w, w.descB, n, k));
  }
  void tmaLoad(unsigned thread, const Instruction &inst);
  /// One CTA's copy of a TMA load: the box at `dstIndex` of `shared`, its
  /// bytes completed on the mbarrier at `barIndex`.
  void tmaLoadInto(unsigned thread, const Instruction &inst,
                   const TensorMap &map, const int64_t *coords,
                   uint64_t dstIndex, uint64_t barIndex, unsigned element,
                   unsigned swizzleBytes, uint64_t total);
  void executeWgmma(unsigned group, const PendingWgmma &w);
  void mmaSync(unsigned warp, const Instruction &inst);
  bool step(unsigned thread); // false: the thread waits or exited
  void collective(unsigned first, unsigned count, const Instruction &inst);
  /// shfl.sync among the threads of warp `warp` that `members` names, all
  /// at the instruction; false while some member has not reached it.
  bool shuffle(unsigned warp, unsigned thread, const Instruction &inst);
  /// The lanes of warp `warp` that bar.warp.sync's mask names, once all are
  /// at it: their clocks joined, each releasing; false until then.
  bool warpSync(unsigned warp, unsigned thread, const Instruction &inst);
  /// Checks the membermask of `thread`'s warp collective (operand
  /// `maskOperand`) and whether every lane it names is at it.
  bool membersReady(unsigned warp, unsigned thread, const Instruction &inst,
                    unsigned maskOperand, uint32_t &members);
  void arithmetic(unsigned thread, const Instruction &inst);
  template <typename Float, typename Source>
  Float floatOperation(unsigned thread, const Instruction &inst, Source f);
  void convert(unsigned thread, const Instruction &inst);
};

void BlockRun::checkWriteSeen(unsigned thread, const Instruction &inst,
                              int32_t writer, uint64_t address) {
  const TmaWrite &w = tmaWrites[writer];
  auto it = seen[thread].find(w.mbarrier);
  if (w.mbarrier == kNotArrived)
    fail(thread, inst,
         "touches shared address " + sharedName(address) +
             ", which the cp.async of PTX line " + std::to_string(w.line) +
             " writes, before its thread's cp.async.mbarrier.arrive");
  if (it == seen[thread].end() || it->second <= w.completions)
    fail(thread, inst,
         "touches shared address " + sharedName(address) + ", which the " +
             (w.copy ? "cp.async" : "TMA load") + " of PTX line " +
             std::to_string(w.line) + " writes, before it has seen that " +
             (w.copy ? "copy" : "load") + "'s mbarrier (shared address " +
             sharedName(w.mbarrier) + ") complete its phase");
}

void BlockRun::checkTmaSeen(unsigned thread, const Instruction &inst,
                            uint64_t offset, uint64_t bytes) {
  int32_t last = -1;
  for (uint64_t b = offset; b < offset + bytes; ++b) {
    int32_t writer = tmaWriter[b];
    if (writer < 0 || writer == last)
      continue;
    last = writer;
    checkWriteSeen(thread, inst, writer, b);
  }
}

void BlockRun::checkReadsRetired(unsigned thread, const Instruction &inst,
                                 uint64_t offset, uint64_t bytes,
                                 const char *what) {
  if (!bytes)
    return;
  for (uint64_t chunk = offset / 16; chunk <= (offset + bytes - 1) / 16;
       ++chunk)
    for (unsigned g = 0; g < groups; ++g) {
      uint32_t reads = chunkReads[chunk * groups + g];
      if (reads && (*known[thread])[threads + g] < reads)
        fail(thread, inst,
             std::string(what) + " shared address " +
                 sharedName(std::max(offset, chunk * 16)) +
                 ", which the wgmma of PTX line " +
                 std::to_string(wgmmaLines[g][reads - 1]) +
                 " reads, before it has seen a wgmma.wait_group retire that "
                 "wgmma");
    }
}

void BlockRun::checkStoresOrdered(unsigned thread, const Instruction &inst,
                                  uint64_t offset, uint64_t bytes,
                                  const char *what) {
  for (uint64_t b = offset; b < offset + bytes; ++b)
    if (storer[b] >= 0 && !knows(thread, storer[b], storeRelease[b]))
      fail(thread, inst,
           std::string(what) + " shared address " + sharedName(b) +
               ", which thread " +
               threadName(static_cast<unsigned>(storer[b])) +
               " stored (PTX line " + std::to_string(storeLine[b]) +
               ") with no bar.sync or mbarrier phase ordering that store "
               "before it");
}

void BlockRun::sharedAccess(unsigned thread, const Instruction &inst,
                            const uint8_t *p, uint64_t bytes, Access access) {
  if (p < shared.data() || p >= shared.data() + shared.size())
    return;
  uint64_t offset = static_cast<uint64_t>(p - shared.data());
  checkTmaSeen(thread, inst, offset, bytes);
  if (access == Access::Load) {
    checkStoresOrdered(thread, inst, offset, bytes, "loads");
    return;
  }
  checkReadsRetired(thread, inst, offset, bytes, "stores to");
  std::fill_n(tmaWriter.begin() + offset, bytes, -1);
  std::fill_n(storer.begin() + offset, bytes, static_cast<int32_t>(thread));
  std::fill_n(storeRelease.begin() + offset, bytes, releases[thread]);
  std::fill_n(storeLine.begin() + offset, bytes, inst.line);
}

uint64_t BlockRun::wgmmaOperandAddress(const PendingWgmma &w, uint64_t desc,
                                       unsigned row, unsigned k) {
  uint64_t start = (desc & 0x3FFF) << 4;
  uint64_t lbo = ((desc >> 16) & 0x3FFF) << 4;
  uint64_t sbo = ((desc >> 32) & 0x3FFF) << 4;
  unsigned mode = static_cast<unsigned>(desc >> 62);
  unsigned span = mode == 1 ? 128 : mode == 2 ? 64 : mode == 3 ? 32 : 0;
  uint64_t address;
  if (span)
    address = swizzle(start + (row / 8) * sbo + (row % 8) * span + k * 2, span);
  else
    address =
        start + (row / 8) * sbo + (k / 8) * lbo + (row % 8) * 16 + (k % 8) * 2;
  if (address + 2 > window)
    throw Failure{"kernel '" + kernel.name + "', PTX line " +
                  std::to_string(w.line) +
                  " (wgmma): an operand outside shared memory"};
  return w.window + address;
}

void BlockRun::asyncCopy(unsigned thread, const Instruction &inst) {
  const std::vector<Operand> &ops = inst.operands;
  if (ops[0].kind != Operand::Mem || ops[1].kind != Operand::Mem)
    fail(thread, inst, "a cp.async address that is not [..]");
  uint64_t size = value(thread, ops[2]);
  uint64_t read =
      ops.size() > 3 ? mask(Type::U32, value(thread, ops[3])) : size;
  if (size != 4 && size != 8 && size != 16)
    fail(thread, inst,
         "a cp.async of " + std::to_string(size) + " bytes (4, 8 or 16)");
  if (inst.text.find(".cg.") != std::string::npos && size != 16)
    fail(thread, inst, "a cp.async.cg of other than 16 bytes");
  if (read > size)
    fail(thread, inst, "a cp.async reading more bytes than it copies");
  uint64_t toAddress = memoryAddress(thread, ops[0]);
  uint64_t fromAddress = memoryAddress(thread, ops[1]);
  if (toAddress % size || fromAddress % size)
    fail(thread, inst, "a cp.async address not aligned to its size");
  uint8_t *to = resolve(thread, inst, Space::Shared, toAddress, size);
  uint8_t data[16] = {};
  if (read)
    std::memcpy(data, resolve(thread, inst, Space::Global, fromAddress, read),
                read);
  auto offset = static_cast<uint64_t>(to - shared.data());
  // As a TMA load: over bytes no wgmma still reads and no unordered store
  // wrote; readable once its phase is seen.
  checkReadsRetired(thread, inst, offset, size, "a cp.async writes");
  checkStoresOrdered(thread, inst, offset, size, "a cp.async writes");
  std::memcpy(to, data, size);
  auto copy = static_cast<int32_t>(tmaWrites.size());
  tmaWrites.push_back({kNotArrived, 0, inst.line, /*copy=*/true});
  std::fill_n(tmaWriter.begin() + offset, size, copy);
  std::fill_n(storer.begin() + offset, size, -1);
  // A generic-proxy write: the async proxy needs a fence after its phase.
  std::fill_n(unfenced.begin() + offset, size, static_cast<int32_t>(thread));
  copiedUnfenced.push_back({offset, size, copy});
  pendingCopies[thread].push_back(copy);
}

void BlockRun::asyncCopyArrive(unsigned thread, const Instruction &inst) {
  MbarrierRef barrier = mbarrier(thread, inst, inst.operands[0]);
  uint64_t address = barrier.index;
  // The copies complete with the phase this arrival counts towards: seen
  // by the threads that see it complete.
  for (int32_t copy : pendingCopies[thread])
    tmaWrites[copy] = {address, mbarrierCompletions[address],
                       tmaWrites[copy].line, /*copy=*/true};
  pendingCopies[thread].clear();
  MbarrierClocks &c = mbarrierClock(address);
  join(c.arrived, *known[thread]);
  c.arrived[thread] = std::max(c.arrived[thread], releases[thread]++);
  // .noinc: one of the phase's expected arrivals; else the instruction
  // adds one to the pending count that its arrival takes away.
  bool noinc = inst.text.find(".noinc") != std::string::npos;
  mbarrierUpdate(thread, inst, address, barrier.word, noinc ? 1 : 0, 0);
}

void BlockRun::tmaLoad(unsigned thread, const Instruction &inst) {
  const Operand &dst = inst.operands[0], &src = inst.operands[1],
                &bar = inst.operands[2];
  uint64_t mapAddress = memoryAddress(thread, src);
  TensorMap map;
  std::memcpy(&map, resolve(thread, inst, Space::Generic, mapAddress, 128),
              128);
  if (map.rank != inst.dims || src.elements.size() != map.rank)
    fail(thread, inst, "the tensor map's rank is not the instruction's");
  unsigned element = tensorElementBytes(map.type);
  unsigned swizzleBytes = map.swizzle == 3   ? 128
                          : map.swizzle == 2 ? 64
                          : map.swizzle == 1 ? 32
                                             : 0;
  if (!element)
    fail(thread, inst, "a tensor map of an unknown element type");
  if (swizzleBytes && map.box[0] * element > swizzleBytes)
    fail(thread, inst, "the box's inner dimension exceeds the swizzle span");
  // The destination and mbarrier as offsets in a CTA's window, and the
  // CTAs they are in: the multicast mask's, else the destination's.
  uint64_t offsetMask = (uint64_t{1} << kClusterRankShift) - 1;
  uint64_t dstCluster = memoryAddress(thread, dst);
  uint64_t dstAddress = dstCluster & offsetMask;
  uint64_t barOffset =
      static_cast<uint64_t>(resolve(thread, inst,
                                    inst.space == Space::SharedCluster
                                        ? inst.space
                                        : Space::Shared,
                                    memoryAddress(thread, bar), 8) -
                            shared.data()) %
      stride;
  if (dstAddress % 128)
    fail(thread, inst, "the destination is not 128-byte aligned");
  std::vector<unsigned> targets;
  if (inst.multicast) {
    uint64_t ctaMask = mask(Type::U16, value(thread, inst.operands[3]));
    if (ctaMask == 0 || (ctas < 16 && (ctaMask >> ctas) != 0))
      fail(thread, inst,
           "a multicast mask (" + std::to_string(ctaMask) +
               ") naming no CTA, or one outside the cluster of " +
               std::to_string(ctas));
    for (unsigned r = 0; r < ctas; ++r)
      if ((ctaMask >> r) & 1)
        targets.push_back(r);
  } else {
    uint64_t rank = dstCluster >> kClusterRankShift;
    if (rank > ctas)
      fail(thread, inst, "a destination outside the cluster");
    targets.push_back(rank ? static_cast<unsigned>(rank - 1) : ctaOf(thread));
  }
  int64_t coords[5] = {0, 0, 0, 0, 0};
  for (unsigned d = 0; d < map.rank; ++d)
    coords[d] = static_cast<int32_t>(value(thread, src.elements[d]));
  // The box in shared memory, and the whole tensor in one allocation (the
  // map's address, dimensions and strides are whatever memory held).
  uint64_t total = element, extent = element;
  bool overflow = map.rank == 0 || map.rank > 5;
  for (unsigned d = 0; d < map.rank && !overflow; ++d) {
    overflow |= map.box[d] == 0 || map.box[d] > 256 ||
                __builtin_mul_overflow(total, map.box[d], &total);
    if (map.dims[d] == 0)
      continue;
    uint64_t stride = d == 0 ? element : map.strides[d - 1], span;
    overflow |= __builtin_mul_overflow(map.dims[d] - 1, stride, &span) ||
                __builtin_add_overflow(extent, span, &extent);
  }
  if (overflow)
    fail(thread, inst, "a tensor map with an impossible box or tensor");
  if (total > window || dstAddress > window - total)
    fail(thread, inst,
         "shared address " + std::to_string(dstAddress) + " (+" +
             std::to_string(total) + ") past the block's " +
             std::to_string(window) + " bytes");
  resolve(thread, inst, Space::Global, map.address, extent);
  for (unsigned target : targets)
    tmaLoadInto(thread, inst, map, coords, target * stride + dstAddress,
                target * stride + barOffset, element, swizzleBytes, total);
}

void BlockRun::tmaLoadInto(unsigned thread, const Instruction &inst,
                           const TensorMap &map, const int64_t *coords,
                           uint64_t dstIndex, uint64_t barIndex,
                           unsigned element, unsigned swizzleBytes,
                           uint64_t total) {
  MbarrierRef barrier = mbarrierAt(thread, inst, shared.data() + barIndex);
  uint64_t base = dstIndex / stride * stride, dstAddress = dstIndex - base;
  auto writer = static_cast<int32_t>(tmaWrites.size());
  tmaWrites.push_back({barIndex, mbarrierCompletions[barIndex], inst.line});
  uint64_t index[5] = {0, 0, 0, 0, 0};
  for (uint64_t e = 0; e < total / element; ++e) {
    uint64_t rest = e;
    bool outside = false;
    uint64_t offset = 0;
    for (unsigned d = 0; d < map.rank; ++d) {
      index[d] = rest % map.box[d];
      rest /= map.box[d];
      int64_t c = coords[d] + static_cast<int64_t>(index[d]);
      if (c < 0 || static_cast<uint64_t>(c) >= map.dims[d])
        outside = true;
      else
        offset += d == 0 ? static_cast<uint64_t>(c) * element
                         : static_cast<uint64_t>(c) * map.strides[d - 1];
    }
    // The swizzle moves 16-byte chunks within their 128-byte row, which a
    // box that is not whole rows may not hold.
    uint64_t swizzled = swizzle(dstAddress + e * element, swizzleBytes);
    if (swizzled + element > window)
      fail(thread, inst,
           "shared address " + std::to_string(swizzled) + " (+" +
               std::to_string(element) + ") past the block's " +
               std::to_string(window) + " bytes");
    uint64_t toOffset = base + swizzled;
    checkReadsRetired(thread, inst, toOffset, element, "a TMA load writes");
    checkStoresOrdered(thread, inst, toOffset, element, "a TMA load writes");
    std::fill_n(tmaWriter.begin() + toOffset, element, writer);
    std::fill_n(storer.begin() + toOffset, element, -1);
    uint8_t *to = shared.data() + toOffset;
    std::fill_n(unfenced.begin() + toOffset, element, -1);
    if (outside)
      std::memset(to, 0, element);
    else
      std::memcpy(to, reinterpret_cast<const uint8_t *>(map.address + offset),
                  element);
  }
  mbarrierUpdate(thread, inst, barIndex, barrier.word, 0,
                 -static_cast<int64_t>(total));
}

void BlockRun::executeWgmma(unsigned group, const PendingWgmma &w) {
  // Operand element (row, k) of a K-major matrix in shared memory.
  auto element = [&](uint64_t desc, unsigned row, unsigned k) -> float {
    uint64_t address = wgmmaOperandAddress(w, desc, row, k);
    for (uint64_t b = address; b < address + 2; ++b)
      if (unfenced[b] >= 0)
        throw Failure{"kernel '" + kernel.name + "', PTX line " +
                      std::to_string(w.line) +
                      " (wgmma): reads shared address " + sharedName(b) +
                      ", which thread " + std::to_string(unfenced[b]) +
                      " stored without a fence.proxy.async since"};
    uint16_t h;
    std::memcpy(&h, shared.data() + address, 2);
    return bf16ToFloat(h);
  };
  float a[64][16];
  std::vector<float> b(static_cast<size_t>(w.n) * 16);
  for (unsigned m = 0; m < 64; ++m)
    for (unsigned k = 0; k < 16; ++k)
      a[m][k] = w.scaleA * element(w.descA, m, k);
  for (unsigned n = 0; n < w.n; ++n)
    for (unsigned k = 0; k < 16; ++k)
      b[n * 16 + k] = w.scaleB * element(w.descB, n, k);
  unsigned first = firstOfGroup(group);
  for (unsigned t = 0; t < 128; ++t) {
    unsigned warp = t / 32, lane = t % 32;
    for (unsigned i = 0; i < w.n / 2; ++i) {
      unsigned col = 8 * (i / 4) + 2 * (lane % 4) + (i % 2);
      unsigned row = 16 * warp + lane / 4 + 8 * ((i / 2) % 2);
      uint64_t &d = reg(first + t, w.dSlots[t][i]);
      float sum = w.scaleD ? asFloat(d) : 0.0f;
      for (unsigned k = 0; k < 16; ++k)
        sum = std::fma(a[row][k], b[col * 16 + k], sum);
      d = floatBits(sum);
    }
  }
}

void BlockRun::mmaSync(unsigned warp, const Instruction &inst) {
  // m16n8k16, A row-major, B column-major, bf16 or f16 in, f32
  // accumulate.
  float a[16][16], b[16][8], c[16][8];
  unsigned first = warp * 32;
  const Operand &D = inst.operands[0], &A = inst.operands[1],
                &B = inst.operands[2], &C = inst.operands[3];
  if (D.elements.size() != 4 || A.elements.size() != 4 ||
      B.elements.size() != 2 || C.elements.size() != 4)
    fail(first, inst, "unexpected operand counts");
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned t = first + lane, g = lane / 4, q = lane % 4;
    auto half = [&](const Operand &v, unsigned i, unsigned h) {
      auto bits = static_cast<uint16_t>(value(t, v.elements[i]) >> (16 * h));
      return inst.sourceType == Type::F16 ? f16ToFloat(bits)
                                          : bf16ToFloat(bits);
    };
    for (unsigned h = 0; h < 2; ++h) {
      a[g][2 * q + h] = half(A, 0, h);
      a[g + 8][2 * q + h] = half(A, 1, h);
      a[g][2 * q + 8 + h] = half(A, 2, h);
      a[g + 8][2 * q + 8 + h] = half(A, 3, h);
      b[2 * q + h][g] = half(B, 0, h);
      b[2 * q + 8 + h][g] = half(B, 1, h);
      c[g][2 * q + h] = asFloat(value(t, C.elements[h]));
      c[g + 8][2 * q + h] = asFloat(value(t, C.elements[2 + h]));
    }
  }
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned t = first + lane, g = lane / 4, q = lane % 4;
    for (unsigned i = 0; i < 4; ++i) {
      unsigned row = g + 8 * (i / 2), col = 2 * q + (i % 2);
      float sum = c[row][col];
      for (unsigned k = 0; k < 16; ++k)
        sum = std::fma(a[row][k], b[k][col], sum);
      set(t, D.elements[i], Type::F32, floatBits(sum), inst);
    }
  }
}

void BlockRun::collective(unsigned first, unsigned count,
                          const Instruction &inst) {
  unsigned group = groupOf(first);
  switch (inst.op) {
  case Op::WgmmaFence:
    break;
  case Op::SetMaxNReg: {
    uint64_t wanted = value(first, inst.operands[0]);
    if (!kernel.maxThreads)
      fail(first, inst,
           "setmaxnreg in a kernel without .maxntid (no register count to "
           "start from)");
    if (wanted % 8 != 0 || wanted < 24 || wanted > 256)
      fail(first, inst,
           "setmaxnreg to " + std::to_string(wanted) +
               " registers (a multiple of 8 from 24 to 256)");
    unsigned &limit = registerLimit[group];
    if (inst.increase ? wanted < limit : wanted > limit)
      fail(first, inst,
           std::string(inst.increase ? "setmaxnreg.inc below"
                                     : "setmaxnreg.dec above") +
               " the warpgroup's " + std::to_string(limit) + " registers");
    registerPool[ctaOf(first)] +=
        (static_cast<int64_t>(limit) - static_cast<int64_t>(wanted)) * 128;
    limit = static_cast<unsigned>(wanted);
    break;
  }
  case Op::Wgmma: {
    const Operand &D = inst.operands[0];
    if (inst.operands.size() != 8 || D.kind != Operand::Vec ||
        inst.operands[1].kind != Operand::Reg)
      fail(first, inst, "only wgmma with both operands in shared memory");
    if (value(first, inst.operands[6]) != 0 ||
        value(first, inst.operands[7]) != 0)
      fail(first, inst, "transposed (MN-major) operands are not modelled");
    if (D.elements.size() != inst.shapeN / 2)
      fail(first, inst, "the accumulator count is not N / 2");
    PendingWgmma w;
    w.n = inst.shapeN;
    w.line = inst.line;
    w.window = windowOf(first);
    w.descA = value(first, inst.operands[1]);
    w.descB = value(first, inst.operands[2]);
    w.scaleD = value(first, inst.operands[3]) & 1;
    w.scaleA =
        static_cast<int64_t>(value(first, inst.operands[4])) < 0 ? -1 : 1;
    w.scaleB =
        static_cast<int64_t>(value(first, inst.operands[5])) < 0 ? -1 : 1;
    for (unsigned t = first; t < first + count; ++t) {
      if (value(t, inst.operands[1]) != w.descA ||
          value(t, inst.operands[2]) != w.descB ||
          (value(t, inst.operands[3]) & 1) != w.scaleD)
        fail(t, inst, "the warpgroup's threads disagree on the operands");
      std::vector<int> slots;
      for (const Operand &e : D.elements) {
        if (e.kind != Operand::Reg)
          fail(t, inst, "an accumulator that is not a register");
        slots.push_back(e.reg);
      }
      w.dSlots.push_back(std::move(slots));
    }
    // Every thread of the warpgroup must have seen the TMA loads that
    // wrote the operands; from here until a wait_group retires it, the
    // wgmma reads them.
    std::map<int32_t, uint64_t> writers; // TMA load -> a byte it wrote
    // (thread, release) of a store -> a byte it wrote
    std::map<std::pair<int32_t, uint32_t>, uint64_t> stores;
    uint32_t index = issued[group]++;
    wgmmaLines[group].push_back(inst.line);
    forEachWgmmaOperand(w, [&](uint64_t a) {
      for (uint64_t b = a; b < a + 2; ++b) {
        if (tmaWriter[b] >= 0)
          writers.emplace(tmaWriter[b], b);
        if (storer[b] >= 0)
          stores.emplace(std::make_pair(storer[b], storeRelease[b]), b);
      }
      chunkReads[a / 16 * groups + group] = index + 1;
    });
    for (auto [writer, address] : writers)
      for (unsigned t = first; t < first + count; ++t)
        checkWriteSeen(t, inst, writer, address);
    for (auto [store, address] : stores)
      for (unsigned t = first; t < first + count; ++t)
        checkStoresOrdered(t, inst, address, 1, "reads");
    open[group].push_back(std::move(w));
    break;
  }
  case Op::WgmmaCommit:
    pending[group].push_back(std::move(open[group]));
    open[group].clear();
    break;
  case Op::WgmmaWait: {
    uint64_t keep = value(first, inst.operands[0]);
    while (pending[group].size() > keep) {
      for (const PendingWgmma &w : pending[group].front()) {
        executeWgmma(group, w);
        ++retired[group];
      }
      pending[group].erase(pending[group].begin());
    }
    Clock retiredHere(threads + groups, 0);
    retiredHere[threads + group] = retired[group];
    for (unsigned t = first; t < first + count; ++t)
      learn(t, retiredHere);
    break;
  }
  case Op::MmaSync:
    mmaSync(first / 32, inst);
    break;
  default:
    fail(first, inst, "not a collective instruction");
  }
}

bool BlockRun::membersReady(unsigned warp, unsigned thread,
                            const Instruction &inst, unsigned maskOperand,
                            uint32_t &members) {
  const Operand &mask = inst.operands[maskOperand];
  unsigned first = warp * 32;
  members = static_cast<uint32_t>(value(thread, mask));
  if (!((members >> (thread - first)) & 1))
    fail(thread, inst, "the thread is not in its membermask");
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (!((members >> lane) & 1))
      continue;
    unsigned u = first + lane;
    if (u >= threads || exited[u])
      fail(thread, inst,
           "the membermask names lane " + std::to_string(lane) +
               ", which has exited or is not in the block");
    if (waits[u] != Wait::Collective || pc[u] != pc[thread])
      return false;
    if (static_cast<uint32_t>(value(u, mask)) != members)
      fail(u, inst, "the warp's threads disagree on the membermask");
  }
  return true;
}

bool BlockRun::warpSync(unsigned warp, unsigned thread,
                        const Instruction &inst) {
  uint32_t members = 0;
  if (!membersReady(warp, thread, inst, 0, members))
    return false;
  unsigned first = warp * 32;
  // As bar.sync does for the block (the mbarrier phases each had seen, and
  // the happens-before order of their stores), for the named lanes.
  std::map<uint64_t, uint64_t> all;
  auto together = std::make_shared<Clock>(threads + groups, 0);
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((members >> lane) & 1) {
      unsigned u = first + lane;
      for (auto [address, completions] : seen[u])
        all[address] = std::max(all[address], completions);
      join(*together, *known[u]);
    }
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((members >> lane) & 1) {
      unsigned u = first + lane;
      (*together)[u] = releases[u]++;
    }
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((members >> lane) & 1) {
      unsigned u = first + lane;
      seen[u] = all;
      known[u] = together;
      waits[u] = Wait::None;
      ++pc[u];
    }
  return true;
}

bool BlockRun::shuffle(unsigned warp, unsigned thread,
                       const Instruction &inst) {
  const auto &ops = inst.operands;
  unsigned first = warp * 32;
  uint32_t members = 0;
  if (!membersReady(warp, thread, inst, 4, members))
    return false;
  // PTX ISA, shfl.sync: the source lane j from b and the clamp and segment
  // mask of c; out of range, the thread reads its own value (p false).
  uint64_t sources[32] = {};
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((members >> lane) & 1)
      sources[lane] = value(first + lane, ops[1]);
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (!((members >> lane) & 1))
      continue;
    unsigned u = first + lane;
    int b = static_cast<int>(value(u, ops[2]) & 31);
    uint32_t c = static_cast<uint32_t>(value(u, ops[3]));
    int segmask = static_cast<int>((c >> 8) & 31), clamp = c & 31;
    int self = static_cast<int>(lane);
    int maxLane = (self & segmask) | (clamp & ~segmask);
    int minLane = self & segmask;
    int j = self;
    bool inRange;
    if (inst.shuffleMode == "up") {
      j = self - b;
      inRange = j >= maxLane;
    } else if (inst.shuffleMode == "down") {
      j = self + b;
      inRange = j <= maxLane;
    } else if (inst.shuffleMode == "bfly") {
      j = self ^ b;
      inRange = j <= maxLane;
    } else {
      j = minLane | (b & ~segmask);
      inRange = j <= maxLane;
    }
    if (!inRange)
      j = self;
    if (!((members >> j) & 1))
      fail(u, inst,
           "reads lane " + std::to_string(j) + ", outside the membermask");
    const Operand &d = ops[0];
    if (d.kind == Operand::Vec) {
      set(u, d.elements[0], Type::B32, sources[j], inst);
      set(u, d.elements[1], Type::Pred, inRange, inst);
    } else {
      set(u, d, Type::B32, sources[j], inst);
    }
  }
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((members >> lane) & 1) {
      waits[first + lane] = Wait::None;
      ++pc[first + lane];
    }
  return true;
}

void BlockRun::convert(unsigned thread, const Instruction &inst) {
  Type to = inst.type, from = inst.sourceType;
  uint64_t a = value(thread, inst.operands[1]);
  auto roundFloat = [&](double x) {
    switch (inst.round) {
    case Round::Rni:
      return std::nearbyint(x);
    case Round::Rzi:
      return std::trunc(x);
    case Round::Rmi:
      return std::floor(x);
    case Round::Rpi:
      return std::ceil(x);
    default:
      return x;
    }
  };
  if (to == Type::BF16x2 || to == Type::F16x2) {
    // The first source goes to the upper half.
    uint64_t b = value(thread, inst.operands[2]);
    auto narrow = to == Type::F16x2 ? floatToF16 : floatToBf16;
    uint64_t hi = narrow(asFloat(a)), lo = narrow(asFloat(b));
    set(thread, inst.operands[0], Type::B32, (hi << 16) | lo, inst);
    return;
  }
  double x = 0;
  bool fromFloat = isFloat(from);
  if (from == Type::F32)
    x = asFloat(a);
  else if (from == Type::F64)
    x = asDouble(a);
  else if (from == Type::BF16)
    x = bf16ToFloat(static_cast<uint16_t>(a));
  else if (from == Type::F16)
    x = f16ToFloat(static_cast<uint16_t>(a));
  if (to == Type::F32 || to == Type::F64 || to == Type::BF16 ||
      to == Type::F16) {
    if (!fromFloat)
      x = isSigned(from) ? static_cast<double>(signExtend(from, a))
                         : static_cast<double>(mask(from, a));
    x = roundFloat(x);
    if (inst.saturate)
      x = std::isnan(x) ? 0.0 : std::min(1.0, std::max(0.0, x));
    uint64_t bits = to == Type::F64    ? doubleBits(x)
                    : to == Type::BF16 ? floatToBf16(static_cast<float>(x))
                    : to == Type::F16
                        ? floatToF16(static_cast<float>(x))
                        : floatBits(inst.ftz ? flush(static_cast<float>(x))
                                             : static_cast<float>(x));
    if (to == Type::F32 && from == Type::F64 && inst.round == Round::Rn)
      bits = floatBits(static_cast<float>(x));
    set(thread, inst.operands[0], to, bits, inst);
    return;
  }
  if (fromFloat) {
    // Float to integer: rounded as asked, NaN to 0, saturated to the range.
    x = roundFloat(x);
    if (std::isnan(x))
      x = 0;
    unsigned bits = typeBytes(to) * 8;
    double lo = isSigned(to) ? -std::ldexp(1.0, bits - 1) : 0.0;
    double hi = isSigned(to) ? std::ldexp(1.0, bits - 1) - 1
                             : std::ldexp(1.0, bits) - 1;
    x = std::min(hi, std::max(lo, x));
    uint64_t v = isSigned(to) ? static_cast<uint64_t>(static_cast<int64_t>(x))
                              : static_cast<uint64_t>(x);
    set(thread, inst.operands[0], to, v, inst);
    return;
  }
  uint64_t v = isSigned(from) ? static_cast<uint64_t>(signExtend(from, a))
                              : mask(from, a);
  set(thread, inst.operands[0], to, v, inst);
}

template <typename Float, typename Source>
Float BlockRun::floatOperation(unsigned thread, const Instruction &inst,
                               Source f) {
  Float r = 0;
  int previous = std::fegetround();
  if (inst.round == Round::Rm)
    std::fesetround(FE_DOWNWARD);
  else if (inst.round == Round::Rp)
    std::fesetround(FE_UPWARD);
  else if (inst.round == Round::Rz)
    std::fesetround(FE_TOWARDZERO);
  switch (inst.op) {
  case Op::Add:
    r = f(1) + f(2);
    break;
  case Op::Sub:
    r = f(1) - f(2);
    break;
  case Op::Mul:
    r = f(1) * f(2);
    break;
  case Op::Div:
    r = f(1) / f(2);
    break;
  case Op::Fma:
  case Op::Mad:
    r = std::fma(f(1), f(2), f(3));
    break;
  case Op::Neg:
    r = -f(1);
    break;
  case Op::Abs:
    r = std::fabs(f(1));
    break;
  case Op::Rcp:
    r = Float(1) / f(1);
    break;
  case Op::Sqrt:
    r = std::sqrt(f(1));
    break;
  case Op::Rsqrt:
    r = Float(1) / std::sqrt(f(1));
    break;
  case Op::Ex2:
    r = std::exp2(f(1));
    break;
  case Op::Lg2:
    r = std::log2(f(1));
    break;
  case Op::Copysign:
    r = std::copysign(f(2), f(1));
    break;
  case Op::Min:
  case Op::Max: {
    Float a = f(1), b = f(2);
    if (std::isnan(a) || std::isnan(b))
      r = inst.nanMinMax ? Float(NAN) : std::isnan(a) ? b : a;
    else
      r = inst.op == Op::Min ? std::fmin(a, b) : std::fmax(a, b);
    break;
  }
  default:
    std::fesetround(previous);
    fail(thread, inst, "unsupported on floating point");
  }
  std::fesetround(previous);
  if (inst.saturate)
    r = std::isnan(r) ? Float(0) : std::min(Float(1), std::max(Float(0), r));
  return r;
}

void BlockRun::arithmetic(unsigned thread, const Instruction &inst) {
  Type type = inst.type;
  const auto &ops = inst.operands;
  auto src = [&](size_t i) { return value(thread, ops[i]); };
  if (type == Type::F32) {
    float r = floatOperation<float>(thread, inst, [&](size_t i) {
      float v = asFloat(src(i));
      return inst.ftz ? flush(v) : v;
    });
    if (inst.ftz)
      r = flush(r);
    set(thread, ops[0], type, floatBits(r), inst);
    return;
  }
  if (type == Type::F64) {
    double r = floatOperation<double>(
        thread, inst, [&](size_t i) { return asDouble(src(i)); });
    set(thread, ops[0], type, doubleBits(r), inst);
    return;
  }
  if (isFloat(type))
    fail(thread, inst, "only f32 and f64 arithmetic is modelled");
  bool s = isSigned(type);
  unsigned bits = typeBytes(type) * 8;
  uint64_t a = ops.size() > 1 ? src(1) : 0, b = ops.size() > 2 ? src(2) : 0;
  int64_t sa = signExtend(type, a), sb = signExtend(type, b);
  uint64_t ua = mask(type, a), ub = mask(type, b);
  uint64_t r = 0;
  Type resultType = type;
  switch (inst.op) {
  case Op::Add:
    r = ua + ub;
    break;
  case Op::Sub:
    r = ua - ub;
    break;
  case Op::Mul:
  case Op::Mad: {
    if (inst.wide) {
      resultType = bits == 32 ? (s ? Type::S64 : Type::U64) : type;
      r = s ? static_cast<uint64_t>(sa * sb) : ua * ub;
    } else if (inst.hi) {
      if (bits == 64)
        r = s ? static_cast<uint64_t>((static_cast<__int128>(sa) * sb) >> 64)
              : static_cast<uint64_t>(
                    (static_cast<unsigned __int128>(ua) * ub) >> 64);
      else
        r = s ? static_cast<uint64_t>((sa * sb) >> bits) : (ua * ub) >> bits;
    } else {
      r = ua * ub;
    }
    if (inst.op == Op::Mad)
      r += src(3);
    break;
  }
  case Op::Div:
    if (ub == 0)
      r = ~uint64_t{0};
    else
      r = s ? static_cast<uint64_t>(sb == -1 ? -sa : sa / sb) : ua / ub;
    break;
  case Op::Rem:
    if (ub == 0)
      r = ua;
    else
      r = s ? static_cast<uint64_t>(sb == -1 ? 0 : sa % sb) : ua % ub;
    break;
  case Op::Min:
    r = s ? static_cast<uint64_t>(std::min(sa, sb)) : std::min(ua, ub);
    break;
  case Op::Max:
    r = s ? static_cast<uint64_t>(std::max(sa, sb)) : std::max(ua, ub);
    break;
  case Op::Neg:
    r = static_cast<uint64_t>(-sa);
    break;
  case Op::Abs:
    r = static_cast<uint64_t>(sa < 0 ? -sa : sa);
    break;
  case Op::And:
    r = ua & ub;
    break;
  case Op::Or:
    r = ua | ub;
    break;
  case Op::Xor:
    r = ua ^ ub;
    break;
  case Op::Not:
    r = ~ua;
    break;
  case Op::Shl: {
    uint64_t n = mask(Type::U32, b);
    r = n >= bits ? 0 : ua << n;
    break;
  }
  case Op::Shr: {
    uint64_t n = mask(Type::U32, b);
    if (s)
      r = static_cast<uint64_t>(n >= bits ? (sa < 0 ? -1 : 0) : sa >> n);
    else
      r = n >= bits ? 0 : ua >> n;
    break;
  }
  case Op::Bfe: {
    uint64_t start = src(2) & 0xFF, length = src(3) & 0xFF;
    if (length == 0 || start >= bits) {
      r = s && start >= bits && sa < 0 ? ~uint64_t{0} : 0;
      break;
    }
    uint64_t field = ua >> start;
    if (length < 64)
      field &= (uint64_t{1} << length) - 1;
    if (s && length < bits && ((field >> (length - 1)) & 1))
      field |= ~uint64_t{0} << length;
    r = field;
    break;
  }
  case Op::Prmt: {
    uint64_t bytes = (mask(Type::U32, b) << 32) | mask(Type::U32, a);
    uint64_t selectors = src(3);
    r = 0;
    for (int i = 0; i < 4; ++i) {
      uint64_t selector = (selectors >> (4 * i)) & 0xF;
      uint64_t byte = (bytes >> (8 * (selector & 7))) & 0xFF;
      if (selector & 8)
        byte = (byte & 0x80) ? 0xFF : 0;
      r |= byte << (8 * i);
    }
    break;
  }
  default:
    fail(thread, inst, "unsupported integer operation");
  }
  set(thread, ops[0], resultType, r, inst);
}

/// An integer comparison (the unordered and NaN tests do not apply).
template <typename Integer>
bool compareOrdered(Cmp cmp, Integer x, Integer y) {
  switch (cmp) {
  case Cmp::Eq:
    return x == y;
  case Cmp::Ne:
    return x != y;
  case Cmp::Lt:
    return x < y;
  case Cmp::Le:
    return x <= y;
  case Cmp::Gt:
    return x > y;
  case Cmp::Ge:
    return x >= y;
  default:
    return false;
  }
}

bool compare(Cmp cmp, Type type, uint64_t a, uint64_t b) {
  if (type == Type::F32 || type == Type::F64) {
    double x = type == Type::F32 ? asFloat(a) : asDouble(a);
    double y = type == Type::F32 ? asFloat(b) : asDouble(b);
    bool unordered = std::isnan(x) || std::isnan(y);
    switch (cmp) {
    case Cmp::Eq:
      return !unordered && x == y;
    case Cmp::Ne:
      return !unordered && x != y;
    case Cmp::Lt:
      return !unordered && x < y;
    case Cmp::Le:
      return !unordered && x <= y;
    case Cmp::Gt:
      return !unordered && x > y;
    case Cmp::Ge:
      return !unordered && x >= y;
    case Cmp::Equ:
      return unordered || x == y;
    case Cmp::Neu:
      return unordered || x != y;
    case Cmp::Ltu:
      return unordered || x < y;
    case Cmp::Leu:
      return unordered || x <= y;
    case Cmp::Gtu:
      return unordered || x > y;
    case Cmp::Geu:
      return unordered || x >= y;
    case Cmp::Num:
      return !unordered;
    case Cmp::Nan:
      return unordered;
    }
  }
  if (isSigned(type))
    return compareOrdered(cmp, signExtend(type, a), signExtend(type, b));
  return compareOrdered(cmp, mask(type, a), mask(type, b));
}

bool BlockRun::step(unsigned thread) {
  // Past the last instruction (no ret): the thread exits, as on the GPU.
  if (pc[thread] >= kernel.code.size()) {
    exited[thread] = true;
    return false;
  }
  const Instruction &inst = kernel.code[pc[thread]];
  if (++steps > stepLimit)
    fail(thread, inst, "too many steps (an endless loop?)");
  if (inst.guard >= 0 &&
      ((reg(thread, inst.guard) & 1) != 0) == inst.guardNegated) {
    ++pc[thread];
    return true;
  }
  const auto &ops = inst.operands;
  switch (inst.op) {
  case Op::Bra:
    pc[thread] = static_cast<uint32_t>(inst.target);
    return true;
  case Op::Ret:
  case Op::Exit:
    for (const auto &g :
         {pending[groupOf(thread)].size(), open[groupOf(thread)].size()})
      if (g)
        fail(thread, inst, "exits with wgmma groups not waited for");
    exited[thread] = true;
    return false;
  case Op::BarSync:
    if (ops.size() > 1)
      fail(thread, inst, "bar.sync with a thread count is not modelled");
    waits[thread] = Wait::Barrier;
    return false;
  case Op::WgmmaFence:
  case Op::Wgmma:
  case Op::WgmmaCommit:
  case Op::WgmmaWait:
  case Op::MmaSync:
  case Op::Shfl:
  case Op::WarpSync:
  case Op::SetMaxNReg:
    waits[thread] = Wait::Collective;
    return false;
  case Op::Mov: {
    // mov.b32 {a, b}, r unpacks r into equal parts (a the low one);
    // mov.b32 r, {a, b} packs them.
    bool unpack = ops[0].kind == Operand::Vec;
    if (unpack || ops[1].kind == Operand::Vec) {
      const std::vector<Operand> &parts =
          unpack ? ops[0].elements : ops[1].elements;
      unsigned bits = typeBytes(inst.type) * 8;
      if (parts.empty() || bits % parts.size() != 0)
        fail(thread, inst, "a vector that does not split the type evenly");
      unsigned width = bits / static_cast<unsigned>(parts.size());
      uint64_t partMask =
          width == 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1;
      uint64_t packed = unpack ? value(thread, ops[1]) : 0;
      for (size_t i = 0; i < parts.size(); ++i) {
        unsigned shift = static_cast<unsigned>(i) * width;
        if (!unpack) {
          packed |= (value(thread, parts[i]) & partMask) << shift;
          continue;
        }
        if (parts[i].kind == Operand::Sink)
          continue;
        if (parts[i].kind != Operand::Reg)
          fail(thread, inst, "the destination is not a register");
        reg(thread, parts[i].reg) = (packed >> shift) & partMask;
      }
      if (!unpack)
        set(thread, ops[0], inst.type, packed, inst);
      break;
    }
    uint64_t v = value(thread, ops[1]);
    set(thread, ops[0], inst.type, v, inst);
    break;
  }
  case Op::Selp:
    set(thread, ops[0], inst.type,
        (value(thread, ops[3]) & 1) ? value(thread, ops[1])
                                    : value(thread, ops[2]),
        inst);
    break;
  case Op::Setp:
    if (ops.size() != 3)
      fail(thread, inst, "only setp with one destination and no combination");
    set(thread, ops[0], Type::Pred,
        compare(inst.cmp, inst.type, value(thread, ops[1]),
                value(thread, ops[2])),
        inst);
    break;
  case Op::Cvt:
    convert(thread, inst);
    break;
  case Op::Cvta: {
    bool toSpace = inst.text.find(".to.") != std::string::npos;
    uint64_t a = value(thread, ops[1]);
    uint64_t base = 0;
    if (inst.space == Space::SharedCluster) {
      // Generic addresses of the cluster's shared memory and
      // shared::cluster addresses, both ways.
      uint64_t start = reinterpret_cast<uintptr_t>(shared.data());
      uint64_t v = 0;
      if (toSpace) {
        if (a < start || a >= start + shared.size())
          fail(thread, inst, "a generic address outside shared memory");
        v = clusterAddress((a - start) / stride, (a - start) % stride);
      } else {
        v = reinterpret_cast<uintptr_t>(
            resolve(thread, inst, inst.space, a, 0));
      }
      set(thread, ops[0], inst.type, v, inst);
      break;
    }
    if (inst.space == Space::Shared)
      base = reinterpret_cast<uintptr_t>(shared.data() + windowOf(thread));
    else if (inst.space == Space::Local)
      base = reinterpret_cast<uintptr_t>(localBase(thread));
    else if (inst.space == Space::Param)
      base = reinterpret_cast<uintptr_t>(launch.params.data());
    set(thread, ops[0], inst.type, toSpace ? a - base : a + base, inst);
    break;
  }
  case Op::Ld:
  case Op::St: {
    const Operand &addressOperand = inst.op == Op::Ld ? ops[1] : ops[0];
    const Operand &data = inst.op == Op::Ld ? ops[0] : ops[1];
    if (addressOperand.kind != Operand::Mem)
      fail(thread, inst, "an address that is not [..]");
    unsigned size = typeBytes(inst.type);
    if (size == 0 || inst.vector == 0)
      fail(thread, inst, "an access of no bytes (no type)");
    Space space =
        addressOperand.symbolBase ? addressOperand.symbolSpace : inst.space;
    // The hardware faults on an access its bytes do not align (a vector's
    // whole size: st.v2.f32 needs 8 bytes).
    uint64_t address = memoryAddress(thread, addressOperand);
    if (address % (static_cast<uint64_t>(size) * inst.vector))
      fail(thread, inst,
           inst.op == Op::Ld ? "a ld address not aligned to its bytes"
                             : "a st address not aligned to its bytes");
    uint8_t *p = resolve(thread, inst, space, address,
                         static_cast<uint64_t>(size) * inst.vector);
    bool isShared = p >= shared.data() && p < shared.data() + shared.size();
    if (inst.op == Op::Ld)
      sharedAccess(thread, inst, p, static_cast<uint64_t>(size) * inst.vector,
                   Access::Load);
    for (unsigned i = 0; i < inst.vector; ++i) {
      const Operand &element = inst.vector > 1 ? data.elements.at(i) : data;
      if (inst.op == Op::Ld) {
        uint64_t v = 0;
        std::memcpy(&v, p + i * size, size);
        if (isSigned(inst.type))
          v = static_cast<uint64_t>(signExtend(inst.type, v));
        if (element.kind != Operand::Reg)
          fail(thread, inst, "a load into something not a register");
        reg(thread, element.reg) = v;
      } else {
        uint64_t v = value(thread, element);
        if (isShared && std::memcmp(p + i * size, &v, size) != 0)
          checkStoresOrdered(
              thread, inst, static_cast<uint64_t>(p - shared.data()) + i * size,
              size, "stores to");
        std::memcpy(p + i * size, &v, size);
        genericStore(thread, p + i * size, size);
      }
    }
    if (inst.op == Op::St)
      sharedAccess(thread, inst, p, static_cast<uint64_t>(size) * inst.vector,
                   Access::Store);
    break;
  }
  case Op::Atom: {
    unsigned size = typeBytes(inst.type);
    Space space = ops[1].symbolBase ? ops[1].symbolSpace : inst.space;
    uint8_t *p =
        resolve(thread, inst, space, memoryAddress(thread, ops[1]), size);
    uint64_t old = atomicUpdate(thread, inst, p, value(thread, ops[2]),
                                ops.size() > 3 ? value(thread, ops[3]) : 0);
    set(thread, ops[0], inst.type, old, inst);
    break;
  }
  case Op::Red: {
    // One atomic update per element (.v2/.v4 of f32 adds, sm_90), whose
    // address the vector's bytes align.
    unsigned size = typeBytes(inst.type);
    Space space = ops[0].symbolBase ? ops[0].symbolSpace : inst.space;
    uint64_t address = memoryAddress(thread, ops[0]);
    if (address % (static_cast<uint64_t>(size) * inst.vector))
      fail(thread, inst, "a red address not aligned to its vector's bytes");
    uint8_t *p = resolve(thread, inst, space, address,
                         static_cast<uint64_t>(size) * inst.vector);
    for (unsigned i = 0; i < inst.vector; ++i)
      atomicUpdate(
          thread, inst, p + i * size,
          value(thread, inst.vector > 1 ? ops[1].elements.at(i) : ops[1]), 0);
    break;
  }
  case Op::Fence:
    if (inst.text.find("proxy.async") != std::string::npos)
      proxyFence(thread);
    break;
  case Op::Nop:
  case Op::GridDepLaunchDependents:
    break;
  case Op::GridDepWait:
    gridsAwaited[thread] = true;
    break;
  case Op::MbarInit: {
    MbarrierRef barrier = mbarrier(thread, inst, ops[0], /*mustBeLive=*/false);
    uint64_t &word = barrier.word;
    uint64_t count = value(thread, ops[1]);
    if (count == 0 || count > 0xFFFF)
      fail(thread, inst, "an mbarrier count out of range");
    word = (kMbarMagic << 56) | (count << 16) | count;
    MbarrierClocks &c = mbarrierClock(barrier.index);
    std::fill(c.arrived.begin(), c.arrived.end(), 0);
    break;
  }
  case Op::MbarInval:
    mbarrier(thread, inst, ops[0]).word = 0;
    break;
  case Op::MbarArrive:
  case Op::MbarArriveExpectTx: {
    // [state or _,] [bar] then expect_tx's bytes or arrive's count.
    size_t at = ops[0].kind == Operand::Mem || ops.size() == 1 ? 0 : 1;
    if (ops[at].kind != Operand::Mem)
      fail(thread, inst, "an mbarrier that is not [..]");
    MbarrierRef barrier = mbarrier(thread, inst, ops[at]);
    uint64_t &word = barrier.word;
    int64_t tx = 0, arrivals = 1;
    if (inst.op == Op::MbarArriveExpectTx)
      tx = static_cast<int64_t>(mask(Type::U32, value(thread, ops.back())));
    else if (ops.size() > at + 1)
      arrivals =
          static_cast<int64_t>(mask(Type::U32, value(thread, ops.back())));
    if (arrivals < 1 || arrivals > 0xFFFFF)
      fail(thread, inst, "an mbarrier arrival count out of range");
    if (ops[0].kind == Operand::Reg)
      set(thread, ops[0], Type::B64, word, inst);
    MbarrierClocks &c = mbarrierClock(barrier.index);
    join(c.arrived, *known[thread]);
    c.arrived[thread] = std::max(c.arrived[thread], releases[thread]++);
    mbarrierUpdate(thread, inst, barrier.index, word, arrivals, tx);
    break;
  }
  case Op::MbarTryWait: {
    MbarrierRef barrier = mbarrier(thread, inst, ops[1]);
    uint64_t &word = barrier.word;
    uint64_t parity = value(thread, ops[2]) & 1;
    // The phase of parity `parity` has completed when the current phase's
    // parity differs.
    if ((word >> 63) == parity) {
      waits[thread] = Wait::Mbarrier;
      return false;
    }
    // The thread now sees what the completed phases made visible.
    seen[thread][barrier.index] = mbarrierCompletions[barrier.index];
    learn(thread, mbarrierClock(barrier.index).completed);
    set(thread, ops[0], Type::Pred, 1, inst);
    break;
  }
  case Op::TmaLoad:
    tmaLoad(thread, inst);
    break;
  case Op::Mapa: {
    uint64_t a = value(thread, ops[1]), rank = value(thread, ops[2]);
    rank &= 0xFFFFFFFF;
    if (rank >= ctas)
      fail(thread, inst,
           "mapa to CTA " + std::to_string(rank) + " of a cluster of " +
               std::to_string(ctas));
    if (inst.space == Space::SharedCluster) {
      uint64_t index = static_cast<uint64_t>(
          resolve(thread, inst, inst.space, a, 0) - shared.data());
      set(thread, ops[0], inst.type, clusterAddress(rank, index % stride),
          inst);
      break;
    }
    uint64_t start = reinterpret_cast<uintptr_t>(shared.data());
    if (a < start || a >= start + shared.size())
      fail(thread, inst, "mapa of a generic address outside shared memory");
    set(thread, ops[0], inst.type, start + rank * stride + (a - start) % stride,
        inst);
    break;
  }
  case Op::ClusterArrive:
    if (clusterArrivals[thread] != clusterWaits[thread])
      fail(thread, inst,
           "arrives at barrier.cluster again before its barrier.cluster.wait");
    ++clusterArrivals[thread];
    ++clusterArrived;
    // A relaxed arrival releases nothing.
    if (!inst.relaxed) {
      join(clusterArriving, *known[thread]);
      clusterArriving[thread] =
          std::max(clusterArriving[thread], releases[thread]++);
      for (auto [address, completions] : seen[thread])
        clusterSeenArriving[address] =
            std::max(clusterSeenArriving[address], completions);
    }
    break;
  case Op::ClusterWait:
    if (clusterArrivals[thread] == clusterWaits[thread])
      fail(thread, inst,
           "barrier.cluster.wait with no barrier.cluster.arrive "
           "before it");
    if (clusterPhases < clusterArrivals[thread]) {
      waits[thread] = Wait::Cluster;
      return false;
    }
    ++clusterWaits[thread];
    learn(thread, clusterCompleted);
    for (auto [address, completions] : clusterSeenCompleted)
      seen[thread][address] = std::max(seen[thread][address], completions);
    break;
  case Op::CpAsync:
    asyncCopy(thread, inst);
    break;
  case Op::CpAsyncArrive:
    asyncCopyArrive(thread, inst);
    break;
  default:
    arithmetic(thread, inst);
  }
  ++pc[thread];
  return true;
}

void BlockRun::run() {
  const unsigned groupSize[2] = {32, 128};
  while (true) {
    bool progress = false;
    for (unsigned t = 0; t < threads; ++t) {
      if (exited[t])
        continue;
      if (waits[t] == Wait::Mbarrier) {
        // Retry the wait: it may have completed.
        waits[t] = Wait::None;
        uint32_t before = pc[t];
        if (!step(t) && waits[t] == Wait::Mbarrier)
          continue;
        progress = true;
        if (pc[t] == before)
          continue;
      }
      if (waits[t] != Wait::None)
        continue;
      progress = true;
      while (step(t)) {
      }
    }
    unsigned live = 0, atBarrier = 0;
    for (unsigned t = 0; t < threads; ++t) {
      live += !exited[t];
      atBarrier += !exited[t] && waits[t] == Wait::Barrier;
    }
    if (live == 0)
      return;
    // bar.sync: a CTA whose live threads all wait at it.
    bool released = false;
    for (unsigned cta = 0; cta < ctas; ++cta) {
      unsigned first = cta * blockThreads, end = first + blockThreads;
      unsigned ctaLive = 0, ctaAtBarrier = 0;
      for (unsigned t = first; t < end; ++t) {
        ctaLive += !exited[t];
        ctaAtBarrier += !exited[t] && waits[t] == Wait::Barrier;
      }
      if (ctaLive == 0 || ctaAtBarrier != ctaLive)
        continue;
      released = true;
      // What any thread had seen of the mbarriers, every thread now sees.
      std::map<uint64_t, uint64_t> all;
      auto everyone = std::make_shared<Clock>(threads + groups, 0);
      const Clock *last = nullptr; // threads that share a clock join once
      for (unsigned t = first; t < end; ++t) {
        for (auto [address, completions] : seen[t])
          all[address] = std::max(all[address], completions);
        if (known[t].get() != last)
          join(*everyone, *known[t]);
        last = known[t].get();
      }
      // Each thread releases at the barrier: the stores before it are
      // ordered before what every thread does after it.
      for (unsigned t = first; t < end; ++t)
        (*everyone)[t] = releases[t]++;
      for (unsigned t = first; t < end; ++t)
        if (!exited[t]) {
          seen[t] = all;
          known[t] = everyone;
          waits[t] = Wait::None;
          ++pc[t];
        }
    }
    if (released)
      continue;
    // barrier.cluster: the phase completes once every live thread arrived
    // (a thread that exited counts as arrived); its waiters go on.
    unsigned arrivedOrExited = 0;
    for (unsigned t = 0; t < threads; ++t)
      arrivedOrExited += exited[t] || clusterArrivals[t] > clusterPhases;
    if (clusterArrived && arrivedOrExited == threads) {
      ++clusterPhases;
      clusterArrived = 0;
      clusterCompleted = clusterArriving;
      clusterSeenCompleted = std::move(clusterSeenArriving);
      clusterSeenArriving.clear();
      std::fill(clusterArriving.begin(), clusterArriving.end(), 0);
      for (unsigned t = 0; t < threads; ++t)
        if (!exited[t] && waits[t] == Wait::Cluster)
          waits[t] = Wait::None;
      continue;
    }
    // Warp- and warpgroup-wide instructions, once all their threads are at
    // the same one.
    for (unsigned t = 0; t < threads; ++t) {
      if (exited[t] || waits[t] != Wait::Collective)
        continue;
      const Instruction &inst = kernel.code[pc[t]];
      if (inst.op == Op::Shfl) {
        progress |= shuffle(t / 32, t, inst);
        continue;
      }
      if (inst.op == Op::WarpSync) {
        progress |= warpSync(t / 32, t, inst);
        continue;
      }
      unsigned size = inst.op == Op::MmaSync ? groupSize[0] : groupSize[1];
      // Warps and warpgroups are formed within the thread's CTA.
      unsigned inBlock = t % blockThreads;
      unsigned first = t - inBlock + inBlock / size * size;
      if (inBlock / size * size + size > blockThreads)
        fail(t, inst,
             "the block has no whole group of " + std::to_string(size) +
                 " threads for it");
      bool ready = true;
      for (unsigned u = first; u < first + size && ready; ++u)
        ready = !exited[u] && waits[u] == Wait::Collective && pc[u] == pc[t];
      // setmaxnreg.inc waits until the pool holds the registers it takes
      // (a count out of range goes on, for collective to refuse).
      if (ready && inst.op == Op::SetMaxNReg && inst.increase) {
        uint64_t wanted = value(t, inst.operands[0]);
        unsigned limit = registerLimit[groupOf(first)];
        if (limit > 0 && wanted <= 256 && wanted > limit &&
            static_cast<int64_t>(wanted - limit) * 128 >
                registerPool[ctaOf(first)])
          ready = false;
      }
      if (!ready)
        continue;
      collective(first, size, inst);
      for (unsigned u = first; u < first + size; ++u) {
        waits[u] = Wait::None;
        ++pc[u];
      }
      progress = true;
    }
    if (!progress) {
      unsigned clusterWaiting = 0;
      for (unsigned t = 0; t < threads; ++t)
        clusterWaiting += !exited[t] && waits[t] == Wait::Cluster;
      for (unsigned t = 0; t < threads; ++t)
        if (!exited[t])
          fail(t, kernel.code[pc[t]],
               std::string("deadlock: no thread of the ") +
                   (ctas > 1 ? "cluster" : "block") + " can go on (" +
                   std::to_string(atBarrier) + " of " + std::to_string(live) +
                   " live threads at bar.sync" +
                   (clusterWaiting ? ", " + std::to_string(clusterWaiting) +
                                         " at barrier.cluster.wait"
                                   : std::string()) +
                   ")");
    }
  }
}

} // namespace

struct EmulatedModule {
  std::unique_ptr<Program> program;
};

extern "C" {

void *ptxemu_load(const char *ptx, char *error, size_t errorSize) {
  std::string message;
  auto program = parseProgram(ptx, message);
  if (!program) {
    std::snprintf(error, errorSize, "%s", message.c_str());
    return nullptr;
  }
  return new EmulatedModule{std::move(program)};
}

void ptxemu_unload(void *module) {
  delete static_cast<EmulatedModule *>(module);
}

void *ptxemu_function(void *module, const char *name) {
  auto &kernels = static_cast<EmulatedModule *>(module)->program->kernels;
  auto it = kernels.find(name);
  return it == kernels.end() ? nullptr : it->second.get();
}

void *ptxemu_prepare(void *function, const unsigned grid[3],
                     const unsigned block[3], unsigned dynamicShared,
                     void **params) {
  auto *kernel = static_cast<const Kernel *>(function);
  auto *launch = new Launch{kernel,
                            {grid[0], grid[1], grid[2]},
                            {block[0], block[1], block[2]},
                            dynamicShared,
                            {}};
  launch->params.assign(kernel->paramTotal, 0);
  for (size_t i = 0; i < kernel->paramOffsets.size(); ++i)
    if (kernel->paramBytes[i])
      std::memcpy(launch->params.data() + kernel->paramOffsets[i], params[i],
                  kernel->paramBytes[i]);
  return launch;
}

/// Fails a launch that CUDA would refuse on sm_90: a block of no thread or
/// of more than 1024 (z at most 64) or than the kernel's .maxntid, or more
/// shared memory than a block may have (227 KiB, static and dynamic
/// together).
static void checkLaunchBounds(const Launch &launch) {
  const unsigned *block = launch.block;
  uint64_t threads = uint64_t{block[0]} * block[1] * block[2];
  std::string where = "kernel '" + launch.kernel->name + "': ";
  if (threads == 0 || threads > 1024 || block[2] > 64)
    throw Failure{where + "a block of " + std::to_string(block[0]) + " x " +
                  std::to_string(block[1]) + " x " + std::to_string(block[2]) +
                  " threads (CUDA allows 1 to 1024, z at most 64)"};
  if (launch.kernel->maxThreads && threads > launch.kernel->maxThreads)
    throw Failure{where + "a block of " + std::to_string(threads) +
                  " threads, more than its .maxntid allows (" +
                  std::to_string(launch.kernel->maxThreads) + ")"};
  // Clusters: at most 8 CTAs (the portable size), dividing the grid, of
  // whole warps (so that no warp spans two CTAs here).
  const unsigned *cluster = launch.cluster;
  uint64_t clusterSize = uint64_t{cluster[0]} * cluster[1] * cluster[2];
  if (clusterSize == 0 || clusterSize > 8)
    throw Failure{where + "a cluster of " + std::to_string(cluster[0]) + " x " +
                  std::to_string(cluster[1]) + " x " +
                  std::to_string(cluster[2]) +
                  " CTAs (1 to 8 without a non-portable size)"};
  for (unsigned d = 0; d < 3; ++d)
    if (launch.grid[d] % cluster[d])
      throw Failure{where + "a grid of " + std::to_string(launch.grid[d]) +
                    " blocks in dimension " + std::to_string(d) +
                    ", not a multiple of the cluster's " +
                    std::to_string(cluster[d])};
  if (clusterSize > 1 && threads % 32)
    throw Failure{where + "a cluster of blocks of " + std::to_string(threads) +
                  " threads, not whole warps (not modelled)"};
  constexpr uint64_t kMaxSharedBytes = 227 * 1024;
  uint64_t shared =
      uint64_t{launch.kernel->dynamicShared} + launch.dynamicShared;
  if (shared > kMaxSharedBytes)
    throw Failure{where + std::to_string(shared) +
                  " bytes of shared memory per block (at most " +
                  std::to_string(kMaxSharedBytes) + ")"};
}

void ptxemu_set_programmatic(void *launch) {
  static_cast<Launch *>(launch)->programmatic = true;
}

void ptxemu_set_cluster(void *launch, const unsigned cluster[3]) {
  std::copy(cluster, cluster + 3, static_cast<Launch *>(launch)->cluster);
}

int ptxemu_run(void *launchHandle, char *error, size_t errorSize) {
  auto *launch = static_cast<Launch *>(launchHandle);
  try {
    checkLaunchBounds(*launch);
    const unsigned *cluster = launch->cluster;
    for (unsigned z = 0; z < launch->grid[2]; z += cluster[2])
      for (unsigned y = 0; y < launch->grid[1]; y += cluster[1])
        for (unsigned x = 0; x < launch->grid[0]; x += cluster[0])
          BlockRun(*launch, x, y, z).run();
  } catch (const Failure &failure) {
    std::snprintf(error, errorSize, "%s", printable(failure.message).c_str());
    return 1;
  }
  return 0;
}

void ptxemu_release(void *launch) { delete static_cast<Launch *>(launch); }

void ptxemu_set_step_limit(unsigned long long steps) { stepLimit = steps; }

void ptxemu_track(void *pointer, size_t bytes) {
  std::lock_guard<std::mutex> lock(trackedMutex);
  tracked[reinterpret_cast<uintptr_t>(pointer)] = bytes;
}

void ptxemu_untrack(void *pointer) {
  std::lock_guard<std::mutex> lock(trackedMutex);
  tracked.erase(reinterpret_cast<uintptr_t>(pointer));
}

void ptxemu_encode_tensor_map(void *mapOut, int type, unsigned rank,
                              void *address, const unsigned long long *dims,
                              const unsigned long long *strides,
                              const unsigned *box, int swizzleMode, int oob) {
  TensorMap map{};
  map.address = reinterpret_cast<uintptr_t>(address);
  map.rank = rank;
  map.type = static_cast<uint32_t>(type);
  map.swizzle = static_cast<uint32_t>(swizzleMode);
  map.oob = static_cast<uint32_t>(oob);
  for (unsigned d = 0; d < rank && d < 5; ++d) {
    map.box[d] = box[d];
    map.dims[d] = dims[d];
    if (d + 1 < rank && d < 4)
      map.strides[d] = strides[d];
  }
  std::memcpy(mapOut, &map, sizeof map);
}

} // extern "C"
