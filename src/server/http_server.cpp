#include "server/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "infini/error.h"
#include "server/session_store.h"
#include "server/web_page.h"

namespace infini::server {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};
void request_stop(int) { g_stop = true; }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// JSON text; bytes that are not UTF-8 (a byte model may generate any) become U+FFFD.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}
void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, e.body()); }

bool header_says_json(const httplib::Request& req) {
  const auto type = req.get_header_value("Content-Type");
  return type.rfind("application/json", 0) == 0;
}

// The Content-Length a client declared, or -1; ApiError 400 when it is not a number.
int64_t declared_length(const httplib::Request& req) {
  if (!req.has_header("Content-Length")) return -1;
  const auto text = req.get_header_value("Content-Length");
  try {
    size_t used = 0;
    const auto n = std::stoll(text, &used);
    if (used == text.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  throw ApiError(400, "invalid_header", "Content-Length is not a byte count");
}

ApiError too_large(uint64_t max, const char* flag) {
  return ApiError(413, "body_too_large", fmt::format("the request body is larger than {} bytes (the server's {})", max, flag));
}

// A JSON body, read through the content reader so that its size is checked before it is held.
json read_json_body(const httplib::Request& req, const httplib::ContentReader& reader, uint64_t max) {
  if (declared_length(req) > static_cast<int64_t>(max)) throw too_large(max, "--max-body-bytes");
  std::string body;
  bool over = false;
  const bool ok = reader([&](const char* data, size_t size) {
    if (body.size() + size > max) return !(over = true);
    body.append(data, size);
    return true;
  });
  if (over) throw too_large(max, "--max-body-bytes");
  if (!ok) throw ApiError(400, "body_cut_off", "the request body ended before its declared length");
  return parse_json_object(body);
}

struct Context {
  const Model& model;
  const ServeOptions& options;
  SessionStore& store;
  Worker& worker;
  std::string model_name;
  int64_t started;

  json session_json(const SessionInfo& info) const {
    std::error_code ec;
    const auto size = fs::file_size(store.state_path(info.id), ec);
    return info.to_json(ec ? 0 : static_cast<int64_t>(size));
  }

  // Streams a request's raw body into a read of session `id`, at the pace the model reads it.
  SessionInfo read_raw(const std::string& id, const httplib::Request& req, const httplib::ContentReader& reader) {
    const auto declared = declared_length(req);
    const auto max = options.max_upload_bytes;
    if (declared > static_cast<int64_t>(max)) throw too_large(max, "--max-upload-bytes");
    auto job = worker.read(id, declared);
    uint64_t received = 0;
    bool over = false;
    const bool ok = reader([&](const char* data, size_t size) {
      if ((received += size) > max) return !(over = true);
      return job->push(data, size);
    });
    if (over) {
      job->abort("larger than --max-upload-bytes");
      try {
        job->wait();
      } catch (const ApiError&) {
      }
      throw too_large(max, "--max-upload-bytes");
    }
    if (ok) {
      job->end_input();
    } else {
      job->abort(fmt::format("the connection ended after {} bytes", received));
    }
    return job->wait();
  }

  SessionInfo read_text(const std::string& id, const std::string& text) {
    auto job = worker.read(id, static_cast<int64_t>(text.size()));
    constexpr size_t kSlice = 1 << 20;
    for (size_t i = 0; i < text.size(); i += kSlice)
      if (!job->push(text.data() + i, std::min(kSlice, text.size() - i))) break;
    job->end_input();
    return job->wait();
  }

  json completion_json(const std::string& id, const std::string& text, const json& finish_reason) const {
    return {{"id", id},
            {"object", "text_completion"},
            {"created", unix_now()},
            {"model", model_name},
            {"choices", json::array({{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}})}};
  }
};

std::string completion_id() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("cmpl-{:016x}{:08x}", random(), static_cast<uint32_t>(random()));
}

// Runs a handler, turning its ApiError (or any error) into OpenAI's error shape.
template <class F>
void guarded(httplib::Response& res, F&& handler) {
  try {
    handler();
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const std::exception& e) {
    send_error(res, ApiError(500, "internal_error", e.what()));
  }
}

std::string session_id_of(const httplib::Request& req) {
  const auto id = req.matches[1].str();
  if (!is_session_id(id)) throw ApiError(404, "session_not_found", "not a session id: ids are 32 hex digits, from POST /v1/sessions");
  return id;
}

void add_routes(httplib::Server& http, Context& ctx) {
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(web_page().data(), web_page().size(), "text/html; charset=utf-8");
  });
  http.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    const auto stats = ctx.worker.stats();
    send_json(res, 200, {{"status", "ok"},
                         {"model", ctx.model_name},
                         {"sessions", ctx.store.list().size()},
                         {"resident_sessions", ctx.store.resident_count()},
                         {"running", stats.running},
                         {"queued", stats.queued},
                         {"reads", stats.reads}});
  });
  http.Get("/v1/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    const auto& c = ctx.model.config();
    send_json(res, 200, {{"object", "list"},
                         {"data", json::array({{{"id", ctx.model_name},
                                                {"object", "model"},
                                                {"created", ctx.started},
                                                {"owned_by", "infini"},
                                                {"segment_len", c.segment_len},
                                                {"vocab_size", c.vocab_size},
                                                {"parameters", ctx.model.parameter_count()}}})}});
  });

  http.Post("/v1/completions", [&ctx](const httplib::Request& req, httplib::Response& res,
                                       const httplib::ContentReader& reader) {
    guarded(res, [&] {
      const auto body = read_json_body(req, reader, ctx.options.max_body_bytes);
      auto request = parse_completion(body, ctx.options.limits, std::random_device{}());
      const bool stream = request.stream;
      auto job = ctx.worker.complete(std::move(request));
      if (const auto error = job->wait_started()) throw *error;
      const auto id = completion_id();
      if (!stream) {
        std::string text;
        for (bool finished = false; !finished;) text += job->take(std::chrono::milliseconds(1000), finished);
        if (const auto error = job->error()) throw *error;
        auto out = ctx.completion_json(id, text, job->finish_reason());
        out["usage"] = {{"prompt_tokens", job->prompt_tokens()},
                        {"completion_tokens", job->completion_tokens()},
                        {"total_tokens", job->prompt_tokens() + job->completion_tokens()}};
        send_json(res, 200, out);
        return;
      }
      // Server-sent events, one per piece of text, then the finish reason and [DONE].
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [&ctx, job, id](size_t, httplib::DataSink& sink) {
            bool finished = false;
            // Every 20 ms: what was generated meanwhile goes out as one event.
            const auto text = job->take(std::chrono::milliseconds(20), finished);
            if (!sink.is_writable()) return false;
            const auto event = [&](const json& data) {
              const auto line = "data: " + dump(data) + "\n\n";
              return sink.write(line.data(), line.size());
            };
            if (!text.empty() && !event(ctx.completion_json(id, text, nullptr))) return false;
            if (finished) {
              if (const auto error = job->error()) {
                if (!event(error->body())) return false;
              } else if (!event(ctx.completion_json(id, "", job->finish_reason()))) {
                return false;
              }
              const std::string done = "data: [DONE]\n\n";
              if (!sink.write(done.data(), done.size())) return false;
              sink.done();
            }
            return true;
          },
          [job](bool) { job->cancel(); });  // harmless once finished; stops a generation whose client left
    });
  });

  http.Post("/v1/sessions", [&ctx](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
    guarded(res, [&] {
      std::optional<std::string> text;
      const bool json_body = header_says_json(req);
      if (json_body) text = parse_session_text(read_json_body(req, reader, ctx.options.max_body_bytes), false);
      auto info = ctx.store.create();
      if (text) {
        info = ctx.read_text(info.id, *text);
      } else if (!json_body && (declared_length(req) > 0 || req.has_header("Transfer-Encoding"))) {
        info = ctx.read_raw(info.id, req, reader);
      }
      send_json(res, 200, ctx.session_json(info));
    });
  });
  http.Post(R"(/v1/sessions/([^/]+)/append)", [&ctx](const httplib::Request& req, httplib::Response& res,
                                                      const httplib::ContentReader& reader) {
    guarded(res, [&] {
      const auto id = session_id_of(req);
      SessionInfo info;
      if (header_says_json(req)) {
        const auto text = parse_session_text(read_json_body(req, reader, ctx.options.max_body_bytes), true);
        info = ctx.read_text(id, *text);
      } else {
        info = ctx.read_raw(id, req, reader);
      }
      send_json(res, 200, ctx.session_json(info));
    });
  });
  http.Get("/v1/sessions", [&ctx](const httplib::Request&, httplib::Response& res) {
    guarded(res, [&] {
      auto data = json::array();
      for (const auto& info : ctx.store.list()) data.push_back(ctx.session_json(info));
      send_json(res, 200, {{"object", "list"}, {"data", data}});
    });
  });
  http.Get(R"(/v1/sessions/([^/]+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const auto id = session_id_of(req);
      const auto info = ctx.store.info(id);
      if (!info) throw ApiError(404, "session_not_found", fmt::format("no session {}", id));
      send_json(res, 200, ctx.session_json(*info));
    });
  });
  http.Delete(R"(/v1/sessions/([^/]+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const auto id = session_id_of(req);
      if (!ctx.store.remove(id)) throw ApiError(404, "session_not_found", fmt::format("no session {}", id));
      send_json(res, 200, {{"id", id}, {"object", "session.deleted"}, {"deleted", true}});
    });
  });
}

