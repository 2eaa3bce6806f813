#include "io/model_dir.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "util/error.h"

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

void load_parameters(InfiniTransformer& model, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& origin) {
  torch::NoGradGuard no_grad;
  std::set<std::string> expected;
  for (auto& item : model->named_parameters()) {
    expected.insert(item.key());
    auto it = tensors.find(item.key());
    if (it == tensors.end())
      throw Error(fmt::format("{}: missing tensor '{}'; the file does not match config.json", origin,
                              item.key()));
    if (it->second.sizes() != item.value().sizes())
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], config.json implies [{}]", origin,
                              item.key(), fmt::join(it->second.sizes(), ", "),
                              fmt::join(item.value().sizes(), ", ")));
    item.value().copy_(it->second);
  }
  for (const auto& [name, _] : tensors)
    if (!expected.count(name))
      throw Error(fmt::format("{}: unexpected tensor '{}'; the file does not match config.json", origin, name));
}

InfiniTransformer load_model(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw Error(fmt::format("{}: not a model folder (expected config.json and model.safetensors; "
                            "create one with 'infini train --out {}')", dir, dir));
  const auto config = ModelConfig::from_file((fs::path(dir) / "config.json").string(), /*require_all=*/true);
  InfiniTransformer model(config);
  const auto weights_path = (fs::path(dir) / "model.safetensors").string();
  const auto file = load_safetensors(weights_path);
  load_parameters(model, file.tensors, weights_path);
  return model;
}

}  // namespace infini::io
