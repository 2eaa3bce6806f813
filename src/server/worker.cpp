#include "server/worker.h"

#include <algorithm>

#include <fmt/format.h>

#include "infini/error.h"
#include "infini/runtime.h"

namespace infini::server {

namespace {

// Bytes a read takes from its upload per turn, and the most tokens it reads per turn: about a
// tenth of a second of reading on two cores with the reference model, so running completions
// wait at most that long for their next token.
constexpr size_t kBytesPerTurn = 64 << 10;
constexpr int64_t kTokensPerTurn = 2048;
// Bytes an upload may have waiting for the worker before the HTTP thread stops reading the socket.
constexpr size_t kMaxPending = 4 << 20;

ApiError internal(const std::exception& e) { return ApiError(500, "internal_error", e.what()); }

}  // namespace

struct Worker::Running {
  std::shared_ptr<CompletionJob> job;
  std::unique_ptr<Session> session;
  std::optional<Generation> generation;
};

struct Worker::Reading {
  std::shared_ptr<ReadJob> job;
  std::unique_ptr<Session> session;
  StreamEncoder encoder;
  std::vector<int64_t> tokens;  // encoded, not yet read
  int64_t tokens_read = 0;
  int64_t bytes_taken = 0;
  bool input_ended = false;
};

Worker::Worker(Model model, SessionStore& store, WorkerOptions options)
    : model_(std::move(model)), store_(store), options_(options), thread_([this] { run(); }) {}

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<CompletionJob> Worker::complete(CompletionRequest request) {
  auto job = std::make_shared<CompletionJob>(std::move(request), std::chrono::steady_clock::now() + options_.request_timeout);
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.max_queued)
      throw ApiError(503, "overloaded", fmt::format("{} completions are already waiting; try again later", queue_.size()));
    queue_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

std::shared_ptr<ReadJob> Worker::read(const std::string& session_id, int64_t bytes_total) {
  store_.begin_read(session_id, bytes_total);
  auto job = std::make_shared<ReadJob>(session_id, kMaxPending, [this] {
    { std::lock_guard lock(mutex_); }  // the worker is either before its check or waiting
    cv_.notify_all();
  });
  {
    std::lock_guard lock(mutex_);
    new_reads_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

Worker::Stats Worker::stats() const {
  std::lock_guard lock(mutex_);
  return {running_count_.load(), queue_.size(), reading_count_.load() + new_reads_.size()};
}

bool Worker::has_work() const {
  if (stop_ || !new_reads_.empty() || !running_.empty()) return true;
  if (!queue_.empty() && running_.size() < options_.parallel) return true;
  for (const auto& r : reading_)
    if (r->input_ended || r->job->has_work() || !r->tokens.empty()) return true;
  return false;
}

void Worker::run() {
  set_threads(options_.threads);  // OpenMP keeps thread counts per thread: this one runs the model
  for (;;) {
    std::vector<std::shared_ptr<CompletionJob>> admitted;
    std::vector<std::shared_ptr<ReadJob>> reads;
    {
      std::unique_lock lock(mutex_);
      // A read's bytes arrive while we wait: a short timeout also covers a lost wake-up.
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return has_work(); });
      if (stop_) break;
      while (running_.size() + admitted.size() < options_.parallel && !queue_.empty()) {
        admitted.push_back(queue_.front());
        queue_.pop_front();
      }
      reads.swap(new_reads_);
    }
    for (const auto& job : admitted) start(job);
    for (const auto& job : reads) {
      try {
        const auto info = store_.info(job->session_id);
        auto session = open_session(job->session_id, info ? info->tokens : 0);
        reading_.push_back(std::make_unique<Reading>(Reading{job, std::move(session), StreamEncoder(model_.tokenizer())}));
      } catch (const std::exception& e) {
        store_.abort_read(job->session_id, e.what());
        job->fail(internal(e));
      }
    }
    running_count_ = running_.size();
    reading_count_ = reading_.size();
    step_completions();
    step_reads();
    running_count_ = running_.size();
    reading_count_ = reading_.size();
  }
  // Stopping: completions end with an error, reads are cut off.
  const ApiError stopping(503, "shutting_down", "the server is stopping");
  for (auto& r : running_) r->job->fail(stopping);
  for (auto& job : queue_) job->fail(stopping);
  for (auto& r : reading_) {
    store_.abort_read(r->job->session_id, "the server stopped");
    r->job->fail(stopping);
  }
  for (auto& job : new_reads_) {
    store_.abort_read(job->session_id, "the server stopped");
    job->fail(stopping);
  }
}

std::unique_ptr<Session> Worker::open_session(const std::string& id, int64_t tokens) {
  auto session = std::make_unique<Session>(model_);
  if (auto state = store_.resident(id)) {
    session->restore(*state);
  } else if (tokens > 0) {
    session->load(store_.state_path(id));
    store_.make_resident(id, session->snapshot());
  }
  return session;
}

void Worker::start(const std::shared_ptr<CompletionJob>& job) {
  const auto& request = job->request;
  try {
    std::unique_ptr<Session> session;
    if (request.session) {
      const auto info = store_.info(*request.session);
      if (!info) throw ApiError(404, "session_not_found", fmt::format("no session {}", *request.session));
      if (info->status == "reading")
        throw ApiError(409, "session_busy", fmt::format("session {} is reading; ask when its status is ready", info->id));
      if (info->status == "incomplete")
        throw ApiError(409, "session_incomplete", fmt::format("session {}: {}. Append the text again, or delete it", info->id, info->note));
      try {
        session = open_session(info->id, info->tokens);
      } catch (const Error& e) {  // the server's own file, damaged on disk: not the client's fault
        throw ApiError(500, "session_damaged", e.what());
      }
    } else {
      session = std::make_unique<Session>(model_);
    }
    if (request.prompt.empty() && session->position() == 0)
      throw ApiError(400, "invalid_value", "'prompt' is empty and there is no session that has read text: nothing to continue");
    const auto before = session->position();
    auto generation = session->start_generation(request.prompt, request.sample);
    job->started(session->position() - before);
    running_.push_back(std::make_unique<Running>(Running{job, std::move(session), std::move(generation)}));
  } catch (const ApiError& e) {
    job->fail(e);
  } catch (const Error& e) {  // the request's text or options, as the engine checks them
    job->fail(ApiError(400, "invalid_value", e.what()));
  } catch (const std::exception& e) {
    job->fail(internal(e));
  }
}

void Worker::step_completions() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& r : running_) {
    if (r->job->cancelled()) {
      r.reset();
    } else if (now > r->job->deadline) {
      r->job->fail(ApiError(504, "timeout", fmt::format("the completion ran past the server's --request-timeout ({} s)",
                                                        options_.request_timeout.count())));
      r.reset();
    }
  }
  running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
  if (running_.empty()) return;
  // One batched step for every running completion.
  std::vector<Generation*> generations;
  for (auto& r : running_) generations.push_back(&*r->generation);
  std::vector<std::optional<std::string>> pieces;
  try {
    pieces = next_together(generations);
  } catch (const std::exception& e) {
    for (auto& r : running_) r->job->fail(internal(e));
    running_.clear();
    return;
  }
  for (size_t k = 0; k < running_.size(); ++k) {
    auto& r = running_[k];
    const auto& generation = *r->generation;
    if (pieces[k]) r->job->push(*pieces[k]);
    if (!pieces[k] || generation.ended()) {
      r->job->finish(generation.stopped() ? "stop" : "length", static_cast<int64_t>(generation.tokens().size()));
      r.reset();
    }
  }
  running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
}

