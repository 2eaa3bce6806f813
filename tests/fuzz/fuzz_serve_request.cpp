// `infini serve`'s handling of what clients and its own folder hand it (src/server): the first byte
// picks what the rest is, as the server would receive it:
//   0  a POST /v1/completions body         2  a POST /v1/sessions/{id}/append JSON body
//   1  a POST /v1/sessions JSON body       3  "Authorization header\nkey", and a session id
//   4  a session record ({id}.json) in --sessions-dir, opened as the server does at its start
// Refusals are ApiError (an HTTP error the client gets) or infini::Error; anything else escapes. A
// completion request that is accepted must be within the limits the server relies on.
#include <filesystem>

#include "fuzz_common.h"
#include "infini/error.h"
#include "server/requests.h"
#include "server/session_store.h"

namespace {

void check_accepted(const infini::server::CompletionRequest& r, const infini::server::Limits& limits) {
  const auto& s = r.sample;
  bool ok = s.max_tokens >= 0 && s.max_tokens <= limits.max_tokens && s.temperature >= 0 && s.temperature <= 2 &&
            s.top_p > 0 && s.top_p <= 1 && s.top_k >= 0 && s.repetition_penalty > 0 && s.stop.size() <= 4 &&
            r.prompt.size() <= limits.max_prompt_bytes && (!r.session || infini::server::is_session_id(*r.session));
  for (const auto& stop : s.stop) ok = ok && !stop.empty() && stop.size() <= 256;
  if (!ok) std::abort();
}

}  // namespace

extern "C" int INFINI_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  namespace server = infini::server;
  infini::fuzz::setup();
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 5) {
      case 0: {
        server::Limits limits;
        limits.max_tokens = 512;
        limits.max_prompt_bytes = 4096;
        check_accepted(server::parse_completion(server::parse_json_object(rest), limits, 7), limits);
        break;
      }
      case 1:
      case 2: {
        const auto text = server::parse_session_text(server::parse_json_object(rest), data[0] % 5 == 2);
        if (data[0] % 5 == 2 && !text) std::abort();  // required
        break;
      }
      case 3: {
        const auto cut = rest.find('\n');
        const auto header = rest.substr(0, cut);
        const auto key = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
        // A header is accepted for exactly one key.
        if (server::authorized(header, key) != (header == "Bearer " + std::string(key))) std::abort();
        if (server::is_session_id(rest) && rest.size() != 32) std::abort();
        break;
      }
      default: {
        const auto dir = infini::fuzz::scratch_dir() + "/sessions";
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        infini::fuzz::write_scratch("sessions/0123456789abcdef0123456789abcdef.json", rest);
        server::SessionStore store(dir, 4);
        for (const auto& info : store.list()) {
          // Whatever it lists is a record it can answer for, and not mid-read.
          if (!store.info(info.id) || info.status == "reading" || info.tokens < 0) std::abort();
        }
        std::filesystem::remove_all(dir);
      }
    }
  } catch (const server::ApiError&) {
  } catch (const infini::Error&) {
  }
  return 0;
}
