#include "infini/interrupt.h"

#include <utility>

namespace infini {

namespace {
// Per thread: a long call polls from the thread that made it, never from its worker threads.
thread_local std::function<void()> current_check;
}  // namespace

ScopedInterruptCheck::ScopedInterruptCheck(std::function<void()> check)
    : previous_(std::exchange(current_check, std::move(check))) {}

ScopedInterruptCheck::~ScopedInterruptCheck() { current_check = std::move(previous_); }

void poll_interrupt() {
  if (current_check) current_check();
}

}  // namespace infini
