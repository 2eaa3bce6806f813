// Infini-attention's per-token math on raw fp32 rows, one head at a time: qk_conv's rows, the keys
// the compressive memory is written with, its gated read and its write under both rules. The one fast-path definition of this math,
// shared by the fused segment prefill (src/infer/prefill.cpp) and the fused one-token decoder
// (src/infer/decoder.cpp); the readable references with autograd are src/model/qk_conv.cpp and
// src/memory/compressive.cpp, and tests/test_vector_kernels.cpp and tests/test_fused_paths.cpp hold
// them equal.
#pragma once

#include <cstdint>

namespace infini::kernels {

// One row of qk_conv (model/qk_conv.h) for one head: out = taps[:, 0] * x + sum_{j >= 1} taps[:, j] *
// the tail's row j back. Does not move the tail (qk_conv_slide does, once every row that reads it is done).
void qk_conv_row(const float* taps,  // (d, W)
                 const float* tail,  // (W - 1, d), oldest first
                 const float* x,     // (d)
                 float* out,         // (d)
                 int64_t d, int64_t W);

// The tail after one more row: drops its oldest row and appends x.
void qk_conv_slide(float* tail,     // (W - 1, d)
                   const float* x,  // (d)
                   int64_t d, int64_t W);

// The features the memory is written with, sigma(K') = ELU(K') + 1, for n keys in order. Without a
// share, K' = K; with memory_key_shift's share s (sigmoid of the head's logit), K'_r = lerp(K_r,
// K_{r-1}, s), the first key kept as it is (memory::shift_keys).
void written_key_features(const float* k,      // (n, dk), row stride ld: un-rotated keys
                          int64_t ld, int64_t n, int64_t dk,
                          const float* share,  // one float, or null: no shift
                          float* sk);          // (n, dk), row stride dk

// out_r = lerp(out_r, A_mem_r, gate) with A_mem_r = sigma(q_r) M / (sigma(q_r) z + eps), for n rows:
// the memory read mixed into the local attention's output by the head's gate sigmoid(beta).
void gated_memory_read(const float* sq,  // (n, dk): sigma of the un-rotated queries
                       int64_t n,
                       const float* M,   // (dk, dv)
                       const float* z,   // (dk)
                       int64_t dk, int64_t dv, float eps, float gate,
                       float* out,       // (n, dv), row stride ld_out: the local attention's output
                       int64_t ld_out,
                       float* scratch);  // (n, dv)

// One head's segment write (memory::write): M_next = M + sigma(K)^T V', z_next = z + sum_r sigma(K_r),
// with V' = V under the linear rule and V - sigma(K) M / (sigma(K) z + eps) under the delta rule.
void memory_write(const float* sk,  // (n, dk): written_key_features
                  int64_t n,
                  const float* v,   // (n, dv), row stride ld_v
                  int64_t ld_v,
                  const float* M,   // (dk, dv)
                  const float* z,   // (dk)
                  int64_t dk, int64_t dv, float eps, bool delta_rule,
                  float* M_next,    // (dk, dv); may not alias M
                  float* z_next,    // (dk)
                  float* scratch);  // (n * dv + dk)

}  // namespace infini::kernels
