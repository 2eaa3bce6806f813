// How many threads a repeated piece of work runs on, chosen by measuring the machine as it is now.
//
// On an idle machine the fused prefill, the decoder and training are fastest on every core. With a
// busy neighbour they are not: every parallel region ends in a barrier, and a thread whose core the
// neighbour holds keeps the others spinning there until it is scheduled again, so two threads beside
// one busy loop on two cores run at a quarter of their idle speed, while one thread keeps its own
// (experiments/shared-machine). The load changes while a process runs, so the count is measured:
//
// - The work comes in rounds (a decoded token, a prefill segment, a training step); the caller runs
//   each at threads() and reports its wall time to record().
// - While all cores are in use, the tuner watches how long this process's threads waited for a CPU
//   (the run delay the kernel counts per thread). A quiet machine shows next to none, and then
//   nothing is probed, so an idle machine pays nothing.
// - When the threads waited, or when fewer than all cores are in use, it probes: it times each
//   candidate count (all, half, ..., one) for a few rounds and keeps the fewest threads whose mean
//   round is within 18% of the fastest. A change is taken when two probes running agree, or at once
//   when the count in use is 1.5x slower.
// - The time to the next check doubles while probes confirm the count (up to a limit) and starts
//   again from the shortest after a change; and a costly probe (a training step on the wrong count
//   takes seconds longer) waits until its cost is under 3% of the time between.
// - INFINI_TRACE_THREADS=1 in the environment prints each probe's figures to stderr.
#pragma once

#include <cstdint>
#include <vector>

namespace infini {

struct ThreadTunerOptions {
  int probe_rounds = 7;         // timed rounds per candidate, at least; their mean time counts
  double probe_seconds = 0;     // and at least this much time, so that stalls are seen at their rate
  int settle_rounds = 1;        // untimed rounds first at each candidate (caches, waking threads)
  double settle_seconds = 0;    // after a step down, further untimed rounds until this much time has passed
  double first_period = 0.05;   // seconds of rounds before the first check, and after a change
  double max_period = 2.0;      // the longest wait between checks
  bool enabled = true;          // false: always max_threads (an explicit --threads)
};

class ThreadTuner {
 public:
  // The candidates are max_threads, max_threads / 2, ..., 1 (max_threads < 1 counts as 1).
  ThreadTuner(int max_threads, const ThreadTunerOptions& options);

  // The thread count for the next round.
  int threads() const { return current_; }
  // The wall time of the round just run at threads().
  void record(double seconds);

  // The count the last completed probe kept (max_threads before one completes).
  int chosen() const { return chosen_; }
  bool probing() const { return probing_; }
  // Probes completed, and those skipped because the process did not wait for CPUs.
  int64_t probes() const { return probes_; }
  int64_t quiet_checks() const { return quiet_checks_; }

  // For tests: where the run delay comes from (seconds, cumulative; < 0 when unknown).
  using DelaySource = double (*)();
  void set_delay_source(DelaySource source);

 private:
  void check();
  void start_probe();
  void finish_probe();
  bool enough(const std::vector<double>& rounds) const;  // a candidate's probe is complete

  std::vector<int> candidates_;  // max_threads, max_threads / 2, ..., 1
  ThreadTunerOptions o_;
  DelaySource delay_source_;
  int current_;
  int chosen_;
  bool started_ = false;         // the first round, which is never timed, has run
  bool probing_ = false;
  bool confirming_ = false;      // a second probe, before a change is taken
  double period_;
  double since_check_ = 0;       // seconds of rounds since the last check
  double delay_at_check_ = -1;   // run delay at the last check
  std::vector<double> recent_;   // the last rounds at the chosen count, as many as a probe would time
  bool trace_ = false;           // INFINI_TRACE_THREADS set: each probe's figures to stderr
  // While probing:
  size_t candidate_ = 0;
  int untimed_ = 0;              // untimed rounds run at this candidate
  double untimed_seconds_ = 0;
  bool stepped_down_ = false;    // this candidate has fewer threads than the rounds before it
  std::vector<std::vector<double>> samples_;
  int64_t probes_ = 0;
  int64_t quiet_checks_ = 0;
};

// Seconds the threads of this process have spent runnable but waiting for a CPU, summed over them
// (/proc/self/task/*/schedstat); -1 where the kernel does not say. A thread that has ended no longer
// counts, so the sum can fall.
double process_run_delay_seconds();

// Sets the calling thread's OpenMP thread count for one scope, and restores it. The fused paths'
// parallel regions, LibTorch's intra-op parallelism and OpenBLAS's OpenMP build all follow it, and
// it is per thread, so sessions on different threads choose their own.
class ScopedThreads {
 public:
  explicit ScopedThreads(int threads);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int before_;
};

}  // namespace infini
