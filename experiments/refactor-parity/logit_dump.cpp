// Writes the logits of the shipped model on a fixed input through all three paths, as raw fp32, so
// that two builds of infini can be compared (experiments/refactor-parity/README.md):
//   general:  InfiniTransformer::forward over all T tokens at once, every position   (T, V)
//   prefill:  Session::feed one segment at a time (the fused prefill), after each     (T / L, V)
//   decode:   Session::feed one token at a time after that (the fused decoder)       (N, V)
//   usage: logit_dump MODEL_DIR TEXT_FILE SEGMENTS DECODE_TOKENS OUT_PREFIX
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "infer/session.h"
#include "io/model_dir.h"

namespace {
void write(const std::string& path, const torch::Tensor& t) {
  const auto c = t.to(torch::kFloat32).contiguous();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::streamsize>(c.numel() * 4));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: logit_dump MODEL_DIR TEXT_FILE SEGMENTS DECODE_TOKENS OUT_PREFIX\n");
    return 2;
  }
  auto model = infini::io::load_model(argv[1]);
  model->eval();
  std::ifstream in(argv[2], std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int64_t L = model->config().segment_len, T = std::stoll(argv[3]) * L, N = std::stoll(argv[4]);
  if (static_cast<int64_t>(text.size()) < T + N) {
    std::fprintf(stderr, "logit_dump: %s is shorter than %lld bytes\n", argv[2], static_cast<long long>(T + N));
    return 2;
  }
  std::vector<int64_t> tokens;  // byte tokens
  for (int64_t i = 0; i < T + N; ++i) tokens.push_back(static_cast<unsigned char>(text[static_cast<size_t>(i)]));
  const std::string out = argv[5];
  torch::InferenceMode inference;
  {
    const auto ids = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.begin() + T)).unsqueeze(0);  // (1, T)
    write(out + ".general.f32", model->forward(ids, model->initial_state(1)).logits[0]);  // (T, V)
  }
  infini::Session session(model);
  std::vector<torch::Tensor> prefill, decode;
  for (int64_t s = 0; s < T / L; ++s) {
    session.feed(std::vector<int64_t>(tokens.begin() + s * L, tokens.begin() + (s + 1) * L));
    prefill.push_back(session.last_logits().clone());
  }
  for (int64_t i = T; i < T + N; ++i) {
    session.feed({tokens[static_cast<size_t>(i)]});
    decode.push_back(session.last_logits().clone());
  }
  write(out + ".prefill.f32", torch::stack(prefill));  // (T / L, V)
  write(out + ".decode.f32", torch::stack(decode));    // (N, V)
  std::fprintf(stderr, "logit_dump: %lld tokens general, %lld segments prefilled, %lld decoded (fused prefill %d, decode %d)\n",
               static_cast<long long>(T), static_cast<long long>(T / L), static_cast<long long>(N),
               session.fused_prefill() ? 1 : 0, session.fused_decode() ? 1 : 0);
  return 0;
}
