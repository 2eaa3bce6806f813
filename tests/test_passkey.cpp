// The passkey prompt: the paper's text exactly, its length and the key's depth as asked.
#include <algorithm>
#include <cctype>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "data/passkey.h"
#include "data/passkey_examples.h"
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
  // Prompts of one length and depth share everything before the key line, whatever the key.
  for (const int64_t key : {1, 777, 50000}) {
    const auto p = passkey_prompt(5000, 0.5, key), q = passkey_prompt(5000, 0.5, 12345);
    EXPECT_EQ(p.fillers_before, q.fillers_before);
    EXPECT_EQ(p.fillers_after, q.fillers_after);
    std::string prefix, text;
    write_passkey_prefix(p, [&](std::string_view s) { prefix += s; });
    write_passkey_suffix(p, [&](std::string_view s) { text += s; });
    EXPECT_EQ(prefix + text, passkey_text(p));
    EXPECT_EQ(text.rfind("The pass key is " + std::to_string(key) + ".", 0), 0u) << text.substr(0, 40);
  }
  // Below the fixed lines' size: no filler, the key line right after the instruction.
  const auto shortest = passkey_prompt(0, 0.5, 12345);
  EXPECT_EQ(shortest.fillers_before + shortest.fillers_after, 0);
  EXPECT_EQ(shortest.bytes(), 247);
  EXPECT_NE(passkey_text(shortest).find("there.\n\nThe pass key is 12345."), std::string::npos);
  EXPECT_EQ(passkey_prompt(32768, 0.0, 7).fillers_before, 0);
  EXPECT_EQ(passkey_prompt(32768, 1.0, 7).fillers_after, 0);
  testing::expect_error([] { passkey_prompt(1000, 1.5, 7); }, {"depth 1.5"});
}

// Training examples: deterministic, within the lengths asked, and only the answer is a target.
TEST(Passkey, TrainingExamplesTargetOnlyTheAnswer) {
  const auto tokenizer = byte_tokenizer();
  const PasskeyExamples examples(*tokenizer, 400, 900, 7);
  int64_t shortest = 1 << 30, longest = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    const auto e = examples.example(i);
    EXPECT_EQ(e.tokens, examples.example(i).tokens);  // a pure function of (seed, index)
    const auto n = static_cast<int64_t>(e.tokens.size());
    shortest = std::min(shortest, n);
    longest = std::max(longest, n);
    EXPECT_LE(n, 900);
    const std::string text(e.tokens.begin(), e.tokens.end());
    const auto key_at = text.find("The pass key is ") + 16;
    const auto key = text.substr(key_at, text.find('.', key_at) - key_at);
    EXPECT_EQ(e.answer_tokens, static_cast<int64_t>(key.size()) + 1);
    EXPECT_EQ(text.substr(text.size() - static_cast<size_t>(e.answer_tokens)), " " + key) << text.substr(text.size() - 60);
    EXPECT_NE(text.find("What is the pass key? The pass key is " + key), std::string::npos);
  }
  EXPECT_LT(shortest, 500);  // lengths spread over the range (each within one filler of the draw)
  EXPECT_GT(longest, 800);
  EXPECT_NE(examples.example(0).tokens, PasskeyExamples(*tokenizer, 400, 900, 8).example(0).tokens);

  const auto b = examples.batch(3, 4);
  ASSERT_EQ(b.inputs.size(0), 4);
  int64_t targets = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const auto e = examples.example(3 + static_cast<uint64_t>(i));
    const auto n = static_cast<int64_t>(e.tokens.size()) - 1;
    targets += e.answer_tokens;
    for (int64_t p = 0; p < b.inputs.size(1); ++p) {
      const auto t = b.targets[i][p].item<int64_t>();
      if (p >= n - e.answer_tokens && p < n) {
        EXPECT_EQ(t, e.tokens[static_cast<size_t>(p + 1)]);
        EXPECT_EQ(b.inputs[i][p].item<int64_t>(), e.tokens[static_cast<size_t>(p)]);
      } else {
        EXPECT_EQ(t, kIgnoreTarget) << i << " " << p;
      }
    }
  }
  EXPECT_EQ(b.target_tokens, targets);
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 100, 900, 1); }, {"--window", "shortest prompt"});
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 900, 800, 1); }, {"900 to 800"});
}

