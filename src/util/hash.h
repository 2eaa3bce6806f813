// Seeds for data that must be a pure function of (seed, index): splitmix64, a strong 64-bit mixer;
// and a checksum built on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace infini {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed for item `index` of the stream `seed`.
inline uint64_t seed_for(uint64_t seed, uint64_t index) { return splitmix64(seed ^ splitmix64(index)); }

// A checksum that catches damaged files (a flipped bit, a torn write), not a cryptographic hash: each
// 8-byte word is mixed with splitmix64, so a checkpoint of tens of megabytes costs milliseconds.
inline uint64_t checksum64(const char* data, size_t n) {
  uint64_t h = splitmix64(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    h = splitmix64(h ^ w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, data + i, n - i);
  return splitmix64(h ^ tail);
}

}  // namespace infini
