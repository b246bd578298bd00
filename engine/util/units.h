// Byte sizes as users write them ("12GiB", "11.5G", "512MiB", "24GB") and as we print them.
#pragma once
#include <cstdint>
#include <string>

namespace gpt2 {

constexpr int64_t kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;

// Parses a size. Units: B, K/KiB, M/MiB, G/GiB, T/TiB (binary) and KB, MB, GB, TB (decimal);
// a bare number is bytes. Case-insensitive, optional space, fractional numbers allowed.
// Throws ConfigError(flag) on malformed input, zero, or less than one byte ("0.5": a bare number
// counts bytes).
int64_t parse_bytes(const std::string& text, const std::string& flag);

// "1.23 GiB", "512.0 MiB", "1000 B".
std::string format_bytes(int64_t bytes);

// "124,475,904".
std::string format_count(int64_t n);

// A duration for people: "0.42 s", "38 s", "12 min 5 s", "1 h 40 min".
std::string format_duration(double seconds);

}  // namespace gpt2
