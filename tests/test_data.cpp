// Document sources, the PG19 layout, tokenizers and training windows.
#include <filesystem>

#include <gtest/gtest.h>

#include "data/documents.h"
#include "data/tokenizer.h"
#include "data/windows.h"
#include "io/atomic_file.h"
#include "test_util.h"

namespace infini {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::temp_dir;
using testing::write_text;

std::string sample_text() { return io::read_file(std::string(INFINI_SOURCE_DIR) + "/data/sample/kjv-genesis-exodus.txt"); }

TEST(Documents, Pg19LayoutTrainsOnTrainAndValidatesOnValidation) {
  const auto root = temp_dir("pg19");
  write_text(root + "/train/200.txt", "book two hundred");
  write_text(root + "/train/100.txt", "book one hundred");
  write_text(root + "/train/more/300.tex", "\\section{Three}");
  write_text(root + "/train/notes.md", "not a document");
  write_text(root + "/validation/400.txt", "held out");
  write_text(root + "/test/500.txt", "never read");
  const auto c = data::open_corpus(root, "");
  ASSERT_EQ(c.train.size(), 3u);
  EXPECT_EQ(fs::path(c.train[0].path).filename(), "100.txt");  // sorted by path
  EXPECT_EQ(fs::path(c.train[1].path).filename(), "200.txt");
  EXPECT_EQ(fs::path(c.train[2].path).filename(), "300.tex");
  EXPECT_EQ(c.train[0].bytes, 16u);
  ASSERT_EQ(c.validation.size(), 1u);
  EXPECT_EQ(fs::path(c.validation[0].path).filename(), "400.txt");
  EXPECT_EQ(c.validation_path, root + "/validation");
  // An explicit validation source wins; a plain folder or file is all training data.
  EXPECT_EQ(data::open_corpus(root, root + "/test").validation.size(), 1u);
  const auto plain = data::open_corpus(root + "/train", "");
  EXPECT_EQ(plain.train.size(), 3u);
  EXPECT_TRUE(plain.validation.empty());
  EXPECT_EQ(data::open_corpus(root + "/train/100.txt", "").train.size(), 1u);
}

TEST(Documents, BadSourcesAreNamed) {
  const auto root = temp_dir("bad-docs");
  expect_error([&] { data::list_documents(root + "/missing"); }, {"missing", "no such file"});
  fs::create_directories(root + "/empty");
  write_text(root + "/empty/readme.md", "no documents here");
  expect_error([&] { data::list_documents(root + "/empty"); }, {"empty", "empty corpus"});
  write_text(root + "/docs/a.txt", "text");
  write_text(root + "/docs/b.txt", "");
  expect_error([&] { data::list_documents(root + "/docs"); }, {"b.txt", "zero-length document"});
}

TEST(Documents, Utf8IsCheckedWithTheOffsetOfTheFirstBadByte) {
  size_t bad;
  EXPECT_EQ(data::utf8_valid_prefix("plain \xc3\xa9t\xc3\xa9", bad), 11u);
  EXPECT_EQ(bad, std::string::npos);
  EXPECT_EQ(data::utf8_valid_prefix("cut \xe2\x82", bad), 4u);  // cut short, not invalid
  EXPECT_EQ(bad, std::string::npos);
  EXPECT_EQ(data::utf8_valid_prefix("bad \xff here", bad), 4u);
  EXPECT_EQ(bad, 4u);
  EXPECT_EQ(data::utf8_valid_prefix("overlong \xc0\xaf", bad), 9u);
  EXPECT_EQ(bad, 9u);
  const auto root = temp_dir("utf8");
  write_text(root + "/latin1.txt", "caf\xe9 au lait");
  data::Document doc{root + "/latin1.txt", 12};
  expect_error([&] { data::check_utf8(doc); }, {"latin1.txt", "not valid UTF-8 at byte 3"});
}

TEST(Windows, ByteWindowsAreSpansOfOneDocument) {
  const auto root = temp_dir("windows");
  const auto text = sample_text();
  write_text(root + "/long.txt", text);
  write_text(root + "/short.txt", "In the beginning");  // 16 bytes: shorter than a window
  const auto docs = data::list_documents(root);
  const auto bytes = data::byte_tokenizer();
  const int64_t W = 64;
  data::WindowSampler sampler(docs, *bytes, W, 7);
  int shorts = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const auto ids = sampler.example(i);
    const auto piece = bytes->decode(ids);
    if (ids.size() == static_cast<size_t>(W + 1)) {
      EXPECT_NE(text.find(piece), std::string::npos) << "example " << i << " is not a span of long.txt";
    } else {
      EXPECT_EQ(piece, "In the beginning");  // the whole short document, once
      ++shorts;
    }
    EXPECT_EQ(sampler.example(i), ids);  // a pure function of (seed, index)
  }
  // Documents are picked in proportion to their size: the 16-byte one almost never.
  EXPECT_LE(shorts, 2);
  data::WindowSampler other(docs, *bytes, W, 8);
  EXPECT_NE(other.example(0), sampler.example(0));
}

