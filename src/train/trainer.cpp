#include "train/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <optional>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "compat/torch_compat.h"
#include "data/documents.h"
#include "data/passkey_examples.h"
#include "dist/process_group.h"
#include "io/model_dir.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "infini/error.h"
#include "infini/interrupt.h"
#include "util/runtime.h"

namespace infini {

namespace fs = std::filesystem;

namespace {

// Validation examples are drawn with their own fixed seed, so every run on a corpus is scored on
// the same windows and their curves compare.
constexpr uint64_t kValidationSeed = 0x5EED0F7A11DA7E;

std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int sig) {
  g_stop_requested = true;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C stops at once
}

// Ctrl-C or a scheduler's SIGTERM finishes the current step, writes a checkpoint and exits.
class StopOnSignal {
 public:
  StopOnSignal() {
    g_stop_requested = false;
    previous_int_ = std::signal(SIGINT, request_stop);
    previous_term_ = std::signal(SIGTERM, request_stop);
  }
  ~StopOnSignal() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

struct Run {
  std::string out;
  RunRecord record;
  std::unique_ptr<data::Tokenizer> tokenizer;
  data::Corpus corpus;
  InfiniTransformer model{nullptr};
  std::unique_ptr<AdamW> optimizer;
};

uint64_t total_bytes(const std::vector<data::Document>& docs) {
  uint64_t n = 0;
  for (const auto& d : docs) n += d.bytes;
  return n;
}

data::Corpus open_checked_corpus(const std::string& data, const std::string& validation,
                                 const data::Tokenizer& tokenizer) {
  auto corpus = data::open_corpus(data, validation);
  if (tokenizer.needs_utf8()) {
    fmt::print(stderr, "infini train: checking that {} documents are UTF-8\n",
               corpus.train.size() + corpus.validation.size());
    for (const auto& d : corpus.train) data::check_utf8(d);
    for (const auto& d : corpus.validation) data::check_utf8(d);
  }
  return corpus;
}

TrainSummary run_loop(Run& run, const TrainLimits& limits, dist::ProcessGroup* group) {
  auto& rec = run.record;
  const auto& o = rec.options;
  // Data parallel: rank r takes examples [r b, (r+1) b) of every b x world the step draws, so the
  // union over ranks is what one process with batch b x world would read; only rank 0 writes.
  const int rank = group ? group->rank() : 0;
  const int world = group ? group->world_size() : 1;
  const bool lead = rank == 0;
  if (group) {
    std::vector<torch::Tensor> params;
    for (const auto& p : run.model->parameters()) params.push_back(p.detach());
    group->broadcast(params, 0);
  }
  const auto checkpoint_path = (fs::path(run.out) / "checkpoint.safetensors").string();
  std::unique_ptr<data::ExampleSource> train_examples, val_examples;
  std::string source;
  if (o.task == "passkey") {
    const auto shortest = o.passkey_min_tokens > 0 ? o.passkey_min_tokens : o.window;
    const data::DepthRange depths{o.passkey_min_depth, o.passkey_max_depth};
    const data::KeyRange keys{o.passkey_key_min, o.passkey_key_max, o.passkey_repeat_keys};
    const data::VirtualLength virtual_length{o.passkey_virtual_tokens, run.model->config().segment_len,
                                             o.passkey_virtual_min_tokens};
    train_examples = std::make_unique<data::PasskeyExamples>(*run.tokenizer, shortest, o.window, o.seed, depths, keys,
                                                             virtual_length, o.passkey_lead_bytes);
    val_examples = std::make_unique<data::PasskeyExamples>(*run.tokenizer, shortest, o.window, kValidationSeed,
                                                           depths, keys, virtual_length, o.passkey_lead_bytes);
    source = fmt::format("passkey prompts of {} to {} tokens, keys {} to {} at depth {} to {} (loss on the "
                         "answer only)", shortest, o.window, o.passkey_key_min, o.passkey_key_max,
                         o.passkey_min_depth, o.passkey_max_depth);
    if (o.passkey_repeat_keys > 0)
      source += fmt::format(", {} of them with digits from a pool of 2-3", o.passkey_repeat_keys);
    if (o.passkey_virtual_tokens > 0)
      source += fmt::format(", read as if {} to {} tokens long",
                            o.passkey_virtual_min_tokens > 0 ? fmt::format("{}", o.passkey_virtual_min_tokens)
                                                             : std::string("their own length"),
                            o.passkey_virtual_tokens);
    if (o.passkey_lead_bytes > 0)
      source += fmt::format(", after a lead of 0 to {} bytes of filler", o.passkey_lead_bytes - 1);
  } else {
    train_examples = std::make_unique<data::WindowSampler>(run.corpus.train, *run.tokenizer, o.window, o.seed);
    if (!run.corpus.validation.empty())
      val_examples =
          std::make_unique<data::WindowSampler>(run.corpus.validation, *run.tokenizer, o.window, kValidationSeed);
    source = fmt::format("{} train / {} validation documents", run.corpus.train.size(), run.corpus.validation.size());
  }
  std::optional<MetricsLog> metrics;
  if (lead) metrics.emplace((fs::path(run.out) / "metrics.jsonl").string(), rec.step);
  StopOnSignal stop_on_signal;
  int64_t saved_step = rec.step;
  const auto save = [&] {
    saved_step = rec.step;
    if (!lead) return;
    save_checkpoint(checkpoint_path, run.model, *run.optimizer, rec);
    io::save_model(run.out, run.model, *run.tokenizer);
  };

  if (lead)
    fmt::print(stderr,
               "infini train: {} parameters, memory {}, {} tokenizer ({} ids), {}, {} threads{}, step {} of {}\n",
               run.model->parameter_count(), to_string(run.model->config().memory), run.tokenizer->kind(),
               run.tokenizer->vocab_size(), source, at::get_num_threads(),
               world > 1 ? fmt::format(" x {} processes", world) : "", rec.step, o.steps);
  run.model->train();
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  double train_seconds = 0, tokens_here = 0;
  int64_t steps_here = 0;
  TrainSummary summary;
  double val_accuracy = -1;  // of this invocation's last validation
  ThreadTuner threads = training_thread_tuner();
  while (rec.step < o.steps) {
    poll_interrupt();
    std::vector<data::Batch> micro;
    auto drawn = rec.examples_drawn;
    for (int64_t a = 0; a < o.grad_accum; ++a, drawn += static_cast<uint64_t>(o.batch * world))
      micro.push_back(train_examples->batch(drawn + static_cast<uint64_t>(rank * o.batch), o.batch));
    const auto s0 = clock::now();
    StepResult r;
    try {
      const ScopedThreads step_threads(threads.threads());
      r = train_step(run.model, *run.optimizer, micro, o, rec.step, group);
    } catch (const Error& e) {
      throw Error(fs::exists(checkpoint_path)
                      ? fmt::format("{}. The last good checkpoint (step {}) is kept in {}", e.what(), saved_step,
                                    checkpoint_path)
                      : fmt::format("{}. No checkpoint was written yet", e.what()));
    }
    const double dt = std::chrono::duration<double>(clock::now() - s0).count();
    threads.record(dt);
    rec.examples_drawn = drawn;
    rec.step += 1;
    rec.tokens += static_cast<double>(r.input_tokens);
    rec.seconds += dt;
    train_seconds += dt;
    tokens_here += static_cast<double>(r.input_tokens);
    steps_here += 1;
    if (steps_here == 1) summary.first_loss = r.loss;
    summary.last_loss = r.loss;

    const bool last = rec.step == o.steps;
    nlohmann::json record = {{"step", rec.step},        {"tokens", rec.tokens},
                             {"loss", r.loss},          {"lr", o.lr * lr_factor(o, rec.step - 1)},
                             {"grad_norm", r.grad_norm}, {"tok_per_s", tokens_here / train_seconds},
                             {"train_seconds", rec.seconds}};
    if (r.router_accuracy >= 0) {
      record["router_accuracy"] = r.router_accuracy;
      record["predictor_accuracy"] = r.predictor_accuracy;
    }
    if (val_examples && o.val_every > 0 && (rec.step % o.val_every == 0 || last)) {
      const auto v = evaluate(run.model, *val_examples, o.val_windows, o.batch, o.autocast_bf16, group);
      rec.last_val_loss = v.loss;
      val_accuracy = v.accuracy;
      record["val_loss"] = v.loss;
      record["val_accuracy"] = v.accuracy;
    }
    if (metrics) metrics->append(record);

    const double wall = std::chrono::duration<double>(clock::now() - t0).count();
    if (lead && !limits.quiet)
      fmt::print(stderr, "step {:>6}/{} | loss {:.4f} | val {} | lr {:.2e} | grad {:.3f} | {:.0f} tok/s | ETA {}\n",
                 rec.step, o.steps, r.loss,
                 rec.last_val_loss < 0 ? std::string("-")
                 : val_accuracy < 0    ? fmt::format("{:.4f}", rec.last_val_loss)
                                       : fmt::format("{:.4f} (acc {:.1f}%)", rec.last_val_loss, 100 * val_accuracy),
                 o.lr * lr_factor(o, rec.step - 1), r.grad_norm, tokens_here / train_seconds,
                 duration(wall / static_cast<double>(steps_here) * static_cast<double>(o.steps - rec.step)));
    bool stop = g_stop_requested || (limits.stop_after > 0 && steps_here >= limits.stop_after) ||
                (limits.max_seconds > 0 && wall >= limits.max_seconds);
    // Every rank stops at the same step, or the others would wait for it in the next collective.
    if (group) stop = group->all_reduce_sum(stop ? 1.0 : 0.0) > 0;
    if (last || stop || (o.checkpoint_every > 0 && rec.step % o.checkpoint_every == 0)) save();
    if (stop) {
      summary.interrupted = g_stop_requested;
      if (lead)
        fmt::print(stderr, "infini train: stopped at step {} of {}; continue with 'infini train --resume {}'\n",
                   rec.step, o.steps, run.out);
      break;
    }
  }
  summary.step = rec.step;
  summary.last_val_loss = rec.last_val_loss;
  summary.tokens_per_second = train_seconds > 0 ? tokens_here / train_seconds : 0;
  return summary;
}

}  // namespace

AdamW make_optimizer(InfiniTransformer& model, const TrainOptions& o) {
  ParamGroup matrices{"matrices", {}, {}, o.lr, o.weight_decay};
  ParamGroup norms{"norms", {}, {}, o.lr, 0.0};
  ParamGroup gates{"gates", {}, {}, o.lr * o.gate_lr_mult, 0.0};
  for (const auto& item : model->named_parameters()) {
    // The per-head logits (the memory gate, and the key shift where there is one) share the gates' rate.
    const bool per_head = ends_with(item.key(), ".gate") || ends_with(item.key(), ".key_shift");
    // The qk_conv taps start at the identity, as norm weights start at 1: no decay toward 0.
    const bool taps = ends_with(item.key(), ".q_conv") || ends_with(item.key(), ".k_conv");
    auto& group = per_head ? gates : item.value().dim() >= 2 && !taps ? matrices : norms;
    group.params.push_back(item.key());
    group.tensors.push_back(item.value());
  }
  std::vector<ParamGroup> groups;
  for (auto* g : {&matrices, &norms, &gates})
    if (!g->tensors.empty()) groups.push_back(std::move(*g));
  return AdamW(std::move(groups));
}

namespace {

// The first position any row of `targets` (B, n) scores, or n - 1 when none does (a chunk still read
// for later ones): the model computes logits from there on only.
int64_t first_scored(const torch::Tensor& targets) {
  const auto scored = targets.ne(data::kIgnoreTarget).any(0).nonzero();  // (k, 1)
  const auto n = targets.size(1);
  return scored.size(0) > 0 ? std::min(scored[0][0].item<int64_t>(), n - 1) : n - 1;
}

// The forward pass over `inputs` (whole segments from a segment boundary, but for the last), one
// segment at a time when `weights` (B, S) are given, so that each segment's memory write gets its
// weight. The logits are those from `logits_from` on. The routed blocks' statistics of each pass go
// to `routing` (with their gradients).
InfiniTransformerImpl::Output forward_weighted(InfiniTransformer& model, const torch::Tensor& inputs,  // (B, n)
                                               const torch::Tensor& weights, ModelState state,
                                               std::vector<RoutingStats>& routing, int64_t logits_from) {
  if (!weights.defined()) {
    auto out = model->forward(inputs, std::move(state), logits_from);
    routing.push_back(out.routing);
    return out;
  }
  const auto L = model->config().segment_len, n = inputs.size(1);
  std::vector<torch::Tensor> logits;
  for (int64_t offset = 0; offset < n; offset += L) {
    const auto length = std::min(L, n - offset);
    state.weigh_next_write(weights.select(1, offset / L));
    auto out = model->forward(inputs.narrow(1, offset, length), std::move(state),
                              std::clamp<int64_t>(logits_from - offset, 0, length));
    logits.push_back(out.logits);
    routing.push_back(out.routing);
    state = std::move(out.state);
  }
  return {torch::cat(logits, 1), std::move(state), {}};
}

}  // namespace

ThreadTuner training_thread_tuner() {
  return ThreadTuner(at::get_num_threads(), {/*probe_rounds=*/1, /*probe_seconds=*/0, /*settle_rounds=*/0,
                                             /*settle_seconds=*/0, /*first_period=*/1.0, /*max_period=*/60.0,
                                             thread_tuning()});
}

StepResult train_step(InfiniTransformer& model, AdamW& optimizer, const std::vector<data::Batch>& micro_batches,
                      const TrainOptions& o, int64_t step, dist::ProcessGroup* group) {
  const auto& c = model->config();
  int64_t targets_total = 0;
  int64_t inputs_total = 0;
  for (const auto& b : micro_batches) targets_total += b.target_tokens, inputs_total += b.input_tokens;
  // Normalised by the targets of every rank, so that masked padding weighs nothing anywhere and the
  // summed gradients are those of one big batch.
  if (group) {
    targets_total = static_cast<int64_t>(group->all_reduce_sum(static_cast<double>(targets_total)));
    inputs_total = static_cast<int64_t>(group->all_reduce_sum(static_cast<double>(inputs_total)));
  }
  if (targets_total == 0) throw Error(fmt::format("step {}: the batch has no target tokens", step + 1));
  const auto norm = static_cast<double>(targets_total);
  namespace F = torch::nn::functional;
  const auto ce = F::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(data::kIgnoreTarget);

  // Routed blocks add their auxiliary losses, as means over every routing decision of the step.
  double decisions_total = 0;
  for (const auto& b : micro_batches) decisions_total += static_cast<double>(b.inputs.numel() * c.routed_blocks());
  if (group && c.routed_blocks() > 0) decisions_total = group->all_reduce_sum(decisions_total);

  optimizer.zero_grad();
  double loss_sum = 0;
  RoutingStats routing;
  for (const auto& b : micro_batches) {
    const auto W = b.inputs.size(1);
    const auto chunk = o.bptt_segments > 0 ? o.bptt_segments * c.segment_len : W;
    auto state = model->initial_state(b.inputs.size(0));
    for (int64_t offset = 0; offset < W; offset += chunk) {
      const auto n = std::min(chunk, W - offset);
      const auto targets = b.targets.narrow(1, offset, n);  // (B, n)
      // Nothing after this chunk is scored (trailing padding): no need to read it. A chunk with no
      // targets of its own is still read when later ones have some (passkey: the key is far back).
      if (!b.targets.narrow(1, offset, W - offset).ne(data::kIgnoreTarget).any().item<bool>()) break;
      torch::Tensor loss, aux;
      ModelState next;
      {
        compat::CpuAutocastBf16 autocast(o.autocast_bf16);
        // Chunks start at segment boundaries (chunk is a whole number of segments).
        const auto weights = b.write_weights.defined()
                                 ? b.write_weights.narrow(1, offset / c.segment_len, (n + c.segment_len - 1) / c.segment_len)
                                 : torch::Tensor();  // (B, segments of the chunk)
        std::vector<RoutingStats> passes;
        // Before the first scored position the model's last block computes only what its memory needs.
        const auto from = first_scored(targets);
        auto out = forward_weighted(model, b.inputs.narrow(1, offset, n), weights, std::move(state), passes, from);
        loss = F::cross_entropy(out.logits.reshape({-1, c.vocab_size}).to(torch::kFloat32),
                                targets.narrow(1, from, n - from).reshape({-1}), ce);
        next = std::move(out.state);
        for (const auto& pass : passes) {
          routing.merge(pass);
          const auto a = pass.aux_loss(c, decisions_total);
          if (a.defined()) aux = aux.defined() ? aux + a : a;
        }
      }
      // Scaled so the gradient is that of the mean over every target token of the step.
      (aux.defined() ? loss / norm + aux : loss / norm).backward();
      loss_sum += loss.item<double>();
      state = std::move(next);
      state.detach();  // truncated BPTT: the next chunk's gradient stops here
    }
  }
  if (group) {
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);  // unused here, maybe not elsewhere
      grads.push_back(p.grad());
    }
    group->all_reduce_sum(grads);
    loss_sum = group->all_reduce_sum(loss_sum);
  }
  const double loss = loss_sum / norm;
  if (!std::isfinite(loss))
    throw Error(fmt::format("step {}: the loss is {}; stopped before the weights changed "
                            "(lower --lr or check the data)", step + 1, loss));
  const double grad_norm =
      torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip > 0 ? o.grad_clip : 1e30);
  if (!std::isfinite(grad_norm))
    throw Error(fmt::format("step {}: the gradient norm is {}; stopped before the weights changed "
                            "(lower --lr or check the data)", step + 1, grad_norm));
  optimizer.step(lr_factor(o, step));
  StepResult result{loss, grad_norm, targets_total, inputs_total};
  if (routing.router_agree.defined() && routing.decisions > 0) {
    const auto decisions = static_cast<double>(routing.decisions);
    result.router_accuracy = routing.router_agree.item<double>() / decisions;
    result.predictor_accuracy = routing.predictor_agree.item<double>() / decisions;
  }
  return result;
}

