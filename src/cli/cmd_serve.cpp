#include "cli/commands.h"
#include "server/http_server.h"

namespace infini::cli {

Runner add_serve(CLI::App& app) {
  struct Flags {
    std::string model;
    server::ServeOptions serve;
  };
  auto f = std::make_shared<Flags>();
  auto& o = f->serve;
  auto* sub = app.add_subcommand("serve", "serve a model over HTTP: OpenAI-style completions and memory sessions "
                                          "(docs/SERVING.md)");
  sub->add_option("--model", f->model, "model folder")->required();
  sub->add_option("--host", o.host, "address to listen on (0.0.0.0: every interface; then set --api-key)");
  sub->add_option("--port", o.port, "port to listen on (0: any free one, printed on stderr)")->check(CLI::Range(0, 65535));
  sub->add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' on every /v1 route (empty: none)")
      ->envname("INFINI_API_KEY");
  sub->add_option("--sessions-dir", o.sessions_dir, "folder for the sessions' state files and records (created)");
  sub->add_option("--max-resident-sessions", o.max_resident_sessions,
                  "sessions kept in memory; the least recently used others wait on disk")
      ->check(at_least(1));
  sub->add_option("--parallel", o.worker.parallel, "completions decoded together; more wait in a queue")
      ->check(at_least(1));
  sub->add_option("--max-queued", o.worker.max_queued, "completions that may wait; more get 503")->check(at_least(1));
  sub->add_option("--max-tokens", o.limits.max_tokens, "the most tokens one completion may ask for")
      ->check(at_least(1));
  sub->add_option("--max-prompt-bytes", o.limits.max_prompt_bytes, "the longest prompt, in bytes (read long texts into a session)")
      ->check(at_least(1));
  sub->add_option("--max-body-bytes", o.max_body_bytes, "the largest JSON request body")->check(at_least(1024));
  sub->add_option("--max-upload-bytes", o.max_upload_bytes, "the largest raw text upload into a session")
      ->check(at_least(1));
  sub->add_option("--request-timeout", o.worker.request_timeout,
                  "seconds a completion may take, queue included; then it ends with an error")
      ->check(at_least(1))
      ->default_str(std::to_string(o.worker.request_timeout.count()));  // CLI11 shows no default of a duration
  sub->add_option("--read-timeout", o.read_timeout_s, "seconds a client may stay silent while sending or receiving")
      ->check(at_least(1));
  sub->add_option("--http-threads", o.http_threads, "connections served at once (each stream holds one)")
      ->check(at_least(2));
  add_threads_flag(*sub, o.worker.threads);
  return [f]() { return server::serve(Model::load(f->model), f->serve); };
}

}  // namespace infini::cli
