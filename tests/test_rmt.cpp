// memory "rmt" (the Recurrent Memory Transformer's baseline; docs/MODEL.md, "Recurrent memory"): its
// memory rows, the memory it writes, its config field and state files. The parity with the Python
// reference is in test_parity.cpp; gradients, chunking, causality, sessions and state files run over
// every mode in their own files.
#include <gtest/gtest.h>

#include "model/transformer.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::expect_error;
using testing::max_rel_error;
using testing::tiny_config;

// The memory rows are not tokens: the logits are one per token, and the state holds the written
// memory once a segment has ended, (B, p, D), and the learned one's stand-in (B, 0, D) before.
TEST(Rmt, MemoryRowsAreNotScoredAndTheWrittenMemoryIsKept) {
  const auto c = tiny_config(MemoryMode::Rmt);  // segment_len 4, rmt_tokens 2
  torch::manual_seed(3);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto tokens = torch::randint(c.vocab_size, {2, 2 * c.segment_len + 1}, gen, torch::kInt64);
  const auto start = model->initial_state(2);
  ASSERT_EQ(start.rmt_memory().sizes(), (std::vector<int64_t>{2, 0, c.d_model}));
  const auto part = model->forward(tokens.narrow(1, 0, c.segment_len - 1), start);
  EXPECT_EQ(part.logits.size(1), c.segment_len - 1);
  EXPECT_EQ(part.state.rmt_memory().size(1), 0) << "no segment has ended";
  EXPECT_EQ(part.state.layers()[0].seg_k.size(2), c.rmt_tokens + c.segment_len - 1) << "the read rows are cached";
  const auto out = model->forward(tokens, start);
  EXPECT_EQ(out.logits.size(1), tokens.size(1));
  ASSERT_EQ(out.state.rmt_memory().sizes(), (std::vector<int64_t>{2, c.rmt_tokens, c.d_model}));
  // The written memory is what the next segment reads: replacing it at a segment boundary changes
  // that segment's logits. (Mid-segment, the read rows are already in the cache.)
  const auto boundary = model->forward(tokens.narrow(1, 0, 2 * c.segment_len), start).state;
  auto other = boundary.clone();
  other.set_rmt_memory(torch::zeros_like(boundary.rmt_memory()));
  const auto next = tokens.narrow(1, 0, 3);
  EXPECT_GT(max_rel_error(model->forward(next, other).logits, model->forward(next, boundary).logits), 1e-3);
  auto mid = out.state.clone();
  mid.set_rmt_memory(torch::zeros_like(out.state.rmt_memory()));
  EXPECT_TRUE(torch::equal(model->forward(next, mid).logits, model->forward(next, out.state).logits));
}

// The learned memory is what a sequence starts with: it changes the first segment's logits, and it
// gets gradient from them.
TEST(Rmt, TheLearnedMemoryStartsEverySequence) {
  const auto c = tiny_config(MemoryMode::Rmt);
  torch::manual_seed(5);
  InfiniTransformer model(c);
  const auto tokens = torch::randint(c.vocab_size, {1, c.segment_len}, torch::kInt64);
  const auto before = model->forward(tokens, model->initial_state(1)).logits;
  before.pow(2).sum().backward();
  ASSERT_TRUE(model->rmt_memory.grad().defined());
  EXPECT_GT(model->rmt_memory.grad().abs().sum().item<double>(), 0.0);
  {
    torch::NoGradGuard no_grad;
    model->rmt_memory.add_(1.0);
  }
  const auto after = model->forward(tokens, model->initial_state(1)).logits;
  EXPECT_GT(max_rel_error(after, before), 1e-3);
}

TEST(Rmt, ConfigFieldBelongsToRmtAlone) {
  using nlohmann::json;
  auto c = tiny_config(MemoryMode::Rmt);
  const auto j = c.to_json();
  EXPECT_EQ(j.at("rmt_tokens"), 2);
  EXPECT_EQ(ModelConfig::from_json(j, "x", /*require_all=*/true).to_json(), j);
  EXPECT_FALSE(tiny_config(MemoryMode::None).to_json().contains("rmt_tokens"));
  expect_error([] { ModelConfig::from_json(json{{"memory", "none"}, {"rmt_tokens", 4}}, "c.json"); },
               {"c.json", "rmt_tokens", "belongs to memory \"rmt\""});
  auto missing = j;
  missing.erase("rmt_tokens");
  expect_error([&] { ModelConfig::from_json(missing, "m/config.json", true); }, {"m/config.json", "rmt_tokens"});
  expect_error([] { ModelConfig::from_json(json{{"memory", "rmt"}, {"rmt_tokens", 0}}, "c.json"); },
               {"rmt_tokens", "from 1 to"});
  expect_error([] { ModelConfig::from_json(json{{"memory", "rmt"}, {"segment_len", 16384}}, "c.json"); },
               {"rmt_tokens", "16416"});
  expect_error([] { ModelConfig::from_json(json{{"memory", "rmt"}, {"qk_conv", 3}}, "c.json"); }, {"qk_conv", "rmt"});
}

// A state file's written memory is there exactly when a segment has ended, (B, p, D).
TEST(Rmt, StateWithAWrongMemoryIsRefused) {
  const auto c = tiny_config(MemoryMode::Rmt);
  torch::manual_seed(2);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(c.vocab_size, {1, c.segment_len + 1}, torch::kInt64);
  auto tensors = model->forward(tokens, model->initial_state(1)).state.to_tensors();
  EXPECT_NO_THROW(ModelState::from_tensors(c, tensors, 1, torch::kCPU));
  auto short_memory = tensors;
  short_memory["rmt_memory"] = tensors["rmt_memory"].narrow(1, 0, 1);
  expect_error([&] { ModelState::from_tensors(c, short_memory, 1, torch::kCPU); }, {"rmt_memory", "shape"});
  auto missing = tensors;
  missing.erase("rmt_memory");
  expect_error([&] { ModelState::from_tensors(c, missing, 1, torch::kCPU); }, {"rmt_memory", "missing"});
  auto infinite = tensors;
  infinite["rmt_memory"] = tensors["rmt_memory"].clone().fill_(INFINITY);
  expect_error([&] { ModelState::from_tensors(c, infinite, 1, torch::kCPU); }, {"rmt_memory", "infinite"});
}

}  // namespace
}  // namespace infini
