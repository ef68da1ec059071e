// MpiJob in a doppel built without MPI (DOPPEL_MPI=OFF): launched by mpirun, it refuses.
#include "doppel/model/input_error.hpp"

#include "cli/mpi_job.hpp"

namespace doppel::cli {

std::unique_ptr<MpiJob> MpiJob::join() {
  throw InputError("mpirun", InputLocation{},
                   "this doppel was built without MPI (DOPPEL_MPI=OFF): every rank would make "
                   "the whole dataset; rebuild with libopenmpi-dev installed, or use --shard");
}

MpiJob::~MpiJob() = default;

void MpiJob::wait_for_all_ranks() {}

long MpiJob::max_over_ranks(long value) {
  return value;
}

}  // namespace doppel::cli
