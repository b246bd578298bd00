// train_gpt2's flags: parsing, resolution, and one clear error naming the flag; and the token id
// lists that tokenize and sample read.
#include <catch2/catch.hpp>
#include <sstream>

#include "engine/cli/dry_run.h"
#include "engine/cli/resolve.h"
#include "engine/cli/run_options.h"
#include "engine/cli/tool_main.h"
#include "engine/util/errors.h"

using namespace gpt2;

namespace {
struct Parsed {
  int code;
  RunOptions opts;
  std::string out, err;
};
Parsed parse(std::vector<const char*> args) {
  args.insert(args.begin(), "train_gpt2");
  Parsed p;
  std::ostringstream out, err;
  p.code = parse_run_options(static_cast<int>(args.size()), args.data(), p.opts, out, err);
  p.out = out.str();
  p.err = err.str();
  return p;
}
std::string error_flag(std::vector<const char*> args) {
  Parsed p = parse(std::move(args));
  REQUIRE(p.code == -1);
  try {
    std::ostringstream sink;
    dry_run(p.opts, sink);
  } catch (const ConfigError& e) {
    return e.flag();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("flags parse into options and a custom model", "[cli]") {
  Parsed p = parse({"--dry-run", "--layers", "4", "--heads", "4", "--width", "128", "--vocab", "1000", "--max-seq-len",
                    "256", "--micro-batch", "8", "--recompute", "norm", "--gpu-mem", "1GiB"});
  REQUIRE(p.code == -1);
  const ModelConfig m = resolve_model(p.opts);
  CHECK(m.num_layers == 4);
  CHECK(m.channels == 128);
  CHECK(m.vocab_size == 1000);
  CHECK(m.padded_vocab == 1024);
  CHECK(m.name == "custom");
  const RunConfig r = resolve_run_config(p.opts, m, Device::CUDA);
  CHECK(r.micro_batch == 8);
  CHECK(r.seq_len == 256);
  CHECK(r.recompute.kind == Recompute::Norm);
  CHECK(p.opts.was_set("--recompute"));
  CHECK_FALSE(p.opts.was_set("--zero"));
}

TEST_CASE("help exits 0 and lists the flags; unknown flags exit 2", "[cli]") {
  Parsed h = parse({"--help"});
  CHECK(h.code == 0);
  CHECK(h.out.find("--micro-batch") != std::string::npos);
  CHECK(h.out.find("--gpu-mem") != std::string::npos);
  Parsed u = parse({"--no-such-flag"});
  CHECK(u.code == 2);
  CHECK(u.err.find("--no-such-flag") != std::string::npos);
  Parsed n = parse({"--steps", "-5"});
  CHECK(n.code == 2);
  CHECK(n.err.find("--steps") != std::string::npos);
}

TEST_CASE("every nonsensical config names its flag before any allocation", "[cli][errors]") {
  CHECK(error_flag({"--dry-run", "--heads", "7", "--gpu-mem", "12GiB"}) == "--heads");
  CHECK(error_flag({"--dry-run", "--seq-len", "2048", "--gpu-mem", "12GiB"}) == "--seq-len");
  CHECK(error_flag({"--dry-run", "--micro-batch", "4", "--total-batch-tokens", "1000", "--gpu-mem", "12GiB"}) ==
        "--total-batch-tokens");
  CHECK(error_flag({"--dry-run", "--micro-batch", "4", "--world-size", "3", "--total-batch-tokens", "16384",
                    "--gpu-mem", "12GiB"}) == "--total-batch-tokens");
  CHECK(error_flag({"--dry-run", "--model", "d48", "--micro-batch", "auto", "--gpu-mem", "4GiB"}) == "--gpu-mem");
  CHECK(error_flag({"--dry-run", "--model", "d48", "--micro-batch", "auto", "--gpu", "rtx3060-12gb", "--seq-len",
                    "1024", "--zero", "0"}) != "--heads");  // d48 on 12 GB: fits or names --gpu
  CHECK(error_flag({"--dry-run", "--gpu", "gtx480"}) == "--gpu");
  CHECK(error_flag({"--dry-run", "--gpu-mem", "12 potatoes"}) == "--gpu-mem");
  CHECK(error_flag({"--dry-run", "--gpu-mem", "12GiB", "--micro-batch", "many"}) == "--micro-batch");
  CHECK(error_flag({"--dry-run", "--gpu-mem", "12GiB", "--model", "d99"}) == "--model");
  CHECK(error_flag({"--dry-run", "--gpu-mem", "12GiB", "--precision", "fp16"}) == "--precision");
  CHECK(error_flag({"--dry-run", "--gpu-mem", "12GiB", "--logits-chunk", "0"}) == "--logits-chunk");
  Parsed negative_width = parse({"--dry-run", "--gpu-mem", "12GiB", "--width", "-8"});  // refused when parsed
  CHECK(negative_width.code == 2);
  CHECK(negative_width.err.find("--width") != std::string::npos);
}

TEST_CASE("dry run: exit code says whether it fits", "[cli]") {
  Parsed p = parse({"--dry-run", "--model", "d12", "--micro-batch", "64", "--gpu", "rtx3060-12gb"});
  REQUIRE(p.code == -1);
  std::ostringstream out;
  CHECK(dry_run(p.opts, out) == kExitDoesNotFit);
  CHECK(out.str().find("DOES NOT FIT") != std::string::npos);
  CHECK(out.str().find("--micro-batch") != std::string::npos);  // the suggested flags

  Parsed a = parse({"--dry-run", "--model", "d12", "--micro-batch", "auto", "--gpu-mem", "11GiB"});
  std::ostringstream out2;
  CHECK(dry_run(a.opts, out2) == kExitOk);
  CHECK(out2.str().find("FITS") != std::string::npos);
}

TEST_CASE("zero, negative and out-of-range shape, seed and count flags are refused", "[cli][errors]") {
  for (const char* flag : {"--layers", "--heads", "--width", "--vocab", "--max-seq-len"}) {
    for (const char* value : {"0", "-4"}) {
      Parsed p = parse({"--dry-run", "--gpu-mem", "1GiB", flag, value});
      INFO(flag << " " << value);
      CHECK(p.code == 2);
      CHECK(p.err.find(flag) != std::string::npos);
    }
  }
  for (const char* value : {"-1", "18446744073709551616", "99999999999999999999999", "1e3"}) {
    Parsed p = parse({"--dry-run", "--seed", value});
    INFO("--seed " << value);
    CHECK(p.code == 2);
    CHECK(p.err.find("--seed") != std::string::npos);
  }
  Parsed max_seed = parse({"--dry-run", "--seed", "18446744073709551615"});
  REQUIRE(max_seed.code == -1);
  CHECK(max_seed.opts.seed == UINT64_MAX);
  Parsed w = parse({"--dry-run", "--world-size", "0"});
  CHECK(w.code == 2);
  CHECK(w.err.find("--world-size") != std::string::npos);
  Parsed r = parse({"--dry-run", "--rank", "-1"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--rank") != std::string::npos);
}

TEST_CASE("a repeated flag takes its last value, for every flag", "[cli]") {
  Parsed p = parse({"--dry-run", "--dry-run", "--width", "64", "--width", "128", "--lr", "1", "--lr", "0.5",
                    "--micro-batch", "8", "--micro-batch", "auto", "--seed", "1", "--seed", "2"});
  REQUIRE(p.code == -1);
  CHECK(p.opts.width == 128);
  CHECK(p.opts.lr == 0.5);
  CHECK(p.opts.micro_batch == "auto");
  CHECK(p.opts.seed == 2);
  CHECK(parse({"--help"}).out.find("more than once takes its last value") != std::string::npos);
}

TEST_CASE("flags that would do nothing are refused, naming both flags", "[cli][errors]") {
  Parsed json = parse({"--json"});
  CHECK(json.code == 2);
  CHECK(json.err.find("--json") != std::string::npos);
  CHECK(json.err.find("--dry-run") != std::string::npos);
  Parsed warmup = parse({"--steps", "200", "--warmup", "300"});
  CHECK(warmup.code == 2);
  CHECK(warmup.err.find("--warmup") != std::string::npos);
  CHECK(warmup.err.find("--steps 200") != std::string::npos);
  CHECK(parse({"--steps", "200", "--warmup", "200"}).code == -1);
}

TEST_CASE("world size and rank flags outside a dry run must agree with the launch", "[cli][errors]") {
  auto flag_of = [](std::vector<const char*> args, int world, int rank) -> std::string {
    Parsed p = parse(std::move(args));
    REQUIRE(p.code == -1);
    try {
      check_launch_agrees(p.opts, world, rank);
    } catch (const ConfigError& e) {
      return e.flag();
    }
    return "(no error)";
  };
  CHECK(flag_of({"--world-size", "4"}, 1, 0) == "--world-size");
  CHECK(flag_of({"--world-size", "4", "--rank", "3"}, 1, 0) == "--world-size");
  CHECK(flag_of({"--rank", "1"}, 1, 0) == "--rank");
  CHECK(flag_of({"--world-size", "4", "--rank", "2"}, 4, 3) == "--rank");
  CHECK(flag_of({"--world-size", "4", "--rank", "3"}, 4, 3) == "(no error)");
  CHECK(flag_of({"--world-size", "1"}, 1, 0) == "(no error)");
  CHECK(flag_of({}, 4, 2) == "(no error)");
}

TEST_CASE("a size below one byte says so, not 'must be positive'", "[cli][errors]") {
  Parsed p = parse({"--dry-run", "--gpu-mem", "0.5"});
  REQUIRE(p.code == -1);
  try {
    std::ostringstream sink;
    dry_run(p.opts, sink);
    FAIL("--gpu-mem 0.5 was accepted");
  } catch (const ConfigError& e) {
    CHECK(e.flag() == "--gpu-mem");
    CHECK(std::string(e.what()).find("less than one byte") != std::string::npos);
    CHECK(std::string(e.what()).find("positive") == std::string::npos);
  }
}

TEST_CASE("a micro-batch of auto is resolved once, by auto-fit", "[cli][autofit]") {
  Parsed p = parse({"--dry-run", "--model", "d12", "--micro-batch", "auto", "--gpu-mem", "11GiB"});
  REQUIRE(p.code == -1);
  CHECK(resolve_run_config(p.opts, resolve_model(p.opts), Device::CUDA).micro_batch == kAutoMicroBatch);
  const ResolvedRun rr = resolve(p.opts);
  CHECK(rr.autofit_used);
  CHECK(rr.run.micro_batch == rr.autofit.best.run.micro_batch);
  CHECK(rr.run.micro_batch >= 1);
  Parsed fixed = parse({"--dry-run", "--model", "d12", "--micro-batch", "8", "--gpu-mem", "11GiB"});
  const ResolvedRun rf = resolve(fixed.opts);
  CHECK_FALSE(rf.autofit_used);
  CHECK(rf.run.micro_batch == 8);
}

TEST_CASE("token id lists: whitespace-separated (tokenize) and comma-separated (sample)", "[cli][errors]") {
  CHECK(parse_token_ids(" 464 3290\t\n13\n", 50257) == std::vector<int32_t>{464, 3290, 13});
  CHECK(parse_token_ids("", 50257).empty());
  CHECK(parse_token_ids(" 1 , 2,3 ", 50257, ',') == std::vector<int32_t>{1, 2, 3});
  auto error_of = [](const std::string& text, int limit, char separator) -> std::string {
    try {
      parse_token_ids(text, limit, separator);
    } catch (const TokenIdError& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(error_of("15496 99999", 50257, '\0') == "byte offset 6: token id 99999 is not below the vocab size 50257");
  CHECK(error_of("1 two 3", 50257, '\0') == "byte offset 2: 'two' is not a token id");
  CHECK(error_of("12345678901234567890123", 50257, '\0') == "byte offset 0: '12345678901234567890' is not a token id");
  for (const char* bad : {"1x", "1.5", "1,,2", "1,", ",1", "-3", "+5", "1 2", "  ", "99999999999"})
    CHECK(error_of(bad, 50257, ',').find("is not a token id") != std::string::npos);
  CHECK(error_of("7,600", 512, ',') == "byte offset 2: token id 600 is not below the vocab size 512");
}
