// The public API (include/infini) as a C++ user calls it: what the Python tests do not reach.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "infini/infini.h"
#include "test_util.h"

namespace infini {
namespace {

using testing::byte_level_config;
using testing::temp_dir;

std::string sample_text(size_t bytes) {
  std::string text;
  while (text.size() < bytes) text += "In the beginning God created the heaven and the earth. ";
  return text.substr(0, bytes);
}

TEST(PublicApi, TrainFromCodeThenResumeFromTheCommandLinesFolder) {
  const auto dir = temp_dir("api-train");
  const auto data = dir + "/text.txt";
  testing::write_text(data, sample_text(20000));
  RunSpec spec;
  spec.out = dir + "/run";
  spec.data = data;
  spec.config = byte_level_config();
  spec.options.steps = 6;
  spec.options.batch = 2;
  spec.options.window = 32;
  spec.options.val_every = 0;
  TrainLimits limits;
  limits.stop_after = 3;
  limits.quiet = true;
  const auto first = train(spec, limits);
  EXPECT_EQ(first.step, 3);
  const auto second = resume(spec.out, 0, limits);
  EXPECT_EQ(second.step, 6);
  EXPECT_TRUE(std::filesystem::exists(spec.out + "/checkpoint.safetensors"));
  const auto model = Model::load(spec.out);  // the run folder is a model folder
  EXPECT_EQ(model.config().to_json(), spec.config.to_json());
  EXPECT_EQ(model.path(), spec.out);
}

TEST(PublicApi, PulledGenerationGivesGeneratesTextPieceByPiece) {
  const Model model(byte_level_config(), 11);
  SampleOptions o;
  o.max_tokens = 40;
  o.seed = 4;
  Session a(model), b(model);
  const auto whole = a.generate("abc", o);
  auto generation = b.start_generation("abc", o);
  std::string pieces;
  int calls = 0;
  while (const auto piece = generation.next()) pieces += *piece, ++calls;
  EXPECT_EQ(pieces, whole);
  EXPECT_EQ(generation.text(), whole);
  EXPECT_GE(calls, 40);  // one piece per token, and one more where the end releases a held-back tail
  EXPECT_LE(calls, 41);
  EXPECT_TRUE(generation.ended());
  EXPECT_FALSE(generation.next().has_value());
  EXPECT_EQ(a.position(), b.position());
}

TEST(PublicApi, AStopStringEndsTheGenerationAndIsNotReturned) {
  const Model model(byte_level_config(), 11);
  SampleOptions o;
  o.max_tokens = 200;
  o.temperature = 0;
  Session probe(model);
  const auto free_text = probe.generate("abc", o);
  ASSERT_GE(free_text.size(), 10u);
  o.stop = {free_text.substr(5, 3)};  // three characters the model will write
  Session session(model);
  std::string streamed;
  const auto text = session.generate("abc", o, [&](std::string_view piece) { streamed += piece; });
  EXPECT_EQ(text, free_text.substr(0, free_text.find(o.stop[0])));
  EXPECT_EQ(streamed, text);
}

TEST(PublicApi, AnInterruptCheckStopsAFeedBetweenSegmentsAndKeepsWhatWasRead) {
  const Model model(byte_level_config(), 11);
  Session session(model);
  int polls = 0;
  struct Stop {};
  {
    ScopedInterruptCheck check([&] {
      if (++polls == 5) throw Stop{};
    });
    EXPECT_THROW(session.feed(std::string_view(sample_text(4000))), Stop);
  }
  const auto L = model.config().segment_len;
  EXPECT_EQ(session.position(), 4 * L);  // four whole pieces read before the fifth poll
  session.feed(std::string_view("more"));  // no check installed any more: reads on
  EXPECT_EQ(session.position(), 4 * L + 4);
}

TEST(PublicApi, ASeedGivesTheWeightsTrainingStartsFromWithoutTouchingTheCallersRandomStream) {
  torch::manual_seed(99);
  const auto before = torch::rand({3});
  torch::manual_seed(99);
  const Model a(byte_level_config(), 5);
  const auto after = torch::rand({3});
  EXPECT_TRUE(torch::equal(before, after));
  torch::manual_seed(5);
  InfiniTransformer trainer_init(byte_level_config());  // as train_new draws them
  const auto params = a.named_parameters();
  size_t i = 0;
  for (const auto& p : trainer_init->named_parameters()) {
    EXPECT_EQ(params[i].first, p.key());
    EXPECT_TRUE(torch::equal(params[i].second, p.value())) << p.key();
    ++i;
  }
  EXPECT_EQ(i, params.size());
}

// The identity is kept between sessions, and follows a weight changed in place (an optimizer step).
TEST(PublicApi, TheIdentityFollowsWeightsChangedInPlace) {
  const Model model(byte_level_config(), 5);
  const auto before = model.identity();
  EXPECT_EQ(Model(byte_level_config(), 5).identity(), before);  // a fresh hash of the same weights
  Session reader(model);
  reader.feed("abc");
  const auto snapshot = reader.snapshot();
  {
    torch::NoGradGuard no_grad;
    model.named_parameters()[0].second.add_(0.5);
  }
  EXPECT_NE(model.identity(), before);
  Session later(model);
  EXPECT_THROW(later.restore(snapshot), Error);  // taken with the weights as they were
}

// A byte model's tokens may split a character: next() holds its first bytes back until the character
// is complete (or shown to be invalid), and releases everything at the end.
TEST(PublicApi, PulledPiecesNeverSplitACharacter) {
  auto config = byte_level_config();
  config.init_std = 2.0;  // large random weights: any byte is likely
  const Model model(config, 3);
  Session session(model);
  SampleOptions o;
  o.max_tokens = 400;
  o.temperature = 1.5;
  o.seed = 9;
  auto generation = session.start_generation("x", o);
  std::string joined;
  std::vector<size_t> boundaries;  // where one piece ended and the next began
  while (const auto piece = generation.next()) {
    joined += *piece;
    boundaries.push_back(joined.size());
  }
  const auto all = model.tokenizer().decode(generation.tokens());
  EXPECT_EQ(joined, all);
  EXPECT_EQ(generation.text(), all);
  // The inside of every valid multi-byte character of the whole text.
  std::vector<char> inside(all.size() + 1, 0);
  int characters = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const auto lead = static_cast<unsigned char>(all[i]);
    const size_t length = lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (length == 1 || i + length > all.size()) continue;
    bool valid = true;
    for (size_t k = 1; k < length; ++k) valid = valid && (static_cast<unsigned char>(all[i + k]) & 0xC0) == 0x80;
    if (!valid) continue;
    ++characters;
    for (size_t k = 1; k < length; ++k) inside[i + k] = 1;
  }
  EXPECT_GT(characters, 0);  // the model did write multi-byte characters, so the rule was exercised
  for (const auto at : boundaries) EXPECT_FALSE(inside[at]) << "a piece ends inside a character, at byte " << at;
}

// Batched decoding (next_together) gives each generation what its own next() gives, bit for bit,
// whatever else is in the batch: sequences at different positions, crossing segment ends at different
// steps, leaving the batch at different times, in every memory mode, routed, and with qk_conv.
class BatchedDecode : public ::testing::TestWithParam<int> {};

ModelConfig batched_decode_config(int variant) {
  auto c = byte_level_config();
  if (variant < 4) c.memory = testing::kAllModes[variant];
  if (variant == 4) c.mod_every = 2;  // Mixture-of-Depths: tokens skip routed blocks per sequence
  if (variant == 5) c.qk_conv = 3;
  if (variant == 6) c.memory_key_shift = true;
  if (variant == 7) c.memory = MemoryMode::Knn;  // no fused step: each session decodes on the general path
  if (variant == 8) c.memory = MemoryMode::Rmt;
  return c;
}

TEST_P(BatchedDecode, EachGenerationGetsExactlyWhatItsOwnNextGives) {
  const Model model(batched_decode_config(GetParam()), 5);
  const std::vector<std::string> prompts = {"a", "abc", "abcdef", "In the beginning"};
  const std::vector<int64_t> lengths = {13, 5, 13, 9};
  const auto options = [&](size_t k) {
    SampleOptions o;
    o.max_tokens = lengths[k];
    o.temperature = 0.9;
    o.seed = 100 + k;
    return o;
  };
  std::vector<Session> alone, together;
  std::vector<std::string> alone_text;
  for (size_t k = 0; k < prompts.size(); ++k) {
    alone.emplace_back(model);
    auto generation = alone.back().start_generation(prompts[k], options(k));
    while (generation.next()) {
    }
    alone_text.push_back(generation.text());
    together.emplace_back(model);
  }
  std::vector<Generation> generations;
  for (size_t k = 0; k < prompts.size(); ++k) generations.push_back(together[k].start_generation(prompts[k], options(k)));
  std::vector<Generation*> batch;
  for (auto& g : generations) batch.push_back(&g);
  std::vector<std::string> pieces(prompts.size());
  for (int step = 0; step < 20; ++step) {
    const auto out = next_together(batch);
    ASSERT_EQ(out.size(), batch.size());
    for (size_t k = 0; k < out.size(); ++k)
      if (out[k]) pieces[k] += *out[k];
  }
  for (size_t k = 0; k < prompts.size(); ++k) {
    SCOPED_TRACE(k);
    EXPECT_TRUE(generations[k].ended());
    EXPECT_EQ(generations[k].text(), alone_text[k]);
    EXPECT_EQ(pieces[k], alone_text[k]);
    EXPECT_EQ(together[k].position(), alone[k].position());
    EXPECT_TRUE(torch::equal(together[k].last_logits(), alone[k].last_logits()));
    const auto a = alone[k].state().tensors(), b = together[k].state().tensors();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, tensor] : a) {
      SCOPED_TRACE(name);
      EXPECT_TRUE(torch::equal(tensor, b.at(name)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, BatchedDecode, ::testing::Range(0, 9));

// The decoder's packed weights are cached per model: a model made after another is gone (perhaps at
// its address, with the same version counters) decodes with its own weights.
TEST(PublicApi, AModelMadeAfterAnotherIsGoneDecodesWithItsOwnWeights) {
  SampleOptions o;
  o.max_tokens = 24;
  o.temperature = 0;
  for (int round = 0; round < 4; ++round) {
    {
      const Model first(byte_level_config(), 100 + round);
      Session(first).generate("abc", o);
    }
    const Model second(byte_level_config(), 7);
    const Model twin(byte_level_config(), 7);
    const Session keep_twin_alive(twin);
    EXPECT_EQ(Session(second).generate("abc", o), Session(twin).generate("abc", o)) << "round " << round;
  }
}

TEST(PublicApi, NextTogetherRefusesTwoGenerationsOfOneSession) {
  const Model model(byte_level_config(), 5);
  Session session(model);
  auto first = session.start_generation("ab");
  auto second = session.start_generation("");
  EXPECT_THROW(next_together({&first, &second}), Error);
}

}  // namespace
}  // namespace infini
