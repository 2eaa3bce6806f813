// The public train() and resume() (include/infini/train.h): one process of the engine's trainer.
#include "train/trainer.h"
#include "util/runtime.h"

namespace infini {

TrainSummary train(const RunSpec& spec, const TrainLimits& limits) {
  apply_default_threads();
  return train_new(spec, limits);
}

TrainSummary resume(const std::string& out, int64_t steps, const TrainLimits& limits) {
  apply_default_threads();
  return train_resume(out, steps, limits);
}

}  // namespace infini
