#include "eval/evaluate.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "data/text_stream.h"
#include "infini/error.h"
#include "infini/interrupt.h"

namespace infini {

namespace fs = std::filesystem;

int64_t EvalResult::tokens() const {
  int64_t n = 0;
  for (const auto& d : documents) n += d.tokens;
  return n;
}

int64_t EvalResult::bytes() const {
  int64_t n = 0;
  for (const auto& d : documents) n += d.bytes;
  return n;
}

double EvalResult::loss() const {
  double sum = 0;
  for (const auto& d : documents) sum += d.loss_sum;
  return tokens() > 0 ? sum / static_cast<double>(tokens()) : 0.0;
}

double EvalResult::bits_per_byte() const {
  return bytes() > 0 ? loss() * static_cast<double>(tokens()) / std::log(2.0) / static_cast<double>(bytes()) : 0.0;
}

nlohmann::json EvalResult::to_json() const {
  nlohmann::json by_segment = nlohmann::json::array();
  for (size_t i = 0; i < segment_tokens.size(); ++i)
    if (segment_tokens[i] > 0)
      by_segment.push_back({{"segment", i},
                            {"tokens", segment_tokens[i]},
                            {"loss", segment_loss_sum[i] / static_cast<double>(segment_tokens[i])}});
  nlohmann::json per_document = nlohmann::json::array();
  for (const auto& d : documents)
    per_document.push_back({{"path", d.path},
                            {"tokens", d.tokens},
                            {"bytes", d.bytes},
                            {"loss", d.tokens > 0 ? d.loss_sum / static_cast<double>(d.tokens) : 0.0}});
  nlohmann::json j = {{"documents", documents.size()},
          {"tokens", tokens()},
          {"bytes", bytes()},
          {"loss", loss()},
          {"perplexity", std::exp(loss())},
          {"bits_per_byte", bits_per_byte()},
          {"segment_len", segment_len},
          {"forget_memory", forget_memory},
          {"loss_by_segment", by_segment},
          {"per_document", per_document},
          {"state_bytes", state_bytes},
          {"seconds", seconds},
          {"tokens_per_second", seconds > 0 ? static_cast<double>(tokens()) / seconds : 0.0}};
  if (route_stats.decisions > 0) j.update(routing_json());
  return j;
}

nlohmann::json EvalResult::routing_json() const {
  const auto& r = route_stats;
  if (r.decisions == 0) return nlohmann::json::object();
  const auto decisions = static_cast<double>(r.decisions);
  nlohmann::json j = {{"routing", routing == Routing::TopK ? "topk" : "causal"},
                      {"routed_share", static_cast<double>(r.selected) / decisions}};
  if (r.router_agree.defined()) {
    j["router_accuracy"] = r.router_agree.item<double>() / decisions;
    j["predictor_accuracy"] = r.predictor_agree.item<double>() / decisions;
  }
  return j;
}

std::vector<data::Document> eval_documents(const std::string& data, const std::string& split) {
  if (!fs::is_directory(fs::path(data) / "train")) {
    if (!split.empty())
      throw Error(fmt::format("--split {}: {} is not a PG19-style folder (no train/ inside); leave --split out "
                              "to evaluate all its documents", split, data));
    return data::list_documents(data);
  }
  std::string chosen = split;
  if (chosen.empty()) chosen = fs::is_directory(fs::path(data) / "test") ? "test" : "validation";
  const auto dir = fs::path(data) / chosen;
  if (!fs::is_directory(dir))
    throw Error(fmt::format("{}: no {}/ folder to evaluate (PG19 layout: train/, validation/, test/); choose "
                            "one with --split", data, chosen));
  return data::list_documents(dir.string());
}

namespace {

// Scores one document into `result`, carrying the memory from its first token to its last.
void evaluate_document(InfiniTransformer& model, const data::Tokenizer& tokenizer, const data::Document& doc,
                       const EvalOptions& o, EvalResult& result) {
  const auto& c = model->config();
  const int64_t L = c.segment_len, V = c.vocab_size;
  // Several segments per forward call when the logits stay small (at most 4M floats); one when the
  // state is reset at every segment, so that each call starts on a boundary.
  const int64_t chunk = o.forget_memory ? L : L * std::clamp<int64_t>((int64_t{1} << 22) / (L * V), 1, 16);
  auto state = model->initial_state(1);
  EvalResult::DocumentScore score;
  score.path = doc.path;
  torch::Tensor prev;  // (V) log-probabilities for the next token; undefined before the first
  int64_t position = 0, first_token = -1;
  uint64_t bytes_done = 0;
  bool full = false;

  const auto score_tokens = [&](const int64_t* tokens, int64_t n) {
    poll_interrupt();
    if (first_token < 0) first_token = tokens[0];
    if (o.forget_memory) state = model->initial_state(1);  // position is a multiple of L here
    const auto input = torch::from_blob(const_cast<int64_t*>(tokens), {1, n}, torch::kInt64);  // (1, n)
    auto out = model->forward(input, std::move(state), /*logits_from=*/0, o.routing);
    state = std::move(out.state);
    result.route_stats.merge(out.routing);
    result.state_bytes = std::max(result.state_bytes, state.bytes());
    const auto logp = out.logits[0].to(torch::kFloat32).log_softmax(-1);  // (n, V)
    std::vector<float> losses;  // losses[j]: token j given everything before it
    if (prev.defined()) losses.push_back(-prev[tokens[0]].item<float>());
    if (n > 1) {
      const auto targets = input[0].narrow(0, 1, n - 1).unsqueeze(1);                         // (n-1, 1)
      const auto nll = (-logp.narrow(0, 0, n - 1).gather(1, targets)).squeeze(1).contiguous();  // (n-1)
      losses.insert(losses.end(), nll.data_ptr<float>(), nll.data_ptr<float>() + (n - 1));
    }
    prev = logp[n - 1];
    // losses cover positions [position + n - losses.size(), position + n).
    for (size_t j = 0; j < losses.size(); ++j) {
      const auto pos = position + n - static_cast<int64_t>(losses.size()) + static_cast<int64_t>(j);
      const auto seg = static_cast<size_t>(pos / L);
      if (seg >= result.segment_tokens.size()) {
        result.segment_tokens.resize(seg + 1, 0);
        result.segment_loss_sum.resize(seg + 1, 0.0);
      }
      result.segment_tokens[seg] += 1;
      result.segment_loss_sum[seg] += losses[j];
      score.loss_sum += losses[j];
    }
    score.tokens += static_cast<int64_t>(losses.size());
    position += n;
  };

  std::vector<int64_t> pending;
  data::stream_tokens(doc.path, tokenizer, [&](const std::vector<int64_t>& piece, uint64_t bytes_read) {
    if (full) return;
    size_t take = piece.size();
    if (o.max_tokens > 0 && position + static_cast<int64_t>(pending.size() + take) >= o.max_tokens) {
      take = static_cast<size_t>(o.max_tokens - position) - pending.size();
      full = true;
    }
    if (take == piece.size()) {
      bytes_done = bytes_read;
    } else {
      bytes_done += tokenizer.decode({piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(take)}).size();
    }
    pending.insert(pending.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(take));
    size_t used = 0;
    for (; pending.size() - used >= static_cast<size_t>(chunk); used += static_cast<size_t>(chunk))
      score_tokens(pending.data() + used, chunk);
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(used));
  });
  if (!pending.empty()) score_tokens(pending.data(), static_cast<int64_t>(pending.size()));
  // The first token is not scored (nothing precedes it), so its text is not counted either.
  const auto first_bytes = first_token >= 0 ? tokenizer.decode({first_token}).size() : 0;
  score.bytes = static_cast<int64_t>(bytes_done) - static_cast<int64_t>(first_bytes);
  result.documents.push_back(std::move(score));
}

}  // namespace

