// doppel-bench-ingest FILE [--no-structure] [--max-document-mib N]: reads a trace file
// through doppel::ingest and prints throughput and the data-quality summary. The figures in
// docs/performance.md ("Trace ingestion") come from this program.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <sys/resource.h>

#include <fmt/format.h>

#include "doppel/ingest/trace_reader.hpp"
#include "doppel/model/input_error.hpp"

namespace {

// User + system CPU seconds of this process: on a shared machine the wall clock also counts
// other people's work.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Touches what a consumer would, so the work cannot be optimised away.
class CountingSink final : public doppel::ingest::SpanSink {
 public:
  void on_span(doppel::ingest::Span&& span) override {
    ++spans;
    attribute_bytes += span.operation.size() + span.service.size() + span.attributes.size();
  }
  std::uint64_t spans = 0;
  std::uint64_t attribute_bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: doppel-bench-ingest FILE [--no-structure] [--max-document-mib N]\n";
    return 2;
  }
  doppel::ingest::ReaderOptions options;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-structure") == 0) {
      options.check_structure = false;
    } else if (std::strcmp(argv[i], "--max-document-mib") == 0 && i + 1 < argc) {
      options.max_document_bytes = std::strtoull(argv[++i], nullptr, 10) << 20;
    }
  }
  CountingSink sink;
  const double cpu_start = cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  doppel::ingest::ReadResult result;
  try {
    result = doppel::ingest::read_trace_file(argv[1], sink, options);
  } catch (const doppel::InputError& error) {
    std::cerr << error.what() << '\n';
    return 2;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_start;
  const double megabytes = static_cast<double>(result.bytes) / 1e6;
  const auto spans = static_cast<double>(sink.spans);
  std::cout << fmt::format(
      "{}{}{}: {:.1f} MB, {} spans\n"
      "  CPU  {:.2f} s = {:.0f} MB/s, {:.0f} spans/s\n"
      "  wall {:.2f} s = {:.0f} MB/s, {:.0f} spans/s\n",
      doppel::ingest::to_string(result.format), result.json_lines ? " (JSON Lines)" : "",
      result.zstd_compressed ? " (zstd)" : "", megabytes, sink.spans, cpu, megabytes / cpu,
      spans / cpu, seconds, megabytes / seconds, spans / seconds);
  doppel::ingest::print_summary(std::cout, result.quality);
  return 0;
}
