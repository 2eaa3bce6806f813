// The learning-rate schedule of a run's TrainOptions (include/infini/train.h).
#pragma once

#include <cstdint>

#include "infini/train.h"

namespace infini {

// Learning-rate multiplier at `step` (0-based): linear warm-up, then cosine down to min_lr_ratio.
double lr_factor(const TrainOptions& o, int64_t step);

}  // namespace infini
