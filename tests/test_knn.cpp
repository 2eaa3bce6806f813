// memory "knn" (Memorizing Transformers' baseline; docs/MODEL.md, "kNN memory"): the search, the
// read, the first-in-first-out memory, the config fields, and the model against xl, whose cache it
// shares. The parity with the Python reference is in test_parity.cpp; causality, chunking, sessions
// and state files run over every mode in their own files.
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "memory/knn.h"
#include "model/transformer.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::expect_error;
using testing::max_rel_error;
using testing::tiny_config;

torch::Tensor unit_rows(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return knn::normalize(torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat64)));
}

// The blocked search selects the same keys as one top-k over the whole score matrix, whatever the
// block size, and k beyond the memory's size gives every key.
TEST(Knn, BlockedSearchEqualsTopKOverAllScores) {
  const int64_t F = 37;
  const auto q = unit_rows({2, 3, 5, 8}, 1), keys = unit_rows({2, 3, F, 8}, 2);
  const auto scores = torch::matmul(q, keys.transpose(-1, -2));  // (2, 3, 5, F)
  for (const int64_t k : {1, 4, 37, 50}) {
    const auto expected = std::get<0>(std::get<1>(scores.topk(std::min(k, F), -1)).sort(-1));
    for (const int64_t block : {int64_t{1}, int64_t{7}, F, F + 3}) {
      const auto idx = knn::search(q, keys, k, block);
      ASSERT_EQ(idx.sizes(), expected.sizes()) << "k " << k << ", block " << block;
      EXPECT_TRUE(torch::equal(std::get<0>(idx.sort(-1)), expected)) << "k " << k << ", block " << block;
    }
  }
}

// With every key retrieved, the read is softmax attention over the whole memory at the learned scale.
TEST(Knn, ReadOfEveryKeyIsFullAttentionAtTheLearnedScale) {
  const int64_t F = 9, dv = 5;
  const auto q = unit_rows({2, 3, 4, 8}, 3), keys = unit_rows({2, 3, F, 8}, 4);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto values = torch::randn({2, 3, F, dv}, gen, torch::kFloat64);
  const auto log_scale = torch::tensor({0.5, 1.0, 2.0}, torch::kFloat64);
  const auto out = knn::read(q, keys, values, knn::search(q, keys, F), log_scale);  // (2, 3, 4, dv)
  const auto weights = torch::softmax(torch::matmul(q, keys.transpose(-1, -2)) * log_scale.exp().view({1, 3, 1, 1}), -1);
  EXPECT_LE(max_rel_error(out, torch::matmul(weights, values)), 1e-12);
  // Fewer keys than the memory holds: the read differs, so the selection matters.
  const auto fewer = knn::read(q, keys, values, knn::search(q, keys, 2), log_scale);
  EXPECT_GT(max_rel_error(fewer, out), 1e-3);
}

// A knn model's kNN block keeps the document's last knn_tokens keys, normalised, oldest first, and
// their values: after each segment they are the XL caches of the segments before, in order.
TEST(Knn, MemoryKeepsTheLastKnnTokensNormalisedKeysFirstInFirstOut) {
  auto c = tiny_config(MemoryMode::Knn);  // segment_len 4, knn_tokens 6, 2 layers: the kNN block is 0
  ASSERT_EQ(c.knn_block(), 0);
  torch::manual_seed(3);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  const auto tokens = torch::randint(c.vocab_size, {2, 4 * c.segment_len}, gen, torch::kInt64);
  auto state = model->initial_state(2);
  std::vector<torch::Tensor> keys, values;  // each segment's keys and values in block 0, (2, H, 4, .)
  for (int64_t s = 0; s < 4; ++s) {
    state = model->forward(tokens.narrow(1, s * c.segment_len, c.segment_len), state).state;
    const auto& block = state.layers()[0];
    EXPECT_FALSE(state.layers()[1].knn_k.defined()) << "only the kNN block holds the memory";
    keys.push_back(block.xl_k);
    values.push_back(block.xl_v);
    const auto all_k = knn::normalize(torch::cat(keys, 2)), all_v = torch::cat(values, 2);
    const auto kept = std::min<int64_t>(c.knn_tokens, all_k.size(2));
    ASSERT_EQ(block.knn_k.size(2), kept) << "after segment " << s;
    EXPECT_LE(max_rel_error(block.knn_k, all_k.narrow(2, all_k.size(2) - kept, kept)), 1e-12);
    EXPECT_LE(max_rel_error(block.knn_v, all_v.narrow(2, all_v.size(2) - kept, kept)), 1e-12);
    EXPECT_FALSE(block.knn_k.requires_grad());
  }
}

