// Softmax attention of one query over a sequence's cached keys and values: the decode step's
// attention (src/infer/decoder.h), per sequence and head. One call covers every key, so a step of a
// batch of sequences costs a few calls per head instead of two per cached key.
#pragma once

#include <cstdint>

namespace infini::kernels {

// out (dv) = softmax(scale * keys q) values, over `count` >= 1 rows.
//   q       (dk)
//   keys    (count, dk), rows contiguous
//   values  (count, dv), rows contiguous
//   scores  (count) scratch; holds the attention weights afterwards
void attend_one_query(const float* q, const float* keys, const float* values, int64_t count, int64_t dk,
                      int64_t dv, float scale, float* scores, float* out);

}  // namespace infini::kernels
