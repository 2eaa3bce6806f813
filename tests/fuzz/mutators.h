// Structure-aware mutations for the libFuzzer targets (not part of fuzz_replay). Byte-level
// mutation rarely keeps a safetensors header consistent while putting 2^62 into a shape, so half of
// the mutations parse the input, change one JSON value (a shape, an offset, a dtype, a config field,
// a field inside a JSON-valued metadata string such as a checkpoint's "config") to a boundary value,
// and write it back; the other half are libFuzzer's own.
#pragma once

#include <cstddef>
#include <cstdint>

namespace infini::fuzz {

// The input is a safetensors file after `skip` bytes that are left as they are (fuzz_state's model byte).
size_t mutate_safetensors(uint8_t* data, size_t size, size_t max_size, unsigned seed, size_t skip = 0);
// The input is JSON text.
size_t mutate_json_text(uint8_t* data, size_t size, size_t max_size, unsigned seed);
// The input is parts joined by kPartMarker (fuzz_common.h); each part is mutated as what it looks
// like (safetensors, JSON or bytes).
size_t mutate_parts(uint8_t* data, size_t size, size_t max_size, unsigned seed);

}  // namespace infini::fuzz

// Defines libFuzzer's custom mutator hook in a fuzz target (nothing in fuzz_replay).
#ifdef INFINI_FUZZ_REPLAY
#define INFINI_FUZZ_MUTATOR(call)
#else
#define INFINI_FUZZ_MUTATOR(call)                                                                     \
  extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) { \
    return call;                                                                                       \
  }
#endif
