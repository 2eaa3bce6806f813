// Sessions: token-by-token reading equals the segment-parallel forward pass, state files resume
// exactly and refuse other models, sampling rules behave.
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "infer/generate.h"
#include "infer/session.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::expect_error;
using testing::temp_dir;

class SessionPerMode : public ::testing::TestWithParam<MemoryMode> {};

ModelConfig session_config(MemoryMode mode) {
  auto c = testing::tiny_config(mode, torch::kFloat32);  // segment_len 4
  c.init_std = 0.1;
  return c;
}

std::vector<int64_t> some_tokens(int64_t n, int64_t vocab) {
  std::vector<int64_t> t;
  for (int64_t i = 0; i < n; ++i) t.push_back((i * 7 + 3) % vocab);
  return t;
}

// Feeds `tokens` to both sessions in the same pieces; returns the largest difference of their
// next-token logits after any piece. `after(at)` runs after each piece, `at` tokens in.
double feed_both(SessionEngine& a, SessionEngine& b, const std::vector<int64_t>& tokens, const std::vector<size_t>& pieces,
                 const std::function<void(size_t)>& after = {}) {
  double worst = 0;
  size_t at = 0;
  for (const auto n : pieces) {
    const std::vector<int64_t> piece(tokens.begin() + static_cast<int64_t>(at), tokens.begin() + static_cast<int64_t>(at + n));
    a.feed(piece);
    b.feed(piece);
    at += n;
    worst = std::max(worst, (a.last_logits() - b.last_logits()).abs().max().item<double>());
    if (after) after(at);
  }
  return worst;
}

TEST_P(SessionPerMode, TokenByTokenEqualsTheParallelForward) {
  torch::manual_seed(5);
  InfiniTransformer model(session_config(GetParam()));
  const auto tokens = some_tokens(15, model->config().vocab_size);  // 3 segment boundaries and a bit
  torch::Tensor parallel;
  {
    torch::NoGradGuard no_grad;
    parallel = model->forward(torch::tensor(tokens).unsqueeze(0), model->initial_state(1)).logits[0];  // (T, V)
  }
  SessionEngine session(model);
  double worst = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    session.feed({tokens[i]});
    worst = std::max(worst, (session.last_logits() - parallel[static_cast<int64_t>(i)]).abs().max().item<double>());
  }
  EXPECT_LT(worst, 1e-4);
  EXPECT_EQ(session.position(), 15);
  // Ragged pieces too.
  SessionEngine ragged(model);
  ragged.feed({tokens.begin(), tokens.begin() + 6});
  ragged.feed({tokens.begin() + 6, tokens.end()});
  EXPECT_LT((ragged.last_logits() - parallel[14]).abs().max().item<double>(), 1e-4);
}

TEST_P(SessionPerMode, SavedStateContinuesLikeTheUnbrokenSession) {
  torch::manual_seed(6);
  InfiniTransformer model(session_config(GetParam()));
  const auto tokens = some_tokens(13, model->config().vocab_size);
  SessionEngine unbroken(model);
  unbroken.feed({tokens.begin(), tokens.begin() + 9});  // mid-segment: the pending cache is saved too
  const auto path = temp_dir("state") + "/s.safetensors";
  unbroken.save(path);
  SessionEngine resumed(model);
  resumed.load(path);
  EXPECT_EQ(resumed.position(), 9);
  EXPECT_TRUE(resumed.last_logits().equal(unbroken.last_logits()));
  unbroken.feed({tokens.begin() + 9, tokens.end()});
  resumed.feed({tokens.begin() + 9, tokens.end()});
  EXPECT_TRUE(resumed.last_logits().equal(unbroken.last_logits()));
  // Greedy and seeded sampling are deterministic.
  SampleOptions greedy;
  greedy.temperature = 0;
  greedy.max_tokens = 6;
  SessionEngine a(model), b(model);
  EXPECT_EQ(generate(a, tokens, greedy), generate(b, tokens, greedy));
  SampleOptions sampled;
  sampled.max_tokens = 6;
  sampled.top_p = 0.9;
  SessionEngine c(model), d(model);
  EXPECT_EQ(generate(c, tokens, sampled), generate(d, tokens, sampled));
  EXPECT_EQ(c.position(), 13 + 6);  // the continuation is fed too
}

