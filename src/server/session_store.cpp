#include "server/session_store.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "infini/error.h"
#include "io/atomic_file.h"
#include "server/api_error.h"
#include "server/requests.h"

namespace infini::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string random_id() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const auto n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) throw Error("serve: the system's random source (getrandom) failed; cannot make a session id");
    got += static_cast<size_t>(n);
  }
  std::string id;
  for (const auto b : bytes) id += fmt::format("{:02x}", b);
  return id;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A record as written by write_record; anything else is refused with the reason.
SessionInfo parse_record(const std::string& id, const std::string& text) {
  json j;
  try {
    j = json::parse(text, [](int depth, json::parse_event_t, json&) {
      if (depth > 4) throw Error("nested too deep");
      return true;
    });
  } catch (const std::exception&) {
    throw Error("not a JSON record");
  }
  const auto field = [&](const char* name, json::value_t type) -> const json& {
    if (!j.is_object() || !j.contains(name)) throw Error(fmt::format("no '{}'", name));
    const auto& v = j.at(name);
    const bool ok = type == json::value_t::number_integer ? v.is_number_integer() : v.type() == type;
    if (!ok) throw Error(fmt::format("'{}' has the wrong type", name));
    return v;
  };
  SessionInfo info;
  info.id = field("id", json::value_t::string).get<std::string>();
  if (info.id != id) throw Error("its id is not its file name");
  info.created = field("created", json::value_t::number_integer).get<int64_t>();
  info.status = field("status", json::value_t::string).get<std::string>();
  if (info.status != "ready" && info.status != "reading" && info.status != "incomplete")
    throw Error("unknown status");
  info.tokens = field("tokens", json::value_t::number_integer).get<int64_t>();
  info.bytes = field("bytes", json::value_t::number_integer).get<int64_t>();
  if (info.tokens < 0 || info.bytes < 0) throw Error("negative counts");
  if (j.contains("note")) info.note = field("note", json::value_t::string).get<std::string>();
  return info;
}

}  // namespace

json SessionInfo::to_json(int64_t state_bytes) const {
  json j = {{"id", id},         {"object", "session"}, {"created", created}, {"status", status},
            {"tokens", tokens}, {"bytes", bytes},      {"resident", resident}};
  if (state_bytes >= 0) j["state_bytes"] = state_bytes;
  if (!note.empty()) j["note"] = note;
  if (status == "reading")
    j["progress"] = {{"bytes_received", read_bytes_received},
                     {"bytes_total", read_bytes_total < 0 ? json(nullptr) : json(read_bytes_total)},
                     {"tokens_read", read_tokens}};
  return j;
}

SessionStore::SessionStore(std::string dir, size_t max_resident) : dir_(std::move(dir)), max_resident_(max_resident) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (!fs::is_directory(dir_, ec))
    throw Error(fmt::format("--sessions-dir {}: cannot create this folder ({})", dir_, ec ? ec.message() : "not a folder"));
  for (const auto& item : fs::directory_iterator(dir_, ec)) {
    const auto name = item.path().filename().string();
    if (name.size() != 37 || item.path().extension() != ".json" || !is_session_id(name.substr(0, 32))) continue;
    const auto id = name.substr(0, 32);
    try {
      if (fs::file_size(item.path()) > (1 << 16)) throw Error("larger than any record");
      auto info = parse_record(id, io::read_file(item.path().string()));
      if (info.status == "reading") {
        info.status = "incomplete";
        info.note = fmt::format("the server stopped during a read; the session holds the {} tokens read before it", info.tokens);
        write_record(info);
      }
      sessions_[id].info = info;
    } catch (const std::exception& e) {
      fmt::print(stderr, "infini serve: warning: {}: skipped, a damaged session record ({})\n", item.path().string(), e.what());
    }
  }
  if (ec) throw Error(fmt::format("--sessions-dir {}: {}", dir_, ec.message()));
}

std::string SessionStore::record_path(const std::string& id) const { return (fs::path(dir_) / (id + ".json")).string(); }
std::string SessionStore::state_path(const std::string& id) const { return (fs::path(dir_) / (id + ".state")).string(); }

