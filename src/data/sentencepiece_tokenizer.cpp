#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/documents.h"
#include "data/spm/spm_api.h"
#include "data/tokenizer.h"
#include "io/atomic_file.h"
#include "infini/error.h"
#include "util/json_text.h"

namespace infini::data {

namespace fs = std::filesystem;

namespace {

// libinfini_spm.so, loaded once (spm_api.h says why it is not linked in).
struct SpmLibrary {
  infini_spm_load_fn load;
  infini_spm_free_fn free;
  infini_spm_vocab_size_fn vocab_size;
  infini_spm_encode_fn encode;
  infini_spm_decode_fn decode;
  infini_spm_serialize_fn serialize;
  infini_spm_train_fn train;
  infini_spm_release_fn release;

  static const SpmLibrary& get() {
    static std::once_flag once;
    static SpmLibrary lib;
    static std::string failure;
    std::call_once(once, [] {
      try {
        lib = open();
      } catch (const Error& e) {
        failure = e.what();
      }
    });
    if (!failure.empty()) throw Error(failure);
    return lib;
  }

 private:
  static SpmLibrary open() {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("INFINI_SPM_LIBRARY")) candidates.emplace_back(env);
    // Beside libinfini.so (installed, or a Python extension's), then beside the program.
    Dl_info self{};
    if (::dladdr(reinterpret_cast<void*>(&SpmLibrary::open), &self) != 0 && self.dli_fname != nullptr)
      candidates.push_back((fs::path(self.dli_fname).parent_path() / "libinfini_spm.so").string());
    std::error_code ec;
    const auto exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back((exe.parent_path() / "libinfini_spm.so").string());
#ifdef INFINI_SPM_LIBRARY_PATH
    candidates.emplace_back(INFINI_SPM_LIBRARY_PATH);
#endif
    std::string tried;
    for (const auto& path : candidates) {
      if (!fs::exists(path)) {
        tried += " " + path;
        continue;
      }
      void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!handle) throw Error(fmt::format("{}: cannot load ({})", path, ::dlerror()));
      const auto sym = [&](const char* name) {
        void* f = ::dlsym(handle, name);
        if (!f) throw Error(fmt::format("{}: lacks {}; rebuild infini", path, name));
        return f;
      };
      SpmLibrary lib;
      lib.load = reinterpret_cast<infini_spm_load_fn>(sym("infini_spm_load"));
      lib.free = reinterpret_cast<infini_spm_free_fn>(sym("infini_spm_free"));
      lib.vocab_size = reinterpret_cast<infini_spm_vocab_size_fn>(sym("infini_spm_vocab_size"));
      lib.encode = reinterpret_cast<infini_spm_encode_fn>(sym("infini_spm_encode"));
      lib.decode = reinterpret_cast<infini_spm_decode_fn>(sym("infini_spm_decode"));
      lib.serialize = reinterpret_cast<infini_spm_serialize_fn>(sym("infini_spm_serialize"));
      lib.train = reinterpret_cast<infini_spm_train_fn>(sym("infini_spm_train"));
      lib.release = reinterpret_cast<infini_spm_release_fn>(sym("infini_spm_release"));
      return lib;
    }
    throw Error(fmt::format("libinfini_spm.so (SentencePiece support) not found; looked at{}. Set "
                            "INFINI_SPM_LIBRARY to its path", tried));
  }
};

// A buffer returned by the library, released when it goes out of scope.
struct OwnedBuffer {
  infini_spm_buffer b{nullptr, 0};
  ~OwnedBuffer() {
    if (b.data) SpmLibrary::get().release(&b);
  }
};

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& serialized, const std::string& origin) : lib_(SpmLibrary::get()) {
    char err[512] = "";
    if (lib_.load(serialized.data(), serialized.size(), &processor_, err, sizeof err) != 0)
      throw Error(fmt::format("{}: not a SentencePiece model ({}); train one with 'infini tokenizer train'",
                              origin, err));
  }
  ~SentencePieceTokenizer() override { lib_.free(processor_); }
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::string kind() const override { return "sentencepiece"; }
  int64_t vocab_size() const override { return lib_.vocab_size(processor_); }
  std::vector<int64_t> encode(std::string_view text, const std::string& origin) const override {
    const std::string s(text);
    size_t invalid_at;
    const auto valid = utf8_valid_prefix(s, invalid_at);  // a character cut off at the end is invalid too
    if (valid != s.size())
      throw Error(fmt::format("{}: not valid UTF-8 at byte {} of the text; the SentencePiece tokenizer "
                              "needs UTF-8 (convert it, e.g. with iconv, or use the byte tokenizer)",
                              origin, valid));
    OwnedBuffer ids;
    char err[512] = "";
    if (lib_.encode(processor_, s.data(), s.size(), &ids.b, err, sizeof err) != 0)
      throw Error(fmt::format("{}: SentencePiece cannot encode it ({})", origin, err));
    const auto* p = static_cast<const int*>(ids.b.data);
    return {p, p + ids.b.size / sizeof(int)};
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::vector<int> narrow;
    narrow.reserve(ids.size());
    for (const auto id : ids)
      if (id >= 0 && id < vocab_size()) narrow.push_back(static_cast<int>(id));
    OwnedBuffer text;
    char err[512] = "";
    if (lib_.decode(processor_, narrow.data(), narrow.size(), &text.b, err, sizeof err) != 0)
      throw Error(fmt::format("SentencePiece cannot decode ({})", err));
    return {static_cast<const char*>(text.b.data), text.b.size};
  }
  bool one_token_per_byte() const override { return false; }
  bool needs_utf8() const override { return true; }
  void save(const std::string& dir) const override {
    OwnedBuffer model;
    lib_.serialize(processor_, &model.b);
    io::write_file_atomic((fs::path(dir) / "tokenizer.model").string(),
                          std::string(static_cast<const char*>(model.b.data), model.b.size));
    const nlohmann::json j = {{"type", "sentencepiece"}, {"model", "tokenizer.model"}, {"vocab_size", vocab_size()}};
    io::write_file_atomic((fs::path(dir) / "tokenizer.json").string(), j.dump(2) + "\n");
  }

 private:
  const SpmLibrary& lib_;
  void* processor_ = nullptr;
};

