#include "doppel/telemetry/metrics_recorder.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "doppel/telemetry/latency_histogram.hpp"
#include "doppel/telemetry/name_ids.hpp"

namespace doppel::telemetry {
namespace {

// Times within this share of a window from a boundary count as on it, so that a snapshot
// taken at 3*0.1 s (0.30000000000000004) still ends window 2.
constexpr double kBoundaryTolerance = 1e-9;

// Names go into a CSV header unquoted: keep them, but never let one break the row.
std::string column_safe(std::string_view name) {
  std::string safe(name);
  for (char& c : safe) {
    if (c == ',' || c == '"' || c == '\n' || c == '\r' || c == ' ' || c == '\t') c = '_';
  }
  return safe;
}

constexpr std::size_t kNoColumn = static_cast<std::size_t>(-1);

// Which column group a name has in each kind of component (kNoColumn: none). Records name
// components by string; this is what their name's id leads to.
struct ColumnsOfName {
  std::size_t service = kNoColumn;
  std::size_t datastore = kNoColumn;
  std::size_t route = kNoColumn;
  std::size_t host = kNoColumn;
};

struct LatencySeries {
  std::uint64_t count = 0;
  std::uint64_t failed = 0;
  std::vector<double> latencies_ms;

  void add(double latency_ms, bool ok) {
    ++count;
    if (!ok) ++failed;
    latencies_ms.push_back(latency_ms);
  }
  void merge(LatencySeries&& other) {
    count += other.count;
    failed += other.failed;
    latencies_ms.insert(latencies_ms.end(), other.latencies_ms.begin(), other.latencies_ms.end());
  }
  // Empty, but keeps its storage for the next window.
  void clear() {
    count = 0;
    failed = 0;
    latencies_ms.clear();
  }
};

// What the spans and entries that ended in one window add up to.
struct Window {
  std::vector<LatencySeries> services;    // server spans
  std::vector<std::uint64_t> retries;     // client attempts > 0, by caller
  std::vector<LatencySeries> datastores;  // client spans to the datastore (caller's view)
  std::vector<LatencySeries> edges;       // client spans of a service calling a service
  std::vector<std::uint64_t> refused;     // server spans a datastore rejected (connections full)
  std::vector<LatencySeries> routes;      // entries
  LatencySeries all_routes;

  void merge(Window&& other) {
    for (std::size_t i = 0; i < services.size(); ++i)
      services[i].merge(std::move(other.services[i]));
    for (std::size_t i = 0; i < retries.size(); ++i) retries[i] += other.retries[i];
    for (std::size_t i = 0; i < datastores.size(); ++i) {
      datastores[i].merge(std::move(other.datastores[i]));
      refused[i] += other.refused[i];
    }
    for (std::size_t i = 0; i < edges.size(); ++i) edges[i].merge(std::move(other.edges[i]));
    for (std::size_t i = 0; i < routes.size(); ++i) routes[i].merge(std::move(other.routes[i]));
    all_routes.merge(std::move(other.all_routes));
  }
  void clear() {
    for (auto& series : services) series.clear();
    std::fill(retries.begin(), retries.end(), 0);
    for (auto& series : datastores) series.clear();
    std::fill(refused.begin(), refused.end(), 0);
    for (auto& series : edges) series.clear();
    for (auto& series : routes) series.clear();
    all_routes.clear();
  }
};

// A snapshot reduced to the columns' granularity (per service, pool, host, datastore).
struct SnapshotDigest {
  double time_s = 0.0;
  std::vector<double> service_cpu_seconds_total;
  std::vector<double> service_memory_mb;
  std::vector<double> service_capacity_cores;  // reference cores of the hosts it runs on
  std::vector<int> service_workers;
  std::vector<int> service_busy_workers;
  std::vector<int> service_queued;
  std::vector<int> service_breakers_open;
  std::vector<double> pool_utilisation;
  std::vector<int> pool_waiters;
  std::vector<double> host_busy_core_seconds_total;
  std::vector<int> host_cores;
  std::vector<double> datastore_max_replica_lag_ms;
  std::vector<std::uint64_t> datastore_reads_total;
  std::vector<std::uint64_t> datastore_stale_reads_total;
  std::vector<int> datastore_max_connections_in_use;  // busiest node
};

// The snapshot-derived cells of one row; repeated when a window got no snapshot.
struct SnapshotCells {
  std::vector<double> service_cpu_cores;
  std::vector<double> service_cpu_percent;
  std::vector<double> service_memory_mb;
  std::vector<double> service_workers_utilisation;
  std::vector<double> service_queued;
  std::vector<double> service_breakers_open;
  std::vector<double> pool_utilisation;
  std::vector<double> pool_waiters;
  std::vector<double> host_cpu;
  std::vector<double> datastore_lag_ms;
  std::vector<double> datastore_stale_read_share;
  std::vector<double> datastore_connections;
};

// Fixed precision, no locale, then trailing zeros trimmed: "12.5", "0", "1700000001";
// nothing for NaN or infinity. Appended in place: a row is a few hundred of these.
void append_fixed_trimmed(std::string& out, double value, int decimals) {
  if (!std::isfinite(value)) return;
  // Most cells are whole numbers (counts, idle zeros): the same text without fixed-point
  // formatting. -0 too prints "0", as the trimming below makes it.
  if (value == std::trunc(value) && std::abs(value) < 1e15) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<std::int64_t>(value));
    return;
  }
  const std::size_t start = out.size();
  fmt::format_to(std::back_inserter(out), "{:.{}f}", value, decimals);
  if (out.find('.', start) != std::string::npos) {
    out.erase(out.find_last_not_of('0') + 1);
    if (out.back() == '.') out.pop_back();
  }
  if (std::string_view(out).substr(start) == "-0") out.erase(start, 1);
}

