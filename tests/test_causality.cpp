// Causality of every memory mode and extension: changing a later token leaves every earlier logit
// unchanged, and does change the logits from that token on (so the test can fail both ways). The
// general forward pass is checked over several segments, with the changed token at a segment's
// start, inside it and at its end; routed (Mixture-of-Depths) blocks under causal routing. The fused
// paths are held to the general one in test_fused_paths.cpp.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "model/transformer.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::max_rel_error;

enum class Extension { None, MemoryKeyShift, QkConv };

const char* name(Extension e) {
  switch (e) {
    case Extension::MemoryKeyShift: return "memory_key_shift";
    case Extension::QkConv: return "qk_conv";
    default: return "no extension";
  }
}

struct Case {
  MemoryMode mode;
  Extension extension;
  bool routed;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = fmt::format("{}_{}{}", to_string(info.param.mode), name(info.param.extension),
                              info.param.routed ? "_routed" : "");
  for (auto& ch : s)
    if (ch == '-' || ch == ' ') ch = '_';
  return s;
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto mode : testing::kAllModes)
    for (const auto ext : {Extension::None, Extension::MemoryKeyShift, Extension::QkConv})
      for (const bool routed : {false, true}) {
        const bool compressive = mode == MemoryMode::InfiniLinear || mode == MemoryMode::InfiniDelta;
        if (ext == Extension::MemoryKeyShift && !compressive) continue;  // it shifts the memory's keys
        const bool baseline = mode == MemoryMode::Knn || mode == MemoryMode::Rmt;
        if (baseline && (ext == Extension::QkConv || routed)) continue;  // refused with knn and rmt
        cases.push_back({mode, ext, routed});
      }
  return cases;
}

class Causality : public ::testing::TestWithParam<Case> {};

ModelConfig causality_config(const Case& k) {
  auto c = testing::tiny_config(k.mode);  // float64, segment_len 4, 2 layers
  c.n_layers = 3;
  c.segment_len = 6;
  if (k.extension == Extension::MemoryKeyShift) c.memory_key_shift = true;
  if (k.extension == Extension::QkConv) c.qk_conv = 3;
  if (k.routed) {
    c.mod_every = 2;  // block 1 routed
    c.mod_capacity = 0.5;
    c.mod_predictor_hidden = 8;
  }
  return c;
}

TEST_P(Causality, ALaterTokenNeverChangesAnEarlierLogit) {
  const auto k = GetParam();
  const auto c = causality_config(k);
  torch::manual_seed(41);
  InfiniTransformer model(c);
  testing::randomise(model, "_conv", 1);
  testing::randomise(model, "key_shift", 1);
  torch::NoGradGuard no_grad;
  const auto routing = k.routed ? Routing::Causal : Routing::TopK;
  // Causal routing reads one sequence at a time (its selections differ in length).
  const int64_t L = c.segment_len, T = 4 * L + 3, B = k.routed ? 1 : 2;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  const auto tokens = torch::randint(c.vocab_size, {B, T}, gen, torch::kInt64);  // (B, T)
  const auto base = model->forward(tokens, model->initial_state(B), 0, routing);
  if (k.routed) {  // some tokens skip the routed block, some take it
    EXPECT_GT(base.routing.selected, 0);
    EXPECT_LT(base.routing.selected, base.routing.decisions);
  }
  // A segment's first token, one inside it, its last, and the last token of all.
  for (const int64_t j : {L, 2 * L + 2, 3 * L - 1, T - 1}) {
    auto changed = tokens.clone();
    changed.index_put_({torch::indexing::Slice(), j}, (tokens.select(1, j) + 5).remainder(c.vocab_size));
    const auto out = model->forward(changed, model->initial_state(B), 0, routing).logits;  // (B, T, V)
    const auto what = fmt::format("token {} changed", j);
    EXPECT_LE(max_rel_error(out.narrow(1, 0, j), base.logits.narrow(1, 0, j)), 1e-13) << what;
    // The change reaches its own position's logits: the comparison above is not vacuous.
    EXPECT_GT((out.select(1, j) - base.logits.select(1, j)).abs().max().item<double>(), 1e-6) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, Causality, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace infini
