// Analytic FLOP counts, so throughput can be stated as MFU: the share of the machine's measured
// matmul peak that a run reaches. Counts matmul work only, as PaLM's MFU does; the local attention
// counts the full N x N score matrix of a segment.
#pragma once

#include <cstdint>

#include "infini/config.h"

namespace infini {

// Forward FLOPs per token for a model reading full segments; a routed block counts at its capacity.
double forward_flops_per_token(const ModelConfig& c);
// Training (forward + backward) FLOPs per token: 3x forward.
double train_flops_per_token(const ModelConfig& c);

// Measured fp32 GEMM peak of this process (threads as configured), in FLOP/s.
double measure_matmul_peak(int64_t size = 1024, double seconds = 1.0);

}  // namespace infini