double per_second(double delta, double seconds) {
  return seconds > 0.0 ? std::max(0.0, delta) / seconds : 0.0;
}

double share(double part, double whole) {
  return whole > 0.0 ? part / whole : 0.0;
}

}  // namespace

struct MetricsRecorder::Impl {
  Impl(const model::Topology& topology, std::ostream& out_stream, MetricsOptions opts);

  void advance_to(double time_s);
  Window& window_for(std::int64_t index);
  void write_rows_through(std::int64_t last_index, double run_end_s);
  void write_row(std::int64_t index, Window* window, double duration_s);
  const SnapshotCells& snapshot_cells_for(std::int64_t index);
  SnapshotDigest digest(const twin::Snapshot& snapshot);
  SnapshotDigest empty_digest() const;
  void end_run(double end_time_s);
  ColumnsOfName& columns_of(std::string_view name);
  std::size_t pool_of(std::string_view from, std::string_view to);
  std::size_t edge_of(std::string_view from, std::string_view to);

  std::ostream& out;
  MetricsOptions options;
  std::vector<std::string> columns;

  std::size_t service_count = 0;
  std::size_t datastore_count = 0;
  std::size_t route_count = 0;
  std::size_t host_count = 0;
  std::size_t pool_count = 0;
  std::size_t edge_count = 0;
  NameIds names;
  std::vector<ColumnsOfName> columns_by_name_id;
  // caller name id -> (callee name id, pool column), for the few bounded pools it has
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> pools_by_caller_id;
  // caller name id -> (callee name id, edge column), for the services it calls
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> edges_by_caller_id;
  std::vector<double> host_reference_cores;  // cores * speed, from the topology
  std::vector<int> host_topology_cores;

  std::map<std::int64_t, Window> open_windows;  // at most two at a time: records are ordered
  std::optional<Window> spare_window;           // a written one, its storage kept for reuse
  std::int64_t next_row = 0;
  double last_time_seen = 0.0;
  SnapshotDigest baseline;  // where the previous rates ended
  std::optional<std::pair<std::int64_t, SnapshotDigest>> pending_snapshot;
  SnapshotCells carried;
  bool ended = false;
  std::int64_t rows = 0;
  std::string line;
};

