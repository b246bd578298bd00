// AdamW on the CPU: see adamw.h; the element maths is kernels/shared/adamw_math.h.
//
// The element update calls sqrtf. With errno semantics GCC keeps every square root scalar (it
// tests for a negative argument and calls the library to set errno) and the loops below do not
// vectorise; CMakeLists.txt therefore compiles this file with -fno-math-errno, which makes sqrtf
// the square root instruction, correctly rounded like the library: the same bits, and the loops
// run 16 (AVX-512) or 8 (AVX2) elements at a time. (GCC ignores math-errno in optimize pragmas.)
#include "kernels/cpu/adamw.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace gpt2::cpu {

namespace {

// The elements of every range laid end to end: piece [begin, end) of that sequence maps back to
// (range, offset) runs. Threads take equal contiguous pieces, so each reads and writes one span
// of each array per range it touches.
struct RangeCursor {
  const AdamWRange* ranges;
  int num_ranges;
  size_t total() const {
    size_t n = 0;
    for (int r = 0; r < num_ranges; ++r) n += ranges[r].count;
    return n;
  }
  // Calls fn(range, first element, count) for every run of piece [begin, end).
  template <typename Fn>
  void for_each_run(size_t begin, size_t end, Fn&& fn) const {
    size_t start = 0;
    for (int r = 0; r < num_ranges && start < end; ++r) {
      const size_t stop = start + ranges[r].count;
      const size_t lo = std::max(begin, start), hi = std::min(end, stop);
      if (hi > lo) fn(ranges[r], ranges[r].offset + (lo - start), hi - lo);
      start = stop;
    }
  }
};

// One thread's share of `total` elements: equal contiguous pieces.
void thread_piece(size_t total, size_t* begin, size_t* end) {
  const size_t threads = static_cast<size_t>(omp_get_num_threads());
  const size_t tid = static_cast<size_t>(omp_get_thread_num());
  *begin = total * tid / threads;
  *end = total * (tid + 1) / threads;
}

// Runs fn(range, first element, count) over every range's elements, the threads taking equal
// contiguous pieces of them.
template <typename Fn>
void parallel_over_ranges(const AdamWRange* ranges, int num_ranges, Fn&& fn) {
  const RangeCursor cursor{ranges, num_ranges};
  const size_t total = cursor.total();
#pragma omp parallel
  {
    size_t begin, end;
    thread_piece(total, &begin, &end);
    cursor.for_each_run(begin, end, fn);
  }
}

// The vector loops, built for AVX-512 and AVX2 (both with FMA) and baseline x86-64; the runtime
// picks the best the machine has. Without hardware FMA, fmaf is the exactly rounded library call.
#define GPT2_ADAMW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

GPT2_ADAMW_CLONES void update_in_place(float* p, const float* g, float* m, float* v, size_t n,
                                       const adamw::StepConstants& k, float decay) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) p[i] = adamw::update_element(p[i], g[i], m[i], v[i], k, decay);
}

GPT2_ADAMW_CLONES void update_master_fp32(float* master, const float* g, float* m, float* v, float* out, size_t n,
                                          const adamw::StepConstants& k, float decay) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    const float p = adamw::update_element(master[i], g[i], m[i], v[i], k, decay);
    master[i] = p;
    out[i] = p;
  }
}

GPT2_ADAMW_CLONES void update_master_bf16(float* master, const uint16_t* g, float* m, float* v, uint16_t* out,
                                          size_t n, const adamw::StepConstants& k, float decay, uint32_t step_seed,
                                          uint64_t first_index) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    uint32_t gbits = static_cast<uint32_t>(g[i]) << 16, pbits;
    float grad;
    std::memcpy(&grad, &gbits, sizeof grad);
    const float p = adamw::update_element(master[i], grad, m[i], v[i], k, decay);
    master[i] = p;
    std::memcpy(&pbits, &p, sizeof pbits);
    out[i] = adamw::round_bits(pbits, adamw::rounding_hash(step_seed, first_index + i));
  }
}

}  // namespace

void adamw_update_ranges(float* params, const float* grads, float* m, float* v, const AdamWRange* ranges,
                         int num_ranges, const AdamWParams& hp) {
  const adamw::StepConstants k = adamw::step_constants(hp);
  parallel_over_ranges(ranges, num_ranges, [&](const AdamWRange& r, size_t o, size_t n) {
    update_in_place(params + o, grads + o, m + o, v + o, n, k, r.decay ? k.decay_factor : 1.0f);
  });
}

void adamw_update_master(float* master, const float* grads, float* m, float* v, float* params_out,
                         const AdamWRange* ranges, int num_ranges, const AdamWParams& hp) {
  const adamw::StepConstants k = adamw::step_constants(hp);
  parallel_over_ranges(ranges, num_ranges, [&](const AdamWRange& r, size_t o, size_t n) {
    update_master_fp32(master + o, grads + o, m + o, v + o, params_out + o, n, k, r.decay ? k.decay_factor : 1.0f);
  });
}

void adamw_update_master(float* master, const uint16_t* grads_bf16, float* m, float* v, uint16_t* params_out_bf16,
                         const AdamWRange* ranges, int num_ranges, const AdamWParams& hp, uint32_t seed,
                         uint64_t index_base) {
  const adamw::StepConstants k = adamw::step_constants(hp);
  const uint32_t step_seed = adamw::rounding_seed(seed, hp.t);
  parallel_over_ranges(ranges, num_ranges, [&](const AdamWRange& r, size_t o, size_t n) {
    update_master_bf16(master + o, grads_bf16 + o, m + o, v + o, params_out_bf16 + o, n, k,
                       r.decay ? k.decay_factor : 1.0f, step_seed, index_base + o);
  });
}

}  // namespace gpt2::cpu
