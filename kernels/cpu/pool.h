// A fixed set of worker threads that run numbered tasks; the calling thread joins in.
//
// Determinism does not depend on the pool: callers split work into blocks whose size does
// not depend on the thread count, and reduce block results in block order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace seg {

class Pool {
 public:
  /** `threads` counts the caller, so Pool(1) starts no thread. */
  explicit Pool(int threads);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int threads() const { return (int)workers_.size() + 1; }

  /** Runs fn(task, worker) for task in [0, nTasks); worker in [0, threads()). Blocks until done. */
  void run(int nTasks, const std::function<void(int, int)>& fn);

 private:
  void loop(int worker);
  void work(int worker);

  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(int, int)>* fn_ = nullptr;
  int nTasks_ = 0;
  std::atomic<int> next_{0};
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

/**
 * Lets block b run `merge` only after blocks 0..b−1 have, so that a float64 reduction over
 * blocks has one fixed order whatever thread ran which block. Blocks are claimed in increasing
 * order, so the block being waited for is always running.
 */
class OrderedMerge {
 public:
  template <class F>
  void merge(int block, F&& f) {
    std::unique_lock<std::mutex> lk(m_);
    cv_.wait(lk, [&] { return next_ == block; });
    f();
    ++next_;
    lk.unlock();
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int next_ = 0;
};

}  // namespace seg
