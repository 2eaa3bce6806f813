// Mixture-of-Depths (src/routing): causal routing is causal, the router learns through the LM loss,
// full capacity is the dense block, token-by-token decoding matches the parallel pass, and a single
// decode step never selects an invalid set. Parity of the routed forward pass, its auxiliary losses
// and gradients with the Python reference is in test_parity.cpp.
#include <functional>

#include <gtest/gtest.h>

#include "infer/session.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::max_rel_error;
using testing::randomise;

ModelConfig routed_config(MemoryMode mode, CausalSelector selector = CausalSelector::Router) {
  auto c = testing::tiny_config(mode, torch::kFloat32);  // segment_len 4, 2 layers
  c.n_layers = 3;
  c.segment_len = 8;
  c.init_std = 0.1;
  c.mod_every = 2;  // block 1 routed
  c.mod_capacity = 0.25;
  c.mod_predictor = selector;
  c.mod_predictor_hidden = 8;
  return c;
}

torch::Tensor some_tokens(int64_t n, int64_t vocab, int64_t salt = 0) {
  return torch::arange(n, torch::kInt64).mul(7).add(3 + salt).remainder(vocab).unsqueeze(0);  // (1, n)
}

class RoutingPerMode : public ::testing::TestWithParam<MemoryMode> {};

TEST_P(RoutingPerMode, CausalRoutingNeverLetsALaterTokenChangeAnEarlierOutput) {
  for (const auto selector : {CausalSelector::Router, CausalSelector::Mlp}) {
    torch::manual_seed(11);
    InfiniTransformer model(routed_config(GetParam(), selector));
    torch::NoGradGuard no_grad;
    const auto tokens = some_tokens(30, model->config().vocab_size);  // (1, 30): 3 boundaries and a bit
    const auto base = model->forward(tokens, model->initial_state(1), false, Routing::Causal);
    EXPECT_GT(base.routing.selected, 0);
    EXPECT_LT(base.routing.selected, base.routing.decisions);  // some skip, some don't
    for (const int64_t t : {3, 12, 21}) {
      auto changed = tokens.clone();
      changed[0][t + 1] = (changed[0][t + 1].item<int64_t>() + 5) % model->config().vocab_size;
      const auto out = model->forward(changed, model->initial_state(1), false, Routing::Causal).logits;
      EXPECT_TRUE(out.narrow(1, 0, t + 1).equal(base.logits.narrow(1, 0, t + 1))) << "position " << t;
      EXPECT_FALSE(out.narrow(1, t + 1, 1).equal(base.logits.narrow(1, t + 1, 1)));
    }
  }
}

TEST_P(RoutingPerMode, TopKRoutingIsNotCausal) {
  // The reason causal routing exists: under top-k a later token can push an earlier one out.
  torch::manual_seed(12);
  InfiniTransformer model(routed_config(GetParam()));
  torch::NoGradGuard no_grad;
  const auto tokens = some_tokens(8, model->config().vocab_size);
  const auto base = model->forward(tokens, model->initial_state(1)).logits;
  bool changed_earlier = false;
  for (int64_t v = 0; v < model->config().vocab_size && !changed_earlier; ++v) {
    auto changed = tokens.clone();
    changed[0][7] = v;
    changed_earlier = !model->forward(changed, model->initial_state(1)).logits.narrow(1, 0, 7).equal(base.narrow(1, 0, 7));
  }
  EXPECT_TRUE(changed_earlier);
}

TEST_P(RoutingPerMode, TheRouterLearnsThroughTheLanguageModelLoss) {
  auto c = routed_config(GetParam());
  c.mod_aux_weight = 0;  // no auxiliary loss: any router gradient comes from the LM loss
  torch::manual_seed(13);
  InfiniTransformer model(c);
  const auto tokens = some_tokens(17, c.vocab_size);
  const auto out = model->forward(tokens.narrow(1, 0, 16), model->initial_state(1));
  torch::nn::functional::cross_entropy(out.logits.reshape({-1, c.vocab_size}), tokens.narrow(1, 1, 16).reshape({-1}))
      .backward();
  const auto block = model->blocks->ptr<BlockImpl>(1);
  ASSERT_TRUE(block->routed());
  ASSERT_TRUE(block->router->weight.grad().defined());
  EXPECT_GT(block->router->weight.grad().abs().max().item<double>(), 1e-6);
  // The predictor reads a stopped copy of x: the LM loss never reaches it.
  EXPECT_FALSE(block->predictor->hidden->weight.grad().defined() &&
               block->predictor->hidden->weight.grad().abs().max().item<double>() > 0);
}

