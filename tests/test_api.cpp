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
  EXPECT_EQ(calls, 40);
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

}  // namespace
}  // namespace infini