TEST(Windows, ShortExamplesArePaddedAndMaskedOutOfTheLoss) {
  const std::vector<std::vector<int64_t>> examples = {{1, 2, 3, 4, 5, 6}, {7, 8, 9}};
  const auto b = data::make_batch(examples, 5);
  EXPECT_TRUE(b.inputs.equal(torch::tensor(std::vector<int64_t>{1, 2, 3, 4, 5, 7, 8, 0, 0, 0}).view({2, 5})));
  const auto I = data::kIgnoreTarget;
  EXPECT_TRUE(b.targets.equal(torch::tensor(std::vector<int64_t>{2, 3, 4, 5, 6, 8, 9, I, I, I}).view({2, 5})));
  EXPECT_EQ(b.target_tokens, 7);
}

TEST(Tokenizer, BytesRoundTripAnyFile) {
  const auto bytes = data::byte_tokenizer();
  const std::string raw("\x00\xff\xfe plain \n", 10);
  EXPECT_EQ(bytes->decode(bytes->encode(raw, "raw")), raw);
  EXPECT_EQ(bytes->vocab_size(), 256);
}

// One small SentencePiece model shared by the tests below (training takes a second or two).
const std::string& spm_model() {
  static const std::string path = [] {
    const auto root = temp_dir("spm");
    write_text(root + "/corpus/genesis.txt", sample_text().substr(0, 200000));
    data::SentencePieceTraining o;
    o.input = root + "/corpus";
    o.vocab_size = 400;
    o.out = root + "/t.model";
    data::train_sentencepiece(o);
    return o.out;
  }();
  return path;
}

TEST(Tokenizer, SentencePieceTrainsLoadsAndRoundTrips) {
  const auto sp = data::load_sentencepiece(spm_model());
  EXPECT_EQ(sp->vocab_size(), 400);
  const std::string text = "And God said,  Let there be light:\n\n\tand there was light. \xc3\xa9\xe2\x82\xac 1234";
  const auto ids = sp->encode(text, "text");
  EXPECT_LT(ids.size(), text.size());  // merges happened
  EXPECT_EQ(sp->decode(ids), text);    // whitespace, newlines and unseen characters survive
  // Saved into a model folder and loaded back from it.
  const auto dir = temp_dir("spm-folder");
  sp->save(dir);
  const auto loaded = data::load_tokenizer(dir);
  EXPECT_EQ(loaded->kind(), "sentencepiece");
  EXPECT_EQ(loaded->encode(text, "text"), ids);
}

TEST(Tokenizer, SentencePieceRefusesNonUtf8WithTheSource) {
  const auto sp = data::load_sentencepiece(spm_model());
  expect_error([&] { sp->encode("caf\xe9", "notes/latin1.txt"); }, {"notes/latin1.txt", "UTF-8", "byte 3"});
  const auto root = temp_dir("spm-bad");
  write_text(root + "/in/latin1.txt", "caf\xe9 au lait, encore du caf\xe9");
  data::SentencePieceTraining o;
  o.input = root + "/in";
  o.out = root + "/x.model";
  expect_error([&] { data::train_sentencepiece(o); }, {"latin1.txt", "not valid UTF-8 at byte 3"});
  write_text(root + "/garbage.model", "not a model");
  expect_error([&] { data::load_sentencepiece(root + "/garbage.model"); }, {"garbage.model", "not a SentencePiece model"});
}

TEST(Windows, SentencePieceWindowsDecodeToSpansOfTheDocument) {
  const auto sp = data::load_sentencepiece(spm_model());
  const auto root = temp_dir("spm-windows");
  const auto text = sample_text();
  write_text(root + "/doc.txt", text);
  data::WindowSampler sampler(data::list_documents(root), *sp, 48, 3);
  for (uint64_t i = 0; i < 50; ++i) {
    const auto ids = sampler.example(i);
    ASSERT_EQ(ids.size(), 49u);
    EXPECT_NE(text.find(sp->decode(ids)), std::string::npos) << "example " << i;
  }
}

}  // namespace
}  // namespace infini