MetricsRecorder::Impl::Impl(const model::Topology& topology, std::ostream& out_stream,
                            MetricsOptions opts)
    : out(out_stream), options(opts) {
  if (!(options.window_s > 0.0) || !std::isfinite(options.window_s)) {
    throw std::invalid_argument("metrics window must be a positive number of seconds");
  }
  // The first of two components of a kind with one name gets the name's columns.
  auto claim = [](std::size_t& column, std::size_t& count) {
    if (column == kNoColumn) column = count++;
  };
  for (const auto& service : topology.services) {
    claim(columns_of(service.name).service, service_count);
  }
  for (const auto& datastore : topology.datastores) {
    claim(columns_of(datastore.name).datastore, datastore_count);
  }
  for (const auto& route : topology.gateway.routes) {
    claim(columns_of(route.name).route, route_count);
  }
  for (const auto& zone : topology.zones) {
    for (const auto& host : zone.hosts) {
      std::size_t& column = columns_of(host.name).host;
      if (column != kNoColumn) continue;
      column = host_count++;
      host_reference_cores.push_back(host.cores * host.speed);
      host_topology_cores.push_back(host.cores);
    }
  }
  // Pool columns for every caller -> callee pair the call plans use whose pool is bounded.
  std::vector<std::pair<std::string, std::string>> pool_edges;
  for (const auto& service : topology.services) {
    for (const auto& operation : service.operations) {
      for (const auto& step : operation.steps) {
        for (const auto& call : step.calls) {
          if (topology.policy(service.name, call.to).pool.size <= 0) continue;
          if (pool_of(service.name, call.to) != kNoColumn) continue;
          const std::size_t caller = names.id(service.name);
          if (caller >= pools_by_caller_id.size()) pools_by_caller_id.resize(caller + 1);
          pools_by_caller_id[caller].emplace_back(names.id(call.to), pool_count++);
          pool_edges.emplace_back(service.name, call.to);
        }
      }
    }
  }

  // Call columns for every caller -> callee service pair the call plans use, as a service
  // mesh's client-side metrics show them: a fault on the link or at the callee shows where it
  // happens even when the caller's retries hide it from the caller's own columns.
  std::vector<std::pair<std::string, std::string>> call_edges;
  if (options.call_edges) {
    for (const auto& service : topology.services) {
      for (const auto& operation : service.operations) {
        for (const auto& step : operation.steps) {
          for (const auto& call : step.calls) {
            if (columns_of(call.to).service == kNoColumn) continue;
            if (edge_of(service.name, call.to) != kNoColumn) continue;
            const std::size_t caller = names.id(service.name);
            if (caller >= edges_by_caller_id.size()) edges_by_caller_id.resize(caller + 1);
            edges_by_caller_id[caller].emplace_back(names.id(call.to), edge_count++);
            call_edges.emplace_back(service.name, call.to);
          }
        }
      }
    }
  }

  columns.emplace_back("time");
  for (const auto& service : topology.services) {
    const std::string name = column_safe(service.name);
    for (const char* metric : {"rps", "err", "lat_50", "lat_90", "lat_99", "lod", "cpu", "cpu_pct",
                               "mem", "workers_util", "queue", "retries", "breaker_open"}) {
      columns.push_back(fmt::format("{}_{}", name, metric));
    }
  }
  for (const auto& datastore : topology.datastores) {
    const std::string name = column_safe(datastore.name);
    for (const char* metric : {"rps", "err", "lat_99", "replication_lag_ms", "stale_read_rate",
                               "connections", "refused"}) {
      columns.push_back(fmt::format("{}_{}", name, metric));
    }
  }
  for (const auto& [from, to] : pool_edges) {
    const std::string edge = fmt::format("{}_to_{}", column_safe(from), column_safe(to));
    columns.push_back(edge + "_pool_util");
    columns.push_back(edge + "_pool_waiters");
  }
  for (const auto& [from, to] : call_edges) {
    const std::string edge = fmt::format("{}_to_{}", column_safe(from), column_safe(to));
    for (const char* metric : {"rps", "err", "lat_50", "lat_99"}) {
      columns.push_back(fmt::format("{}_{}", edge, metric));
    }
  }
  for (const auto& zone : topology.zones) {
    for (const auto& host : zone.hosts) columns.push_back(column_safe(host.name) + "_host_cpu");
  }
  for (const auto& route : topology.gateway.routes) {
    const std::string name = "route_" + column_safe(route.name);
    for (const char* metric : {"rps", "err", "lat_99"}) {
      columns.push_back(fmt::format("{}_{}", name, metric));
    }
  }
  for (const char* metric : {"rps", "err", "lat_50", "lat_99"}) {
    columns.push_back(fmt::format("all_routes_{}", metric));
  }
  std::set<std::string_view> unique;
  for (const auto& column : columns) {
    if (!unique.insert(column).second) {
      throw std::invalid_argument(fmt::format(
          "metrics column '{}' would appear twice: rename a service, datastore, host or route",
          column));
    }
  }

  baseline = empty_digest();
  carried.service_cpu_cores.assign(service_count, 0.0);
  carried.service_cpu_percent.assign(service_count, 0.0);
  carried.service_memory_mb.assign(service_count, 0.0);
  carried.service_workers_utilisation.assign(service_count, 0.0);
  carried.service_queued.assign(service_count, 0.0);
  carried.service_breakers_open.assign(service_count, 0.0);
  carried.pool_utilisation.assign(pool_count, 0.0);
  carried.pool_waiters.assign(pool_count, 0.0);
  carried.host_cpu.assign(host_count, 0.0);
  carried.datastore_lag_ms.assign(datastore_count, 0.0);
  carried.datastore_stale_read_share.assign(datastore_count, 0.0);
  carried.datastore_connections.assign(datastore_count, 0.0);

  line.clear();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) line += ',';
    line += columns[i];
  }
  line += '\n';
  out << line;
}

