// The server's memory sessions: each one the state of a text read once, kept on disk under
// --sessions-dir and, for the most recently used ones, in memory.
//
// On disk, per session id: {id}.state, a state file (Session::save, atomic) holding everything
// acknowledged, and {id}.json, its record (atomic): status, tokens and bytes acknowledged. A read
// marks the record "reading" before it starts and "ready" only after the new state file is in
// place, so a server killed mid-read finds "reading" at its next start and reports the session
// "incomplete", still holding what was acknowledged before. Thread-safe; sessions in memory are
// Session::Snapshots, exactly the state's size, the least recently used dropped past the bound.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "infini/session.h"

namespace infini::server {

struct SessionInfo {
  std::string id;
  int64_t created = 0;           // unix seconds
  std::string status = "ready";  // ready | reading | incomplete
  int64_t tokens = 0;            // read and acknowledged
  int64_t bytes = 0;             // of text, read and acknowledged
  std::string note;              // why the session is incomplete
  // While a read runs (not kept on disk):
  int64_t read_bytes_received = 0;
  int64_t read_bytes_total = -1;  // the upload's Content-Length, -1 when not known
  int64_t read_tokens = 0;        // read so far by this read
  bool resident = false;

  nlohmann::json to_json(int64_t state_bytes) const;
};

class SessionStore {
 public:
  // Opens (creates) `dir` and lists the sessions recorded there; records of reads that were
  // running when a server stopped become "incomplete". Damaged records are skipped with a warning
  // on stderr, and their files are left alone.
  SessionStore(std::string dir, size_t max_resident);

  SessionInfo create();
  std::optional<SessionInfo> info(const std::string& id) const;
  std::vector<SessionInfo> list() const;  // oldest first
  // Removes its files: false when there is no such session; ApiError 409 while it reads.
  bool remove(const std::string& id);

  // A read: begin_read marks the session "reading" on disk (ApiError 404, or 409 when another read
  // runs); exactly one of finish_read (the new state is on disk) or abort_read follows.
  SessionInfo begin_read(const std::string& id, int64_t bytes_total);
  void progress(const std::string& id, int64_t bytes_received, int64_t tokens_read);
  // `state` is none while the session has read no token.
  void finish_read(const std::string& id, const std::optional<Session::Snapshot>& state, int64_t tokens,
                   int64_t bytes_read);
  void abort_read(const std::string& id, const std::string& why);

  // The path its state file has (or would have).
  std::string state_path(const std::string& id) const;
  // The session's state in memory, if resident; otherwise the caller loads state_path() and hands
  // it to make_resident(). Marks it most recently used.
  std::optional<Session::Snapshot> resident(const std::string& id);
  void make_resident(const std::string& id, const Session::Snapshot& state);
  size_t resident_count() const;

 private:
  struct Entry {
    SessionInfo info;
    std::optional<Session::Snapshot> state;
    uint64_t last_used = 0;
  };
  std::string record_path(const std::string& id) const;
  void write_record(const SessionInfo& info) const;
  void touch(Entry& e);
  void evict_past_bound();  // with mutex_ held
  Entry& entry(const std::string& id);  // ApiError 404

  std::string dir_;
  size_t max_resident_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> sessions_;
  uint64_t clock_ = 0;
};

}  // namespace infini::server
