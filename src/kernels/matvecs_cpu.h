// A matrix's rows times several vectors: the products of a decode step, for one sequence or a batch
// (src/infer/decoder.h). Each piece of a weight row is loaded once for up to three vectors, where a
// dot product per pair loads it for every vector. Measured on 2-core EPYC: about 1.3-1.4x the
// arithmetic rate of separate dot products at 4 and 8 vectors, for a 13 MB matrix read from L3.
#pragma once

#include <cstdint>

namespace infini::kernels {

// ys[v][r] = W[r, :] . xs[v] for rows r in [r0, r1) of the row-major (rows, cols) matrix W and each
// vector v < n. Every output is summed in kernels::dot's order whatever n is, so a vector's results
// are the same bit for bit alone (matvec_rows) or beside others.
void matvecs_rows(const float* W, int64_t cols, const float* const* xs, int64_t n, float* const* ys, int64_t r0,
                  int64_t r1);

}  // namespace infini::kernels
