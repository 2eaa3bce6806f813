// Hostile model folders, state files and weights: each input a review or a probe once got past the
// loaders (issue 44) must now be refused with infini::Error naming the file and the field, without
// allocating what the file asks for.
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "data/documents.h"
#include "data/tokenizer.h"
#include "eval/evaluate.h"
#include "eval/passkey_eval.h"
#include "infer/session.h"
#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "infini/config.h"
#include "test_util.h"
#include "util/json_text.h"

namespace infini {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::temp_dir;
using testing::write_text;

ModelConfig small_config() { return testing::byte_level_config(); }

std::string saved_model(const std::string& name) {
  const auto dir = temp_dir(name);
  torch::manual_seed(5);
  InfiniTransformer model(small_config());
  io::save_model(dir, model, *data::byte_tokenizer());
  return dir;
}

// The 8-byte little-endian header length of a safetensors file.
uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return n;
}
void set_header_length(std::string& bytes, uint64_t n) {
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
}

// A file of one header (written as given, padded) and `data`: hostile headers the encoder never writes.
std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string json = header;
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  set_header_length(out, json.size());
  return out + json + data;
}

std::string nested(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST(Hostile, DeeplyNestedJsonIsRefusedBeforeParsing) {
  const auto dir = temp_dir("nested");
  write_text(dir + "/config.json", "{\"d_model\": " + nested(100000) + "}");
  expect_error([&] { ModelConfig::from_file(dir + "/config.json"); }, {"config.json", "nested deeper than"});
  // Nesting a real file uses is fine, and a bad value is quoted briefly.
  write_text(dir + "/config.json", "{\"d_model\": " + nested(20) + "}");
  expect_error([&] { ModelConfig::from_file(dir + "/config.json"); }, {"'d_model'", "must be an integer"});
  const auto long_value = "{\"d_model\": \"" + std::string(10000, 'x') + "\"}";
  try {
    ModelConfig::from_json(parse_json(long_value, "long"), "long");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_LT(std::strlen(e.what()), 300u) << "the bad value is quoted whole";
  }
  // The safetensors header goes through the same parser.
  expect_error([&] { io::decode_safetensors(raw_safetensors("{\"a\": " + nested(5000) + "}", ""), "f"); },
               {"nested deeper than"});
}

TEST(Hostile, HugeConfigSizesAreRefusedWithTheFieldNamed) {
  const std::pair<const char*, int64_t> cases[] = {
      {"n_layers", 1000000000},     {"segment_len", 1000000}, {"d_model", int64_t{1} << 40},
      {"d_ff", int64_t{1} << 40},   {"vocab_size", int64_t{1} << 40}, {"n_heads", 1000000},
      {"d_key", int64_t{1} << 30},  {"d_value", int64_t{1} << 30},
  };
  for (const auto& [field, value] : cases) {
    auto j = small_config().to_json();
    j[field] = value;
    expect_error([&] { ModelConfig::from_json(j, "config.json"); }, {"config.json", std::string("'") + field + "'"});
  }
  // Each size within bounds, but all of them together too many parameters.
  auto j = small_config().to_json();
  j["d_model"] = 60000;
  j["d_ff"] = 60000;
  j["n_layers"] = 1000;
  expect_error([&] { ModelConfig::from_json(j, "config.json"); }, {"parameters"});
}

// Fuzzing found gate_init 1e308, which no float holds: LibTorch's overflow error named no field.
TEST(Hostile, RealValuedConfigFieldsOutsideAFloatAreRefusedWithTheFieldNamed) {
  const std::pair<const char*, double> cases[] = {
      {"gate_init", 1e308}, {"gate_init", -1e6}, {"rope_theta", 1e300}, {"norm_eps", 1e40},
      {"memory_eps", 1e40}, {"init_std", 1e39},
  };
  for (const auto& [field, value] : cases) {
    auto j = small_config().to_json();
    j[field] = value;
    expect_error([&] { ModelConfig::from_json(j, "config.json"); }, {"config.json", std::string("'") + field + "'"});
  }
}

// The config's arithmetic (parameter_shapes, parameter_count) against the model it describes.
void expect_config_describes_model(const ModelConfig& c) {
  InfiniTransformer model(c);
  std::map<std::string, std::vector<int64_t>> actual;
  for (const auto& p : model->named_parameters()) actual[p.key()] = p.value().sizes().vec();
  EXPECT_EQ(c.parameter_shapes(), actual) << c.to_json().dump();
  EXPECT_EQ(c.parameter_count(), static_cast<double>(model->parameter_count())) << c.to_json().dump();
}

TEST(Hostile, TheConfigDescribesEveryParameterWithoutBuilding) {
  for (const auto mode : testing::kAllModes) {
    auto c = small_config();
    c.memory = mode;
    expect_config_describes_model(c);
    if (mode == MemoryMode::Knn || mode == MemoryMode::Rmt) {  // dense blocks only; the kNN block moved
      c.knn_layer = 0;
      c.rmt_tokens = 3;
      c.tie_embeddings = true;
      expect_config_describes_model(c);
      continue;
    }
    c.mod_every = 2;
    c.tie_embeddings = true;
    if (c.has_compressive_memory()) c.qk_conv = 3;
    expect_config_describes_model(c);
    if (c.has_compressive_memory()) {
      c.qk_conv = 0;
      c.memory_key_shift = true;
      expect_config_describes_model(c);
    }
  }
}

TEST(Hostile, ConfigPromisingMoreThanTheWeightsIsRefusedBeforeBuilding) {
  const auto dir = saved_model("promise");
  auto j = small_config().to_json();
  j["n_layers"] = 1000;
  j["d_model"] = 4096;
  j["d_ff"] = 16384;  // about 200 billion bytes if it were built
  io::write_file_atomic(dir + "/config.json", j.dump());
  // Built, this model would take about 200 GB: the error comes first.
  expect_error([&] { io::load_model(dir); }, {"model.safetensors", "shape", "config.json implies"});
}

TEST(Hostile, WeightsOfAnotherDtypeAreRefusedNotConverted) {
  for (const auto dtype : {torch::kInt8, torch::kInt32, torch::kInt64, torch::kBool, torch::kFloat64}) {
    const auto dir = saved_model("dtype");
    auto file = io::load_safetensors(dir + "/model.safetensors");
    auto& t = file.tensors.at("norm.weight");
    t = t.to(dtype);
    io::save_safetensors(dir + "/model.safetensors", file);
    expect_error([&] { io::load_model(dir); }, {"model.safetensors", "'norm.weight'", c10::toString(dtype), "Float"});
  }
}

TEST(Hostile, NonFiniteWeightsAreRefused) {
  const auto dir = saved_model("nan");
  auto file = io::load_safetensors(dir + "/model.safetensors");
  file.tensors.at("embed.weight")[3][1] = std::numeric_limits<float>::quiet_NaN();
  io::save_safetensors(dir + "/model.safetensors", file);
  expect_error([&] { io::load_model(dir); }, {"'embed.weight'", "NaN"});
}

TEST(Hostile, HeaderLengthOffByOneIsRefused) {
  io::TensorFile file;
  file.tensors["a"] = torch::arange(6, torch::kFloat32);
  file.tensors["b"] = torch::ones({2, 3}, torch::kFloat32);
  const auto good = io::encode_safetensors(file);
  ASSERT_NO_THROW(io::decode_safetensors(good, "good"));
  for (const int delta : {-1, +1, -8, +8}) {
    auto bad = good;
    set_header_length(bad, header_length(good) + static_cast<uint64_t>(delta));
    EXPECT_THROW(io::decode_safetensors(bad, "bad"), Error) << "header length off by " << delta;
  }
}

TEST(Hostile, TrailingOrOverlappingDataIsRefused) {
  const auto tail = raw_safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", "abcdEXTRA");
  expect_error([&] { io::decode_safetensors(tail, "f"); }, {"f:", "cover 4 bytes", "holds 9"});
  const auto overlap = raw_safetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                                       R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                       "abcdefgh");
  expect_error([&] { io::decode_safetensors(overlap, "f"); }, {"'b'", "starts at data byte 4"});
}

