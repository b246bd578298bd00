// Self-test of the SIMT layer's bf16 conversions (tests/simt/include/cuda_bf16.h) against a
// bit-exact reference written here from the definition: fp32 → bf16 rounds to the nearest
// representable value, ties to the even significand, overflowing to ±inf; NaN gives the canonical
// NaN 0x7FFF (as the CUDA math API documents); denormals round like any other value; _rz
// truncates; bf16 → fp32 is exact. The reference compares the distances to the two neighbouring
// bf16 values in double precision (no bit tricks shared with the layer).
// The comparison must also fail for a wrong conversion: truncation passed off as _rn.
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "selftest_util.h"

namespace {

using namespace simt_selftest;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The value of a bf16 bit pattern's magnitude (bits 0..14), with exponent field 255 read as an
// ordinary exponent (so 0x7F80 is 2^128, the "next value" after the largest finite one).
double magnitude(uint32_t h) {
  const int e = static_cast<int>((h >> 7) & 0xFF);
  const int m = static_cast<int>(h & 0x7F);
  return e == 0 ? std::ldexp(m, -133) : std::ldexp(128 + m, e - 134);
}

// Reference fp32 → bf16, round to nearest even.
uint16_t ref_rn(float f) {
  if (std::isnan(f)) return 0x7FFF;
  const uint32_t sign = std::signbit(f) ? 0x8000u : 0u;
  const double a = std::fabs(static_cast<double>(f));
  if (std::isinf(f)) return static_cast<uint16_t>(sign | 0x7F80u);
  // The largest bf16 magnitude pattern ≤ a, by search over the ordered patterns.
  uint32_t lo = 0, hi = 0x7F80;  // magnitude(lo) <= a < magnitude(hi)
  while (hi - lo > 1) {
    const uint32_t mid = (lo + hi) / 2;
    (magnitude(mid) <= a ? lo : hi) = mid;
  }
  const double dlo = a - magnitude(lo), dhi = magnitude(lo + 1) - a;
  uint32_t r = dlo < dhi ? lo : dhi < dlo ? lo + 1 : ((lo & 1) ? lo + 1 : lo);
  return static_cast<uint16_t>(sign | r);  // r == 0x7F80 is inf
}

// Reference fp32 → bf16, toward zero.
uint16_t ref_rz(float f) {
  if (std::isnan(f)) return 0x7FFF;
  const uint32_t sign = std::signbit(f) ? 0x8000u : 0u;
  if (std::isinf(f)) return static_cast<uint16_t>(sign | 0x7F80u);
  const double a = std::fabs(static_cast<double>(f));
  uint32_t lo = 0, hi = 0x7F80;
  while (hi - lo > 1) {
    const uint32_t mid = (lo + hi) / 2;
    (magnitude(mid) <= a ? lo : hi) = mid;
  }
  return static_cast<uint16_t>(sign | lo);
}

// Inputs: every bf16 pattern with low halves that hit exact values, ties, just-below and
// just-above ties and the largest truncation, plus random fp32 patterns.
std::vector<uint32_t> inputs() {
  std::vector<uint32_t> v;
  const uint32_t lows[] = {0x0000, 0x0001, 0x3FFF, 0x7FFF, 0x8000, 0x8001, 0xC000, 0xFFFF};
  for (uint32_t h = 0; h < 0x10000; ++h)
    for (uint32_t l : lows) v.push_back(h << 16 | l);
  std::mt19937 rng(99);
  for (int i = 0; i < 200000; ++i) v.push_back(static_cast<uint32_t>(rng()));
  return v;
}

void check_against_reference(const std::vector<uint32_t>& in) {
  long bad_rn = 0, bad_ctor = 0, bad_rz = 0, rz_as_rn = 0;
  uint32_t first_bad = 0;
  for (uint32_t u : in) {
    const float f = from_bits(u);
    const uint16_t want = ref_rn(f);
    const uint16_t got = __bfloat16_as_ushort(__float2bfloat16_rn(f));
    if (got != want && bad_rn++ == 0) first_bad = u;
    bad_ctor += __nv_bfloat16(f).__x != want;
    bad_rz += __bfloat16_as_ushort(__float2bfloat16_rz(f)) != ref_rz(f);
    rz_as_rn += __bfloat16_as_ushort(__float2bfloat16_rz(f)) != want;
  }
  check(bad_rn == 0, "__float2bfloat16_rn matches the round-to-nearest-even reference",
        fmt("%zu inputs, %ld differ (first 0x%08x)", in.size(), bad_rn, first_bad));
  check(bad_ctor == 0, "__nv_bfloat16(float) matches the reference", fmt("%ld differ", bad_ctor));
  check(bad_rz == 0, "__float2bfloat16_rz matches the truncation reference", fmt("%ld differ", bad_rz));
  check(rz_as_rn > 0, "the comparison fails for truncation in place of rounding",
        fmt("%ld of %zu inputs differ", rz_as_rn, in.size()));
}

void check_special_cases() {
  const struct {
    uint32_t in;
    uint16_t want;
    const char* what;
  } cases[] = {
      {0x3F808000, 0x3F80, "1 + 2^-8 (tie, even below) → 1"},
      {0x3F818000, 0x3F82, "1 + 3·2^-8 (tie, odd below) → up"},
      {0x3F808001, 0x3F81, "just above a tie → up"},
      {0x3F807FFF, 0x3F80, "just below a tie → down"},
      {0xBF808000, 0xBF80, "-(1 + 2^-8) → -1"},
      {0x7F7FFFFF, 0x7F80, "FLT_MAX → inf"},
      {0x7F7F7FFF, 0x7F7F, "just below the overflow tie → largest finite"},
      {0x7F7F8000, 0x7F80, "overflow tie (odd below) → inf"},
      {0xFF7FFFFF, 0xFF80, "-FLT_MAX → -inf"},
      {0x7F800000, 0x7F80, "inf"},
      {0xFF800000, 0xFF80, "-inf"},
      {0x7FC00000, 0x7FFF, "quiet NaN → 0x7FFF"},
      {0x7F800001, 0x7FFF, "signalling NaN (would round to inf by bits) → 0x7FFF"},
      {0xFFFFFFFF, 0x7FFF, "negative NaN → 0x7FFF"},
      {0x00000000, 0x0000, "+0"},
      {0x80000000, 0x8000, "-0"},
      {0x00008000, 0x0000, "denormal tie (even below) → 0"},
      {0x00018000, 0x0002, "denormal tie (odd below) → up"},
      {0x00008001, 0x0001, "denormal just above a tie → smallest bf16 denormal"},
      {0x807FFFFF, 0x8080, "largest negative denormal → -FLT_MIN"},
      {0x007F8000, 0x0080, "denormal tie at the normal boundary → FLT_MIN"},
  };
  int bad = 0;
  for (const auto& c : cases) {
    const uint16_t got = __bfloat16_as_ushort(__float2bfloat16_rn(from_bits(c.in)));
    const uint16_t ref = ref_rn(from_bits(c.in));
    if (got != c.want || ref != c.want) {
      ++bad;
      std::printf("  0x%08x (%s): layer 0x%04x, reference 0x%04x, expected 0x%04x\n", c.in, c.what, got, ref, c.want);
    }
  }
  check(bad == 0, "ties, overflow, inf, NaN, zeros and denormals (layer and reference)",
        fmt("%zu cases, %d wrong", sizeof cases / sizeof cases[0], bad));
}

void check_widening() {
  long bad = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(h)));
    const bool nan = (h & 0x7FFF) > 0x7F80;
    double want = magnitude(h & 0x7FFF);
    if ((h & 0x7FFF) == 0x7F80) want = INFINITY;
    if (h & 0x8000) want = -want;
    if (nan ? !std::isnan(f) : (static_cast<double>(f) != want || std::signbit(f) != ((h & 0x8000) != 0))) ++bad;
  }
  check(bad == 0, "bf16 → fp32 is exact for all 65536 patterns", fmt("%ld wrong", bad));
}

}  // namespace

int main() {
  check_special_cases();
  check_against_reference(inputs());
  check_widening();
  return finish();
}