TEST_P(RoutingPerMode, FullCapacityIsTheDenseBlockScaledByTheRouter) {
  for (const auto weight : {RouterWeight::Raw, RouterWeight::Sigmoid}) {
    auto c = routed_config(GetParam());
    c.mod_capacity = 1.0;
    c.mod_router = weight;
    c.dtype = torch::kFloat64;
    torch::manual_seed(14);
    InfiniTransformer model(c);
    torch::NoGradGuard no_grad;
    auto& block = *model->blocks->ptr<BlockImpl>(1);
    auto routed_state = model->initial_state(2), dense_state = model->initial_state(2);
    RoutingStats stats;
    for (int64_t s = 0; s < 3; ++s) {  // three segments, so the memory and XL cache are compared too
      const auto x = torch::randn({2, c.segment_len, c.d_model}, torch::kFloat64);  // (B, N, D)
      const SegmentSpan span{0, c.segment_len, 0, true};
      const auto routed = routed_forward(block, c, x, routed_state.layers()[1], span, Routing::TopK, stats);
      const auto r = block.router(x);  // (B, N, 1)
      const auto w = weight == RouterWeight::Raw ? r : torch::sigmoid(r);
      const auto dense = x + w * (block.forward(x, dense_state.layers()[1], span) - x);
      EXPECT_LT(max_rel_error(routed, dense), 1e-12) << "segment " << s;
      const auto& a = routed_state.layers()[1];
      const auto& b = dense_state.layers()[1];
      for (const auto& [name, ta, tb] : {std::tuple{"M", a.M, b.M}, {"z", a.z, b.z}, {"xl_k", a.xl_k, b.xl_k}})
        if (ta.defined()) EXPECT_LT(max_rel_error(ta, tb), 1e-12) << name << " after segment " << s;
    }
    EXPECT_EQ(stats.selected, stats.decisions);
  }
}

TEST_P(RoutingPerMode, TokenByTokenDecodingMatchesTheParallelPass) {
  for (const auto selector : {CausalSelector::Router, CausalSelector::Mlp}) {
    torch::manual_seed(15);
    InfiniTransformer model(routed_config(GetParam(), selector));
    const auto tokens = some_tokens(30, model->config().vocab_size);  // 3 segment boundaries and a bit
    torch::Tensor parallel;
    {
      torch::NoGradGuard no_grad;
      parallel = model->forward(tokens, model->initial_state(1), false, Routing::Causal).logits[0];  // (T, V)
    }
    for (const bool fused : {true, false}) {
      SessionEngine session(model, fused);
      ASSERT_EQ(session.fused_decode(), fused);
      double worst = 0;
      for (int64_t i = 0; i < tokens.size(1); ++i) {
        session.feed({tokens[0][i].item<int64_t>()});
        worst = std::max(worst, (session.last_logits() - parallel[i]).abs().max().item<double>());
      }
      EXPECT_LT(worst, 1e-4) << (fused ? "fused" : "general") << " decoder";
    }
    // A state saved mid-segment (its routed cache holds only the selected tokens) resumes exactly.
    SessionEngine unbroken(model);
    std::vector<int64_t> all(tokens.data_ptr<int64_t>(), tokens.data_ptr<int64_t>() + tokens.size(1));
    unbroken.feed({all.begin(), all.begin() + 13});
    const auto path = testing::temp_dir("routed-state") + "/s.safetensors";
    unbroken.save(path);
    SessionEngine resumed(model);
    resumed.load(path);
    for (int64_t i = 13; i < 30; ++i) {
      unbroken.feed({all[static_cast<size_t>(i)]});
      resumed.feed({all[static_cast<size_t>(i)]});
    }
    EXPECT_TRUE(resumed.last_logits().equal(unbroken.last_logits()));
  }
}

TEST_P(RoutingPerMode, ASingleDecodeStepNeverSelectsAnInvalidSet) {
  torch::manual_seed(16);
  InfiniTransformer model(routed_config(GetParam()));
  torch::NoGradGuard no_grad;
  const auto tokens = some_tokens(20, model->config().vocab_size);
  // Top-k of one token takes that token (k = ceil(0.25) = 1, never 0).
  auto state = model->initial_state(1);
  for (int64_t i = 0; i < 20; ++i) {
    auto out = model->forward(tokens.narrow(1, i, 1), std::move(state));
    EXPECT_EQ(out.routing.selected, 1);
    EXPECT_TRUE(out.logits.isfinite().all().item<bool>());
    state = std::move(out.state);
  }
  // A router that refuses every token: the routed block is skipped, segment ends included.
  model->blocks->ptr<BlockImpl>(1)->router->weight.fill_(0);
  SessionEngine never(model);
  for (int64_t i = 0; i < 20; ++i) {
    never.feed({tokens[0][i].item<int64_t>()});
    EXPECT_TRUE(never.last_logits().isfinite().all().item<bool>());
  }
  EXPECT_EQ(never.state().layers()[1].seg_k.size(2), 0);
}

