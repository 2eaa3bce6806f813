#include "dist/process_group.h"

#include <cstdlib>
#include <functional>

#include <fmt/format.h>

#define INFINI_COMPAT_C10D  // the c10d part of the compat header
#include "compat/torch_compat.h"
#include "infini/error.h"

namespace infini::dist {

namespace {

int env_int(const char* name, int fallback, int min) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  try {
    size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == std::string(text).size() && v >= min) return v;
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("environment variable {}='{}' is not an integer >= {}", name, text, min));
}

}  // namespace

Topology topology_from_env() {
  Topology t;
  t.world_size = env_int("WORLD_SIZE", 1, 1);
  t.rank = env_int("RANK", 0, 0);
  t.local_rank = env_int("LOCAL_RANK", t.rank, 0);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) t.master_addr = addr;
  t.master_port = env_int("MASTER_PORT", t.master_port, 1);
  if (t.master_port > 65535) throw Error(fmt::format("environment variable MASTER_PORT={} is not a port", t.master_port));
  if (t.rank >= t.world_size)
    throw Error(fmt::format("environment variable RANK={} is not below WORLD_SIZE={}", t.rank, t.world_size));
  if (t.world_size > 1 && !std::getenv("RANK"))
    throw Error(fmt::format("WORLD_SIZE={} but RANK is not set: each worker needs its RANK (0..{})", t.world_size,
                            t.world_size - 1));
  return t;
}

struct ProcessGroup::Impl {
  compat::Collectives collectives;
};

ProcessGroup::ProcessGroup(const Topology& topology, std::chrono::milliseconds timeout)
    : topology_(topology), timeout_(timeout), impl_(std::make_unique<Impl>()) {
  try {
    impl_->collectives = compat::make_gloo_collectives(topology.master_addr, topology.master_port, topology.rank,
                                                       topology.world_size, timeout);
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {} of {}: cannot join the process group at {}:{} within {} s ({}); check "
                            "MASTER_ADDR and MASTER_PORT, and that every worker was started",
                            topology.rank, topology.world_size, topology.master_addr, topology.master_port,
                            timeout.count() / 1000, compat::error_text(e)));
  }
}

ProcessGroup::~ProcessGroup() = default;

namespace {

// Runs one collective and waits for it; a failure anywhere in the group becomes an Error here.
void complete(const Topology& t, const char* what, const std::function<void()>& op) {
  try {
    op();
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {} of {}: {} failed: {} (another worker stopped, or the network failed)",
                            t.rank, t.world_size, what, compat::error_text(e)));
  }
}

}  // namespace

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  for (const auto& t : tensors)
    complete(topology_, "broadcast", [&] { impl_->collectives.broadcast(t, root); });
}

void ProcessGroup::all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  // Packed per dtype into flat buckets, reduced, then unpacked: far fewer round trips than per tensor.
  size_t i = 0;
  while (i < tensors.size()) {
    std::vector<torch::Tensor> bucket;
    int64_t bytes = 0;
    const auto dtype = tensors[i].scalar_type();
    while (i < tensors.size() && tensors[i].scalar_type() == dtype && (bucket.empty() || bytes < bucket_bytes)) {
      bytes += tensors[i].numel() * static_cast<int64_t>(tensors[i].element_size());
      bucket.push_back(tensors[i++]);
    }
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : bucket) flat_parts.push_back(t.reshape({-1}));
    auto flat = torch::cat(flat_parts);  // (sum of numel)
    complete(topology_, "all-reduce", [&] { impl_->collectives.all_reduce_sum(flat); });
    int64_t offset = 0;
    for (const auto& t : bucket) {
      t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

double ProcessGroup::all_reduce_sum(double value) {
  auto t = torch::full({1}, value, torch::kFloat64);
  complete(topology_, "all-reduce", [&] { impl_->collectives.all_reduce_sum(t); });
  return t.item<double>();
}

void ProcessGroup::barrier() {
  complete(topology_, "barrier", [&] { impl_->collectives.barrier(); });
}

}  // namespace infini::dist