// Examples of 300-512 byte tokens with keys of `symbols` symbols: each fits the window, and its answer
// is the key its key line holds twice. Returns the answers.
std::vector<std::string> answers_of(const PasskeyExamples& examples, int64_t symbols) {
  std::vector<std::string> answers;
  for (uint64_t i = 0; i < 30; ++i) {
    const auto e = examples.example(i);
    EXPECT_LE(static_cast<int64_t>(e.tokens.size()), 512) << i;
    EXPECT_EQ(e.answer_tokens, symbols + 1);  // the space and the key
    const std::string text(e.tokens.begin(), e.tokens.end());
    const auto answer = text.substr(text.size() - static_cast<size_t>(symbols));
    EXPECT_NE(text.find("The pass key is " + answer + ". Remember it. " + answer + " is the pass key."),
              std::string::npos) << text;
    answers.push_back(answer);
  }
  return answers;
}

// Longer keys than the paper's: every key has the digits asked, and the prompt still fits the window.
TEST(Passkey, KeyRangeSetsTheKeyLength) {
  const auto tokenizer = byte_tokenizer();
  const PasskeyExamples examples(*tokenizer, 300, 512, 9, {}, KeyRange{1000000000, 9999999999});
  for (const auto& answer : answers_of(examples, 10))
    EXPECT_EQ(answer.find_first_not_of("0123456789"), std::string::npos) << answer;
}

size_t distinct_digits(const std::string& key) { return std::set<char>(key.begin(), key.end()).size(); }

// Repeated-digit keys: with a share of 1 every key has at most 3 distinct digits, in the range and
// of the length a uniform key of the same example would have, and nothing else of the example moves;
// with 0 the examples are those of the uniform keys; in between, both kinds.
TEST(Passkey, RepeatedDigitKeysReuseTwoOrThreeDigits) {
  const auto tokenizer = byte_tokenizer();
  const PasskeyExamples uniform(*tokenizer, 300, 512, 9);
  const PasskeyExamples none(*tokenizer, 300, 512, 9, {}, KeyRange{kPasskeyMin, kPasskeyMax, 0.0});
  const PasskeyExamples all(*tokenizer, 300, 512, 9, {}, KeyRange{10000, 50000, 1.0});
  const PasskeyExamples half(*tokenizer, 300, 512, 9, {}, KeyRange{10000, 50000, 0.5});
  const PasskeyExamples five_digits(*tokenizer, 300, 512, 9, {}, KeyRange{10000, 50000});
  int64_t few_in_half = 0, few_uniform = 0;
  for (uint64_t i = 0; i < 30; ++i) {
    EXPECT_EQ(none.example(i).tokens, uniform.example(i).tokens) << i;
    const auto a = all.example(i), u = five_digits.example(i);
    EXPECT_EQ(a.tokens.size(), u.tokens.size()) << i;  // the same length and depth: only the key moved
  }
  for (const auto& key : answers_of(all, 5)) {
    EXPECT_LE(distinct_digits(key), 3u) << key;
    EXPECT_GE(std::stoll(key), 10000) << key;
    EXPECT_LE(std::stoll(key), 50000) << key;
  }
  for (const auto& key : answers_of(half, 5)) few_in_half += distinct_digits(key) <= 3;
  for (const auto& key : answers_of(five_digits, 5)) few_uniform += distinct_digits(key) <= 3;
  EXPECT_GT(few_in_half, few_uniform + 3);  // 19% of uniform 5-digit keys have at most 3 digits
  EXPECT_LT(few_in_half, 30);
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 512, 512, 1, {}, KeyRange{1, 50000, 1.5}); },
                        {"repeated-digit keys 1.5"});
}

