// LibTorch starts with one intra-op thread on this CPU while OpenBLAS uses every core; infini sets
// the count explicitly (measured in docs/PERFORMANCE.md).
#pragma once

#include <string>

namespace infini {

// n <= 0 means one thread per hardware core. Returns the count now in effect.
int configure_threads(int n);

// The BLAS library this process loaded (from /proc/self/maps), for benchmark records.
std::string loaded_blas();

}  // namespace infini
