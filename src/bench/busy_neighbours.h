// A busy machine on demand, for `infini bench --busy-neighbours`: child processes that each spin on
// a CPU, as `sh -c 'while :; do :; done' &` would, at a chosen nice level. They are stopped when the
// object goes, and die with the benchmark if it is killed.
#pragma once

#include <sys/types.h>

#include <vector>

namespace infini {

class BusyNeighbours {
 public:
  // `count` processes at nice `nice` (0..19). Throws infini::Error if one cannot be started.
  BusyNeighbours(int count, int nice);
  ~BusyNeighbours();
  BusyNeighbours(const BusyNeighbours&) = delete;
  BusyNeighbours& operator=(const BusyNeighbours&) = delete;

 private:
  void stop();
  std::vector<pid_t> children_;
};

}  // namespace infini
