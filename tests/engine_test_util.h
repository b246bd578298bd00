// Small helpers shared by the engine tests: a fresh scratch directory under the build tree,
// bitwise comparison of float vectors, and the message of an expected exception.
#pragma once
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace gpt2::testutil {

// <build>/test_tmp/<name>, emptied.
inline std::string tmp_dir(const std::string& name) {
  const std::string d = std::string(GPT2_BINARY_DIR) + "/test_tmp/" + name;
  std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str());
  return d;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The what() of the exception f throws, or "" when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace gpt2::testutil
