#include "io/model_dir.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "infini/error.h"

namespace infini::io {

namespace fs = std::filesystem;

void save_model(const std::string& dir, InfiniTransformer& model, const data::Tokenizer& tokenizer) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create model folder ({})", dir, ec.message()));
  TensorFile file;
  for (const auto& item : model->named_parameters()) file.tensors[item.key()] = item.value();
  file.metadata["format"] = "infini";
  file.metadata["format_version"] = std::to_string(ModelConfig::kFormatVersion);
  save_safetensors((fs::path(dir) / "model.safetensors").string(), file);
  write_file_atomic((fs::path(dir) / "config.json").string(), model->config().to_json().dump(2) + "\n");
  tokenizer.save(dir);
}

void check_parameters(const ModelConfig& config, const std::map<std::string, torch::Tensor>& tensors,
                      const std::string& origin) {
  const auto expected = config.parameter_shapes();
  for (const auto& [name, shape] : expected) {
    auto it = tensors.find(name);
    if (it == tensors.end())
      throw Error(fmt::format("{}: missing tensor '{}'; the file does not match config.json", origin, name));
    if (it->second.sizes().vec() != shape)
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], config.json implies [{}]", origin, name,
                              fmt::join(it->second.sizes(), ", "), fmt::join(shape, ", ")));
    // Checked, never converted: integer or boolean weights are a damaged or foreign file.
    if (it->second.scalar_type() != config.dtype)
      throw Error(fmt::format("{}: tensor '{}' is stored as {}; config.json's dtype needs {}", origin, name,
                              c10::toString(it->second.scalar_type()), c10::toString(config.dtype)));
    if (!torch::isfinite(it->second).all().item<bool>())
      throw Error(fmt::format("{}: tensor '{}' holds NaN or infinite values; the file is damaged", origin, name));
  }
  for (const auto& [name, _] : tensors)
    if (!expected.count(name))
      throw Error(fmt::format("{}: unexpected tensor '{}'; the file does not match config.json", origin, name));
}

void load_parameters(InfiniTransformer& model, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& origin) {
  check_parameters(model->config(), tensors, origin);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) item.value().copy_(tensors.at(item.key()));
}

InfiniTransformer load_model(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw Error(fmt::format("{}: not a model folder (expected config.json and model.safetensors; "
                            "create one with 'infini train --out {}')", dir, dir));
  const auto config_path = (fs::path(dir) / "config.json").string();
  const auto config = ModelConfig::from_file(config_path, /*require_all=*/true);
  const auto weights_path = (fs::path(dir) / "model.safetensors").string();
  const auto file = load_safetensors(weights_path);
  const auto format = file.metadata.find("format");
  const auto version = file.metadata.find("format_version");
  if (format != file.metadata.end() && format->second != "infini")
    throw Error(fmt::format("{}: metadata 'format' is '{}'; an infini model's weights say 'infini'", weights_path,
                            format->second));
  if (version != file.metadata.end() && version->second != std::to_string(ModelConfig::kFormatVersion))
    throw Error(fmt::format("{}: metadata 'format_version' is '{}'; this build reads version {}. Re-save the "
                            "model with a matching infini, or update infini",
                            weights_path, version->second, ModelConfig::kFormatVersion));
  // Every tensor is checked against what config.json implies (names, shapes, dtypes, finite
  // values) before the model is built, so a config that promises more than the file holds never
  // allocates it.
  check_parameters(config, file.tensors, weights_path);
  InfiniTransformer model(config);
  load_parameters(model, file.tensors, weights_path);
  return model;
}

}  // namespace infini::io
