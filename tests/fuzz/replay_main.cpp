// fuzz_replay: the fuzz targets without libFuzzer, for the normal build and CI (docs/RELIABILITY.md).
//
//   fuzz_replay                         every target on its seeds (made in memory) and on every file in
//                                       tests/fuzz/regressions/<target>/; a crash, a sanitizer report or
//                                       an escaping exception other than infini::Error fails it
//   fuzz_replay --target T PATH...      target T on these files (a folder: every file in it)
//   fuzz_replay --write-seeds DIR       writes the seeds to DIR/<target>/<name>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "seeds.h"

#define INFINI_DECLARE_TARGET(name) extern "C" int infini_fuzz_##name(const uint8_t* data, size_t size);
INFINI_DECLARE_TARGET(safetensors)
INFINI_DECLARE_TARGET(config)
INFINI_DECLARE_TARGET(model_dir)
INFINI_DECLARE_TARGET(state)
INFINI_DECLARE_TARGET(checkpoint)
INFINI_DECLARE_TARGET(tokenizer)
INFINI_DECLARE_TARGET(serve_request)

namespace {

namespace fs = std::filesystem;
using Entry = int (*)(const uint8_t*, size_t);

const std::map<std::string, Entry> kTargets = {
    {"safetensors", infini_fuzz_safetensors}, {"config", infini_fuzz_config},
    {"model_dir", infini_fuzz_model_dir},     {"state", infini_fuzz_state},
    {"checkpoint", infini_fuzz_checkpoint},   {"tokenizer", infini_fuzz_tokenizer},
    {"serve_request", infini_fuzz_serve_request},
};

void run(Entry entry, const std::string& label, const std::string& bytes) {
  std::fprintf(stderr, "fuzz_replay: %s (%zu bytes)\n", label.c_str(), bytes.size());
  // A copy of exactly the input's size, so that ASan sees reads past its end.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  entry(copy.data(), copy.size());
}

// Files under `path` (or `path` itself), sorted; none when it does not exist.
std::vector<fs::path> files_in(const fs::path& path) {
  std::vector<fs::path> out;
  if (fs::is_regular_file(path)) return {path};
  if (!fs::is_directory(path)) return out;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

int usage() {
  std::fprintf(stderr, "usage: fuzz_replay [--write-seeds DIR | --target NAME PATH...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--write-seeds") {
    size_t n = 0;
    for (const auto& [target, seeds] : infini::fuzz::make_seeds(INFINI_SOURCE_DIR)) {
      fs::create_directories(fs::path(args[1]) / target);
      for (const auto& s : seeds) infini::io::write_file_atomic((fs::path(args[1]) / target / s.name).string(), s.bytes), ++n;
    }
    std::fprintf(stderr, "fuzz_replay: %zu seeds written to %s\n", n, args[1].c_str());
    return 0;
  }
  if (args.size() >= 2 && args[0] == "--target") {
    const auto it = kTargets.find(args[1]);
    if (it == kTargets.end()) return usage();
    size_t n = 0;
    for (size_t i = 2; i < args.size(); ++i)
      for (const auto& f : files_in(args[i])) run(it->second, f.string(), infini::io::read_file(f.string())), ++n;
    std::fprintf(stderr, "fuzz_replay: %s: %zu inputs, no crash\n", args[1].c_str(), n);
    return 0;
  }
  if (!args.empty()) return usage();
  const auto seeds = infini::fuzz::make_seeds(INFINI_SOURCE_DIR);
  for (const auto& [target, entry] : kTargets) {
    size_t n_seeds = 0, n_regressions = 0;
    for (const auto& s : seeds.at(target)) run(entry, target + "/seed/" + s.name, s.bytes), ++n_seeds;
    for (const auto& f : files_in(fs::path(INFINI_SOURCE_DIR) / "tests/fuzz/regressions" / target))
      run(entry, f.string(), infini::io::read_file(f.string())), ++n_regressions;
    std::printf("fuzz_replay: %-12s %zu seeds, %zu regression inputs: no crash\n", target.c_str(), n_seeds,
                n_regressions);
  }
  return 0;
}
