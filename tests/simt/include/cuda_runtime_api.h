// The SIMT layer's cuda_runtime.h: the CUDA runtime, device built-ins and kernel launches, executed
// on the CPU. See tests/simt/README.md.
#pragma once
#include "simt/device.h"
#include "simt/launch.h"
#include "simt/runtime.h"
