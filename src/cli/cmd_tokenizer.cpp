#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "data/tokenizer.h"

namespace infini::cli {

Runner add_tokenizer(CLI::App& app) {
  auto o = std::make_shared<data::SentencePieceTraining>();
  auto* sub = app.add_subcommand("tokenizer", "SentencePiece tokenizers");
  sub->require_subcommand(1);
  auto* train = sub->add_subcommand("train", "train a SentencePiece (BPE or unigram) model on documents");
  train->add_option("--input", o->input, "a text file or a folder of .txt/.tex documents")->required();
  train->add_option("--vocab", o->vocab_size, "vocabulary size (>= 260: 256 byte fallbacks + specials)")
      ->check(at_least(260));
  train->add_option("--type", o->model_type, "bpe or unigram")->check(CLI::IsMember({"bpe", "unigram"}));
  train->add_option("--max-sentences", o->max_sentences, "lines sampled for training")->check(at_least(1));
  train->add_option("--out", o->out, "the .model file to write")->required();
  return [o]() {
    data::train_sentencepiece(*o);
    const auto tok = data::load_sentencepiece(o->out);
    fmt::print(stderr, "infini tokenizer: {} {} ids written to {}\n", o->model_type, tok->vocab_size(), o->out);
    return 0;
  };
}

}  // namespace infini::cli
