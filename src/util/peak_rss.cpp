#include "util/peak_rss.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

namespace infini {

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

PeakRss::PeakRss()
    : peak_(resident_bytes()), thread_([this] {
        while (!stop_) {
          peak_ = std::max(peak_.load(), resident_bytes());
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }) {}

PeakRss::~PeakRss() {
  stop_ = true;
  thread_.join();
}

int64_t PeakRss::peak() const { return std::max(peak_.load(), resident_bytes()); }

}  // namespace infini
