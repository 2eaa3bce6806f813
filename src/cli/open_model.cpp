#include "cli/open_model.h"

#include "infini/runtime.h"

namespace infini::cli {

OpenedModel open_model(const std::string& dir, const std::string& state_file, int threads) {
  set_threads(threads);
  auto model = Model::load(dir);
  Session session(model);
  if (!state_file.empty()) session.load(state_file);
  return {model, std::move(session)};
}

}  // namespace infini::cli
