#include "bench/busy_neighbours.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini {

BusyNeighbours::BusyNeighbours(int count, int nice) {
  if (count < 0 || nice < 0 || nice > 19)
    throw Error(fmt::format("busy neighbours: {} at nice {} (want a count >= 0 and nice 0..19)", count, nice));
  for (int i = 0; i < count; ++i) {
    const pid_t pid = fork();
    if (pid < 0) {
      const int err = errno;
      stop();
      throw Error(fmt::format("busy neighbours: could not start process {} of {}: {}", i + 1, count, std::strerror(err)));
    }
    if (pid == 0) {
      // The child: only async-signal-safe calls from here, since the parent has threads.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1) _exit(0);  // the parent is already gone
      setpriority(PRIO_PROCESS, 0, nice);
      for (volatile unsigned long spin = 0;; spin = spin + 1) {
      }
    }
    children_.push_back(pid);
  }
  // Give the scheduler a moment to spread them over the CPUs before anything is timed.
  if (count > 0) usleep(200 * 1000);
}

BusyNeighbours::~BusyNeighbours() { stop(); }

void BusyNeighbours::stop() {
  for (const pid_t pid : children_) kill(pid, SIGKILL);
  for (const pid_t pid : children_) waitpid(pid, nullptr, 0);
  children_.clear();
}

}  // namespace infini
