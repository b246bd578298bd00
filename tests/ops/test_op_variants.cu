// Beside test_backend_ops: the kernel entry points the Backend interface does not call, each at
// the op table's shapes (tests/ops/op_table.cpp) and checked the same way, against the CPU
// backend with the table's tolerances. The tensors live in the arena of the CUDA backend, whose
// stream the kernels run on.
//   matmul unfused        cuda::matmul_forward/_backward with MatmulContext::allow_fused_epilogues
//                         off: the bias-add and column-sum kernels and the separate GELU kernels,
//                         the paths the backend takes where cuBLASLt declines an epilogue.
//   matmul gelu epilogue  the forward's GELU_AUX epilogue (matmul_forward with pre_gelu), which
//                         the backend does not use (its GELU is our kernel on the stored pre).
//   attention simple      the simple kernels in bf16 at head sizes 64 and 128, where the backend
//                         runs the flash kernels: the cross-check of the tensor-core path.
//   adamw device clip     the clipping factor read from a norm in device memory (grad_norm_sq,
//                         max_grad_norm), bitwise against the CPU with the same factor.
//   encoder two calls     encoder_backward_prepare, then the kernels (the form that lets a caller
//                         sort while the forward runs): against the CPU, and bitwise equal to the
//                         one-call form the backend uses.
//   residual add_inplace  dst += src (cuda::add_inplace), where the backend calls residual_forward
//                         with its output aliasing an input.
// Exit 77 (ctest: skipped) without a CUDA device.
//
// Usage: test_op_variants [--quick | --full] [--filter TEXT] [--list] [--help]
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/backend/adamw_step.h"
#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/encoder.cuh"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/residual.cuh"
#include "kernels/cuda/scratch_sizes.h"
#include "tests/ops/backend_ops.h"

using namespace gpt2;
using namespace gpt2::ops;
using gpt2::cuda::bf16;

namespace {

#if defined(GPT2_SIMT)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

// What the kernels need beyond the tensors; filled once the backend exists.
struct Kernels {
  cudaStream_t stream = nullptr;
  cuda::MatmulContext unfused, fused;
};

template <typename T>
T* P(const Side& s, const std::string& name) {
  return s.t(name).as<T>();
}
// Calls f with a null pointer of the side's storage type (bf16 or float) to pick the overload.
template <typename F>
void with_store(const Side& s, F f) {
  if (s.store() == DType::BF16)
    f(static_cast<bf16*>(nullptr));
  else
    f(static_cast<float*>(nullptr));
}

// The device runs `dev` in place of the stage's Backend calls; the reference keeps them.
void on_device(Stage& st, std::function<void(Side&)> dev) {
  std::function<void(Side&)> ref = st.run;
  st.run = [ref, dev](Side& s) {
    if (s.reference)
      ref(s);
    else
      dev(s);
  };
}

OpInstance matmul_unfused(const OpCase& c, DType dt, Kernels* k) {
  OpInstance I = make_instance(c, dt);
  I.label += " [unfused]";
  const int N = c.N, C = c.C, OC = c.OC;
  const bool bias = c.bias, gelu_out = c.gelu_out, gelu_in = c.gelu_in;
  on_device(I.stages[0], [=](Side& s) {
    with_store(s, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      cuda::matmul_forward(k->unfused, P<T>(s, "out"), gelu_out ? P<T>(s, "pre") : nullptr, P<T>(s, "inp"),
                           P<T>(s, "weight"), bias ? P<T>(s, "bias") : nullptr, N, C, OC, k->stream);
    });
  });
  on_device(I.stages[1], [=](Side& s) {
    with_store(s, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      cuda::matmul_backward(k->unfused, P<T>(s, "dinp"), P<T>(s, "dweight"), bias ? P<T>(s, "dbias") : nullptr,
                            P<T>(s, "dout"), P<T>(s, "inp"), P<T>(s, "weight"), gelu_in ? P<T>(s, "pre_in") : nullptr,
                            N, C, OC, k->stream);
    });
  });
  on_device(I.stages[2], [=](Side& s) {
    with_store(s, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      cuda::matmul_backward(k->unfused, static_cast<T*>(nullptr), P<T>(s, "dweight"), static_cast<T*>(nullptr),
                            P<T>(s, "dout"), P<T>(s, "inp"), P<T>(s, "weight"), static_cast<const T*>(nullptr), N, C,
                            OC, k->stream);
    });
  });
  I.c.rerun = false;
  return I;
}

