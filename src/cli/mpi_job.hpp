// `mpirun -np K doppel generate ...`: this process as one rank of an MPI job.
//
// MPI stays in the CLI: the generate driver only sees the shard a rank takes. A doppel built
// with MPI (cmake -DDOPPEL_MPI=ON, the default when Open MPI is installed) initialises MPI
// only when a launcher started it, so a plain `doppel` never touches the MPI runtime.
#pragma once

#include <functional>
#include <memory>

namespace doppel::cli {

// Whether an MPI launcher (Open MPI's mpirun, or srun with PMIx) started this process.
// `lookup` reads an environment variable (std::getenv; a map in tests).
inline bool started_by_mpi_launcher(const std::function<const char*(const char*)>& lookup) {
  return lookup("OMPI_COMM_WORLD_SIZE") != nullptr || lookup("PMIX_RANK") != nullptr;
}

class MpiJob {
 public:
  // Joins the job (MPI_Init). Throws doppel::InputError when this doppel was built without
  // MPI: every rank would otherwise run the whole dataset into the same directory.
  static std::unique_ptr<MpiJob> join();
  ~MpiJob();  // MPI_Finalize
  MpiJob(const MpiJob&) = delete;
  MpiJob& operator=(const MpiJob&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Waits for every rank. Polls a non-blocking barrier with short sleeps: Open MPI's blocking
  // barrier spins a core, which a rank that finished early would steal from the case
  // processes of the ranks still working.
  void wait_for_all_ranks();
  // The largest of every rank's value (how many of its cases failed, say), on every rank.
  long max_over_ranks(long value);

 private:
  MpiJob(int rank, int size) : rank_(rank), size_(size) {}
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace doppel::cli
