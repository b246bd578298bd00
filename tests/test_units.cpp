#include <catch2/catch.hpp>

#include "engine/util/errors.h"
#include "engine/util/units.h"

using namespace gpt2;

TEST_CASE("sizes parse in binary and decimal units", "[units]") {
  CHECK(parse_bytes("12GiB", "--gpu-mem") == 12ll << 30);
  CHECK(parse_bytes("12G", "--gpu-mem") == 12ll << 30);
  CHECK(parse_bytes("11.5 gib", "--gpu-mem") == static_cast<int64_t>(11.5 * (1ll << 30)));
  CHECK(parse_bytes("512MiB", "--gpu-mem") == 512ll << 20);
  CHECK(parse_bytes("24GB", "--gpu-mem") == 24000000000ll);
  CHECK(parse_bytes("4096", "--gpu-mem") == 4096);
  for (const char* bad : {"", "GiB", "12XB", "-3G", "1.2.3G", "0", "nan"}) {
    INFO(bad);
    try {
      parse_bytes(bad, "--gpu-mem");
      FAIL("no error");
    } catch (const ConfigError& e) {
      CHECK(e.flag() == "--gpu-mem");
    }
  }
  CHECK(format_bytes(12ll << 30) == "12.00 GiB");
  CHECK(format_count(124475904) == "124,475,904");
}
