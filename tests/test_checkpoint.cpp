// Checkpoints: an interrupted-and-resumed run is bitwise identical to an uninterrupted one;
// resuming refuses mismatched settings and truncated or corrupt files, naming the field or
// file; pruning keeps the newest N of the run's lineage and nothing else; temporary files are the
// writer's own; a directory lock refuses a second user; the JSONL log carries every field.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/backend/cpu_backend.h"
#include "engine/model/model_io.h"
#include "engine/train/checkpoint.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"
#include "tests/engine_test_util.h"

using namespace gpt2;

namespace {

using namespace testutil;  // tiny_config, tmp_dir, slurp, spit, same_bits, error_of

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

ModelConfig ck_model() { return testutil::tiny_config(2, 64, 256, 32); }

MemoryPlan ck_plan(int width = 64) {
  ModelConfig m = ck_model();
  m.channels = width;
  RunConfig r = testutil::cpu_run(2, 32);
  r.total_batch_tokens = 2 * 32 * 2;  // grad accumulation 2
  return make_memory_plan(m, r);
}

TrainOptions ck_opts(int steps) {
  TrainOptions t;
  t.steps = steps;
  t.lr.kind = LrScheduleKind::Cosine;
  t.lr.lr = 2e-3;
  t.lr.warmup = 2;
  t.lr.total_steps = steps;
  return t;
}

// One "process": a model, a data source and a trainer.
struct Run {
  MemoryPlan plan;
  CpuBackend backend;
  Model model;
  SyntheticSource train;
  TrainOptions opts;
  Trainer trainer;
  nlohmann::json settings;
  explicit Run(int steps, int width = 64)
      : plan(ck_plan(width)),
        model(plan, backend),
        train(256, 2, 32, 99),
        opts(ck_opts(steps)),
        trainer(model, opts, train, nullptr),
        settings(checkpoint_settings(plan, opts, "synthetic")) {
    model.init_gpt2(5);
  }
};

// Every line of a JSONL file, parsed.
std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::vector<nlohmann::json> recs;
  while (std::getline(f, line)) recs.push_back(nlohmann::json::parse(line));
  return recs;
}

}  // namespace

TEST_CASE("resuming from a checkpoint continues bitwise identically", "[checkpoint]") {
  const std::string d = tmp_dir("ckpt_exact");
  std::vector<double> straight;
  std::vector<float> final_params;
  {
    Run a(8);
    for (int i = 0; i < 8; ++i) straight.push_back(a.trainer.train_step().loss);
    final_params = a.model.parameters();
  }
  {
    Run b(8);
    for (int i = 0; i < 4; ++i) CHECK(b.trainer.train_step().loss == straight[i]);
    save_checkpoint(d, b.model, b.trainer, b.train, b.settings, 1337, 0);
  }
  CHECK(latest_checkpoint_step(d) == 4);
  CHECK(exists(checkpoint_model_path(d, 4)));
  // The checkpoint's model file is an ordinary llm.c model file.
  CHECK(load_llmc_model(checkpoint_model_path(d, 4)).config.num_layers == 2);

  Run c(8);  // a fresh process: different init seed would not matter, resume overwrites all
  c.model.init_gpt2(12345);
  CHECK(resume_from_checkpoint(d, -1, c.model, c.trainer, c.train, c.settings) == 4);
  CHECK(c.trainer.step() == 4);
  CHECK(c.trainer.updates() == 4);
  for (int i = 4; i < 8; ++i) {
    const StepResult r = c.trainer.train_step();
    CHECK(r.step == i + 1);
    CHECK(r.loss == straight[i]);  // exact, not approximate
  }
  CHECK(same_bits(c.model.parameters(), final_params));
}

