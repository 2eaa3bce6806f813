// qk_conv (config.h, docs/MODEL.md): a short causal convolution along the tokens, one kernel per head
// and channel, applied to the raw queries and keys before anything else sees them. Tap j weighs the
// raw row j tokens back; rows before the current call come from the layer's tail (LayerMemory::conv_q,
// conv_k), so the convolution runs on across segment boundaries and across calls.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace infini::qk_conv {

// out_t = sum_j taps[:, :, j] * x_{t-j}, over the rows of `tail` followed by those of x; then `tail`
// becomes the last W - 1 of those rows.
torch::Tensor apply(const torch::Tensor& x,      // (B, H, n, d): raw rows, in order
                    torch::Tensor& tail,         // (B, H, W - 1, d): the raw rows before them
                    const torch::Tensor& taps);  // (H, d, W) -> (B, H, n, d)

// The tail apply() leaves, without the convolution: for rows whose outputs nothing uses.
void advance(const torch::Tensor& x,  // (B, H, n, d): raw rows, in order
             torch::Tensor& tail);    // (B, H, W - 1, d)

// One row of one head, as apply() computes it: out = taps[:, 0] * x + sum_{j >= 1} taps[:, j] * the
// tail's row j back. Does not move the tail (slide() does, once every row that reads it is done).
void row(const float* taps,  // (d, W)
         const float* tail,  // (W - 1, d), oldest first
         const float* x,     // (d)
         float* out,         // (d)
         int64_t d, int64_t W);

// The tail after one more row: drops its oldest row and appends x.
void slide(float* tail,      // (W - 1, d)
           const float* x,   // (d)
           int64_t d, int64_t W);

}  // namespace infini::qk_conv
