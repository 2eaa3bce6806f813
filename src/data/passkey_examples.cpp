#include "data/passkey_examples.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "data/passkey.h"
#include "infini/error.h"
#include "util/hash.h"

namespace infini::data {

namespace {
// The one place a prompt piece becomes ids, for training and `infini passkey` alike.
std::vector<int64_t> encode_piece(const Tokenizer& tokenizer, std::string_view piece) {
  return tokenizer.encode(piece, "the passkey prompt");
}
}  // namespace

void encode_passkey_prefix(const PasskeyPrompt& p, const Tokenizer& tokenizer, const TokenSink& sink) {
  write_passkey_prefix(p, [&](std::string_view piece) { sink(encode_piece(tokenizer, piece)); });
}

void encode_passkey_suffix(const PasskeyPrompt& p, const Tokenizer& tokenizer, const TokenSink& sink) {
  write_passkey_suffix(p, [&](std::string_view piece) { sink(encode_piece(tokenizer, piece)); });
}

std::vector<int64_t> encode_passkey_answer(const PasskeyPrompt& p, const Tokenizer& tokenizer) {
  return tokenizer.encode(p.answer(), "the passkey answer");
}

namespace {

struct Span {
  int64_t begin, end;
};

// The prompt's and answer's ids; `filler`, when given, gets the token spans of filler pieces.
std::vector<int64_t> encode_whole(const PasskeyPrompt& p, const Tokenizer& tokenizer, std::vector<Span>* filler = nullptr) {
  std::vector<int64_t> ids;
  const PasskeyPieceSink append = [&](std::string_view text, bool is_filler) {
    const auto piece = encode_piece(tokenizer, text);
    const auto begin = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), piece.begin(), piece.end());
    if (!filler || !is_filler) return;
    if (!filler->empty() && filler->back().end == begin)
      filler->back().end = static_cast<int64_t>(ids.size());
    else
      filler->push_back({begin, static_cast<int64_t>(ids.size())});
  };
  write_passkey_prefix_pieces(p, append);
  write_passkey_suffix_pieces(p, append);
  const auto answer = encode_passkey_answer(p, tokenizer);
  ids.insert(ids.end(), answer.begin(), answer.end());
  return ids;
}

// [0, 1) from a hash's top 53 bits.
double unit_interval(uint64_t h) { return static_cast<double>(h >> 11) / static_cast<double>(uint64_t{1} << 53); }

// A key of as many digits as `uniform`, in [min, max], whose digits are drawn from a pool of two or
// three (KeyRange::repeat_share); `uniform` itself if 32 draws find none in the range.
int64_t repeated_digit_key(int64_t uniform, uint64_t h, int64_t min, int64_t max) {
  const auto digits = static_cast<int64_t>(std::to_string(uniform).size());
  for (int attempt = 0; attempt < 32; ++attempt) {
    h = splitmix64(h);
    const int distinct = 2 + static_cast<int>(h % 2);
    std::array<int, 10> pool{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int i = 0; i < distinct; ++i) {  // the first `distinct` of a partial shuffle
      h = splitmix64(h);
      std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(i + static_cast<int>(h % (10 - i)))]);
    }
    int64_t key = 0;
    for (int64_t d = 0; d < digits; ++d) {
      h = splitmix64(h);
      key = key * 10 + pool[static_cast<size_t>(h % static_cast<uint64_t>(distinct))];
    }
    if (min <= key && key <= max && static_cast<int64_t>(std::to_string(key).size()) == digits) return key;
  }
  return uniform;
}

}  // namespace

