// Every difference between the LibTorch versions infini supports (Debian's 1.13 CPU build and 2.x,
// CPU or CUDA) lives in this header, so the rest of the code is written once.
#pragma once

#include <limits>

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "kernels/attention_cpu.h"
#include "kernels/batched_matmul_cpu.h"

#define INFINI_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace infini::compat {

#if !INFINI_TORCH_AT_LEAST(2, 1)
namespace detail {
inline torch::Tensor bias_from_mask(const torch::Tensor& allowed, torch::ScalarType dtype) {
  return torch::zeros(allowed.sizes(), allowed.options().dtype(dtype))
      .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}
}  // namespace detail
#endif

// Softmax attention with a boolean mask (true = may attend), of shape (n, Lk) or (X, 1, n, Lk).
// 2.x has a fused kernel (flash / memory-efficient on CUDA, flash on CPU); 1.13 has none, so
// infini brings its own CPU kernel.
inline torch::Tensor masked_attention(const torch::Tensor& q,  // (X, H, n, dk)
                                      const torch::Tensor& k,  // (X, H, Lk, dk)
                                      const torch::Tensor& v,  // (X, H, Lk, dv)
                                      const torch::Tensor& allowed, double scale) {  // -> (X, H, n, dv)
#if INFINI_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
#else
  return kernels::attention_cpu(q, k, v, detail::bias_from_mask(allowed, q.scalar_type()), scale);
#endif
}

// Plain causal attention where query i sees keys 0..i (n == Lk): the training hot path.
inline torch::Tensor causal_attention(const torch::Tensor& q,  // (X, H, n, dk)
                                      const torch::Tensor& k,  // (X, H, n, dk)
                                      const torch::Tensor& v,  // (X, H, n, dv)
                                      double scale) {          // -> (X, H, n, dv)
#if INFINI_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, true, scale);
#else
  const auto n = q.size(2);
  const auto allowed = torch::ones({n, n}, q.options().dtype(torch::kBool)).tril();  // (n, n)
  return kernels::attention_cpu(q, k, v, detail::bias_from_mask(allowed, q.scalar_type()), scale);
#endif
}

// Products of many small matrices with matching leading dimensions (the compressive memory's).
inline torch::Tensor batched_matmul(const torch::Tensor& a,   // (..., m, k)
                                    const torch::Tensor& b) {  // (..., k, p) -> (..., m, p)
  if (a.is_cpu() && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2))
    return kernels::batched_matmul_cpu(a, b);
  return torch::matmul(a, b);
}

// bf16 autocast on the CPU for the guard's lifetime (the API was renamed in 2.4).
class CpuAutocastBf16 {
 public:
  explicit CpuAutocastBf16(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if INFINI_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
#else
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
#endif
  }
  ~CpuAutocastBf16() {
    if (!enabled_) return;
#if INFINI_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(at::kCPU, false);
#else
    at::autocast::set_cpu_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  CpuAutocastBf16(const CpuAutocastBf16&) = delete;
  CpuAutocastBf16& operator=(const CpuAutocastBf16&) = delete;

 private:
  bool enabled_;
};

// Inside this guard autocast does not apply: the compressive memory computes in its own dtype.
class NoAutocast {
 private:
  c10::impl::ExcludeDispatchKeyGuard guard_{c10::autocast_dispatch_keyset};
};

}  // namespace infini::compat

#ifdef INFINI_COMPAT_C10D
// c10d collectives, for src/dist/process_group.cpp only (it defines INFINI_COMPAT_C10D before including
// this header), so the Gloo headers stay out of every other file. 1.13's process groups derive from
// c10d::ProcessGroup, 2.x's from c10d::Backend; holding the concrete classes works with both.
#include <exception>
#include <functional>
#include <string>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace infini::compat {

struct Collectives {
  std::function<void(const torch::Tensor&, int)> broadcast;
  std::function<void(const torch::Tensor&)> all_reduce_sum;
  std::function<void()> barrier;
};

// Rank 0 serves the rendezvous store at addr:port; every rank joins a Gloo group over TCP. A
// loopback address keeps the group on loopback; otherwise Gloo binds to GLOO_SOCKET_IFNAME's
// interface when set, else to the one this machine's hostname resolves to.
inline Collectives make_gloo_collectives(const std::string& addr, int port, int rank, int world_size,
                                         std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(port);
  store_options.isServer = rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(world_size);
  store_options.waitWorkers = true;
  store_options.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(addr, store_options);
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const bool loopback = addr == "localhost" || addr.rfind("127.", 0) == 0;
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  options->devices.push_back(loopback    ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                             : interface ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                         : c10d::ProcessGroupGloo::createDefaultDevice());
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
  Collectives c;
  c.broadcast = [group, timeout](const torch::Tensor& t, int root) {
    std::vector<at::Tensor> tensors = {t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = timeout;
    group->broadcast(tensors, o)->wait();
  };
  c.all_reduce_sum = [group, timeout](const torch::Tensor& t) {
    std::vector<at::Tensor> tensors = {t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = timeout;
    group->allreduce(tensors, o)->wait();
  };
  c.barrier = [group, timeout] {
    c10d::BarrierOptions o;
    o.timeout = timeout;
    group->barrier(o)->wait();
  };
  return c;
}

// c10::Error's message without its C++ backtrace.
inline std::string error_text(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

}  // namespace infini::compat
#endif  // INFINI_COMPAT_C10D
