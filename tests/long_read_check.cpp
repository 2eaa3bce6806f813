// A long read through the fast paths stays sound: a session reads TOKENS tokens of a text (cycled
// when shorter) through the fused prefill, and then
//   - every state tensor is finite;
//   - from that state, the next TAIL tokens and DECODE generated ones give the same logits through
//     the fused paths and through the general forward pass (a fresh session restored from the same
//     snapshot, its fast paths off), within 1e-4 of the logits' scale.
// The general path reads only the tail, which keeps a 10M-token check at the fused prefill's speed.
// Prints one JSON line; the verdict is the exit code (0 pass, 1 fail, 2 usage).
//   usage: long_read_check MODEL_DIR TEXT_FILE TOKENS TAIL DECODE
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "infer/session.h"
#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "infini/error.h"

namespace {

using namespace infini;

// max |a - b| / max |b|, both as float64.
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.to(torch::kFloat64), y = b.to(torch::kFloat64);
  return (x - y).abs().max().item<double>() / std::max(y.abs().max().item<double>(), 1e-30);
}

bool finite_state(const ModelState& state) {
  for (const auto& [name, t] : state.to_tensors())
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) {
      std::fprintf(stderr, "long_read_check: state tensor %s is not finite\n", name.c_str());
      return false;
    }
  return true;
}

int run(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: long_read_check MODEL_DIR TEXT_FILE TOKENS TAIL DECODE\n");
    return 2;
  }
  const std::string model_dir = argv[1], text_file = argv[2];
  const int64_t total = std::stoll(argv[3]), tail = std::stoll(argv[4]), decode = std::stoll(argv[5]);
  auto model = io::load_model(model_dir);
  model->eval();
  const auto tokenizer = data::load_tokenizer(model_dir);
  const auto text = tokenizer->encode(io::read_file(text_file), text_file);  // (n)
  if (text.size() < 2) throw Error(fmt::format("{}: fewer than 2 tokens", text_file));
  const auto token = [&](int64_t i) { return text[static_cast<size_t>(i) % text.size()]; };

  SessionEngine fused(model);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int64_t kBlock = 1 << 16;
  std::vector<int64_t> block;
  for (int64_t done = 0; done < total;) {
    const auto n = std::min(kBlock, total - done);
    block.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) block[static_cast<size_t>(i)] = token(done + i);
    fused.feed(block);
    done += n;
    if (done % (int64_t{1} << 20) == 0) std::fprintf(stderr, "long_read_check: read %lld tokens\n", (long long)done);
  }
  const double read_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool finite = finite_state(fused.state()) && torch::isfinite(fused.last_logits()).all().item<bool>();

  // The same continuation both ways, from the same snapshot.
  SessionEngine general(model, /*fused_decode=*/false, /*fused_prefill=*/false);
  general.restore(fused.snapshot());
  std::vector<int64_t> next(static_cast<size_t>(tail));
  for (int64_t i = 0; i < tail; ++i) next[static_cast<size_t>(i)] = token(total + i);
  fused.feed(next);
  general.feed(next);
  double worst = relative_error(fused.last_logits(), general.last_logits());
  for (int64_t i = 0; i < decode; ++i) {
    const auto t = fused.last_logits().argmax().item<int64_t>();  // greedy, from the fused path
    fused.feed({t});
    general.feed({t});
    worst = std::max(worst, relative_error(fused.last_logits(), general.last_logits()));
  }
  const bool pass = finite && worst <= 1e-4;
  const nlohmann::json result = {{"model", model_dir},  {"tokens_read", total},   {"read_seconds", read_s},
                                 {"read_tokens_per_second", static_cast<double>(total) / read_s},
                                 {"tail", tail},        {"decoded", decode},      {"finite_state", finite},
                                 {"max_relative_logit_difference", worst},       {"state_bytes", fused.state_bytes()},
                                 {"pass", pass}};
  std::printf("%s\n", result.dump().c_str());
  return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "long_read_check: %s\n", e.what());
    return 2;
  }
}
