#include "data/text_stream.h"

#include <filesystem>

#include <fmt/format.h>

#include "data/documents.h"
#include "infini/error.h"

namespace infini::data {

void stream_tokens(const std::string& path, const Tokenizer& tokenizer,
                   const std::function<void(const std::vector<int64_t>&, uint64_t)>& sink, uint64_t block_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(fmt::format("{}: is a folder; give one text file", path));
  const auto docs = list_documents(path);
  if (docs.size() != 1) throw Error(fmt::format("{}: give one text file, not a folder", path));
  const auto& doc = docs[0];
  std::string carry;  // an unfinished line, for tokenizers that are not byte-level
  for (uint64_t offset = 0; offset < doc.bytes; offset += block_bytes) {
    auto text = carry + read_range(doc, offset, block_bytes);
    const uint64_t text_start = offset - carry.size();
    carry.clear();
    const bool last = offset + block_bytes >= doc.bytes;
    if (!tokenizer.one_token_per_byte() && !last) {
      auto cut = text.rfind('\n');
      if (cut != std::string::npos) {
        cut += 1;
      } else {  // a line longer than a block: cut at a character boundary at least
        size_t invalid_at;
        cut = utf8_valid_prefix(text, invalid_at);
        if (invalid_at != std::string::npos) cut = text.size();  // let encode name the bad byte
      }
      carry = text.substr(cut);
      text.resize(cut);
    }
    sink(tokenizer.encode(text, fmt::format("{} (from byte {})", path, text_start)), text_start + text.size());
  }
}

}  // namespace infini::data