// A snapshot taken while the fused decoder holds the state, restored before each of two
// continuations, gives each the logits of an unbroken session over the same tokens.
TEST_P(SessionPerMode, ASnapshotRestoresForEachContinuation) {
  torch::manual_seed(9);
  InfiniTransformer model(session_config(GetParam()));
  const auto V = model->config().vocab_size;
  const auto prefix = some_tokens(9, V);
  const std::vector<int64_t> a = {1, 2, 3, 4, 5}, b = {6, 5, 4};
  SessionEngine session(model);
  for (const auto t : prefix) session.feed({t});  // one at a time: the decoder's path
  const auto snap = session.snapshot();
  const auto continued = [&](const std::vector<int64_t>& tail) {
    session.restore(snap);
    for (const auto t : tail) session.feed({t});
    return std::pair{session.last_logits().clone(), session.position()};
  };
  const auto unbroken = [&](const std::vector<int64_t>& tail) {
    SessionEngine s(model, /*fused_decode=*/false, /*fused_prefill=*/false);
    auto all = prefix;
    all.insert(all.end(), tail.begin(), tail.end());
    s.feed(all);
    return s.last_logits().clone();
  };
  const auto [first_a, pos_a] = continued(a);
  const auto [logits_b, pos_b] = continued(b);
  const auto [again_a, pos_again] = continued(a);
  EXPECT_EQ(pos_a, 14);
  EXPECT_EQ(pos_b, 12);
  EXPECT_TRUE(first_a.equal(again_a));
  EXPECT_LT((first_a - unbroken(a)).abs().max().item<double>(), 1e-4);
  EXPECT_LT((logits_b - unbroken(b)).abs().max().item<double>(), 1e-4);
  EXPECT_GT((first_a - logits_b).abs().max().item<double>(), 1e-6);
}

// The fused one-token decoder against the general forward pass: single tokens mixed with chunks, so
// the decoder takes over states mid-segment and hands them back; a copy of the state taken while it
// decodes must not change afterwards; a state saved while decoding continues in a general session.
TEST_P(SessionPerMode, FusedDecodeMatchesTheGeneralPath) {
  torch::manual_seed(8);
  InfiniTransformer model(session_config(GetParam()));  // segment_len 4
  const auto tokens = some_tokens(26, model->config().vocab_size);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);  // rows and heads split across threads
  SessionEngine fused(model), general(model, /*fused_decode=*/false, /*fused_prefill=*/false);
  if (GetParam() == MemoryMode::Knn || GetParam() == MemoryMode::Rmt) {  // no fused form: the general path serves them
    at::set_num_threads(threads);
    ASSERT_FALSE(fused.fused_decode());
    ASSERT_FALSE(fused.fused_prefill());
    return;
  }
  ASSERT_TRUE(fused.fused_decode());
  ASSERT_FALSE(general.fused_decode());
  const std::vector<size_t> pieces = {1, 3, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  ModelState copy;
  std::map<std::string, torch::Tensor> copy_then;
  const double worst = feed_both(fused, general, tokens, pieces, [&](size_t at) {
    if (at == 10) {  // mid-segment, while the decoder holds the segment cache
      copy = fused.state();
      for (const auto& [name, t] : copy.to_tensors()) copy_then[name] = t.clone();
    }
  });
  ASSERT_EQ(fused.position(), 24);
  EXPECT_LT(worst, 1e-4);
  for (size_t i = 0; i < general.state().layers().size(); ++i) {
    const auto &f = fused.state().layers()[i], &g = general.state().layers()[i];
    for (const auto& [a, b] : {std::pair{f.M, g.M}, {f.z, g.z}, {f.seg_k, g.seg_k}, {f.seg_v, g.seg_v},
                               {f.xl_k, g.xl_k}, {f.xl_v, g.xl_v}})
      if (a.defined() || b.defined()) EXPECT_TRUE(a.allclose(b, 1e-5, 1e-5)) << "layer " << i;
  }
  for (const auto& [name, t] : copy.to_tensors()) EXPECT_TRUE(t.equal(copy_then.at(name))) << name << " changed";

  fused.feed({tokens[24]});  // decoding again, then saved mid-segment
  general.feed({tokens[24]});
  const auto path = temp_dir("state-fused") + "/s.safetensors";
  fused.save(path);
  SessionEngine resumed(model, /*fused_decode=*/false);
  resumed.load(path);
  resumed.feed({tokens[25]});
  general.feed({tokens[25]});
  EXPECT_LT((resumed.last_logits() - general.last_logits()).abs().max().item<double>(), 1e-4);
  at::set_num_threads(threads);
}

