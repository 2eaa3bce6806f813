// Files that are either the old version or the complete new one, never half written:
// write to a temporary file in the same folder, flush it to disk, then rename over the target.
#pragma once

#include <string>

namespace infini::io {

void write_file_atomic(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

}  // namespace infini::io
