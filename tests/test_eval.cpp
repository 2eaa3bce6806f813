// Evaluation: the streamed, chunked scoring of whole documents equals one forward pass over each
// document with its memory; the footprint formulas give the paper's Table 2 figures.
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "eval/evaluate.h"
#include "eval/footprint.h"
#include "eval/passkey_eval.h"
#include "infer/session.h"
#include "memory/state.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::temp_dir;

std::string write_document(const std::string& dir, const std::string& name, size_t n) {
  std::string text;
  for (size_t i = 0; i < n; ++i) text += static_cast<char>('a' + (i * i + 3 * i) % 26);
  const auto path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Sum of -log p(token t | tokens < t) over t >= 1, by one forward pass over the whole document.
double reference_loss_sum(InfiniTransformer& model, const std::string& path, int64_t max_tokens,
                          std::vector<double>& by_segment) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (max_tokens > 0) text.resize(static_cast<size_t>(max_tokens));
  std::vector<int64_t> ids;
  for (unsigned char ch : text) ids.push_back(ch);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::tensor(ids).unsqueeze(0);  // (1, T)
  const auto logp = model->forward(tokens, model->initial_state(1)).logits[0].log_softmax(-1);  // (T, V)
  const auto T = tokens.size(1);
  const auto nll = -logp.narrow(0, 0, T - 1).gather(1, tokens[0].narrow(0, 1, T - 1).unsqueeze(1)).squeeze(1);
  const auto L = model->config().segment_len;
  for (int64_t t = 1; t < T; ++t) {
    const auto seg = static_cast<size_t>(t / L);
    if (seg >= by_segment.size()) by_segment.resize(seg + 1, 0.0);
    by_segment[seg] += nll[t - 1].item<double>();
  }
  return nll.sum().item<double>();
}

TEST(Eval, StreamedScoringEqualsOneForwardPassPerDocument) {
  torch::manual_seed(3);
  auto c = testing::tiny_config(MemoryMode::InfiniDelta, torch::kFloat32);
  c.vocab_size = 256;  // bytes
  InfiniTransformer model(c);
  const auto dir = temp_dir("eval-docs");
  // 300 tokens: several forward calls of 64 tokens (16 segments of 4) and a ragged end.
  const auto a = write_document(dir, "a.txt", 300);
  const auto b = write_document(dir, "b.txt", 37);
  const auto tokenizer = data::byte_tokenizer();
  const auto docs = eval_documents(dir, "");
  ASSERT_EQ(docs.size(), 2u);

  const auto r = evaluate(model, *tokenizer, docs, EvalOptions{});
  std::vector<double> by_segment;
  const double expected = reference_loss_sum(model, a, 0, by_segment) + reference_loss_sum(model, b, 0, by_segment);
  EXPECT_EQ(r.tokens(), 299 + 36);
  EXPECT_EQ(r.bytes(), 299 + 36);
  EXPECT_NEAR(r.loss(), expected / 335.0, 1e-5);
  EXPECT_NEAR(r.bits_per_byte(), r.loss() / std::log(2.0), 1e-12);
  ASSERT_EQ(r.segment_tokens.size(), by_segment.size());
  for (size_t i = 0; i < by_segment.size(); ++i) EXPECT_NEAR(r.segment_loss_sum[i], by_segment[i], 1e-4) << i;
  EXPECT_EQ(r.segment_tokens[0], 3 + 3);  // each document's first token is not scored
  EXPECT_EQ(r.segment_tokens[1], 4 + 4);

  EvalOptions first_100;
  first_100.max_tokens = 100;
  first_100.max_documents = 1;
  const auto cut = evaluate(model, *tokenizer, docs, first_100);
  std::vector<double> unused;
  EXPECT_EQ(cut.tokens(), 99);
  EXPECT_EQ(cut.bytes(), 99);
  EXPECT_NEAR(cut.loss(), reference_loss_sum(model, a, 100, unused) / 99.0, 1e-5);
}

