// Properties of the model itself, independent of the Python reference.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "memory/compressive.h"
#include "model/transformer.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::expect_error;
using testing::kAllModes;
using testing::max_rel_error;
using testing::tiny_config;

torch::Tensor random_tokens(const ModelConfig& c, int64_t batch, int64_t length, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randint(c.vocab_size, {batch, length}, gen, torch::kInt64);
}

// Mean cross-entropy over two segments of `tokens` (B, 2N+1). The XL cache carries no gradient by
// design, so for xl the second segment reads a cache frozen at the unperturbed weights
// (`frozen_state`); then finite differences measure exactly what autograd computes.
double two_segment_loss(InfiniTransformer& model, const torch::Tensor& tokens,
                        const ModelState* frozen_state = nullptr) {
  const auto N = model->config().segment_len, V = model->config().vocab_size;
  auto first = model->forward(tokens.narrow(1, 0, N), model->initial_state(tokens.size(0)));
  auto second = model->forward(tokens.narrow(1, N, N), frozen_state ? *frozen_state : first.state);
  const auto logits = torch::cat({first.logits, second.logits}, 1);  // (B, 2N, V)
  return torch::nn::functional::cross_entropy(logits.reshape({-1, V}), tokens.narrow(1, 1, 2 * N).reshape({-1}))
      .item<double>();
}

class PerMode : public ::testing::TestWithParam<MemoryMode> {};

// Central differences in float64 through two segments, so the gradient reaches the first segment's
// memory write through the second segment's read.
TEST_P(PerMode, GradientMatchesFiniteDifferences) {
  const auto c = tiny_config(GetParam());
  torch::manual_seed(7);
  InfiniTransformer model(c);
  const auto tokens = random_tokens(c, 2, 2 * c.segment_len + 1, 11);
  model->zero_grad();
  {
    const auto W = tokens.size(1) - 1;
    auto out = model->forward(tokens.narrow(1, 0, W), model->initial_state(2));
    torch::nn::functional::cross_entropy(out.logits.reshape({-1, c.vocab_size}),
                                         tokens.narrow(1, 1, W).reshape({-1}))
        .backward();
  }
  ModelState xl_cache;
  // The caches that carry no gradient (XL, and knn's XL and kNN memory) are frozen at the unperturbed
  // weights' values, as the analytic gradient sees them.
  if (c.has_xl_cache()) {
    torch::NoGradGuard no_grad;
    xl_cache = model->forward(tokens.narrow(1, 0, c.segment_len), model->initial_state(2)).state;
  }
  const ModelState* frozen = c.has_xl_cache() ? &xl_cache : nullptr;
  const double h = 1e-6;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  torch::NoGradGuard no_grad;
  int checked = 0;
  for (auto& item : model->named_parameters()) {
    auto flat = item.value().view({-1});
    const auto grad = item.value().grad().view({-1});
    // Every entry of small tensors, a random sample of large ones.
    const int64_t n = flat.numel();
    const auto picks = n <= 24 ? torch::arange(n) : torch::randint(n, {24}, gen, torch::kInt64);
    for (int64_t j = 0; j < picks.numel(); ++j) {
      const auto idx = picks[j].item<int64_t>();
      const double orig = flat[idx].item<double>();
      flat[idx] = orig + h;
      const double up = two_segment_loss(model, tokens, frozen);
      flat[idx] = orig - h;
      const double down = two_segment_loss(model, tokens, frozen);
      flat[idx] = orig;
      const double numeric = (up - down) / (2 * h);
      const double analytic = grad[idx].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::abs(numeric)) << item.key() << "[" << idx << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

// The first segment's tokens come from one half of the vocabulary and the second's from the other,
// so the embedding rows of the first half can get gradient from the second segment's loss only
// through the state: through M and z, or RMT's written memory, unless detached; never through the XL
// cache or the kNN memory.
TEST_P(PerMode, GradientFlowsThroughStateUntilDetached) {
  const auto c = tiny_config(GetParam());
  if (c.memory == MemoryMode::None) GTEST_SKIP() << "no state crosses segments in this mode";
  torch::manual_seed(5);
  InfiniTransformer model(c);
  const auto half = c.vocab_size / 2;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto first = torch::randint(0, half, {1, c.segment_len}, gen, torch::kInt64);
  const auto second = torch::randint(half, c.vocab_size, {1, c.segment_len}, gen, torch::kInt64);
  const auto first_rows_grad = [&](bool detach) {
    model->zero_grad();
    auto state = model->forward(first, model->initial_state(1)).state;
    if (detach) state.detach();
    model->forward(second, state).logits.pow(2).sum().backward();
    return model->embed->weight.grad().narrow(0, 0, half).abs().sum().item<double>();
  };
  if (c.has_compressive_memory() || c.memory == MemoryMode::Rmt) {  // M and z; RMT's written memory
    EXPECT_GT(first_rows_grad(false), 1e-6);
  } else {
    EXPECT_EQ(first_rows_grad(false), 0.0);  // the XL cache carries no gradient
  }
  EXPECT_EQ(first_rows_grad(true), 0.0);
}

TEST_P(PerMode, ChunkingDoesNotChangeLogits) {
  const auto c = tiny_config(GetParam());
  torch::manual_seed(1);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  const auto tokens = random_tokens(c, 2, 4 * c.segment_len, 21);  // 4 segments
  const auto whole = model->forward(tokens, model->initial_state(2)).logits;

  // One segment per call, the state carried over.
  auto state = model->initial_state(2);
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < 4; ++s) {
    auto out = model->forward(tokens.narrow(1, s * c.segment_len, c.segment_len), state);
    parts.push_back(out.logits);
    state = out.state;
  }
  EXPECT_LE(max_rel_error(torch::cat(parts, 1), whole), 1e-12);

  // Ragged chunks that straddle segment boundaries, down to single tokens.
  state = model->initial_state(2);
  parts.clear();
  int64_t offset = 0;
  for (int64_t len : {1, 2, 3, 5, 1, 1, 3}) {
    auto out = model->forward(tokens.narrow(1, offset, len), state);
    parts.push_back(out.logits);
    state = out.state;
    offset += len;
  }
  ASSERT_EQ(offset, tokens.size(1));
  EXPECT_LE(max_rel_error(torch::cat(parts, 1), whole), 1e-12);
}

TEST_P(PerMode, FirstSegmentIsFiniteEvenForZeroInput) {
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    auto c = tiny_config(GetParam(), dtype);
    torch::manual_seed(2);
    InfiniTransformer model(c);
    const auto zeros = torch::zeros({2, c.segment_len + 1}, torch::kInt64);
    auto out = model->forward(zeros.narrow(1, 0, c.segment_len), model->initial_state(2));
    ASSERT_TRUE(torch::isfinite(out.logits).all().item<bool>());
    torch::nn::functional::cross_entropy(out.logits.reshape({-1, c.vocab_size}),
                                         zeros.narrow(1, 1, c.segment_len).reshape({-1}))
        .backward();
    for (const auto& item : model->named_parameters()) {
      // The kNN memory is empty in the first segment, so its scale is not used yet.
      if (item.key().find("knn_log_scale") != std::string::npos && !item.value().grad().defined()) continue;
      ASSERT_TRUE(torch::isfinite(item.value().grad()).all().item<bool>()) << item.key();
    }
    // An all-zero embedding makes every activation zero: still no 0/0.
    {
      torch::NoGradGuard no_grad;
      model->embed->weight.zero_();
    }
    auto out0 = model->forward(zeros.narrow(1, 0, c.segment_len), model->initial_state(2));
    ASSERT_TRUE(torch::isfinite(out0.logits).all().item<bool>());
    for (const auto& layer : out0.state.layers())
      if (layer.M.defined()) ASSERT_TRUE(torch::isfinite(layer.M).all().item<bool>());
  }
}

