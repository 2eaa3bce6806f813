// Data-parallel training across processes with the collectives LibTorch ships (c10d): Gloo for CPU
// tensors, NCCL for CUDA ones where LibTorch was built with it. Workers meet through the environment
// rendezvous torchrun uses (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK), so any launcher
// can start them: `infini train --nproc N`, mpirun, a job scheduler or a shell loop.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace infini::dist {

struct Topology {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads the rendezvous variables; without WORLD_SIZE (or with 1) the run is one process. Errors name
// the variable and its value.
Topology topology_from_env();

// One process's membership of the group. Every collective is a blocking call that every rank must
// make in the same order; one that does not complete within `timeout` (a peer died or hung) throws
// infini::Error on every surviving rank.
class ProcessGroup {
 public:
  ProcessGroup(const Topology& topology, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return topology_.rank; }
  int world_size() const { return topology_.world_size; }

  // In place: every rank ends with `root`'s values.
  void broadcast(const std::vector<torch::Tensor>& tensors, int root);
  // In place, summed over ranks. Tensors are packed into buckets of about `bucket_bytes`, so a model
  // of many small parameters costs a few collectives, not one per tensor.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes = int64_t{25} << 20);
  double all_reduce_sum(double value);
  void barrier();

 private:
  struct Impl;
  Topology topology_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace infini::dist