// The fused segment prefill against the general forward pass: whole segments of 80 tokens (a full
// block of 64 queries and a partial one) between ragged pieces that stay on the general path, with
// one thread and with more threads than heads. The XL cache stays on the general path.
TEST_P(SessionPerMode, FusedPrefillMatchesTheGeneralPath) {
  torch::manual_seed(12);
  auto c = session_config(GetParam());
  c.segment_len = 80;
  c.init_std = 0.2;
  InfiniTransformer model(c);
  const auto tokens = some_tokens(337, c.vocab_size);
  const int threads = at::get_num_threads();
  for (const int t : {1, 3}) {
    at::set_num_threads(t);
    SessionEngine fused(model, /*fused_decode=*/false), general(model, /*fused_decode=*/false, /*fused_prefill=*/false);
    ASSERT_EQ(fused.fused_prefill(), !c.has_xl_cache() && c.memory != MemoryMode::Rmt);
    ASSERT_FALSE(general.fused_prefill());
    const double worst = feed_both(fused, general, tokens, {80, 80, 3, 77, 80, 17});  // segments 0, 1 and 3 whole
    EXPECT_LT(worst, 1e-4) << t << " threads";
    EXPECT_EQ(fused.position(), general.position());
    for (size_t i = 0; i < general.state().layers().size(); ++i) {
      const auto &f = fused.state().layers()[i], &g = general.state().layers()[i];
      for (const auto& [a, b] : {std::pair{f.M, g.M}, {f.z, g.z}, {f.seg_k, g.seg_k}, {f.seg_v, g.seg_v}})
        if (a.defined() || b.defined()) EXPECT_TRUE(a.allclose(b, 1e-4, 1e-5)) << "layer " << i << ", " << t << " threads";
    }
  }
  at::set_num_threads(threads);
}

INSTANTIATE_TEST_SUITE_P(AllModes, SessionPerMode, ::testing::ValuesIn(testing::kAllModes), testing::ModeName());

// memory_key_shift (the extension in MODEL.md): the fused prefill and the fused decoder write as the
// general path does, and the general session equals the parallel forward pass.
TEST(Session, KeyShiftPathsAgree) {
  for (const auto mode : {MemoryMode::InfiniDelta, MemoryMode::InfiniLinear}) {
    SCOPED_TRACE(to_string(mode));
    torch::manual_seed(21);
    auto c = session_config(mode);
    c.segment_len = 80;
    c.init_std = 0.2;
    c.memory_key_shift = true;
    InfiniTransformer model(c);
    {
      torch::NoGradGuard no_grad;
      int shifts = 0;
      for (auto& p : model->named_parameters())
        if (p.key().size() > 10 && p.key().substr(p.key().size() - 10) == ".key_shift") p.value().uniform_(-2, 2), ++shifts;
      ASSERT_EQ(shifts, c.n_layers);
    }
    const auto tokens = some_tokens(245, c.vocab_size);
    SessionEngine fused(model), general(model, /*fused_decode=*/false, /*fused_prefill=*/false);
    ASSERT_TRUE(fused.fused_prefill() && fused.fused_decode());
    std::vector<size_t> pieces = {80, 80};  // two segments through the fused prefill
    pieces.resize(pieces.size() + 85, 1);   // then one token at a time across the third boundary
    EXPECT_LT(feed_both(fused, general, tokens, pieces), 1e-4) << to_string(mode);
    for (size_t i = 0; i < general.state().layers().size(); ++i) {
      const auto &f = fused.state().layers()[i], &g = general.state().layers()[i];
      EXPECT_TRUE(f.M.allclose(g.M, 1e-4, 1e-5)) << to_string(mode) << " layer " << i;
      EXPECT_TRUE(f.z.allclose(g.z, 1e-4, 1e-5)) << to_string(mode) << " layer " << i;
    }
    torch::NoGradGuard no_grad;
    const auto ids = torch::tensor(tokens, torch::kInt64).view({1, -1});  // (1, 245)
    const auto out = model->forward(ids, model->initial_state(1));
    EXPECT_LT((out.logits[0][244] - general.last_logits()).abs().max().item<double>(), 1e-4) << to_string(mode);
  }
}

