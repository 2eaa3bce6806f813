// libinfini_spm.so: SentencePiece behind the C interface of spm_api.h (see there for why).
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "data/spm/spm_api.h"

namespace {

void set_error(char* err, size_t err_size, const std::string& message) {
  if (err_size == 0) return;
  std::strncpy(err, message.c_str(), err_size - 1);
  err[err_size - 1] = '\0';
}

void to_buffer(const void* data, size_t size, infini_spm_buffer* out) {
  out->data = std::malloc(size > 0 ? size : 1);
  std::memcpy(out->data, data, size);
  out->size = size;
}

class CallbackLines final : public sentencepiece::SentenceIterator {
 public:
  CallbackLines(infini_spm_next_line next, void* context) : next_(next), context_(context) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    const char* line = nullptr;
    size_t size = 0;
    done_ = next_(context_, &line, &size) == 0;
    if (!done_) value_.assign(line, size);
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  infini_spm_next_line next_;
  void* context_;
  std::string value_;
  bool done_ = false;
};

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int infini_spm_load(const char* model, size_t size, void** processor,
                                                           char* err, size_t err_size) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->LoadFromSerializedProto(std::string(model, size));
  if (!status.ok()) {
    delete sp;
    set_error(err, err_size, status.ToString());
    return 1;
  }
  *processor = sp;
  return 0;
}

__attribute__((visibility("default"))) void infini_spm_free(void* processor) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(processor);
}

__attribute__((visibility("default"))) int infini_spm_vocab_size(void* processor) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(processor)->GetPieceSize();
}

__attribute__((visibility("default"))) int infini_spm_encode(void* processor, const char* text, size_t size,
                                                             infini_spm_buffer* ids, char* err, size_t err_size) {
  std::vector<int> out;
  const auto status =
      static_cast<sentencepiece::SentencePieceProcessor*>(processor)->Encode(std::string(text, size), &out);
  if (!status.ok()) {
    set_error(err, err_size, status.ToString());
    return 1;
  }
  to_buffer(out.data(), out.size() * sizeof(int), ids);
  return 0;
}

__attribute__((visibility("default"))) int infini_spm_decode(void* processor, const int* ids, size_t count,
                                                             infini_spm_buffer* text, char* err, size_t err_size) {
  std::string out;
  const auto status = static_cast<sentencepiece::SentencePieceProcessor*>(processor)->Decode(
      std::vector<int>(ids, ids + count), &out);
  if (!status.ok()) {
    set_error(err, err_size, status.ToString());
    return 1;
  }
  to_buffer(out.data(), out.size(), text);
  return 0;
}

__attribute__((visibility("default"))) int infini_spm_serialize(void* processor, infini_spm_buffer* model) {
  const auto bytes = static_cast<sentencepiece::SentencePieceProcessor*>(processor)->serialized_model_proto();
  to_buffer(bytes.data(), bytes.size(), model);
  return 0;
}

__attribute__((visibility("default"))) int infini_spm_train(const char* args, infini_spm_next_line next,
                                                            void* context, infini_spm_buffer* model, char* err,
                                                            size_t err_size) {
  CallbackLines lines(next, context);
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &proto);
  if (!status.ok()) {
    set_error(err, err_size, status.ToString());
    return 1;
  }
  to_buffer(proto.data(), proto.size(), model);
  return 0;
}

__attribute__((visibility("default"))) void infini_spm_release(infini_spm_buffer* buffer) {
  std::free(buffer->data);
  buffer->data = nullptr;
  buffer->size = 0;
}

}  // extern "C"