OpInstance matmul_gelu_epilogue(const OpCase& c, DType dt, Kernels* k) {
  OpInstance I = make_instance(c, dt);
  I.label += " [gelu epilogue]";
  const int N = c.N, C = c.C, OC = c.OC;
  const bool bias = c.bias;
  I.stages.resize(1);  // the forward only; the backward is test_backend_ops'
  on_device(I.stages[0], [=](Side& s) {
    with_store(s, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      cuda::matmul_forward(k->fused, P<T>(s, "out"), P<T>(s, "pre"), P<T>(s, "inp"), P<T>(s, "weight"),
                           bias ? P<T>(s, "bias") : nullptr, N, C, OC, k->stream);
    });
  });
  Check out;
  out.tensor = "out";
  out.output = "out_gelu_epilogue";
  I.stages[0].checks = {I.stages[0].checks[0], out};  // pre, then out with the epilogue's tolerance
  I.c.rerun = false;
  return I;
}

OpInstance attention_simple(const OpCase& c, DType dt, Kernels* k) {
  OpInstance I = make_instance(c, dt);
  I.label += " [simple kernels]";
  const int B = c.B, T = c.T, NH = c.NH, HS = c.C / c.NH;
  on_device(I.stages[0], [=](Side& s) {
    cuda::attention_forward_simple(P<bf16>(s, "y"), s.f("lse"), P<bf16>(s, "qkv"), B, T, NH, HS, k->stream);
  });
  on_device(I.stages[1], [=](Side& s) {
    cuda::attention_backward_simple(P<bf16>(s, "dqkv"), s.att_scratch(), P<bf16>(s, "dy"), P<bf16>(s, "qkv"),
                                    P<bf16>(s, "y"), s.f("lse"), B, T, NH, HS, k->stream);
  });
  I.c.rerun = false;
  return I;
}

OpInstance adamw_device_clip(const OpCase& c, DType dt, Kernels* k) {
  OpInstance I = make_instance(c, dt);
  I.label += " [device clip]";
  int64_t flat = 0;
  const AdamWStep step = adamw_step(c, &flat);
  const bool master = c.master;
  I.stages[0].run = [=](Side& s) {
    // The squared norm of the stored gradients (fp64 on the host, rounded to float), and a
    // max_grad_norm half of it: the clip is active.
    const std::vector<float> g = s.initial("grads");
    double sq = 0;
    for (float x : g) sq += static_cast<double>(x) * x;
    const float norm_sq = static_cast<float>(sq), max_norm = 0.5f * std::sqrt(norm_sq);
    if (s.reference) {
      AdamWStep clipped = step;
      clipped.grad_scale = step.grad_scale * (max_norm / std::sqrt(norm_sq));  // the kernel's order
      s.be.adamw(master ? s.t("master") : s.t("params"), nullptr, s.t("grads"), s.f("m"), s.f("v"), clipped);
      return;
    }
    float* norm = reinterpret_cast<float*>(s.plan_buffer("workspace.norm_result"));
    s.be.upload(norm, &norm_sq, sizeof norm_sq);
    const std::vector<cuda::AdamWRange> ranges = adamw_kernel_ranges(step);
    with_store(s, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      cuda::adamw_update(P<T>(s, "params"), master ? s.f("master") : nullptr, P<T>(s, "grads"), s.f("m"), s.f("v"),
                         ranges.data(), static_cast<int>(ranges.size()), adamw_kernel_params(step),
                         adamw_rounding_seed(step), static_cast<size_t>(step.index_base), norm, max_norm, k->stream);
    });
  };
  I.properties.clear();  // host_adamw is test_backend_ops' (without the device clip)
  I.c.rerun = false;
  return I;
}

OpInstance encoder_two_calls(const OpCase& c, DType dt, Kernels* k) {
  OpInstance I = make_instance(c, dt);
  I.label += " [two calls]";
  const int B = c.B, T = c.T, C = c.C, V = c.V;
  // A second pair of gradients from the same starting values, for the one-call form.
  for (const char* name : {"dwte", "dwpe"}) {
    TensorSpec s = I.spec(name);
    s.gen.draws = s.name;
    s.name += "2";
    I.tensors.push_back(s);
  }
  on_device(I.stages[1], [=](Side& s) {
    int32_t* scratch = reinterpret_cast<int32_t*>(s.plan_buffer("scratch.encoder_bwd"));
    const int segments = cuda::encoder_backward_prepare(scratch, s.host_i("tokens"), B, T, V, k->stream);
    with_store(s, [&](auto* tag) {
      using T_ = std::remove_pointer_t<decltype(tag)>;
      cuda::encoder_backward(P<T_>(s, "dwte"), P<T_>(s, "dwpe"), scratch, segments, P<T_>(s, "dout"), B, T, C,
                             k->stream);
    });
  });
  Stage one;
  one.name = "encoder_bwd one call";
  one.run = [=](Side& s) {
    s.be.encoder_backward(s.t("dwte2"), s.t("dwpe2"), s.t("dout"), s.i("tokens"), s.host_i("tokens"), B, T, C, V);
  };
  for (const char* name : {"dwte", "dwpe"}) {
    Check same;
    same.tensor = std::string(name) + "2";
    same.same_as = name;
    one.checks.push_back(same);
  }
  I.stages.push_back(one);
  I.c.rerun = false;
  return I;
}

