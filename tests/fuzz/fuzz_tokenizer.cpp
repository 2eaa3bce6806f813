// The tokenizer of a model folder (data::load_tokenizer: tokenizer.json, and tokenizer.model for
// SentencePiece), then encoding and decoding a text with it. The byte tokenizer must give the text
// back exactly.
//
// Input: up to three parts joined by "\0PART\0" (fuzz_common.h): tokenizer.json, tokenizer.model,
// the text. SentencePiece itself is Debian's build, not instrumented: its parser is fuzzed blind.
#include "data/tokenizer.h"
#include "fuzz_common.h"
#include "mutators.h"
#include "infini/error.h"

extern "C" int INFINI_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  infini::fuzz::setup();
  static const char* const kFiles[] = {"tokenizer.json", "tokenizer.model"};
  const auto parts = infini::fuzz::split_parts(data, size);
  for (size_t i = 0; i < std::size(kFiles); ++i) {
    if (i < parts.size()) infini::fuzz::write_scratch(kFiles[i], parts[i]);
    else infini::fuzz::remove_scratch(kFiles[i]);
  }
  const std::string text = parts.size() > 2 ? parts[2] : "";
  try {
    const auto tokenizer = infini::data::load_tokenizer(infini::fuzz::scratch_dir());
    const auto vocab = tokenizer->vocab_size();
    // Any id list decodes (ids outside the vocabulary are skipped or wrapped, never read).
    std::vector<int64_t> raw;
    for (size_t i = 0; i + 1 < text.size(); i += 2)
      raw.push_back(static_cast<int8_t>(text[i]) * 256 + static_cast<uint8_t>(text[i + 1]) - vocab / 2);
    tokenizer->decode(raw);
    const auto ids = tokenizer->encode(text, "fuzz");
    for (const auto id : ids)
      if (id < 0 || id >= vocab) std::abort();
    const auto back = tokenizer->decode(ids);
    if (tokenizer->one_token_per_byte() && back != text) std::abort();
  } catch (const infini::Error&) {
  }
  return 0;
}

INFINI_FUZZ_MUTATOR(infini::fuzz::mutate_parts(data, size, max_size, seed))
