// Shared by the libFuzzer targets in this folder (docs/RELIABILITY.md).
//
// Each target defines INFINI_FUZZ_ENTRY, which is LLVMFuzzerTestOneInput in a fuzz build; fuzz_replay
// compiles every target into one program with the entry renamed to infini_fuzz_<target>.
//
// What counts as a finding: a target catches infini::Error (a refused input, as the CLI would report
// it) and nothing else. Any other exception (c10::Error, std::bad_alloc, nlohmann::json exceptions,
// std::filesystem_error, ...) escapes, std::terminate aborts, and libFuzzer records the input; so do
// sanitizer reports, timeouts (-timeout) and allocations past -rss_limit_mb / -malloc_limit_mb.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "infini/config.h"
#include "model/transformer.h"
#include "train/adamw.h"

#ifndef INFINI_FUZZ_ENTRY
#define INFINI_FUZZ_ENTRY LLVMFuzzerTestOneInput
#else
#define INFINI_FUZZ_REPLAY 1  // compiled into fuzz_replay: no libFuzzer hooks
#endif

namespace infini::fuzz {

// Once per process: one intra-op thread and fixed thread counts (no timing-dependent paths), so a
// run is a function of its input.
void setup();

// A folder of this process's own (under the system temp folder, named after the pid), removed at
// exit; targets that test file loaders write their input there.
const std::string& scratch_dir();
// Writes `bytes` to scratch_dir()/name and returns the path.
std::string write_scratch(const std::string& name, std::string_view bytes);
void remove_scratch(const std::string& name);

// Several files in one input (fuzz_model_dir, fuzz_tokenizer): the parts are joined by kPartMarker,
// "\0PART\0", which valid JSON text never contains. No marker: one part. A part may be empty; a
// missing part (fewer markers than files) means a missing file.
inline constexpr std::string_view kPartMarker{"\0PART\0", 6};
std::vector<std::string> split_parts(const uint8_t* data, size_t size);
std::string join_parts(const std::vector<std::string>& parts);

// A two-layer model of a few thousand parameters, four-token segments.
ModelConfig tiny_config(int64_t vocab, MemoryMode memory);

// AdamW over every parameter of `model`, in one group: restoring a checkpoint reads the moments by
// parameter name, whatever the groups (train/trainer.cpp's make_optimizer splits them by kind, which
// only sets their rates).
AdamW optimizer_for(InfiniTransformer& model);

// The fixed tiny models of fuzz_state: the first input byte picks one (modulo the count).
// 0: infini-delta, qk_conv 3, every second block routed; 1: xl, every second block routed;
// 2: infini-linear with memory_key_shift, dense.
std::vector<ModelConfig> state_configs();

}  // namespace infini::fuzz
