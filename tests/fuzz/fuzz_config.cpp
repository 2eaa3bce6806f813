// ModelConfig from JSON text, as `load_model` reads config.json (ModelConfig::from_file, every field
// required) and `--config` files are read (some fields left at their defaults). A config it accepts
// must be written back by to_json() into one it reads again, equal, with every field required.
#include "fuzz_common.h"
#include "mutators.h"
#include "infini/config.h"
#include "infini/error.h"

extern "C" int INFINI_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  infini::fuzz::setup();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto path = infini::fuzz::write_scratch("config.json", text);
  for (const bool require_all : {false, true}) {
    infini::ModelConfig config;
    try {
      config = infini::ModelConfig::from_file(path, require_all);
    } catch (const infini::Error&) {
      continue;
    }
    const auto written = config.to_json();
    const auto again = infini::ModelConfig::from_json(written, "fuzz (re-written)", /*require_all=*/true);
    if (again.to_json() != written) std::abort();
  }
  return 0;
}

INFINI_FUZZ_MUTATOR(infini::fuzz::mutate_json_text(data, size, max_size, seed))
