#include "data/text_stream.h"

#include <filesystem>

#include <fmt/format.h>

#include "data/documents.h"
#include "infini/error.h"

namespace infini::data {

std::string TextCutter::push(std::string_view bytes) {
  if (byte_level_) return std::string(bytes);
  carry_.append(bytes);
  const auto line_end = carry_.rfind('\n');
  size_t cut = 0;
  if (line_end != std::string::npos) {
    cut = line_end + 1;
  } else if (carry_.size() >= max_hold_) {  // a line as long as we hold: cut at a character boundary
    size_t invalid_at;
    cut = utf8_valid_prefix(carry_, invalid_at);
    if (invalid_at != std::string::npos) cut = carry_.size();  // let encode name the bad byte
  }
  std::string ready = carry_.substr(0, cut);
  carry_.erase(0, cut);
  return ready;
}

std::string TextCutter::finish() {
  std::string rest;
  rest.swap(carry_);
  return rest;
}

void stream_tokens(const std::string& path, const Tokenizer& tokenizer,
                   const std::function<void(const std::vector<int64_t>&, uint64_t)>& sink, uint64_t block_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(fmt::format("{}: is a folder; give one text file", path));
  const auto docs = list_documents(path);
  if (docs.size() != 1) throw Error(fmt::format("{}: give one text file, not a folder", path));
  const auto& doc = docs[0];
  // Held at most one block: a longer line is cut at a character boundary.
  TextCutter cutter(tokenizer.one_token_per_byte(), block_bytes);
  uint64_t encoded = 0;  // bytes handed to the sink so far
  for (uint64_t offset = 0; offset < doc.bytes; offset += block_bytes) {
    const bool last = offset + block_bytes >= doc.bytes;
    auto text = cutter.push(read_range(doc, offset, block_bytes));
    if (last) text += cutter.finish();
    if (text.empty()) continue;
    sink(tokenizer.encode(text, fmt::format("{} (from byte {})", path, encoded)), encoded + text.size());
    encoded += text.size();
  }
}

}  // namespace infini::data
