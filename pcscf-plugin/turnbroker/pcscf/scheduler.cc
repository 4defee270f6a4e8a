#include "turnbroker/pcscf/scheduler.h"

namespace turnbroker::pcscf {

Scheduler::Scheduler(const Clock* clock) : clock_(clock), thread_([this] { Run(); }) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    tasks_.clear();
  }
  wake_.notify_all();
  // A task may call Stop() on its own scheduler: it cannot join itself.
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Scheduler::RunAfter(int64_t delay_ms, std::function<void()> task) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  tasks_.emplace(clock_->MonotonicMicros() + delay_ms * 1000, std::move(task));
  wake_.notify_one();
}

size_t Scheduler::pending() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void Scheduler::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const int64_t now = clock_->MonotonicMicros();
    auto first = tasks_.begin();
    if (first->first > now) {
      wake_.wait_for(lock, std::chrono::microseconds(clock_->RealWaitMicros(first->first - now)));
      continue;
    }
    std::function<void()> task = std::move(first->second);
    tasks_.erase(first);
    lock.unlock();
    task();
    lock.lock();
  }
}

}  // namespace turnbroker::pcscf
