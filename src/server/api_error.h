// An error the server answers with, in OpenAI's shape: {"error": {"message", "type", "code"}}.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace infini::server {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status(status), code(std::move(code)) {}
  int status;        // the HTTP status
  std::string code;  // machine-readable: invalid_json, session_not_found, ...

  // OpenAI's error types, by status.
  std::string type() const {
    if (status == 401) return "authentication_error";
    if (status == 404) return "not_found_error";
    if (status == 409) return "conflict_error";
    if (status == 429 || status == 503) return "overloaded_error";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
  }
  nlohmann::json body() const { return {{"error", {{"message", what()}, {"type", type()}, {"code", code}}}}; }
};

}  // namespace infini::server
