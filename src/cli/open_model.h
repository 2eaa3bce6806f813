// What `generate` and `read` both start with: threads set, a model folder loaded (weights and
// tokenizer) into a session, and optionally a saved state.
#pragma once

#include <memory>
#include <string>

#include "data/tokenizer.h"
#include "infer/session.h"

namespace infini::cli {

struct OpenedModel {
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::unique_ptr<Session> session;
};

OpenedModel open_model(const std::string& dir, const std::string& state_file, int threads);

}  // namespace infini::cli
