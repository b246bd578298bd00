// Model files: llm.c .bin (fp32 v3, bf16 v5) and HF safetensors round trips to the bit, the
// Conv1D transpose and name mapping checked against a safetensors file written here by hand,
// and corrupt files (bad magic, truncated, wrong shapes) rejected with the file named.
#include <sys/stat.h>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/model/model_io.h"
#include "engine/util/bf16.h"
#include "engine/util/errors.h"
#include "engine/util/rng.h"
#include "tests/engine_test_util.h"

using namespace gpt2;

namespace {

using namespace testutil;  // tiny_config, tmp_dir, slurp, spit, same_bits, error_of

ModelConfig small_config() { return testutil::tiny_config(2, 32, 100, 16); }

ModelWeights random_weights(const ModelConfig& c, uint64_t seed) {
  ModelWeights w;
  w.config = c;
  w.data.resize(static_cast<size_t>(num_parameters(c)));
  Rng r(seed);
  for (auto& x : w.data) x = static_cast<float>(r.normal());
  // wte's padding rows are zero, as in every llm.c file (safetensors has no room for them).
  for (int64_t i = static_cast<int64_t>(c.vocab_size) * c.channels;
       i < static_cast<int64_t>(c.padded_vocab) * c.channels; ++i)
    w.data[i] = 0.0f;
  return w;
}

// An independent safetensors writer (F32 only), with HF's names and layouts.
struct StEntry {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};
void write_st(const std::string& path, const std::vector<StEntry>& entries) {
  nlohmann::json h;
  uint64_t off = 0;
  for (const auto& e : entries) {
    h[e.name] = {{"dtype", "F32"}, {"shape", e.shape}, {"data_offsets", {off, off + 4 * e.data.size()}}};
    off += 4 * e.data.size();
  }
  const std::string hs = h.dump();
  const uint64_t n = hs.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  out += hs;
  for (const auto& e : entries) out.append(reinterpret_cast<const char*>(e.data.data()), 4 * e.data.size());
  spit(path, out);
}

}  // namespace

TEST_CASE("llm.c model files round-trip to the bit in fp32 and bf16", "[model_io]") {
  const std::string d = tmp_dir("model_io_llmc");
  const ModelWeights w = random_weights(small_config(), 1);
  save_llmc_model(d + "/a.bin", w, WeightDType::FP32);
  const std::string bytes = slurp(d + "/a.bin");
  REQUIRE(bytes.size() == 1024 + 4 * w.data.size());
  int32_t h[8];
  std::memcpy(h, bytes.data(), sizeof h);
  CHECK(h[0] == 20240326);
  CHECK(h[1] == 3);
  CHECK((h[2] == 16 && h[3] == 100 && h[4] == 2 && h[5] == 4 && h[6] == 32 && h[7] == 128));
  const ModelWeights r = load_llmc_model(d + "/a.bin");
  CHECK(same_bits(r.data, w.data));
  CHECK(model_config_difference(r.config, w.config).empty());
  save_llmc_model(d + "/b.bin", r, WeightDType::FP32);
  CHECK(slurp(d + "/b.bin") == bytes);

  save_llmc_model(d + "/a16.bin", w, WeightDType::BF16);
  const std::string b16 = slurp(d + "/a16.bin");
  REQUIRE(b16.size() == 1024 + 2 * w.data.size());
  const ModelWeights r16 = load_llmc_model(d + "/a16.bin");
  CHECK(r16.source_dtype == WeightDType::BF16);
  for (size_t i = 0; i < w.data.size(); i += 97)
    CHECK(r16.data[i] == bf16_bits_to_float(float_to_bf16_bits(w.data[i])));
  save_llmc_model(d + "/b16.bin", r16, WeightDType::BF16);
  CHECK(slurp(d + "/b16.bin") == b16);
  // No temporary file is left behind.
  for (const auto& e : std::filesystem::directory_iterator(d)) CHECK(e.path().extension() != ".tmp");
}

