// `infini serve`: OpenAI-compatible completions and memory sessions over HTTP (docs/SERVING.md),
// on cpp-httplib. Every model call goes through one Worker thread (server/worker.h); the HTTP
// threads parse, check, wait and stream.
#pragma once

#include <cstdint>
#include <string>

#include "infini/model.h"
#include "server/requests.h"
#include "server/worker.h"

namespace infini::server {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;        // empty: no key needed
  std::string sessions_dir = "infini-sessions";
  size_t max_resident_sessions = 256;
  size_t http_threads = 64;   // connections served at once (a stream holds one)
  uint64_t max_body_bytes = 16 << 20;         // a JSON request
  uint64_t max_upload_bytes = uint64_t{4} << 30;  // a raw text upload into a session
  int read_timeout_s = 60;    // a client that sends nothing for this long is cut off
  Limits limits;
  WorkerOptions worker;
};

// Serves until SIGINT or SIGTERM. Prints the address it listens on to stderr once it does
// ("infini serve: listening on http://HOST:PORT"); port 0 picks a free one.
int serve(const Model& model, const ServeOptions& options);

}  // namespace infini::server
