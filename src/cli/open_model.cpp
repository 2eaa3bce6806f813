#include "cli/open_model.h"

#include "io/model_dir.h"
#include "util/runtime.h"

namespace infini::cli {

OpenedModel open_model(const std::string& dir, const std::string& state_file, int threads) {
  configure_runtime(threads);
  OpenedModel m;
  m.session = std::make_unique<Session>(io::load_model(dir));  // first: its errors say what a model folder is
  m.tokenizer = data::load_tokenizer(dir);
  if (!state_file.empty()) m.session->load(state_file);
  return m;
}

}  // namespace infini::cli