TEST_CASE("resume refuses mismatched settings, naming the flag, before touching the model", "[checkpoint]") {
  const std::string d = tmp_dir("ckpt_mismatch");
  {
    Run a(4);
    a.trainer.train_step();
    save_checkpoint(d, a.model, a.trainer, a.train, a.settings, 1337, 0);
  }
  {
    Run w(4, 128);  // another width
    const std::vector<float> before = w.model.parameters();
    try {
      resume_from_checkpoint(d, -1, w.model, w.trainer, w.train, w.settings);
      FAIL("resume with another width must throw");
    } catch (const ConfigError& e) {
      CHECK(e.flag() == "--width");
      CHECK_THAT(std::string(e.what()), Catch::Contains("64") && Catch::Contains("128"));
    }
    CHECK(same_bits(w.model.parameters(), before));
    CHECK(w.trainer.step() == 0);
  }
  {
    Run s(4);
    nlohmann::json other = s.settings;
    other["--lr"] = 1.0;
    try {
      resume_from_checkpoint(d, -1, s.model, s.trainer, s.train, other);
      FAIL("resume with another lr must throw");
    } catch (const ConfigError& e) {
      CHECK(e.flag() == "--lr");
    }
  }
  // No checkpoint at all.
  Run n(4);
  const std::string empty = tmp_dir("ckpt_none");
  CHECK_THAT(error_of([&] { resume_from_checkpoint(empty, -1, n.model, n.trainer, n.train, n.settings); }),
             Catch::Contains("no checkpoint to resume from"));
}

TEST_CASE("truncated or corrupt checkpoint files are refused with the file named", "[checkpoint]") {
  const std::string d = tmp_dir("ckpt_corrupt");
  {
    Run a(4);
    a.trainer.train_step();
    save_checkpoint(d, a.model, a.trainer, a.train, a.settings, 1337, 0);
  }
  const std::string state = checkpoint_state_path(d, 1), model = checkpoint_model_path(d, 1);
  const std::string sgood = slurp(state), mgood = slurp(model);
  Run r(4);
  auto resume_error = [&] {
    return error_of([&] { resume_from_checkpoint(d, -1, r.model, r.trainer, r.train, r.settings); });
  };

  spit(state, sgood.substr(0, sgood.size() / 2));
  CHECK_THAT(resume_error(), Catch::Contains(state) && Catch::Contains("truncated"));
  std::string bad = sgood;
  bad[sgood.size() / 2] ^= 0x10;  // a flipped bit in the AdamW state
  spit(state, bad);
  CHECK_THAT(resume_error(), Catch::Contains(state) && Catch::Contains("checksum"));
  bad = sgood;
  bad[0] = 'X';
  spit(state, bad);
  CHECK_THAT(resume_error(), Catch::Contains("bad magic"));
  spit(state, sgood);

  bad = mgood;
  bad[2000] ^= 0x01;
  spit(model, bad);
  CHECK_THAT(resume_error(), Catch::Contains(model) && Catch::Contains("corrupt"));
  spit(model, mgood.substr(0, mgood.size() - 8));
  CHECK_THAT(resume_error(), Catch::Contains(model) && Catch::Contains("truncated"));
  spit(model, mgood);

  spit(d + "/latest", "banana\n");
  CHECK_THAT(resume_error(), Catch::Contains("latest") && Catch::Contains("step number"));
  spit(d + "/latest", "1\n");
  CHECK(r.trainer.step() == 0);  // nothing was restored by the failed attempts
  CHECK(resume_from_checkpoint(d, -1, r.model, r.trainer, r.train, r.settings) == 1);
}

