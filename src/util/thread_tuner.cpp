#include "util/thread_tuner.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <omp.h>

namespace infini {
namespace {

// A check finds the machine quiet when this process's threads waited for a CPU less than this share
// of the time its rounds took. With all cores ours the wait is a few thousandths; beside one busy
// loop at normal priority, on two cores, about two thirds; beside one at nice 19, which takes little
// but in slices that delay a thread each time, about 13% (a training step).
constexpr double kQuietShare = 0.25;
// Fewer threads are kept when their mean round is at most this much slower than the fastest count's
// (1 / 0.85: 18%). On a quiet machine one thread is 1.5-1.9x slower than two.
constexpr double kMargin = 0.85;
// A change this large (the kept count's mean round 1.5x the new one's) needs no second probe.
constexpr double kClearGain = 1.5;
// Probing may cost at most this share of the time between probes, and they are at most this far apart
// (seconds of rounds).
constexpr double kProbeBudget = 0.03;
constexpr double kLongestPeriod = 300;

double sum(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s;
}

}  // namespace

double process_run_delay_seconds() {
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return -1;
  double total = 0;
  bool any = false;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const std::string path = std::string("/proc/self/task/") + entry->d_name + "/schedstat";
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) continue;  // the thread has just ended
    unsigned long long run_ns = 0, delay_ns = 0;
    if (std::fscanf(f, "%llu %llu", &run_ns, &delay_ns) == 2) {
      total += static_cast<double>(delay_ns) * 1e-9;
      any = true;
    }
    std::fclose(f);
  }
  closedir(dir);
  return any ? total : -1;
}

ThreadTuner::ThreadTuner(int max_threads, const ThreadTunerOptions& options)
    : o_(options), delay_source_(&process_run_delay_seconds), period_(options.first_period) {
  o_.probe_rounds = std::max(1, o_.probe_rounds);
  o_.settle_rounds = std::max(0, o_.settle_rounds);
  for (int n = std::max(1, max_threads);; n /= 2) {
    candidates_.push_back(n);
    if (n == 1 || !o_.enabled) break;
  }
  samples_.resize(candidates_.size());
  current_ = chosen_ = candidates_.front();
  const char* trace = std::getenv("INFINI_TRACE_THREADS");
  trace_ = trace != nullptr && *trace != '\0' && std::string(trace) != "0";
  delay_at_check_ = delay_source_();
}

bool ThreadTuner::enough(const std::vector<double>& rounds) const {
  return rounds.size() >= static_cast<size_t>(o_.probe_rounds) && sum(rounds) >= o_.probe_seconds;
}

void ThreadTuner::set_delay_source(DelaySource source) {
  delay_source_ = source;
  delay_at_check_ = delay_source_();
}

void ThreadTuner::record(double seconds) {
  // The first round of any work pays for its start (allocations, caches, waking threads) and would
  // make all cores look slow in the first probe.
  if (!started_) {
    started_ = true;
    delay_at_check_ = delay_source_();
    return;
  }
  if (!probing_) {
    recent_.push_back(seconds);
    while (recent_.size() > static_cast<size_t>(o_.probe_rounds) && sum(recent_) - recent_.front() >= o_.probe_seconds)
      recent_.erase(recent_.begin());
    since_check_ += seconds;
    if (candidates_.size() > 1 && since_check_ >= period_) check();
    return;
  }
  // Untimed rounds first. After a step down the threads left out keep spin-waiting for new work for
  // a while (libgomp: about 10-20 ms), and on a busy machine they take the CPU the rounds being timed
  // need, so a step down waits settle_seconds before it times anything.
  if (untimed_ < o_.settle_rounds || (stepped_down_ && untimed_seconds_ < o_.settle_seconds)) {
    ++untimed_;
    untimed_seconds_ += seconds;
    return;
  }
  auto& samples = samples_[candidate_];
  samples.push_back(seconds);
  if (!enough(samples)) return;
  if (candidate_ + 1 < candidates_.size()) {
    ++candidate_;
    current_ = candidates_[candidate_];
    stepped_down_ = true;
    untimed_ = 0;
    untimed_seconds_ = 0;
    return;
  }
  finish_probe();
}