// qk_conv (MODEL.md): the fused prefill, the fused decoder and the general path convolve the same
// rows, their tails run on across chunks, segment boundaries and a state file, and the session equals
// the parallel forward pass.
TEST(Session, QkConvPathsAgree) {
  for (const auto mode : {MemoryMode::InfiniDelta, MemoryMode::InfiniLinear, MemoryMode::XL, MemoryMode::None}) {
    SCOPED_TRACE(to_string(mode));
    torch::manual_seed(23);
    auto c = session_config(mode);
    c.segment_len = 80;
    c.init_std = 0.2;
    c.qk_conv = 3;
    InfiniTransformer model(c);
    {
      torch::NoGradGuard no_grad;
      int convs = 0;
      for (auto& p : model->named_parameters())
        if (p.key().find("_conv") != std::string::npos) p.value().uniform_(-1, 1), ++convs;
      ASSERT_EQ(convs, 2 * c.n_layers);
    }
    const auto tokens = some_tokens(245, c.vocab_size);
    SessionEngine fused(model), general(model, /*fused_decode=*/false, /*fused_prefill=*/false);
    ASSERT_TRUE(fused.fused_decode());
    ASSERT_EQ(fused.fused_prefill(), mode != MemoryMode::XL);
    // A segment through the fused prefill, one in two general chunks, then one token at a time
    // across the third boundary, with a save, a clear and a load halfway.
    std::vector<size_t> pieces = {80, 7, 73};
    pieces.resize(pieces.size() + 85, 1);
    const auto path = temp_dir("state-conv") + "/s.safetensors";
    EXPECT_LT(feed_both(fused, general, tokens, pieces, [&](size_t at) {
                if (at != 200) return;
                fused.save(path);
                fused.clear();
                fused.load(path);
              }),
              1e-4);
    for (size_t i = 0; i < general.state().layers().size(); ++i) {
      const auto &f = fused.state().layers()[i], &g = general.state().layers()[i];
      for (const auto& [a, b] : {std::pair{f.M, g.M}, {f.z, g.z}, {f.seg_k, g.seg_k}, {f.conv_q, g.conv_q},
                                 {f.conv_k, g.conv_k}})
        if (a.defined() || b.defined()) EXPECT_TRUE(a.allclose(b, 1e-4, 1e-5)) << "layer " << i;
      ASSERT_EQ(g.conv_q.size(2), 2);
    }
    torch::NoGradGuard no_grad;
    const auto ids = torch::tensor(tokens, torch::kInt64).view({1, -1});  // (1, 245)
    const auto out = model->forward(ids, model->initial_state(1));
    EXPECT_LT((out.logits[0][244] - general.last_logits()).abs().max().item<double>(), 1e-4);
    // The taps matter: the identity model answers otherwise.
    InfiniTransformer plain(c);
    {
      torch::NoGradGuard guard;
      auto src = model->named_parameters();
      for (auto& p : plain->named_parameters()) p.value().copy_(src[p.key()]);
      for (auto& p : plain->named_parameters())
        if (p.key().find("_conv") != std::string::npos) p.value().zero_().select(2, 0).fill_(1.0);
    }
    const auto identity = plain->forward(ids, plain->initial_state(1));
    EXPECT_GT((identity.logits[0][244] - out.logits[0][244]).abs().max().item<double>(), 1e-3);
  }
}