// --forget-memory: every segment is scored as if it began the document, except that its first token is
// still predicted from the end of the segment before (also run with a fresh state).
TEST(Eval, ForgettingTheMemoryScoresEachSegmentFromAFreshState) {
  torch::manual_seed(4);
  const auto dir = temp_dir("eval-forget");
  const auto path = write_document(dir, "a.txt", 70);
  const auto tokenizer = data::byte_tokenizer();
  const auto docs = eval_documents(dir, "");
  EvalOptions forget;
  forget.forget_memory = true;
  for (const auto mode : {MemoryMode::None, MemoryMode::XL, MemoryMode::InfiniDelta, MemoryMode::Knn, MemoryMode::Rmt}) {
    auto c = testing::tiny_config(mode, torch::kFloat32);
    c.vocab_size = 256;
    InfiniTransformer model(c);
    const auto L = c.segment_len;
    std::vector<int64_t> ids;
    for (unsigned char ch : std::string(std::istreambuf_iterator<char>(std::ifstream(path).rdbuf()), {}))
      ids.push_back(ch);
    const auto T = static_cast<int64_t>(ids.size());
    double expected = 0;
    torch::Tensor last;  // (V) log-probabilities after the previous segment
    {
      torch::NoGradGuard no_grad;
      for (int64_t s = 0; s < T; s += L) {
        const auto n = std::min(L, T - s);
        const auto seg = torch::tensor(std::vector<int64_t>(ids.begin() + s, ids.begin() + s + n)).unsqueeze(0);
        const auto logp = model->forward(seg, model->initial_state(1)).logits[0].log_softmax(-1);  // (n, V)
        if (s > 0) expected -= last[ids[s]].item<double>();
        for (int64_t j = 1; j < n; ++j) expected -= logp[j - 1][ids[s + j]].item<double>();
        last = logp[n - 1];
      }
    }
    const auto r = evaluate(model, *tokenizer, docs, forget);
    const auto kept = evaluate(model, *tokenizer, docs, EvalOptions{});
    EXPECT_TRUE(r.forget_memory);
    EXPECT_TRUE(r.to_json().at("forget_memory").get<bool>());
    EXPECT_EQ(r.tokens(), T - 1);
    EXPECT_NEAR(r.loss() * static_cast<double>(T - 1), expected, 1e-3) << c.to_json().dump();
    EXPECT_NEAR(r.segment_loss_sum[0], kept.segment_loss_sum[0], 1e-4);
    if (mode == MemoryMode::None)
      EXPECT_NEAR(r.loss(), kept.loss(), 1e-6);
    else  // the memory changes the later segments
      EXPECT_GT(std::abs(r.loss() - kept.loss()), 1e-6) << c.to_json().dump();
  }
}

// Passkey evaluation reads each cell's shared prefix once and restores it per key; every key must
// still be scored as a fresh session reading its whole prompt and answering greedily would score it.
TEST(Eval, PasskeyScoresEachKeyAsAFreshSessionWould) {
  torch::manual_seed(11);
  auto c = testing::tiny_config(MemoryMode::InfiniDelta, torch::kFloat32);
  c.vocab_size = 256;
  c.init_std = 0.1;
  InfiniTransformer model(c);
  const auto tokenizer = data::byte_tokenizer();
  PasskeyEvalOptions o;
  o.lengths = {300, 700};
  o.depths = {0.0, 0.5, 1.0};
  o.trials = 3;
  o.key_min = 1;
  o.key_max = 999;  // 1 to 3 digits: answers of different lengths
  const auto report = evaluate_passkey(model, *tokenizer, o);
  ASSERT_EQ(report.cells.size(), 6u);
  ASSERT_EQ(report.peak_rss.size(), 2u);
  EXPECT_EQ(report.peak_rss[1].first, 700);
  EXPECT_GT(report.peak_rss[1].second, 0);
  for (size_t i = 0; i < report.cells.size(); ++i) {
    const auto& cell = report.cells[i];
    EXPECT_EQ(cell.length, o.lengths[i / 3]);
    EXPECT_EQ(cell.depth, o.depths[i % 3]);
    EXPECT_EQ(cell.trials, 3);
    int64_t answer_tokens = 0, correct = 0, exact = 0, prompt_tokens = 0;
    const auto keys = passkey_keys(o, cell.length, cell.depth);
    EXPECT_EQ(cell.keys, keys);
    ASSERT_EQ(cell.answers.size(), keys.size());
    for (size_t t = 0; t < keys.size(); ++t) {
      const auto key = keys[t];
      EXPECT_GE(key, 1);
      EXPECT_LE(key, 999);
      const auto prompt = data::passkey_prompt(cell.length, cell.depth, key);
      const auto text = data::passkey_text(prompt), answer = prompt.answer();
      SessionEngine fresh(model, /*fused_decode=*/false);
      fresh.feed(std::vector<int64_t>(text.begin(), text.end()));
      std::string generated;
      int64_t right = 0;
      bool all_right = true;
      for (const unsigned char expected : answer) {
        const auto next = fresh.last_logits().argmax().item<int64_t>();
        generated += static_cast<char>(next);
        if (expected != ' ') right += next == expected;  // the key's digits are scored, not the space
        all_right &= next == expected;
        fresh.feed({next});
      }
      EXPECT_EQ(cell.answers[t], generated) << "trial " << t << " of " << cell.length << " " << cell.depth;
      answer_tokens += static_cast<int64_t>(answer.size()) - 1;
      prompt_tokens += static_cast<int64_t>(text.size());
      correct += right;
      exact += all_right;
    }
    EXPECT_EQ(cell.answer_tokens, answer_tokens);
    EXPECT_EQ(cell.prompt_tokens, prompt_tokens);
    EXPECT_EQ(cell.correct_tokens, correct) << cell.length << " " << cell.depth;
    EXPECT_EQ(cell.exact, exact);
    EXPECT_NEAR(cell.accuracy(), static_cast<double>(correct) / static_cast<double>(answer_tokens), 1e-12);
  }
  const auto j = report.to_json();
  EXPECT_EQ(j.at("cells").size(), 6u);
  for (const auto* key : {"length", "depth", "trials", "accuracy", "exact_match", "keys", "answers"})
    EXPECT_TRUE(j["cells"][0].contains(key)) << key;
  o.depths = {1.5};
  testing::expect_error([&] { evaluate_passkey(model, *tokenizer, o); }, {"depth 1.5"});
}

