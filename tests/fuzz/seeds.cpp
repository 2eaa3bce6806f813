#include "seeds.h"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "data/tokenizer.h"
#include "fuzz_common.h"
#include "infer/session.h"
#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

namespace infini::fuzz {

namespace fs = std::filesystem;

namespace {

InfiniTransformer make_model(const ModelConfig& c) {
  torch::manual_seed(1234);
  return InfiniTransformer(c);
}

// The same safetensors bytes without the data checksum infini writes: mutated data then reaches
// the checks behind the checksum (shapes, dtypes, finite values) instead of failing it every time.
std::string without_checksum(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  header["__metadata__"].erase("infini_checksum");
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return out + json + bytes.substr(8 + n);
}

std::string read_back(const std::string& path) {
  auto bytes = io::read_file(path);
  fs::remove(path);
  return bytes;
}

// config.json, model.safetensors, tokenizer.json [, tokenizer.model] of a saved model folder.
std::vector<std::string> model_folder(const ModelConfig& c, const data::Tokenizer& tokenizer) {
  const auto dir = (fs::path(scratch_dir()) / "seed-model").string();
  fs::remove_all(dir);
  auto model = make_model(c);
  io::save_model(dir, model, tokenizer);
  std::vector<std::string> parts;
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model"})
    if (fs::exists(fs::path(dir) / name)) parts.push_back(io::read_file((fs::path(dir) / name).string()));
  fs::remove_all(dir);
  return parts;
}

std::unique_ptr<data::Tokenizer> train_tokenizer(const std::string& source_dir) {
  const auto root = fs::path(scratch_dir()) / "seed-spm";
  fs::create_directories(root / "corpus");
  const auto text = io::read_file(source_dir + "/data/sample/kjv-genesis-exodus.txt").substr(0, 30000);
  io::write_file_atomic((root / "corpus" / "genesis.txt").string(), text);
  data::SentencePieceTraining o;
  o.input = (root / "corpus").string();
  o.vocab_size = 400;
  o.out = (root / "t.model").string();
  data::train_sentencepiece(o);
  auto tokenizer = data::load_sentencepiece(o.out);
  fs::remove_all(root);
  return tokenizer;
}

std::string check_parts(const std::vector<std::string>& parts) {
  for (const auto& p : parts)
    if (p.find(kPartMarker) != std::string::npos)
      throw std::runtime_error("a seed file contains the part marker; change the seed");
  return join_parts(parts);
}

}  // namespace

std::map<std::string, std::vector<Seed>> make_seeds(const std::string& source_dir) {
  std::map<std::string, std::vector<Seed>> seeds;
  const auto byte = data::byte_tokenizer();
  const auto spm = train_tokenizer(source_dir);

  // safetensors: every dtype, an empty and a 0-d tensor, metadata; a model's weights; no tensors.
  {
    io::TensorFile f;
    f.metadata = {{"format", "infini"}, {"note", "fuzz seed"}};
    f.tensors["f32"] = torch::arange(6, torch::kFloat32).reshape({2, 3});
    f.tensors["f64"] = torch::tensor(2.5, torch::kFloat64);
    f.tensors["bf16"] = torch::ones({3}, torch::kBFloat16);
    f.tensors["f16"] = torch::ones({2, 1}, torch::kFloat16);
    f.tensors["i64"] = torch::tensor({-1, 0, 7}, torch::kInt64);
    f.tensors["i32"] = torch::tensor({1, 2}, torch::kInt32);
    f.tensors["i16"] = torch::tensor({3}, torch::kInt16);
    f.tensors["i8"] = torch::tensor({-4, 4}, torch::kInt8);
    f.tensors["u8"] = torch::tensor({255}, torch::kUInt8);
    f.tensors["bool"] = torch::tensor({true, false}, torch::kBool);
    f.tensors["empty"] = torch::zeros({0, 4}, torch::kFloat32);
    seeds["safetensors"].push_back({"dtypes", io::encode_safetensors(f)});
    seeds["safetensors"].push_back({"no-tensors", io::encode_safetensors({})});
    seeds["safetensors"].push_back({"model", model_folder(tiny_config(16, MemoryMode::InfiniDelta), *byte)[1]});
  }

  // config: every memory mode, the extensions, routing, dtypes; a hand-written partial config.
  {
    auto& s = seeds["config"];
    s.push_back({"default", ModelConfig().to_json().dump(2)});
    for (const auto& c : state_configs())
      s.push_back({fmt::format("tiny-{}{}", to_string(c.memory), c.mod_every ? "-routed" : ""), c.to_json().dump()});
    auto bf16 = tiny_config(256, MemoryMode::None);
    bf16.dtype = torch::kBFloat16;
    bf16.tie_embeddings = true;
    s.push_back({"bf16-tied-none", bf16.to_json().dump(2)});
    auto mlp = tiny_config(256, MemoryMode::InfiniLinear);
    mlp.dtype = torch::kFloat64;
    mlp.mod_every = 1;
    mlp.mod_router = RouterWeight::Sigmoid;
    mlp.mod_predictor = CausalSelector::Mlp;
    s.push_back({"f64-routed-mlp", mlp.to_json().dump(2)});
    s.push_back({"partial", R"({"d_model": 64, "n_heads": 2, "memory": "xl", "segment_len": 128})"});
  }

  // model_dir: byte and SentencePiece models, a routed XL one.
  {
    auto& s = seeds["model_dir"];
    s.push_back({"byte-infini-delta", check_parts(model_folder(tiny_config(256, MemoryMode::InfiniDelta), *byte))});
    auto xl = state_configs()[1];
    xl.vocab_size = 256;
    s.push_back({"byte-routed-xl", check_parts(model_folder(xl, *byte))});
    auto conv = state_configs()[0];
    conv.vocab_size = spm->vocab_size();
    s.push_back({"sentencepiece-routed-conv", check_parts(model_folder(conv, *spm))});
  }

  // state: each fixed model's state before any text, inside a segment, and past the first segment.
  {
    auto& s = seeds["state"];
    const auto configs = state_configs();
    for (size_t k = 0; k < configs.size(); ++k) {
      SessionEngine session(make_model(configs[k]));
      const auto path = (fs::path(scratch_dir()) / "seed.state").string();
      int64_t fed = 0;
      for (const int64_t n : {0, 2, 5}) {
        std::vector<int64_t> tokens;
        for (int64_t i = 0; i < n; ++i) tokens.push_back((fed + i) % configs[k].vocab_size);
        if (n > 0) session.feed(tokens);
        fed += n;
        session.save(path);
        const auto file = read_back(path);
        s.push_back({fmt::format("model{}-after{}", k, fed), std::string(1, static_cast<char>(k)) + file});
        s.push_back({fmt::format("model{}-after{}-unchecked", k, fed),
                     std::string(1, static_cast<char>(k)) + without_checksum(file)});
      }
    }
  }

  // checkpoint: a fresh run's checkpoint of two models.
  {
    auto& s = seeds["checkpoint"];
    for (const auto& c : {state_configs()[0], state_configs()[2]}) {
      auto model = make_model(c);
      auto optimizer = optimizer_for(model);
      RunRecord run;
      run.data = "/data/corpus/train";
      run.step = 3;
      run.threads = 1;
      const auto path = (fs::path(scratch_dir()) / "seed.checkpoint").string();
      save_checkpoint(path, model, optimizer, run);
      const auto file = read_back(path);
      s.push_back({fmt::format("{}", to_string(c.memory)), file});
      s.push_back({fmt::format("{}-unchecked", to_string(c.memory)), without_checksum(file)});
    }
  }

  // tokenizer: tokenizer.json (+ tokenizer.model) and a text.
  {
    auto& s = seeds["tokenizer"];
    const auto dir = (fs::path(scratch_dir()) / "seed-tokenizer").string();
    fs::create_directories(dir);
    const auto files = [&](const data::Tokenizer& t) {
      t.save(dir);
      std::vector<std::string> parts{io::read_file(dir + "/tokenizer.json"), ""};
      if (fs::exists(dir + "/tokenizer.model")) parts[1] = io::read_file(dir + "/tokenizer.model");
      fs::remove_all(dir);
      fs::create_directories(dir);
      return parts;
    };
    auto b = files(*byte);
    b.push_back("And God said, Let there be light\n\xff\xfe binary too");
    s.push_back({"byte", check_parts(b)});
    auto p = files(*spm);
    p.push_back("And God said, Let there be light: caf\xc3\xa9 \xe2\x82\xac 1234\n\tend");
    s.push_back({"sentencepiece", check_parts(p)});
    fs::remove_all(dir);
  }
  // serve_request: one input of each kind (fuzz_serve_request.cpp says what the first byte picks).
  {
    auto& s = seeds["serve_request"];
    s.push_back({"completion", std::string("\x00") +
                                   R"({"model":"m","prompt":"In the beginning","max_tokens":8,"temperature":0.7,)"
                                   R"("top_p":0.9,"top_k":5,"repetition_penalty":1.2,"stop":["\n","x"],"seed":3,)"
                                   R"("stream":true,"n":1,"session":"0123456789abcdef0123456789abcdef"})"});
    s.push_back({"completion-array-prompt", std::string("\x00") + R"({"prompt":["a"],"stop":"s","logprobs":null})"});
    s.push_back({"create", std::string("\x01") + R"({"text":"a book"})"});
    s.push_back({"append", std::string("\x02") + R"({"text":"more of it\n"})"});
    s.push_back({"authorization", std::string("\x03") + "Bearer k3y\nk3y"});
    s.push_back({"record", std::string("\x04") +
                               R"({"id":"0123456789abcdef0123456789abcdef","created":1,"status":"reading",)"
                               R"("tokens":5,"bytes":5,"note":"x"})"});
  }
  return seeds;
}

}  // namespace infini::fuzz
