#include "twin/sim_harness.hpp"

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "doppel/model/topology_loader.hpp"

namespace doppel::twin::testing {

namespace {
void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

struct Fnv {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ULL;
    }
  }
  void text(std::string_view s) {
    bytes(s.data(), s.size());
    bytes("\0", 1);
  }
  template <typename T>
  void value(T v) {
    bytes(&v, sizeof v);
  }
};
}  // namespace

Metrics run_isolated(const std::function<Metrics()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    int code = 0;
    try {
      for (const auto& [key, value] : body()) out += fmt::format("{}\t{:.17g}\n", key, value);
    } catch (const std::exception& e) {
      out = fmt::format("!error\t{}\n", e.what());
      code = 1;
    }
    write_all(fds[1], out);
    ::close(fds[1]);
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (text.starts_with("!error\t")) throw std::runtime_error("simulation threw: " + text.substr(7));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(fmt::format("simulation process failed (status {})", status));
  }
  Metrics metrics;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    metrics[line.substr(0, tab)] = std::stod(line.substr(tab + 1));
  }
  return metrics;
}

std::uint64_t fingerprint(const Recorder& r) {
  Fnv f;
  for (const auto& s : r.spans) {
    f.value(s.trace_id.high);
    f.value(s.trace_id.low);
    f.value(s.span_id);
    f.value(s.parent_span_id);
    f.value(static_cast<int>(s.kind));
    f.text(s.service);
    f.text(s.operation);
    f.text(s.peer);
    f.value(s.instance);
    f.text(s.host);
    f.value(s.start_s);
    f.value(s.end_s);
    f.value(s.queue_s);
    f.value(static_cast<int>(s.outcome));
    f.value(s.attempt);
  }
  for (const auto& e : r.entries) {
    f.value(e.trace_id.high);
    f.value(e.trace_id.low);
    f.text(e.client);
    f.text(e.route);
    f.text(e.method);
    f.text(e.path);
    f.value(e.start_s);
    f.value(e.end_s);
    f.value(e.status);
    f.value(static_cast<int>(e.outcome));
  }
  for (const auto& e : r.events) {
    f.value(e.time_s);
    f.text(e.kind);
    f.text(e.component);
    for (const auto& [k, v] : e.attributes) {
      f.text(k);
      f.text(v);
    }
  }
  for (const auto& s : r.snapshots) {
    f.value(s.time_s);
    for (const auto& i : s.instances) {
      f.text(i.service);
      f.value(i.instance);
      f.value(i.busy_workers);
      f.value(i.queued);
      f.value(i.memory_mb);
      f.value(i.cpu_seconds_total);
    }
    for (const auto& h : s.hosts) f.value(h.busy_core_seconds_total);
    for (const auto& p : s.pools) {
      f.value(p.in_use);
      f.value(p.waiters);
      f.value(p.acquire_timeouts_total);
    }
    for (const auto& b : s.breakers) f.value(static_cast<int>(b.state));
    for (const auto& d : s.datastores) {
      f.value(d.replication_lag_ms);
      f.value(d.reads_total);
      f.value(d.stale_reads_total);
      f.value(d.writes_total);
      f.value(d.connections_in_use);
    }
  }
  return f.h;
}

std::string source_path(const std::string& relative) {
  return std::string(DOPPEL_SOURCE_DIR) + "/" + relative;
}

model::Topology load_fixture(const std::string& name) {
  return model::load_topology(source_path("tests/data/twin/" + name));
}

}  // namespace doppel::twin::testing
