// doppel-gen-traces: writes N MB of realistic trace data (OTLP JSON Lines, Jaeger UI JSON or
// Zipkin v2 JSON) for measuring ingestion. Same seed, same bytes.
//
//   doppel-gen-traces --format otlp --megabytes 1024 --output /tmp/traces.jsonl
//
// Traces look like a small shop: a frontend calling services that call each other, a
// database, a cache and a broker, with the attributes real instrumentation sets (HTTP, DB,
// messaging, RPC) and some it sets that reconstruction does not need (user agent, sizes).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace {

enum class Kind { internal = 1, server = 2, client = 3, producer = 4, consumer = 5 };

struct GeneratedSpan {
  std::uint64_t trace_high = 0;
  std::uint64_t trace_low = 0;
  std::uint64_t id = 0;
  std::uint64_t parent = 0;
  int service = 0;
  std::string name;
  Kind kind = Kind::internal;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  bool error = false;
  std::vector<std::pair<std::string, std::string>> attributes;
};

const std::vector<std::string> kServices = {"frontend",  "cart",     "catalog",  "orders",
                                            "payments",  "shipping", "users",    "recommend",
                                            "inventory", "notifier", "postgres", "redis"};
constexpr int kPostgres = 10;
constexpr int kRedis = 11;

class TraceGenerator {
 public:
  explicit TraceGenerator(std::uint64_t seed) : random_(seed) {}

