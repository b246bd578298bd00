// Self-test of the access counting (simt/access_trace.h): kernels whose coalescing and bank
// conflicts are known by construction, and the counts the layer must give for them.
//  - a coalesced 4-byte copy: 4 sectors per request, efficiency 1.0;
//  - a stride-32 gather: 32 sectors per load request;
//  - a 32×32 shared-memory transpose: reading a column is 32-way without padding, 1-way with it;
//  - a broadcast read of one shared word: 1 wavefront;
//  - ldmatrix.x4 on rows 128 bytes apart: 8-way (32 wavefronts for 4 ideal); on rows 144 bytes
//    apart: 1-way.
// CMakeLists.txt also runs it with each fault of GPT2_SIMT_AUDIT_PLANT planted in the counter and
// expects it to fail then. Plain main(): one PASSED/FAILED line per check.
#include <cuda_runtime.h>

#include <cstdio>

#include "../selftest/selftest_util.h"
#include "simt/access_trace.h"
#include "simt/device.h"
#include "simt/launch.h"
#include "simt/ptx.h"

namespace {

using namespace simt_selftest;

__global__ void copy_kernel(float* out, const float* in) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = in[i];
}
__global__ void gather_kernel(float* out, const float* in) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = in[i * 32];
}
template <int Pitch>
__global__ void transpose_kernel(float* out, const float* in) {
  __shared__ float tile[32][Pitch];
  const unsigned x = threadIdx.x, y = threadIdx.y;
  tile[y][x] = in[y * 32 + x];
  __syncthreads();
  out[y * 32 + x] = tile[x][y];
}
__global__ void broadcast_kernel(float* out) {
  float* s = static_cast<float*>(simt::dynamic_shared());
  if (threadIdx.x == 0) s[0] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[0];
}
// Lane l gives row l%8 of matrix l/8; matrix m's rows start at m·16 bytes, `pitch` bytes apart.
__global__ void ldmatrix_kernel(unsigned* out, unsigned pitch) {
  unsigned char* s = static_cast<unsigned char*>(simt::dynamic_shared());
  const unsigned l = threadIdx.x;
  uint32_t r[4];
  gpt2::cuda::ptx::ldmatrix_x4(r, s + (l % 8) * pitch + (l / 8) * 16);
  out[l] = r[0];
}

template <typename F>
simt::trace::LaunchCounts record(F&& launch) {
  simt::trace::enable(true);
  launch();
  simt::trace::enable(false);
  std::vector<simt::trace::LaunchCounts> all = simt::trace::take();
  if (all.size() != 1) {
    check(false, "one launch recorded", fmt("%zu", all.size()));
    return {};
  }
  return all[0];
}

double ratio(uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

}  // namespace

int main() {
  if (!simt::trace::available()) {
    std::printf("SKIPPED: this build does not record memory accesses (cmake --preset audit)\n");
    return 77;
  }
  float *in = nullptr, *out = nullptr;
  cudaMalloc(&in, 32 * 1024 * sizeof(float));
  cudaMalloc(&out, 1024 * sizeof(float));
  cudaMemset(in, 0, 32 * 1024 * sizeof(float));

  {
    const auto c = record([&] { simt::launch(copy_kernel, dim3(1), dim3(256), 0, nullptr, out, in); });
    const auto& g = c.global;
    check(g.load_requests == 8 && g.load_sectors == 32, "coalesced copy: 4 sectors per load request",
          fmt("%llu requests, %llu sectors", (unsigned long long)g.load_requests, (unsigned long long)g.load_sectors));
    check(g.store_requests == 8 && g.store_sectors == 32, "coalesced copy: 4 sectors per store request",
          fmt("%llu requests, %llu sectors", (unsigned long long)g.store_requests,
              (unsigned long long)g.store_sectors));
    check(ratio(g.load_bytes + g.store_bytes, 32 * (g.load_sectors + g.store_sectors)) == 1.0,
          "coalesced copy: efficiency 1.0");
    check(g.unique_load_sectors * 32 == 1024 && g.unique_store_sectors * 32 == 1024,
          "coalesced copy: unique bytes = 1 KiB read + 1 KiB written");
  }
  {
    const auto c = record([&] { simt::launch(gather_kernel, dim3(1), dim3(256), 0, nullptr, out, in); });
    const auto& g = c.global;
    check(g.load_requests == 8 && g.load_sectors == 256, "stride-32 gather: 32 sectors per load request",
          fmt("%llu requests, %llu sectors", (unsigned long long)g.load_requests, (unsigned long long)g.load_sectors));
    check(ratio(g.load_bytes, 32 * g.load_sectors) == 0.125, "stride-32 gather: load efficiency 0.125");
  }
  {
    const auto c = record([&] { simt::launch(transpose_kernel<32>, dim3(1), dim3(32, 32), 0, nullptr, out, in); });
    const auto& s = c.shared;
    // 32 store requests conflict-free (32 wavefronts) + 32 column reads at 32 each (1024).
    check(s.store_requests == 32 && s.load_requests == 32 && s.wavefronts == 32 + 32 * 32 &&
              s.ideal_wavefronts == 64,
          "unpadded transpose: column reads are 32-way",
          fmt("%llu wavefronts, %llu ideal", (unsigned long long)s.wavefronts, (unsigned long long)s.ideal_wavefronts));
  }
  {
    const auto c = record([&] { simt::launch(transpose_kernel<33>, dim3(1), dim3(32, 32), 0, nullptr, out, in); });
    const auto& s = c.shared;
    check(s.wavefronts == 64 && s.ideal_wavefronts == 64, "padded transpose: 1-way",
          fmt("%llu wavefronts, %llu ideal", (unsigned long long)s.wavefronts, (unsigned long long)s.ideal_wavefronts));
  }
  {
    const auto c = record([&] { simt::launch(broadcast_kernel, dim3(1), dim3(32), 64, nullptr, out); });
    const auto& s = c.shared;
    // One store by lane 0 and one read of the same word by all 32 lanes.
    check(s.load_requests == 1 && s.store_requests == 1 && s.wavefronts == 2, "broadcast read: 1 wavefront",
          fmt("%llu wavefronts", (unsigned long long)s.wavefronts));
  }
  unsigned* uout = reinterpret_cast<unsigned*>(out);
  {
    const auto c = record([&] { simt::launch(ldmatrix_kernel, dim3(1), dim3(32), 8 * 128, nullptr, uout, 128u); });
    const auto& s = c.shared;
    check(s.load_requests == 1 && s.wavefronts == 32 && s.ideal_wavefronts == 4,
          "ldmatrix, rows 128 bytes apart: 8-way",
          fmt("%llu wavefronts, %llu ideal", (unsigned long long)s.wavefronts, (unsigned long long)s.ideal_wavefronts));
  }
  {
    const auto c = record([&] { simt::launch(ldmatrix_kernel, dim3(1), dim3(32), 8 * 144, nullptr, uout, 144u); });
    const auto& s = c.shared;
    check(s.load_requests == 1 && s.wavefronts == 4 && s.ideal_wavefronts == 4,
          "ldmatrix, rows 144 bytes apart: 1-way",
          fmt("%llu wavefronts, %llu ideal", (unsigned long long)s.wavefronts, (unsigned long long)s.ideal_wavefronts));
  }
  cudaFree(in);
  cudaFree(out);
  return finish();
}