TEST_CASE("a write that dies midway leaves the previous checkpoint loadable", "[checkpoint]") {
  const std::string d = tmp_dir("ckpt_torn");
  std::vector<double> straight;
  {
    Run a(4);
    for (int i = 0; i < 4; ++i) straight.push_back(a.trainer.train_step().loss);
  }
  {
    Run b(4);
    b.trainer.train_step();
    b.trainer.train_step();
    save_checkpoint(d, b.model, b.trainer, b.train, b.settings, 1337, 0);
    b.trainer.train_step();
    // What a writer killed during step 3's checkpoint leaves: a complete model file (renamed),
    // a torn state temporary file, and `latest` still naming step 2.
    save_llmc_model(checkpoint_model_path(d, 3), from_flat(b.plan, b.model.stored_parameters()), WeightDType::FP32);
    const std::string s2 = slurp(checkpoint_state_path(d, 2));
    spit(checkpoint_state_path(d, 3) + ".999999999-0.tmp", s2.substr(0, s2.size() / 3));
  }
  CHECK(latest_checkpoint_step(d) == 2);
  Run c(4);
  CHECK(resume_from_checkpoint(d, -1, c.model, c.trainer, c.train, c.settings) == 2);
  CHECK(c.trainer.train_step().loss == straight[2]);
  CHECK(c.trainer.train_step().loss == straight[3]);
  // A save removes no file it did not create: the torn temporary file and someone else's .tmp
  // stay. The start-up sweep removes the dead writer's file (process 999999999 cannot exist),
  // and neither the other .tmp nor a temporary of a live process (this one).
  const std::string torn = checkpoint_state_path(d, 3) + ".999999999-0.tmp";
  const std::string foreign = d + "/notes.tmp", legacy = checkpoint_state_path(d, 3) + ".tmp";
  const std::string live = checkpoint_model_path(d, 9) + temp_file_marker() + "0.tmp";
  spit(foreign, "mine");
  spit(legacy, "old");
  spit(live, "busy");
  save_checkpoint(d, c.model, c.trainer, c.train, c.settings, 1337, 0);
  CHECK(latest_checkpoint_step(d) == 4);
  CHECK(exists(torn));
  CHECK(exists(foreign));
  const std::vector<std::string> removed = remove_dead_writers_temporaries(d);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0] == "state_00000003.bin.999999999-0.tmp");
  CHECK_FALSE(exists(torn));
  CHECK(exists(foreign));
  CHECK(exists(legacy));
  CHECK(exists(live));
}

TEST_CASE("retention deletes only checkpoints of the run's own lineage", "[checkpoint]") {
  const std::string d = tmp_dir("ckpt_lineage");
  Run other(6);
  for (int i = 0; i < 6; ++i) {
    other.trainer.train_step();
    save_checkpoint(d, other.model, other.trainer, other.train, other.settings, 1337, 0, {}, "aaaa");
  }
  // A fresh run of another lineage in the same directory keeps 2 of its own and never touches
  // steps 4-6 of the other lineage (steps 1-3 it overwrote are its own now).
  Run mine(3);
  for (int i = 0; i < 3; ++i) {
    mine.trainer.train_step();
    save_checkpoint(d, mine.model, mine.trainer, mine.train, mine.settings, 1337, 2, {}, "bbbb");
  }
  CHECK_FALSE(exists(checkpoint_model_path(d, 1)));
  CHECK_FALSE(exists(checkpoint_state_path(d, 1)));
  for (int s : {2, 3, 4, 5, 6}) CHECK(exists(checkpoint_model_path(d, s)));
  // Resuming the other lineage from step 6 prunes its own old steps only.
  Run resumed(8);
  std::string lineage;
  REQUIRE(resume_from_checkpoint(d, 6, resumed.model, resumed.trainer, resumed.train, resumed.settings, &lineage) == 6);
  CHECK(lineage == "aaaa");
  resumed.trainer.train_step();
  save_checkpoint(d, resumed.model, resumed.trainer, resumed.train, resumed.settings, 1337, 2, {}, lineage);
  CHECK_FALSE(exists(checkpoint_model_path(d, 4)));
  CHECK_FALSE(exists(checkpoint_model_path(d, 5)));
  for (int s : {2, 3, 6, 7}) CHECK(exists(checkpoint_model_path(d, s)));
}

