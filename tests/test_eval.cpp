// Evaluation: the streamed, chunked scoring of whole documents equals one forward pass over each
// document with its memory; the footprint formulas give the paper's Table 2 figures.
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "eval/evaluate.h"
#include "eval/footprint.h"
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

}  // namespace
}  // namespace infini