OpInstance residual_add_inplace(const OpCase& c, DType dt, Kernels* k) {
  OpInstance I = make_instance(c, dt);
  I.label += " [add_inplace]";
  const int64_t n = c.n;
  on_device(I.stages[1], [=](Side& s) {
    with_store(s, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      cuda::add_inplace(P<T>(s, "a"), P<T>(s, "b"), static_cast<size_t>(n), k->stream);
    });
  });
  I.c.rerun = false;
  return I;
}

void usage(const char* argv0, FILE* to) {
  std::fprintf(to,
               "usage: %s [--quick | --full] [--filter TEXT] [--list] [--help]\n"
               "  --quick   the op table's quick rows (the default under the SIMT layer)\n"
               "  --full    its quick and full rows (the default on a GPU)\n"
               "  --filter  only cases whose label contains TEXT\n"
               "  --list    print the cases and exit\n",
               argv0);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned scope = kEmulated ? kQuick : (kQuick | kFull);
  std::string filter;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      scope = kQuick;
    } else if (a == "--full") {
      scope = kQuick | kFull;
    } else if (a == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else if (a == "--list") {
      list = true;
    } else if (a == "--help" || a == "-h") {
      usage(argv[0], stdout);
      return 0;
    } else {
      usage(argv[0], stderr);
      return 2;
    }
  }
  active_plant();

  auto kernels = std::make_unique<Kernels>();
  Kernels* k = kernels.get();
  std::vector<OpInstance> cases;
  for (const OpCase& c : op_table()) {
    if (!(c.scope & scope)) continue;
    for (DType dt : {DType::FP32, DType::BF16}) {
      if (!(c.dtypes & (dt == DType::FP32 ? kF32 : kBF16))) continue;
      const int HS = c.NH ? c.C / c.NH : 0;
      if (c.op == Op::Matmul) {
        cases.push_back(matmul_unfused(c, dt, k));
        if (c.gelu_out) cases.push_back(matmul_gelu_epilogue(c, dt, k));
      } else if (c.op == Op::Attention && dt == DType::BF16 && (HS == 64 || HS == 128)) {
        cases.push_back(attention_simple(c, dt, k));
      } else if (c.op == Op::AdamW && c.layout.empty()) {
        cases.push_back(adamw_device_clip(c, dt, k));
      } else if (c.op == Op::Encoder && dt == DType::BF16 && c.C == 768) {
        // The same kernels as the one-call form: bf16 at the d12 width (vector paths).
        cases.push_back(encoder_two_calls(c, dt, k));
      } else if (c.op == Op::Residual && c.n < 65536) {  // the vector body, the scalar tail, one element
        cases.push_back(residual_add_inplace(c, dt, k));
      }
    }
  }
  if (!filter.empty()) {
    std::vector<OpInstance> kept;
    for (OpInstance& c : cases)
      if (c.label.find(filter) != std::string::npos) kept.push_back(std::move(c));
    cases = std::move(kept);
  }
  if (list) {
    for (const OpInstance& c : cases) std::printf("%s\n", c.label.c_str());
    return 0;
  }
  if (cases.empty()) {
    std::fprintf(stderr, "test_op_variants: no case matches\n");
    return 2;
  }

  const std::unique_ptr<Harness> harness = open_op_test_harness("test_op_variants", cases);
  if (!harness) return kOpTestSkipped;
  k->stream = static_cast<cudaStream_t>(harness->cuda().native_stream());
  // The plan's cuBLASLt workspace, which the backend's own context uses on the same stream.
  void* workspace = harness->device().plan_buffer("workspace.cublaslt");
  cuda::matmul_context_init(k->unfused, workspace, cuda::kMatmulWorkspaceBytes, nullptr, 0);
  k->unfused.allow_fused_epilogues = false;
  cuda::matmul_context_init(k->fused, workspace, cuda::kMatmulWorkspaceBytes, nullptr, 0);
  const int status = run_op_test("test_op_variants", *harness, cases, true, nullptr, false);
  cuda::matmul_context_destroy(k->unfused);
  cuda::matmul_context_destroy(k->fused);
  return status;
}
