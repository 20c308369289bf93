//===- ThreadPool.cpp - Persistent workers for token-parallel runs --------===//

#include "ThreadPool.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using namespace moe::runtime::detail;

namespace {

/// The workers and the one job they share at a time.
class Pool {
public:
  /// Runs `body` over [0, count) with up to count - 1 workers.
  void run(unsigned count, const std::function<void(unsigned)> &body) {
    std::unique_lock<std::mutex> busy(jobMutex, std::try_to_lock);
    if (!busy.owns_lock()) {
      for (unsigned i = 0; i < count; ++i)
        body(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      while (workers.size() + 1 < count)
        workers.emplace_back([this] { work(); });
      job = &body;
      jobCount = count;
      next = 0;
      pending = count;
      ++generation;
    }
    wake.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [&] { return pending == 0; });
    job = nullptr;
  }

private:
  /// Takes indices of the current job until none is left. An index is
  /// claimed under the lock and counted as pending until it has run, so the
  /// job (and its body) outlive every index taken from it.
  void drain() {
    std::unique_lock<std::mutex> lock(mutex);
    while (job && next < jobCount) {
      const std::function<void(unsigned)> &body = *job;
      unsigned index = next++;
      lock.unlock();
      body(index);
      lock.lock();
      if (--pending == 0)
        finished.notify_all();
    }
  }

  /// A worker: sleeps until a new job, helps drain it.
  void work() {
    unsigned long seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return generation != seen; });
        seen = generation;
      }
      drain();
    }
  }

  std::mutex jobMutex; // held by the call that owns the workers
  std::mutex mutex;    // guards everything below
  std::condition_variable wake, finished;
  std::vector<std::thread> workers;
  const std::function<void(unsigned)> *job = nullptr;
  unsigned jobCount = 0;
  unsigned pending = 0;
  unsigned long generation = 0;
  unsigned next = 0;
};

} // namespace

void moe::runtime::detail::parallelFor(
    unsigned count, const std::function<void(unsigned)> &body) {
  if (count <= 1) {
    for (unsigned i = 0; i < count; ++i)
      body(i);
    return;
  }
  // Never destroyed: workers sleep until the process exits, and no
  // destructor runs while a library user's thread may still be in a run.
  static Pool *pool = new Pool();
  pool->run(count, body);
}
