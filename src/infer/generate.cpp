#include "infer/generate.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>

#include <ATen/core/DistributionsHelper.h>

#include "infini/error.h"

namespace infini {

// Plain loops over the (V) logits: at one token per step, a dozen tensor ops here would cost a third
// of what the fused decode step itself costs.
int64_t sample_token(const torch::Tensor& logits_in, const std::vector<int64_t>& recent, const SampleOptions& o,
                     at::Generator& gen) {
  const auto contiguous = logits_in.to(torch::kFloat32).contiguous();  // (V)
  const float* data = contiguous.data_ptr<float>();
  std::vector<float> logits(data, data + contiguous.numel());
  const auto V = logits.size();
  if (o.repetition_penalty != 1.0 && !recent.empty()) {
    const auto start = recent.size() > static_cast<size_t>(o.repetition_window)
                           ? recent.end() - o.repetition_window
                           : recent.begin();
    std::vector<int64_t> ids(start, recent.end());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    const auto penalty = static_cast<float>(o.repetition_penalty);
    // Shrinks a positive logit and grows a negative one: both make the token less likely.
    for (const auto id : ids)
      if (id >= 0 && static_cast<size_t>(id) < V) {
        auto& l = logits[static_cast<size_t>(id)];
        l = l > 0 ? l / penalty : l * penalty;
      }
  }
  if (o.temperature <= 0) return std::max_element(logits.begin(), logits.end()) - logits.begin();

  // Candidates from likeliest down; top-k keeps ties with the k-th.
  std::vector<int64_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  size_t keep = V;
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < V) {
    keep = static_cast<size_t>(o.top_k);
    while (keep < V && logits[order[keep]] == logits[order[keep - 1]]) ++keep;
  }
  const double top = logits[order[0]];
  std::vector<double> p(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += (p[i] = std::exp((logits[order[i]] - top) / o.temperature));
  if (o.top_p < 1.0) {
    // Keep a token while the probability before it is below top_p: the likeliest always stays.
    double before = 0;
    size_t kept = 0;
    while (kept < keep && (kept == 0 || before / total < o.top_p)) before += p[kept++];
    keep = kept;
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += p[i];
  at::uniform_real_distribution<double> uniform(0.0, 1.0);
  double u = 0;
  {
    auto* g = at::check_generator<at::CPUGeneratorImpl>(gen);
    std::lock_guard<std::mutex> lock(gen.mutex());
    u = uniform(g) * mass;
  }
  for (size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

std::vector<int64_t> generate(SessionEngine& session, const std::vector<int64_t>& prompt, const SampleOptions& o,
                              const std::function<bool(int64_t)>& emit) {
  if (!prompt.empty()) session.feed(prompt);
  if (!session.last_logits().defined())
    throw Error("generate: nothing to continue; give a prompt or a state that has read some text");
  torch::InferenceMode guard;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::vector<int64_t> recent(prompt);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    const auto next = sample_token(session.last_logits(), recent, o, gen);
    out.push_back(next);
    recent.push_back(next);
    const bool go_on = !emit || emit(next);
    session.feed({next});  // the session always holds everything generated, ready to go on
    if (!go_on) break;
  }
  return out;
}

}  // namespace infini
