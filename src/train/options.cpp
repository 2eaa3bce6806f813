#include "train/options.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "data/passkey.h"
#include "infini/error.h"

namespace infini {

nlohmann::json TrainOptions::to_json() const {
  return {{"steps", steps},       {"batch", batch},
          {"grad_accum", grad_accum}, {"window", window},
          {"bptt_segments", bptt_segments}, {"lr", lr},
          {"min_lr_ratio", min_lr_ratio}, {"warmup", warmup},
          {"weight_decay", weight_decay}, {"gate_lr_mult", gate_lr_mult},
          {"grad_clip", grad_clip}, {"seed", seed},
          {"val_every", val_every}, {"val_windows", val_windows},
          {"checkpoint_every", checkpoint_every}, {"autocast_bf16", autocast_bf16},
          {"task", task}, {"passkey_min_tokens", passkey_min_tokens},
          {"passkey_min_depth", passkey_min_depth}, {"passkey_max_depth", passkey_max_depth},
          {"passkey_key_min", passkey_key_min}, {"passkey_key_max", passkey_key_max},
          {"passkey_repeat_keys", passkey_repeat_keys},
          {"passkey_virtual_tokens", passkey_virtual_tokens},
          {"passkey_virtual_min_tokens", passkey_virtual_min_tokens},
          {"passkey_lead_bytes", passkey_lead_bytes}};
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j, const std::string& origin) {
  TrainOptions o;
  if (!j.is_object()) throw Error(fmt::format("{}: training options must be a JSON object", origin));
  const auto reference = o.to_json();
  const std::set<std::string> added_later = {"task", "passkey_min_tokens", "passkey_min_depth",
                                             "passkey_max_depth", "passkey_key_min", "passkey_key_max",
                                             "passkey_repeat_keys",
                                             "passkey_virtual_tokens", "passkey_virtual_min_tokens",
                                             "passkey_lead_bytes"};  // older runs keep the defaults
  for (const auto& item : reference.items())
    if (!j.contains(item.key()) && !added_later.count(item.key()))
      throw Error(fmt::format("{}: missing training field '{}'", origin, item.key()));
  // Runs saved by builds up to commit dfe01e6 record passkey_key_alphabet, since removed (base-62
  // keys gave no help: experiments/passkey-base62-keys); their decimal keys are what every run uses now.
  if (j.contains("passkey_key_alphabet") && j.at("passkey_key_alphabet") != "decimal")
    throw Error(fmt::format("{}: training field 'passkey_key_alphabet' is {}; only decimal keys remain (base-62 keys "
                            "were removed after infini commit dfe01e6: resume this run with that commit's build)",
                            origin, j.at("passkey_key_alphabet").dump()));
  for (const auto& item : j.items())
    if (!reference.contains(item.key()) && item.key() != "passkey_key_alphabet")
      throw Error(fmt::format("{}: unknown training field '{}'", origin, item.key()));
  try {
    j.at("steps").get_to(o.steps);
    j.at("batch").get_to(o.batch);
    j.at("grad_accum").get_to(o.grad_accum);
    j.at("window").get_to(o.window);
    j.at("bptt_segments").get_to(o.bptt_segments);
    j.at("lr").get_to(o.lr);
    j.at("min_lr_ratio").get_to(o.min_lr_ratio);
    j.at("warmup").get_to(o.warmup);
    j.at("weight_decay").get_to(o.weight_decay);
    j.at("gate_lr_mult").get_to(o.gate_lr_mult);
    j.at("grad_clip").get_to(o.grad_clip);
    j.at("seed").get_to(o.seed);
    j.at("val_every").get_to(o.val_every);
    j.at("val_windows").get_to(o.val_windows);
    j.at("checkpoint_every").get_to(o.checkpoint_every);
    j.at("autocast_bf16").get_to(o.autocast_bf16);
    if (j.contains("task")) j.at("task").get_to(o.task);
    if (j.contains("passkey_min_tokens")) j.at("passkey_min_tokens").get_to(o.passkey_min_tokens);
    if (j.contains("passkey_min_depth")) j.at("passkey_min_depth").get_to(o.passkey_min_depth);
    if (j.contains("passkey_max_depth")) j.at("passkey_max_depth").get_to(o.passkey_max_depth);
    if (j.contains("passkey_key_min")) j.at("passkey_key_min").get_to(o.passkey_key_min);
    if (j.contains("passkey_key_max")) j.at("passkey_key_max").get_to(o.passkey_key_max);
    if (j.contains("passkey_repeat_keys")) j.at("passkey_repeat_keys").get_to(o.passkey_repeat_keys);
    if (j.contains("passkey_virtual_tokens")) j.at("passkey_virtual_tokens").get_to(o.passkey_virtual_tokens);
    if (j.contains("passkey_virtual_min_tokens"))
      j.at("passkey_virtual_min_tokens").get_to(o.passkey_virtual_min_tokens);
    if (j.contains("passkey_lead_bytes")) j.at("passkey_lead_bytes").get_to(o.passkey_lead_bytes);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: malformed training options ({})", origin, e.what()));
  }
  o.validate(origin);
  return o;
}

void TrainOptions::validate(const std::string& origin) const {
  if (task != "lm" && task != "passkey")
    throw Error(fmt::format("{}: training field 'task' is '{}'; expected 'lm' or 'passkey'", origin, task));
  if (!(0.0 <= passkey_min_depth && passkey_min_depth <= passkey_max_depth && passkey_max_depth <= 1.0))
    throw Error(fmt::format("{}: passkey depths {} to {} (passkey_min_depth, passkey_max_depth; --passkey-min-depth, "
                            "--passkey-max-depth): expected 0 <= minimum <= maximum <= 1",
                            origin, passkey_min_depth, passkey_max_depth));
  if (passkey_key_min < 0 || passkey_key_max < passkey_key_min)
    throw Error(fmt::format("{}: passkey keys {} to {} (passkey_key_min, passkey_key_max; --passkey-key-min, "
                            "--passkey-key-max): expected 0 <= minimum <= maximum",
                            origin, passkey_key_min, passkey_key_max));
  if (!(0.0 <= passkey_repeat_keys && passkey_repeat_keys <= 1.0))
    throw Error(fmt::format("{}: passkey repeated-digit keys {} (passkey_repeat_keys; --passkey-repeat-keys): expected "
                            "a share from 0 to 1", origin, passkey_repeat_keys));
  if (passkey_virtual_tokens != 0 && passkey_virtual_tokens < window)
    throw Error(fmt::format("{}: passkey virtual length {} (passkey_virtual_tokens; --passkey-virtual-tokens): expected "
                            "0 (off) or at least the window ({})", origin, passkey_virtual_tokens, window));
  if (passkey_virtual_min_tokens < 0 || passkey_virtual_min_tokens > passkey_virtual_tokens)
    throw Error(fmt::format("{}: passkey virtual lengths from {} (passkey_virtual_min_tokens; "
                            "--passkey-virtual-min-tokens): expected at most --passkey-virtual-tokens ({})",
                            origin, passkey_virtual_min_tokens, passkey_virtual_tokens));
  if (passkey_lead_bytes < 0 || passkey_lead_bytes > data::kPasskeyLeadBytesMax)
    throw Error(fmt::format("{}: passkey lead of up to {} bytes (passkey_lead_bytes; --passkey-lead-bytes): expected 0 "
                            "(off) to {}", origin, passkey_lead_bytes, data::kPasskeyLeadBytesMax));
}

double lr_factor(const TrainOptions& o, int64_t step) {
  if (step < o.warmup) return static_cast<double>(step + 1) / static_cast<double>(o.warmup);
  const double span = static_cast<double>(std::max<int64_t>(1, o.steps - o.warmup));
  const double progress = std::min(1.0, static_cast<double>(step - o.warmup) / span);
  return o.min_lr_ratio + (1.0 - o.min_lr_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace infini