ValidationResult evaluate(InfiniTransformer& model, const data::ExampleSource& source, int64_t count, int64_t batch,
                          bool autocast_bf16, dist::ProcessGroup* group) {
  torch::NoGradGuard no_grad;
  model->eval();
  namespace F = torch::nn::functional;
  const auto ce = F::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(data::kIgnoreTarget);
  double loss_sum = 0, targets = 0, correct = 0;
  const int64_t rank = group ? group->rank() : 0, world = group ? group->world_size() : 1;
  for (int64_t first = rank * batch; first < count; first += batch * world) {
    const auto b = source.batch(static_cast<uint64_t>(first), std::min(batch, count - first));
    compat::CpuAutocastBf16 autocast(autocast_bf16);
    std::vector<RoutingStats> passes;
    const auto from = first_scored(b.targets);
    const auto out =
        forward_weighted(model, b.inputs, b.write_weights, model->initial_state(b.inputs.size(0)), passes, from);
    const auto logits = out.logits.reshape({-1, model->config().vocab_size}).to(torch::kFloat32);  // (B (W - from), V)
    const auto flat_targets = b.targets.narrow(1, from, b.targets.size(1) - from).reshape({-1});   // (B (W - from))
    loss_sum += F::cross_entropy(logits, flat_targets, ce).item<double>();
    correct += logits.argmax(-1).eq(flat_targets).sum().item<double>();  // padding targets never match
    targets += static_cast<double>(b.target_tokens);
  }
  model->train();
  if (group) {
    loss_sum = group->all_reduce_sum(loss_sum);
    correct = group->all_reduce_sum(correct);
    targets = group->all_reduce_sum(targets);
  }
  return {loss_sum / targets, correct / targets};
}

