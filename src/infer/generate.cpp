#include "infer/generate.h"

#include <algorithm>
#include <limits>

#include "util/error.h"

namespace infini {

int64_t sample_token(const torch::Tensor& logits_in, const std::vector<int64_t>& recent, const SampleOptions& o,
                     at::Generator& gen) {
  auto logits = logits_in.to(torch::kFloat32).clone();  // (V)
  if (o.repetition_penalty != 1.0 && !recent.empty()) {
    const auto start = recent.size() > static_cast<size_t>(o.repetition_window)
                           ? recent.end() - o.repetition_window
                           : recent.begin();
    std::vector<int64_t> ids(start, recent.end());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    const auto seen = torch::tensor(ids, torch::kInt64);  // (S) distinct recent tokens
    auto values = logits.index_select(0, seen);
    // Shrinks a positive logit and grows a negative one: both make the token less likely.
    values = torch::where(values > 0, values / o.repetition_penalty, values * o.repetition_penalty);
    logits.index_copy_(0, seen, values);
  }
  if (o.temperature <= 0) return logits.argmax().item<int64_t>();
  logits = logits / o.temperature;
  const auto minus_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < logits.size(0)) {
    const auto kth = std::get<0>(logits.topk(o.top_k)).min();
    logits = logits.masked_fill(logits < kth, minus_inf);
  }
  if (o.top_p < 1.0) {
    const auto sorted = logits.sort(0, /*descending=*/true);
    const auto& order = std::get<1>(sorted);                               // (V)
    const auto cumulative = std::get<0>(sorted).softmax(0).cumsum(0);      // (V)
    // Keep a token while the probability before it is below top_p: the likeliest always stays.
    const auto drop_sorted = (cumulative - std::get<0>(sorted).softmax(0)) >= o.top_p;
    logits = logits.index_put({order.masked_select(drop_sorted)}, torch::tensor(minus_inf));
  }
  return torch::multinomial(logits.softmax(0), 1, false, gen).item<int64_t>();
}

std::vector<int64_t> generate(Session& session, const std::vector<int64_t>& prompt, const SampleOptions& o,
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
