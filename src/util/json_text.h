// JSON from files and headers a user may have downloaded: parsed with bounded nesting, and quoted
// in error messages at bounded length.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace infini {

// Real configs, tokenizer files and safetensors headers nest a few levels. Deeper input is refused
// before parsing: printing, copying or comparing a json value recurses once per level, so 100,000
// levels of '[' would overflow the stack.
constexpr int kMaxJsonDepth = 64;

// Parses `text`; `origin` (a file, or a file and field) names it in errors. Throws infini::Error for
// invalid JSON and for nesting deeper than kMaxJsonDepth.
nlohmann::json parse_json(const std::string& text, const std::string& origin);

// `value` as JSON text for an error message, cut to about `max_chars` characters.
std::string quote_json(const nlohmann::json& value, size_t max_chars = 80);

}  // namespace infini
