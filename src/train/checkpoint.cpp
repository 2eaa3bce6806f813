#include "train/checkpoint.h"

#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "io/model_dir.h"
#include "io/safetensors.h"
#include "infini/error.h"
#include "util/json_text.h"

namespace infini {

namespace {

constexpr int kCheckpointVersion = 1;
const std::string kModelPrefix = "model.";

}  // namespace

// One list of the progress fields serves both directions; the options are their own object.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RunRecord, data, validation, step, examples_drawn, tokens, seconds,
                                   last_val_loss, train_documents, train_bytes, validation_documents,
                                   validation_bytes, threads)

namespace {

nlohmann::json run_to_json(const RunRecord& r) {
  nlohmann::json j = r;
  j["options"] = r.options.to_json();
  j["world_size"] = r.world_size;  // outside the field list: checkpoints from before it have none
  return j;
}

nlohmann::json parse_field(const std::map<std::string, std::string>& meta, const std::string& key,
                           const std::string& origin) {
  const auto it = meta.find(key);
  if (it == meta.end()) throw Error(fmt::format("{}: missing field '{}' in the checkpoint metadata", origin, key));
  return parse_json(it->second, fmt::format("{}: metadata field '{}'", origin, key));
}

}  // namespace

void save_checkpoint(const std::string& path, InfiniTransformer& model, const AdamW& optimizer,
                     const RunRecord& run) {
  io::TensorFile file;
  for (const auto& item : model->named_parameters()) file.tensors[kModelPrefix + item.key()] = item.value();
  for (auto& [name, t] : optimizer.state_tensors()) file.tensors[name] = t;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    file.tensors["rng.torch_cpu"] = gen.get_state();
  }
  file.metadata["format"] = "infini-checkpoint";
  file.metadata["format_version"] = std::to_string(kCheckpointVersion);
  file.metadata["config"] = model->config().to_json().dump();
  file.metadata["run"] = run_to_json(run).dump();
  io::save_safetensors(path, file);
}

Checkpoint load_checkpoint(const std::string& path) {
  auto file = io::load_safetensors(path);
  const auto& meta = file.metadata;
  const auto format = meta.find("format");
  if (format == meta.end() || format->second != "infini-checkpoint")
    throw Error(fmt::format("{}: not an infini training checkpoint (metadata 'format' is missing or wrong)", path));
  const auto version = meta.find("format_version");
  if (version == meta.end() || version->second != std::to_string(kCheckpointVersion))
    throw Error(fmt::format("{}: checkpoint format version '{}'; this build reads {}", path,
                            version == meta.end() ? "missing" : version->second, kCheckpointVersion));
  Checkpoint c;
  c.config = ModelConfig::from_json(parse_field(meta, "config", path), path + " (config)", true);
  const auto run = parse_field(meta, "run", path);
  const auto origin = path + " (run)";
  try {
    run.get_to(c.run);
    c.run.options = TrainOptions::from_json(run.at("options"), origin);
    c.run.world_size = run.value("world_size", 1);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: missing or malformed field ({})", origin, e.what()));
  }
  // restore() builds the model from the config: the weights are checked against it first.
  std::map<std::string, torch::Tensor> weights;
  for (const auto& [name, t] : file.tensors)
    if (name.rfind(kModelPrefix, 0) == 0) weights[name.substr(kModelPrefix.size())] = t;
  io::check_parameters(c.config, weights, path);
  c.tensors = std::move(file.tensors);
  return c;
}

void restore(const Checkpoint& c, const std::string& origin, InfiniTransformer& model, AdamW& optimizer) {
  std::map<std::string, torch::Tensor> weights;
  for (const auto& [name, t] : c.tensors)
    if (name.rfind(kModelPrefix, 0) == 0) weights[name.substr(kModelPrefix.size())] = t;
  io::load_parameters(model, weights, origin);
  optimizer.load_state_tensors(c.tensors, origin);
  const auto rng = c.tensors.find("rng.torch_cpu");
  if (rng == c.tensors.end()) throw Error(fmt::format("{}: missing tensor 'rng.torch_cpu'", origin));
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  const auto current = gen.get_state();
  if (rng->second.scalar_type() != current.scalar_type() || rng->second.sizes() != current.sizes())
    throw Error(fmt::format("{}: tensor 'rng.torch_cpu' is {} of shape [{}]; LibTorch's generator state is {} of "
                            "shape [{}]", origin, c10::toString(rng->second.scalar_type()),
                            fmt::join(rng->second.sizes(), ", "), c10::toString(current.scalar_type()),
                            fmt::join(current.sizes(), ", ")));
  // LibTorch checks the state's contents only when it sets it: try it on a scratch generator first,
  // so that a bad state is our error and leaves the default generator as it was.
  try {
    auto scratch = at::make_generator<at::CPUGeneratorImpl>();
    scratch.set_state(rng->second);
  } catch (const c10::Error&) {
    throw Error(fmt::format("{}: tensor 'rng.torch_cpu' is not a valid generator state; the file is damaged", origin));
  }
  gen.set_state(rng->second);
}

}  // namespace infini
