#include "data/documents.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini::data {

namespace fs = std::filesystem;

namespace {

bool is_document_name(const fs::path& p) {
  const auto ext = p.extension().string();
  return ext == ".txt" || ext == ".tex";
}

Document checked_document(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec) throw Error(fmt::format("{}: cannot read document ({})", p.string(), ec.message()));
  if (size == 0)
    throw Error(fmt::format("{}: zero-length document; remove it or give it text", p.string()));
  return {p.string(), size};
}

}  // namespace

std::vector<Document> list_documents(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw Error(fmt::format("{}: no such file or folder", path));
  if (fs::is_regular_file(status)) return {checked_document(path)};
  if (!fs::is_directory(status)) throw Error(fmt::format("{}: not a file or folder", path));
  std::vector<fs::path> files;
  for (fs::recursive_directory_iterator it(path, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && is_document_name(it->path())) files.push_back(it->path());
  if (ec) throw Error(fmt::format("{}: cannot list folder ({})", path, ec.message()));
  if (files.empty()) throw Error(fmt::format("{}: empty corpus (no .txt or .tex documents in it)", path));
  std::sort(files.begin(), files.end());
  std::vector<Document> docs;
  docs.reserve(files.size());
  for (const auto& f : files) docs.push_back(checked_document(f));
  return docs;
}

Corpus open_corpus(const std::string& data, const std::string& validation) {
  Corpus c;
  const fs::path root(data);
  if (fs::is_directory(root / "train")) {
    c.train_path = (root / "train").string();
    if (fs::is_directory(root / "validation")) c.validation_path = (root / "validation").string();
  } else {
    c.train_path = data;
  }
  if (!validation.empty()) c.validation_path = validation;
  c.train = list_documents(c.train_path);
  if (!c.validation_path.empty()) c.validation = list_documents(c.validation_path);
  return c;
}

std::string read_range(const Document& doc, uint64_t offset, uint64_t length) {
  std::ifstream in(doc.path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open ({})", doc.path, std::strerror(errno)));
  offset = std::min(offset, doc.bytes);
  length = std::min(length, doc.bytes - offset);
  std::string out(length, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(out.data(), static_cast<std::streamsize>(length));
  if (static_cast<uint64_t>(in.gcount()) != length)
    throw Error(fmt::format("{}: read {} of {} bytes at offset {}; did the file change while training?",
                            doc.path, in.gcount(), length, offset));
  return out;
}

size_t utf8_valid_prefix(const std::string& s, size_t& invalid_at) {
  invalid_at = std::string::npos;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else { invalid_at = i; return i; }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= n) return i;  // cut short: the caller may read more
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) { invalid_at = i; return i; }
    }
    i += len;
  }
  return i;
}

void check_utf8(const Document& doc) {
  constexpr uint64_t kBlock = 1 << 20;
  std::string carry;
  for (uint64_t offset = 0; offset < doc.bytes; offset += kBlock) {
    const auto block = carry + read_range(doc, offset, kBlock);
    const uint64_t block_start = offset - carry.size();
    size_t invalid_at;
    const auto good = utf8_valid_prefix(block, invalid_at);
    if (invalid_at != std::string::npos)
      throw Error(fmt::format("{}: not valid UTF-8 at byte {}; the SentencePiece tokenizer needs UTF-8 "
                              "text (convert it, e.g. with iconv, or train with the byte tokenizer)",
                              doc.path, block_start + invalid_at));
    carry = block.substr(good);
  }
  if (!carry.empty())
    throw Error(fmt::format("{}: not valid UTF-8 at byte {} (the file ends mid-character); the "
                            "SentencePiece tokenizer needs UTF-8 text", doc.path, doc.bytes - carry.size()));
}

}  // namespace infini::data