void Worker::step_reads() {
  const int64_t L = model_.config().segment_len;
  for (auto& r : reading_) {
    auto& job = *r->job;
    const auto& id = job.session_id;
    try {
      auto taken = job.take(kBytesPerTurn);
      if (taken.aborted) {
        store_.abort_read(id, *taken.aborted);
        job.fail(ApiError(400, "read_cut_off", fmt::format("the upload was cut off ({})", *taken.aborted)));
        r.reset();
        continue;
      }
      r->bytes_taken += static_cast<int64_t>(taken.bytes.size());
      auto more = r->encoder.push(taken.bytes);
      if (taken.input_ended) {
        r->input_ended = true;
        auto rest = r->encoder.finish();
        more.insert(more.end(), rest.begin(), rest.end());
      }
      r->tokens.insert(r->tokens.end(), more.begin(), more.end());
      // Whole segments while more text may come (the fused prefill reads them fastest), everything
      // at the end.
      int64_t n = std::min<int64_t>(static_cast<int64_t>(r->tokens.size()), kTokensPerTurn);
      if (!r->input_ended) {
        const int64_t to_boundary = L - r->session->position() % L;
        n = n < to_boundary ? 0 : to_boundary + (n - to_boundary) / L * L;
      }
      if (n > 0) {
        r->session->feed(std::vector<int64_t>(r->tokens.begin(), r->tokens.begin() + n));
        r->tokens.erase(r->tokens.begin(), r->tokens.begin() + n);
        r->tokens_read += n;
      }
      store_.progress(id, taken.bytes_received, r->tokens_read);
      if (r->input_ended && r->tokens.empty()) {
        auto& session = *r->session;
        std::optional<Session::Snapshot> state;
        if (session.position() > 0) {
          session.save(store_.state_path(id));
          state = session.snapshot();
        }
        store_.finish_read(id, state, session.position(), r->bytes_taken);
        job.done(*store_.info(id));
        r.reset();
      }
    } catch (const ApiError& e) {
      store_.abort_read(id, e.what());
      job.fail(e);
      r.reset();
    } catch (const Error& e) {  // text that is not UTF-8, for a SentencePiece model
      store_.abort_read(id, e.what());
      job.fail(ApiError(400, "invalid_text", e.what()));
      r.reset();
    } catch (const std::exception& e) {
      store_.abort_read(id, e.what());
      job.fail(internal(e));
      r.reset();
    }
  }
  reading_.erase(std::remove(reading_.begin(), reading_.end(), nullptr), reading_.end());
}

}  // namespace infini::server
