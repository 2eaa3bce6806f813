// Where training text comes from: documents on disk, listed once and then read piecewise, so a
// corpus far larger than RAM trains with only its file list in memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace infini::data {

struct Document {
  std::string path;
  uint64_t bytes = 0;
};

// One text file is one document. A folder holds one document per `.txt` or `.tex` file, found
// recursively and sorted by path. Throws infini::Error for a missing path, a folder without
// documents, or a zero-length document (naming it).
std::vector<Document> list_documents(const std::string& path);

// The training and validation documents of a corpus.
//  - `data` a folder with a train/ subfolder (PG19's layout: train/, validation/, test/): train/
//    trains, validation/ (if present) validates, test/ is never read.
//  - otherwise `data` is a file or folder of training documents.
// `validation`, when not empty, names the validation documents and overrides validation/.
struct Corpus {
  std::string train_path, validation_path;  // validation_path empty: no validation
  std::vector<Document> train, validation;
};
Corpus open_corpus(const std::string& data, const std::string& validation);

// Up to `length` bytes of `doc` from `offset` (fewer at its end).
std::string read_range(const Document& doc, uint64_t offset, uint64_t length);

// Throws infini::Error naming the file and byte offset of the first invalid UTF-8 sequence. Reads
// in blocks, never the whole file at once.
void check_utf8(const Document& doc);

// Length of the longest prefix of `text` that is complete, valid UTF-8; `invalid_at` is set to the
// offset of the first invalid byte, or to npos when the text is only cut short mid-character.
size_t utf8_valid_prefix(const std::string& text, size_t& invalid_at);

}  // namespace infini::data
