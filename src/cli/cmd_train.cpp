#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "data/passkey.h"
#include "data/tokenizer.h"
#include "dist/launcher.h"
#include "dist/process_group.h"
#include "infini/config.h"
#include "train/trainer.h"
#include "infini/error.h"
#include "util/runtime.h"

namespace infini::cli {

Runner add_train(CLI::App& app) {
  struct Flags {
    RunSpec spec;
    std::string config, resume;
    int threads = 0;
    int nproc = 1;
    double dist_timeout = 120;
    TrainLimits limits;
  };
  auto f = std::make_shared<Flags>();
  auto& o = f->spec.options;
  auto* sub = app.add_subcommand("train", "train a model on documents, or resume a run");
  // What the run computes; a checkpoint stores these, so --resume takes none of them.
  const std::vector<CLI::Option*> run_flags = {
      sub->add_option("--config", f->config,
                      "model config JSON (default: the reference config, docs/MODEL.md, sized to the tokenizer)"),
      sub->add_option("--data", f->spec.data,
                      "training text: a file, a folder of .txt/.tex documents, or a PG19-style folder "
                      "with train/ and validation/"),
      sub->add_option("--validation", f->spec.validation,
                      "validation documents (default: the data folder's validation/, if any)"),
      sub->add_option("--tokenizer", f->spec.tokenizer,
                      "SentencePiece .model file (default: bytes; see 'infini tokenizer train')"),
      sub->add_option("--out", f->spec.out,
                      "run folder to create: model folder, checkpoint.safetensors, metrics.jsonl"),
      sub->add_option("--init", f->spec.init,
                      "start from this model folder's weights, config and tokenizer (fine-tuning)"),
      sub->add_option("--task", o.task,
                      "lm: windows of --data; passkey: passkey prompts of --passkey-min-tokens to --window "
                      "tokens, loss on the answer only")
          ->check(CLI::IsMember({"lm", "passkey"})),
      sub->add_option("--passkey-min-tokens", o.passkey_min_tokens,
                      "shortest passkey prompt, in tokens (0: the window)")
          ->check(at_least(0)),
      sub->add_option("--passkey-min-depth", o.passkey_min_depth,
                      "shallowest key line, as a fraction of the filler before it (0: right after the intro)")
          ->check(CLI::Range(0.0, 1.0)),
      sub->add_option("--passkey-max-depth", o.passkey_max_depth,
                      "deepest key line (1: right before the question); keep it small to put the key segments back")
          ->check(CLI::Range(0.0, 1.0)),
      sub->add_option("--passkey-key-min", o.passkey_key_min, "smallest passkey")->check(at_least(0)),
      sub->add_option("--passkey-key-max", o.passkey_key_max,
                      "largest passkey (longer keys: more answer digits whose order the memory must keep)")
          ->check(CLI::Range(int64_t{0}, int64_t{999999999999999})),
      sub->add_option("--passkey-repeat-keys", o.passkey_repeat_keys,
                      "share of keys whose digits come from a pool of 2 or 3, so that what follows a digit "
                      "is told only by the digits before it (44844); the rest uniform")
          ->check(CLI::Range(0.0, 1.0)),
      sub->add_option("--passkey-virtual-tokens", o.passkey_virtual_tokens,
                      "read each passkey prompt as if up to this many tokens long: filler-only segments are "
                      "written into the memory with a weight standing for the filler left out (0: off)")
          ->check(at_least(0)),
      sub->add_option("--passkey-virtual-min-tokens", o.passkey_virtual_min_tokens,
                      "draw those virtual lengths log-uniformly from here to --passkey-virtual-tokens instead of "
                      "from each prompt's own length (0: its own length)")
          ->check(at_least(0)),
      sub->add_option("--passkey-lead-bytes", o.passkey_lead_bytes,
                      "start each training prompt with 0 to N-1 bytes of filler, so that its lines fall at every "
                      "phase of a segment (N: the segment's length in bytes; 0: off; `infini passkey` reads the "
                      "paper's prompt unshifted)")
          ->check(CLI::Range(int64_t{0}, data::kPasskeyLeadBytesMax)),
      sub->add_option("--batch", o.batch, "windows per micro-batch")->check(at_least(1)),
      sub->add_option("--grad-accum", o.grad_accum, "micro-batches per optimisation step")->check(at_least(1)),
      sub->add_option("--window", o.window, "tokens per training example, fed segment by segment")
          ->check(at_least(1)),
      sub->add_option("--bptt-segments", o.bptt_segments,
                      "detach the memory every k segments (0: through the whole window)")
          ->check(at_least(0)),
      sub->add_option("--lr", o.lr, "peak learning rate")->check(positive()),
      sub->add_option("--min-lr-ratio", o.min_lr_ratio, "the cosine ends at lr times this")->check(at_least(0)),
      sub->add_option("--warmup", o.warmup, "warm-up steps")->check(at_least(0)),
      sub->add_option("--weight-decay", o.weight_decay, "AdamW weight decay on matrices")->check(at_least(0)),
      sub->add_option("--gate-lr-mult", o.gate_lr_mult, "learning-rate multiplier for the memory gates (and key shifts)")
          ->check(at_least(0)),
      sub->add_option("--grad-clip", o.grad_clip, "clip the gradient norm (0: off)")->check(at_least(0)),
      sub->add_option("--seed", o.seed, "random seed (initialisation and data order)"),
      sub->add_option("--val-every", o.val_every, "steps between validation losses (0: never)")
          ->check(at_least(0)),
      sub->add_option("--val-windows", o.val_windows, "validation examples (the same ones each time)")
          ->check(at_least(1)),
      sub->add_option("--checkpoint-every", o.checkpoint_every,
                      "steps between checkpoints (0: only at the end)")
          ->check(at_least(0)),
      sub->add_flag("--autocast-bf16", o.autocast_bf16, "bf16 matmuls under CPU autocast (M and z stay fp32)"),
  };
  auto* resume = sub->add_option("--resume", f->resume,
                                 "continue the run in this folder from its checkpoint (same settings)");
  for (auto* flag : run_flags) resume->excludes(flag);
  sub->get_option("--init")->excludes(sub->get_option("--config"))->excludes(sub->get_option("--tokenizer"));
  sub->add_option("--steps", o.steps, "total optimisation steps (with --resume: a new total)")->check(at_least(1));
  sub->add_option("--max-seconds", f->limits.max_seconds,
                  "stop with a checkpoint after this much time (0: no limit)")
      ->check(at_least(0));
  sub->add_option("--stop-after", f->limits.stop_after,
                  "stop with a checkpoint after this many steps of this invocation (0: no limit)")
      ->check(at_least(0));
  sub->add_flag("--quiet", f->limits.quiet, "no per-step progress lines");
  sub->add_option("--nproc", f->nproc,
                  "data-parallel worker processes on this machine (other launchers: set MASTER_ADDR, MASTER_PORT, "
                  "RANK, WORLD_SIZE, LOCAL_RANK)")
      ->check(at_least(1));
  sub->add_option("--dist-timeout", f->dist_timeout,
                  "seconds a worker waits for the others in a collective before failing")
      ->check(positive());
  add_threads_flag(*sub, f->threads);
  auto* steps = sub->get_option("--steps");
  return [f, steps]() {
    const auto topology = dist::topology_from_env();
    if (f->nproc > 1) {
      if (topology.world_size > 1)
        throw Error(fmt::format("--nproc {} inside a worker of {} (WORLD_SIZE is set): start the workers one way",
                                f->nproc, topology.world_size));
      // This process only supervises: the workers run this same command without --nproc.
      std::vector<std::string> args;
      const auto& all = command_line();
      for (size_t i = 0; i < all.size(); ++i) {
        if (all[i] == "--nproc") {
          ++i;
          continue;
        }
        if (all[i].rfind("--nproc=", 0) == 0) continue;
        args.push_back(all[i]);
      }
      return dist::launch_local_workers(f->nproc, args);
    }
    set_threads(f->threads);
    std::unique_ptr<dist::ProcessGroup> group;
    if (topology.world_size > 1)
      group = std::make_unique<dist::ProcessGroup>(
          topology, std::chrono::milliseconds(static_cast<int64_t>(f->dist_timeout * 1000)));
    TrainSummary summary;
    std::string out = f->resume;
    if (!f->resume.empty()) {
      summary = train_resume(f->resume, steps->count() > 0 ? f->spec.options.steps : 0, f->limits, group.get());
    } else {
      if (f->spec.out.empty()) throw Error("--out is required: the run folder to create");
      out = f->spec.out;
      if (f->config.empty()) {
        f->spec.config = ModelConfig{};
        if (!f->spec.tokenizer.empty())
          f->spec.config.vocab_size = data::load_sentencepiece(f->spec.tokenizer)->vocab_size();
      } else {
        f->spec.config = ModelConfig::from_file(f->config);
      }
      summary = train_new(f->spec, f->limits, group.get());
    }
    if (!group || group->rank() == 0)
      fmt::print(stderr, "infini train: at step {}, loss {:.4f} -> {:.4f}{}, {:.0f} tok/s; run folder {}\n",
               summary.step, summary.first_loss, summary.last_loss,
               summary.last_val_loss < 0 ? "" : fmt::format(", validation {:.4f}", summary.last_val_loss),
               summary.tokens_per_second, out);
    return summary.interrupted ? 130 : 0;
  };
}

}  // namespace infini::cli
