// Peak resident memory of this process over a stretch of code, sampled on a thread every 10 ms
// (getrusage's high-water mark never goes down, so it cannot measure one stretch after another).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace infini {

// Resident bytes of this process now (/proc/self/statm).
int64_t resident_bytes();

class PeakRss {
 public:
  PeakRss();
  ~PeakRss();
  PeakRss(const PeakRss&) = delete;
  PeakRss& operator=(const PeakRss&) = delete;
  // The largest sample since construction, the present included.
  int64_t peak() const;

 private:
  std::atomic<int64_t> peak_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace infini
