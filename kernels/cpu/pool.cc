#include "pool.h"

namespace seg {

Pool::Pool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { loop(i); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void Pool::work(int worker) {
  for (int t; (t = next_.fetch_add(1)) < nTasks_;) (*fn_)(t, worker);
}

void Pool::run(int nTasks, const std::function<void(int, int)>& fn) {
  if (nTasks <= 0) return;
  if (nTasks == 1 || workers_.empty()) {
    for (int t = 0; t < nTasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(m_);
    fn_ = &fn;
    nTasks_ = nTasks;
    next_.store(0);
    active_ = (int)workers_.size();
    ++generation_;
  }
  wake_.notify_all();
  work(0);
  std::unique_lock<std::mutex> lk(m_);
  done_.wait(lk, [&] { return active_ == 0; });
  fn_ = nullptr;
}

void Pool::loop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(m_);
      wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    work(worker);
    std::lock_guard<std::mutex> lk(m_);
    if (--active_ == 0) done_.notify_one();
  }
}

}  // namespace seg