// The memory is the point of the model: its size must not grow with the input.
TEST_P(PerMode, StateSizeDoesNotGrowWithSegments) {
  const auto c = tiny_config(GetParam());
  torch::manual_seed(4);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  auto state = model->initial_state(1);
  std::vector<int64_t> at_boundary, mid_segment;
  const auto tokens = random_tokens(c, 1, 40 * c.segment_len, 8);
  for (int64_t s = 0; s < 40; ++s) {
    const auto seg = tokens.narrow(1, s * c.segment_len, c.segment_len);
    state = model->forward(seg.narrow(1, 0, 1), state).state;
    mid_segment.push_back(state.bytes());
    state = model->forward(seg.narrow(1, 1, c.segment_len - 1), state).state;
    at_boundary.push_back(state.bytes());
  }
  // Once the caches are full nothing changes: from the second segment on (the XL cache fills after
  // the first), and for knn once knn_tokens tokens precede the segment.
  const size_t full = c.memory == MemoryMode::Knn ? static_cast<size_t>(c.knn_tokens / c.segment_len + 1) : 1;
  ASSERT_LT(full + 10, at_boundary.size());
  for (size_t s = full; s < at_boundary.size(); ++s) {
    EXPECT_EQ(at_boundary[s], at_boundary[full]);
    EXPECT_EQ(mid_segment[s], mid_segment[full]);
  }
  EXPECT_EQ(state.tokens_seen(), 40 * c.segment_len);
}

