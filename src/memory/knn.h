// Memorizing Transformers' external memory (Wu et al. 2022, arXiv 2203.08913; docs/MODEL.md, "kNN
// memory"): one block keeps the document's last knn_tokens keys and values per head, first in, first
// out, and each query attends over the top-k of them it retrieves by exact inner-product search. The
// memory carries no gradient; the read carries it to the queries and the per-head scale.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace infini::knn {

// x / max(|x|_2, 1e-12) over the last dimension: the memory's keys and the queries that search it
// are unit vectors, so an inner product is a cosine, and keys written by an earlier version of the
// weights stay on the same scale.
torch::Tensor normalize(const torch::Tensor& x);

// Indices (B, H, n, k') of each query's k' = min(k, F) highest-scoring keys, by exact search in blocks
// of `block` keys (the (n, F) score matrix is never held whole); no gradient. Scores are computed in
// at least fp32.
torch::Tensor search(const torch::Tensor& q_hat,  // (B, H, n, dk), normalised
                     const torch::Tensor& keys,   // (B, H, F, dk), normalised, F >= 1
                     int64_t k, int64_t block = 4096);

// softmax(exp(log_scale) q_hat . keys[idx]) values[idx] for each query: its retrieved keys only.
torch::Tensor read(const torch::Tensor& q_hat,      // (B, H, n, dk), normalised
                   const torch::Tensor& keys,       // (B, H, F, dk)
                   const torch::Tensor& values,     // (B, H, F, dv)
                   const torch::Tensor& idx,        // (B, H, n, k') int64 from search()
                   const torch::Tensor& log_scale);  // (H) -> (B, H, n, dv)

// The memory after a finished segment: its keys (normalised here) and values appended, and only the
// last `capacity` rows kept. New tensors, detached; the inputs are untouched.
std::pair<torch::Tensor, torch::Tensor> append(const torch::Tensor& keys,    // (B, H, F, dk)
                                               const torch::Tensor& values,  // (B, H, F, dv)
                                               const torch::Tensor& k_seg,   // (B, H, N, dk), un-rotated
                                               const torch::Tensor& v_seg,   // (B, H, N, dv)
                                               int64_t capacity);

}  // namespace infini::knn