TEST_CASE("safetensors round-trips to the bit and llm.c -> safetensors -> llm.c is identical", "[model_io]") {
  const std::string d = tmp_dir("model_io_st");
  const ModelWeights w = random_weights(small_config(), 2);
  save_llmc_model(d + "/a.bin", w, WeightDType::FP32);
  save_safetensors(d + "/m.safetensors", w, WeightDType::FP32);
  const ModelWeights s = load_safetensors(d + "/m.safetensors");
  CHECK(model_config_difference(s.config, w.config).empty());  // heads from __metadata__
  CHECK(same_bits(s.data, w.data));
  save_llmc_model(d + "/b.bin", s, WeightDType::FP32);
  CHECK(slurp(d + "/b.bin") == slurp(d + "/a.bin"));
  // bf16 safetensors -> bf16 .bin is the same as .bin written in bf16 directly.
  save_safetensors(d + "/m16.safetensors", w, WeightDType::BF16);
  const ModelWeights s16 = load_safetensors(d + "/m16.safetensors");
  CHECK(s16.source_dtype == WeightDType::BF16);
  save_llmc_model(d + "/c16.bin", s16, WeightDType::BF16);
  save_llmc_model(d + "/d16.bin", w, WeightDType::BF16);
  CHECK(slurp(d + "/c16.bin") == slurp(d + "/d16.bin"));
}

TEST_CASE("HF GPT-2 names, Conv1D transposes, prefixes, ignored buffers and the head count", "[model_io]") {
  const std::string d = tmp_dir("model_io_hf");
  const int L = 1, C = 16, V = 50, maxT = 8;
  std::vector<StEntry> e;
  auto seq = [](size_t n, float base) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
    return v;
  };
  e.push_back({"transformer.wte.weight", {V, C}, seq(V * C, 0)});
  e.push_back({"transformer.wpe.weight", {maxT, C}, seq(maxT * C, 1e5f)});
  const std::string p = "transformer.h.0.";
  e.push_back({p + "ln_1.weight", {C}, seq(C, 1)});
  e.push_back({p + "ln_1.bias", {C}, seq(C, 2)});
  e.push_back({p + "attn.c_attn.weight", {C, 3 * C}, seq(C * 3 * C, 3)});  // (in, out)
  e.push_back({p + "attn.c_attn.bias", {3 * C}, seq(3 * C, 4)});
  e.push_back({p + "attn.c_proj.weight", {C, C}, seq(C * C, 5)});
  e.push_back({p + "attn.c_proj.bias", {C}, seq(C, 6)});
  e.push_back({p + "attn.bias", {1, 1, maxT, maxT}, seq(maxT * maxT, 0)});  // causal mask buffer: ignored
  e.push_back({p + "ln_2.weight", {C}, seq(C, 7)});
  e.push_back({p + "ln_2.bias", {C}, seq(C, 8)});
  e.push_back({p + "mlp.c_fc.weight", {C, 4 * C}, seq(C * 4 * C, 9)});
  e.push_back({p + "mlp.c_fc.bias", {4 * C}, seq(4 * C, 10)});
  e.push_back({p + "mlp.c_proj.weight", {4 * C, C}, seq(4 * C * C, 11)});
  e.push_back({p + "mlp.c_proj.bias", {C}, seq(C, 12)});
  e.push_back({"transformer.ln_f.weight", {C}, seq(C, 13)});
  e.push_back({"transformer.ln_f.bias", {C}, seq(C, 14)});
  e.push_back({"lm_head.weight", {V, C}, seq(V * C, 0)});  // tied: ignored
  write_st(d + "/model.safetensors", e);
  spit(d + "/config.json", R"({"n_head": 2, "n_embd": 16})");

  const ModelWeights w = load_safetensors(d + "/model.safetensors");
  CHECK(w.config.num_layers == 1);
  CHECK(w.config.channels == C);
  CHECK(w.config.num_heads == 2);  // from config.json
  CHECK(w.config.vocab_size == V);
  CHECK(w.config.padded_vocab == 128);
  CHECK(w.config.max_seq_len == maxT);
  const float* wte = w.data.data() + w.offset(0);
  CHECK(wte[5 * C + 3] == 5 * C + 3);
  CHECK(wte[V * C] == 0.0f);  // padding rows
  CHECK(wte[128 * C - 1] == 0.0f);
  // qkvw (3C, C)[o][i] = c_attn.weight (C, 3C)[i][o]
  const float* qkvw = w.data.data() + w.offset(4);
  for (int o : {0, 7, 3 * C - 1})
    for (int i : {0, 5, C - 1}) CHECK(qkvw[o * C + i] == 3.0f + static_cast<float>(i * 3 * C + o));
  // fcprojw (C, 4C)[o][i] = c_proj.weight (4C, C)[i][o]
  const float* fcprojw = w.data.data() + w.offset(12);
  CHECK(fcprojw[3 * 4 * C + 50] == 11.0f + static_cast<float>(50 * C + 3));
  CHECK(w.data[w.offset(15)] == 14.0f);  // ln_f.bias

  // Without config.json: the GPT-2 default for the width, else an error asking for --heads.
  std::remove((d + "/config.json").c_str());
  const std::string err = error_of([&] { load_safetensors(d + "/model.safetensors"); });
  CHECK_THAT(err, Catch::Contains("--heads"));
  CHECK(load_safetensors(d + "/model.safetensors", 4).config.num_heads == 4);
  CHECK(default_heads_for_width(768) == 12);
  CHECK(default_heads_for_width(1600) == 25);
}