void SessionStore::write_record(const SessionInfo& info) const {
  json j = {{"id", info.id}, {"created", info.created}, {"status", info.status}, {"tokens", info.tokens}, {"bytes", info.bytes}};
  if (!info.note.empty()) j["note"] = info.note;
  io::write_file_atomic(record_path(info.id), j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

void SessionStore::touch(Entry& e) { e.last_used = ++clock_; }

SessionStore::Entry& SessionStore::entry(const std::string& id) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) throw ApiError(404, "session_not_found", fmt::format("no session {}", id));
  return it->second;
}

SessionInfo SessionStore::create() {
  std::lock_guard lock(mutex_);
  SessionInfo info;
  do info.id = random_id();
  while (sessions_.count(info.id));
  info.created = unix_now();
  write_record(info);
  auto& e = sessions_[info.id];
  e.info = info;
  touch(e);
  return info;
}

std::optional<SessionInfo> SessionStore::info(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  auto info = it->second.info;
  info.resident = it->second.state.has_value();
  return info;
}

std::vector<SessionInfo> SessionStore::list() const {
  std::lock_guard lock(mutex_);
  std::vector<SessionInfo> all;
  for (const auto& [id, e] : sessions_) {
    all.push_back(e.info);
    all.back().resident = e.state.has_value();
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.created < b.created; });
  return all;
}

bool SessionStore::remove(const std::string& id) {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  if (it->second.info.status == "reading")
    throw ApiError(409, "session_busy", fmt::format("session {} is reading; delete it when the read has ended", id));
  // The record first: a stop between the two leaves a state file that no record lists.
  std::error_code ec;
  fs::remove(record_path(id), ec);
  fs::remove(state_path(id), ec);
  sessions_.erase(it);
  return true;
}

SessionInfo SessionStore::begin_read(const std::string& id, int64_t bytes_total) {
  std::lock_guard lock(mutex_);
  auto& e = entry(id);
  if (e.info.status == "reading")
    throw ApiError(409, "session_busy", fmt::format("session {} is already reading; wait until its status is ready", id));
  auto info = e.info;
  info.status = "reading";
  info.note.clear();
  write_record(info);
  e.info = info;
  e.info.read_bytes_received = 0;
  e.info.read_bytes_total = bytes_total;
  e.info.read_tokens = 0;
  touch(e);
  return e.info;
}

void SessionStore::progress(const std::string& id, int64_t bytes_received, int64_t tokens_read) {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second.info.read_bytes_received = bytes_received;
  it->second.info.read_tokens = tokens_read;
}

void SessionStore::finish_read(const std::string& id, const std::optional<Session::Snapshot>& state, int64_t tokens,
                               int64_t bytes_read) {
  std::lock_guard lock(mutex_);
  auto& e = entry(id);
  auto info = e.info;
  info.status = "ready";
  info.note.clear();
  info.tokens = tokens;
  info.bytes += bytes_read;
  write_record(info);  // the state file is already in place: this acknowledges it
  e.info = info;
  e.state = state;
  touch(e);
  evict_past_bound();
}

void SessionStore::abort_read(const std::string& id, const std::string& why) {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  auto& e = it->second;
  e.info.status = "incomplete";
  e.info.note = fmt::format("a read was cut off ({}); the session holds the {} tokens read before it", why, e.info.tokens);
  e.state.reset();  // what is in memory may be half-read: the next use loads the acknowledged state
  try {
    write_record(e.info);
  } catch (const std::exception& error) {
    fmt::print(stderr, "infini serve: warning: session {}: {}\n", id, error.what());
  }
}

std::optional<Session::Snapshot> SessionStore::resident(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto& e = entry(id);
  touch(e);
  return e.state;
}

void SessionStore::make_resident(const std::string& id, const Session::Snapshot& state) {
  std::lock_guard lock(mutex_);
  auto& e = entry(id);
  e.state = state;
  touch(e);
  evict_past_bound();
}

void SessionStore::evict_past_bound() {
  // Past the bound, the least recently used wait on disk (their state files are complete).
  size_t count = 0;
  for (const auto& [key, other] : sessions_) count += other.state.has_value();
  while (count > max_resident_) {
    Entry* oldest = nullptr;
    for (auto& [key, other] : sessions_)
      if (other.state && other.info.status != "reading" && (!oldest || other.last_used < oldest->last_used)) oldest = &other;
    if (!oldest) break;
    oldest->state.reset();
    --count;
  }
}

size_t SessionStore::resident_count() const {
  std::lock_guard lock(mutex_);
  size_t count = 0;
  for (const auto& [key, e] : sessions_) count += e.state.has_value();
  return count;
}

}  // namespace infini::server
