#include "server/requests.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace infini::server {

namespace {

using nlohmann::json;

// Deeper JSON than any request needs is refused while parsing: printing or walking a value nested
// 100,000 levels deep would recurse that deep.
constexpr int kMaxDepth = 16;

ApiError invalid(const std::string& field, const std::string& what) {
  return ApiError(400, "invalid_value", fmt::format("'{}' {}", field, what));
}

bool absent(const json& body, const char* field) { return !body.contains(field) || body.at(field).is_null(); }

double number(const json& body, const char* field, double fallback, double lo, double hi, bool lo_open = false) {
  if (absent(body, field)) return fallback;
  const auto& v = body.at(field);
  if (!v.is_number()) throw invalid(field, "must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo))
    throw invalid(field, fmt::format("must be in {}{}, {}]", lo_open ? "(" : "[", lo, hi));
  return x;
}

int64_t integer(const json& body, const char* field, int64_t fallback, int64_t lo, int64_t hi) {
  if (absent(body, field)) return fallback;
  const auto& v = body.at(field);
  if (!v.is_number_integer()) throw invalid(field, "must be an integer");
  const bool too_big = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (too_big || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    throw invalid(field, fmt::format("must be between {} and {}", lo, hi));
  return v.get<int64_t>();
}

bool boolean(const json& body, const char* field, bool fallback) {
  if (absent(body, field)) return fallback;
  if (!body.at(field).is_boolean()) throw invalid(field, "must be true or false");
  return body.at(field).get<bool>();
}

// Fields of OpenAI's API that this server does not implement: accepted only at their neutral value.
void refuse_unsupported(const json& body) {
  const auto unsupported = [](const char* field, const char* why) {
    return ApiError(400, "unsupported_value", fmt::format("'{}' is not supported: {}", field, why));
  };
  if (!absent(body, "n") && !(body.at("n").is_number_integer() && body.at("n").get<int64_t>() == 1))
    throw unsupported("n", "one completion per request (n = 1)");
  if (!absent(body, "best_of") && !(body.at("best_of").is_number_integer() && body.at("best_of").get<int64_t>() == 1))
    throw unsupported("best_of", "one completion per request (best_of = 1)");
  if (!absent(body, "echo") && body.at("echo") != false) throw unsupported("echo", "the prompt is not returned");
  if (!absent(body, "logprobs")) throw unsupported("logprobs", "log probabilities are not returned");
  if (!absent(body, "suffix") && body.at("suffix") != "") throw unsupported("suffix", "no insertion mode");
  for (const char* field : {"presence_penalty", "frequency_penalty"})
    if (!absent(body, field) && !(body.at(field).is_number() && body.at(field).get<double>() == 0.0))
      throw unsupported(field, "use repetition_penalty");
  if (!absent(body, "logit_bias") && !(body.at("logit_bias").is_object() && body.at("logit_bias").empty()))
    throw unsupported("logit_bias", "no per-token bias");
}

std::string text_field(const json& v, const std::string& field, size_t max_bytes) {
  if (!v.is_string()) throw invalid(field, "must be a string");
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() > max_bytes)
    throw ApiError(413, "too_long", fmt::format("'{}' is {} bytes; at most {} are accepted", field, s.size(), max_bytes));
  return s;
}

}  // namespace

json parse_json_object(std::string_view body) {
  json parsed;
  try {
    parsed = json::parse(body, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw ApiError(400, "invalid_json", fmt::format("the JSON is nested deeper than {} levels", kMaxDepth));
      return true;
    });
  } catch (const json::parse_error& e) {
    throw ApiError(400, "invalid_json", fmt::format("the body is not valid JSON (at byte {})", e.byte));
  } catch (const json::out_of_range&) {  // a number such as 1e99999 that no double holds
    throw ApiError(400, "invalid_json", "the body holds a number too large for JSON's numbers (a double)");
  }
  if (!parsed.is_object()) throw ApiError(400, "invalid_json", "the body must be a JSON object");
  return parsed;
}

CompletionRequest parse_completion(const json& body, const Limits& limits, uint64_t default_seed) {
  refuse_unsupported(body);
  CompletionRequest r;
  if (!absent(body, "model") && !body.at("model").is_string()) throw invalid("model", "must be a string");
  if (!body.contains("prompt")) throw ApiError(400, "missing_field", "'prompt' is required (it may be \"\" with a session)");
  const auto& prompt = body.at("prompt");
  if (prompt.is_array()) {  // OpenAI's batch form; one prompt per request here
    if (prompt.size() != 1 || !prompt[0].is_string())
      throw invalid("prompt", "must be a string, or an array holding one string");
    r.prompt = text_field(prompt[0], "prompt", limits.max_prompt_bytes);
  } else {
    r.prompt = text_field(prompt, "prompt", limits.max_prompt_bytes);
  }
  auto& s = r.sample;
  s.max_tokens = integer(body, "max_tokens", 16, 0, limits.max_tokens);  // OpenAI's default
  s.temperature = number(body, "temperature", 1.0, 0.0, 2.0);
  s.top_p = number(body, "top_p", 1.0, 0.0, 1.0, /*lo_open=*/true);
  s.top_k = integer(body, "top_k", 0, 0, std::numeric_limits<int32_t>::max());
  s.repetition_penalty = number(body, "repetition_penalty", 1.0, 0.0, 100.0, /*lo_open=*/true);
  s.seed = absent(body, "seed") ? default_seed
                                : static_cast<uint64_t>(integer(body, "seed", 0, 0, std::numeric_limits<int64_t>::max()));
  if (!absent(body, "stop")) {
    const auto& stop = body.at("stop");
    const auto add = [&](const json& v) {
      auto text = text_field(v, "stop", 256);
      if (text.empty()) throw invalid("stop", "may not hold an empty string");
      s.stop.push_back(std::move(text));
    };
    if (stop.is_array()) {
      if (stop.size() > 4) throw invalid("stop", "may hold at most 4 strings");
      for (const auto& v : stop) add(v);
    } else {
      add(stop);
    }
  }
  r.stream = boolean(body, "stream", false);
  if (!absent(body, "stream_options") && !body.at("stream_options").is_object())
    throw invalid("stream_options", "must be an object");
  if (!absent(body, "session")) {
    const auto& id = body.at("session");
    if (!id.is_string() || !is_session_id(id.get_ref<const std::string&>()))
      throw invalid("session", "must be a session id (32 hex digits, from POST /v1/sessions)");
    r.session = id.get<std::string>();
  }
  return r;
}

std::optional<std::string> parse_session_text(const json& body, bool required) {
  if (absent(body, "text")) {
    if (required) throw ApiError(400, "missing_field", "'text' is required: the text to read");
    return std::nullopt;
  }
  return text_field(body.at("text"), "text", std::numeric_limits<size_t>::max());
}

bool is_session_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (const char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool authorized(std::string_view header, std::string_view key) {
  const std::string expected = "Bearer " + std::string(key);
  // Every byte of the longer string is compared, whatever the first difference: the time says
  // nothing about how much of the key a guess got right.
  const size_t n = std::max(header.size(), expected.size());
  unsigned char diff = header.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < header.size() ? static_cast<unsigned char>(header[i]) : 0;
    const unsigned char b = i < expected.size() ? static_cast<unsigned char>(expected[i]) : 0;
    diff |= a ^ b;
  }
  return diff == 0;
}

}  // namespace infini::server