// The model folder's name ("models/passkey-infini-delta/" gives "passkey-infini-delta").
std::string model_name(const Model& model) {
  auto path = fs::path(model.path()).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  const auto name = path.filename().string();
  return name.empty() || name == "." ? "infini" : name;
}

bool known_post_route(const std::string& path) {
  static const std::regex append(R"(/v1/sessions/[^/]+/append)");
  return path == "/v1/completions" || path == "/v1/sessions" || std::regex_match(path, append);
}

}  // namespace

// cpp-httplib listens with a backlog of 5, fixed when Debian's libcpp-httplib was compiled. A burst
// of clients (16 at once in the tests) then overflows the accept queue whenever the accepting thread
// waits for a CPU; the kernel answers with SYN cookies ("Possible SYN flooding" in dmesg) and may
// reset a connection the client took for open. listen() again on the bound socket sets a longer
// queue (Linux caps it at net.core.somaxconn, 4096 on Debian 12). The library keeps the socket
// private, so it is found by its port among this process's listening sockets.
namespace {
void lengthen_listen_queue(int port) {
  constexpr int kBacklog = 1024;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    int listening = 0;
    socklen_t size = sizeof(listening);
    sockaddr_storage address{};
    socklen_t address_size = sizeof(address);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening) continue;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_size) != 0) continue;
    const int bound = address.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port)
                      : address.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port)
                                                      : -1;
    if (bound == port) ::listen(fd, kBacklog);
  }
}
}  // namespace

