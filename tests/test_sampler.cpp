// Sampling with the KV cache: decode_step's logits match a full forward pass at every position,
// generation is deterministic for a seed, temperature 0 is greedy, the window slides past the
// context; HellaSwag scoring picks the ending with the lowest mean loss, from llm.c's eval .bin
// or the jsonl, and rejects malformed files.
#include <sys/stat.h>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "engine/backend/cpu_backend.h"
#include "engine/model/model.h"
#include "engine/model/sampler.h"
#include "engine/train/hellaswag.h"
#include "engine/util/errors.h"
#include "tests/engine_test_util.h"

using namespace gpt2;

namespace {

using testutil::tmp_dir;

MemoryPlan sample_plan(const char* recompute = "none", int T = 32, bool training = true) {
  const ModelConfig m = testutil::tiny_config(2, 64, 256, 32);
  RunConfig r = testutil::cpu_run(2, T);
  r.recompute = parse_recompute(recompute);
  r.training = training;
  return make_memory_plan(m, r);
}

std::vector<int32_t> seq(int n, int mul) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = (i * mul + 7) % 256;
  return v;
}

double max_rel_diff(const std::vector<float>& a, const float* b, size_t n) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / scale);
  return worst;
}

}  // namespace

TEST_CASE("decode_step with the KV cache gives the full forward pass's logits", "[sampler]") {
  for (const char* policy : {"none", "norm"}) {
    const MemoryPlan plan = sample_plan(policy);
    testutil::CpuModel cpu_model(plan, 11);
    Model& model = cpu_model.model;
    const std::vector<int32_t> tokens = seq(20, 37);
    REQUIRE(model.load_batch(tokens.data(), nullptr, 1, 20) < 0);
    model.forward();
    const std::vector<float> full = model.logits();  // (20, V)

    // Token by token from an empty cache.
    for (int t = 0; t < 20; ++t) {
      const std::vector<float> step = model.decode_step(tokens[t], t);
      REQUIRE(step.size() == 256);
      CHECK(max_rel_diff(step, full.data() + t * 256, 256) < 1e-5);
    }
    // Prefill 12, then decode the rest.
    REQUIRE(model.load_batch(tokens.data(), nullptr, 1, 12) < 0);
    model.forward();
    const std::vector<float> last = model.row_logits(11);
    CHECK(max_rel_diff(last, full.data() + 11 * 256, 256) < 1e-6);
    for (int t = 12; t < 20; ++t)
      CHECK(max_rel_diff(model.decode_step(tokens[t], t), full.data() + t * 256, 256) < 1e-5);
  }
}

TEST_CASE("sampling is deterministic for a seed; temperature 0 is greedy; top-k limits", "[sampler]") {
  const MemoryPlan plan = sample_plan();
  testutil::CpuModel cpu_model(plan, 3);
  Model& model = cpu_model.model;
  SampleOptions o;
  o.max_tokens = 50;  // more than the context of 32: the window slides
  o.seed = 7;
  const std::vector<int32_t> prompt = {1, 2, 3};
  const auto a = generate(model, prompt, o);
  const auto b = generate(model, prompt, o);
  CHECK(a.size() == 50);
  CHECK(a == b);
  o.seed = 8;
  CHECK(generate(model, prompt, o) != a);

  // Greedy: each token is the argmax of the model's logits for the prefix so far.
  o.temperature = 0;
  o.max_tokens = 5;
  const auto g = generate(model, prompt, o);
  std::vector<int32_t> ctx = prompt;
  for (int32_t tok : g) {
    REQUIRE(model.load_batch(ctx.data(), nullptr, 1, static_cast<int>(ctx.size())) < 0);
    model.forward();
    const auto l = model.row_logits(static_cast<int>(ctx.size()) - 1);
    CHECK(tok == std::max_element(l.begin(), l.end()) - l.begin());
    ctx.push_back(tok);
  }

  // top-k 1 is greedy whatever the temperature; top-k 3 only draws from the 3 largest.
  std::vector<float> logits = {0.1f, 3.0f, 2.0f, -1.0f, 2.5f, 0.0f};
  Rng rng(1);
  for (int i = 0; i < 50; ++i) CHECK(sample_token(logits, 5.0, 1, rng) == 1);
  for (int i = 0; i < 200; ++i) {
    const int t = sample_token(logits, 5.0, 3, rng);
    CHECK((t == 1 || t == 2 || t == 4));
  }
  // With no top-k and a high temperature every token shows up.
  std::vector<int> seen(6, 0);
  for (int i = 0; i < 2000; ++i) ++seen[sample_token(logits, 100.0, 0, rng)];
  for (int s : seen) CHECK(s > 0);

  CHECK_THROWS_AS(generate(model, {}, o), std::invalid_argument);
  CHECK_THROWS_AS(generate(model, {999}, o), std::invalid_argument);
  CpuBackend be2;
  Model blocky(sample_plan("block"), be2);
  CHECK_THROWS_AS(generate(blocky, prompt, o), std::logic_error);
}

