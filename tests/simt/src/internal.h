// Declarations shared by the SIMT layer's own sources (not part of the emulated API).
#pragma once
#include "simt/runtime.h"

namespace simt {
// The dynamic shared memory a launch of `func` may use: 48 KiB, or what cudaFuncSetAttribute set.
int max_dynamic_smem(const void* func);
}  // namespace simt

namespace simt {
// The sticky error of a faulted kernel, or cudaSuccess.
cudaError_t sticky_error();
// fault() with a specific error code (e.g. cudaErrorMisalignedAddress).
[[noreturn]] void fault_code(cudaError_t code, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
}  // namespace simt
