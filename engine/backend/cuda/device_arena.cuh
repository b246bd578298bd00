// The one function in the engine that allocates device memory, and its counter. The CUDA
// backend calls it once, for the arena the memory plan sizes; tests assert the count stays
// constant after start-up.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gpt2 {

// cudaMalloc of `bytes`; throws std::runtime_error naming the size on failure.
void* device_arena_alloc(size_t bytes);
void device_arena_free(void* p);
// Device allocations made by this process so far.
int64_t device_arena_allocations();

}  // namespace gpt2