  std::vector<GeneratedSpan> next_trace() {
    std::vector<GeneratedSpan> spans;
    trace_high_ = random_();
    trace_low_ = random_();
    clock_ns_ += 200'000 + static_cast<std::int64_t>(random_() % 800'000);
    GeneratedSpan root =
        make(0, 0, "GET /api/" + kServices[1 + random_() % 8], Kind::server, clock_ns_, 40'000'000);
    root.attributes = {
        {"http.request.method", "GET"},
        {"http.route", root.name.substr(4)},
        {"url.full", "https://shop.example.com" + root.name.substr(4) +
                         "?id=" + std::to_string(random_() % 100000)},
        {"http.response.status_code", "200"},
        {"user_agent.original",
         "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"},
        {"network.peer.address", fmt::format("10.1.{}.{}", random_() % 255, random_() % 255)}};
    spans.push_back(root);
    add_calls(spans, spans.size() - 1, 0, 2);
    fit_children_into_parents(spans);
    return spans;
  }

 private:
  // Synchronous calls end before their caller does: parents come before their children in
  // `spans`, so one pass in order fits every span inside its (already fitted) parent.
  static void fit_children_into_parents(std::vector<GeneratedSpan>& spans) {
    for (std::size_t i = 1; i < spans.size(); ++i) {
      for (std::size_t p = i; p-- > 0;) {
        if (spans[p].id != spans[i].parent) continue;
        spans[i].start_ns = std::clamp(spans[i].start_ns, spans[p].start_ns, spans[p].end_ns);
        spans[i].end_ns = std::clamp(spans[i].end_ns, spans[i].start_ns, spans[p].end_ns);
        break;
      }
    }
  }

  GeneratedSpan make(std::uint64_t parent, int service, std::string name, Kind kind,
                     std::int64_t start, std::int64_t max_duration) {
    GeneratedSpan span;
    span.trace_high = trace_high_;
    span.trace_low = trace_low_;
    span.id = random_() | 1;
    span.parent = parent;
    span.service = service;
    span.name = std::move(name);
    span.kind = kind;
    span.start_ns = start;
    // Between a quarter and three quarters of the room given (at least 2 us of room).
    const auto room = static_cast<std::uint64_t>(std::max<std::int64_t>(max_duration, 2'000));
    span.end_ns = start + static_cast<std::int64_t>(room / 4 + random_() % (room / 2));
    span.error = random_() % 50 == 0;
    return span;
  }

  // Client calls from the span at `caller`, each answered by a server span, recursively.
  void add_calls(std::vector<GeneratedSpan>& spans, std::size_t caller, int depth, int fanout) {
    const GeneratedSpan parent = spans[caller];
    const std::int64_t slot = (parent.end_ns - parent.start_ns) / (fanout + 2);
    for (int call = 0; call < fanout; ++call) {
      const std::int64_t start = parent.start_ns + slot * (call + 1) / 2 + 1000;
      const int choice = static_cast<int>(random_() % 10);
      if (choice < 3 || depth >= 3) {
        GeneratedSpan query =
            make(parent.id, parent.service, "SELECT orders", Kind::client, start, slot);
        const bool cache = choice == 1;
        query.name = cache ? "GET" : "SELECT " + kServices[parent.service];
        query.attributes = {
            {"db.system", cache ? "redis" : "postgresql"},
            {"db.name", kServices[parent.service]},
            {"db.statement", cache ? "GET session:" + std::to_string(random_() % 9999)
                                   : "SELECT * FROM items WHERE owner_id = $1 LIMIT 50"},
            {"peer.service", kServices[cache ? kRedis : kPostgres]},
            {"server.address", cache ? "redis.internal" : "postgres.internal"},
            {"server.port", cache ? "6379" : "5432"}};
        spans.push_back(query);
        continue;
      }
      if (choice == 3) {
        GeneratedSpan publish =
            make(parent.id, parent.service, "orders publish", Kind::producer, start, slot / 4);
        publish.attributes = {{"messaging.system", "kafka"},
                              {"messaging.destination.name", "orders"},
                              {"messaging.operation", "publish"}};
        spans.push_back(publish);
        continue;
      }
      const int callee = 1 + static_cast<int>(random_() % 9);
      const std::string route = "/" + kServices[callee] + "/v1/" + std::to_string(choice);
      GeneratedSpan client =
          make(parent.id, parent.service, "POST " + route, Kind::client, start, slot);
      client.attributes = {{"http.request.method", "POST"},
                           {"url.full", "http://" + kServices[callee] + ":8080" + route},
                           {"server.address", kServices[callee]},
                           {"server.port", "8080"},
                           {"http.response.status_code", client.error ? "503" : "200"},
                           {"http.request.body.size", std::to_string(random_() % 4096)}};
      spans.push_back(client);
      GeneratedSpan server =
          make(client.id, callee, "POST " + route, Kind::server, client.start_ns + 50'000,
               client.end_ns - client.start_ns - 100'000);
      server.end_ns =
          std::max(server.start_ns + 1000, std::min(server.end_ns, client.end_ns - 20'000));
      server.error = client.error;
      server.attributes = {{"http.request.method", "POST"},
                           {"http.route", route},
                           {"http.response.status_code", client.error ? "503" : "200"},
                           {"network.protocol.version", "1.1"}};
      spans.push_back(server);
      add_calls(spans, spans.size() - 1, depth + 1, 1 + static_cast<int>(random_() % 3));
    }
  }

  std::mt19937_64 random_;
  std::uint64_t trace_high_ = 0;
  std::uint64_t trace_low_ = 0;
  std::int64_t clock_ns_ = 1'700'000'000'000'000'000;
};

// JSON string escaping for the characters generated names can hold.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

class Output {
 public:
  explicit Output(const std::string& path) : file_(std::fopen(path.c_str(), "wb")) {
    if (!file_) throw std::runtime_error("cannot write " + path);
  }
  ~Output() {
    if (file_) std::fclose(file_);
  }
  void write(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), file_);
    written_ += text.size();
  }
  std::uint64_t written() const { return written_; }

 private:
  std::FILE* file_;
  std::uint64_t written_ = 0;
};

std::string otlp_request(const std::vector<GeneratedSpan>& spans) {
  // One resourceSpans per service, as an SDK's batch exporter sends them.
  std::string out = R"({"resourceSpans":[)";
  bool first_resource = true;
  for (std::size_t service = 0; service < kServices.size(); ++service) {
    std::string body;
    for (const GeneratedSpan& span : spans) {
      if (span.service != static_cast<int>(service)) continue;
      if (!body.empty()) body += ',';
      body += fmt::format(
          R"({{"traceId":"{:016x}{:016x}","spanId":"{:016x}",{}"flags":257,"name":{},"kind":{},)"
          R"("startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":[)",
          span.trace_high, span.trace_low, span.id,
          span.parent ? fmt::format(R"("parentSpanId":"{:016x}",)", span.parent) : "",
          quoted(span.name), static_cast<int>(span.kind), span.start_ns, span.end_ns);
      for (std::size_t i = 0; i < span.attributes.size(); ++i) {
        const auto& [key, value] = span.attributes[i];
        const bool integer =
            key.ends_with(".port") || key.ends_with("status_code") || key.ends_with(".size");
        body += fmt::format(R"({}{{"key":"{}","value":{{"{}":{}}}}})", i ? "," : "", key,
                            integer ? "intValue" : "stringValue", quoted(value));
      }
      body += span.error ? R"(],"status":{"code":2,"message":"upstream failed"}})"
                         : R"(],"status":{}})";
    }
    if (body.empty()) continue;
    out += fmt::format(
        R"({}{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{}"}}}},)"
        R"({{"key":"host.name","value":{{"stringValue":"{}-7d9f8"}}}},)"
        R"({{"key":"telemetry.sdk.language","value":{{"stringValue":"go"}}}}]}},)"
        R"("scopeSpans":[{{"scope":{{"name":"go.opentelemetry.io/otel","version":"1.24.0"}},"spans":[{}]}}]}})",
        first_resource ? "" : ",", kServices[service], kServices[service], body);
    first_resource = false;
  }
  out += "]}\n";
  return out;
}

