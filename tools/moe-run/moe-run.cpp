//===- moe-run.cpp - Run a compiled MoE layer on .npy activations ---------===//
//
//   moe-run LAYER.mlir|LAYER.so --weights CHECKPOINT --input X.npy
//           --output Y.npy [--output S.npy ...] [--entry NAME] [--threads N]
//           [--bench N [--cold]]
//
// Loads a module compiled by moe-compile (or compiles LAYER.mlir with the
// moe-compile found next to this executable), binds the entry's weights to
// the checkpoint, runs it on X and writes Y (and one file per further
// result, e.g. routing statistics). With --bench it times N runs
// after a warm-up (each after evicting the caches, with --cold) and prints
// one JSON line. Like the runtime it links neither
// LLVM nor MLIR, so that it can be deployed without them. Every failure
// prints one line "moe-run: error: <problem>" and exits with 1.
//
//===----------------------------------------------------------------------===//

#include "moe/Runtime/Allocation.h"
#include "moe/Runtime/CheckedArithmetic.h"
#include "moe/Runtime/CudaDriver.h"
#include "moe/Runtime/Json.h"
#include "moe/Runtime/Module.h"
#include "moe/Runtime/Npy.h"
#include "moe/Runtime/OutputFile.h"
#include "moe/Runtime/Safetensors.h"
#include "moe/Version.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <optional>
#include <signal.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace moe::runtime;

extern char **environ;

#include "../SanitizerOptions.h"

