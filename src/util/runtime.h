// Process-wide settings that decide how fast LibTorch runs on a CPU, each one measured
// (docs/PERFORMANCE.md): the intra-op thread count, which LibTorch 1.13 starts at 1 here, and the
// allocator, whose default hands every multi-megabyte activation back to the kernel and faults it in
// again on the next step.
#pragma once

#include <string>

namespace infini {

// Sets the intra-op threads (n <= 0: one per hardware core, shared among LOCAL_WORLD_SIZE processes)
// and keeps freed activation buffers in the process for reuse. Returns the thread count now in effect.
int configure_runtime(int threads);

// The BLAS library this process loaded (from /proc/self/maps), for benchmark records.
std::string loaded_blas();

}  // namespace infini
