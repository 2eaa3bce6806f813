#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "data/byte_text.h"
#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "model/config.h"
#include "model/transformer.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/runtime.h"

namespace infini::cli {

Runner add_train(CLI::App& app) {
  struct Flags {
    std::string config, data, out;
    int threads = 0;
    TrainOptions train;
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("train", "train a byte-level model on a text file");
  sub->add_option("--config", f->config, "model config JSON (default: the reference config, docs/MODEL.md)");
  sub->add_option("--data", f->data, "training text (bytes are tokens)")->required();
  sub->add_option("--out", f->out, "model folder to write (config.json, model.safetensors)")->required();
  sub->add_option("--steps", f->train.steps, "optimisation steps")->check(at_least(1));
  sub->add_option("--max-seconds", f->train.max_seconds, "stop after this much time (0: no limit)")
      ->check(at_least(0));
  sub->add_option("--batch", f->train.batch, "sequences per step")->check(at_least(1));
  sub->add_option("--window", f->train.window, "tokens per sequence, fed segment by segment")
      ->check(at_least(1));
  sub->add_option("--bptt-segments", f->train.bptt_segments,
                  "detach the memory every k segments (0: through the whole window)")
      ->check(at_least(0));
  sub->add_option("--lr", f->train.lr, "peak learning rate")->check(positive());
  sub->add_option("--warmup", f->train.warmup, "warm-up steps")->check(at_least(0));
  sub->add_option("--weight-decay", f->train.weight_decay, "AdamW weight decay on matrices")
      ->check(at_least(0));
  sub->add_option("--gate-lr-mult", f->train.gate_lr_mult, "learning-rate multiplier for the gates")
      ->check(at_least(0));
  sub->add_option("--grad-clip", f->train.grad_clip, "clip the gradient norm (0: off)")
      ->check(at_least(0));
  sub->add_option("--seed", f->train.seed, "random seed");
  add_threads_flag(*sub, f->threads);
  return [f]() {
    configure_runtime(f->threads);
    const ModelConfig config = f->config.empty() ? ModelConfig{} : ModelConfig::from_file(f->config);
    if (config.vocab_size < 256)
      throw Error(fmt::format("{}: vocab_size is {}; byte-level training needs at least 256",
                              f->config, config.vocab_size));
    const auto text = io::read_file(f->data);
    if (text.empty()) throw Error(fmt::format("{}: the training text is empty", f->data));
    torch::manual_seed(f->train.seed);
    InfiniTransformer model(config);
    fmt::print(stderr, "infini train: {} parameters, memory {}, {} bytes of text, {} threads\n",
               model->parameter_count(), to_string(config.memory), text.size(), at::get_num_threads());
    const auto summary = train(model, data::bytes_to_tokens(text), f->train);
    io::save_model(f->out, model);
    fmt::print(stderr, "infini train: {} steps, loss {:.4f} -> {:.4f}, {:.0f} tok/s, saved {}\n",
               summary.steps, summary.first_loss, summary.last_loss, summary.tokens_per_second, f->out);
    return 0;
  };
}

}  // namespace infini::cli
