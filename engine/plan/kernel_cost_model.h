// The predicted time of one kernel launch on a card, from what the kernel audit counted
// (tests/simt/audit: the warps' memory requests, sectors and shared-memory wavefronts, mma.sync
// per warp) and what ptxas gave it (occupancy, engine/plan/kernel_resources.h). A prediction, to be
// calibrated on a real GPU (bench/gpu_check.sh prints it beside the measured time):
//
//   t = max(t_dram, t_l2, t_shared, t_tensor) + launch
//   t_dram   = unique bytes / (bandwidth · min(0.9, in-flight bytes / (bandwidth · latency)))
//              in-flight bytes = resident warps (occupancy × SMs, at most the launch's warps)
//                                × bytes per load request × kRequestsInFlightPerWarp
//   t_l2     = sectors moved (loads + stores) · 32 / (kL2BandwidthFactor · bandwidth)
//   t_shared = wavefronts / (SMs · 1 per clock · clock)
//   t_tensor = mma.sync count · 4096 FLOP / (bf16 tensor peak · mma.sync's share of it)
//
// The clock is the card's fp32 peak / (SMs · fp32 lanes per SM · 2). Issue slots, instruction
// latencies, special-function throughput and tail effects are not modelled, so compute-heavy
// kernels (attention) are predicted faster than a GPU runs them; the constants below are the
// model's assumptions, written down in bench/RESULTS.md.
#pragma once
#include <cstdint>
#include <string>

#include "engine/plan/gpu_catalog.h"
#include "engine/plan/kernel_resources.h"

namespace gpt2 {

// Assumptions of the model (not measured on a GPU yet).
constexpr double kDramLatencySeconds = 600e-9;   // a load's latency under load
constexpr double kRequestsInFlightPerWarp = 2;   // independent load requests a warp keeps in flight
constexpr double kDramMaxFraction = 0.9;         // of the datasheet bandwidth, at best
constexpr double kL2BandwidthFactor = 2.0;       // L2 → SM bandwidth over DRAM bandwidth
constexpr double kMmaFlops = 4096;               // one mma.sync.m16n8k16: 16·8·16 multiply-adds

// One launch as the audit counted it.
struct KernelTraffic {
  double load_requests = 0, load_sectors = 0, store_sectors = 0;
  double load_bytes = 0;    // bytes requested by loads (at most the sectors' bytes per request)
  double unique_bytes = 0;  // distinct sectors loaded plus distinct sectors stored, × 32
  double shared_wavefronts = 0;
  double mma = 0;           // mma.sync.m16n8k16 per warp
  int64_t blocks = 0;
  int threads_per_block = 0;
};

struct KernelTimePrediction {
  double seconds = 0;  // total
  double dram_s = 0, l2_s = 0, shared_s = 0, tensor_s = 0, launch_s = 0;
  double dram_fraction = 0;  // of the datasheet bandwidth the occupancy can sustain
  const char* bound = "";    // "dram", "l2", "shared", "tensor" or "launch"
};

// The share of the bf16 tensor peak mma.sync reaches on an architecture: all of it up to Ampere,
// Ada and GeForce Blackwell; about 60 % on Hopper, whose peak needs wgmma; on B200, Hopper's
// per-SM mma.sync rate over the tcgen05 peak.
double mma_sync_share_of_peak(const SmArchitecture& sm);
// The SM clock implied by the card's fp32 peak, Hz.
double sm_clock_hz(const GpuSpec& card, const SmArchitecture& sm);

KernelTimePrediction predict_kernel_time(const KernelTraffic& k, const Occupancy& occupancy, const GpuSpec& card,
                                         const SmArchitecture& sm);

}  // namespace gpt2