TEST_CASE("corrupt model files are rejected with the file named", "[model_io]") {
  const std::string d = tmp_dir("model_io_bad");
  const ModelWeights w = random_weights(small_config(), 3);
  save_llmc_model(d + "/good.bin", w, WeightDType::FP32);
  const std::string good = slurp(d + "/good.bin");

  std::string bad = good;
  bad[0] = 'X';
  spit(d + "/magic.bin", bad);
  std::string err = error_of([&] { load_llmc_model(d + "/magic.bin"); });
  CHECK_THAT(err, Catch::Contains(d + "/magic.bin") && Catch::Contains("bad magic"));

  spit(d + "/trunc.bin", good.substr(0, good.size() - 100));
  err = error_of([&] { load_llmc_model(d + "/trunc.bin"); });
  CHECK_THAT(err, Catch::Contains("trunc.bin") && Catch::Contains("truncated"));

  spit(d + "/short.bin", good.substr(0, 500));
  CHECK_THAT(error_of([&] { load_llmc_model(d + "/short.bin"); }), Catch::Contains("shorter than the 1024-byte"));

  bad = good;
  const int32_t layers = 3;  // header claims 3 layers, the body holds 2
  std::memcpy(&bad[16], &layers, 4);
  spit(d + "/shape.bin", bad);
  CHECK_THAT(error_of([&] { load_llmc_model(d + "/shape.bin"); }),
             Catch::Contains("shape.bin") && Catch::Contains("L=3"));

  bad = good;
  const int32_t heads = 5;  // 5 heads do not divide 32
  std::memcpy(&bad[20], &heads, 4);
  spit(d + "/heads.bin", bad);
  CHECK_THAT(error_of([&] { load_llmc_model(d + "/heads.bin"); }),
             Catch::Contains("heads.bin") && Catch::Contains("invalid"));

  save_safetensors(d + "/good.safetensors", w, WeightDType::FP32);
  const std::string st = slurp(d + "/good.safetensors");
  spit(d + "/trunc.safetensors", st.substr(0, st.size() - 64));
  CHECK_THAT(error_of([&] { load_safetensors(d + "/trunc.safetensors"); }),
             Catch::Contains("trunc.safetensors") && Catch::Contains("truncated"));
  bad = st;
  const uint64_t huge = 1ull << 40;
  std::memcpy(&bad[0], &huge, 8);
  spit(d + "/len.safetensors", bad);
  CHECK_THAT(error_of([&] { load_safetensors(d + "/len.safetensors"); }), Catch::Contains("header length"));
  bad = st;
  bad[8] = '#';
  spit(d + "/json.safetensors", bad);
  CHECK_THAT(error_of([&] { load_safetensors(d + "/json.safetensors"); }), Catch::Contains("does not parse"));

  // A wrongly shaped tensor and a missing tensor.
  std::vector<StEntry> e = {{"wte.weight", {100, 32}, std::vector<float>(3200)},
                            {"wpe.weight", {16, 32}, std::vector<float>(512)},
                            {"h.0.ln_1.weight", {31}, std::vector<float>(31)}};
  write_st(d + "/shape.safetensors", e);
  CHECK_THAT(error_of([&] { load_safetensors(d + "/shape.safetensors", 4); }),
             Catch::Contains("h.0.ln_1.weight") && Catch::Contains("expected (32)"));
  e[2].shape = {32};
  e[2].data.resize(32);
  write_st(d + "/missing.safetensors", e);
  CHECK_THAT(error_of([&] { load_safetensors(d + "/missing.safetensors", 4); }),
             Catch::Contains("missing tensor h.0.ln_1.bias"));
}

