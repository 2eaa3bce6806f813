// ThreadTuner (util/thread_tuner.h), with round times and the run delay fed in by hand: it stays on
// all cores while the process does not wait for CPUs, finds the faster count when it does, follows
// the machine back, and is not moved by one slow round or a small gain. Then the run delay and the
// usable CPUs read from the kernel.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "util/runtime.h"
#include "util/thread_tuner.h"

namespace infini {
namespace {

// The run delay the tuner reads in these tests: `delay_per_second` of waiting per second of rounds.
double g_delay = 0;
double fake_delay() { return g_delay; }

struct Machine {
  double delay_per_second = 0;                // 0: quiet; about 0.7 beside a busy loop
  std::function<double(int)> seconds_at;      // a round's time at a thread count
};

// Runs `rounds` rounds on `machine`; returns the thread counts they ran at.
std::vector<int> run(ThreadTuner& tuner, int rounds, const Machine& machine) {
  std::vector<int> used;
  for (int i = 0; i < rounds; ++i) {
    const int n = tuner.threads();
    used.push_back(n);
    const double s = machine.seconds_at(n);
    g_delay += machine.delay_per_second * s;
    tuner.record(s);
  }
  return used;
}

const Machine kIdle{0.0, [](int t) { return t == 4 ? 1e-3 : t == 2 ? 1.8e-3 : 3.5e-3; }};
const Machine kBusy{0.7, [](int t) { return t == 1 ? 4e-3 : t == 2 ? 9e-3 : 20e-3; }};

ThreadTunerOptions options(int probe_rounds = 3, double settle_seconds = 0) {
  return {probe_rounds, /*probe_seconds=*/0, /*settle_rounds=*/1, settle_seconds, /*first_period=*/0.05,
          /*max_period=*/1.0};
}

TEST(ThreadTuner, AQuietMachineIsNeverProbed) {
  g_delay = 0;
  ThreadTuner tuner(4, options());
  tuner.set_delay_source(&fake_delay);
  const auto used = run(tuner, 5000, kIdle);
  EXPECT_TRUE(std::all_of(used.begin(), used.end(), [](int n) { return n == 4; }));
  EXPECT_EQ(tuner.probes(), 0);
  EXPECT_GT(tuner.quiet_checks(), 3);
}

TEST(ThreadTuner, FindsTheFasterCountWhenThreadsWaitAndFollowsTheMachineBack) {
  g_delay = 0;
  ThreadTuner tuner(4, options());
  tuner.set_delay_source(&fake_delay);
  run(tuner, 200, kIdle);
  EXPECT_EQ(tuner.chosen(), 4);
  // A busy neighbour: the process waits for CPUs, and a probe finds one thread 2.25x faster, which
  // one probe decides.
  run(tuner, 300, kBusy);
  EXPECT_EQ(tuner.chosen(), 1);
  EXPECT_EQ(tuner.probes(), 1);
  // Once it has stepped down the delay cannot vouch for the machine, so probes go on, with the time
  // between them doubling; when the neighbour leaves they find all cores fastest again.
  const auto busy_rounds = run(tuner, 2000, kBusy);
  EXPECT_GT(std::count(busy_rounds.begin(), busy_rounds.end(), 1), 1900);  // probing costs few rounds
  run(tuner, 3000, kIdle);
  EXPECT_EQ(tuner.chosen(), 4);
}

// Beside a busy neighbour most rounds on two threads run at idle speed and every few milliseconds
// one waits for a descheduled thread: the probe times enough rounds to see those stalls at their
// rate, and compares mean times (the median round would call two threads the faster).
TEST(ThreadTuner, StallsCountAtTheirRate) {
  g_delay = 0;
  ThreadTunerOptions o = options(/*probe_rounds=*/8);
  o.probe_seconds = 0.03;
  ThreadTuner tuner(2, o);
  tuner.set_delay_source(&fake_delay);
  int calls = 0;
  const Machine stalls{0.7, [&](int t) { return t == 1 ? 0.3e-3 : ++calls % 10 == 0 ? 4e-3 : 0.15e-3; }};
  run(tuner, 3000, stalls);
  EXPECT_EQ(tuner.chosen(), 1);
  // Rarer stalls, which two threads outrun: they stay.
  g_delay = 0;
  ThreadTuner rare(2, o);
  rare.set_delay_source(&fake_delay);
  calls = 0;
  run(rare, 3000, {0.7, [&](int t) { return t == 1 ? 0.3e-3 : ++calls % 100 == 0 ? 4e-3 : 0.15e-3; }});
  EXPECT_GE(rare.probes(), 1);
  EXPECT_EQ(rare.chosen(), 2);
}

// Threads waited, so more threads are the gamble: fewer are kept unless clearly slower.
TEST(ThreadTuner, PrefersFewerThreadsUnlessClearlySlower) {
  g_delay = 0;
  ThreadTuner close(2, options());
  close.set_delay_source(&fake_delay);
  run(close, 2000, {0.7, [](int t) { return t == 2 ? 0.9e-3 : 1.0e-3; }});  // two threads 10% faster
  EXPECT_EQ(close.chosen(), 1);
  ThreadTuner clear(2, options());
  clear.set_delay_source(&fake_delay);
  run(clear, 2000, {0.7, [](int t) { return t == 2 ? 0.7e-3 : 1.0e-3; }});  // 30% faster
  EXPECT_EQ(clear.chosen(), 2);
  EXPECT_GT(clear.probes(), 2);
}

// A change smaller than 1.5x is taken only when a second probe agrees: here one thread is 1.33x as
// fast in the first probe only (a hiccup), and two threads stay.
TEST(ThreadTuner, ASmallChangeIsConfirmedByASecondProbe) {
  g_delay = 0;
  ThreadTuner hiccup(2, options());
  hiccup.set_delay_source(&fake_delay);
  int one_thread_rounds = 0;
  run(hiccup, 2000, {0.7, [&](int t) {
                       if (t == 1) ++one_thread_rounds;
                       return t == 2 ? 1.0e-3 : one_thread_rounds <= 4 ? 0.75e-3 : 2.0e-3;
                     }});
  EXPECT_EQ(hiccup.chosen(), 2);
  EXPECT_GT(hiccup.probes(), 2);
  // The same gain in both probes is taken.
  ThreadTuner steady(2, options());
  steady.set_delay_source(&fake_delay);
  run(steady, 2000, {0.7, [](int t) { return t == 2 ? 1.0e-3 : 0.75e-3; }});
  EXPECT_EQ(steady.chosen(), 1);
}

// Training-like rounds: a step takes 3 s on one thread and 6 on two beside a busy loop. After the
// step down, a probe of two threads costs 3 s, so probes come at most once per 100 s (3%).
TEST(ThreadTuner, CostlyProbesAreRare) {
  g_delay = 0;
  ThreadTuner tuner(2, {/*probe_rounds=*/1, /*probe_seconds=*/0, /*settle_rounds=*/0, /*settle_seconds=*/0,
                        /*first_period=*/1.0, /*max_period=*/60.0});
  tuner.set_delay_source(&fake_delay);
  const Machine busy{0.7, [](int t) { return t == 2 ? 6.0 : 3.0; }};
  run(tuner, 5, busy);
  EXPECT_EQ(tuner.chosen(), 1);
  const auto later = run(tuner, 200, busy);  // 600 s
  const auto on_two = std::count(later.begin(), later.end(), 2);
  EXPECT_GE(on_two, 1);
  EXPECT_LE(on_two, 7);
}

// After a step down the threads left out still spin for a while: the rounds inside settle_seconds
// are not timed (here they are slow, and would make one thread look slower than two).
TEST(ThreadTuner, ASettlingStepDownIsNotTimed) {
  g_delay = 0;
  ThreadTuner tuner(2, options(/*probe_rounds=*/3, /*settle_seconds=*/0.04));
  tuner.set_delay_source(&fake_delay);
  double since_step_down = 0;
  int last = 2;
  run(tuner, 3000, {0.7, [&](int t) {
                      if (t == 1 && last == 2) since_step_down = 0;
                      last = t;
                      const double s = t == 2 ? 4e-3 : since_step_down < 0.03 ? 8e-3 : 1e-3;
                      if (t == 1) since_step_down += s;
                      return s;
                    }});
  EXPECT_EQ(tuner.chosen(), 1);
  // Without settling, the same machine keeps two threads.
  g_delay = 0;
  ThreadTuner hasty(2, options(/*probe_rounds=*/3, /*settle_seconds=*/0));
  hasty.set_delay_source(&fake_delay);
  last = 2;
  run(hasty, 3000, {0.7, [&](int t) {
                      if (t == 1 && last == 2) since_step_down = 0;
                      last = t;
                      const double s = t == 2 ? 4e-3 : since_step_down < 0.03 ? 8e-3 : 1e-3;
                      if (t == 1) since_step_down += s;
                      return s;
                    }});
  EXPECT_EQ(hasty.chosen(), 2);
}

// The first round of any work pays for its start: it neither counts towards a check nor serves as a
// probe's sample (a slow first training step made one thread look as fast as two).
TEST(ThreadTuner, TheFirstRoundIsNotTimed) {
  g_delay = 0;
  ThreadTunerOptions o = options(/*probe_rounds=*/1);
  o.first_period = 0;
  ThreadTuner tuner(2, o);
  tuner.set_delay_source(&fake_delay);
  g_delay += 70;
  tuner.record(100.0);
  EXPECT_FALSE(tuner.probing());
  EXPECT_EQ(tuner.threads(), 2);
  run(tuner, 50, {0.7, [](int t) { return t == 2 ? 1e-3 : 1.5e-3; }});
  EXPECT_GE(tuner.probes(), 1);
  EXPECT_EQ(tuner.chosen(), 2);
}

// Where the kernel does not tell the run delay, every check probes.
TEST(ThreadTuner, WithoutARunDelayItProbes) {
  ThreadTuner tuner(2, options());
  tuner.set_delay_source([] { return -1.0; });
  run(tuner, 2000, {0.0, [](int t) { return t == 1 ? 1e-3 : 3e-3; }});
  EXPECT_EQ(tuner.chosen(), 1);
}

TEST(ThreadTuner, OneThreadNeverProbes) {
  ThreadTuner tuner(1, options());
  tuner.set_delay_source([] { return -1.0; });
  const auto used = run(tuner, 500, kBusy);
  EXPECT_TRUE(std::all_of(used.begin(), used.end(), [](int n) { return n == 1; }));
  EXPECT_EQ(tuner.probes(), 0);
}

// More spinning threads than CPUs must wait for them, and the kernel's count says so.
TEST(ThreadTuner, RunDelayGrowsWhenThreadsOutnumberTheCpus) {
  const double before = process_run_delay_seconds();
  ASSERT_GE(before, 0) << "no /proc/self/task/*/schedstat";
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < usable_cpus() + 2; ++i)
    spinners.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double after = process_run_delay_seconds();  // while they run: an ended thread leaves the count
  stop = true;
  for (auto& t : spinners) t.join();
  EXPECT_GT(after - before, 0.05);
}

TEST(Runtime, UsableCpusAndCgroupQuota) {
  EXPECT_GE(usable_cpus(), 1);
  EXPECT_LE(usable_cpus(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("150000 100000"), 1.5);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("max 100000"), 0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("-1 100000"), 0);  // cgroup v1: no quota
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(""), 0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("12x 100000"), 0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("50000 0"), 0);
}

}  // namespace
}  // namespace infini