TEST(Hostile, AWrongDtypeLabelSaysSoNotTruncated) {
  const auto f16 = raw_safetensors(R"({"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 16]}})",
                                   std::string(16, '\0'));
  try {
    io::decode_safetensors(f16, "f");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("F16"), std::string::npos) << m;
    EXPECT_NE(m.find("make 8 bytes"), std::string::npos) << m;
    EXPECT_EQ(m.find("truncated"), std::string::npos) << m;
  }
  // A real truncation still says so.
  const auto cut = raw_safetensors(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                                   std::string(10, '\0'));
  expect_error([&] { io::decode_safetensors(cut, "f"); }, {"truncated"});
}

TEST(Hostile, ShapesThatWrapSixtyFourBitsAreTheLoadersError) {
  for (const auto* shape : {"[4611686018427387904, 4]", "[4294967296, 4294967296, 0]", "[2147483648, 2147483648, 4]",
                            "[0, 9223372036854775807, 9223372036854775807]"}) {
    const auto bytes = raw_safetensors(fmt::format(R"({{"a": {{"dtype": "F32", "shape": {}, "data_offsets": [0, 0]}}}})",
                                                   shape), "");
    expect_error([&] { io::decode_safetensors(bytes, "f"); }, {"'a'", "too large to address"});
  }
}

