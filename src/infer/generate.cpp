#include "infer/generate.h"

#include "util/error.h"

namespace infini {

std::vector<int64_t> generate(InfiniTransformer& model, const std::vector<int64_t>& prompt,
                              const SampleOptions& o, const std::function<void(int64_t)>& emit) {
  if (prompt.empty()) throw Error("generate: the prompt is empty; give at least one token");
  torch::InferenceMode guard;
  model->eval();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  auto state = model->initial_state(1);
  auto input = torch::tensor(prompt, torch::kInt64).unsqueeze(0);  // (1, P)
  std::vector<int64_t> out;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    auto result = model->forward(input, std::move(state));
    state = std::move(result.state);
    auto logits = result.logits.select(1, -1).squeeze(0).to(torch::kFloat32);  // (V)
    int64_t next;
    if (o.temperature <= 0) {
      next = logits.argmax().item<int64_t>();
    } else {
      logits = logits / o.temperature;
      if (o.top_k > 0 && o.top_k < logits.size(0)) {
        const auto kth = std::get<0>(logits.topk(o.top_k)).min();
        logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
      }
      next = torch::multinomial(torch::softmax(logits, 0), 1, false, gen).item<int64_t>();
    }
    out.push_back(next);
    if (emit) emit(next);
    input = torch::tensor({next}, torch::kInt64).unsqueeze(0);  // (1, 1)
  }
  return out;
}

}  // namespace infini