TEST_CASE("HellaSwag scoring picks the lowest mean ending loss, from llm.c's eval .bin", "[hellaswag]") {
  const std::string d = tmp_dir("hellaswag");
  const MemoryPlan plan = sample_plan();
  testutil::CpuModel cpu_model(plan, 9);
  Model& model = cpu_model.model;
  std::vector<MultipleChoiceExample> ex;
  for (int i = 0; i < 6; ++i) {
    MultipleChoiceExample e;
    e.context = seq(5 + i, 3 + i);
    for (int k = 0; k < 4; ++k) e.endings.push_back(seq(2 + k, 11 * (k + 1) + i));
    ex.push_back(e);
  }
  // The expected answer, computed independently from the full logits.
  std::vector<int> best(ex.size());
  for (size_t i = 0; i < ex.size(); ++i) {
    double lowest = 1e300;
    for (int k = 0; k < 4; ++k) {
      std::vector<int32_t> s = ex[i].context;
      s.insert(s.end(), ex[i].endings[k].begin(), ex[i].endings[k].end());
      const int len = static_cast<int>(s.size()) - 1;
      REQUIRE(model.load_batch(s.data(), nullptr, 1, len) < 0);
      model.forward();
      const std::vector<float> lg = model.logits();
      double sum = 0;
      const int m = static_cast<int>(ex[i].endings[k].size());
      for (int p = len - m; p < len; ++p) {
        const float* row = lg.data() + p * 256;
        double mx = -1e300, z = 0;
        for (int v = 0; v < 256; ++v) mx = std::max(mx, static_cast<double>(row[v]));
        for (int v = 0; v < 256; ++v) z += std::exp(row[v] - mx);
        sum += -(row[s[p + 1]] - mx - std::log(z));
      }
      if (sum / m < lowest) lowest = sum / m, best[i] = k;
    }
  }
  for (size_t i = 0; i < ex.size(); ++i) ex[i].label = i < 4 ? best[i] : (best[i] + 1) % 4;  // 4 of 6 right

  write_eval_bin(d + "/hs.bin", ex);
  const auto loaded = load_hellaswag(d + "/hs.bin", nullptr);
  REQUIRE(loaded.size() == ex.size());
  CHECK(loaded[3].context == ex[3].context);
  CHECK(loaded[3].endings == ex[3].endings);
  CHECK(loaded[5].label == ex[5].label);
  const MultipleChoiceResult r = evaluate_multiple_choice(model, loaded);
  CHECK(r.examples == 6);
  CHECK(r.correct == 4);
  CHECK(r.accuracy == Approx(4.0 / 6.0));
  for (size_t i = 0; i < ex.size(); ++i) CHECK(r.predictions[i] == best[i]);

  // llm.c's layout, byte for byte: header, then 65535, size, index, label, count, ctx, endings.
  std::ifstream f(d + "/hs.bin", std::ios::binary);
  int32_t h[256];
  f.read(reinterpret_cast<char*>(h), sizeof h);
  CHECK(h[0] == 20240522);
  CHECK(h[1] == 1);
  CHECK(h[2] == 6);
  uint16_t first[7];
  f.read(reinterpret_cast<char*>(first), sizeof first);
  CHECK(first[0] == 65535);
  CHECK(first[1] == 2 * (6 + 5 + 4 + (2 + 3 + 4 + 5)));
  CHECK(first[2] == 0);
  CHECK(first[4] == 4);
  CHECK(first[5] == 5);
  CHECK(first[6] == ex[0].context[0]);
}

TEST_CASE("malformed HellaSwag files are rejected with the file named", "[hellaswag]") {
  const std::string d = tmp_dir("hellaswag_bad");
  MultipleChoiceExample e;
  e.context = {1, 2, 3};
  e.endings = {{4}, {5, 6}, {7}, {8}};
  e.label = 2;
  write_eval_bin(d + "/ok.bin", {e, e});
  std::ifstream in(d + "/ok.bin", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  {
    std::ofstream o(d + "/trunc.bin", std::ios::binary);
    o.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 6));
  }
  try {
    load_eval_bin(d + "/trunc.bin");
    FAIL("truncated eval file accepted");
  } catch (const FileError& err) {
    CHECK_THAT(std::string(err.what()), Catch::Contains("trunc.bin") && Catch::Contains("truncated in example 1"));
  }
  std::string bad = bytes;
  bad[1024] = 0;  // the start marker
  {
    std::ofstream o(d + "/marker.bin", std::ios::binary);
    o.write(bad.data(), static_cast<std::streamsize>(bad.size()));
  }
  CHECK_THROWS_WITH(load_eval_bin(d + "/marker.bin"), Catch::Contains("65535 marker"));
  {
    std::ofstream o(d + "/x.jsonl");
    o << "{\"ctx\": \"a\", \"endings\": [\"b\"], \"label\": 0}\n";
  }
  // A jsonl without the tokenizer: a FileError naming the fetch script.
  CHECK_THROWS_WITH(load_hellaswag(d + "/x.jsonl", nullptr), Catch::Contains("fetch_tokenizer.sh"));
}