namespace {

const char *const kUsage =
    "usage: moe-run LAYER.mlir|LAYER.so --weights CHECKPOINT --input X.npy\n"
    "               --output Y.npy [--output S.npy ...] [--entry NAME]\n"
    "               [--target cpu|cuda] [--threads N] [--device N]\n"
    "               [--bench N [--cold]] [--timeout SECONDS]\n"
    "       moe-run --devices\n"
    "\n"
    "Runs an entry point of a compiled MoE layer on float32 [T, H] tokens.\n"
    "\n"
    "  LAYER.so            a module compiled by moe-compile; LAYER.mlir is\n"
    "                      first compiled by the moe-compile next to moe-run\n"
    "  --weights PATH      safetensors checkpoint: a .safetensors file, a\n"
    "                      model.safetensors.index.json, or a directory\n"
    "  --input X.npy       float32 ('<f4') [T, H] C-order array; repeat it\n"
    "                      for an entry taking several inputs, in order\n"
    "  --output Y.npy      where a result is written: one per result of the\n"
    "                      entry, in order ([T, H] float32 activations, then\n"
    "                      e.g. routing statistics as int64 or float32)\n"
    "  --entry NAME        the entry point to run (default: forward)\n"
    "  --target T          cpu or cuda: what LAYER.mlir is compiled for\n"
    "                      (default cpu); a LAYER.so must be a module of\n"
    "                      that target\n"
    "  --device N          run a CUDA module's GPU code on GPU N (default 0;\n"
    "                      moe-run --devices lists them)\n"
    "  --threads N         a CPU module's threads: its OpenMP team, or the\n"
    "                      tokens of a token-parallel entry split over N\n"
    "                      threads (1 to 1024, default 1)\n"
    "  --bench N           one warm-up run, then N timed runs; prints one\n"
    "                      JSON line with the median, min and max in ms,\n"
    "                      the one-time cost of packing weights at bind and\n"
    "                      the kernel variant this CPU runs\n"
    "  --cold              with --bench: before each run, write a buffer of\n"
    "                      twice the last-level cache (64 MiB to 1 GiB), so\n"
    "                      that weights come from DRAM, as a layer's do when\n"
    "                      the model's other layers run between its calls\n"
    "  --timeout SECONDS   a layer compiled for expert parallelism (run\n"
    "                      under mpirun -np R): end the whole job with an\n"
    "                      error when one call takes longer (a rank stopped\n"
    "                      or hung; default 300, 1 to 86400)\n"
    "  --quiet             no progress lines and no human-readable --bench\n"
    "                      line (both go to a terminal's stderr only)\n"
    "  --devices           list the CUDA GPUs (one line each: ordinal, name,\n"
    "                      compute capability, memory, driver version) and\n"
    "                      exit; without a CUDA driver or GPU, one error\n"
    "                      line\n"
    "  --version           print the version and exit\n";

constexpr unsigned kMaxThreads = 1024;
constexpr long long kMaxBenchRuns = 1000000000;

/// The MPI world of an expert-parallel layer, once loaded; null otherwise.
const MpiWorld *mpiWorld = nullptr;

/// Prints the one error line; returns the exit status.
int reportError(const std::string &message) {
  // Messages quote input through printable() already; this keeps any that
  // does not from breaking the line. Once MPI runs (even if the module
  // that started it then failed to load), the other ranks may wait in a
  // collective: the whole job ends.
  const MpiWorld *world = MpiWorld::current();
  if (!world) {
    std::fprintf(stderr, "moe-run: error: %s\n", printable(message).c_str());
    return 1;
  }
  std::fprintf(stderr, "moe-run: error: rank %d of %d: %s\n", world->rank(),
               world->size(), printable(message).c_str());
  std::fflush(stderr);
  world->abort(1);
}

/// Under MPI, the line a rank prints when the launcher ends it (mpirun
/// sends SIGTERM to every rank once one has failed).
char terminatedMessage[160] = "moe-run: error: ended by the MPI launcher\n";

extern "C" void onTerminated(int) {
  ssize_t ignored =
      write(STDERR_FILENO, terminatedMessage, strlen(terminatedMessage));
  (void)ignored;
  _exit(1);
}

/// Under MPI: ends the job with an error when a call runs past the timeout
/// (another rank stopped or hung, so a collective never completes).
class CallWatchdog {
public:
  CallWatchdog(const MpiWorld &world, long long seconds)
      : world(world), limit(seconds) {
    thread = std::thread([this] { watch(); });
  }
  ~CallWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    thread.join();
  }
  void begin() { start.store(now()); }
  void end() { start.store(0); }

private:
  static long long now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count() +
           1;
  }
  void watch() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!wake.wait_for(lock, std::chrono::milliseconds(100),
                          [this] { return stopping; })) {
      long long began = start.load();
      if (began != 0 && now() - began > limit * 1000) {
        std::fprintf(stderr,
                     "moe-run: error: rank %d of %d: a call of the layer ran "
                     "over %lld s (--timeout); another rank stopped or hung\n",
                     world.rank(), world.size(), limit);
        std::fflush(stderr);
        // Not MPI_Abort: this thread may not call MPI while the calling
        // one waits in a collective. The launcher ends the other ranks
        // when this one exits with an error.
        std::_Exit(1);
      }
    }
  }

  const MpiWorld &world;
  long long limit;
  std::atomic<long long> start{0};
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread thread;
};

/// The command line.
struct Options {
  std::string layer;
  std::string weights;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::string entry = "forward";
  unsigned threads = 1;
  long long bench = 0;
  bool help = false;
  bool version = false;
  bool devices = false;
  std::optional<int> device;
  /// --target: what a .mlir layer is compiled for, and what a module must
  /// be; unset: cpu for .mlir, anything for .so.
  std::optional<std::string> target;
  bool quiet = false;
  bool cold = false;
  /// Under MPI: the longest a call may take before the job is ended.
  long long timeoutSeconds = 300;
  /// Whether --threads and --timeout were given: each applies to some
  /// modules only (CPU ones; those compiled for expert parallelism).
  bool threadsGiven = false;
  bool timeoutGiven = false;
};

/// Parses a decimal integer in [min, max]; no sign, no spaces.
std::optional<long long> parseCount(const std::string &text, long long min,
                                    long long max) {
  if (text.empty() || text.size() > 19)
    return std::nullopt;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max)
    return std::nullopt;
  return value;
}

/// Bytes that push everything a run read out of the caches: twice the
/// last-level cache the C library reports, within [64 MiB, 1 GiB].
size_t cacheEvictionBytes() {
  constexpr size_t kMiB = size_t(1) << 20;
  long cache = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (cache <= 0)
    cache = sysconf(_SC_LEVEL2_CACHE_SIZE);
  size_t bytes = cache > 0 ? 2 * static_cast<size_t>(cache) : 0;
  return std::clamp(bytes, 64 * kMiB, 1024 * kMiB);
}