TEST(Eval, APg19FolderIsReadFromItsHeldOutSplit) {
  const auto dir = temp_dir("eval-pg19");
  for (const auto* split : {"train", "validation"}) std::filesystem::create_directories(dir + "/" + split);
  write_document(dir + "/train", "t.txt", 10);
  write_document(dir + "/validation", "v.txt", 10);
  EXPECT_EQ(std::filesystem::path(eval_documents(dir, "")[0].path).filename(), "v.txt");
  EXPECT_EQ(std::filesystem::path(eval_documents(dir, "train")[0].path).filename(), "t.txt");
  testing::expect_error([&] { eval_documents(dir, "test"); }, {"test/", "--split"});
  testing::expect_error([&] { eval_documents(dir + "/train", "test"); }, {"not a PG19-style folder"});
}

// The paper's Table 2 config: 12 layers, 8 heads x 128, N = 2048, a 65K-token kNN memory.
TEST(Footprint, ThePapersConfigGivesItsTable2Figures) {
  ModelConfig c;
  c.d_model = 1024;
  c.n_layers = 12;
  c.n_heads = 8;
  c.d_key = 128;
  c.d_value = 128;
  c.segment_len = 2048;
  const auto table = footprints(c, FootprintOptions{});
  ASSERT_EQ(table.size(), 4u);
  EXPECT_EQ(table[3].method, "Infini-Transformer");
  EXPECT_EQ(table[3].floats, 128.0 * 129 * 8 * 12);  // 1.6M
  EXPECT_EQ(table[0].floats, 256.0 * 8 * 2048 * 12);  // Transformer-XL: 50M
  const double ratio = table[1].floats / table[3].floats;  // Memorizing Transformers: 183M, "114x"
  EXPECT_GT(ratio, 110);
  EXPECT_LT(ratio, 120);
  EXPECT_NEAR(table[2].floats / 1e6, 2.5, 0.1);  // RMT with p = 100: 2.5M
}

// The Infini-Transformer row is what a sequence's state holds at a segment boundary, counted by the
// state itself, with and without the convolution tails of qk_conv.
TEST(Footprint, InfiniRowIsTheStateAtASegmentBoundary) {
  for (const auto mode : {MemoryMode::InfiniDelta, MemoryMode::InfiniLinear})
    for (const int64_t conv : {0, 2, 5}) {
      ModelConfig c;
      c.memory = mode;
      c.qk_conv = conv;
      c.n_heads = 3;
      c.d_key = 16;
      c.d_value = 24;
      const ModelState state(c, 1, torch::kCPU);
      const auto table = footprints(c, FootprintOptions{});
      ASSERT_EQ(table[3].method, "Infini-Transformer");
      EXPECT_EQ(static_cast<double>(state.bytes()), 4.0 * table[3].floats) << to_string(mode) << ", qk_conv " << conv;
    }
}

}  // namespace
}  // namespace infini
