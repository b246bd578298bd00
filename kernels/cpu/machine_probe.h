/*
 * What this CPU can do, measured: the peak FMA rate of the instruction set the matmul uses, and
 * the memory bandwidth, both on all OpenMP threads. The CPU backend's roofline
 * (engine/plan/throughput_model.h) uses them as the device's peak and bandwidth.
 *
 *   fma_peak_gflops:  independent accumulator chains of vector FMAs per thread (16 zmm chains
 *                     for AVX-512, 12 ymm for AVX2, 8 xmm multiply-adds for SSE2), no memory
 *                     traffic; an FMA counts 2 flops. Best of `repeats` runs of ~`seconds`.
 *   stream_bandwidth_gbs:  a = b + s·c over three arrays of `bytes_per_array` (larger than the
 *                     caches), bytes read + written per second; best of `repeats` passes after
 *                     a first pass that touches the pages.
 */
#pragma once
#include <cstddef>

namespace gpt2::cpu {

double fma_peak_gflops(double seconds = 0.01, int repeats = 3);
double stream_bandwidth_gbs(size_t bytes_per_array = size_t{32} << 20, int repeats = 2);

}  // namespace gpt2::cpu
