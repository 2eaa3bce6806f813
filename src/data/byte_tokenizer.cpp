#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "io/atomic_file.h"

namespace infini::data {

namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  std::string kind() const override { return "byte"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int64_t> encode(std::string_view text, const std::string&) const override {
    std::vector<int64_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string text(ids.size(), '\0');
    for (size_t i = 0; i < ids.size(); ++i) text[i] = static_cast<char>(ids[i] & 0xff);
    return text;
  }
  bool one_token_per_byte() const override { return true; }
  bool needs_utf8() const override { return false; }
  void save(const std::string& dir) const override {
    const nlohmann::json j = {{"type", "byte"}, {"vocab_size", 256}};
    io::write_file_atomic((std::filesystem::path(dir) / "tokenizer.json").string(), j.dump(2) + "\n");
  }
};

}  // namespace

std::unique_ptr<Tokenizer> byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace infini::data
