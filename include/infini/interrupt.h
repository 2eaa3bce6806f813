// Stopping long calls from outside: Session::feed and generate, evaluate, passkey, train and resume
// call the calling thread's interrupt check between pieces of work (at least once per segment read,
// per token generated and per training step). A check that throws stops the call there and the
// exception reaches the caller; a session keeps what it had read before the piece. The Python
// package turns Ctrl-C into KeyboardInterrupt this way. Part of infini's public API.
#pragma once

#include <functional>

namespace infini {

// Installs `check` for the calling thread until destruction (the previous one is restored then).
class ScopedInterruptCheck {
 public:
  explicit ScopedInterruptCheck(std::function<void()> check);
  ~ScopedInterruptCheck();
  ScopedInterruptCheck(const ScopedInterruptCheck&) = delete;
  ScopedInterruptCheck& operator=(const ScopedInterruptCheck&) = delete;

 private:
  std::function<void()> previous_;
};

// Runs the calling thread's check, if any: for long loops of your own around the API.
void poll_interrupt();

}  // namespace infini
