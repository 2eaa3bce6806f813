// The unit tests' main: every test runs on one thread, as LibTorch starts, so that sums run in one
// order whatever the test order (the first Model a test makes would otherwise apply the public API's
// default of every usable CPU, util/runtime.h). Thread tuning stays on, as it is by default, for the
// tests of the tuned paths; with one thread it has nothing to choose.
#include <gtest/gtest.h>

#include "util/runtime.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  infini::set_threads(1);
  infini::set_thread_tuning(true);
  return RUN_ALL_TESTS();
}