SnapshotDigest MetricsRecorder::Impl::empty_digest() const {
  SnapshotDigest digest;
  digest.service_cpu_seconds_total.assign(service_count, 0.0);
  digest.service_memory_mb.assign(service_count, 0.0);
  digest.service_capacity_cores.assign(service_count, 0.0);
  digest.service_workers.assign(service_count, 0);
  digest.service_busy_workers.assign(service_count, 0);
  digest.service_queued.assign(service_count, 0);
  digest.service_breakers_open.assign(service_count, 0);
  digest.pool_utilisation.assign(pool_count, 0.0);
  digest.pool_waiters.assign(pool_count, 0);
  digest.host_busy_core_seconds_total.assign(host_count, 0.0);
  digest.host_cores = host_topology_cores;
  digest.datastore_max_replica_lag_ms.assign(datastore_count, 0.0);
  digest.datastore_reads_total.assign(datastore_count, 0);
  digest.datastore_stale_reads_total.assign(datastore_count, 0);
  digest.datastore_max_connections_in_use.assign(datastore_count, 0);
  return digest;
}

ColumnsOfName& MetricsRecorder::Impl::columns_of(std::string_view name) {
  const std::size_t id = names.id(name);
  if (id >= columns_by_name_id.size()) columns_by_name_id.resize(id + 1);
  return columns_by_name_id[id];
}

namespace {

std::size_t column_of_pair(
    const std::vector<std::vector<std::pair<std::size_t, std::size_t>>>& by_caller, NameIds& names,
    std::string_view from, std::string_view to) {
  const std::size_t caller = names.id(from);
  if (caller >= by_caller.size()) return kNoColumn;
  const std::size_t callee = names.id(to);
  for (const auto& [to_id, column] : by_caller[caller]) {
    if (to_id == callee) return column;
  }
  return kNoColumn;
}

}  // namespace

std::size_t MetricsRecorder::Impl::pool_of(std::string_view from, std::string_view to) {
  return column_of_pair(pools_by_caller_id, names, from, to);
}

std::size_t MetricsRecorder::Impl::edge_of(std::string_view from, std::string_view to) {
  return column_of_pair(edges_by_caller_id, names, from, to);
}

SnapshotDigest MetricsRecorder::Impl::digest(const twin::Snapshot& snapshot) {
  SnapshotDigest digest = empty_digest();
  digest.time_s = snapshot.time_s;
  std::set<std::pair<std::size_t, std::size_t>> service_hosts;
  for (const auto& instance : snapshot.instances) {
    const std::size_t service = columns_of(instance.service).service;
    if (service == kNoColumn) continue;
    digest.service_cpu_seconds_total[service] += instance.cpu_seconds_total;
    if (const std::size_t host = columns_of(instance.host).host; host != kNoColumn) {
      service_hosts.emplace(service, host);
    }
    if (!instance.up) continue;
    digest.service_memory_mb[service] += instance.memory_mb;
    digest.service_workers[service] += instance.workers;
    digest.service_busy_workers[service] += instance.busy_workers;
    digest.service_queued[service] += instance.queued;
  }
  for (const auto& [service, host] : service_hosts) {
    digest.service_capacity_cores[service] += host_reference_cores[host];
  }
  for (const auto& host : snapshot.hosts) {
    const std::size_t index = columns_of(host.host).host;
    if (index == kNoColumn) continue;
    digest.host_busy_core_seconds_total[index] = host.busy_core_seconds_total;
    if (host.cores > 0) digest.host_cores[index] = host.cores;
  }
  for (const auto& pool : snapshot.pools) {
    const std::size_t index = pool_of(pool.from, pool.to);
    if (index == kNoColumn) continue;
    digest.pool_utilisation[index] = share(pool.in_use, pool.size);
    digest.pool_waiters[index] = pool.waiters;
  }
  for (const auto& breaker : snapshot.breakers) {
    const std::size_t service = columns_of(breaker.from).service;
    if (service != kNoColumn && breaker.state == twin::BreakerState::open) {
      ++digest.service_breakers_open[service];
    }
  }
  for (const auto& node : snapshot.datastores) {
    const std::size_t index = columns_of(node.datastore).datastore;
    if (index == kNoColumn) continue;
    if (node.node > 0) {
      digest.datastore_max_replica_lag_ms[index] =
          std::max(digest.datastore_max_replica_lag_ms[index], node.replication_lag_ms);
    }
    digest.datastore_reads_total[index] += node.reads_total;
    digest.datastore_stale_reads_total[index] += node.stale_reads_total;
    digest.datastore_max_connections_in_use[index] =
        std::max(digest.datastore_max_connections_in_use[index], node.connections_in_use);
  }
  return digest;
}

