// MpiJob with Open MPI (DOPPEL_MPI=ON).
#include "cli/mpi_job.hpp"

#include <chrono>
#include <mpi.h>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace doppel::cli {

namespace {

void check(int code, const char* call) {
  if (code != MPI_SUCCESS) throw std::runtime_error(fmt::format("{} failed ({})", call, code));
}

}  // namespace

std::unique_ptr<MpiJob> MpiJob::join() {
  check(MPI_Init(nullptr, nullptr), "MPI_Init");
  int rank = 0;
  int size = 1;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  return std::unique_ptr<MpiJob>(new MpiJob(rank, size));
}

MpiJob::~MpiJob() {
  MPI_Finalize();
}

void MpiJob::wait_for_all_ranks() {
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier");
  int done = 0;
  while (true) {
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

long MpiJob::max_over_ranks(long value) {
  long result = value;
  check(MPI_Allreduce(&value, &result, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return result;
}

}  // namespace doppel::cli
