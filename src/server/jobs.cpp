#include "server/jobs.h"

namespace infini::server {

// --- CompletionJob -----------------------------------------------------------------------------------

std::string CompletionJob::take(std::chrono::milliseconds wait, bool& finished) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, wait, [&] { return finished_; });
  std::string text;
  text.swap(text_);
  finished = finished_;
  return text;
}

std::optional<ApiError> CompletionJob::wait_started() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return started_ || finished_; });
  return error_;
}

void CompletionJob::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
}

std::optional<ApiError> CompletionJob::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}
std::string CompletionJob::finish_reason() const {
  std::lock_guard lock(mutex_);
  return finish_reason_;
}
int64_t CompletionJob::prompt_tokens() const {
  std::lock_guard lock(mutex_);
  return prompt_tokens_;
}
int64_t CompletionJob::completion_tokens() const {
  std::lock_guard lock(mutex_);
  return completion_tokens_;
}
bool CompletionJob::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

void CompletionJob::started(int64_t prompt_tokens) {
  {
    std::lock_guard lock(mutex_);
    prompt_tokens_ = prompt_tokens;
    started_ = true;
  }
  cv_.notify_all();
}

void CompletionJob::push(const std::string& text) {
  // No wake-up: a thread woken for every token takes a core from the model's threads, whose
  // barriers then wait for it (a stream collects its text every few milliseconds instead).
  std::lock_guard lock(mutex_);
  text_ += text;
}

void CompletionJob::finish(const std::string& reason, int64_t completion_tokens) {
  {
    std::lock_guard lock(mutex_);
    finish_reason_ = reason;
    completion_tokens_ = completion_tokens;
    finished_ = true;
  }
  cv_.notify_all();
}

void CompletionJob::fail(const ApiError& error) {
  {
    std::lock_guard lock(mutex_);
    error_ = error;
    finished_ = true;
  }
  cv_.notify_all();
}

// --- ReadJob -----------------------------------------------------------------------------------------

bool ReadJob::push(const char* data, size_t size) {
  {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return pending_.size() < max_pending_ || finished_; });
    if (finished_) return false;
    pending_.append(data, size);
    received_ += static_cast<int64_t>(size);
  }
  wake_();
  return true;
}

void ReadJob::end_input() {
  {
    std::lock_guard lock(mutex_);
    input_ended_ = true;
  }
  wake_();
}

void ReadJob::abort(const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (!aborted_) aborted_ = why;
  }
  wake_();
}

SessionInfo ReadJob::wait() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return finished_; });
  if (error_) throw *error_;
  return result_;
}

ReadJob::Taken ReadJob::take(size_t most) {
  Taken taken;
  {
    std::lock_guard lock(mutex_);
    taken.aborted = aborted_;
    const auto n = std::min(most, pending_.size());
    taken.bytes = pending_.substr(0, n);
    pending_.erase(0, n);
    taken.input_ended = input_ended_ && pending_.empty();
    end_taken_ = taken.input_ended;
    taken.bytes_received = received_;
  }
  cv_.notify_all();  // room for the HTTP thread's next bytes
  return taken;
}

bool ReadJob::has_work() const {
  std::lock_guard lock(mutex_);
  return !finished_ && (!pending_.empty() || (input_ended_ && !end_taken_) || aborted_);
}

void ReadJob::done(const SessionInfo& info) {
  {
    std::lock_guard lock(mutex_);
    result_ = info;
    finished_ = true;
  }
  cv_.notify_all();
}

void ReadJob::fail(const ApiError& error) {
  {
    std::lock_guard lock(mutex_);
    error_ = error;
    finished_ = true;
  }
  cv_.notify_all();
}

}  // namespace infini::server
