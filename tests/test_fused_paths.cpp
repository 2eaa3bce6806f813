// The fused paths against the general one at the shipped model's sizes: d_model 256, 4 layers of 4
// heads, d_key = d_value 64, segment_len 64, over 100 segments (6,400 tokens) and more, under both
// memory rules, with qk_conv 3 (the shipped model's extension) and with memory_key_shift (the linear
// rule's recipe). The general forward pass (src/model, src/memory) is the readable reference; the
// fused prefill (src/infer/prefill.cpp) and the fused decoder (src/infer/decoder.cpp) are the fast
// paths. The tiny-config versions of these checks are in test_session.cpp.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "infer/session.h"
#include "io/model_dir.h"
#include "test_util.h"

namespace infini {
namespace {

struct Case {
  MemoryMode mode;
  bool qk_conv;  // else memory_key_shift
  bool shipped;  // the weights of models/passkey-infini-delta instead of random ones
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = fmt::format("{}_{}{}", to_string(info.param.mode), info.param.qk_conv ? "qk_conv" : "key_shift",
                              info.param.shipped ? "_shipped" : "");
  for (auto& ch : s)
    if (ch == '-') ch = '_';
  return s;
}

class FusedPaths : public ::testing::TestWithParam<Case> {};

InfiniTransformer make_model(const Case& k) {
  if (k.shipped) return io::load_model(std::string(INFINI_SOURCE_DIR) + "/models/passkey-infini-delta");
  ModelConfig c;  // the reference sizes (configs/reference.json), with the shipped model's segments
  c.segment_len = 64;
  c.memory = k.mode;
  c.init_std = 0.05;  // large enough that attention is not uniform
  c.gate_init = 0.0;  // half of each head's output from the memory, so a wrong read shows
  if (k.qk_conv)
    c.qk_conv = 3;
  else
    c.memory_key_shift = true;
  torch::manual_seed(61);
  InfiniTransformer model(c);
  testing::randomise(model, "_conv", 1);
  testing::randomise(model, "key_shift", 1);
  return model;
}

// Byte tokens of the shipped sample text, so the shipped model reads text like its training data.
std::vector<int64_t> sample_tokens(int64_t n) {
  std::ifstream in(std::string(INFINI_SOURCE_DIR) + "/data/sample/kjv-genesis-exodus.txt", std::ios::binary);
  std::vector<int64_t> tokens;
  for (char ch; static_cast<int64_t>(tokens.size()) < n && in.get(ch);) tokens.push_back(static_cast<unsigned char>(ch));
  return tokens;
}

// Largest |a - b| relative to the largest |b|: logits, M and z all grow with the input, so the bound
// is on the error relative to the scale. fp32 over 6,400 tokens: measured 1.5e-6 to 4.3e-5 (the
// shipped model's token stream, whose delta-rule memory is the most sensitive), bound 1e-4.
double rel(const torch::Tensor& a, const torch::Tensor& b) { return testing::max_rel_error(a, b); }
constexpr double kBound = 1e-4;

TEST_P(FusedPaths, MatchTheGeneralPathOverAHundredSegments) {
  const auto k = GetParam();
  auto model = make_model(k);
  const auto& c = model->config();
  ASSERT_EQ(c.d_key, 64);
  ASSERT_EQ(c.segment_len, 64);
  ASSERT_EQ(c.memory, k.mode);
  ASSERT_EQ(c.qk_conv, k.qk_conv ? 3 : 0);
  const int64_t L = c.segment_len, segments = 100, decoded = 2 * L + 5, T = segments * L + decoded;
  const auto tokens = sample_tokens(T);
  ASSERT_EQ(static_cast<int64_t>(tokens.size()), T);

  torch::InferenceMode inference;
  const auto ids = torch::tensor(tokens, torch::kInt64).view({1, T});  // (1, T)
  const auto general = model->forward(ids, model->initial_state(1));
  const auto& logits = general.logits[0];  // (T, V)

  // The fused prefill, a segment at a time, then the fused decoder across two more boundaries.
  SessionEngine fused(model);
  ASSERT_TRUE(fused.fused_prefill() && fused.fused_decode());
  double prefill_worst = 0, decode_worst = 0;
  for (int64_t s = 0; s < segments; ++s) {
    fused.feed({tokens.begin() + s * L, tokens.begin() + (s + 1) * L});
    prefill_worst = std::max(prefill_worst, rel(fused.last_logits(), logits[(s + 1) * L - 1]));
  }
  for (int64_t t = segments * L; t < T; ++t) {
    fused.feed({tokens[static_cast<size_t>(t)]});
    decode_worst = std::max(decode_worst, rel(fused.last_logits(), logits[t]));
  }
  EXPECT_LT(prefill_worst, kBound);
  EXPECT_LT(decode_worst, kBound);
  for (size_t i = 0; i < general.state.layers().size(); ++i) {
    const auto &f = fused.state().layers()[i], &g = general.state.layers()[i];
    EXPECT_LT(rel(f.M, g.M), kBound) << "layer " << i;
    EXPECT_LT(rel(f.z, g.z), kBound) << "layer " << i;
    EXPECT_LT(rel(f.seg_k, g.seg_k), kBound) << "layer " << i;
    if (c.qk_conv > 0) EXPECT_LT(rel(f.conv_k, g.conv_k), kBound) << "layer " << i;
  }

  // The fused decoder alone, every token of the hundred segments one at a time.
  SessionEngine decoder(model, /*fused_decode=*/true, /*fused_prefill=*/false);
  double stream_worst = 0;
  for (int64_t t = 0; t < segments * L; ++t) {
    decoder.feed({tokens[static_cast<size_t>(t)]});
    stream_worst = std::max(stream_worst, rel(decoder.last_logits(), logits[t]));
  }
  EXPECT_LT(stream_worst, kBound);
  RecordProperty("prefill_rel", fmt::format("{:.2e}", prefill_worst));
  RecordProperty("decode_rel", fmt::format("{:.2e}", std::max(decode_worst, stream_worst)));
  std::fprintf(stderr, "fused paths, %s: prefill %.2e, decode %.2e, token stream %.2e (relative)\n",
               case_name({k, 0}).c_str(), prefill_worst, decode_worst, stream_worst);

  // The memory carries the model: forgetting it changes the logits far more than the paths differ.
  SessionEngine forgetful(model);
  forgetful.feed({tokens.begin() + (segments - 1) * L, tokens.begin() + segments * L});
  EXPECT_GT(rel(forgetful.last_logits(), logits[segments * L - 1]), 100 * prefill_worst);
}

INSTANTIATE_TEST_SUITE_P(ShippedSizes, FusedPaths,
                         ::testing::Values(Case{MemoryMode::InfiniDelta, true, true},
                                           Case{MemoryMode::InfiniDelta, true, false},
                                           Case{MemoryMode::InfiniLinear, true, false},
                                           Case{MemoryMode::InfiniDelta, false, false},
                                           Case{MemoryMode::InfiniLinear, false, false}),
                         case_name);

}  // namespace
}  // namespace infini
