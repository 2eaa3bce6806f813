// The public evaluate() and passkey() (include/infini/evaluate.h): the engine's evaluations, returning
// the JSON objects `infini eval --json` and `infini passkey --json` print.
#include "api/access.h"
#include "eval/evaluate.h"
#include "eval/passkey_eval.h"
#include "util/runtime.h"

namespace infini {

using detail::Access;

nlohmann::json evaluate(const Model& model, const std::string& data, const EvalOptions& options,
                        const std::function<void(int64_t, int64_t)>& progress) {
  apply_default_threads();
  const auto documents = eval_documents(data, options.split);
  const auto result = evaluate(Access::module(model), Access::tokenizer(model.tokenizer()), documents, options,
                               [&](size_t done, int64_t tokens) {
                                 if (progress) progress(static_cast<int64_t>(done), tokens);
                               });
  auto j = result.to_json();
  j["model"] = model.path();
  j["memory"] = model.config().to_json().at("memory");
  j["data"] = data;
  j["config"] = model.config().to_json();
  return j;
}

nlohmann::json passkey(const Model& model, const PasskeyEvalOptions& options,
                       const std::function<void(const nlohmann::json&)>& progress) {
  apply_default_threads();
  const auto report = evaluate_passkey(Access::module(model), Access::tokenizer(model.tokenizer()), options,
                                       [&](const PasskeyCell& cell) {
                                         if (progress) progress(cell.to_json());
                                       });
  auto j = report.to_json();
  j["model"] = model.path();
  j["memory"] = model.config().to_json().at("memory");
  j["trials"] = options.trials;
  j["seed"] = options.seed;
  j["key_range"] = {options.key_min, options.key_max};
  return j;
}

}  // namespace infini
