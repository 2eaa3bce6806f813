// A model folder describes itself (after CTranslate2): config.json (with its format version),
// model.safetensors, whose keys are the module's register_module names, and the tokenizer
// (tokenizer.json, plus tokenizer.model for SentencePiece).
#pragma once

#include <string>

#include "data/tokenizer.h"
#include "model/transformer.h"

namespace infini::io {

// Creates `dir` if needed; each file is replaced atomically.
void save_model(const std::string& dir, InfiniTransformer& model, const data::Tokenizer& tokenizer);
// Loads and checks every tensor's presence and shape; errors say which file and how to fix it.
// The tokenizer is loaded with data::load_tokenizer(dir).
InfiniTransformer load_model(const std::string& dir);

// Checks named tensors against the parameters `config` implies: the same names, shapes and dtype,
// and finite values. Throws infini::Error naming `origin` and the tensor. Allocates nothing.
void check_parameters(const ModelConfig& config, const std::map<std::string, torch::Tensor>& tensors,
                      const std::string& origin);
// Copies named tensors into the model's parameters, after check_parameters.
void load_parameters(InfiniTransformer& model, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& origin);

}  // namespace infini::io