// The depth range moves the key line: kept shallow, it stays in the first 256-token segment of a
// 512-token prompt; kept deep, it shares the last segment with the question.
TEST(Passkey, DepthRangePlacesTheKeyLine) {
  const auto tokenizer = byte_tokenizer();
  const PasskeyExamples shallow(*tokenizer, 512, 512, 5, DepthRange{0.0, 0.1});
  const PasskeyExamples deep(*tokenizer, 512, 512, 5, DepthRange{0.9, 1.0});
  const PasskeyExamples any(*tokenizer, 512, 512, 5);
  int64_t any_first_segment = 0;
  for (uint64_t i = 0; i < 30; ++i) {
    const auto line_end = [](const PasskeyExample& e) {
      const std::string text(e.tokens.begin(), e.tokens.end());
      return static_cast<int64_t>(text.find("is the pass key."));
    };
    EXPECT_LT(line_end(shallow.example(i)), 256) << i;
    EXPECT_GT(line_end(deep.example(i)), 300) << i;
    any_first_segment += line_end(any.example(i)) < 256;
  }
  EXPECT_GT(any_first_segment, 0);  // the default range spans both
  EXPECT_LT(any_first_segment, 30);
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 512, 512, 1, DepthRange{0.5, 0.2}); }, {"depths 0.5 to 0.2"});
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 512, 512, 1, {}, KeyRange{9, 8}); }, {"keys 9 to 8"});
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 512, 512, 1, DepthRange{0.0, 1.5}); }, {"depths 0 to 1.5"});
}

// A virtual length weighs the segments of filler alone so that the prompt reads as if it were longer;
// the tokens are those of the same example without it, and segments with anything else weigh 1.
TEST(Passkey, VirtualLengthWeighsFillerOnlySegments) {
  const auto tokenizer = byte_tokenizer();
  constexpr int64_t L = 256, kMax = 1 << 20;
  const PasskeyExamples plain(*tokenizer, 1024, 1024, 11);
  const PasskeyExamples longer(*tokenizer, 1024, 1024, 11, {}, {}, VirtualLength{kMax, L});
  double shortest = 1e30, longest = 0;
  int64_t weighted_examples = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    const auto e = longer.example(i);
    EXPECT_EQ(e.tokens, plain.example(i).tokens) << i;
    const auto inputs = static_cast<int64_t>(e.tokens.size()) - 1;
    ASSERT_EQ(static_cast<int64_t>(e.segment_weights.size()), (inputs + L - 1) / L) << i;
    const std::string text(e.tokens.begin(), e.tokens.end() - 1);
    double virtual_tokens = 0;
    bool weighted = false;
    for (size_t s = 0; s < e.segment_weights.size(); ++s) {
      const auto segment = text.substr(s * L, L);
      const bool filler_only = segment.size() == L && segment.find("pass key") == std::string::npos &&
                               segment.find("important") == std::string::npos && segment.find('\n') == std::string::npos;
      const auto w = e.segment_weights[s];
      EXPECT_GE(w, 1.0f);
      if (!filler_only) EXPECT_EQ(w, 1.0f) << i << " segment " << s << ": " << segment;
      weighted = weighted || w > 1.0f;
      virtual_tokens += w * static_cast<double>(segment.size());
    }
    weighted_examples += weighted;
    EXPECT_GE(virtual_tokens, static_cast<double>(inputs) - 1e-3);
    EXPECT_LE(virtual_tokens, kMax * 1.001);
    shortest = std::min(shortest, virtual_tokens), longest = std::max(longest, virtual_tokens);
  }
  EXPECT_GT(weighted_examples, 30);  // most 1024-token prompts have a segment of filler alone
  EXPECT_LT(shortest, 8192);         // log-uniform from the real length to kMax
  EXPECT_GT(longest, 131072);
  const auto b = longer.batch(0, 4);
  ASSERT_TRUE(b.write_weights.defined());
  EXPECT_EQ(b.write_weights.size(0), 4);
  EXPECT_EQ(b.write_weights.size(1), (b.inputs.size(1) + L - 1) / L);
  EXPECT_FLOAT_EQ(b.write_weights[1][1].item<float>(), longer.example(1).segment_weights[1]);
  EXPECT_FALSE(plain.batch(0, 4).write_weights.defined());
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 512, 1024, 1, {}, {}, VirtualLength{1000, L}); },
                        {"virtual length 1000"});
  // A minimum moves every draw up: the same examples, each read as if at least that long.
  constexpr int64_t kMin = 1 << 18;
  const PasskeyExamples long_only(*tokenizer, 1024, 1024, 11, {}, {}, VirtualLength{kMax, L, kMin});
  int64_t above = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    const auto e = long_only.example(i), d = longer.example(i);
    EXPECT_EQ(e.tokens, d.tokens) << i;
    const auto filler_weight = *std::max_element(e.segment_weights.begin(), e.segment_weights.end());
    const auto default_weight = *std::max_element(d.segment_weights.begin(), d.segment_weights.end());
    if (default_weight == 1.0f) continue;  // no segment of filler alone
    EXPECT_GE(filler_weight, default_weight) << i;
    ++above;
    double virtual_tokens = 0;
    for (const auto w : e.segment_weights) virtual_tokens += w * static_cast<double>(L);
    EXPECT_GE(virtual_tokens, kMin * 0.999) << i;
    EXPECT_LE(virtual_tokens, kMax * 1.001 + L) << i;
  }
  EXPECT_GT(above, 30);
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 512, 1024, 1, {}, {}, VirtualLength{kMax, L, kMax + 1}); },
                        {"virtual lengths from"});
}

