#include "util/runtime.h"

#include <cstdlib>
#include <fstream>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <sstream>
#include <thread>

#include <ATen/Parallel.h>

namespace infini {
namespace {

std::string read_small_file(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

std::atomic<bool> g_thread_tuning{true};
std::atomic<bool> g_threads_chosen{false};  // set_threads has been called

}  // namespace

bool thread_tuning() { return g_thread_tuning.load(); }
void set_thread_tuning(bool on) { g_thread_tuning = on; }

double cgroup_cpu_limit(const std::string& cpu_max) {
  std::istringstream in(cpu_max);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  if (end == quota.c_str() || *end != '\0' || !(q > 0)) return 0;
  return q / period;
}

double usable_memory_bytes() {
  const double pages = static_cast<double>(::sysconf(_SC_PHYS_PAGES));
  const double page = static_cast<double>(::sysconf(_SC_PAGE_SIZE));
  double bytes = pages > 0 && page > 0 ? pages * page : 0;
  // A cgroup memory limit (v2's memory.max, v1's memory.limit_in_bytes) caps it: "max" or an
  // unlimited v1 value parse to nothing or to more than the machine has.
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const auto text = read_small_file(path);
    char* end = nullptr;
    const double limit = std::strtod(text.c_str(), &end);
    if (end != text.c_str() && limit > 0 && (bytes <= 0 || limit < bytes)) bytes = limit;
  }
  return bytes;
}

int usable_cpus() {
  int n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = std::max(1, CPU_COUNT(&set));
  // A CPU quota (cgroup v2's cpu.max, or v1's quota and period) caps the cores' worth of time the
  // process gets however many it may run on: more threads than that only wait.
  double limit = cgroup_cpu_limit(read_small_file("/sys/fs/cgroup/cpu.max"));
  if (limit <= 0)
    limit = cgroup_cpu_limit(read_small_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") + " " +
                             read_small_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
  if (limit > 0) n = std::min(n, std::max(1, static_cast<int>(std::ceil(limit))));
  return n;
}

int set_threads(int n) {
  g_threads_chosen = true;
#ifdef __GLIBC__
  // Allocations up to 32 MiB (glibc's maximum threshold) come from the heap instead of fresh mmaps,
  // and freed memory is never trimmed back (-1), so a training step reuses the previous step's pages.
  // A finite threshold bites where a step's heap swings past it: with a 1 GiB threshold, one thread
  // and a 1.3 GiB swing (memory_key_shift, 4 x 2048 tokens), every step gave the top GiB back to the
  // kernel and faulted it in again, 3x slower (docs/PERFORMANCE.md, "Threads and BLAS, and why").
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, -1);
#endif
  // By default the CPUs this process may use are shared among the processes of this machine
  // (LOCAL_WORLD_SIZE, set by `infini train --nproc` and torchrun), so data-parallel workers do not
  // oversubscribe them.
  set_thread_tuning(n <= 0);
  if (n <= 0) {
    int local_processes = 1;
    if (const char* s = std::getenv("LOCAL_WORLD_SIZE")) local_processes = std::max(1, std::atoi(s));
    n = std::max(1, usable_cpus() / local_processes);
  }
  at::set_num_threads(n);
  return at::get_num_threads();
}

void apply_default_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!g_threads_chosen) set_threads(0);
  });
}

std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const auto path = line.substr(slash);
    if (path.find("libblas.so") != std::string::npos || path.find("libopenblas") != std::string::npos ||
        path.find("libmkl") != std::string::npos)
      return path;
  }
  return "unknown";
}

}  // namespace infini
