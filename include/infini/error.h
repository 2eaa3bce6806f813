// One exception type for every user-facing failure: bad flags, bad configs, unreadable files.
// The CLI catches it, prints the message and exits non-zero; nothing else aborts.
#pragma once

#include <stdexcept>
#include <string>

namespace infini {

struct Error : std::runtime_error {
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace infini
