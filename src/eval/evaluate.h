// Long-document evaluation: whole documents streamed segment by segment with the memory carried
// through each one (and reset between them), scored token by token. Reports the loss, perplexity,
// bits per byte (comparable across tokenizers) and the loss by segment index, which shows whether
// later parts of a document get easier thanks to the memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/documents.h"
#include "data/tokenizer.h"
#include "infini/evaluate.h"
#include "model/transformer.h"

namespace infini {

struct EvalResult {
  struct DocumentScore {
    std::string path;
    int64_t tokens = 0;  // scored: every token but the first
    int64_t bytes = 0;   // of the scored tokens' text
    double loss_sum = 0;  // nats
  };
  std::vector<DocumentScore> documents;
  // Index i: tokens at positions [i L, (i+1) L) of their document, L = segment_len.
  std::vector<double> segment_loss_sum;
  std::vector<int64_t> segment_tokens;
  int64_t segment_len = 0;
  bool forget_memory = false;
  Routing routing = Routing::Causal;
  RoutingStats route_stats;  // summed over every document; empty for a dense model
  int64_t state_bytes = 0;  // largest state seen: bounded by the config, not the document length
  double seconds = 0;

  int64_t tokens() const;
  int64_t bytes() const;
  double loss() const;  // nats per scored token
  double bits_per_byte() const;
  // Stable field names: documents, tokens, bytes, loss, perplexity, bits_per_byte, segment_len,
  // forget_memory, loss_by_segment [{segment, tokens, loss}], per_document [{path, tokens, bytes,
  // loss}], state_bytes, seconds, tokens_per_second; for routed models also routing ("causal" or
  // "topk"), routed_share (tokens through a routed block over tokens offered to one) and, under
  // top-k, router_accuracy and predictor_accuracy (causal decisions that match top-k membership).
  nlohmann::json routing_json() const;
  nlohmann::json to_json() const;
};

// Which documents `infini eval` reads from `data`: in a PG19-style folder (one with train/), the
// `split` subfolder (empty: test/ if present, else validation/); otherwise every document of the
// file or folder.
std::vector<data::Document> eval_documents(const std::string& data, const std::string& split);

// Progress: (documents done, tokens scored so far).
using EvalProgress = std::function<void(size_t, int64_t)>;

EvalResult evaluate(InfiniTransformer model, const data::Tokenizer& tokenizer,
                    const std::vector<data::Document>& documents, const EvalOptions& options,
                    const EvalProgress& progress = {});

}  // namespace infini