// Decodes 30 tokens one at a time with the fused and the general decoder, and from a state file saved
// 13 tokens in; returns the largest difference from the parallel pass's logits. `resumed(state)`
// checks the state read back.
double decode_against_parallel(InfiniTransformer& model, const std::string& name,
                               const std::function<void(const ModelState&)>& resumed_state) {
  const auto tokens = some_tokens(30, model->config().vocab_size);
  torch::Tensor parallel;
  {
    torch::NoGradGuard no_grad;
    parallel = model->forward(tokens, model->initial_state(1), false, Routing::Causal).logits[0];  // (T, V)
  }
  std::vector<int64_t> all(tokens.data_ptr<int64_t>(), tokens.data_ptr<int64_t>() + tokens.size(1));
  double worst = 0;
  for (const bool fused : {true, false}) {
    SessionEngine session(model, fused), resumed(model, fused);
    for (size_t i = 0; i < all.size(); ++i) {
      if (i == 13) {
        const auto path = testing::temp_dir(name) + "/s.safetensors";
        session.save(path);
        resumed.load(path);
        resumed_state(resumed.state());
      }
      session.feed({all[i]});
      worst = std::max(worst, (session.last_logits() - parallel[static_cast<int64_t>(i)]).abs().max().item<double>());
      if (i >= 13) {
        resumed.feed({all[i]});
        worst = std::max(worst, (resumed.last_logits() - parallel[static_cast<int64_t>(i)]).abs().max().item<double>());
      }
    }
  }
  return worst;
}

// Sets every parameter whose name contains `part` uniform in [-r, r]; returns how many there were.
// memory_key_shift in a routed block: each selected key is written blended with the selected key
// before it, and the fused decoder (whose boundary write is the fused prefill's kernel), the general
// one and a state resumed mid-segment agree with the parallel pass.
TEST(Routing, ShiftedKeysDecodeAsTheParallelPass) {
  torch::manual_seed(17);
  auto c = routed_config(MemoryMode::InfiniDelta);
  c.mod_capacity = 0.5;
  c.memory_key_shift = true;
  InfiniTransformer model(c);
  ASSERT_EQ(randomise(model, "key_shift", 2), c.n_layers);
  // Mid-segment the routed cache holds selected tokens, which the boundary writes shifted.
  EXPECT_LT(decode_against_parallel(model, "shifted-state",
                                    [](const ModelState& s) { ASSERT_GE(s.layers()[1].seg_k.size(2), 2); }),
            1e-4);
}

// qk_conv in a routed block: the tails hold the last tokens the block took, so decoding one token at
// a time (skipped tokens leave them alone) and resuming from a state file convolve what the parallel
// pass convolves.
TEST(Routing, ConvolvedRowsDecodeAsTheParallelPass) {
  for (const auto mode : {MemoryMode::InfiniLinear, MemoryMode::XL}) {
    SCOPED_TRACE(to_string(mode));
    torch::manual_seed(19);
    auto c = routed_config(mode);
    c.mod_capacity = 0.5;
    c.qk_conv = 3;
    InfiniTransformer model(c);
    ASSERT_EQ(randomise(model, "_conv", 1), 2 * c.n_layers);
    // The routed block's tail holds tokens it took, not zeros.
    EXPECT_LT(decode_against_parallel(
                  model, "conv-state",
                  [](const ModelState& s) { EXPECT_GT(s.layers()[1].conv_k.abs().max().item<double>(), 0.0); }),
              1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, RoutingPerMode,
                         ::testing::Values(MemoryMode::InfiniLinear, MemoryMode::InfiniDelta, MemoryMode::None,
                                           MemoryMode::XL),
                         [](const auto& info) {
                           std::string name = to_string(info.param);
                           for (auto& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

TEST(Routing, TopKCountIsACeilingThatNeverReachesZero) {
  EXPECT_EQ(topk_count(0.125, 256), 32);
  EXPECT_EQ(topk_count(0.3, 10), 3);  // 0.3 * 10 is 3.0000000000000004 in binary
  EXPECT_EQ(topk_count(0.125, 1), 1);
  EXPECT_EQ(topk_count(0.125, 9), 2);
  EXPECT_EQ(topk_count(1.0, 7), 7);
}

TEST(Routing, ConfigFieldsAreValidatedAndOptionalInOldModels) {
  // A dense model's config lists no mod_* field, so its identity is what it was before routing.
  EXPECT_FALSE(ModelConfig().to_json().contains("mod_every"));
  auto routed = routed_config(MemoryMode::XL, CausalSelector::Mlp);
  routed.mod_router = RouterWeight::Sigmoid;
  const auto back = ModelConfig::from_json(routed.to_json(), "routed.json", /*require_all=*/true);
  EXPECT_EQ(back.to_json(), routed.to_json());
  EXPECT_EQ(back.mod_predictor, CausalSelector::Mlp);
  EXPECT_EQ(back.mod_router, RouterWeight::Sigmoid);
  auto j = ModelConfig().to_json();
  j.erase("mod_every");
  j.erase("mod_capacity");
  EXPECT_EQ(ModelConfig::from_json(j, "old.json", /*require_all=*/true).mod_every, 0);
  j["mod_capacity"] = 0;
  testing::expect_error([&] { ModelConfig::from_json(j, "bad.json"); }, {"bad.json", "mod_capacity"});
  j["mod_capacity"] = 0.5;
  j["mod_router"] = "softmax";
  testing::expect_error([&] { ModelConfig::from_json(j, "bad.json"); }, {"mod_router", "raw, sigmoid"});
}

}  // namespace
}  // namespace infini
