// Small valid inputs for every fuzz target, made with infini's own writers (docs/RELIABILITY.md):
// fuzz_replay runs the targets on them, and `fuzz_replay --write-seeds DIR` writes them out as the
// fuzzers' seed corpora. Nothing of them is kept in git.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace infini::fuzz {

struct Seed {
  std::string name;
  std::string bytes;
};

// Target name (without "fuzz_") -> its seeds. `source_dir` is the repository root (for the sample
// text a SentencePiece seed model is trained on).
std::map<std::string, std::vector<Seed>> make_seeds(const std::string& source_dir);

}  // namespace infini::fuzz