int serve(const Model& model, const ServeOptions& options) {
  SessionStore store(options.sessions_dir, options.max_resident_sessions);
  Worker worker(model, store, options.worker);
  Context ctx{model, options, store, worker, model_name(model), unix_now()};

  httplib::Server http;
  http.new_task_queue = [n = options.http_threads] { return new httplib::ThreadPool(n); };
  http.set_payload_max_length(std::max(options.max_body_bytes, options.max_upload_bytes));
  http.set_read_timeout(options.read_timeout_s);
  http.set_write_timeout(options.read_timeout_s);
  http.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    // Before any body is read: a body only where a route reads one (and bounds it), and the key.
    const bool has_body = req.has_header("Transfer-Encoding") ||
                          (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
    if (req.method == "POST" && !known_post_route(req.path)) {
      send_error(res, ApiError(404, "not_found", "no such route: see GET /v1/models, /v1/completions, /v1/sessions"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != "POST" && has_body) {
      send_error(res, ApiError(413, "body_not_allowed", fmt::format("{} requests take no body here", req.method)));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!options.api_key.empty() && req.path.rfind("/v1/", 0) == 0 &&
        !authorized(req.get_header_value("Authorization"), options.api_key)) {
      send_error(res, ApiError(401, "invalid_api_key", "this server needs 'Authorization: Bearer KEY' (its --api-key)"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours, already in shape
    const auto message = res.status == 404   ? "no such route: see GET /v1/models, /v1/completions, /v1/sessions"
                         : res.status == 413 ? "the request body is too large"
                         : res.status == 405 ? "method not allowed"
                                             : "the request could not be handled";
    send_error(res, ApiError(res.status, res.status == 404 ? "not_found" : "http_error", message));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, ApiError(500, "internal_error", "the request failed inside the server"));
  });
  add_routes(http, ctx);

  int port = options.port;
  if (port == 0) {
    port = http.bind_to_any_port(options.host);
    if (port < 0) throw Error(fmt::format("serve: cannot listen on {} (--host)", options.host));
  } else if (!http.bind_to_port(options.host, port)) {
    throw Error(fmt::format("serve: cannot listen on {}:{} (--host, --port): in use, or not an address of this machine",
                            options.host, port));
  }
  lengthen_listen_queue(port);
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::thread watcher([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    http.stop();
  });
  fmt::print(stderr, "infini serve: model {} ({} parameters), {} sessions in {}\n", ctx.model_name,
             model.parameter_count(), store.list().size(), options.sessions_dir);
  fmt::print(stderr, "infini serve: listening on http://{}:{}\n", options.host, port);
  const bool ok = http.listen_after_bind();
  g_stop = true;
  watcher.join();
  fmt::print(stderr, "infini serve: stopped\n");
  return ok ? 0 : 1;
}

}  // namespace infini::server
