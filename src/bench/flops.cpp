#include "bench/flops.h"

#include <chrono>

#include <torch/torch.h>

namespace infini {

double forward_flops_per_token(const ModelConfig& c) {
  const double D = c.d_model, H = c.n_heads, dk = c.d_key, dv = c.d_value, F = c.d_ff,
               V = c.vocab_size, N = c.segment_len;
  // A block's matmul work per token it processes, when `seen` tokens of a segment go through it.
  const auto block = [&](double seen) {
    double layer = 2 * D * H * (2 * dk + dv)   // qkv projection
                   + 2 * H * dv * D            // output projection
                   + 2 * D * 2 * F + 2 * F * D  // SwiGLU
                   + 2 * H * (dk + dv) * seen;  // scores and weighted values over the segment
    if (c.has_xl_cache()) layer += 2 * H * (dk + dv) * seen;  // the cached segment
    if (c.has_compressive_memory()) {
      layer += 2 * H * dk * (dv + 1);  // read: sigma(Q) M and sigma(Q) z
      layer += 2 * H * dk * dv;        // write: sigma(K)^T V
      if (c.memory == MemoryMode::InfiniDelta) layer += 2 * H * dk * (dv + 1);  // the delta read
    }
    return layer;
  };
  double total = 2 * D * V;  // LM head
  // RMT: every block also runs the 2p memory rows of each segment.
  if (c.memory == MemoryMode::Rmt) {
    const double rows = N + 2.0 * static_cast<double>(c.rmt_tokens);
    double total = 2 * D * V;
    for (int64_t i = 0; i < c.n_layers; ++i) total += block(rows) * rows / N;
    return total;
  }
  // The kNN block's search over a full memory and its read of the top k.
  if (c.memory == MemoryMode::Knn)
    total += 2 * H * dk * static_cast<double>(c.knn_tokens) + 2 * H * (dk + dv) * static_cast<double>(c.knn_top_k);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    if (!c.is_routed(i)) {
      total += block(N);
      continue;
    }
    // A routed block: the router and predictor see every token, the block a share C of them, and
    // those attend over the selected tokens only.
    const double C = c.mod_capacity, P = static_cast<double>(c.mod_predictor_hidden);
    total += 2 * D + 2 * D * P + 2 * P + C * block(C * N);
  }
  return total;
}

double train_flops_per_token(const ModelConfig& c) { return 3 * forward_flops_per_token(c); }

double measure_matmul_peak(int64_t size, double seconds) {
  torch::NoGradGuard no_grad;
  const auto a = torch::randn({size, size}), b = torch::randn({size, size});
  auto c = torch::mm(a, b);  // warm-up
  using clock = std::chrono::steady_clock;
  double best = 0;
  const auto t_end = clock::now() + std::chrono::duration<double>(seconds);
  while (clock::now() < t_end) {
    const auto t0 = clock::now();
    torch::mm_out(c, a, b);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, 2.0 * size * size * size / dt);
  }
  return best;
}

}  // namespace infini
