#include "train/metrics.h"

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "io/atomic_file.h"
#include "infini/error.h"
#include "util/json_text.h"

namespace infini {

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::istringstream in(io::read_file(path));
  std::vector<nlohmann::json> records;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    try {
      auto record = parse_json(line, fmt::format("{}:{}", path, number));
      if (!record.is_object()) throw Error(fmt::format("{}:{}: not a JSON record", path, number));
      if (record.contains("step") && !record["step"].is_number_integer())
        throw Error(fmt::format("{}:{}: field 'step' is not an integer", path, number));
      records.push_back(std::move(record));
    } catch (const Error&) {
      if (in.peek() == EOF) break;  // the line a crash cut short
      throw;
    }
  }
  return records;
}

MetricsLog::MetricsLog(const std::string& path, int64_t keep_through_step) : path_(path) {
  if (std::filesystem::exists(path)) {
    std::string kept;
    for (const auto& r : read_metrics(path))
      if (r.value("step", int64_t{0}) <= keep_through_step) kept += r.dump() + "\n";
    io::write_file_atomic(path, kept);
  }
  out_.open(path, std::ios::app);
  if (!out_) throw Error(fmt::format("{}: cannot open for appending", path));
}

void MetricsLog::append(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw Error(fmt::format("{}: write failed (disk full?)", path_));
}

}  // namespace infini
