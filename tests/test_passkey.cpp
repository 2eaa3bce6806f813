// The passkey prompt: the paper's text exactly, its length and the key's depth as asked.
#include <gtest/gtest.h>

#include "data/passkey.h"
#include "test_util.h"

namespace infini::data {
namespace {

TEST(Passkey, ThePromptIsThePapersFormat) {
  PasskeyPrompt p;
  p.key = 9054;
  p.fillers_before = 2;
  p.fillers_after = 1;
  const std::string filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
  const std::string expected =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will "
      "quiz you about the important information there.\n" +
      filler + " " + filler + "\n" +
      "The pass key is 9054. Remember it. 9054 is the pass key.\n" + filler + "\n" +
      "What is the pass key? The pass key is";
  EXPECT_EQ(passkey_text(p), expected);
  EXPECT_EQ(p.bytes(), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(p.answer(), " 9054");
}

TEST(Passkey, LengthAndDepthAreAsAsked) {
  for (const int64_t length : {1000, 32768, 1 << 20}) {
    for (const double depth : {0.0, 0.5, 1.0}) {
      const auto p = passkey_prompt(length, depth, 12345);
      EXPECT_NEAR(static_cast<double>(p.bytes()), static_cast<double>(length), 92.0) << length << " " << depth;
      const auto text = passkey_text(p);
      ASSERT_EQ(static_cast<int64_t>(text.size()), p.bytes());
      const auto fillers = static_cast<double>(p.fillers_before + p.fillers_after);
      EXPECT_NEAR(static_cast<double>(p.fillers_before) / fillers, depth, 0.5 / fillers + 1e-12);
      if (length >= 32768) {  // where the fixed lines are a small part of the text
        const auto at = static_cast<double>(text.find("The pass key is 12345."));
        EXPECT_NEAR(at / static_cast<double>(text.size()), depth, 0.01) << length << " " << depth;
      }
    }
  }
  EXPECT_EQ(passkey_prompt(32768, 0.0, 7).fillers_before, 0);
  EXPECT_EQ(passkey_prompt(32768, 1.0, 7).fillers_after, 0);
  testing::expect_error([] { passkey_prompt(1000, 1.5, 7); }, {"depth 1.5"});
}

}  // namespace
}  // namespace infini::data