// Closing the kNN block's gate leaves the xl model underneath: the same weights give the same logits.
TEST(Knn, ClosedGateIsTheXlModel) {
  auto c = tiny_config(MemoryMode::Knn);
  torch::manual_seed(4);
  InfiniTransformer knn_model(c);
  auto xl_config = c;
  xl_config.memory = MemoryMode::XL;
  InfiniTransformer xl_model(xl_config);
  torch::NoGradGuard no_grad;
  const auto xl_params = xl_model->named_parameters();
  for (const auto& p : knn_model->named_parameters()) {
    if (p.key().find("attn.gate") != std::string::npos) {
      p.value().fill_(-1000.0);  // sigmoid: exactly 0 in float64
    } else if (const auto* twin = xl_params.find(p.key())) {
      twin->copy_(p.value());
    } else {
      ASSERT_EQ(p.key(), "blocks.0.attn.knn_log_scale") << "a parameter xl lacks";
    }
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto tokens = torch::randint(c.vocab_size, {2, 5 * c.segment_len}, gen, torch::kInt64);
  const auto a = knn_model->forward(tokens, knn_model->initial_state(2)).logits;
  const auto b = xl_model->forward(tokens, xl_model->initial_state(2)).logits;
  EXPECT_LE(max_rel_error(a, b), 1e-12);
  // Opened, the gate lets what the memory returns into the logits: keys retrieved by a copy of the
  // state whose memory values are zeroed give other logits.
  knn_model->named_parameters()["blocks.0.attn.gate"].fill_(0.0);
  const auto first = tokens.narrow(1, 0, 3 * c.segment_len), rest = tokens.narrow(1, 3 * c.segment_len, 2 * c.segment_len);
  const auto state = knn_model->forward(first, knn_model->initial_state(2)).state;
  auto blank = state.clone();
  blank.layers()[0].knn_v.zero_();
  const auto remembered = knn_model->forward(rest, state).logits, blanked = knn_model->forward(rest, blank).logits;
  EXPECT_GT(max_rel_error(blanked, remembered), 1e-3);
}

TEST(Knn, ConfigFieldsRoundTripAndBelongToKnnAlone) {
  using nlohmann::json;
  auto c = tiny_config(MemoryMode::Knn);
  c.knn_layer = 1;
  const auto j = c.to_json();
  EXPECT_EQ(j.at("knn_tokens"), 6);
  EXPECT_EQ(ModelConfig::from_json(j, "x", /*require_all=*/true).to_json(), j);
  EXPECT_FALSE(tiny_config(MemoryMode::XL).to_json().contains("knn_tokens")) << "other modes' identities stay";
  expect_error([] { ModelConfig::from_json(json{{"memory", "xl"}, {"knn_top_k", 8}}, "c.json"); },
               {"c.json", "knn_top_k", "belongs to memory \"knn\""});
  auto missing = j;
  missing.erase("knn_top_k");
  expect_error([&] { ModelConfig::from_json(missing, "m/config.json", true); }, {"m/config.json", "knn_top_k"});
  expect_error([] { ModelConfig::from_json(json{{"memory", "knn"}, {"knn_tokens", 0}}, "c.json"); },
               {"knn_tokens", "from 1 to"});
  expect_error([] { ModelConfig::from_json(json{{"memory", "knn"}, {"knn_layer", 4}}, "c.json"); },
               {"knn_layer", "from -1 to 3"});
  expect_error([] { ModelConfig::from_json(json{{"memory", "knn"}, {"mod_every", 2}}, "c.json"); },
               {"mod_every", "knn"});
}

// A state file's kNN memory must hold exactly the tokens before its segment, up to the capacity.
TEST(Knn, StateWithAWrongSizedMemoryIsRefused) {
  const auto c = tiny_config(MemoryMode::Knn);
  torch::manual_seed(2);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(c.vocab_size, {1, 3 * c.segment_len + 1}, torch::kInt64);
  auto tensors = model->forward(tokens, model->initial_state(1)).state.to_tensors();
  ASSERT_EQ(tensors.at("layers.0.knn_k").size(2), 6);  // 12 tokens before this segment, capped
  EXPECT_NO_THROW(ModelState::from_tensors(c, tensors, 1, torch::kCPU));
  tensors["layers.0.knn_k"] = tensors["layers.0.knn_k"].narrow(2, 1, 5);
  expect_error([&] { ModelState::from_tensors(c, tensors, 1, torch::kCPU); }, {"layers.0.knn_k", "shape"});
}

}  // namespace
}  // namespace infini
