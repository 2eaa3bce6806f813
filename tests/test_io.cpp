// Configs, safetensors and model folders: round trips, and a clear error for every bad input.
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "io/atomic_file.h"
#include "data/tokenizer.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "test_util.h"
#include "infini/error.h"

namespace infini {
namespace {

namespace fs = std::filesystem;

using testing::expect_error;
using testing::temp_dir;

TEST(Config, DefaultsAreTheReferenceConfig) {
  const ModelConfig c;
  InfiniTransformer model(c);
  // vocab 256, d_model 256, 4 layers, 4 heads x 64, SwiGLU 682: 3.3M parameters.
  EXPECT_EQ(model->parameter_count(), 3277072);
  const auto file = ModelConfig::from_file(std::string(INFINI_SOURCE_DIR) + "/configs/reference.json");
  EXPECT_EQ(file.to_json(), c.to_json());
}

TEST(Config, RoundTripsThroughJson) {
  auto c = testing::tiny_config(MemoryMode::XL);
  c.tie_embeddings = true;
  EXPECT_EQ(ModelConfig::from_json(c.to_json(), "x").to_json(), c.to_json());
  // The key shift is listed only when on, so configs without it keep their identity.
  auto shifted = testing::tiny_config(MemoryMode::InfiniLinear);
  EXPECT_FALSE(shifted.to_json().contains("memory_key_shift"));
  shifted.memory_key_shift = true;
  EXPECT_TRUE(ModelConfig::from_json(shifted.to_json(), "x").memory_key_shift);
  auto convolved = testing::tiny_config(MemoryMode::InfiniDelta);
  EXPECT_FALSE(convolved.to_json().contains("qk_conv"));
  convolved.qk_conv = 4;
  EXPECT_EQ(ModelConfig::from_json(convolved.to_json(), "x").qk_conv, 4);
  // qk_conv_query_width, removed, only set where the taps started: a model saved with it still loads,
  // and saves without it.
  auto old = convolved.to_json();
  old["qk_conv_query_width"] = 2;
  EXPECT_EQ(ModelConfig::from_json(old, "x").to_json(), convolved.to_json());
}

TEST(Config, BadFieldsAreNamed) {
  using nlohmann::json;
  expect_error([] { ModelConfig::from_json(json{{"memory", "infini"}}, "c.json"); },
               {"c.json", "memory", "infini-linear, infini-delta, none, xl, knn"});
  expect_error([] { ModelConfig::from_json(json{{"d_key", 63}}, "c.json"); }, {"d_key", "even"});
  expect_error([] { ModelConfig::from_json(json{{"n_heads", 0}}, "c.json"); }, {"n_heads", "from 1 to"});
  expect_error([] { ModelConfig::from_json(json{{"d_model", "wide"}}, "c.json"); }, {"d_model", "integer"});
  expect_error([] { ModelConfig::from_json(json{{"dtype", "float16"}}, "c.json"); },
               {"dtype", "float32, float64, bfloat16"});
  expect_error([] { ModelConfig::from_json(json{{"segmnet_len", 8}}, "c.json"); },
               {"unknown field", "segmnet_len"});
  expect_error([] { ModelConfig::from_json(json{{"format_version", 9}}, "c.json"); }, {"format_version"});
  expect_error([] { ModelConfig::from_json(json::array(), "c.json"); }, {"JSON object"});
  expect_error([] { ModelConfig::from_json(json{{"memory", "xl"}, {"memory_key_shift", true}}, "c.json"); },
               {"c.json", "memory_key_shift", "compressive memory"});
  expect_error([] { ModelConfig::from_json(json{{"memory_key_shift", 1}}, "c.json"); },
               {"memory_key_shift", "true or false"});
  // local_key_shift was removed: a model trained with it is refused with the build that reads it.
  expect_error([] { ModelConfig::from_json(json{{"memory_key_shift", true}, {"local_key_shift", true}}, "c.json"); },
               {"c.json", "local_key_shift", "removed", "dfe01e6"});
  EXPECT_FALSE(ModelConfig::from_json(json{{"local_key_shift", false}}, "c.json").memory_key_shift);
  expect_error([] { ModelConfig::from_json(json{{"qk_conv", 1}}, "c.json"); }, {"c.json", "qk_conv", "2..8"});
  expect_error([] { ModelConfig::from_json(json{{"qk_conv", 3}, {"memory_key_shift", true}}, "c.json"); },
               {"qk_conv", "memory_key_shift"});
  expect_error([] { ModelConfig::from_json(json{{"qk_conv", 3}, {"qk_conv_query_width", "2"}}, "c.json"); },
               {"c.json", "qk_conv_query_width", "integer"});
}

TEST(Config, BadFilesAreNamed) {
  const auto dir = temp_dir("config");
  expect_error([&] { ModelConfig::from_file(dir + "/missing.json"); }, {"missing.json", "cannot open"});
  std::ofstream(dir + "/broken.json") << "{\"d_model\": ";
  expect_error([&] { ModelConfig::from_file(dir + "/broken.json"); }, {"broken.json", "not valid JSON"});
}

TEST(Safetensors, RoundTripsEveryDtype) {
  io::TensorFile f;
  f.tensors["a"] = torch::randn({3, 4}, torch::kFloat64);
  f.tensors["b"] = torch::randn({5}).to(torch::kBFloat16);
  f.tensors["c"] = torch::arange(7, torch::kInt64).reshape({7, 1});
  f.tensors["scalar"] = torch::tensor(2.5f).reshape({});
  f.tensors["strided"] = torch::randn({4, 6}).t();  // non-contiguous input
  f.metadata["note"] = "hello";
  const auto back = io::decode_safetensors(io::encode_safetensors(f), "mem");
  ASSERT_EQ(back.tensors.size(), f.tensors.size());
  for (const auto& [name, t] : f.tensors) {
    EXPECT_EQ(back.tensors.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back.tensors.at(name), t)) << name;
  }
  EXPECT_EQ(back.metadata.at("note"), "hello");
}

TEST(Safetensors, TruncatedOrCorruptFilesAreRefused) {
  io::TensorFile f;
  f.tensors["w"] = torch::randn({64, 64});
  const auto bytes = io::encode_safetensors(f);
  expect_error([&] { io::decode_safetensors(bytes.substr(0, bytes.size() - 10), "w.st"); },
               {"w.st", "'w'", "truncated"});
  expect_error([&] { io::decode_safetensors(bytes.substr(0, 5), "w.st"); }, {"w.st", "not a safetensors"});
  auto corrupt = bytes;
  corrupt[9] = '#';
  expect_error([&] { io::decode_safetensors(corrupt, "w.st"); }, {"w.st", "corrupt"});
}

TEST(ModelDir, SaveThenLoadGivesTheSameModel) {
  const auto dir = temp_dir("model");
  auto c = testing::tiny_config(MemoryMode::InfiniDelta, torch::kFloat32);
  torch::manual_seed(3);
  InfiniTransformer model(c);
  io::save_model(dir, model, *data::byte_tokenizer());
  auto loaded = io::load_model(dir);
  EXPECT_EQ(loaded->config().to_json(), c.to_json());
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(c.vocab_size, {1, 9}, torch::kInt64);
  EXPECT_TRUE(torch::equal(model->forward(tokens, model->initial_state(1)).logits,
                           loaded->forward(tokens, loaded->initial_state(1)).logits));
  // No temporary files are left behind by the atomic writes.
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(ModelDir, MismatchedOrMissingFilesAreRefused) {
  const auto dir = temp_dir("mismatch");
  auto c = testing::tiny_config(MemoryMode::InfiniDelta, torch::kFloat32);
  InfiniTransformer model(c);
  io::save_model(dir, model, *data::byte_tokenizer());
  expect_error([&] { io::load_model(dir + "/nope"); }, {"nope", "not a model folder"});
  // A config that no longer matches the weights.
  auto other = c;
  other.d_ff = 21;
  io::write_file_atomic(dir + "/config.json", other.to_json().dump());
  expect_error([&] { io::load_model(dir); }, {"model.safetensors", "mlp", "config.json implies"});
  fs::remove(dir + "/model.safetensors");
  expect_error([&] { io::load_model(dir); }, {"model.safetensors", "cannot open"});
}

TEST(State, RoundTripsThroughTensors) {
  auto c = testing::tiny_config(MemoryMode::XL);
  torch::manual_seed(8);
  InfiniTransformer model(c);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(c.vocab_size, {2, 2 * c.segment_len + 3}, torch::kInt64);
  auto state = model->forward(tokens, model->initial_state(2)).state;  // ends mid-segment
  const auto restored = ModelState::from_tensors(c, state.to_tensors(), 2, torch::kCPU);
  EXPECT_EQ(restored.pos_in_segment(), state.pos_in_segment());
  EXPECT_EQ(restored.bytes(), state.bytes());
  const auto next = torch::randint(c.vocab_size, {2, 4}, torch::kInt64);
  EXPECT_TRUE(torch::equal(model->forward(next, state).logits, model->forward(next, restored).logits));
}

}  // namespace
}  // namespace infini
