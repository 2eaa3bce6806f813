// qk_conv (config.h, docs/MODEL.md): a short causal convolution along the tokens, one kernel per head
// and channel, applied to the raw queries and keys before anything else sees them. Tap j weighs the
// raw row j tokens back; rows before the current call come from the layer's tail (LayerMemory::conv_q,
// conv_k), so the convolution runs on across segment boundaries and across calls. The fused paths
// compute the same rows with kernels::qk_conv_row (kernels/infini_cpu.h).
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

}  // namespace infini::qk_conv