TEST_P(PerMode, ClearRestoresTheEmptyState) {
  const auto c = tiny_config(GetParam());
  torch::manual_seed(6);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  const auto tokens = random_tokens(c, 1, 3 * c.segment_len, 10);
  const auto fresh = model->forward(tokens, model->initial_state(1)).logits;
  auto state = model->forward(tokens, model->initial_state(1)).state;
  state.clear();
  EXPECT_EQ(state.tokens_seen(), 0);
  EXPECT_TRUE(torch::equal(model->forward(tokens, state).logits, fresh));
}

// Logits from a later token on: the same logits, state and gradients as the full pass, although the
// last block computes only keys and values for segments before that token (with qk_conv, whose
// tails must move on all the same). Every cut: before the first token, inside a segment, on a
// boundary, the last token, after it.
TEST_P(PerMode, LogitsFromALaterTokenChangeNothingElse) {
  for (const int64_t conv : {0, 3}) {
    auto c = tiny_config(GetParam());
    if (c.memory == MemoryMode::Knn) {
      // No qk_conv with knn: the kNN block first, then last, where it only remembers for early segments.
      c.knn_layer = conv == 0 ? 0 : c.n_layers - 1;
    } else if (c.memory == MemoryMode::Rmt) {
      c.rmt_tokens = conv == 0 ? 2 : 3;  // no qk_conv with rmt either
    } else {
      c.qk_conv = conv;
    }
    torch::manual_seed(12);
    InfiniTransformer model(c);
    const auto T = 3 * c.segment_len + 3;
    const auto tokens = random_tokens(c, 2, T, 13);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(14);
    const auto weights = torch::randn({2, T, c.vocab_size}, gen, torch::kFloat64);  // (B, T, V)
    const auto pass = [&](int64_t from, bool cut) {
      model->zero_grad();
      auto out = model->forward(tokens, model->initial_state(2), cut ? from : 0);
      const auto logits = cut ? out.logits : out.logits.narrow(1, from, T - from);  // (B, T - from, V)
      (logits * weights.narrow(1, from, T - from)).sum().backward();
      std::map<std::string, torch::Tensor> grads;
      for (const auto& item : model->named_parameters())
        grads[item.key()] = item.value().grad().defined() ? item.value().grad().clone()
                                                          : torch::zeros_like(item.value());
      return std::make_tuple(logits.detach(), out.state.to_tensors(), grads);
    };
    for (const int64_t from : {int64_t{0}, int64_t{2}, c.segment_len, 2 * c.segment_len + 1, T - 1, T}) {
      const auto what = fmt::format("qk_conv {}, logits from {}", conv, from);
      const auto [full_logits, full_state, full_grads] = pass(from, false);
      const auto [logits, state, grads] = pass(from, true);
      ASSERT_EQ(logits.sizes(), full_logits.sizes()) << what;
      if (from < T) EXPECT_LE(max_rel_error(logits, full_logits), 1e-12) << what;
      ASSERT_EQ(state.size(), full_state.size()) << what;
      for (const auto& [name, t] : full_state) {
        ASSERT_TRUE(state.count(name)) << what << ": " << name;
        EXPECT_LE(max_rel_error(state.at(name), t), 1e-12) << what << ": " << name;
      }
      for (const auto& [name, g] : full_grads)
        if (g.abs().max().item<double>() > 0)
          EXPECT_LE(max_rel_error(grads.at(name), g), 1e-12) << what << ": " << name;
        else
          EXPECT_EQ(grads.at(name).abs().max().item<double>(), 0.0) << what << ": " << name;
    }
  }
  expect_error([&] {
    auto c = tiny_config(GetParam());
    InfiniTransformer model(c);
    model->forward(random_tokens(c, 1, 3, 1), model->initial_state(1), 4);
  }, {"logits_from 4", "0..3"});
}

INSTANTIATE_TEST_SUITE_P(AllModes, PerMode, ::testing::ValuesIn(kAllModes), testing::ModeName());

// qk_conv's taps start as the raw query and as the mean of the raw key and the one before it, the
// rest 0, at every width.
TEST(QkConv, TapsStartAtTheQueryAndTheMeanOfTwoKeys) {
  for (const int64_t width : {2, 3, 4}) {
    auto c = tiny_config(MemoryMode::InfiniDelta);
    c.qk_conv = width;
    c.validate();
    InfiniAttention attn(c);
    for (int64_t j = 0; j < c.qk_conv; ++j) {
      const double q = j == 0 ? 1.0 : 0.0, k = j <= 1 ? 0.5 : 0.0;
      const auto q_tap = attn->q_conv.select(2, j), k_tap = attn->k_conv.select(2, j);  // (H, dk) each
      EXPECT_TRUE(torch::allclose(q_tap, torch::full_like(q_tap, q))) << "width " << width << ", query tap " << j;
      EXPECT_TRUE(torch::allclose(k_tap, torch::full_like(k_tap, k))) << "width " << width << ", key tap " << j;
    }
  }
}

