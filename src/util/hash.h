// Seeds for data that must be a pure function of (seed, index): splitmix64, a strong 64-bit mixer.
#pragma once

#include <cstdint>

namespace infini {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed for item `index` of the stream `seed`.
inline uint64_t seed_for(uint64_t seed, uint64_t index) { return splitmix64(seed ^ splitmix64(index)); }

}  // namespace infini
