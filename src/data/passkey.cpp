#include "data/passkey.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini::data {

namespace {

constexpr std::string_view kIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
    "I will quiz you about the important information there.";
constexpr std::string_view kFiller =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
constexpr std::string_view kQuestion = "What is the pass key? The pass key is";

std::string key_line(const std::string& key) {
  return fmt::format("The pass key is {}. Remember it. {} is the pass key.", key, key);
}

// n fillers joined by single spaces.
int64_t filler_bytes(int64_t n) {
  return n == 0 ? 0 : n * static_cast<int64_t>(kFiller.size()) + (n - 1);
}

void write_fillers(int64_t n, const std::function<void(std::string_view)>& sink) {
  constexpr int64_t kPerPiece = 700;  // about 64 KiB
  std::string piece;
  for (int64_t done = 0; done < n;) {
    const auto k = std::min(kPerPiece, n - done);
    piece.clear();
    for (int64_t i = 0; i < k; ++i) {
      if (done + i > 0) piece += ' ';
      piece += kFiller;
    }
    sink(piece);
    done += k;
  }
}

}  // namespace

int64_t PasskeyPrompt::bytes() const {
  // Five lines, four newlines.
  return static_cast<int64_t>(kIntro.size()) + filler_bytes(fillers_before) +
         static_cast<int64_t>(key_line(key_text()).size()) + filler_bytes(fillers_after) +
         static_cast<int64_t>(kQuestion.size()) + 4;
}

std::string PasskeyPrompt::key_text() const {
  return std::to_string(key);
}

std::string PasskeyPrompt::answer() const { return " " + key_text(); }

PasskeyPrompt passkey_prompt(int64_t target_bytes, double depth, int64_t key) {
  if (!(depth >= 0.0 && depth <= 1.0)) throw Error(fmt::format("passkey depth {} is not in [0, 1]", depth));
  if (key < 0) throw Error(fmt::format("passkey {} is negative", key));
  PasskeyPrompt p;
  // The filler counts are sized with a 5-digit key whatever the key, so that prompts of one length
  // and depth share everything before the key line (a shorter key makes the prompt a few bytes shorter).
  p.key = kPasskeyMax;
  const int64_t fixed = p.bytes();  // no filler yet
  p.key = key;
  const int64_t per = static_cast<int64_t>(kFiller.size()) + 1;
  const int64_t total = std::max<int64_t>(0, (target_bytes - fixed + 1) / per);
  p.fillers_before = std::llround(depth * static_cast<double>(total));
  p.fillers_after = total - p.fillers_before;
  return p;
}

void write_passkey_prefix_pieces(const PasskeyPrompt& p, const PasskeyPieceSink& sink) {
  sink(kIntro, false);
  sink("\n", false);
  write_fillers(p.fillers_before, [&](std::string_view piece) { sink(piece, true); });
  sink("\n", false);
}

void write_passkey_suffix_pieces(const PasskeyPrompt& p, const PasskeyPieceSink& sink) {
  sink(key_line(p.key_text()), false);
  sink("\n", false);
  write_fillers(p.fillers_after, [&](std::string_view piece) { sink(piece, true); });
  sink("\n", false);
  sink(kQuestion, false);
}

void write_passkey_prefix(const PasskeyPrompt& p, const std::function<void(std::string_view)>& sink) {
  write_passkey_prefix_pieces(p, [&](std::string_view piece, bool) { sink(piece); });
}

void write_passkey_suffix(const PasskeyPrompt& p, const std::function<void(std::string_view)>& sink) {
  write_passkey_suffix_pieces(p, [&](std::string_view piece, bool) { sink(piece); });
}

void write_passkey_prompt(const PasskeyPrompt& p, const std::function<void(std::string_view)>& sink) {
  write_passkey_prefix(p, sink);
  write_passkey_suffix(p, sink);
}

std::string passkey_filler_tail(int64_t bytes) {
  if (bytes < 0) throw Error(fmt::format("passkey filler tail of {} bytes", bytes));
  std::string text;
  while (static_cast<int64_t>(text.size()) < bytes) text.insert(0, std::string(kFiller) + " ");
  return text.substr(text.size() - static_cast<size_t>(bytes));
}

std::string passkey_text(const PasskeyPrompt& p) {
  std::string text;
  text.reserve(static_cast<size_t>(p.bytes()));
  write_passkey_prompt(p, [&](std::string_view piece) { text += piece; });
  return text;
}

}  // namespace infini::data
