# The SIMT layer as a library (gpt2_simt), included by the top-level CMakeLists.txt when
# GPT2_SIMT is on. With it, GPT2_HAVE_CUDA means "the CUDA code, built as host C++ against this
# layer": gpt2_kernels_cuda and gpt2_backend_cuda compile their .cu sources with the C++ compiler
# and link gpt2_simt instead of the CUDA libraries. NCCL is the layer's, over MPI.
gpt2_require_package(libboost-context-dev Boost 1.74 COMPONENTS context)

add_library(gpt2_simt STATIC ${CMAKE_CURRENT_LIST_DIR}/src/runtime.cpp ${CMAKE_CURRENT_LIST_DIR}/src/streams.cpp
                             ${CMAKE_CURRENT_LIST_DIR}/src/scheduler.cpp ${CMAKE_CURRENT_LIST_DIR}/src/cublaslt.cpp
                             ${CMAKE_CURRENT_LIST_DIR}/src/access_trace.cpp)
target_include_directories(gpt2_simt PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_compile_definitions(gpt2_simt PUBLIC GPT2_SIMT=1)
# Rounding as the CUDA sources write it: a*b+c is never fused unless they call fmaf.
target_compile_options(gpt2_simt PUBLIC -ffp-contract=off -Wno-unknown-pragmas)
target_compile_options(gpt2_simt PRIVATE ${GPT2_CXX_WARNINGS})
target_link_libraries(gpt2_simt PUBLIC Boost::context OpenMP::OpenMP_CXX)
# Kernel names from the executable's symbol table, and launches checked against ptxas's resources
# (the table and the SM limits of engine/plan/kernel_resources.h, hence gpt2_plan).
target_sources(gpt2_simt PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/symbols.cpp)
target_link_libraries(gpt2_simt PUBLIC gpt2_plan)
if(GPT2_HAVE_MPI)
  target_sources(gpt2_simt PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/nccl.cpp)
  target_link_libraries(gpt2_simt PUBLIC MPI::MPI_CXX)
endif()

# Marks .cu sources to be compiled as C++ by targets of the calling directory.
function(gpt2_simt_sources)
  set_source_files_properties(${ARGN} PROPERTIES LANGUAGE CXX)
endfunction()

# The kernel audit (preset `audit`, GPT2_KERNEL_AUDIT): the kernel sources are compiled by clang
# with load and store callbacks (simt/access_trace.h), so the layer sees every memory access of
# every lane. GPT2_AUDIT_FLAGS is applied to the kernel library and the audit's own sources only;
# the layer itself is not instrumented.
option(GPT2_KERNEL_AUDIT "Build the kernel audit: kernels with memory-access callbacks (clang)" OFF)
if(GPT2_KERNEL_AUDIT)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GPT2_KERNEL_AUDIT needs clang (its -fsanitize-coverage=trace-loads,trace-stores): "
                        "configure with cmake --preset audit, which names clang++ (Debian package clang)")
  endif()
  target_compile_definitions(gpt2_simt PUBLIC GPT2_KERNEL_AUDIT=1)
  # trace-loads/trace-stores need an edge mode; inline-8bit-counters is the cheapest. Vectorizers
  # off: each lane's code stays scalar as nvcc compiles it, so accesses keep their source widths.
  set(GPT2_AUDIT_FLAGS -fsanitize-coverage=inline-8bit-counters,trace-loads,trace-stores -fno-vectorize
                       -fno-slp-vectorize)
endif()