const SnapshotCells& MetricsRecorder::Impl::snapshot_cells_for(std::int64_t index) {
  if (!pending_snapshot || pending_snapshot->first > index) return carried;
  const SnapshotDigest& now = pending_snapshot->second;
  const double elapsed = now.time_s - baseline.time_s;
  for (std::size_t s = 0; s < service_count; ++s) {
    const double cores = per_second(
        now.service_cpu_seconds_total[s] - baseline.service_cpu_seconds_total[s], elapsed);
    carried.service_cpu_cores[s] = cores;
    carried.service_cpu_percent[s] = 100.0 * share(cores, now.service_capacity_cores[s]);
    carried.service_memory_mb[s] = now.service_memory_mb[s];
    carried.service_workers_utilisation[s] =
        share(now.service_busy_workers[s], now.service_workers[s]);
    carried.service_queued[s] = now.service_queued[s];
    carried.service_breakers_open[s] = now.service_breakers_open[s];
  }
  for (std::size_t p = 0; p < pool_count; ++p) {
    carried.pool_utilisation[p] = now.pool_utilisation[p];
    carried.pool_waiters[p] = now.pool_waiters[p];
  }
  for (std::size_t h = 0; h < host_count; ++h) {
    const double busy_cores = per_second(
        now.host_busy_core_seconds_total[h] - baseline.host_busy_core_seconds_total[h], elapsed);
    carried.host_cpu[h] = share(busy_cores, now.host_cores[h]);
  }
  for (std::size_t d = 0; d < datastore_count; ++d) {
    carried.datastore_lag_ms[d] = now.datastore_max_replica_lag_ms[d];
    carried.datastore_connections[d] = now.datastore_max_connections_in_use[d];
    const double reads = static_cast<double>(now.datastore_reads_total[d]) -
                         static_cast<double>(baseline.datastore_reads_total[d]);
    const double stale = static_cast<double>(now.datastore_stale_reads_total[d]) -
                         static_cast<double>(baseline.datastore_stale_reads_total[d]);
    carried.datastore_stale_read_share[d] = reads > 0.0 ? std::max(0.0, stale) / reads : 0.0;
  }
  baseline = std::move(pending_snapshot->second);
  pending_snapshot.reset();
  return carried;
}

Window& MetricsRecorder::Impl::window_for(std::int64_t index) {
  index = std::max(index, next_row);  // a record for a written window joins the oldest open one
  auto found = open_windows.find(index);
  if (found != open_windows.end()) return found->second;
  if (spare_window) {
    auto& window = open_windows.emplace(index, std::move(*spare_window)).first->second;
    spare_window.reset();
    return window;
  }
  Window window;
  window.services.resize(service_count);
  window.retries.assign(service_count, 0);
  window.datastores.resize(datastore_count);
  window.refused.assign(datastore_count, 0);
  window.edges.resize(edge_count);
  window.routes.resize(route_count);
  return open_windows.emplace(index, std::move(window)).first->second;
}

void MetricsRecorder::Impl::advance_to(double time_s) {
  last_time_seen = std::max(last_time_seen, time_s);
  const double w = options.window_s;
  std::int64_t last_closed = next_row - 1;
  while (static_cast<double>(last_closed + 2) * w < time_s - kBoundaryTolerance * w) {
    ++last_closed;
  }
  if (last_closed >= next_row) write_rows_through(last_closed, -1.0);
}

