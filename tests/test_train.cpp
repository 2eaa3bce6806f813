// The trainer: AdamW against LibTorch's, padding and accumulation, non-finite stops, checkpoints,
// metrics and exact resume.
#include <filesystem>

#include <gtest/gtest.h>

#include "data/windows.h"
#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/trainer.h"
#include "util/runtime.h"

namespace infini {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::temp_dir;
using testing::write_text;

ModelConfig small_config() {
  auto c = testing::byte_level_config();
  c.init_std = 0.02;
  return c;
}

std::vector<int64_t> random_tokens(int64_t n, int64_t seed) {
  torch::manual_seed(seed);
  const auto t = torch::randint(256, {n}, torch::kInt64);
  return {t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n};
}

TEST(AdamW, MatchesLibTorch) {
  torch::manual_seed(3);
  auto a = torch::randn({5, 4}).requires_grad_();
  auto b = a.detach().clone().requires_grad_();
  AdamW ours({ParamGroup{"matrices", {"a"}, {a}, 0.01, 0.1}}, 0.9, 0.95, 1e-8);
  torch::optim::AdamW theirs({b}, torch::optim::AdamWOptions(0.01).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  for (int step = 0; step < 6; ++step) {
    const auto target = torch::randn({5, 4});
    ours.zero_grad();
    theirs.zero_grad();
    (a - target).pow(3).sum().backward();
    (b - target).pow(3).sum().backward();
    ours.step(1.0);
    theirs.step();
  }
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-6);
  EXPECT_EQ(ours.steps_taken(), 6);
}

TEST(Trainer, PaddingAddsNothingToTheLossOrGradient) {
  torch::manual_seed(0);
  InfiniTransformer model(small_config());
  const auto tokens = random_tokens(11, 1);  // 10 targets, window of 16: 6 padded
  TrainOptions o;
  o.grad_clip = 1e9;
  auto opt = make_optimizer(model, o);
  const auto padded = train_step(model, opt, {data::make_batch({tokens}, 16)}, o, 0);
  EXPECT_EQ(padded.target_tokens, 10);
  // Reference: the same example with no padding, straight through the model.
  torch::manual_seed(0);
  InfiniTransformer fresh(small_config());
  const auto b = data::make_batch({tokens}, 10);
  const auto out = fresh->forward(b.inputs, fresh->initial_state(1));
  const auto loss = torch::nn::functional::cross_entropy(out.logits.reshape({-1, 256}), b.targets.reshape({-1}));
  EXPECT_NEAR(padded.loss, loss.item<double>(), 1e-6);
  loss.backward();
  double grad_sq = 0;
  for (const auto& p : fresh->parameters()) grad_sq += p.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(padded.grad_norm, std::sqrt(grad_sq), 1e-5 * std::sqrt(grad_sq));
}

TEST(Trainer, AccumulatingMicroBatchesEqualsOneBigBatch) {
  std::vector<std::vector<int64_t>> examples;
  for (int i = 0; i < 4; ++i) examples.push_back(random_tokens(17 - 2 * i, 10 + i));  // ragged: padding too
  TrainOptions o;
  std::vector<torch::Tensor> after[2];
  double losses[2];
  for (int variant = 0; variant < 2; ++variant) {
    torch::manual_seed(0);
    InfiniTransformer model(small_config());
    auto opt = make_optimizer(model, o);
    std::vector<data::Batch> batches;
    if (variant == 0) batches.push_back(data::make_batch(examples, 16));
    else batches = {data::make_batch({examples[0], examples[1]}, 16), data::make_batch({examples[2], examples[3]}, 16)};
    losses[variant] = train_step(model, opt, batches, o, 0).loss;
    for (const auto& p : model->parameters()) after[variant].push_back(p.detach().clone());
  }
  EXPECT_NEAR(losses[0], losses[1], 1e-6);
  for (size_t i = 0; i < after[0].size(); ++i) EXPECT_LT((after[0][i] - after[1][i]).abs().max().item<double>(), 1e-6);
}

// Write weights of 1 are the plain forward pass; other weights change the loss exactly as a forward
// pass segment by segment with ModelState::weigh_next_write does.
TEST(Trainer, WriteWeightsScaleEachSegmentsMemoryWrite) {
  const auto c = small_config();
  const auto L = c.segment_len;
  const auto tokens = random_tokens(3 * L + 1, 4);
  auto batch = data::make_batch({tokens}, 3 * L);
  TrainOptions o;
  o.grad_clip = 1e9;
  const auto loss_of = [&](const torch::Tensor& weights) {
    torch::manual_seed(0);
    InfiniTransformer model(c);
    auto opt = make_optimizer(model, o);
    auto b = batch;
    b.write_weights = weights;
    return train_step(model, opt, {b}, o, 0).loss;
  };
  const auto plain = loss_of({});
  EXPECT_NEAR(loss_of(torch::ones({1, 3})), plain, 1e-6);
  const auto weighted = loss_of(torch::tensor({{1.0f, 50.0f, 1.0f}}));
  EXPECT_GT(std::abs(weighted - plain), 1e-4);
  // The reference: segment by segment, the second one's write weighted 50.
  torch::manual_seed(0);
  InfiniTransformer model(c);
  auto state = model->initial_state(1);
  std::vector<torch::Tensor> logits;
  for (int64_t s = 0; s < 3; ++s) {
    state.weigh_next_write(torch::full({1}, s == 1 ? 50.0f : 1.0f));
    auto out = model->forward(batch.inputs.narrow(1, s * L, L), std::move(state));
    logits.push_back(out.logits);
    state = std::move(out.state);
  }
  const auto loss = torch::nn::functional::cross_entropy(torch::cat(logits, 1).reshape({-1, 256}),
                                                         batch.targets.reshape({-1}));
  EXPECT_NEAR(weighted, loss.item<double>(), 1e-6);
}

TEST(Trainer, NonFiniteLossStopsBeforeTheWeightsChange) {
  torch::manual_seed(0);
  InfiniTransformer model(small_config());
  TrainOptions o;
  auto opt = make_optimizer(model, o);
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["embed.weight"][5].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  const auto before = model->named_parameters()["lm_head.weight"].clone();
  expect_error([&] { train_step(model, opt, {data::make_batch({{5, 6, 7, 8}}, 4)}, o, 41); }, {"step 42", "nan"});
  EXPECT_TRUE(model->named_parameters()["lm_head.weight"].equal(before));
}

RunSpec small_run(const std::string& root, const std::string& name) {
  write_text(root + "/corpus/train/a.txt", io::read_file(std::string(INFINI_SOURCE_DIR) + "/data/sample/kjv-genesis-exodus.txt"));
  write_text(root + "/corpus/validation/b.txt", "And Moses said unto the people, Fear ye not, stand still.");
  RunSpec s;
  s.out = root + "/" + name;
  s.data = root + "/corpus";
  s.config = small_config();
  s.options.steps = 8;
  s.options.batch = 2;
  s.options.window = 24;
  s.options.bptt_segments = 2;
  s.options.warmup = 2;
  s.options.lr = 3e-3;
  s.options.val_every = 3;
  s.options.val_windows = 2;
  s.options.checkpoint_every = 0;
  return s;
}

std::vector<double> losses_of(const std::string& run) {
  std::vector<double> out;
  for (const auto& r : read_metrics(run + "/metrics.jsonl")) out.push_back(r["loss"].get<double>());
  return out;
}

// The two baselines of the paper's Table 2 train like the other modes, with the memory carried
// through the window (RMT's written memory with its gradient) or cut at every segment.
TEST(Trainer, TheBaselineMemoriesTrainWithAndWithoutBptt) {
  const auto root = temp_dir("baselines");
  TrainLimits quiet;
  quiet.quiet = true;
  for (const auto mode : {MemoryMode::Knn, MemoryMode::Rmt})
    for (const int64_t bptt : {0, 1}) {
      auto s = small_run(root, fmt::format("{}-{}", to_string(mode), bptt));
      s.config.memory = mode;
      s.options.bptt_segments = bptt;
      train_new(s, quiet);
      const auto losses = losses_of(s.out);
      ASSERT_EQ(losses.size(), 8u) << s.out;
      for (const auto l : losses) EXPECT_TRUE(std::isfinite(l)) << s.out;
      EXPECT_LT(losses.back(), losses.front()) << s.out;
    }
}

TEST(Trainer, ResumingReproducesTheUnbrokenRunStepForStep) {
  const auto root = temp_dir("resume");
  // A fixed thread count (as --threads N gives): measured counts follow the machine's load, and the
  // last bits with them.
  set_thread_tuning(false);
  TrainLimits quiet;
  quiet.quiet = true;
  train_new(small_run(root, "unbroken"), quiet);
  TrainLimits first = quiet;
  first.stop_after = 3;
  EXPECT_EQ(train_new(small_run(root, "broken"), first).step, 3);
  // A crash after the checkpoint leaves extra metrics lines; resuming drops them.
  std::ofstream(root + "/broken/metrics.jsonl", std::ios::app) << "{\"step\": 4, \"tokens\": 1, \"loss\": 9}\n";
  first.stop_after = 2;
  EXPECT_EQ(train_resume(root + "/broken", 0, first).step, 5);
  EXPECT_EQ(train_resume(root + "/broken", 0, quiet).step, 8);
  const auto a = losses_of(root + "/unbroken");
  const auto b = losses_of(root + "/broken");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << "step " << i + 1;
  EXPECT_LT(a.back(), a.front());
  // The finished run refuses to go on without a new total; a new run refuses a used folder.
  expect_error([&] { train_resume(root + "/broken", 0, quiet); }, {"all 8 of its steps", "--steps"});
  expect_error([&] { train_new(small_run(root, "broken"), quiet); }, {"broken", "not empty", "--resume"});
  set_thread_tuning(true);
}

// The passkey task: examples made on the fly, loss and accuracy on the answer only, resumable; and
// fine-tuning from a model folder starts from exactly its weights.
TEST(Trainer, PasskeyTaskFineTunesAModelOnAnswersOnly) {
  const auto root = temp_dir("passkey-task");
  TrainLimits quiet;
  quiet.quiet = true;
  train_new(small_run(root, "lm"), quiet);
  auto spec = small_run(root, "passkey");
  spec.data.clear();
  spec.init = root + "/lm";
  spec.options.task = "passkey";
  spec.options.window = 420;
  spec.options.passkey_min_tokens = 350;
  spec.options.steps = 3;
  spec.options.lr = 1e-12;  // the weights stay where --init put them
  spec.options.weight_decay = 0;
  spec.options.val_every = 1;
  const auto summary = train_new(spec, quiet);
  EXPECT_EQ(summary.step, 3);
  auto before = io::load_model(root + "/lm"), after = io::load_model(root + "/passkey");
  for (const auto& item : before->named_parameters())
    EXPECT_LT((item.value() - after->named_parameters()[item.key()]).abs().max().item<double>(), 1e-6) << item.key();
  const auto records = read_metrics(root + "/passkey/metrics.jsonl");
  ASSERT_EQ(records.size(), 3u);
  for (const auto& r : records) {
    // The step really ran: the key sits chunks before the answer (--bptt-segments 2), and the
    // chunks before the answer's must still be read.
    EXPECT_GT(r["loss"].get<double>(), 0.5);
    EXPECT_GT(r["grad_norm"].get<double>(), 0.0);
    // Tokens read, not targets: 2 prompts of 350-420 tokens per step.
    const auto per_step = r["tokens"].get<double>() / static_cast<double>(r["step"].get<int64_t>());
    EXPECT_GE(per_step, 2 * 250.0);  // a prompt is at most one filler (91 bytes) short of its draw
    EXPECT_LE(per_step, 2 * 420.0);
    EXPECT_GE(r["val_accuracy"].get<double>(), 0.0);
    EXPECT_LE(r["val_accuracy"].get<double>(), 1.0);
  }
  // The answer is hard for a 1-step model and its filler is easy: the answer-only loss stays high.
  EXPECT_GT(records.back()["val_loss"].get<double>(), 1.0);
  // Resuming needs no corpus; a passkey run refuses one.
  EXPECT_EQ(train_resume(root + "/passkey", 4, quiet).step, 4);
  auto with_data = spec;
  with_data.out = root + "/passkey-with-data";
  with_data.data = root + "/corpus";
  expect_error([&] { train_new(with_data, quiet); }, {"--task passkey", "--data"});
  auto too_short = spec;
  too_short.out = root + "/passkey-short";
  too_short.options.window = 100;
  too_short.options.passkey_min_tokens = 0;
  expect_error([&] { train_new(too_short, quiet); }, {"--window"});
  EXPECT_FALSE(std::filesystem::exists(too_short.out));  // a run that never started leaves nothing
  auto upside_down = spec;
  upside_down.out = root + "/passkey-upside-down";
  upside_down.options.passkey_min_depth = 0.8;
  upside_down.options.passkey_max_depth = 0.2;
  expect_error([&] { train_new(upside_down, quiet); }, {"--passkey-min-depth", "0.8 to 0.2"});
  EXPECT_FALSE(std::filesystem::exists(upside_down.out));
}

// Checkpoints from before the passkey task lack its fields: they load as language-model runs.
TEST(Trainer, OptionsFromBeforeThePasskeyTaskLoad) {
  auto j = TrainOptions{}.to_json();
  j.erase("task");
  j.erase("passkey_min_tokens");
  j.erase("passkey_min_depth");
  j.erase("passkey_max_depth");
  j.erase("passkey_key_min");
  j.erase("passkey_key_max");
  j.erase("passkey_repeat_keys");
  j.erase("passkey_lead_bytes");
  const auto o = TrainOptions::from_json(j, "old.json");
  EXPECT_EQ(o.task, "lm");
  EXPECT_EQ(o.passkey_min_tokens, 0);
  EXPECT_EQ(o.passkey_min_depth, 0.0);
  EXPECT_EQ(o.passkey_max_depth, 1.0);
  EXPECT_EQ(o.passkey_key_max, 50000);
  EXPECT_EQ(o.passkey_repeat_keys, 0.0);
  EXPECT_EQ(o.passkey_lead_bytes, 0);
  auto led = j;
  led["passkey_lead_bytes"] = -3;
  expect_error([&] { TrainOptions::from_json(led, "led.json"); }, {"led.json", "--passkey-lead-bytes", "-3"});
  auto repeats = j;
  repeats["passkey_repeat_keys"] = 2.0;
  expect_error([&] { TrainOptions::from_json(repeats, "repeats.json"); }, {"repeats.json", "--passkey-repeat-keys"});
  // Runs saved before base-62 keys were removed record the (decimal) alphabet; an alnum run is refused.
  auto decimal = j;
  decimal["passkey_key_alphabet"] = "decimal";
  EXPECT_EQ(TrainOptions::from_json(decimal, "decimal.json").to_json(), o.to_json());
  auto alnum = j;
  alnum["passkey_key_alphabet"] = "alnum";
  expect_error([&] { TrainOptions::from_json(alnum, "alnum.json"); }, {"alnum.json", "passkey_key_alphabet", "dfe01e6"});
  auto no_keys = j;
  no_keys["passkey_key_min"] = 10;
  no_keys["passkey_key_max"] = 9;
  expect_error([&] { TrainOptions::from_json(no_keys, "keys.json"); }, {"keys.json", "10 to 9"});
  auto upside_down = j;
  upside_down["passkey_min_depth"] = 0.6;
  upside_down["passkey_max_depth"] = 0.3;
  expect_error([&] { TrainOptions::from_json(upside_down, "deep.json"); }, {"deep.json", "0.6 to 0.3"});
  j["task"] = "copy";
  expect_error([&] { TrainOptions::from_json(j, "odd.json"); }, {"odd.json", "'task'", "copy"});
}

TEST(Checkpoint, DamagedFilesAreRefusedByName) {
  const auto root = temp_dir("damaged");
  TrainLimits quiet;
  quiet.quiet = true;
  train_new(small_run(root, "run"), quiet);
  const auto path = root + "/run/checkpoint.safetensors";
  const auto bytes = io::read_file(path);
  const auto checkpoint = load_checkpoint(path);
  EXPECT_EQ(checkpoint.run.step, 8);
  EXPECT_EQ(checkpoint.run.examples_drawn, 16u);
  io::write_file_atomic(path, bytes.substr(0, bytes.size() / 2));
  expect_error([&] { load_checkpoint(path); }, {path, "truncated"});
  expect_error([&] { train_resume(root + "/run", 20, quiet); }, {path, "truncated"});
  // A field missing from the metadata is named.
  auto file = io::decode_safetensors(bytes, path);
  auto run = nlohmann::json::parse(file.metadata["run"]);
  run.erase("examples_drawn");
  file.metadata["run"] = run.dump();
  io::save_safetensors(path, file);
  expect_error([&] { load_checkpoint(path); }, {path, "examples_drawn"});
  // So is a missing optimizer tensor.
  file = io::decode_safetensors(bytes, path);
  file.tensors.erase("adamw.step");
  io::save_safetensors(path, file);
  expect_error([&] { train_resume(root + "/run", 20, quiet); }, {path, "adamw.step"});
}

}  // namespace
}  // namespace infini
