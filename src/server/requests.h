// The server's requests, parsed and checked before anything acts on them: every field of the wrong
// type, out of range or not supported is an ApiError (400) that names it. Pure functions over the
// request's bytes, so the fuzz target (tests/fuzz/fuzz_serve_request.cpp) drives them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "infini/session.h"
#include "server/api_error.h"

namespace infini::server {

struct CompletionRequest {
  std::string prompt;
  SampleOptions sample;  // max_tokens, temperature, top_p, top_k, repetition_penalty, stop, seed
  bool stream = false;
  std::optional<std::string> session;  // a session id: continue from its memory
};

struct Limits {
  int64_t max_tokens = 2048;     // the most a completion may ask for
  size_t max_prompt_bytes = 1 << 20;
};

// A JSON object, or ApiError 400 (invalid_json) saying where it stopped parsing.
nlohmann::json parse_json_object(std::string_view body);

// POST /v1/completions. Fields follow OpenAI's legacy completions; `top_k`, `repetition_penalty` and
// `session` are ours. Unknown fields are ignored, as OpenAI's clients send some (user, ...).
// `default_seed` is used when the request has no seed.
CompletionRequest parse_completion(const nlohmann::json& body, const Limits& limits, uint64_t default_seed);

// POST /v1/sessions and /v1/sessions/{id}/append with a JSON body: {"text": "..."} (text optional on
// create).
std::optional<std::string> parse_session_text(const nlohmann::json& body, bool required);

// Session ids are 32 lowercase hex digits (128 random bits); anything else is refused before a path
// is made from it.
bool is_session_id(std::string_view id);

// Constant-time comparison of an Authorization header with "Bearer KEY".
bool authorized(std::string_view header, std::string_view key);

}  // namespace infini::server
