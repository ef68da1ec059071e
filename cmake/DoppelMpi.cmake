# MPI scale-out of `doppel generate` (docs/scale-out.md). Only the CLI's scale-out unit sees
# MPI: the layers stay MPI-free, and a doppel built with MPI calls MPI_Init only when mpirun
# started it, so a plain `doppel` never needs an MPI runtime.
# FindMPI looks only for the components of enabled languages: doppel is C++, but the C API
# (libmpi) is all it uses, so enable C for the search (the C++ bindings are deprecated).
enable_language(C)
find_package(MPI COMPONENTS C QUIET)
option(DOPPEL_MPI "Build doppel with MPI (mpirun -np K doppel generate ...)" ${MPI_C_FOUND})
if(DOPPEL_MPI AND NOT MPI_C_FOUND)
  message(FATAL_ERROR "DOPPEL_MPI=ON but no MPI was found: install libopenmpi-dev "
                      "(tools/setup does) or configure with -DDOPPEL_MPI=OFF")
endif()
# The launcher the MPI test runs; empty when there is none (the test then skips).
find_program(DOPPEL_MPIEXEC NAMES mpirun mpiexec HINTS ${MPIEXEC_EXECUTABLE})

# doppel_add_mpi_job(target): the MpiJob implementation for `target` (src/cli/mpi_job.hpp),
# with MPI when DOPPEL_MPI is on, the refusing stand-in otherwise.
function(doppel_add_mpi_job target)
  if(DOPPEL_MPI)
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src/cli/mpi_job.cpp)
    target_link_libraries(${target} PRIVATE MPI::MPI_C)
    # libsimgrid exports MPI_Init and the rest of MPI too (SMPI, its MPI emulation): Open MPI's
    # library must come first in the binary's DT_NEEDED list so the dynamic linker binds the
    # MPI symbols to it, hence on the link line before the objects.
    target_link_options(${target} BEFORE PRIVATE "LINKER:--push-state,--no-as-needed"
                        ${MPI_C_LIBRARIES} "LINKER:--pop-state")
    # mpi.h included from C++ pulls in the deprecated C++ bindings (libmpi_cxx) otherwise.
    target_compile_definitions(${target} PRIVATE OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)
  else()
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src/cli/mpi_job_absent.cpp)
  endif()
endfunction()
