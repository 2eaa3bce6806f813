// What an HTTP thread hands the worker (server/worker.h) and waits on: a completion, whose text
// the worker pushes piece by piece, and a read, whose bytes the HTTP thread pushes as they arrive.
// Each is shared by the two threads and guarded by its own mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "server/api_error.h"
#include "server/requests.h"
#include "server/session_store.h"

namespace infini::server {

class CompletionJob {
 public:
  CompletionJob(CompletionRequest request, std::chrono::steady_clock::time_point deadline)
      : request(std::move(request)), deadline(deadline) {}
  const CompletionRequest request;
  const std::chrono::steady_clock::time_point deadline;

  // --- HTTP side
  // Waits up to `wait` for the end. Returns the text that arrived meanwhile (may be empty) and sets
  // `finished` once everything has been taken.
  std::string take(std::chrono::milliseconds wait, bool& finished);
  // Waits until the worker has read the prompt (or failed to): the error, if it failed.
  std::optional<ApiError> wait_started();
  void cancel();  // the client went away: the worker drops the generation at its next step
  // Once finished: the error, if it failed, and the counts.
  std::optional<ApiError> error() const;
  std::string finish_reason() const;
  int64_t prompt_tokens() const;
  int64_t completion_tokens() const;

  // --- worker side
  bool cancelled() const;
  void started(int64_t prompt_tokens);
  void push(const std::string& text);
  void finish(const std::string& reason, int64_t completion_tokens);
  void fail(const ApiError& error);

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::string text_;  // pushed, not yet taken
  bool started_ = false, finished_ = false, cancelled_ = false;
  std::optional<ApiError> error_;
  std::string finish_reason_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
};

class ReadJob {
 public:
  // `wake` tells the worker that there is something to take.
  ReadJob(std::string session_id, size_t max_pending, std::function<void()> wake)
      : session_id(std::move(session_id)), max_pending_(max_pending), wake_(std::move(wake)) {}
  const std::string session_id;

  // --- HTTP side
  // Hands over received bytes; blocks while more than max_pending wait for the worker. False once
  // the read has failed: stop sending.
  bool push(const char* data, size_t size);
  void end_input();
  void abort(const std::string& why);  // the upload was cut off
  // Waits until the read has been applied and acknowledged, or has failed; the session's record
  // after it, or the error.
  SessionInfo wait();

  // --- worker side
  struct Taken {
    std::string bytes;
    bool input_ended = false;  // and these are the last bytes
    std::optional<std::string> aborted;
    int64_t bytes_received = 0;
  };
  Taken take(size_t most);
  bool has_work() const;  // bytes waiting, the input's end or an abort not yet taken
  void done(const SessionInfo& info);
  void fail(const ApiError& error);

 private:
  const size_t max_pending_;
  const std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::string pending_;
  int64_t received_ = 0;
  bool input_ended_ = false, end_taken_ = false, finished_ = false;
  std::optional<std::string> aborted_;
  std::optional<ApiError> error_;
  SessionInfo result_;
};

}  // namespace infini::server