// The lead puts the key line and the question at every phase of a 64-token segment, where the
// paper's prompts of 1-1.3K tokens put them at a few; after it the prompt is the paper's, whole.
TEST(Passkey, LeadMovesThePromptsLinesToEveryPhase) {
  const auto tokenizer = byte_tokenizer();
  constexpr int64_t kSegment = 64;
  const PasskeyExamples plain(*tokenizer, 1024, 1280, 9);
  const PasskeyExamples led(*tokenizer, 1024, 1280, 9, {}, {}, VirtualLength{1 << 20, kSegment}, kSegment);
  const std::string intro = "There is an important info";
  std::set<int64_t> plain_phases, led_phases, leads;
  for (uint64_t i = 0; i < 400; ++i) {
    const auto p = plain.example(i), e = led.example(i);
    EXPECT_LE(static_cast<int64_t>(e.tokens.size()), 1280) << i;
    const std::string a(p.tokens.begin(), p.tokens.end()), b(e.tokens.begin(), e.tokens.end());
    const auto lead = static_cast<int64_t>(b.find(intro));
    ASSERT_NE(lead, static_cast<int64_t>(std::string::npos)) << i;
    leads.insert(lead);
    EXPECT_EQ(b.substr(0, static_cast<size_t>(lead)), passkey_filler_tail(lead)) << i;
    EXPECT_EQ(a.find(intro), 0u) << i;  // without a lead the prompt starts at the intro
    // After the lead, the paper's prompt and its answer.
    const auto key_at = b.find("The pass key is ") + 16;
    const auto key = b.substr(key_at, b.find('.', key_at) - key_at);
    EXPECT_EQ(b.substr(b.size() - key.size() - 1), " " + key) << i;
    EXPECT_EQ(e.answer_tokens, static_cast<int64_t>(key.size()) + 1);
    // The lead is never weighed as filler: the first segment holds the intro.
    ASSERT_FALSE(e.segment_weights.empty());
    EXPECT_EQ(e.segment_weights[0], 1.0f) << i;
    plain_phases.insert(static_cast<int64_t>(a.find("The pass key is")) % kSegment);
    led_phases.insert(static_cast<int64_t>(b.find("The pass key is")) % kSegment);
  }
  EXPECT_GT(leads.size(), 60u);  // 0..63
  EXPECT_LT(*leads.rbegin(), kSegment);
  EXPECT_LT(plain_phases.size(), 20u) << "the paper's prompts alone reach only some phases";
  EXPECT_GT(led_phases.size(), 60u);
  EXPECT_EQ(PasskeyExamples(*tokenizer, 1024, 1280, 9, {}, {}, {}, 0).example(5).tokens, plain.example(5).tokens);
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 1024, 1280, 9, {}, {}, {}, -1); }, {"lead"});
  // The shortest prompt must fit with the longest lead.
  testing::expect_error([&] { PasskeyExamples(*tokenizer, 256, 256, 9, {}, {}, {}, 64); }, {"shortest prompt"});
  EXPECT_EQ(passkey_filler_tail(0), "");
  EXPECT_EQ(passkey_filler_tail(12), "back again. ");
  EXPECT_EQ(passkey_filler_tail(100).size(), 100u);
}

}  // namespace
}  // namespace infini::data
