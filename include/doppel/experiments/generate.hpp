// `doppel generate`: labelled synthetic failure datasets (docs/datasets.md).
//
// A catalogue says which faults may be injected where, with which magnitudes and durations.
// Case i of a dataset is drawn from RandomStream::for_component(seed, i, "case"), so it is
// fully determined by (topology, catalogue, seed, i): a case regenerated alone, or by another
// shard, has the same bytes. Each case is one twin run, hence one process: run_case() is
// called once per process, and generate_dataset() starts one process per case.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doppel/model/topology.hpp"

namespace doppel::experiments {

inline constexpr const char* kCatalogFormat = "catalog/v1";

// The faults generate draws. All but the last two are faults::InjectionKind kinds of the same
// name, injected through faults::apply_scenario (docs/scenario-format.md says what each does
// to the twin); the label's "fault" is that kind's name. Targets and magnitudes:
//  - instance_crash: service; `magnitude` of its instances down (clamped to its replicas);
//  - latency: service, or a "caller->callee" edge (the caller is the root cause); ms added;
//  - packet_loss: service; loss rate of transmissions to and from its instances;
//  - partition: "zone-a|zone-b", the two zones cut from each other (topologies with zones);
//  - zone_outage: a zone, everything in it down (topologies with several zones);
//  - cpu_stress: service; share of the cores of one of its hosts taken;
//  - memory_pressure: service; its instances' CPU work `magnitude` times slower;
//  - dns_failure: service; its name stops resolving;
//  - error_rate: service; share of its operations failing;
//  - replication_lag: replicated datastore; ms of extra lag;
//  - datastore_slowdown, disk_slowness: datastore; factor on its queries' cost;
// and two the faults module has no kind for, applied through the twin's runtime hooks:
//  - pool_exhaustion: "caller->callee" edge; the caller's pool shrinks to `magnitude`
//    connections with a 50 ms acquire timeout (the root cause is the caller);
//  - datastore_crash: datastore; its primary node goes down.
enum class FaultKind {
  instance_crash,
  latency,
  packet_loss,
  partition,
  zone_outage,
  cpu_stress,
  memory_pressure,
  dns_failure,
  error_rate,
  replication_lag,
  datastore_slowdown,
  disk_slowness,
  pool_exhaustion,
  datastore_crash
};
std::string_view to_string(FaultKind kind);
const std::vector<FaultKind>& all_fault_kinds();

struct Range {
  double lo = 0.0;
  double hi = 0.0;
  bool operator==(const Range&) const = default;
};

struct CatalogEntry {
  FaultKind kind = FaultKind::latency;
  std::vector<std::string> targets;  // services, datastores, "caller->callee", zones, "a|b"
  Range magnitude;
  Range duration_s;
  bool operator==(const CatalogEntry&) const = default;
};

struct Catalog {
  double duration_s = 60.0;        // simulated seconds per case
  double rate_multiplier = 1.0;    // scales every client class's rate
  Range start_fraction{0.3, 0.6};  // the fault starts in this share of the run
  std::vector<CatalogEntry> entries;
  // Background noise, drawn per case: every rate scaled by a factor in
  // [1 - traffic_variation, 1 + traffic_variation], and with probability
  // benign_deploy_probability one other service's CPU cost changes by 5-15% at a random time.
  double traffic_variation = 0.0;
  double benign_deploy_probability = 0.0;
  bool operator==(const Catalog&) const = default;
};

// Every fault kind on every applicable component of the topology, with the ranges
// docs/datasets.md documents.
Catalog default_catalog(const model::Topology& topology);
// A catalog/v1 JSON file; entries without "targets" get every applicable component.
// Throws doppel::InputError "FILE: /pointer: message" for the first mistake.
Catalog load_catalog(const std::filesystem::path& file, const model::Topology& topology);
nlohmann::json catalog_to_json(const Catalog& catalog);

// One case, drawn.
struct CaseSpec {
  std::uint64_t index = 0;
  std::uint64_t seed = 0;
  FaultKind kind = FaultKind::latency;
  std::string root_cause;           // service, datastore, the caller of an edge, a zone or "a|b"
  std::string target;               // the catalogue's target: service, datastore, edge, zone(s)
  std::uint64_t scenario_seed = 0;  // which instances or host the injection picks
  double magnitude = 0.0;
  double start_s = 0.0;
  double end_s = 0.0;
  double traffic_factor = 1.0;
  std::optional<std::string> deploy_service;  // background noise
  double deploy_factor = 1.0;
  double deploy_at_s = 0.0;
};
CaseSpec draw_case(const model::Topology& topology, const Catalog& catalog, std::uint64_t seed,
                   std::uint64_t index);

// The scenario/v1 document injecting the case's fault, as `doppel rehearse` reads it (also in
// label.json); nullopt for pool_exhaustion and datastore_crash, generate's own hooks.
std::optional<nlohmann::json> case_scenario(const CaseSpec& spec, const Catalog& catalog);

struct CaseOptions {
  double trace_sample_ratio = 0.01;
  bool write_otlp = false;
  std::int64_t epoch_unix_s = 1700000000;
};

// Simulates case `index` into out_dir/.tmp-case-NNNNNN, then renames it to
// out_dir/case-NNNNNN (replacing a partial one). One twin run: once per process.
void run_case(const model::Topology& topology, const Catalog& catalog, std::uint64_t seed,
              std::uint64_t index, const std::filesystem::path& out_dir,
              const CaseOptions& options);

std::string case_dir_name(std::uint64_t index);

// --- Shards and the manifest -------------------------------------------------------------

struct Shard {
  std::uint64_t index = 0;
  std::uint64_t count = 1;
  bool operator==(const Shard&) const = default;
};
// "I/K" with 0 <= I < K; InputError (file "--shard") otherwise.
Shard parse_shard(const std::string& text);
// From SLURM_ARRAY_TASK_ID + SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX +
// DOPPEL_SHARD_COUNT (a Kubernetes Indexed Job); nullopt when neither is set. `lookup`
// reads a variable (std::getenv in the CLI, a map in tests).
std::optional<Shard> shard_from_environment(const std::function<const char*(const char*)>& lookup);
// The case indices of [0, cases) that belong to the shard: i % count == index.
std::vector<std::uint64_t> shard_indices(std::uint64_t cases, const Shard& shard);

// Whether out_dir/case-NNNNNN is complete (renamed into place, with its label).
bool case_complete(const std::filesystem::path& out_dir, std::uint64_t index);

// Rewrites out_dir/manifest.jsonl from the complete case directories' label.json, in index
// order (one line per case: index, dir, seed, label). Returns the number of cases listed.
std::size_t write_manifest(const std::filesystem::path& out_dir);

// Copies the complete cases of each shard directory into out_dir (a case present in two
// must be byte-identical: InputError otherwise) and writes its manifest.
std::size_t merge_datasets(const std::vector<std::filesystem::path>& shard_dirs,
                           const std::filesystem::path& out_dir);

// Fault kind -> number of cases in the manifest (the class balance).
std::map<std::string, std::size_t> class_balance(const std::filesystem::path& out_dir);

// --- Many cases, one process each ----------------------------------------------------------

struct GenerateOptions {
  std::filesystem::path topology_file;
  std::optional<std::filesystem::path> catalog_file;
  std::filesystem::path out_dir;
  std::uint64_t cases = 0;
  std::uint64_t seed = 1;
  Shard shard;
  int jobs = 1;
  bool resume = false;
  CaseOptions case_options;
  // Off when a coordinator writes the manifest once every shard is done (MPI rank 0).
  bool write_manifest = true;
  // Called after each case ends, with (cases done, cases to do).
  std::function<void(std::uint64_t, std::uint64_t)> on_progress;
};

struct GenerateResult {
  std::uint64_t generated = 0;
  std::uint64_t skipped = 0;  // complete already (--resume)
  std::vector<std::uint64_t> failed;
  std::size_t manifest_cases = 0;
};

// Runs `executable generate-case ...` once per case of the shard, `jobs` at a time, then
// writes the manifest. Without resume an out_dir holding cases is refused (InputError).
GenerateResult generate_dataset(const GenerateOptions& options,
                                const std::filesystem::path& executable);

// Where a case's process writes its messages; kept only when the case failed.
std::filesystem::path case_log_file(const std::filesystem::path& out_dir, std::uint64_t index);

// The argument list generate_dataset passes for one case (after the executable).
std::vector<std::string> case_command_arguments(const GenerateOptions& options,
                                                std::uint64_t index);

}  // namespace doppel::experiments
