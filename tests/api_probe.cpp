// What the Python package's tests compare against (python/tests): the C++ side of each check, run as
// its own process. Raw little-endian arrays go to files; Python reads them with torch.frombuffer.
//
//   api_probe logits MODEL_DIR TOKENS_FILE B T OUT           Model::forward's logits (B, T, V) fp32
//   api_probe grads CONFIG_JSON SEED TEXT_FILE B W OUT_DIR   the trainer's first step on B windows of
//       W tokens from TEXT_FILE (bytes): OUT_DIR/model (the weights before the step), inputs.bin and
//       targets.bin (B, W) int64, grads.bin (every parameter's gradient, fp32, in grads.json's order)
//   api_probe threads MODEL_DIR                              loads and runs a model without set_threads;
//       exit 0 if the default then in effect is every usable CPU (ctest api_default_threads)
// Threads are fixed at 1 for logits and grads, so that every sum runs in one order.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "api/access.h"
#include "data/windows.h"
#include "infini/infini.h"
#include "train/trainer.h"

namespace {

void write_raw(const std::string& path, const torch::Tensor& t) {
  const auto c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
  if (!out) throw infini::Error("cannot write " + path);
}

torch::Tensor read_tokens(const std::string& path, int64_t b, int64_t t) {
  std::ifstream in(path, std::ios::binary);
  auto tokens = torch::empty({b, t}, torch::kInt64);
  in.read(static_cast<char*>(tokens.data_ptr()), static_cast<std::streamsize>(b * t * 8));
  if (!in) throw infini::Error(path + ": fewer than B x T int64 tokens");
  return tokens;
}

int logits(char** argv) {
  const auto model = infini::Model::load(argv[2]);
  const auto tokens = read_tokens(argv[3], std::stoll(argv[4]), std::stoll(argv[5]));
  torch::NoGradGuard no_grad;
  write_raw(argv[6], model.forward(tokens).logits.to(torch::kFloat32));
  return 0;
}

int grads(char** argv) {
  const std::string out = argv[7];
  const auto b = std::stoll(argv[5]), w = std::stoll(argv[6]);
  infini::Model model(infini::ModelConfig::from_file(argv[2]), std::stoull(argv[3]));
  model.save(out + "/model");
  std::ifstream text(argv[4], std::ios::binary);
  std::vector<std::vector<int64_t>> examples(static_cast<size_t>(b));
  for (auto& e : examples)
    for (int64_t i = 0; i <= w; ++i) e.push_back(static_cast<unsigned char>(text.get()));
  if (!text) throw infini::Error(std::string(argv[4]) + ": shorter than B x (W + 1) bytes");
  const auto batch = infini::data::make_batch(examples, w);
  infini::TrainOptions o;
  o.grad_clip = 0;  // the gradient as computed
  auto& module = infini::detail::Access::module(model);
  auto optimizer = infini::make_optimizer(module, o);
  infini::train_step(module, optimizer, {batch}, o, 0);
  write_raw(out + "/inputs.bin", batch.inputs);
  write_raw(out + "/targets.bin", batch.targets);
  nlohmann::json names = nlohmann::json::array();
  std::vector<torch::Tensor> flat;
  for (const auto& p : module->named_parameters()) {
    names.push_back(p.key());
    flat.push_back(p.value().grad().defined() ? p.value().grad().to(torch::kFloat32).reshape({-1})
                                              : torch::zeros({p.value().numel()}));
  }
  write_raw(out + "/grads.bin", torch::cat(flat));
  std::ofstream(out + "/grads.json") << names.dump() << "\n";
  return 0;
}

// A program that never calls set_threads gets every usable CPU once it runs a model (not before: a
// thread that only loads keeps LibTorch's count).
int default_threads(const std::string& model_dir) {
  const int before = at::get_num_threads();
  const auto model = infini::Model::load(model_dir);
  const int loaded = at::get_num_threads();
  infini::Session session(model);
  session.feed(std::string("In the beginning"));
  const int ran = at::get_num_threads(), usable = infini::usable_cpus();
  std::printf("threads at start %d, after loading %d, after a session ran %d; usable CPUs %d\n", before, loaded, ran,
              usable);
  return loaded == before && ran == usable ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string what = argc > 1 ? argv[1] : "";
    if (what == "threads" && argc == 3) return default_threads(argv[2]);
    infini::set_threads(1);
    if (what == "logits" && argc == 7) return logits(argv);
    if (what == "grads" && argc == 8) return grads(argv);
    std::cerr << "usage: api_probe logits MODEL_DIR TOKENS_FILE B T OUT | grads CONFIG SEED TEXT B W OUT_DIR | "
                 "threads MODEL_DIR\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "api_probe: " << e.what() << "\n";
    return 1;
  }
}