std::string jaeger_trace(const std::vector<GeneratedSpan>& spans) {
  const auto kind_name = [](Kind kind) {
    switch (kind) {
      case Kind::server:
        return "server";
      case Kind::client:
        return "client";
      case Kind::producer:
        return "producer";
      case Kind::consumer:
        return "consumer";
      case Kind::internal:
        break;
    }
    return "internal";
  };
  std::string out = fmt::format(R"({{"traceID":"{:016x}{:016x}","spans":[)", spans[0].trace_high,
                                spans[0].trace_low);
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const GeneratedSpan& span = spans[i];
    out += fmt::format(
        R"({}{{"traceID":"{:016x}{:016x}","spanID":"{:016x}","flags":1,"operationName":{},"references":[{}],)"
        R"("startTime":{},"duration":{},"tags":[{{"key":"span.kind","type":"string","value":"{}"}})",
        i ? "," : "", span.trace_high, span.trace_low, span.id, quoted(span.name),
        span.parent
            ? fmt::format(
                  R"({{"refType":"CHILD_OF","traceID":"{:016x}{:016x}","spanID":"{:016x}"}})",
                  span.trace_high, span.trace_low, span.parent)
            : "",
        span.start_ns / 1000, (span.end_ns - span.start_ns) / 1000, kind_name(span.kind));
    for (const auto& [key, value] : span.attributes) {
      out += fmt::format(R"(,{{"key":"{}","type":"string","value":{}}})", key, quoted(value));
    }
    if (span.error) out += R"(,{"key":"error","type":"bool","value":true})";
    out += fmt::format(R"(],"logs":[],"processID":"p{}","warnings":null}})", span.service);
  }
  out += R"(],"processes":{)";
  for (std::size_t service = 0; service < kServices.size(); ++service) {
    out += fmt::format(
        R"({}"p{}":{{"serviceName":"{}","tags":[{{"key":"hostname","type":"string","value":"{}-7d9f8"}}]}})",
        service ? "," : "", service, kServices[service], kServices[service]);
  }
  out += R"(},"warnings":null})";
  return out;
}

std::string zipkin_spans(const std::vector<GeneratedSpan>& spans, bool& first) {
  static const char* const kKinds[] = {"", "", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"};
  std::string out;
  for (const GeneratedSpan& span : spans) {
    out += fmt::format(
        R"({}{{"traceId":"{:016x}{:016x}","id":"{:016x}",{}"kind":"{}","name":{},"timestamp":{},"duration":{},)"
        R"("localEndpoint":{{"serviceName":"{}","ipv4":"10.0.0.{}","port":8080}},"tags":{{)",
        first ? "" : ",\n", span.trace_high, span.trace_low, span.id,
        span.parent ? fmt::format(R"("parentId":"{:016x}",)", span.parent) : "",
        kKinds[static_cast<int>(span.kind)], quoted(span.name), span.start_ns / 1000,
        (span.end_ns - span.start_ns) / 1000, kServices[span.service], span.service + 1);
    first = false;
    for (std::size_t i = 0; i < span.attributes.size(); ++i) {
      out += fmt::format(R"({}"{}":{})", i ? "," : "", span.attributes[i].first,
                         quoted(span.attributes[i].second));
    }
    if (span.error) out += std::string(span.attributes.empty() ? "" : ",") + R"("error":"503")";
    out += "}}";
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes realistic trace files for ingestion benchmarks"};
  std::string format = "otlp";
  std::string output;
  double megabytes = 100;
  std::uint64_t seed = 1;
  int traces_per_request = 8;
  app.add_option("--format", format, "otlp (JSON Lines), jaeger (UI JSON) or zipkin (v2 JSON)")
      ->check(CLI::IsMember({"otlp", "jaeger", "zipkin"}));
  app.add_option("--megabytes", megabytes, "approximate size to write (MB = 10^6 bytes)")
      ->check(CLI::PositiveNumber);
  app.add_option("--output", output, "file to write")->required();
  app.add_option("--seed", seed, "random seed: same seed, same file");
  app.add_option("--traces-per-line", traces_per_request,
                 "OTLP: traces per ExportTraceServiceRequest line")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const auto target = static_cast<std::uint64_t>(megabytes * 1e6);
  TraceGenerator generator(seed);
  Output out(output);
  std::uint64_t span_count = 0;
  std::uint64_t trace_count = 0;
  if (format == "otlp") {
    while (out.written() < target) {
      std::vector<GeneratedSpan> batch;
      for (int i = 0; i < traces_per_request; ++i) {
        auto trace = generator.next_trace();
        batch.insert(batch.end(), trace.begin(), trace.end());
        ++trace_count;
      }
      span_count += batch.size();
      out.write(otlp_request(batch));
    }
  } else if (format == "jaeger") {
    out.write("{\"data\":[");
    while (out.written() < target) {
      const auto trace = generator.next_trace();
      out.write((trace_count ? ",\n" : "") + jaeger_trace(trace));
      span_count += trace.size();
      ++trace_count;
    }
    out.write("],\"total\":0,\"limit\":0,\"offset\":0,\"errors\":null}\n");
  } else {
    out.write("[");
    bool first = true;
    while (out.written() < target) {
      const auto trace = generator.next_trace();
      out.write(zipkin_spans(trace, first));
      span_count += trace.size();
      ++trace_count;
    }
    out.write("]\n");
  }
  std::printf("wrote %llu bytes: %llu spans in %llu traces (%s)\n",
              static_cast<unsigned long long>(out.written()),
              static_cast<unsigned long long>(span_count),
              static_cast<unsigned long long>(trace_count), format.c_str());
  return 0;
}
