// The one thread that runs the model for the server. An OpenMP runtime gives every thread that
// opens a parallel region its own team, so model calls from many HTTP threads would each take
// every core; all of the server's model work goes through this thread instead. Each turn it
//   1. starts queued completions while fewer than --parallel run (a new one joins at any step),
//   2. advances every running completion by one token, in one batched step (next_together); a
//      finished one leaves at once,
//   3. reads one piece of each running read (at most a few thousand tokens, cut at segment ends),
// so a long read never holds up a completion, and the reverse.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "infini/model.h"
#include "infini/session.h"
#include "server/jobs.h"
#include "server/session_store.h"

namespace infini::server {

struct WorkerOptions {
  size_t parallel = 8;         // completions decoded together
  size_t max_queued = 256;     // waiting to start; more get 503
  int threads = 0;             // infini::set_threads, called on the worker thread
  std::chrono::seconds request_timeout{600};
};

class Worker {
 public:
  Worker(Model model, SessionStore& store, WorkerOptions options);
  ~Worker();  // ends running jobs (reads become incomplete) and joins the thread

  // Queues a completion; ApiError 503 when the queue is full.
  std::shared_ptr<CompletionJob> complete(CompletionRequest request);
  // Starts a read into a session (SessionStore::begin_read, so 404 and 409 come from there), whose
  // bytes the caller then pushes into the job.
  std::shared_ptr<ReadJob> read(const std::string& session_id, int64_t bytes_total);

  struct Stats {
    size_t running = 0, queued = 0, reads = 0;
  };
  Stats stats() const;

 private:
  struct Running;
  struct Reading;
  void run();
  bool has_work() const;  // with mutex_ held
  void start(const std::shared_ptr<CompletionJob>& job);
  void step_completions();
  void step_reads();
  // The session's acknowledged state: resident, or loaded from its state file.
  std::unique_ptr<Session> open_session(const std::string& id, int64_t tokens);

  Model model_;
  SessionStore& store_;
  WorkerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::deque<std::shared_ptr<CompletionJob>> queue_;
  std::vector<std::shared_ptr<ReadJob>> new_reads_;
  // The worker thread's own.
  std::vector<std::unique_ptr<Running>> running_;
  std::vector<std::unique_ptr<Reading>> reading_;
  std::atomic<size_t> running_count_{0}, reading_count_{0};
  std::thread thread_;
};

}  // namespace infini::server
