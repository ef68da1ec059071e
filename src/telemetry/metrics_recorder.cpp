#include "doppel/telemetry/metrics_recorder.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "doppel/telemetry/latency_histogram.hpp"

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

using NameIndex = std::map<std::string, std::size_t, std::less<>>;

std::optional<std::size_t> find_index(const NameIndex& index, std::string_view name) {
  const auto found = index.find(name);
  if (found == index.end()) return std::nullopt;
  return found->second;
}

std::string pool_key(std::string_view from, std::string_view to) {
  std::string key(from);
  key += '\n';  // cannot occur in a topology name that made it through the loader
  key += to;
  return key;
}

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
};

// What the spans and entries that ended in one window add up to.
struct Window {
  std::vector<LatencySeries> services;    // server spans
  std::vector<std::uint64_t> retries;     // client attempts > 0, by caller
  std::vector<LatencySeries> datastores;  // client spans to the datastore (caller's view)
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
    for (std::size_t i = 0; i < routes.size(); ++i) routes[i].merge(std::move(other.routes[i]));
    all_routes.merge(std::move(other.all_routes));
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

// Fixed precision, no locale, then trailing zeros trimmed: "12.5", "0", "1700000001".
std::string format_fixed_trimmed(double value, int decimals) {
  if (!std::isfinite(value)) return "";
  std::string text = fmt::format("{:.{}f}", value, decimals);
  if (text.find('.') != std::string::npos) {
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
  }
  if (text == "-0") text = "0";
  return text;
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
  SnapshotDigest digest(const twin::Snapshot& snapshot) const;
  SnapshotDigest empty_digest() const;
  void end_run(double end_time_s);

  std::ostream& out;
  MetricsOptions options;
  std::vector<std::string> columns;

  NameIndex services;
  NameIndex datastores;
  NameIndex routes;
  NameIndex hosts;
  NameIndex pools;
  std::vector<double> host_reference_cores;  // cores * speed, from the topology
  std::vector<int> host_topology_cores;

  std::map<std::int64_t, Window> open_windows;  // at most two at a time: records are ordered
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
  for (const auto& service : topology.services) services.emplace(service.name, services.size());
  for (const auto& datastore : topology.datastores) {
    datastores.emplace(datastore.name, datastores.size());
  }
  for (const auto& route : topology.gateway.routes) routes.emplace(route.name, routes.size());
  for (const auto& zone : topology.zones) {
    for (const auto& host : zone.hosts) {
      if (hosts.emplace(host.name, hosts.size()).second) {
        host_reference_cores.push_back(host.cores * host.speed);
        host_topology_cores.push_back(host.cores);
      }
    }
  }
  // Pool columns for every caller -> callee pair the call plans use whose pool is bounded.
  std::vector<std::pair<std::string, std::string>> pool_edges;
  for (const auto& service : topology.services) {
    for (const auto& operation : service.operations) {
      for (const auto& step : operation.steps) {
        for (const auto& call : step.calls) {
          if (topology.policy(service.name, call.to).pool.size <= 0) continue;
          if (pools.emplace(pool_key(service.name, call.to), pools.size()).second) {
            pool_edges.emplace_back(service.name, call.to);
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
  carried.service_cpu_cores.assign(services.size(), 0.0);
  carried.service_cpu_percent.assign(services.size(), 0.0);
  carried.service_memory_mb.assign(services.size(), 0.0);
  carried.service_workers_utilisation.assign(services.size(), 0.0);
  carried.service_queued.assign(services.size(), 0.0);
  carried.service_breakers_open.assign(services.size(), 0.0);
  carried.pool_utilisation.assign(pools.size(), 0.0);
  carried.pool_waiters.assign(pools.size(), 0.0);
  carried.host_cpu.assign(hosts.size(), 0.0);
  carried.datastore_lag_ms.assign(datastores.size(), 0.0);
  carried.datastore_stale_read_share.assign(datastores.size(), 0.0);
  carried.datastore_connections.assign(datastores.size(), 0.0);

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
  digest.service_cpu_seconds_total.assign(services.size(), 0.0);
  digest.service_memory_mb.assign(services.size(), 0.0);
  digest.service_capacity_cores.assign(services.size(), 0.0);
  digest.service_workers.assign(services.size(), 0);
  digest.service_busy_workers.assign(services.size(), 0);
  digest.service_queued.assign(services.size(), 0);
  digest.service_breakers_open.assign(services.size(), 0);
  digest.pool_utilisation.assign(pools.size(), 0.0);
  digest.pool_waiters.assign(pools.size(), 0);
  digest.host_busy_core_seconds_total.assign(hosts.size(), 0.0);
  digest.host_cores = host_topology_cores;
  digest.datastore_max_replica_lag_ms.assign(datastores.size(), 0.0);
  digest.datastore_reads_total.assign(datastores.size(), 0);
  digest.datastore_stale_reads_total.assign(datastores.size(), 0);
  digest.datastore_max_connections_in_use.assign(datastores.size(), 0);
  return digest;
}

SnapshotDigest MetricsRecorder::Impl::digest(const twin::Snapshot& snapshot) const {
  SnapshotDigest digest = empty_digest();
  digest.time_s = snapshot.time_s;
  std::set<std::pair<std::size_t, std::size_t>> service_hosts;
  for (const auto& instance : snapshot.instances) {
    const auto service = find_index(services, instance.service);
    if (!service) continue;
    digest.service_cpu_seconds_total[*service] += instance.cpu_seconds_total;
    if (const auto host = find_index(hosts, instance.host)) service_hosts.emplace(*service, *host);
    if (!instance.up) continue;
    digest.service_memory_mb[*service] += instance.memory_mb;
    digest.service_workers[*service] += instance.workers;
    digest.service_busy_workers[*service] += instance.busy_workers;
    digest.service_queued[*service] += instance.queued;
  }
  for (const auto& [service, host] : service_hosts) {
    digest.service_capacity_cores[service] += host_reference_cores[host];
  }
  for (const auto& host : snapshot.hosts) {
    const auto index = find_index(hosts, host.host);
    if (!index) continue;
    digest.host_busy_core_seconds_total[*index] = host.busy_core_seconds_total;
    if (host.cores > 0) digest.host_cores[*index] = host.cores;
  }
  for (const auto& pool : snapshot.pools) {
    const auto index = find_index(pools, pool_key(pool.from, pool.to));
    if (!index) continue;
    digest.pool_utilisation[*index] = share(pool.in_use, pool.size);
    digest.pool_waiters[*index] = pool.waiters;
  }
  for (const auto& breaker : snapshot.breakers) {
    const auto service = find_index(services, breaker.from);
    if (service && breaker.state == twin::BreakerState::open) {
      ++digest.service_breakers_open[*service];
    }
  }
  for (const auto& node : snapshot.datastores) {
    const auto index = find_index(datastores, node.datastore);
    if (!index) continue;
    if (node.node > 0) {
      digest.datastore_max_replica_lag_ms[*index] =
          std::max(digest.datastore_max_replica_lag_ms[*index], node.replication_lag_ms);
    }
    digest.datastore_reads_total[*index] += node.reads_total;
    digest.datastore_stale_reads_total[*index] += node.stale_reads_total;
    digest.datastore_max_connections_in_use[*index] =
        std::max(digest.datastore_max_connections_in_use[*index], node.connections_in_use);
  }
  return digest;
}

const SnapshotCells& MetricsRecorder::Impl::snapshot_cells_for(std::int64_t index) {
  if (!pending_snapshot || pending_snapshot->first > index) return carried;
  const SnapshotDigest& now = pending_snapshot->second;
  const double elapsed = now.time_s - baseline.time_s;
  for (std::size_t s = 0; s < services.size(); ++s) {
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
  for (std::size_t p = 0; p < pools.size(); ++p) {
    carried.pool_utilisation[p] = now.pool_utilisation[p];
    carried.pool_waiters[p] = now.pool_waiters[p];
  }
  for (std::size_t h = 0; h < hosts.size(); ++h) {
    const double busy_cores = per_second(
        now.host_busy_core_seconds_total[h] - baseline.host_busy_core_seconds_total[h], elapsed);
    carried.host_cpu[h] = share(busy_cores, now.host_cores[h]);
  }
  for (std::size_t d = 0; d < datastores.size(); ++d) {
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
  Window window;
  window.services.resize(services.size());
  window.retries.assign(services.size(), 0);
  window.datastores.resize(datastores.size());
  window.refused.assign(datastores.size(), 0);
  window.routes.resize(routes.size());
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
    if (found != open_windows.end()) open_windows.erase(found);
  }
}

void MetricsRecorder::Impl::write_row(std::int64_t index, Window* window, double duration_s) {
  const int decimals = options.decimals;
  line.clear();
  auto cell = [&](double value) {
    line += ',';
    line += format_fixed_trimmed(value, decimals);
  };
  auto rate_cell = [&](double count) { cell(duration_s > 0.0 ? count / duration_s : 0.0); };
  auto error_cell = [&](const LatencySeries* series) {
    cell(series && series->count > 0
             ? static_cast<double>(series->failed) / static_cast<double>(series->count)
             : 0.0);
  };
  // Sorts the window's samples in place: the window is written once, then dropped.
  auto latency_cells = [&](LatencySeries* series, std::initializer_list<double> percentiles) {
    if (series) std::sort(series->latencies_ms.begin(), series->latencies_ms.end());
    for (const double p : percentiles) {
      if (series && !series->latencies_ms.empty()) {
        cell(percentile_of_sorted(series->latencies_ms, p));
      } else if (options.idle_latency_as_zero) {
        cell(0.0);
      } else {
        line += ',';
      }
    }
  };

  const double end = static_cast<double>(index) * options.window_s + duration_s;
  line += format_fixed_trimmed(options.epoch_unix_s + end, decimals);
  const SnapshotCells& snapshot = snapshot_cells_for(index);
  for (std::size_t s = 0; s < services.size(); ++s) {
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
  for (std::size_t d = 0; d < datastores.size(); ++d) {
    LatencySeries* series = window ? &window->datastores[d] : nullptr;
    rate_cell(series ? static_cast<double>(series->count) : 0.0);
    error_cell(series);
    latency_cells(series, {99.0});
    cell(snapshot.datastore_lag_ms[d]);
    cell(snapshot.datastore_stale_read_share[d]);
    cell(snapshot.datastore_connections[d]);
    rate_cell(window ? static_cast<double>(window->refused[d]) : 0.0);
  }
  for (std::size_t p = 0; p < pools.size(); ++p) {
    cell(snapshot.pool_utilisation[p]);
    cell(snapshot.pool_waiters[p]);
  }
  for (std::size_t h = 0; h < hosts.size(); ++h) cell(snapshot.host_cpu[h]);
  for (std::size_t r = 0; r < routes.size(); ++r) {
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
  if (span.kind == twin::SpanKind::server) {
    if (const auto service = find_index(impl_->services, span.service)) {
      impl_->window_for(index).services[*service].add(latency_ms, ok);
    } else if (span.outcome == twin::Outcome::rejected) {
      if (const auto datastore = find_index(impl_->datastores, span.service)) {
        ++impl_->window_for(index).refused[*datastore];
      }
    }
    return;
  }
  if (span.attempt > 0) {
    if (const auto service = find_index(impl_->services, span.service)) {
      ++impl_->window_for(index).retries[*service];
    }
  }
  if (const auto datastore = find_index(impl_->datastores, span.peer)) {
    impl_->window_for(index).datastores[*datastore].add(latency_ms, ok);
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
  if (const auto route = find_index(impl_->routes, entry.route)) {
    window.routes[*route].add(latency_ms, ok);
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