namespace {

// Refuses a run whose one step cannot fit in memory, before anything is allocated (a --window of
// 100M tokens used to pad batches to 6 GB and then fail inside LibTorch). The estimate is a lower
// bound: the inputs and targets, the logits, 16 activations of width d_model per layer and token
// (measured: about 50), and the weights, gradients and AdamW moments.
void check_step_fits(const ModelConfig& c, const TrainOptions& o) {
  const double available = usable_memory_bytes();
  if (available <= 0) return;
  const double element = c.dtype == torch::kFloat64 ? 8 : 4;
  const double tokens = static_cast<double>(o.batch) * static_cast<double>(o.window + 1);
  const double per_token = 2 * 8 + element * (3 * static_cast<double>(c.vocab_size) +
                                              16 * static_cast<double>(c.n_layers) * static_cast<double>(c.d_model));
  const double needed = tokens * per_token + 4 * element * c.parameter_count();
  if (needed > available)
    throw Error(fmt::format("--batch {} x --window {} on this model needs at least {:.1f} GiB for one training step, "
                            "but this process may use {:.1f} GiB; lower --window or --batch (--grad-accum keeps the "
                            "tokens per step)", o.batch, o.window, needed / (1 << 30), available / (1 << 30)));
}

// A run folder that a run killed before its first checkpoint left behind: no checkpoint, and
// nothing but what such a run writes (its metrics log and temporary files). Starting again in it
// loses nothing.
bool never_checkpointed(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || fs::exists(fs::path(dir) / "checkpoint.safetensors", ec)) return false;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name != "metrics.jsonl" && name.find(".tmp.") == std::string::npos) return false;
  }
  return !ec;
}

}  // namespace