TEST(CompressiveMemory, EmptyMemoryReadsExactlyZero) {
  const auto M = torch::zeros({1, 2, 4, 3}, torch::kFloat64);
  const auto z = torch::zeros({1, 2, 4}, torch::kFloat64);
  const auto sq = memory::feature_map(torch::randn({1, 2, 5, 4}, torch::kFloat64));
  EXPECT_TRUE(torch::equal(memory::read(sq, M, z, 1e-6), torch::zeros({1, 2, 5, 3}, torch::kFloat64)));
  // ... so with empty memory the delta rule writes exactly what the linear rule writes.
  const auto sk = memory::feature_map(torch::randn({1, 2, 5, 4}, torch::kFloat64));
  const auto v = torch::randn({1, 2, 5, 3}, torch::kFloat64);
  const auto linear = memory::write(sk, v, M, z, 1e-6, false);
  const auto delta = memory::write(sk, v, M, z, 1e-6, true);
  EXPECT_TRUE(torch::equal(linear.first, delta.first));
  EXPECT_TRUE(torch::equal(linear.second, delta.second));
}

TEST(CompressiveMemory, DeltaRuleSkipsBindingsAlreadyStored) {
  // One key, written once: reading it back returns v |s|^2 / (|s|^2 + eps), so writing the same
  // binding again adds only the eps-sized remainder under the delta rule, a full copy under linear.
  const auto sk = memory::feature_map(torch::randn({1, 1, 1, 4}, torch::kFloat64));
  const auto v = torch::randn({1, 1, 1, 3}, torch::kFloat64);
  const auto [M1, z1] = memory::write(sk, v, torch::zeros({1, 1, 4, 3}, torch::kFloat64),
                                      torch::zeros({1, 1, 4}, torch::kFloat64), 1e-6, true);
  const auto [M2, z2] = memory::write(sk, v, M1, z1, 1e-6, true);
  const auto [L2, lz2] = memory::write(sk, v, M1, z1, 1e-6, false);
  EXPECT_LT((M2 - M1).abs().max().item<double>(), 1e-5 * M1.abs().max().item<double>());
  EXPECT_NEAR((L2 - M1).abs().max().item<double>(), M1.abs().max().item<double>(), 1e-12);
  EXPECT_TRUE(torch::allclose(z2, 2 * z1));
}

// A weighted write stands for that many writes of the same segment: exactly so under the linear rule
// (each sequence of the batch with its own weight); a weight of 1 is the plain write under both rules.
TEST(CompressiveMemory, WeightedWriteIsRepeatedLinearWrites) {
  const auto sk = memory::feature_map(torch::randn({2, 2, 5, 4}, torch::kFloat64));  // (B, H, N, dk)
  const auto v = torch::randn({2, 2, 5, 3}, torch::kFloat64);                        // (B, H, N, dv)
  const auto M0 = torch::randn({2, 2, 4, 3}, torch::kFloat64);
  const auto z0 = memory::feature_map(torch::randn({2, 2, 4}, torch::kFloat64));
  const auto [Mw, zw] = memory::write(sk, v, M0, z0, 1e-6, false, torch::tensor({3.0, 1.0}));
  auto M = M0.clone(), z = z0.clone();
  for (int i = 0; i < 3; ++i) {
    const auto [M1, z1] = memory::write(sk, v, M, z, 1e-6, false);
    M = torch::cat({M1.narrow(0, 0, 1), i == 0 ? M1.narrow(0, 1, 1) : M.narrow(0, 1, 1)});
    z = torch::cat({z1.narrow(0, 0, 1), i == 0 ? z1.narrow(0, 1, 1) : z.narrow(0, 1, 1)});
  }
  EXPECT_TRUE(torch::allclose(Mw, M, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(zw, z, 1e-12, 1e-12));
  for (const bool delta : {false, true}) {
    const auto [Mp, zp] = memory::write(sk, v, M0, z0, 1e-6, delta);
    const auto [M1, z1] = memory::write(sk, v, M0, z0, 1e-6, delta, torch::ones({2}));
    EXPECT_TRUE(torch::allclose(Mp, M1, 1e-12, 1e-12)) << delta;
    EXPECT_TRUE(torch::allclose(zp, z1, 1e-12, 1e-12)) << delta;
  }
}

TEST(CompressiveMemory, StaysFloat32UnderBfloat16) {
  auto c = tiny_config(MemoryMode::InfiniDelta, torch::kBFloat16);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  auto out = model->forward(random_tokens(c, 1, 2 * c.segment_len, 1), model->initial_state(1));
  EXPECT_EQ(out.logits.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(out.state.layers()[0].M.scalar_type(), torch::kFloat32);
  EXPECT_EQ(out.state.layers()[0].z.scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace infini
