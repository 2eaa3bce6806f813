#include "eval/passkey_eval.h"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "infer/session.h"
#include "infini/error.h"
#include "util/hash.h"
#include "util/peak_rss.h"

namespace infini {

namespace {

// Bytes per token of the filler text under this tokenizer: turns a length in tokens into the byte
// length the prompt generator takes (1 for bytes).
double bytes_per_token(const data::Tokenizer& tokenizer) {
  if (tokenizer.one_token_per_byte()) return 1.0;
  data::PasskeyPrompt sample;
  sample.key = 12345;
  sample.fillers_before = 20;
  sample.fillers_after = 20;
  const auto text = data::passkey_text(sample);
  return static_cast<double>(text.size()) / static_cast<double>(tokenizer.encode(text, "the passkey prompt").size());
}


}  // namespace

double PasskeyCell::accuracy() const {
  return answer_tokens > 0 ? static_cast<double>(correct_tokens) / static_cast<double>(answer_tokens) : 0.0;
}

nlohmann::json PasskeyCell::to_json() const {
  return {{"length", length},
          {"depth", depth},
          {"trials", trials},
          {"accuracy", accuracy()},
          {"exact_match", trials > 0 ? static_cast<double>(exact) / static_cast<double>(trials) : 0.0},
          {"prompt_tokens", prompt_tokens},
          {"answer_tokens", answer_tokens},
          {"over_long", over_long},
          {"key_exact", key_exact},
          {"keys", keys},
          {"answers", answers},
          {"seconds", seconds}};
}

nlohmann::json PasskeyReport::to_json() const {
  nlohmann::json j_cells = nlohmann::json::array();
  for (const auto& c : cells) j_cells.push_back(c.to_json());
  nlohmann::json rss = nlohmann::json::array();
  for (const auto& [length, bytes] : peak_rss) rss.push_back({{"length", length}, {"bytes", bytes}});
  return {{"cells", j_cells}, {"peak_rss", rss}, {"seconds", seconds}};
}

bool answer_stops(const data::Tokenizer& tokenizer, int64_t next_token) {
  const auto text = tokenizer.decode({next_token});
  return text.empty() || text[0] < '0' || text[0] > '9';
}

std::vector<int64_t> passkey_keys(const PasskeyEvalOptions& o, int64_t length, double depth) {
  const auto cell = seed_for(seed_for(o.seed, static_cast<uint64_t>(length)), static_cast<uint64_t>(std::llround(depth * 1e6)));
  const auto range = static_cast<uint64_t>(o.key_max - o.key_min) + 1;
  std::vector<int64_t> keys;
  for (int64_t i = 0; i < o.trials; ++i)
    keys.push_back(o.key_min + static_cast<int64_t>(seed_for(cell, static_cast<uint64_t>(i)) % range));
  return keys;
}

PasskeyReport evaluate_passkey(InfiniTransformer model, const data::Tokenizer& tokenizer,
                               const PasskeyEvalOptions& o, const PasskeyProgress& progress) {
  if (o.lengths.empty() || o.depths.empty()) throw Error("passkey: no lengths or no depths to test");
  for (const auto d : o.depths)
    if (!(d >= 0.0 && d <= 1.0)) throw Error(fmt::format("passkey depth {} is not in [0, 1]", d));
  for (const auto n : o.lengths)
    if (n < 1) throw Error(fmt::format("passkey length {} is not positive", n));
  if (o.trials < 1) throw Error(fmt::format("passkey trials {}: at least 1", o.trials));
  if (o.key_min < 0 || o.key_max < o.key_min)
    throw Error(fmt::format("passkey key range {}..{} is empty or negative", o.key_min, o.key_max));
  if (tokenizer.vocab_size() != model->config().vocab_size)
    throw Error(fmt::format("the tokenizer has {} tokens, the model {}", tokenizer.vocab_size(),
                            model->config().vocab_size));

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const double ratio = bytes_per_token(tokenizer);
  // A length below the shortest prompt (the fixed lines, no filler) would be reported as tested
  // while a longer prompt was read.
  const auto shortest = data::passkey_prompt(0, 0.0, o.key_max).bytes();
  for (const auto n : o.lengths)
    if (static_cast<double>(n) * ratio < static_cast<double>(shortest))
      throw Error(fmt::format("passkey length {}: the shortest prompt takes about {:.0f} tokens (its fixed lines, "
                              "{} bytes); test lengths from there on", n,
                              std::ceil(static_cast<double>(shortest) / ratio), shortest));
  SessionEngine session(model);
  PasskeyReport report;
  for (const auto length : o.lengths) {
    PeakRss rss;
    for (const auto depth : o.depths) {
      const auto c0 = clock::now();
      PasskeyCell cell;
      cell.length = length;
      cell.depth = depth;
      const auto target_bytes = static_cast<int64_t>(std::llround(static_cast<double>(length) * ratio));
      // Every prompt of the cell shares its prefix (data/passkey.h): read it once.
      const auto shape = data::passkey_prompt(target_bytes, depth, o.key_min);
      session.clear();
      int64_t prefix_tokens = 0;
      data::encode_passkey_prefix(shape, tokenizer, [&](const std::vector<int64_t>& ids) {
        session.feed(ids);
        prefix_tokens += static_cast<int64_t>(ids.size());
      });
      const auto after_prefix = session.snapshot();
      for (const auto key : passkey_keys(o, length, depth)) {
        const auto prompt = data::passkey_prompt(target_bytes, depth, key);
        session.restore(after_prefix);
        int64_t tokens = prefix_tokens;
        data::encode_passkey_suffix(prompt, tokenizer, [&](const std::vector<int64_t>& ids) {
          session.feed(ids);
          tokens += static_cast<int64_t>(ids.size());
        });
        const auto answer = data::encode_passkey_answer(prompt, tokenizer);
        std::vector<int64_t> generated;
        int64_t scored = 0, correct = 0, all_right = 1;
        for (const auto expected : answer) {
          const auto next = session.last_logits().argmax().item<int64_t>();
          generated.push_back(next);
          // The space before the key is no part of it: only tokens with key characters are scored.
          if (tokenizer.decode({expected}).find_first_not_of(" ") != std::string::npos) {
            scored += 1;
            correct += next == expected;
          }
          all_right &= next == expected;
          session.feed({next});
        }
        // The answer must also stop after the key: a further digit (" 99921" for 9992) makes it
        // another number, so it is not exact, and the answer shows the digit.
        cell.key_exact += all_right;
        const auto after = session.last_logits().argmax().item<int64_t>();
        if (!answer_stops(tokenizer, after)) {
          cell.over_long += 1;
          all_right = 0;
          generated.push_back(after);
        }
        cell.keys.push_back(key);
        cell.answers.push_back(tokenizer.decode(generated));
        cell.trials += 1;
        cell.prompt_tokens += tokens;
        cell.answer_tokens += scored;
        cell.correct_tokens += correct;
        cell.exact += all_right;
      }
      cell.seconds = std::chrono::duration<double>(clock::now() - c0).count();
      report.cells.push_back(cell);
      if (progress) progress(cell);
    }
    report.peak_rss.emplace_back(length, rss.peak());
  }
  report.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return report;
}

}  // namespace infini
