// What `generate` and `read` both start with: threads set, a model folder loaded (weights and
// tokenizer) into a session, and optionally a saved state.
#pragma once

#include <string>

#include "infini/model.h"
#include "infini/session.h"

namespace infini::cli {

struct OpenedModel {
  Model model;
  Session session;
};

OpenedModel open_model(const std::string& dir, const std::string& state_file, int threads);

}  // namespace infini::cli
