// Training checkpoints, as `infini train --resume` reads them: train::load_checkpoint, then the
// model its config describes, an optimizer over that model's parameters, and restore() of weights,
// AdamW moments and the RNG state.
#include "fuzz_common.h"
#include "mutators.h"
#include "train/checkpoint.h"
#include "infini/error.h"

extern "C" int INFINI_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  infini::fuzz::setup();
  const auto path = infini::fuzz::write_scratch(
      "checkpoint.safetensors", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const auto checkpoint = infini::load_checkpoint(path);
    infini::InfiniTransformer model(checkpoint.config);
    auto optimizer = infini::fuzz::optimizer_for(model);
    infini::restore(checkpoint, path, model, optimizer);
  } catch (const infini::Error&) {
  }
  return 0;
}

INFINI_FUZZ_MUTATOR(infini::fuzz::mutate_safetensors(data, size, max_size, seed))
