#include "dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini::dist {

namespace {

// A port that was free a moment ago (the kernel picks it); rank 0 binds it right after.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("--nproc: cannot open a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw Error("--nproc: cannot find a free port on 127.0.0.1");
  return ntohs(addr.sin_port);
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int launch_local_workers(int nproc, const std::vector<std::string>& args) {
  const int port = free_port();
  std::vector<pid_t> workers;
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(fmt::format("--nproc: cannot start worker {} (fork failed)", rank));
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      std::string self = "/proc/self/exe";
      argv.push_back(self.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::_Exit(127);
    }
    workers.push_back(pid);
  }
  fmt::print(stderr, "infini train: {} workers on 127.0.0.1:{} (pids", nproc, port);
  for (const auto pid : workers) fmt::print(stderr, " {}", pid);
  fmt::print(stderr, ")\n");

  // Ctrl-C reaches the workers too (same process group): they checkpoint and stop; wait for them.
  int result = 0;
  size_t running = workers.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) break;
    bool ours = false;
    for (auto& w : workers)
      if (w == pid) w = -1, ours = true;
    if (!ours) continue;
    --running;
    const int code = exit_code(status);
    if (code != 0 && result == 0) {
      result = code;
      fmt::print(stderr, "infini train: a worker (pid {}) failed with exit status {}; stopping the others\n", pid, code);
      for (const auto w : workers)
        if (w > 0) ::kill(w, SIGTERM);
      // Those stuck in a collective get the grace of a checkpoint, then are killed.
      std::thread([workers] {
        std::this_thread::sleep_for(std::chrono::seconds(30));
        for (const auto w : workers)
          if (w > 0) ::kill(w, SIGKILL);
      }).detach();
    }
  }
  return result;
}

}  // namespace infini::dist