TEST_CASE("HellaSwag jsonl is encoded as llm.c does (needs the tokenizer files)", "[hellaswag]") {
  const std::string dir = std::string(GPT2_SOURCE_DIR) + "/data/tokenizer";
  struct stat st;
  if (::stat((dir + "/encoder.json").c_str(), &st) != 0) {
    WARN("skipped: no tokenizer files in data/tokenizer (run data/fetch_tokenizer.sh)");
    return;
  }
  const Tokenizer tok = Tokenizer::from_dir(dir);
  const std::string d = tmp_dir("hellaswag_jsonl");
  {
    std::ofstream o(d + "/val.jsonl");
    o << R"({"ind": 24, "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "label": 3, "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."]})"
      << "\n\n"
      << R"({"ctx_a": "Hello", "ctx_b": "world", "label": "1", "endings": ["a", "b"]})"
      << "\n";
  }
  const auto ex = load_hellaswag(d + "/val.jsonl", &tok);
  REQUIRE(ex.size() == 2);
  CHECK(ex[0].label == 3);
  CHECK(ex[0].context == tok.encode("A man is sitting on a roof. he"));
  CHECK(ex[0].endings[1] == tok.encode(" is ripping level tiles off."));
  CHECK(ex[1].label == 1);
  CHECK(ex[1].context == tok.encode("Hello world"));
  {
    std::ofstream o(d + "/bad.jsonl");
    o << R"({"ctx": "x", "endings": ["a"], "label": 4})"
      << "\n";
  }
  CHECK_THROWS_WITH(load_hellaswag(d + "/bad.jsonl", &tok), Catch::Contains("line 1"));
  // Fuzz regression: a label string beyond int escaped as std::out_of_range from std::stoi.
  {
    std::ofstream o(d + "/huge_label.jsonl");
    o << R"({"ctx": "x", "endings": ["a"], "label": "0"})"
      << "\n"
      << R"({"ctx": "x", "endings": ["a"], "label": "99999999999"})"
      << "\n";
  }
  try {
    load_hellaswag(d + "/huge_label.jsonl", &tok);
    FAIL("a label beyond int accepted");
  } catch (const FileError& err) {
    CHECK_THAT(std::string(err.what()),
               Catch::Contains("huge_label.jsonl") && Catch::Contains("line 2") && Catch::Contains("out of range"));
  }
  // A float label (get<int>() of 1e300 is undefined behaviour) and one beyond int, which became 0.
  testutil::spit(d + "/float_label.jsonl", R"({"ctx": "x", "endings": ["a"], "label": 1e300})");
  CHECK_THROWS_WITH(load_hellaswag(d + "/float_label.jsonl", &tok),
                    Catch::Contains("float_label.jsonl") && Catch::Contains("not a whole number"));
  testutil::spit(d + "/wide_label.jsonl", R"({"ctx": "x", "endings": ["a"], "label": 4294967296})");
  CHECK_THROWS_WITH(load_hellaswag(d + "/wide_label.jsonl", &tok),
                    Catch::Contains("wide_label.jsonl") && Catch::Contains("out of range"));
}

TEST_CASE("an inference plan samples the same tokens with a fraction of the memory", "[sampler]") {
  const MemoryPlan train_plan = sample_plan("none", 32, true);
  const MemoryPlan infer_plan = sample_plan("none", 32, false);
  CHECK(infer_plan.category_bytes(Category::Gradients) == 0);
  CHECK(infer_plan.category_bytes(Category::AdamM) == 0);
  CHECK(infer_plan.category_bytes(Category::AdamV) == 0);
  CHECK(infer_plan.arena_bytes < train_plan.arena_bytes);
  const std::vector<float> w = Model::gpt2_init(train_plan, 21);
  std::vector<std::vector<int32_t>> outs;
  for (const MemoryPlan* plan : {&train_plan, &infer_plan}) {
    CpuBackend be;
    Model model(*plan, be);
    model.set_parameters(w);
    SampleOptions so;
    so.max_tokens = 12;
    so.seed = 5;
    outs.push_back(generate(model, seq(5, 11), so));
    if (plan == &infer_plan) CHECK_THROWS_AS(model.head(true, 1.0f), std::logic_error);
  }
  CHECK(outs[0] == outs[1]);
  RunConfig bad;
  bad.device = Device::CPU;
  bad.precision = Precision::FP32;
  bad.training = false;
  bad.recompute = parse_recompute("block");
  CHECK_THROWS_AS(make_memory_plan(train_plan.model, bad), ConfigError);
}