/// Writes every byte of `buffer` (a value that changes per run, so the
/// stores are not elided as redundant).
void evictCaches(std::vector<unsigned char> &buffer, long long run) {
  std::memset(buffer.data(), static_cast<int>(run & 0xFF), buffer.size());
  // Keep the stores: the buffer is read once after them.
  volatile unsigned char sink = buffer[buffer.size() / 2];
  (void)sink;
}

/// Prints one line per CUDA GPU; the error line without a driver or GPU.
int listDevices() {
  Result<const CudaDriver *> driver = CudaDriver::get();
  if (!driver)
    return reportError(driver.error());
  Result<int> count = (*driver)->deviceCount();
  if (!count)
    return reportError(count.error());
  if (*count == 0)
    return reportError("the CUDA driver " + (*driver)->version() +
                       " sees no GPU");
  for (int ordinal = 0; ordinal < *count; ++ordinal) {
    Result<CudaDevice> device = (*driver)->device(ordinal);
    if (!device)
      return reportError(device.error());
    std::printf("%s\n", describeCudaDevice(**driver, *device).c_str());
  }
  return 0;
}

/// Parses argv into `options`; returns the error message, or "" on success.
std::string parseOptions(const std::vector<std::string> &args,
                         Options &options) {
  bool seenWeights = false, seenEntry = false, seenThreads = false,
       seenBench = false, seenDevice = false, seenTarget = false,
       seenTimeout = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &arg = args[i];
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      return "";
    }
    if (arg == "--version") {
      options.version = true;
      return "";
    }
    if (arg == "--devices") {
      options.devices = true;
      return "";
    }
    if (arg == "--quiet") {
      options.quiet = true;
      continue;
    }
    if (arg == "--cold") {
      options.cold = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (!options.layer.empty())
        return "more than one layer given ('" + printable(options.layer) +
               "' and '" + printable(arg) + "'); see --help";
      options.layer = arg;
      continue;
    }
    std::string flag = arg, value;
    bool hasValue = false;
    size_t equals = arg.find('=');
    if (arg.compare(0, 2, "--") == 0 && equals != std::string::npos) {
      flag = arg.substr(0, equals);
      value = arg.substr(equals + 1);
      hasValue = true;
    }
    bool *seen = nullptr;
    if (flag == "--weights")
      seen = &seenWeights;
    else if (flag == "--entry")
      seen = &seenEntry;
    else if (flag == "--threads")
      seen = &seenThreads;
    else if (flag == "--bench")
      seen = &seenBench;
    else if (flag == "--device")
      seen = &seenDevice;
    else if (flag == "--target")
      seen = &seenTarget;
    else if (flag == "--timeout")
      seen = &seenTimeout;
    else if (flag != "--input" && flag != "--output")
      return "unknown option '" + printable(flag) + "'; see --help";
    if (!hasValue) {
      if (i + 1 == args.size())
        return "option '" + flag + "' needs a value";
      value = args[++i];
    }
    if (seen) {
      if (*seen)
        return "option '" + flag + "' given more than once";
      *seen = true;
    }
    if (value.empty())
      return "option '" + flag + "' needs a non-empty value";
    if (flag == "--weights") {
      options.weights = value;
    } else if (flag == "--input") {
      options.inputs.push_back(value);
    } else if (flag == "--output") {
      if (std::find(options.outputs.begin(), options.outputs.end(), value) !=
          options.outputs.end())
        return "--output '" + printable(value) + "' given more than once";
      options.outputs.push_back(value);
    } else if (flag == "--entry") {
      options.entry = value;
    } else if (flag == "--threads") {
      std::optional<long long> n = parseCount(value, 1, kMaxThreads);
      if (!n)
        return "--threads needs an integer from 1 to " +
               std::to_string(kMaxThreads) + ", got '" + printable(value) +
               "'";
      options.threads = static_cast<unsigned>(*n);
      options.threadsGiven = true;
    } else if (flag == "--target") {
      if (value != "cpu" && value != "cuda")
        return "--target needs cpu or cuda, got '" + printable(value) + "'";
      options.target = value;
    } else if (flag == "--timeout") {
      std::optional<long long> n = parseCount(value, 1, 86400);
      if (!n)
        return "--timeout needs a number of seconds from 1 to 86400, got '" +
               printable(value) + "'";
      options.timeoutSeconds = *n;
      options.timeoutGiven = true;
    } else if (flag == "--device") {
      std::optional<long long> n = parseCount(value, 0, 1023);
      if (!n)
        return "--device needs a GPU ordinal from 0 to 1023, got '" +
               printable(value) + "'";
      options.device = static_cast<int>(*n);
    } else {
      std::optional<long long> n = parseCount(value, 1, kMaxBenchRuns);
      if (!n)
        return "--bench needs an integer from 1 to " +
               std::to_string(kMaxBenchRuns) + ", got '" + printable(value) +
               "'";
      options.bench = *n;
    }
  }
  if (options.cold && !options.bench)
    return "--cold needs --bench";
  if (options.layer.empty())
    return "no layer given; see --help";
  if (!seenWeights)
    return "missing --weights CHECKPOINT; see --help";
  if (options.inputs.empty())
    return "missing --input X.npy; see --help";
  if (options.outputs.empty())
    return "missing --output Y.npy; see --help";
  return "";
}