PasskeyExamples::PasskeyExamples(const Tokenizer& tokenizer, int64_t min_tokens, int64_t max_tokens, uint64_t seed,
                                 DepthRange depths, KeyRange keys, VirtualLength virtual_length, int64_t lead_bytes)
    : tokenizer_(tokenizer), min_tokens_(min_tokens), max_tokens_(max_tokens), seed_(seed), depths_(depths),
      keys_(keys), virtual_(virtual_length), lead_bytes_(lead_bytes) {
  if (lead_bytes < 0 || lead_bytes > kPasskeyLeadBytesMax)
    throw Error(fmt::format("passkey lead of up to {} bytes: expected 0 (off) to {}", lead_bytes, kPasskeyLeadBytesMax));
  if (virtual_length.max_tokens != 0 && (virtual_length.max_tokens < max_tokens || virtual_length.segment_len <= 0))
    throw Error(fmt::format("passkey virtual length {}: expected 0 (off) or at least the longest prompt ({} tokens)",
                            virtual_length.max_tokens, max_tokens));
  if (virtual_length.min_tokens < 0 || virtual_length.min_tokens > virtual_length.max_tokens)
    throw Error(fmt::format("passkey virtual lengths from {} to {}: expected a minimum from 0 to the maximum, "
                            "which must be set", virtual_length.min_tokens, virtual_length.max_tokens));
  if (!(0.0 <= depths.min && depths.min <= depths.max && depths.max <= 1.0))
    throw Error(fmt::format("passkey depths {} to {}: expected 0 <= minimum <= maximum <= 1", depths.min, depths.max));
  if (keys.min < 0 || keys.max < keys.min || keys.max > 999999999999999)
    throw Error(fmt::format("passkey keys {} to {}: expected 0 <= minimum <= maximum < 10^15", keys.min, keys.max));
  if (!(0.0 <= keys.repeat_share && keys.repeat_share <= 1.0))
    throw Error(fmt::format("passkey repeated-digit keys {}: expected a share from 0 to 1", keys.repeat_share));
  // The answer (a space and the key) is left out of the prompt's bytes. passkey_prompt sizes the
  // filler for a 5-digit key; a longer one appears three times (twice in the key line, once in the
  // answer), so the prompt asks for that much less.
  const auto digits = [](int64_t k) { return static_cast<int64_t>(std::to_string(k).size()); };
  const auto paper = digits(kPasskeyMax);
  reserved_bytes_ = paper + 1 + 3 * std::max<int64_t>(0, digits(keys.max) - paper);
  const auto shortest = passkey_prompt(0, 0.0, keys.max);  // the fixed lines and one filler
  const auto longest_lead = encode_piece(tokenizer, passkey_filler_tail(std::max<int64_t>(0, lead_bytes - 1)));
  const auto floor_tokens = static_cast<int64_t>(encode_whole(shortest, tokenizer).size() + longest_lead.size());
  if (min_tokens < floor_tokens || max_tokens < min_tokens)
    throw Error(fmt::format("passkey examples of {} to {} tokens: the shortest prompt with its answer{} has {} "
                            "tokens, so the input length (--window) and --passkey-min-tokens must be at least that, "
                            "the minimum no larger than the window", min_tokens, max_tokens,
                            lead_bytes > 1 ? " and the longest lead (--passkey-lead-bytes)" : "", floor_tokens));
  bytes_per_token_ = static_cast<double>(passkey_text(shortest).size() + shortest.answer().size() +
                                         static_cast<size_t>(std::max<int64_t>(0, lead_bytes - 1))) /
                     static_cast<double>(floor_tokens);
}

