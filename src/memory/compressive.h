// Infini-attention's compressive memory, per head: the read and the two write rules
// (arXiv 2404.07143, eqs. 3-5; docs/MODEL.md). Inputs are un-rotated Q/K; M and z are at least fp32.
#pragma once

#include <utility>

#include <torch/torch.h>

namespace infini::memory {

// sigma(x) = ELU(x) + 1: a positive feature map, so the normaliser sigma(Q) z is never negative.
torch::Tensor feature_map(const torch::Tensor& x);

// The keys a segment is written with under memory_key_shift (config.h): K'_t = lerp(K_t, K_{t-1},
// sigmoid(shift_h)) along the segment, the first key kept as it is. With `shift` undefined, K itself.
torch::Tensor shift_keys(const torch::Tensor& k,       // (B, H, N, dk), un-rotated
                         const torch::Tensor& shift);  // (H) logits, or undefined -> (B, H, N, dk)

// A_mem = sigma(Q) M / (sigma(Q) z + eps), returned in M's dtype.
torch::Tensor read(const torch::Tensor& sigma_q,  // (B, H, n, dk)
                   const torch::Tensor& M,        // (B, H, dk, dv)
                   const torch::Tensor& z,        // (B, H, dk)
                   double eps);                   // -> (B, H, n, dv)

// Writes one finished segment; returns the new (M, z) and leaves the inputs untouched.
//   linear: M + sigma(K)^T V
//   delta:  M + sigma(K)^T (V - sigma(K) M / (sigma(K) z + eps))
//   z + sum_t sigma(K_t) under both rules.
// `weight`, when given, scales what each sequence adds to M and z: a segment that stands for
// `weight` segments like it (passkey training's virtual length, data/passkey_examples.h). Under the
// linear rule that equals writing it `weight` times; under the delta rule it is an approximation.
std::pair<torch::Tensor, torch::Tensor> write(const torch::Tensor& sigma_k,  // (B, H, N, dk)
                                              const torch::Tensor& v,        // (B, H, N, dv)
                                              const torch::Tensor& M,        // (B, H, dk, dv)
                                              const torch::Tensor& z,        // (B, H, dk)
                                              double eps, bool delta_rule,
                                              const torch::Tensor& weight = {});  // (B) or undefined

}  // namespace infini::memory