void ThreadTuner::check() {
  const double delay = delay_source_();
  // Only while every core is in use can a quiet machine vouch for the count: with fewer threads the
  // process does not wait for CPUs whether or not a neighbour holds the others.
  // A thread that ended since the last check takes its delay out of the sum; that window proves nothing.
  const bool quiet = chosen_ == candidates_.front() && delay >= 0 && delay_at_check_ >= 0 &&
                     delay >= delay_at_check_ && delay - delay_at_check_ < kQuietShare * since_check_;
  if (trace_ && !quiet)
    std::fprintf(stderr, "thread tuner: on %d threads, waited for CPUs %.0f%% of %.3f s of rounds; probing\n", chosen_,
                 delay >= 0 && delay_at_check_ >= 0 ? 100 * (delay - delay_at_check_) / since_check_ : -1.0,
                 since_check_);
  delay_at_check_ = delay;
  since_check_ = 0;
  if (quiet) {
    ++quiet_checks_;
    period_ = std::min(2 * period_, o_.max_period);
    return;
  }
  start_probe();
}

void ThreadTuner::start_probe() {
  probing_ = true;
  for (auto& s : samples_) s.clear();
  candidate_ = 0;
  // The rounds just run on all cores count as that candidate's (a training step is seconds long).
  if (current_ == candidates_.front() && enough(recent_)) {
    samples_[0] = recent_;
    candidate_ = 1;
  }
  recent_.clear();
  stepped_down_ = candidates_[candidate_] < current_;
  current_ = candidates_[candidate_];
  untimed_ = 0;
  untimed_seconds_ = 0;
}

void ThreadTuner::finish_probe() {
  ++probes_;
  // Mean round times, not medians: beside a busy neighbour most rounds on all cores run at their idle
  // speed and a few wait milliseconds for a descheduled thread, and those few are the cost.
  std::vector<double> means;
  for (const auto& s : samples_) means.push_back(sum(s) / static_cast<double>(s.size()));
  // The fewest threads within the margin of the fastest: a probe only runs when threads waited for
  // CPUs, and then more threads are the gamble (one window on all cores can run at idle speed and
  // the next wait on every barrier), fewer the safe choice and the fairer to the neighbour.
  const double fastest = *std::min_element(means.begin(), means.end());
  size_t best = 0;
  for (size_t c = 0; c < candidates_.size(); ++c)
    if (kMargin * means[c] <= fastest) best = c;
  const int found = candidates_[best];
  // Where the chosen count is this much slower than the one found, one probe decides: a busy
  // neighbour makes one thread 2-4x faster than two, and each round more on the wrong count costs.
  const auto chosen_index =
      static_cast<size_t>(std::find(candidates_.begin(), candidates_.end(), chosen_) - candidates_.begin());
  const bool clear = means[chosen_index] >= kClearGain * means[best];
  if (trace_) {
    std::string line = "thread tuner:";
    for (size_t c = 0; c < candidates_.size(); ++c)
      line += " " + std::to_string(candidates_[c]) + " threads " + std::to_string(means[c] * 1e3) + " ms (" +
              std::to_string(samples_[c].size()) + " rounds);";
    std::fprintf(stderr, "%s keeps %d%s\n", line.c_str(), found,
                 found != chosen_ && !confirming_ && !clear ? ", to be confirmed" : "");
  }
  if (found != chosen_ && !confirming_ && !clear) {
    // A change is probed once more before it is taken: a moment's hiccup must not halve the machine
    // (or fill it with threads that will wait) for a whole period.
    confirming_ = true;
    start_probe();
    return;
  }
  const bool change = found != chosen_;
  confirming_ = false;
  chosen_ = current_ = found;
  recent_.clear();
  period_ = change ? o_.first_period : std::min(2 * period_, o_.max_period);
  // What the probe cost: its rounds at the other counts, against the same rounds at the count kept.
  // The next probe waits until that is at most kProbeBudget of the time between (a training step on
  // two threads beside a busy loop takes seconds longer than on one).
  double cost = 0;
  for (size_t c = 0; c < candidates_.size(); ++c)
    if (c != best) cost += std::max(0.0, sum(samples_[c]) - static_cast<double>(samples_[c].size()) * means[best]);
  period_ = std::min(std::max(period_, cost / kProbeBudget), kLongestPeriod);
  probing_ = false;
  since_check_ = 0;
  delay_at_check_ = delay_source_();
}

ScopedThreads::ScopedThreads(int threads) : before_(omp_get_max_threads()) {
  if (threads != before_) omp_set_num_threads(threads);
}

ScopedThreads::~ScopedThreads() {
  if (omp_get_max_threads() != before_) omp_set_num_threads(before_);
}

}  // namespace infini