TEST(Hostile, ShapesAndOffsetsMustBeNonNegativeIntegers) {
  for (const auto* entry : {R"("shape": [1e30], "data_offsets": [0, 4])", R"("shape": [-1], "data_offsets": [0, 4])",
                            R"("shape": [1], "data_offsets": [-4.5, 4])", R"("shape": [1.5], "data_offsets": [0, 4])",
                            R"("shape": 1, "data_offsets": [0, 4])"}) {
    const auto bytes = raw_safetensors(fmt::format(R"({{"a": {{"dtype": "F32", {}}}}})", entry), "abcd");
    expect_error([&] { io::decode_safetensors(bytes, "f"); }, {"'a'", "integers"});
  }
}

TEST(Hostile, AFlippedBitFailsTheChecksum) {
  io::TensorFile file;
  file.tensors["w"] = torch::randn({64}, torch::kFloat32);
  auto bytes = io::encode_safetensors(file);
  ASSERT_NO_THROW(io::decode_safetensors(bytes, "good"));
  bytes[bytes.size() - 37] ^= 0x10;
  expect_error([&] { io::decode_safetensors(bytes, "ckpt"); }, {"ckpt", "checksum", "damaged"});
}

TEST(Hostile, AFormatVersionFromTheFutureIsRefused) {
  const auto dir = saved_model("version");
  auto file = io::load_safetensors(dir + "/model.safetensors");
  file.metadata["format_version"] = "99";
  io::save_safetensors(dir + "/model.safetensors", file);
  expect_error([&] { io::load_model(dir); }, {"model.safetensors", "'format_version'", "99"});
  auto j = small_config().to_json();
  j["format_version"] = 99;
  expect_error([&] { ModelConfig::from_json(j, "config.json"); }, {"format_version", "99"});
}

TEST(Hostile, TheTokenizerFileMustLieInTheModelFolder) {
  const auto dir = saved_model("tokpath");
  for (const auto* name : {"/etc/passwd", "../tokenizer.model", "sub/tokenizer.model", ".."}) {
    write_text(dir + "/tokenizer.json", fmt::format(R"({{"type": "sentencepiece", "model": "{}"}})", name));
    expect_error([&] { data::load_tokenizer(dir); }, {"tokenizer.json", "'model'", "in the model folder"});
  }
}

TEST(Hostile, TemporariesOfKilledWritesAreRemovedByTheNextWrite) {
  const auto dir = temp_dir("stale");
  // A pid above the kernel's limit (pid_max is at most 2^22) belongs to no process.
  write_text(dir + "/state.tmp.99999999", "half a state");
  write_text(dir + "/other.tmp.99999999", "someone else's");
  io::write_file_atomic(dir + "/state", "whole");
  EXPECT_FALSE(fs::exists(dir + "/state.tmp.99999999"));
  EXPECT_TRUE(fs::exists(dir + "/other.tmp.99999999"));
  EXPECT_EQ(io::read_file(dir + "/state"), "whole");
}

TEST(Hostile, AFolderWhereAFileBelongsIsNamed) {
  const auto dir = temp_dir("folder");
  expect_error([&] { io::read_file(dir); }, {dir, "is a folder"});
}

// A state file of a session that has read a few tokens, then damaged by `damage`.
class HostileState : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("state");
    torch::manual_seed(9);
    model_ = InfiniTransformer(small_config());
    SessionEngine session(model_);
    session.feed({1, 2, 3, 4, 5, 6});  // one segment and a half
    session.save(dir_ + "/good.state");
  }

  template <typename Damage>
  std::string damaged(const std::string& name, Damage damage) {
    auto file = io::load_safetensors(dir_ + "/good.state");
    damage(file);
    const auto path = dir_ + "/" + name + ".state";
    io::save_safetensors(path, file);
    return path;
  }

  // The load fails naming the file and `field`, and the session keeps what it had.
  void expect_refused(const std::string& path, std::initializer_list<std::string> needles) {
    SessionEngine session(model_);
    session.feed({7, 8});
    const auto before = session.last_logits().clone();
    expect_error([&] { session.load(path); }, needles);
    EXPECT_EQ(session.position(), 2);
    EXPECT_TRUE(torch::equal(session.last_logits(), before));
  }

  std::string dir_;
  InfiniTransformer model_{nullptr};
};

