// metrics.jsonl in the run folder: one JSON object per optimisation step, appended and flushed as
// the run goes, so a crash loses at most the line being written.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infini {

class MetricsLog {
 public:
  // Opens `path` for appending. Records after `keep_through_step` (left by a run that went on past
  // its last checkpoint) are dropped first, so a resumed run's log has each step once.
  MetricsLog(const std::string& path, int64_t keep_through_step);
  void append(const nlohmann::json& record);

 private:
  std::string path_;
  std::ofstream out_;
};

// Every record of a metrics file; a torn last line (from a crash) is skipped, any other bad line is
// an error naming the file and line.
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace infini