TEST_CASE("a checkpoint directory has one user at a time", "[checkpoint]") {
  const std::string d = tmp_dir("ckpt_lock");
  {
    const CheckpointDirLock first(d);
    CHECK(slurp(d + "/lock") == std::to_string(::getpid()) + "\n");
    const std::string err = error_of([&] { CheckpointDirLock second(d); });
    CHECK_THAT(err, Catch::Contains("--checkpoint-dir"));
    CHECK_THAT(err, Catch::Contains("in use by process " + std::to_string(::getpid())));
  }
  // Released with its holder; a lock file left behind is taken over.
  CHECK_NOTHROW(CheckpointDirLock{d});
  // A link planted in the lock file's place is not followed.
  const std::string d2 = tmp_dir("ckpt_lock_link");
  REQUIRE(::symlink((d2 + "/elsewhere").c_str(), (d2 + "/lock").c_str()) == 0);
  CHECK_THAT(error_of([&] { CheckpointDirLock l(d2); }), Catch::Contains("lock"));
  CHECK_FALSE(exists(d2 + "/elsewhere"));
}

TEST_CASE("the durable writer never follows or replaces a link", "[checkpoint][file_io]") {
  const std::string d = tmp_dir("atomic_links");
  spit(d + "/outside", "precious");
  REQUIRE(::symlink((d + "/outside").c_str(), (d + "/out.bin").c_str()) == 0);
  CHECK_THAT(error_of([&] { write_file_atomic(d + "/out.bin", "new"); }), Catch::Contains("symbolic link"));
  CHECK(slurp(d + "/outside") == "precious");
  // A link at the fixed name older writers used is not the temporary file any more.
  REQUIRE(::symlink((d + "/outside").c_str(), (d + "/plain.bin.tmp").c_str()) == 0);
  write_file_atomic(d + "/plain.bin", "fresh");
  CHECK(slurp(d + "/plain.bin") == "fresh");
  CHECK(slurp(d + "/outside") == "precious");
  AtomicFile f(d + "/x.bin");
  CHECK_THAT(f.temp_path(), Catch::StartsWith(d + "/x.bin" + temp_file_marker()));
}

TEST_CASE("keep-checkpoints prunes all but the newest N", "[checkpoint]") {
  const std::string d = tmp_dir("ckpt_keep");
  Run a(5);
  for (int i = 0; i < 5; ++i) {
    a.trainer.train_step();
    save_checkpoint(d, a.model, a.trainer, a.train, a.settings, 1337, 2);
  }
  for (int s = 1; s <= 3; ++s) {
    CHECK_FALSE(exists(checkpoint_model_path(d, s)));
    CHECK_FALSE(exists(checkpoint_state_path(d, s)));
  }
  CHECK(exists(checkpoint_model_path(d, 4)));
  CHECK(exists(checkpoint_state_path(d, 5)));
  CHECK(latest_checkpoint_step(d) == 5);
  const CheckpointData st = read_state_file(checkpoint_state_path(d, 5));
  CHECK(st.step == 5);
  CHECK(st.updates == 5);
  CHECK(st.optimizer.master.empty());  // fp32 run: the parameters live in the model file
  CHECK(static_cast<int64_t>(st.optimizer.m.size()) == a.plan.shard_elems);
}