TEST_F(HostileState, TheGoodFileLoads) {
  SessionEngine session(model_);
  session.load(dir_ + "/good.state");
  EXPECT_EQ(session.position(), 6);
}

TEST_F(HostileState, LastLogitsOfTheWrongShapeOrValuesAreRefused) {
  for (const auto& shape : std::vector<std::vector<int64_t>>{{0}, {50000, 0}, {257}, {255}, {1, 256}})
    expect_refused(damaged("shape", [&](io::TensorFile& f) { f.tensors["last_logits"] = torch::zeros(shape); }),
                   {"shape.state", "'last_logits'", "shape"});
  expect_refused(damaged("int", [&](io::TensorFile& f) {
                   f.tensors["last_logits"] = torch::zeros({256}, torch::kInt32);
                 }),
                 {"'last_logits'", "Int"});
  expect_refused(damaged("nan", [&](io::TensorFile& f) { f.tensors["last_logits"][7] = NAN; }),
                 {"'last_logits'", "NaN"});
  expect_refused(damaged("missing", [&](io::TensorFile& f) { f.tensors.erase("last_logits"); }),
                 {"'last_logits'", "missing"});
}

TEST_F(HostileState, NonFiniteMemoryIsRefused) {
  expect_refused(damaged("inf", [&](io::TensorFile& f) { f.tensors["layers.1.M"][0][0][0][0] = INFINITY; }),
                 {"'layers.1.M'", "NaN or infinite"});
}

TEST_F(HostileState, ABatchOtherThanOneIsRefusedBeforeAllocating) {
  // 50,000 sequences with no cached rows: a 600 KB file that once built 6 GB of memory.
  expect_refused(damaged("batch", [&](io::TensorFile& f) {
                   for (int l = 0; l < 2; ++l)
                     for (const auto* name : {"seg_k", "seg_v"}) {
                       const auto key = fmt::format("layers.{}.{}", l, name);
                       auto sizes = f.tensors[key].sizes().vec();
                       sizes[0] = 50000;
                       sizes[2] = 0;
                       f.tensors[key] = torch::zeros(sizes);
                     }
                 }),
                 {"'layers.0.seg_k'", "batch of 1"});
}

TEST_F(HostileState, CachesAndCountersMustFitTheConfig) {
  expect_refused(damaged("rows", [&](io::TensorFile& f) {
                   f.tensors["layers.0.seg_k"] = torch::zeros({1, 2, 3, 4});
                 }),
                 {"'layers.0.seg_k'", "shape"});
  expect_refused(damaged("dtype", [&](io::TensorFile& f) {
                   f.tensors["layers.0.seg_v"] = f.tensors["layers.0.seg_v"].to(torch::kFloat64);
                 }),
                 {"'layers.0.seg_v'", "Double"});
  expect_refused(damaged("counter", [&](io::TensorFile& f) {
                   f.tensors["pos_in_segment"] = torch::tensor({2, 2}, torch::kInt64);
                 }),
                 {"'pos_in_segment'", "one int64"});
  expect_refused(damaged("extra", [&](io::TensorFile& f) { f.tensors["layers.9.M"] = torch::zeros({1}); }),
                 {"unexpected tensor 'layers.9.M'"});
}

TEST(Hostile, NothingToScoreIsAnErrorNotAPerfectScore) {
  const auto dir = temp_dir("eval");
  write_text(dir + "/one.txt", "x");
  InfiniTransformer model(small_config());
  expect_error([&] { evaluate(model, *data::byte_tokenizer(), data::list_documents(dir + "/one.txt"), {}); },
               {"nothing to score", "one.txt"});
}

TEST(Hostile, PasskeyLengthsBelowTheShortestPromptAreRefused) {
  InfiniTransformer model(small_config());
  PasskeyEvalOptions o;
  o.lengths = {1};
  o.depths = {0.5};
  o.trials = 1;
  expect_error([&] { evaluate_passkey(model, *data::byte_tokenizer(), o); }, {"passkey length 1", "shortest prompt"});
}

TEST(Hostile, AnAnswerThatGoesOnWithADigitIsNotExact) {
  const auto bytes = data::byte_tokenizer();
  for (const char c : std::string("0123456789")) EXPECT_FALSE(answer_stops(*bytes, c)) << c;
  for (const char c : std::string(" .\n,aZ")) EXPECT_TRUE(answer_stops(*bytes, c)) << c;
}

}  // namespace
}  // namespace infini