TrainSummary train_new(const RunSpec& spec, const TrainLimits& limits, dist::ProcessGroup* group) {
  std::error_code ec;
  const bool restart = never_checkpointed(spec.out);
  if (fs::exists(spec.out) && !(fs::is_directory(spec.out) && fs::is_empty(spec.out, ec)) && !restart)
    throw Error(fmt::format("{}: already exists and is not empty; continue the run in it with "
                            "'--resume {}', or choose a new --out", spec.out, spec.out));
  Run run;
  run.out = spec.out;
  const bool lm = spec.options.task == "lm";
  if (lm && spec.data.empty()) throw Error("--data is required (or --resume DIR to continue a run)");
  if (!lm && (!spec.data.empty() || !spec.validation.empty()))
    throw Error(fmt::format("--task {} makes its own examples; leave out --data and --validation", spec.options.task));
  InfiniTransformer init{nullptr};
  if (!spec.init.empty()) {
    init = io::load_model(spec.init);
    run.tokenizer = data::load_tokenizer(spec.init);
  } else {
    run.tokenizer = spec.tokenizer.empty() ? data::byte_tokenizer() : data::load_sentencepiece(spec.tokenizer);
  }
  if (lm && spec.options.passkey_min_tokens > 0)
    throw Error("--passkey-min-tokens is for --task passkey; leave it out with --task lm");
  const TrainOptions defaults;
  if (lm && (spec.options.passkey_min_depth != defaults.passkey_min_depth ||
             spec.options.passkey_max_depth != defaults.passkey_max_depth ||
             spec.options.passkey_key_min != defaults.passkey_key_min ||
             spec.options.passkey_key_max != defaults.passkey_key_max ||
             spec.options.passkey_repeat_keys != defaults.passkey_repeat_keys ||
             spec.options.passkey_virtual_tokens != defaults.passkey_virtual_tokens ||
             spec.options.passkey_virtual_min_tokens != defaults.passkey_virtual_min_tokens ||
             spec.options.passkey_lead_bytes != defaults.passkey_lead_bytes))
    throw Error("--passkey-min-depth, --passkey-max-depth, --passkey-key-min, --passkey-key-max, "
                "--passkey-repeat-keys, --passkey-virtual-tokens, "
                "--passkey-virtual-min-tokens and --passkey-lead-bytes are for --task passkey; "
                "leave them out with --task lm");
  spec.options.validate("infini train");
  if (!init.is_empty() && init->config().vocab_size < run.tokenizer->vocab_size())
    throw Error(fmt::format("{}: its tokenizer has {} ids but its config's vocab_size is {}; not a model folder "
                            "'infini train' wrote", spec.init, run.tokenizer->vocab_size(), init->config().vocab_size));
  if (init.is_empty() && spec.config.vocab_size < run.tokenizer->vocab_size())
    throw Error(fmt::format("the config's field 'vocab_size' is {}, but the {} tokenizer has {} ids; raise it "
                            "(or leave --config out to size it from the tokenizer)",
                            spec.config.vocab_size, run.tokenizer->kind(), run.tokenizer->vocab_size()));
  check_step_fits(init.is_empty() ? spec.config : init->config(), spec.options);
  if (lm) run.corpus = open_checked_corpus(spec.data, spec.validation, *run.tokenizer);
  const bool lead = !group || group->rank() == 0;
  if (restart && lead) {
    fmt::print(stderr, "infini train: {} holds a run that stopped before its first checkpoint; starting it again\n",
               spec.out);
    fs::remove(fs::path(spec.out) / "metrics.jsonl", ec);
  }
  if (group) group->barrier();  // every rank has checked the folder before rank 0 fills it
  const bool created = !fs::exists(spec.out);
  if (lead) fs::create_directories(spec.out, ec);
  if (ec) throw Error(fmt::format("{}: cannot create the run folder ({})", spec.out, ec.message()));
  auto& rec = run.record;
  rec.options = spec.options;
  rec.data = spec.data.empty() ? "" : fs::absolute(spec.data).string();
  rec.validation = spec.validation.empty() ? "" : fs::absolute(spec.validation).string();
  rec.train_documents = run.corpus.train.size();
  rec.train_bytes = total_bytes(run.corpus.train);
  rec.validation_documents = run.corpus.validation.size();
  rec.validation_bytes = total_bytes(run.corpus.validation);
  rec.threads = at::get_num_threads();
  rec.world_size = group ? group->world_size() : 1;
  torch::manual_seed(spec.options.seed);
  run.model = init.is_empty() ? InfiniTransformer(spec.config) : init;
  if (!init.is_empty() && lead) fmt::print(stderr, "infini train: starting from the weights of {}\n", spec.init);
  run.optimizer = std::make_unique<AdamW>(make_optimizer(run.model, spec.options));
  try {
    return run_loop(run, limits, group);
  } catch (...) {
    // A run that failed before its first step leaves nothing worth keeping; clearing the folder
    // lets the corrected command run again unchanged.
    if (lead && created && run.record.step == 0) fs::remove_all(spec.out, ec);
    throw;
  }
}

