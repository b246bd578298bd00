// The one place that turns a device into a backend: the CPU backend, or the CUDA backend through
// cuda_backend_factory.h. train_gpt2, the sample tool, tests and benchmarks make their backend here.
#pragma once
#include <memory>
#include <string>

#include "engine/backend/backend.h"
#include "engine/plan/memory_plan.h"

namespace gpt2 {

// A --device value: "auto" is CUDA when a CUDA device is present (query_cuda_device), else the
// CPU; "cpu" and "cuda" are parsed by parse_device (ConfigError("--device") otherwise).
Device device_from_flag(const std::string& flag);

// The backend for `device`; for CUDA, its context, stream and handles come up on GPU
// `cuda_device` now, before any plan, so the memory they hold can be measured. Throws
// ConfigError("--device") when CUDA is asked for and there is no usable GPU or no CUDA backend.
std::unique_ptr<Backend> make_backend(Device device, int cuda_device = 0);

}  // namespace gpt2