void MetricsRecorder::Impl::write_rows_through(std::int64_t last_index, double run_end_s) {
  for (; next_row <= last_index; ++next_row) {
    const double start = static_cast<double>(next_row) * options.window_s;
    double duration = options.window_s;
    if (run_end_s >= 0.0 && next_row == last_index) {
      duration = std::clamp(run_end_s - start, 0.0, options.window_s);
    }
    auto found = open_windows.find(next_row);
    write_row(next_row, found == open_windows.end() ? nullptr : &found->second, duration);
    if (found != open_windows.end()) {
      // Its samples' vectors have grown to a window's worth: keep them for the next one.
      found->second.clear();
      spare_window = std::move(found->second);
      open_windows.erase(found);
    }
  }
}

void MetricsRecorder::Impl::write_row(std::int64_t index, Window* window, double duration_s) {
  const int decimals = options.decimals;
  line.clear();
  auto cell = [&](double value) {
    line += ',';
    append_fixed_trimmed(line, value, decimals);
  };
  auto rate_cell = [&](double count) { cell(duration_s > 0.0 ? count / duration_s : 0.0); };
  auto error_cell = [&](const LatencySeries* series) {
    cell(series && series->count > 0
             ? static_cast<double>(series->failed) / static_cast<double>(series->count)
             : 0.0);
  };
  // Reorders the window's samples in place: the window is written once, then dropped.
  auto latency_cells = [&](LatencySeries* series, std::initializer_list<double> percentiles) {
    std::array<double, 3> values{};
    const std::span<const double> wanted(percentiles.begin(), percentiles.size());
    if (wanted.size() > values.size()) throw std::logic_error("metrics: too many percentiles");
    const bool has_samples = series && !series->latencies_ms.empty();
    if (has_samples) {
      select_percentiles(series->latencies_ms, wanted,
                         std::span<double>(values.data(), wanted.size()));
    }
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (has_samples) {
        cell(values[i]);
      } else if (options.idle_latency_as_zero) {
        cell(0.0);
      } else {
        line += ',';
      }
    }
  };

  const double end = static_cast<double>(index) * options.window_s + duration_s;
  append_fixed_trimmed(line, options.epoch_unix_s + end, decimals);
  const SnapshotCells& snapshot = snapshot_cells_for(index);
  for (std::size_t s = 0; s < service_count; ++s) {
    LatencySeries* series = window ? &window->services[s] : nullptr;
    const double requests = series ? static_cast<double>(series->count) : 0.0;
    rate_cell(requests);
    error_cell(series);
    latency_cells(series, {50.0, 90.0, 99.0});
    rate_cell(requests);  // _lod: the RCA layout's name for the same load
    cell(snapshot.service_cpu_cores[s]);
    cell(snapshot.service_cpu_percent[s]);
    cell(snapshot.service_memory_mb[s]);
    cell(snapshot.service_workers_utilisation[s]);
    cell(snapshot.service_queued[s]);
    rate_cell(window ? static_cast<double>(window->retries[s]) : 0.0);
    cell(snapshot.service_breakers_open[s]);
  }
  for (std::size_t d = 0; d < datastore_count; ++d) {
    LatencySeries* series = window ? &window->datastores[d] : nullptr;
    rate_cell(series ? static_cast<double>(series->count) : 0.0);
    error_cell(series);
    latency_cells(series, {99.0});
    cell(snapshot.datastore_lag_ms[d]);
    cell(snapshot.datastore_stale_read_share[d]);
    cell(snapshot.datastore_connections[d]);
    rate_cell(window ? static_cast<double>(window->refused[d]) : 0.0);
  }
  for (std::size_t p = 0; p < pool_count; ++p) {
    cell(snapshot.pool_utilisation[p]);
    cell(snapshot.pool_waiters[p]);
  }
  for (std::size_t e = 0; e < edge_count; ++e) {
    LatencySeries* series = window ? &window->edges[e] : nullptr;
    rate_cell(series ? static_cast<double>(series->count) : 0.0);
    error_cell(series);
    latency_cells(series, {50.0, 99.0});
  }
  for (std::size_t h = 0; h < host_count; ++h) cell(snapshot.host_cpu[h]);
  for (std::size_t r = 0; r < route_count; ++r) {
    LatencySeries* series = window ? &window->routes[r] : nullptr;
    rate_cell(series ? static_cast<double>(series->count) : 0.0);
    error_cell(series);
    latency_cells(series, {99.0});
  }
  LatencySeries* all = window ? &window->all_routes : nullptr;
  rate_cell(all ? static_cast<double>(all->count) : 0.0);
  error_cell(all);
  latency_cells(all, {50.0, 99.0});
  line += '\n';
  out << line;
  ++rows;
}

