#include "util/runtime.h"

#include <cstdlib>
#include <fstream>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <thread>

#include <ATen/Parallel.h>

namespace infini {

int configure_runtime(int n) {
#ifdef __GLIBC__
  // Allocations up to 32 MiB (glibc's maximum threshold) come from the heap instead of fresh mmaps,
  // and freed memory is never trimmed back (-1), so a training step reuses the previous step's pages.
  // A finite threshold bites where a step's heap swings past it: with a 1 GiB threshold, one thread
  // and a 1.3 GiB swing (memory_key_shift, 4 x 2048 tokens), every step gave the top GiB back to the
  // kernel and faulted it in again, 3x slower (docs/PERFORMANCE.md, "Threads and BLAS, and why").
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, -1);
#endif
  // By default the cores are shared among the processes of this machine (LOCAL_WORLD_SIZE, set by
  // `infini train --nproc` and torchrun), so data-parallel workers do not oversubscribe them.
  if (n <= 0) {
    int local_processes = 1;
    if (const char* s = std::getenv("LOCAL_WORLD_SIZE")) local_processes = std::max(1, std::atoi(s));
    n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local_processes);
  }
  at::set_num_threads(n);
  return at::get_num_threads();
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
