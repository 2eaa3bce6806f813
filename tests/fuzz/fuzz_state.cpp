// State files, as `infini generate --state FILE` reads them (SessionEngine::load) and then continues
// (two sampled tokens), against fixed tiny models built here. ModelState::from_tensors also gets the
// file's tensors directly, so the shape checks are reached whatever the file's model identity.
//
// Input: one byte that picks the model (fuzz_common.h, state_configs), then the state file.
#include "fuzz_common.h"
#include "mutators.h"
#include "infer/generate.h"
#include "infer/session.h"
#include "io/safetensors.h"
#include "infini/error.h"

namespace {

// Deterministic weights: the seed files carry these models' identities.
std::vector<infini::InfiniTransformer>& models() {
  static std::vector<infini::InfiniTransformer> all = [] {
    std::vector<infini::InfiniTransformer> m;
    for (const auto& config : infini::fuzz::state_configs()) {
      torch::manual_seed(1234);
      m.emplace_back(config);
    }
    return m;
  }();
  return all;
}

}  // namespace

extern "C" int INFINI_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  infini::fuzz::setup();
  if (size == 0) return 0;
  auto& model = models()[data[0] % models().size()];
  const std::string_view file(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const auto tensors = infini::io::decode_safetensors(std::string(file), "fuzz").tensors;
    infini::ModelState::from_tensors(model->config(), tensors, /*batch=*/1, torch::kCPU, {"last_logits"});
  } catch (const infini::Error&) {
  }
  const auto path = infini::fuzz::write_scratch("state.safetensors", file);
  try {
    infini::SessionEngine session(model);
    session.load(path);
    infini::SampleOptions options;
    options.max_tokens = 2;
    infini::generate(session, {}, options);
  } catch (const infini::Error&) {
  }
  return 0;
}

INFINI_FUZZ_MUTATOR(infini::fuzz::mutate_safetensors(data, size, max_size, seed, /*skip=*/1))
