// `infini train --nproc N`: starts N worker processes of this same binary on this machine, with the
// rendezvous environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, a free MASTER_PORT), and
// supervises them: when one fails, the others are stopped, so no worker waits forever on a dead peer.
#pragma once

#include <string>
#include <vector>

namespace infini::dist {

// `args`: the worker's command line (argv without the program, --nproc removed). Returns the exit
// status for this process: 0 when every worker succeeded, else the first failure's.
int launch_local_workers(int nproc, const std::vector<std::string>& args);

}  // namespace infini::dist
