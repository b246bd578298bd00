# The SIMT layer as a library (gpt2_simt), included by the top-level CMakeLists.txt when
# GPT2_SIMT is on. With it, GPT2_HAVE_CUDA means "the CUDA code, built as host C++ against this
# layer": gpt2_kernels_cuda and gpt2_backend_cuda compile their .cu sources with the C++ compiler
# and link gpt2_simt instead of the CUDA libraries. NCCL is the layer's, over MPI.
gpt2_require_package(libboost-context-dev Boost 1.74 COMPONENTS context)

add_library(gpt2_simt STATIC ${CMAKE_CURRENT_LIST_DIR}/src/runtime.cpp ${CMAKE_CURRENT_LIST_DIR}/src/scheduler.cpp
                             ${CMAKE_CURRENT_LIST_DIR}/src/cublaslt.cpp)
target_include_directories(gpt2_simt PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_compile_definitions(gpt2_simt PUBLIC GPT2_SIMT=1)
# Rounding as the CUDA sources write it: a*b+c is never fused unless they call fmaf.
target_compile_options(gpt2_simt PUBLIC -ffp-contract=off -Wno-unknown-pragmas)
target_compile_options(gpt2_simt PRIVATE ${GPT2_CXX_WARNINGS})
target_link_libraries(gpt2_simt PUBLIC Boost::context OpenMP::OpenMP_CXX)
if(GPT2_HAVE_MPI)
  target_sources(gpt2_simt PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/nccl.cpp)
  target_link_libraries(gpt2_simt PUBLIC MPI::MPI_CXX)
endif()

# Marks .cu sources to be compiled as C++ by targets of the calling directory.
function(gpt2_simt_sources)
  set_source_files_properties(${ARGN} PROPERTIES LANGUAGE CXX)
endfunction()
