// Process-wide settings. Part of infini's public API.
#pragma once

namespace infini {

// The threads LibTorch and the fused paths use (n <= 0: one per usable CPU, capped by the cgroup's
// CPU quota, and shared among LOCAL_WORLD_SIZE processes), and keeps freed activation buffers in the
// process for reuse. With n <= 0 the fused paths and training also measure whether fewer threads are faster
// while other processes keep the cores busy; a fixed n makes a run's last bits repeat. Call it before
// the first model runs. Without a call, the thread that first runs a model (a Session, Model::forward,
// evaluate, passkey, train) applies set_threads(0).
// Returns the thread count now in effect.
int set_threads(int n);

// The CPUs this process may run on (its affinity mask), capped by its cgroup's CPU quota rounded up.
int usable_cpus();

}  // namespace infini