PasskeyExample PasskeyExamples::example(uint64_t index) const {
  const uint64_t h = seed_for(seed_, index);
  const uint64_t h2 = splitmix64(h), h3 = splitmix64(h2), h4 = splitmix64(h3), h5 = splitmix64(h4);
  const uint64_t h6 = splitmix64(h5);
  const auto lead = lead_bytes_ > 0 ? static_cast<int64_t>(h6 % static_cast<uint64_t>(lead_bytes_)) : 0;
  const auto length = min_tokens_ + static_cast<int64_t>(h % static_cast<uint64_t>(max_tokens_ - min_tokens_ + 1));
  const double depth = depths_.min + (depths_.max - depths_.min) * unit_interval(h2);
  auto key = keys_.min + static_cast<int64_t>(h3 % static_cast<uint64_t>(keys_.max - keys_.min + 1));
  if (unit_interval(h5) < keys_.repeat_share) key = repeated_digit_key(key, h5, keys_.min, keys_.max);
  // The prompt comes out at most the bytes asked (data/passkey.h), answer included.
  const auto prompt = passkey_prompt(
      static_cast<int64_t>(std::floor(static_cast<double>(length) * bytes_per_token_)) - reserved_bytes_ - lead,
      depth, key);
  PasskeyExample e;
  std::vector<Span> filler;
  e.tokens = encode_whole(prompt, tokenizer_, &filler);
  if (lead > 0) {
    // Not marked as filler: the virtual length weighs only the filler the paper's prompt has.
    const auto ids = encode_piece(tokenizer_, passkey_filler_tail(lead));
    e.tokens.insert(e.tokens.begin(), ids.begin(), ids.end());
    for (auto& span : filler) span.begin += static_cast<int64_t>(ids.size()), span.end += static_cast<int64_t>(ids.size());
  }
  e.answer_tokens = static_cast<int64_t>(encode_passkey_answer(prompt, tokenizer_).size());
  if (virtual_.max_tokens > 0) {
    const auto L = virtual_.segment_len;
    const auto inputs = static_cast<int64_t>(e.tokens.size()) - 1;
    const auto segments = (inputs + L - 1) / L;
    // A whole segment inside one filler span (consecutive filler pieces are merged into one).
    std::vector<bool> filler_only(static_cast<size_t>(segments), false);
    int64_t filler_segments = 0;
    for (int64_t s = 0; s < segments; ++s) {
      const auto begin = s * L, end = begin + L;
      for (const auto& span : filler)
        if (span.begin <= begin && end <= std::min(span.end, inputs)) filler_only[static_cast<size_t>(s)] = true;
      filler_segments += filler_only[static_cast<size_t>(s)] ? 1 : 0;
    }
    const double u = unit_interval(h4);
    const double real = static_cast<double>(inputs);
    const double low = std::max(real, static_cast<double>(virtual_.min_tokens));
    const double target = low * std::exp(u * std::log(static_cast<double>(virtual_.max_tokens) / low));
    const double weight =
        filler_segments == 0 ? 1.0 : 1.0 + (target - real) / static_cast<double>(filler_segments * L);
    for (int64_t s = 0; s < segments; ++s)
      e.segment_weights.push_back(filler_only[static_cast<size_t>(s)] ? static_cast<float>(weight) : 1.0f);
  }
  return e;
}

Batch PasskeyExamples::batch(uint64_t first, int64_t count) const {
  std::vector<std::vector<int64_t>> tokens;
  std::vector<std::vector<float>> weights;
  std::vector<int64_t> answer_tokens;
  int64_t longest = 0;
  for (int64_t i = 0; i < count; ++i) {
    auto e = example(first + static_cast<uint64_t>(i));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(e.tokens.size()) - 1);
    answer_tokens.push_back(e.answer_tokens);
    tokens.push_back(std::move(e.tokens));
    weights.push_back(std::move(e.segment_weights));
  }
  // The corpus batch, then every target before the answer masked.
  auto b = make_batch(tokens, longest);
  if (virtual_.max_tokens > 0) {
    const auto L = virtual_.segment_len;
    b.write_weights = torch::ones({count, (longest + L - 1) / L}, torch::kFloat32);  // (B, S)
    for (int64_t i = 0; i < count; ++i) {
      const auto& w = weights[static_cast<size_t>(i)];
      if (!w.empty()) b.write_weights[i].narrow(0, 0, static_cast<int64_t>(w.size())).copy_(torch::tensor(w));
    }
  }
  b.target_tokens = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto n = static_cast<int64_t>(tokens[static_cast<size_t>(i)].size()) - 1;
    const auto answer = answer_tokens[static_cast<size_t>(i)];
    b.targets[i].narrow(0, 0, n - answer).fill_(kIgnoreTarget);
    b.target_tokens += answer;
  }
  return b;
}

}  // namespace infini::data
