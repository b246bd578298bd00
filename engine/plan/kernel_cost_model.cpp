#include "engine/plan/kernel_cost_model.h"

#include <algorithm>

namespace gpt2 {

double mma_sync_share_of_peak(const SmArchitecture& sm) {
  if (sm.major == 9) return 0.6;
  // B200: H100's mma.sync rate per SM (0.6 · 989 TFLOP/s over 132 SMs) on 148 SMs, over 2250.
  if (sm.major == 10) return 0.6 * 989.0 / 132.0 * 148.0 / 2250.0;
  return 1.0;
}

double sm_clock_hz(const GpuSpec& card, const SmArchitecture& sm) {
  // fp32 lanes per SM: 64 on sm_80 (A100), 128 on every other architecture here.
  const double lanes = sm.major == 8 && sm.minor == 0 ? 64 : 128;
  return card.fp32_tflops * 1e12 / (std::max(1, card.sm_count) * lanes * 2);
}

KernelTimePrediction predict_kernel_time(const KernelTraffic& k, const Occupancy& occupancy, const GpuSpec& card,
                                         const SmArchitecture& sm) {
  KernelTimePrediction p;
  const double bw = card.mem_bandwidth_gbs * 1e9;
  const double sms = std::max(1, card.sm_count);
  const double launch_warps = static_cast<double>(k.blocks) * ((k.threads_per_block + kWarpSize - 1) / kWarpSize);
  const double resident_warps = std::min(static_cast<double>(occupancy.warps_per_sm) * sms, launch_warps);
  const double bytes_per_request = k.load_requests > 0 ? k.load_bytes / k.load_requests : 128.0;
  const double in_flight = resident_warps * bytes_per_request * kRequestsInFlightPerWarp;
  p.dram_fraction = std::min(kDramMaxFraction, in_flight / (bw * kDramLatencySeconds));
  p.dram_s = p.dram_fraction > 0 ? k.unique_bytes / (bw * p.dram_fraction) : 0;
  p.l2_s = (k.load_sectors + k.store_sectors) * 32 / (kL2BandwidthFactor * bw);
  p.shared_s = k.shared_wavefronts / (sms * sm_clock_hz(card, sm));
  p.tensor_s = k.mma * kMmaFlops / (card.bf16_tflops * 1e12 * mma_sync_share_of_peak(sm));
  p.launch_s = card.eff.launch_s;
  p.bound = "launch";
  double worst = 0;
  for (auto [t, name] : {std::pair<double, const char*>{p.dram_s, "dram"},
                         {p.l2_s, "l2"},
                         {p.shared_s, "shared"},
                         {p.tensor_s, "tensor"}})
    if (t > worst) {
      worst = t;
      p.bound = name;
    }
  p.seconds = worst + p.launch_s;
  return p;
}

}  // namespace gpt2