TEST(Session, AStateOfAnotherModelIsRefused) {
  torch::manual_seed(1);
  InfiniTransformer one(session_config(MemoryMode::InfiniDelta));
  InfiniTransformer two(session_config(MemoryMode::InfiniDelta));  // same config, other weights
  SessionEngine s(one);
  s.feed({1, 2, 3});
  const auto path = temp_dir("state-other") + "/s.safetensors";
  s.save(path);
  SessionEngine other(two);
  expect_error([&] { other.load(path); }, {path, "another model"});
  expect_error([&] { s.feed({1, 999}); }, {"999", "outside the vocabulary"});
  // A bad token past the next segment boundary: nothing before it was read either.
  const auto logits = s.last_logits().clone();
  expect_error([&] { s.feed({1, 2, 3, 4, 5, 6, 7, 999}); }, {"999", "position 10"});
  EXPECT_EQ(s.position(), 3);
  EXPECT_TRUE(s.last_logits().equal(logits));
}

// Sessions of one model on several threads at once (as a server runs them) read exactly as each
// would alone: they share only the weights, and the model's lazily built tables are made under a lock.
TEST(Session, SessionsOnSeveralThreadsReadAsAlone) {
  torch::manual_seed(21);
  auto c = session_config(MemoryMode::InfiniDelta);
  c.segment_len = 8;  // whole segments through the fused prefill, the rest through the decoder
  InfiniTransformer model(c);
  const auto run = [&](int64_t seed) {
    SessionEngine session(model);
    std::vector<torch::Tensor> logits;
    const auto tokens = some_tokens(40 + seed, c.vocab_size);
    for (size_t at = 0; at < tokens.size();) {
      const size_t n = at % 16 == 0 ? 8 : 1;
      session.feed(std::vector<int64_t>(tokens.begin() + static_cast<int64_t>(at),
                                        tokens.begin() + static_cast<int64_t>(std::min(at + n, tokens.size()))));
      logits.push_back(session.last_logits().clone());
      at += n;
    }
    return logits;
  };
  constexpr int kSessions = 4;
  std::vector<std::vector<torch::Tensor>> together(kSessions);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSessions; ++i) threads.emplace_back([&, i] { together[i] = run(i); });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kSessions; ++i) {
    const auto alone = run(i);
    ASSERT_EQ(alone.size(), together[i].size());
    for (size_t k = 0; k < alone.size(); ++k)
      EXPECT_LT((alone[k] - together[i][k]).abs().max().item<double>(), 1e-5) << "session " << i << ", feed " << k;
  }
}

TEST(Sampling, RulesCutTheCandidatesAsDocumented) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto logits = torch::tensor(std::vector<float>{0.0f, 3.0f, 2.9f, -1.0f});  // token 1 likeliest
  SampleOptions o;
  o.temperature = 0;
  EXPECT_EQ(sample_token(logits, {}, o, gen), 1);
  o.repetition_penalty = 2.0;  // 3.0 -> 1.5 once token 1 was seen: token 2 wins
  EXPECT_EQ(sample_token(logits, {1}, o, gen), 2);
  o = SampleOptions{};
  o.top_k = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, {}, o, gen), 1);
  o = SampleOptions{};
  o.top_p = 0.3;  // token 1 alone holds more than 0.3
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, {}, o, gen), 1);
  o.top_p = 0.0;  // the likeliest token always stays
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, {}, o, gen), 1);
  o.top_p = 0.9;  // tokens 1 and 2 (about 0.93 together), never 0 or 3
  for (int i = 0; i < 50; ++i) {
    const auto t = sample_token(logits, {}, o, gen);
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
}

}  // namespace
}  // namespace infini
