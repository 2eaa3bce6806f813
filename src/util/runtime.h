// Process-wide settings that decide how fast LibTorch runs on a CPU, each one measured
// (docs/PERFORMANCE.md). set_threads (include/infini/runtime.h) sets the intra-op thread count, which
// LibTorch 1.13 starts at 1 here, and the allocator, whose default hands every multi-megabyte
// activation back to the kernel and faults it in again on the next step.
#pragma once

#include <string>

#include "infini/runtime.h"

namespace infini {

// Whether thread counts are measured (the default) or fixed at the intra-op count.
bool thread_tuning();
void set_thread_tuning(bool on);

// What a process that never called set_threads gets: set_threads(0), applied once, on the thread that
// first runs a model through the public API (a Session, Model::forward, evaluate, passkey, train).
// LibTorch alone would leave it on one thread. Not at load: OpenMP counts threads per calling thread,
// and a loading thread that never runs the model (a server's) would keep a parked team of its own,
// which makes libgomp stop spinning at every barrier of the running thread's team: on two cores that
// cut one decoding stream to a quarter of its speed.
void apply_default_threads();

// The memory this process may use: the machine's RAM, capped by a cgroup memory limit. 0 if unknown.
double usable_memory_bytes();

// Cores' worth of CPU time in a cgroup v2 `cpu.max` line ("150000 100000" -> 1.5); 0 for "max" (no
// quota) or a line that does not parse. v1's quota and period, joined by a space, read the same way.
double cgroup_cpu_limit(const std::string& cpu_max);

// The BLAS library this process loaded (from /proc/self/maps), for benchmark records.
std::string loaded_blas();

}  // namespace infini
