#include "data/windows.h"

#include <algorithm>

#include <fmt/format.h>

#include "infini/error.h"
#include "util/hash.h"

namespace infini::data {

namespace {

// Moves `offset` forward to the start of a line (or of a UTF-8 character when no newline is near),
// so a SentencePiece window starts where the tokenizer would have started.
uint64_t align_start(const Document& doc, uint64_t offset) {
  if (offset == 0) return 0;
  const auto ahead = read_range(doc, offset - 1, 4096);
  const auto newline = ahead.find('\n');
  if (newline != std::string::npos) return offset + newline;  // the byte after the '\n'
  uint64_t i = 1;
  while (i < ahead.size() && (static_cast<unsigned char>(ahead[i]) & 0xC0) == 0x80) ++i;
  return offset - 1 + i;
}

}  // namespace

Batch make_batch(const std::vector<std::vector<int64_t>>& examples, int64_t window) {
  const auto B = static_cast<int64_t>(examples.size());
  Batch b;
  b.inputs = torch::zeros({B, window}, torch::kInt64);                 // (B, W)
  b.targets = torch::full({B, window}, kIgnoreTarget, torch::kInt64);  // (B, W)
  auto in = b.inputs.accessor<int64_t, 2>();
  auto tg = b.targets.accessor<int64_t, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& e = examples[i];
    const auto n = std::min<int64_t>(static_cast<int64_t>(e.size()) - 1, window);
    for (int64_t t = 0; t < n; ++t) {
      in[i][t] = e[t];
      tg[i][t] = e[t + 1];
    }
    b.target_tokens += std::max<int64_t>(n, 0);
    b.input_tokens += std::max<int64_t>(n, 0);
  }
  return b;
}

WindowSampler::WindowSampler(std::vector<Document> docs, const Tokenizer& tokenizer, int64_t window,
                             uint64_t seed)
    : docs_(std::move(docs)), tokenizer_(tokenizer), window_(window), seed_(seed) {
  if (docs_.empty()) throw Error("empty corpus: no documents to sample from");
  uint64_t total = 0;
  for (const auto& d : docs_) {
    if (tokenizer_.one_token_per_byte() && d.bytes < 2)
      throw Error(fmt::format("{}: the document is shorter than two tokens; it cannot train", d.path));
    cumulative_bytes_.push_back(total += d.bytes);
  }
}

std::vector<int64_t> WindowSampler::read_tokens(const Document& doc, uint64_t offset) const {
  const auto need = static_cast<size_t>(window_ + 1);
  // Read more until one token past the window is in hand.
  for (uint64_t length = std::max<uint64_t>(4096, 6 * need);; length *= 2) {
    auto text = read_range(doc, offset, length);
    const bool at_end = offset + text.size() >= doc.bytes;
    if (!at_end) {
      // End at a line end, so no word cut by the read is tokenized; without one, at least drop a
      // character cut in two (an invalid byte is left for encode to name).
      const auto line_end = text.rfind('\n');
      if (line_end != std::string::npos) {
        text.resize(line_end + 1);
      } else {
        size_t invalid_at;
        const auto good = utf8_valid_prefix(text, invalid_at);
        if (invalid_at == std::string::npos) text.resize(good);
      }
    }
    auto ids = tokenizer_.encode(text, fmt::format("{} (from byte {})", doc.path, offset));
    if (ids.size() > need || at_end) {
      if (ids.size() > need) ids.resize(need);
      return ids;
    }
  }
}

std::vector<int64_t> WindowSampler::document_tail(const Document& doc) const {
  const auto need = static_cast<size_t>(window_ + 1);
  for (uint64_t length = std::max<uint64_t>(4096, 6 * need);; length *= 2) {
    const uint64_t start = doc.bytes > length ? align_start(doc, doc.bytes - length) : 0;
    auto ids = tokenizer_.encode(read_range(doc, start, doc.bytes - start),
                                 fmt::format("{} (from byte {})", doc.path, start));
    if (ids.size() > need) return {ids.end() - static_cast<std::ptrdiff_t>(need), ids.end()};
    if (start == 0) return ids;
  }
}

std::vector<int64_t> WindowSampler::example(uint64_t index) const {
  const uint64_t h1 = seed_for(seed_, index);
  const uint64_t h2 = splitmix64(h1);
  const auto total = cumulative_bytes_.back();
  const auto pick = h1 % total;
  const auto doc_index = static_cast<size_t>(
      std::upper_bound(cumulative_bytes_.begin(), cumulative_bytes_.end(), pick) - cumulative_bytes_.begin());
  const auto& doc = docs_[doc_index];
  const auto need = static_cast<uint64_t>(window_ + 1);
  std::vector<int64_t> ids;
  if (tokenizer_.one_token_per_byte()) {
    const auto offset = doc.bytes <= need ? 0 : h2 % (doc.bytes - need + 1);
    ids = tokenizer_.encode(read_range(doc, offset, need), doc.path);
  } else {
    const auto offset = align_start(doc, h2 % doc.bytes);
    if (offset < doc.bytes) ids = read_tokens(doc, offset);
    if (ids.size() < need) ids = document_tail(doc);  // too near the end: take the last W+1 tokens
  }
  if (ids.size() < 2)
    throw Error(fmt::format("{}: the document is shorter than two tokens; it cannot train", doc.path));
  return ids;
}

Batch WindowSampler::batch(uint64_t first, int64_t count) const {
  std::vector<std::vector<int64_t>> examples;
  examples.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) examples.push_back(example(first + static_cast<uint64_t>(i)));
  return make_batch(examples, window_);
}

}  // namespace infini::data