// Feeds SentencePiece's trainer the non-empty lines of every document, one document at a time.
class DocumentLines {
 public:
  explicit DocumentLines(std::vector<Document> docs) : docs_(std::move(docs)) {}
  static int next(void* self, const char** line, size_t* size) {
    return static_cast<DocumentLines*>(self)->advance(line, size);
  }

 private:
  int advance(const char** line, size_t* size) {
    while (true) {
      if (in_.is_open() && std::getline(in_, line_)) {
        if (line_.empty()) continue;
        *line = line_.data();
        *size = line_.size();
        return 1;
      }
      if (next_doc_ == docs_.size()) return 0;
      in_.close();
      in_.clear();
      in_.open(docs_[next_doc_++].path, std::ios::binary);
    }
  }

  std::vector<Document> docs_;
  size_t next_doc_ = 0;
  std::ifstream in_;
  std::string line_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_file) {
  return std::make_unique<SentencePieceTokenizer>(io::read_file(model_file), model_file);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const auto path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(path))
    throw Error(fmt::format("{}: missing; every model folder names its tokenizer (re-save the model "
                            "with 'infini train', which writes it)", path));
  const auto j = parse_json(io::read_file(path), path);
  const auto type = j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  if (type == "byte") return byte_tokenizer();
  if (type == "sentencepiece") {
    if (!j.contains("model") || !j["model"].is_string())
      throw Error(fmt::format("{}: field 'model' (the SentencePiece file name) is missing", path));
    // A file name in the model folder, nothing else: a downloaded folder must not make infini open
    // /etc/passwd or ../../anything.
    const auto name = j["model"].get<std::string>();
    const fs::path file(name);
    if (name.empty() || file.has_parent_path() || file.is_absolute() || name == "." || name == "..")
      throw Error(fmt::format("{}: field 'model' is '{}'; it must name a file in the model folder (e.g. "
                              "\"tokenizer.model\")", path, name));
    return load_sentencepiece((fs::path(dir) / file).string());
  }
  throw Error(fmt::format("{}: field 'type' must be \"byte\" or \"sentencepiece\"", path));
}

void train_sentencepiece(const SentencePieceTraining& o) {
  if (o.model_type != "bpe" && o.model_type != "unigram")
    throw Error(fmt::format("--type is '{}'; allowed: bpe, unigram", o.model_type));
  auto docs = open_corpus(o.input, "").train;  // a PG19-style folder: train/ only, never held-out text
  for (const auto& d : docs) check_utf8(d);
  // Identity normalisation and kept whitespace, so decode(encode(text)) == text for code and TeX.
  const auto args = fmt::format(
      "--model_type={} --vocab_size={} --byte_fallback=true --normalization_rule_name=identity "
      "--remove_extra_whitespaces=false --split_digits=true --input_sentence_size={} "
      "--shuffle_input_sentence=true --max_sentence_length=65536 --character_coverage=0.9995 "
      "--num_threads=2 --minloglevel=1",
      o.model_type, o.vocab_size, o.max_sentences);
  DocumentLines lines(std::move(docs));
  OwnedBuffer model;
  char err[1024] = "";
  if (SpmLibrary::get().train(args.c_str(), &DocumentLines::next, &lines, &model.b, err, sizeof err) != 0)
    throw Error(fmt::format("SentencePiece training on {} failed: {} (check --vocab: byte fallback "
                            "needs at least 260, and the text must have enough distinct pieces)",
                            o.input, err));
  const std::string proto(static_cast<const char*>(model.b.data), model.b.size);
  io::write_file_atomic(o.out, proto);
}

}  // namespace infini::data