EvalResult evaluate(InfiniTransformer model, const data::Tokenizer& tokenizer,
                    const std::vector<data::Document>& documents, const EvalOptions& o,
                    const EvalProgress& progress) {
  if (tokenizer.vocab_size() != model->config().vocab_size)
    throw Error(fmt::format("the tokenizer has {} tokens, the model {}", tokenizer.vocab_size(),
                            model->config().vocab_size));
  torch::InferenceMode inference;
  model->eval();
  EvalResult result;
  result.segment_len = model->config().segment_len;
  result.forget_memory = o.forget_memory;
  result.routing = o.routing;
  const auto t0 = std::chrono::steady_clock::now();
  const auto n = o.max_documents > 0 ? std::min(documents.size(), static_cast<size_t>(o.max_documents))
                                     : documents.size();
  for (size_t i = 0; i < n; ++i) {
    evaluate_document(model, tokenizer, documents[i], o, result);
    if (progress) progress(i + 1, result.tokens());
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The first token of a document is never scored: a corpus of one-token documents has nothing to
  // score, and its loss of 0 (perplexity 1) would read as perfect.
  if (result.tokens() == 0)
    throw Error(fmt::format("nothing to score: the {} document(s) evaluated hold fewer than 2 tokens each{}", n,
                            n > 0 ? fmt::format(" (first: {})", documents[0].path) : std::string()));
  return result;
}

}  // namespace infini
