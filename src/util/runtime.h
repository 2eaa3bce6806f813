// Process-wide settings that decide how fast LibTorch runs on a CPU, each one measured
// (docs/PERFORMANCE.md): the intra-op thread count, which LibTorch 1.13 starts at 1 here, and the
// allocator, whose default hands every multi-megabyte activation back to the kernel and faults it in
// again on the next step.
#pragma once

#include <string>

namespace infini {

// Sets the intra-op threads (n <= 0: one per usable CPU, shared among LOCAL_WORLD_SIZE processes)
// and keeps freed activation buffers in the process for reuse. Returns the thread count now in effect.
// With n <= 0 the fused paths and training then measure whether fewer threads are faster on a busy
// machine (util/thread_tuner.h); an explicit n fixes the count, so that a run's last bits repeat.
int configure_runtime(int threads);

// Whether thread counts are measured (the default) or fixed at the intra-op count.
bool thread_tuning();
void set_thread_tuning(bool on);

// The CPUs this process may run on (its affinity mask), capped by its cgroup's CPU quota rounded up.
int usable_cpus();

// The memory this process may use: the machine's RAM, capped by a cgroup memory limit. 0 if unknown.
double usable_memory_bytes();

// Cores' worth of CPU time in a cgroup v2 `cpu.max` line ("150000 100000" -> 1.5); 0 for "max" (no
// quota) or a line that does not parse. v1's quota and period, joined by a space, read the same way.
double cgroup_cpu_limit(const std::string& cpu_max);

// The BLAS library this process loaded (from /proc/self/maps), for benchmark records.
std::string loaded_blas();

}  // namespace infini
