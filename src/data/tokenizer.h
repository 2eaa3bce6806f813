// Text <-> token ids. Byte-level is the default; SentencePiece (BPE or unigram) is the option for
// larger vocabularies. A model folder stores its tokenizer (tokenizer.json, plus tokenizer.model for
// SentencePiece), so a model never meets text cut by another tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace infini::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;  // "byte" or "sentencepiece"
  virtual int64_t vocab_size() const = 0;
  // `origin` names where the text came from, for errors (SentencePiece refuses non-UTF-8 text).
  virtual std::vector<int64_t> encode(std::string_view text, const std::string& origin) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // True when token i is byte i of the text, so any byte offset starts a window exactly.
  virtual bool one_token_per_byte() const = 0;
  virtual bool needs_utf8() const = 0;
  // Writes tokenizer.json (and its model file) into the model folder `dir`, atomically.
  virtual void save(const std::string& dir) const = 0;
};

// Token = byte value, 256 ids. It needs no special tokens: a training window never crosses a
// document boundary, the memory is reset between windows, and padding is masked in the loss.
std::unique_ptr<Tokenizer> byte_tokenizer();

// Loads a SentencePiece `.model` file.
std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_file);

// Reads the tokenizer saved in a model folder; errors say which file is missing or wrong.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

struct SentencePieceTraining {
  std::string input;             // a file or folder, as for training (PG19 layout: train/ only)
  int64_t vocab_size = 4096;
  std::string model_type = "bpe";  // or "unigram"
  int64_t max_sentences = 2000000;  // lines sampled for training (SentencePiece's input_sentence_size)
  std::string out;                // the .model file to write
};

// Trains a SentencePiece model with byte fallback (so any UTF-8 text encodes without <unk>).
void train_sentencepiece(const SentencePieceTraining& options);

}  // namespace infini::data