TEST_CASE("safetensors headers that would overflow, over-allocate or be misread are refused", "[model_io]") {
  // Fuzz regressions (tests/fuzz/fuzz_model_file): each of these small files used to overflow
  // an int64 or convert a huge float to an integer (sanitizer reports), allocate hundreds of GB,
  // or read a wrong shape silently.
  const std::string d = tmp_dir("model_io_sizes");
  auto write_raw = [&](const std::string& name, const nlohmann::json& header, size_t data_bytes) {
    const std::string hs = header.dump();
    const uint64_t n = hs.size();
    spit(d + "/" + name, std::string(reinterpret_cast<const char*>(&n), 8) + hs + std::string(data_bytes, '\0'));
    return d + "/" + name;
  };
  auto t = [](const char* dtype, std::vector<int64_t> shape, uint64_t begin, uint64_t end) {
    return nlohmann::json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
  };
  auto file_error = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const FileError& e) {
      return e.what();
    }
    return "";
  };

  // The element count of (2^33, 2^31) overflows int64.
  std::string p = write_raw("overflow.safetensors", {{"wte.weight", t("F32", {1ll << 33, 1ll << 31}, 0, 0)}}, 0);
  CHECK_THAT(file_error([&] { load_safetensors(p); }),
             Catch::Contains(p) && Catch::Contains("wte.weight has a shape of more values than"));

  // wte, wpe and four scalar ln_1 weights imply L=4 C=65536: 800 GB were allocated before the
  // other tensors were looked for.
  const int64_t C = 65536;
  nlohmann::json h = {{"__metadata__", {{"n_head", "2"}}},
                      {"wte.weight", t("BF16", {1, C}, 0, 2 * C)},
                      {"wpe.weight", t("BF16", {1, C}, 2 * C, 4 * C)}};
  for (int l = 0; l < 4; ++l)
    h["h." + std::to_string(l) + ".ln_1.weight"] = t("BF16", {}, 4 * C + 2 * l, 4 * C + 2 * l + 2);
  p = write_raw("alloc.safetensors", h, 4 * C + 8);
  CHECK_THAT(file_error([&] { load_safetensors(p); }),
             Catch::Contains(p) && Catch::Contains("h.0.ln_1.weight has shape ()"));

  // Tensors that share data bytes would let a small file stand for a huge model.
  h = {{"wte.weight", t("F32", {2, 4}, 0, 32)}, {"wpe.weight", t("F32", {2, 4}, 16, 48)}};
  p = write_raw("overlap.safetensors", h, 48);
  CHECK_THAT(file_error([&] { load_safetensors(p); }),
             Catch::Contains(p) && Catch::Contains("tensors wte.weight and wpe.weight overlap"));

  // A vocabulary of 2^32 + 10 rows was read as 10 by the shape-only read.
  h = {{"wte.weight", t("F32", {(1ll << 32) + 10, 768}, 0, 0)},
       {"wpe.weight", t("F32", {16, 768}, 0, 0)},
       {"h.0.ln_1.weight", t("F32", {768}, 0, 0)}};
  p = write_raw("dims.safetensors", h, 0);
  CHECK_THAT(file_error([&] { read_model_config(p); }),
             Catch::Contains(p) && Catch::Contains("dimension of 4294967306, out of range"));

  // JSON floats where whole numbers belong: get<int64_t>() of 4.5e102 is undefined behaviour.
  h = {{"wte.weight", t("F32", {2, 4}, 0, 32)}};
  h["wte.weight"]["shape"] = {4.5e102, 4};
  p = write_raw("float_shape.safetensors", h, 32);
  CHECK_THAT(
      file_error([&] { load_safetensors(p); }),
      Catch::Contains(p) && Catch::Contains("wte.weight: shape and data_offsets must be lists of whole numbers"));
  const ModelWeights w = random_weights(small_config(), 5);
  std::filesystem::create_directories(d + "/float_heads");
  save_safetensors(d + "/float_heads/model.safetensors", w, WeightDType::FP32);
  spit(d + "/float_heads/config.json", R"({"n_head": 1e300})");
  CHECK_THAT(file_error([&] { read_model_config(d + "/float_heads/model.safetensors"); }),
             Catch::Contains(d + "/float_heads/config.json") && Catch::Contains("n_head is not a whole number"));
}

TEST_CASE("the file layout converts to the plan's padded flat view and back", "[model_io]") {
  ModelConfig c = small_config();
  c.channels = 36;  // 36·… elements: tensors are not multiples of 128, so the plan pads them
  c.num_heads = 6;
  RunConfig r = testutil::cpu_run(1, 8);
  const MemoryPlan plan = make_memory_plan(c, r);
  const ModelWeights w = random_weights(c, 4);
  const std::vector<float> flat = to_flat(plan, w);
  CHECK(static_cast<int64_t>(flat.size()) == plan.flat_param_elems);
  CHECK(flat[plan.param_offsets[1]] == w.data[w.offset(1)]);
  CHECK(same_bits(from_flat(plan, flat).data, w.data));
  ModelWeights other = w;
  other.config.num_layers = 3;
  CHECK_THROWS_AS(to_flat(plan, other), ConfigError);
}
