#include "util/json_text.h"

#include <fmt/format.h>

#include "infini/error.h"

namespace infini {
namespace {

// The deepest nesting of arrays and objects in `text`, counting brackets outside strings. It stops
// counting past `limit`, and never recurses.
int nesting_depth(const std::string& text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return deepest;
}

}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& origin) {
  if (nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth)
    throw Error(fmt::format("{}: JSON nested deeper than {} levels; not a file infini wrote", origin, kMaxJsonDepth));
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", origin, e.what()));
  }
}

std::string quote_json(const nlohmann::json& value, size_t max_chars) {
  // Replacement of invalid UTF-8, so that quoting a hostile string never throws.
  auto text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

}  // namespace infini