TEST_CASE("corrupt lengths and numbers inside a state file are refused with a FileError", "[checkpoint]") {
  // Fuzz regressions (tests/fuzz/fuzz_checkpoint_state): a length field read from the payload
  // was allocated before it was checked, so a state file with a valid checksum and a huge
  // length threw std::length_error or asked for exabytes instead of a FileError; a float step
  // was converted to int64 (undefined behaviour).
  const std::string d = tmp_dir("ckpt_lengths");
  auto u64 = [](uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
  auto state_file = [&](const std::string& payload) {  // the layout in checkpoint.h
    const uint32_t ver[2] = {1, 0};
    return std::string("GPT2CKPT") + std::string(reinterpret_cast<const char*>(ver), 8) + u64(payload.size()) +
           payload + u64(fnv1a64(payload.data(), payload.size())) + std::string("CKPTEND\0", 8);
  };
  const std::string js = R"({"step": 1, "updates": 1, "seed": 1337})";
  const std::string pos = "position";
  const std::string float_js = R"({"step": 1e99, "updates": 1, "seed": 1})";
  const std::string good = u64(js.size()) + js + u64(pos.size()) + pos + u64(0) + u64(0) + u64(0);
  spit(d + "/good.bin", state_file(good));
  CHECK(read_state_file(d + "/good.bin").step == 1);

  struct Case {
    const char* name;
    std::string payload;
    const char* what;
  };
  const std::vector<Case> cases = {
      {"json.bin", u64(1ull << 62) + js, "the length of the JSON header at byte offset 24"},
      {"pos.bin", u64(js.size()) + js + u64(~0ull) + pos, "the length of the data position at byte offset 71"},
      // 2^62 floats: n * 4 wrapped to 0 and passed the old bounds check.
      {"m.bin", u64(js.size()) + js + u64(pos.size()) + pos + u64(0) + u64(1ull << 62) + u64(0),
       "the length of the AdamW m at byte offset 95, 4611686018427387904 values of 4 bytes"},
      // get<int64_t>() of a float is undefined behaviour.
      {"float.bin", u64(float_js.size()) + float_js + u64(0) + u64(0) + u64(0) + u64(0), "step is not a whole number"},
  };
  for (const Case& c : cases) {
    spit(d + "/" + c.name, state_file(c.payload));
    try {
      read_state_file(d + "/" + c.name);
      FAIL(std::string("accepted ") + c.name);
    } catch (const FileError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains(d + "/" + c.name) && Catch::Contains(c.what));
    }
  }
}

TEST_CASE("the JSONL log has every field, with null MFU when the peak is unknown", "[checkpoint][log]") {
  const std::string d = tmp_dir("ckpt_log");
  const MemoryPlan plan = ck_plan();
  testutil::CpuModel cpu_model(plan, 1);
  Model& model = cpu_model.model;
  SyntheticSource train(256, 2, 32, 1), val(256, 2, 32, 2);
  TrainOptions t = ck_opts(3);
  t.log_path = d + "/log.jsonl";
  t.val_every = 2;
  t.val_batches = 1;
  {
    Trainer tr(model, t, train, &val);
    std::ostringstream out;
    tr.run(out);
  }
  const std::vector<nlohmann::json> recs = read_jsonl(t.log_path);
  REQUIRE(recs.size() == 3);
  for (const auto& j : recs)
    for (const char* k : {"step", "loss", "lr", "grad_norm", "tokens", "ms", "tok_per_s", "mfu", "memory"})
      CHECK(j.contains(k));
  CHECK(recs[0]["tokens"] == 128);
  CHECK(recs[2]["tokens"] == 384);
  CHECK(recs[0]["mfu"].is_null());
  CHECK(recs[0]["memory"] == plan.arena_bytes);
  CHECK_FALSE(recs[0].contains("val_loss"));
  CHECK(recs[1].contains("val_loss"));
  CHECK(recs[2].contains("val_loss"));
}

TEST_CASE("the JSONL log opens each run with a run_start record", "[checkpoint][log]") {
  const std::string d = tmp_dir("ckpt_log_start");
  const MemoryPlan plan = ck_plan();
  testutil::CpuModel cpu_model(plan, 1);
  Model& model = cpu_model.model;
  SyntheticSource train(256, 2, 32, 1);
  TrainOptions t = ck_opts(1);
  t.log_path = d + "/log.jsonl";
  for (const std::optional<int64_t> resumed : {std::optional<int64_t>(), std::optional<int64_t>(7)}) {
    Trainer tr(model, t, train, nullptr);
    tr.log_run_start(resumed);
  }
  const std::vector<nlohmann::json> recs = read_jsonl(t.log_path);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0]["event"] == "run_start");
  CHECK(recs[0]["resumed_from"].is_null());
  CHECK(recs[1]["resumed_from"] == 7);
  CHECK(recs[0]["model"] == plan.model.describe());
  CHECK(recs[0]["micro_batch"] == 2);
  CHECK(recs[0]["seq_len"] == 32);
  CHECK(recs[0]["total_batch_tokens"] == 128);
  const std::string when = recs[0]["time"];
  CHECK(when.size() == 20);
  CHECK(when.back() == 'Z');
}