TrainSummary train_resume(const std::string& out, int64_t steps, const TrainLimits& limits,
                          dist::ProcessGroup* group) {
  const auto path = (fs::path(out) / "checkpoint.safetensors").string();
  if (!fs::exists(path))
    throw Error(never_checkpointed(out)
                    ? fmt::format("{}: the run stopped before its first checkpoint, so there is nothing to resume; run "
                                  "its first command again (with --out {}), which starts it over", path, out)
                    : fmt::format("{}: no checkpoint to resume from (start a run with 'infini train --out {}')", path,
                                  out));
  const auto checkpoint = load_checkpoint(path);
  Run run;
  run.out = out;
  run.record = checkpoint.run;
  if (steps > 0 && steps < run.record.step)
    throw Error(fmt::format("--steps {}: the run in {} has already done {} steps; --steps with --resume is the new "
                            "total, so give more than {} to extend it", steps, out, run.record.step, run.record.step));
  if (steps > 0) run.record.options.steps = steps;
  if (run.record.step >= run.record.options.steps)
    throw Error(fmt::format("the run in {} has done all {} of its steps; pass --steps with a larger total to "
                            "extend it", out, run.record.options.steps));
  const int world = group ? group->world_size() : 1;
  if (run.record.world_size != world)
    throw Error(fmt::format("the run in {} was trained by {} process(es); resume it with as many (--nproc {}), "
                            "since each process's share of the examples depends on their number",
                            out, run.record.world_size, run.record.world_size));
  run.tokenizer = data::load_tokenizer(out);
  const auto& r = run.record;
  if (r.options.task == "lm") run.corpus = open_checked_corpus(r.data, r.validation, *run.tokenizer);
  if (r.options.task == "lm" &&
      (run.corpus.train.size() != r.train_documents || total_bytes(run.corpus.train) != r.train_bytes ||
       run.corpus.validation.size() != r.validation_documents ||
       total_bytes(run.corpus.validation) != r.validation_bytes))
    throw Error(fmt::format("{}: the corpus changed since the run started ({} training documents of {} bytes "
                            "then, {} of {} now; validation {} of {} then, {} of {} now); a resumed run would "
                            "draw other windows. Restore the corpus or start a new run",
                            r.data, r.train_documents, r.train_bytes, run.corpus.train.size(),
                            total_bytes(run.corpus.train), r.validation_documents, r.validation_bytes,
                            run.corpus.validation.size(), total_bytes(run.corpus.validation)));
  if (at::get_num_threads() != r.threads)
    fmt::print(stderr, "infini train: warning: the run used {} threads, this resume {}; losses may differ in "
                       "the last bits from an unbroken run (pass --threads {} to match)\n",
               r.threads, at::get_num_threads(), r.threads);
  run.record.threads = at::get_num_threads();
  check_step_fits(checkpoint.config, run.record.options);
  run.model = InfiniTransformer(checkpoint.config);
  run.optimizer = std::make_unique<AdamW>(make_optimizer(run.model, run.record.options));
  restore(checkpoint, path, run.model, *run.optimizer);
  return run_loop(run, limits, group);
}

}  // namespace infini