/// A private temporary directory, removed with its files on destruction.
class TempDir {
public:
  TempDir() = default;
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  ~TempDir() { remove(); }

  /// Creates the directory under $TMPDIR (or /tmp).
  Status create() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base && *base ? base : "/tmp") + "/moe-run-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!mkdtemp(buffer.data()))
      return Status::failure(pattern + ": cannot create a temporary "
                                       "directory: " +
                             std::strerror(errno));
    path = buffer.data();
    return Status::success();
  }

  /// Removes the files in the directory and the directory.
  void remove() {
    if (path.empty())
      return;
    if (DIR *dir = opendir(path.c_str())) {
      while (dirent *item = readdir(dir)) {
        std::string name = item->d_name;
        if (name != "." && name != "..")
          unlink((path + "/" + name).c_str());
      }
      closedir(dir);
    }
    rmdir(path.c_str());
    path.clear();
  }

  /// The directory.
  const std::string &get() const { return path; }

private:
  std::string path;
};

/// The directory holding this executable.
Result<std::string> executableDir() {
  std::vector<char> buffer(4096);
  ssize_t n = readlink("/proc/self/exe", buffer.data(), buffer.size());
  if (n <= 0 || static_cast<size_t>(n) == buffer.size())
    return Result<std::string>::failure(
        "cannot find the directory of moe-run: /proc/self/exe: " +
        std::string(n < 0 ? std::strerror(errno) : "path too long"));
  std::string exe(buffer.data(), static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

/// Compiles `layer` with moe-compile into `dir`; returns the module's path.
/// When moe-compile fails it has printed its error, so the returned error is
/// empty.
Result<std::string> compileLayer(const std::string &layer,
                                 const std::string &target,
                                 const std::string &dir) {
  Result<std::string> binDir = executableDir();
  if (!binDir)
    return binDir.status();
  std::string compiler = *binDir + "/moe-compile";
  std::string output = dir + "/layer.so";
  std::vector<std::string> args = {compiler, layer, "--target",
                                   target,   "-o",  output};
  std::vector<char *> argv;
  for (std::string &arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);

  // The compiler's stdout goes to our stderr: stdout is for --bench.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid;
  int error = posix_spawn(&pid, compiler.c_str(), &actions, nullptr,
                          argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0)
    return Result<std::string>::failure("cannot run " + compiler + ": " +
                                        std::strerror(error));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return Result<std::string>::failure("waiting for " + compiler + ": " +
                                          std::strerror(errno));
  }
  if (WIFSIGNALED(status))
    return Result<std::string>::failure(compiler + " was killed by signal " +
                                        std::to_string(WTERMSIG(status)) +
                                        " while compiling " + layer);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Result<std::string>::failure("");
  if (access(output.c_str(), F_OK) != 0)
    return Result<std::string>::failure(compiler + " succeeded on " + layer +
                                        " but wrote no " + output);
  return output;
}

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Loads LAYER, compiling it first for `target` (cpu by default) when it
/// is a .mlir file; the temporary files are gone when this returns. A
/// module of another target than a given one is refused.
Result<std::shared_ptr<const CompiledModule>>
loadLayer(const std::string &layer, const std::optional<std::string> &target,
          std::optional<int> device) {
  using ResultT = Result<std::shared_ptr<const CompiledModule>>;
  if (!endsWith(layer, ".mlir")) {
    ResultT module = CompiledModule::load(layer, device);
    if (module && target && (*module)->isGpu() != (*target == "cuda"))
      return ResultT::failure(printable(layer) + ": a module compiled for " +
                              ((*module)->isGpu() ? "cuda" : "cpu") +
                              ", not for --target " + *target);
    return module;
  }
  TempDir dir;
  Status created = dir.create();
  if (!created)
    return created;
  Result<std::string> module =
      compileLayer(layer, target.value_or("cpu"), dir.get());
  if (!module)
    return module.status();
  return CompiledModule::load(*module, device);
}

/// Formats a shape as numpy does: "(3,)", "(2, 3)".
std::string formatTuple(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// The .npy element type of a result type; false for types moe-run does not
/// write.
bool npyElement(ElementType type, NpyElement &out) {
  switch (type) {
  case ElementType::F32:
    out = NpyElement::F32;
    return true;
  case ElementType::I32:
    out = NpyElement::I32;
    return true;
  case ElementType::I64:
    out = NpyElement::I64;
    return true;
  case ElementType::BF16:
  case ElementType::F16:
  case ElementType::F8E4M3FN:
  case ElementType::I8:
    return false;
  }
  return false;
}

/// Progress of the long steps (loading, binding and packing weights,
/// running) on stderr, when it is a terminal and --quiet is not given: a
/// line when a step starts, one with its result and time when it ends
/// (whole lines, so that an error or a child's output never lands inside
/// one).
class Progress {
public:
  explicit Progress(bool quiet) : enabled(!quiet && isatty(STDERR_FILENO)) {}

  /// Starts a step: "moe-run: <what> ...".
  void start(const std::string &what) {
    if (!enabled)
      return;
    step = printable(what);
    begin = std::chrono::steady_clock::now();
    std::fprintf(stderr, "moe-run: %s ...\n", step.c_str());
  }

  /// Ends the step: "moe-run: <what>: <result> (<seconds> s)".
  void done(const std::string &result = "done") {
    if (!enabled)
      return;
    double seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - begin)
                         .count();
    std::fprintf(stderr, "moe-run: %s: %s (%.2f s)\n", step.c_str(),
                 result.c_str(), seconds);
  }

  /// Whether lines are printed.
  bool on() const { return enabled; }

private:
  bool enabled;
  std::string step;
  std::chrono::steady_clock::time_point begin;
};

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

/// Refuses an output that names `input` (an input of the run): writing it
/// would destroy the input, or the mapped module under the running process.
Status checkNotAnInput(const std::vector<std::string> &outputs,
                       const std::string &input, const char *role) {
  for (const std::string &output : outputs)
    if (isSameFile(output, input))
      return Status::failure("--output '" + printable(output) + "' is the " +
                             role + " '" + printable(input) + "'");
  return Status::success();
}

int run(const Options &options) {
  // Outputs are written aside and renamed into place once all succeeded;
  // creating them now fails early on an unwritable directory.
  std::vector<PendingOutput> outputFiles;
  for (size_t i = 0; i < options.outputs.size(); ++i) {
    const std::string &path = options.outputs[i];
    for (size_t j = 0; j < i; ++j)
      if (isSameFile(options.outputs[j], path))
        return reportError("--output '" + printable(path) + "' and '" +
                           printable(options.outputs[j]) +
                           "' name the same file");
    Result<PendingOutput> file = PendingOutput::create(path);
    if (!file)
      return reportError(file.error());
    outputFiles.push_back(file.take());
  }
  Status status = checkNotAnInput(options.outputs, options.layer, "layer");
  if (!status)
    return reportError(status.error());
  for (const std::string &input : options.inputs) {
    status = checkNotAnInput(options.outputs, input, "input");
    if (!status)
      return reportError(status.error());
  }

  Progress progress(options.quiet);
  progress.start("loading " + options.layer);
  Result<std::shared_ptr<const CompiledModule>> module =
      loadLayer(options.layer, options.target, options.device);
  if (module)
    progress.done();
  if (!module) {
    if (module.error().empty())
      return 1; // moe-compile printed the error.
    return reportError(module.error());
  }
  mpiWorld = (*module)->mpiWorld();
  // Options the module would ignore are refused, not silently dropped.
  if (options.threadsGiven && (*module)->isGpu())
    return reportError(printable(options.layer) +
                       ": a module compiled for CUDA runs "
                       "on the GPU, not on --threads");
  if (options.timeoutGiven && !mpiWorld)
    return reportError(printable(options.layer) +
                       ": --timeout applies to a layer compiled for expert "
                       "parallelism (run under mpirun), which this is not");
  if (mpiWorld) {
    std::snprintf(terminatedMessage, sizeof(terminatedMessage),
                  "moe-run: error: rank %d of %d: ended by the MPI launcher "
                  "(another rank failed, or the job was cancelled)\n",
                  mpiWorld->rank(), mpiWorld->size());
    struct sigaction action = {};
    action.sa_handler = onTerminated;
    sigaction(SIGTERM, &action, nullptr);
  }
  progress.start("opening " + options.weights);
  Result<Checkpoint> checkpoint = Checkpoint::open(options.weights);
  if (!checkpoint)
    return reportError(checkpoint.error());
  progress.done(std::to_string(checkpoint->tensors().size()) + " tensors in " +
                std::to_string(checkpoint->files().size()) + " files");
  for (const std::string &file : checkpoint->sourcePaths()) {
    status = checkNotAnInput(options.outputs, file, "checkpoint file");
    if (!status)
      return reportError(status.error());
  }
  progress.start("binding the weights of '" + options.entry + "'");
  Result<BoundEntry> entry = BoundEntry::bind(
      module.take(), options.entry,
      std::make_shared<const Checkpoint>(checkpoint.take()));
  if (!entry)
    return reportError(entry.error());
  if (progress.on()) {
    // Stacks of "{e}" tensors and unaligned tensors are copied, weights
    // with a packing function packed; the others are used in place in the
    // checkpoint mapping.
    uint64_t copied = 0, mapped = 0;
    for (size_t i = 0; i < entry->spec().args.size(); ++i) {
      if (entry->spec().args[i].kind != ArgKind::Weight)
        continue;
      bool shared = false;
      for (size_t j = 0; j < i && !shared; ++j)
        shared = entry->weightData(j) == entry->weightData(i) &&
                 entry->weightSize(i) != 0;
      if (shared)
        continue;
      (entry->ownsWeight(i) ? copied : mapped) += entry->weightSize(i);
    }
    std::string packing;
    if (entry->numPackedWeights() != 0) {
      char text[96];
      std::snprintf(text, sizeof(text), ", %zu packed in panels (%.1f ms)",
                    entry->numPackedWeights(),
                    entry->packingSeconds() * 1e3);
      packing = text;
    }
    progress.done(megabytes(copied + mapped) + ": " + megabytes(copied) +
                  " copied (expert stacks, packing), " + megabytes(mapped) +
                  " mapped in place" + packing);
  }
  // Under expert parallelism each rank says what it holds and read.
  if (mpiWorld && !options.quiet) {
    int64_t experts = 0, window = 0;
    for (const ManifestArg &arg : entry->spec().args)
      if (arg.windowOf > 0) {
        experts = arg.windowOf;
        window = (arg.isPacked() ? arg.packingShape : arg.shape)[0];
        break;
      }
    int rank = mpiWorld->rank(), size = mpiWorld->size();
    std::string held = "no expert window";
    if (experts > 0) {
      int64_t first = expertWindowStart(experts, size, rank);
      held = "experts " +
             std::to_string(expertOwnedStart(experts, size, rank)) + ".." +
             std::to_string(expertOwnedStart(experts, size, rank + 1) - 1) +
             " of " + std::to_string(experts) + " (window " +
             std::to_string(first) + ".." + std::to_string(first + window - 1) +
             ")";
    }
    std::fprintf(stderr,
                 "moe-run: rank %d of %d: %s; %llu bytes read from the "
                 "checkpoint\n",
                 rank, size, held.c_str(),
                 static_cast<unsigned long long>(entry->checkpointBytesRead()));
  }

  std::string name = "'" + printable(entry->name()) + "'";
  if (options.inputs.size() != entry->numInputs())
    return reportError(name + " takes " +
                       std::to_string(entry->numInputs()) +
                       (entry->numInputs() == 1 ? " input" : " inputs") +
                       ", got " + std::to_string(options.inputs.size()) +
                       " --input");
  if (options.outputs.size() != entry->numResults())
    return reportError(name + " has " + std::to_string(entry->numResults()) +
                       (entry->numResults() == 1 ? " result" : " results") +
                       ", got " + std::to_string(options.outputs.size()) +
                       " --output");

  std::vector<NpyArray> arrays;
  std::vector<MatrixRef> inputs;
  for (size_t i = 0; i < options.inputs.size(); ++i) {
    const std::string &path = options.inputs[i];
    Result<NpyArray> array = readNpy(path);
    if (!array)
      return reportError(array.error());
    if (array->descr != "<f4")
      return reportError(path + ": expected a float32 ('<f4') array, got '" +
                         printable(array->descr) + "'");
    if (array->shape.size() != 2)
      return reportError(path + ": expected a [T, H] array of rank 2, got "
                                "shape " +
                         formatTuple(array->shape));
    status = entry->checkInput(i, array->shape[0], array->shape[1]);
    if (!status)
      return reportError(path + ": " + status.error());
    arrays.push_back(array.take());
  }
  // Under expert parallelism each rank runs its share of the tokens,
  // rows [T r / R, T (r + 1) / R), and rank 0 writes the whole results.
  int64_t allTokens = arrays.empty() ? 0 : arrays[0].shape[0];
  int64_t firstToken = 0, tokens = allTokens;
  if (mpiWorld) {
    for (const NpyArray &array : arrays)
      if (array.shape[0] != allTokens)
        return reportError("the inputs have different token counts");
    auto share = [&](int rank) {
      return static_cast<int64_t>(static_cast<__int128>(allTokens) * rank /
                                  mpiWorld->size());
    };
    firstToken = share(mpiWorld->rank());
    tokens = share(mpiWorld->rank() + 1) - firstToken;
  }
  for (const NpyArray &array : arrays)
    inputs.push_back({array.data.data() + firstToken * array.shape[1], tokens,
                      array.shape[1]});

  // One zero-initialized buffer per result, its size checked first.
  std::vector<AlignedBuffer> resultBuffers;
  std::vector<OutputRef> outputs;
  for (size_t r = 0; r < entry->numResults(); ++r) {
    std::vector<int64_t> shape = entry->resultShape(r, tokens);
    std::string what = name + " result " + std::to_string(r) + " " +
                       formatTuple(shape);
    std::optional<int64_t> numBytes =
        checkedByteSize(shape, elementTypeSize(entry->resultType(r)));
    if (!numBytes)
      return reportError(what + " has too many elements");
    Result<AlignedBuffer> buffer = AlignedBuffer::allocate(*numBytes, what);
    if (!buffer)
      return reportError(buffer.error());
    resultBuffers.push_back(buffer.take());
    outputs.push_back({resultBuffers.back().data(), std::move(shape)});
  }

  std::vector<double> times;
  long long runs = options.bench ? options.bench + 1 : 1;
  progress.start("running " + std::to_string(tokens) + " tokens" +
                 (options.bench ? ", " + std::to_string(runs) + " runs" : ""));
  std::vector<unsigned char> evictor;
  if (options.cold)
    evictor.resize(cacheEvictionBytes());
  std::optional<CallWatchdog> watchdog;
  if (mpiWorld)
    watchdog.emplace(*mpiWorld, options.timeoutSeconds);
  for (long long i = 0; i < runs; ++i) {
    if (options.cold)
      evictCaches(evictor, i);
    if (watchdog)
      watchdog->begin();
    auto start = std::chrono::steady_clock::now();
    status = entry->run(inputs, outputs, options.threads);
    auto stop = std::chrono::steady_clock::now();
    if (watchdog)
      watchdog->end();
    if (!status)
      return reportError(status.error());
    if (options.bench && i > 0)
      times.push_back(
          std::chrono::duration<double, std::milli>(stop - start).count());
  }

  progress.done();

  // Rank 0 gathers the token results (its own statistics are its tokens').
  std::vector<std::vector<uint8_t>> gathered(outputs.size());
  if (mpiWorld)
    for (size_t r = 0; r < outputs.size(); ++r) {
      if (entry->spec().results[r].shape.empty() ||
          entry->spec().results[r].shape[0] >= 0)
        continue;
      std::optional<int64_t> numBytes = checkedByteSize(
          outputs[r].shape, elementTypeSize(entry->resultType(r)));
      status = mpiWorld->gather(outputs[r].data,
                                static_cast<size_t>(numBytes.value_or(0)),
                                gathered[r]);
      if (!status)
        return reportError(status.error());
      outputs[r].data = gathered[r].data();
      outputs[r].shape[0] = allTokens;
    }
  if (mpiWorld && mpiWorld->rank() != 0)
    return 0;

  for (size_t r = 0; r < outputs.size(); ++r) {
    NpyElement element;
    if (!npyElement(entry->resultType(r), element))
      return reportError(name + " result " + std::to_string(r) + " has type " +
                         elementTypeName(entry->resultType(r)) +
                         ", which moe-run cannot write");
    status = writeNpy(outputFiles[r].tempPath(), outputs[r].shape, element,
                      outputs[r].data);
    if (!status)
      return reportError(printable(options.outputs[r]) + ": " +
                         status.error());
  }
  for (PendingOutput &file : outputFiles) {
    status = file.commit();
    if (!status)
      return reportError(status.error());
  }

  if (options.bench) {
    std::sort(times.begin(), times.end());
    size_t n = times.size();
    double median =
        n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    // The once-per-module cost of packing weights at bind time, apart.
    std::printf("{\"entry\":\"%s\",\"tokens\":%lld,\"threads\":%u,"
                "\"runs\":%lld,\"median_ms\":%.6f,\"min_ms\":%.6f,"
                "\"max_ms\":%.6f,\"packed_weights\":%zu,"
                "\"packing_ms\":%.6f,\"variant\":\"%s\"}\n",
                jsonEscape(entry->name()).c_str(),
                static_cast<long long>(tokens), options.threads, options.bench,
                median, times.front(), times.back(), entry->numPackedWeights(),
                entry->packingSeconds() * 1e3,
                jsonEscape(entry->spec().variant).c_str());
    std::fflush(stdout);
    // The same for a person, on a terminal's stderr.
    if (progress.on())
      std::fprintf(stderr,
                   "moe-run: '%s': %lld tokens, %u threads: median %.3f ms "
                   "(min %.3f, max %.3f) over %lld runs, %.0f tokens/s\n",
                   printable(entry->name()).c_str(),
                   static_cast<long long>(tokens), options.threads, median,
                   times.front(), times.back(), options.bench,
                   median > 0 ? static_cast<double>(tokens) / median * 1e3
                              : 0.0);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Options options;
  std::string error = parseOptions(args, options);
  if (!error.empty())
    return reportError(error);
  if (options.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (options.version) {
    std::printf("moe-run (MoE-MLIR) %s\n", MOE_VERSION_STRING);
    return 0;
  }
  if (options.devices)
    return listDevices();
  return run(options);
}
