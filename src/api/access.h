// What the public API's handles hold (include/infini/*.h declares them opaque), and the one way the
// API's own files and the CLI reach the engine behind them.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "infer/session.h"
#include "infini/model.h"
#include "infini/session.h"
#include "memory/state.h"
#include "model/transformer.h"
#include "util/thread_tuner.h"

namespace infini::detail {

// The thread count of forward passes called in a loop (a training loop in Python): the time from one
// call to the next is a step, measured as `infini train` measures its steps (util/thread_tuner.h).
struct StepThreads {
  std::mutex mutex;
  std::optional<ThreadTuner> tuner;  // made at the first call, from the thread count then
  std::chrono::steady_clock::time_point last_call;
};

// model_identity() hashes every weight (about 13 ms for the shipped model), and every Session needs
// it: it is kept until a weight changes, which the tensors' version counters tell.
struct IdentityCache {
  std::mutex mutex;
  int64_t versions = -1;  // the sum of the weights' version counters when `identity` was taken
  std::string identity;
};

struct ModelData {
  InfiniTransformer module{nullptr};
  Tokenizer tokenizer;
  std::string path;  // loaded from or last saved to
  std::shared_ptr<StepThreads> step_threads = std::make_shared<StepThreads>();
  std::shared_ptr<IdentityCache> identity = std::make_shared<IdentityCache>();
};

// model_identity(data.module), computed again only after a weight has changed in place.
std::string current_identity(ModelData& data);

struct SessionData {
  Model model;
  SessionEngine engine;
};

struct SnapshotData {
  SessionEngine::Snapshot snapshot;
  std::string identity;  // of the model whose session took it
};

struct GenerationData {
  SessionEngine* engine;  // the session's
  Tokenizer tokenizer;
  SampleOptions options;
  at::Generator random;
  std::vector<int64_t> recent;  // the prompt and the tokens generated: the repetition penalty's window
  std::vector<int64_t> tokens;  // generated
  std::string sent;             // returned by next()
  bool ended = false, stopped = false;
};

struct Access {
  static InfiniTransformer& module(const Model& model) { return model.data_->module; }
  static const data::Tokenizer& tokenizer(const Tokenizer& tokenizer) { return *tokenizer.impl_; }
  static Tokenizer make_tokenizer(std::shared_ptr<const data::Tokenizer> impl) { return Tokenizer(std::move(impl)); }
  static Model make_model(std::shared_ptr<ModelData> data) { return Model(std::move(data)); }
  static State make_state(ModelState state) { return State(std::make_shared<const ModelState>(std::move(state))); }
  static const ModelState& state(const State& state) { return *state.impl_; }
  static SessionEngine& engine(Session& session) { return session.data_->engine; }
};

}  // namespace infini::detail
