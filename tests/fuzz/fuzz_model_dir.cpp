// The whole model folder as `infini generate --model DIR` opens it: io::load_model (config.json and
// model.safetensors), data::load_tokenizer (tokenizer.json, tokenizer.model), a session, then a
// two-token continuation of the prompt "Hi", decoded.
//
// Input: up to four parts joined by "\0PART\0" (fuzz_common.h), in this order: config.json,
// model.safetensors, tokenizer.json, tokenizer.model. A missing part is a missing file.
#include "data/tokenizer.h"
#include "fuzz_common.h"
#include "mutators.h"
#include "infer/generate.h"
#include "infer/session.h"
#include "io/model_dir.h"
#include "infini/error.h"

extern "C" int INFINI_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  infini::fuzz::setup();
  static const char* const kFiles[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model"};
  const auto parts = infini::fuzz::split_parts(data, size);
  for (size_t i = 0; i < std::size(kFiles); ++i) {
    if (i < parts.size()) infini::fuzz::write_scratch(kFiles[i], parts[i]);
    else infini::fuzz::remove_scratch(kFiles[i]);
  }
  const auto& dir = infini::fuzz::scratch_dir();
  try {
    infini::SessionEngine session(infini::io::load_model(dir));
    const auto tokenizer = infini::data::load_tokenizer(dir);
    infini::SampleOptions options;
    options.max_tokens = 2;
    const auto out = infini::generate(session, tokenizer->encode("Hi", "--prompt"), options);
    tokenizer->decode(out);
  } catch (const infini::Error&) {
  }
  return 0;
}

INFINI_FUZZ_MUTATOR(infini::fuzz::mutate_parts(data, size, max_size, seed))