void MetricsRecorder::Impl::end_run(double end_time_s) {
  if (ended) return;
  ended = true;
  const double w = options.window_s;
  const std::int64_t last =
      static_cast<std::int64_t>(std::ceil(end_time_s / w - kBoundaryTolerance)) - 1;
  if (last < next_row) {
    open_windows.clear();
    return;
  }
  // Records stamped at the very end belong to the last window, not to one after the run.
  while (!open_windows.empty() && open_windows.rbegin()->first > last) {
    auto node = open_windows.extract(std::prev(open_windows.end()));
    window_for(last).merge(std::move(node.mapped()));
  }
  if (pending_snapshot && pending_snapshot->first > last) pending_snapshot->first = last;
  write_rows_through(last, end_time_s);
  out.flush();
}

MetricsRecorder::MetricsRecorder(const model::Topology& topology, std::ostream& out,
                                 MetricsOptions options)
    : impl_(std::make_unique<Impl>(topology, out, options)) {}

MetricsRecorder::~MetricsRecorder() = default;

void MetricsRecorder::on_span(const twin::SpanRecord& span) {
  if (impl_->ended) return;
  impl_->advance_to(span.end_s);
  const auto index = static_cast<std::int64_t>(
      std::floor(span.end_s / impl_->options.window_s + kBoundaryTolerance));
  const double latency_ms = (span.end_s - span.start_s) * 1000.0;
  const bool ok = span.outcome == twin::Outcome::ok;
  const ColumnsOfName component = impl_->columns_of(span.service);
  if (span.kind == twin::SpanKind::server) {
    if (component.service != kNoColumn) {
      impl_->window_for(index).services[component.service].add(latency_ms, ok);
    } else if (span.outcome == twin::Outcome::rejected && component.datastore != kNoColumn) {
      ++impl_->window_for(index).refused[component.datastore];
    }
    return;
  }
  if (span.attempt > 0 && component.service != kNoColumn) {
    ++impl_->window_for(index).retries[component.service];
  }
  if (const std::size_t datastore = impl_->columns_of(span.peer).datastore;
      datastore != kNoColumn) {
    impl_->window_for(index).datastores[datastore].add(latency_ms, ok);
  } else if (const std::size_t edge = impl_->edge_of(span.service, span.peer); edge != kNoColumn) {
    impl_->window_for(index).edges[edge].add(latency_ms, ok);
  }
}

void MetricsRecorder::on_entry(const twin::EntryRecord& entry) {
  if (impl_->ended) return;
  impl_->advance_to(entry.end_s);
  const auto index = static_cast<std::int64_t>(
      std::floor(entry.end_s / impl_->options.window_s + kBoundaryTolerance));
  const double latency_ms = (entry.end_s - entry.start_s) * 1000.0;
  const bool ok = entry.outcome == twin::Outcome::ok;
  Window& window = impl_->window_for(index);
  if (const std::size_t route = impl_->columns_of(entry.route).route; route != kNoColumn) {
    window.routes[route].add(latency_ms, ok);
  }
  window.all_routes.add(latency_ms, ok);
}

void MetricsRecorder::on_snapshot(const twin::Snapshot& snapshot) {
  if (impl_->ended) return;
  impl_->advance_to(snapshot.time_s);
  const auto index = static_cast<std::int64_t>(std::ceil(snapshot.time_s / impl_->options.window_s -
                                                         kBoundaryTolerance)) -
                     1;
  SnapshotDigest digest = impl_->digest(snapshot);
  if (index < 0) {
    // Taken at the start: nothing to report yet, but totals count from here.
    impl_->baseline = std::move(digest);
    return;
  }
  impl_->pending_snapshot.emplace(std::max(index, impl_->next_row), std::move(digest));
}

void MetricsRecorder::on_run_end(double end_time_s) {
  impl_->end_run(end_time_s);
}

void MetricsRecorder::finish() {
  impl_->end_run(impl_->last_time_seen);
}

const std::vector<std::string>& MetricsRecorder::columns() const {
  return impl_->columns;
}

std::int64_t MetricsRecorder::rows_written() const {
  return impl_->rows;
}

}  // namespace doppel::telemetry
