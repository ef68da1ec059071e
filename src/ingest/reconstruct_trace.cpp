// Per-trace analysis: which spans are operations, which are calls and to whom, the self time
// of each operation span, and how its calls overlap. See docs/reconstruction.md.
#include "ingest/reconstruct_trace.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string_view>
#include <unordered_map>

namespace doppel::ingest::detail {

namespace {

constexpr double kNsPerMs = 1e6;

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Words of an operation name split at '_', ' ', '.', '/', ':' and '-'.
std::vector<std::string> words_of(std::string_view name) {
  std::vector<std::string> words;
  std::string current;
  for (char c : name) {
    if (c == '_' || c == ' ' || c == '.' || c == '/' || c == ':' || c == '-') {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

struct TechnologyWord {
  std::string_view word;
  model::DatastoreKind kind;
};

// Words in a span's operation or service name that name a database technology.
constexpr std::array<TechnologyWord, 14> kTechnologyWords{{
    {"mongo", model::DatastoreKind::kv},
    {"mongodb", model::DatastoreKind::kv},
    {"cassandra", model::DatastoreKind::kv},
    {"dynamodb", model::DatastoreKind::kv},
    {"redis", model::DatastoreKind::cache},
    {"memcached", model::DatastoreKind::cache},
    {"memcache", model::DatastoreKind::cache},
    {"valkey", model::DatastoreKind::cache},
    {"mysql", model::DatastoreKind::sql},
    {"postgres", model::DatastoreKind::sql},
    {"postgresql", model::DatastoreKind::sql},
    {"sql", model::DatastoreKind::sql},
    {"sqlite", model::DatastoreKind::sql},
    {"mariadb", model::DatastoreKind::sql},
}};

std::optional<model::DatastoreKind> kind_of_db_system(std::string_view system) {
  const std::string lower = lowercase(system);
  for (const auto& tech : kTechnologyWords) {
    if (lower == tech.word || contains(lower, tech.word)) return tech.kind;
  }
  if (lower == "oracle" || lower == "mssql" || lower == "db2" || lower == "cockroachdb" ||
      lower == "h2" || lower == "derby" || lower == "hsqldb") {
    return model::DatastoreKind::sql;
  }
  return model::DatastoreKind::kv;  // couchbase, elasticsearch, hbase, ...: a key-value store
}

std::optional<model::DatastoreKind> kind_from_words(std::string_view name) {
  for (const auto& word : words_of(lowercase(name))) {
    for (const auto& tech : kTechnologyWords) {
      if (word == tech.word) return tech.kind;
    }
  }
  // "redis-manual", "user-mongodb": a technology inside a hyphenated or camel name.
  const std::string lower = lowercase(name);
  for (const auto& tech : kTechnologyWords) {
    if (tech.word.size() >= 5 && contains(lower, tech.word)) return tech.kind;
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 8> kSqlVerbs{"select", "insert",  "update", "delete",
                                                    "upsert", "replace", "merge",  "begin"};

bool starts_with_sql_verb(std::string_view name) {
  const auto words = words_of(lowercase(name));
  if (words.empty()) return false;
  std::size_t first = words[0] == "sql" && words.size() > 1 ? 1 : 0;
  if (first == 0) return false;  // a bare "select" is too weak a hint on its own
  return std::find(kSqlVerbs.begin(), kSqlVerbs.end(), words[first]) != kSqlVerbs.end();
}

const std::string* first_attribute(const Span& span, std::initializer_list<std::string_view> keys) {
  for (auto key : keys) {
    if (const std::string* value = span.attribute(key); value != nullptr && !value->empty()) {
      return value;
    }
  }
  return nullptr;
}

std::optional<double> numeric_attribute(const Span& span,
                                        std::initializer_list<std::string_view> keys) {
  const std::string* text = first_attribute(span, keys);
  if (text == nullptr) return std::nullopt;
  double value = 0.0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size() || value < 0.0) {
    return std::nullopt;
  }
  return value;
}

bool looks_like_ip(std::string_view name) {
  return !name.empty() &&
         (std::all_of(
              name.begin(), name.end(),
              [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; }) ||
          contains(name, ":"));
}

// "valkey-cart:6379" -> "valkey-cart"; IP addresses name no component.
std::string peer_name(const Span& span) {
  if (const std::string* service = first_attribute(span, {"peer.service"})) return *service;
  if (const std::string* host =
          first_attribute(span, {"server.address", "net.peer.name", "peer.hostname"})) {
    std::string name = *host;
    if (auto colon = name.rfind(':'); colon != std::string::npos && name.find(':') == colon) {
      name.resize(colon);
    }
    if (!looks_like_ip(name) && name != "localhost") return name;
  }
  return {};
}

std::string strip_service_suffix(std::string_view service) {
  constexpr std::string_view kSuffix = "-service";
  if (service.size() > kSuffix.size() && service.ends_with(kSuffix)) {
    service.remove_suffix(kSuffix.size());
  }
  return std::string(service);
}

// The technology word a span names, canonicalised for datastore names ("mongo" -> "mongodb").
std::string technology_of(const Span& span) {
  if (const std::string* system = first_attribute(span, {"db.system", "db.type"})) {
    return lowercase(*system);
  }
  for (const auto& word : words_of(lowercase(span.operation))) {
    for (const auto& tech : kTechnologyWords) {
      if (word == tech.word) return word == "mongo" ? "mongodb" : word;
    }
  }
  if (starts_with_sql_verb(span.operation)) return "sql";
  return "db";
}

std::optional<double> duration_ms(const Span& span) {
  if (!span.has_start || !span.has_duration) return std::nullopt;
  return static_cast<double>(std::max<std::int64_t>(0, span.duration_ns())) / kNsPerMs;
}

// One trace, indexed.
struct TraceIndex {
  std::vector<Span>* spans = nullptr;
  std::unordered_map<std::uint64_t, std::size_t> by_id;
  std::vector<std::vector<std::size_t>> children;
  std::vector<std::size_t> roots;
  std::vector<bool> has_parent;
};

// store_server: a datastore's own span below a client span (a traced database, or Doppel's
// twin, which traces its datastores).
enum class Role { operation, call, internal, store_server };

}  // namespace

int peak_concurrency(std::vector<std::pair<std::int64_t, std::int64_t>> intervals) {
  std::vector<std::pair<std::int64_t, int>> events;
  events.reserve(2 * intervals.size());
  for (const auto& [start, end] : intervals) {
    events.emplace_back(start, +1);
    events.emplace_back(end, -1);
  }
  // An interval ending where another starts does not overlap it: ends sort first.
  std::sort(events.begin(), events.end());
  int open = 0;
  int peak = 0;
  for (const auto& [time, delta] : events) {
    open += delta;
    peak = std::max(peak, open);
  }
  return peak;
}

namespace {

struct CallObservation {
  CalleeKey key;
  // The call as the caller spent it: from its request leaving (after any wait for a
  // connection, which is the caller's own time) to the response arriving.
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::int64_t client_start_ns = 0;  // when the caller asked, wait included
  // When the callee was serving it (its own span), for concurrency limits.
  std::int64_t served_start_ns = 0;
  std::int64_t served_end_ns = 0;
  bool timed = true;
  bool failed = false;
  std::optional<double> request_bytes;
  std::optional<double> response_bytes;
  bool consumer_seen = false;
};

class TraceAnalysis {
 public:
  TraceAnalysis(std::vector<Span>& spans, const ReconstructOptions& options,
                model::RandomStream& rng, ObservedStats& stats)
      : spans_(spans), options_(options), rng_(rng), stats_(stats) {}

  void run() {
    index();
    roles_.assign(spans_.size(), Role::internal);
    // Roles top-down from the roots: a span's role depends on its parent's service. Spans
    // only reachable through a parent cycle are never visited, so cycles cannot loop here.
    std::vector<bool> visited(spans_.size(), false);
    std::vector<std::size_t> stack(index_.roots.rbegin(), index_.roots.rend());
    std::vector<std::size_t> order;
    while (!stack.empty()) {
      const std::size_t i = stack.back();
      stack.pop_back();
      if (visited[i]) continue;
      visited[i] = true;
      order.push_back(i);
      for (auto it = index_.children[i].rbegin(); it != index_.children[i].rend(); ++it) {
        parent_of_[*it] = i;
        stack.push_back(*it);
      }
    }
    for (std::size_t i : order) roles_[i] = role_of(i);
    std::map<std::size_t, CalleeKey> forwarded;  // gateway root -> the operation it forwarded to
    for (std::size_t root : index_.roots) {
      if (auto target = forward_through_gateway(root)) forwarded.emplace(root, *target);
    }
    for (std::size_t i : order) {
      if (roles_[i] == Role::operation && forwarded.count(i) == 0) analyse_operation(i);
    }
    for (std::size_t root : index_.roots) {
      if (index_.has_parent[root]) {
        ++stats_.counters.fragment_roots;
      } else if (auto it = forwarded.find(root); it != forwarded.end()) {
        if (spans_[root].has_start) {
          record_entry(spans_[root], it->second.component, it->second.operation);
        }
      } else if (roles_[root] == Role::operation && spans_[root].has_start) {
        record_entry(spans_[root], spans_[root].service, spans_[root].operation);
      }
    }
  }

 private:
  void index() {
    // The first copy of a duplicated span wins; readers count the duplicates.
    std::vector<Span> unique;
    unique.reserve(spans_.size());
    for (auto& span : spans_) {
      if (index_.by_id.emplace(span.span_id, unique.size()).second) {
        unique.push_back(std::move(span));
      }
    }
    spans_ = std::move(unique);
    index_.children.assign(spans_.size(), {});
    index_.has_parent.assign(spans_.size(), false);
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      const Span& span = spans_[i];
      auto parent = span.parent_span_id == 0 || span.parent_span_id == span.span_id
                        ? index_.by_id.end()
                        : index_.by_id.find(span.parent_span_id);
      if (parent != index_.by_id.end()) {
        index_.children[parent->second].push_back(i);
      } else {
        index_.has_parent[i] = span.parent_span_id != 0;
        index_.roots.push_back(i);
      }
    }
    auto earlier = [this](std::size_t a, std::size_t b) {
      if (spans_[a].start_ns != spans_[b].start_ns) return spans_[a].start_ns < spans_[b].start_ns;
      return spans_[a].span_id < spans_[b].span_id;
    };
    for (auto& list : index_.children) std::sort(list.begin(), list.end(), earlier);
    std::sort(index_.roots.begin(), index_.roots.end(), earlier);
    parent_of_.assign(spans_.size(), kNoParent);
  }

  static constexpr std::size_t kNoParent = static_cast<std::size_t>(-1);

  // A root span of the gateway service that passes the request to one operation (directly
  // or through one client span): the gateway's own time is sampled, and the operation it
  // forwarded to is returned as the entry. Anything else is an ordinary operation.
  std::optional<CalleeKey> forward_through_gateway(std::size_t root) {
    const Span& span = spans_[root];
    if (options_.gateway_service.empty() || span.service != options_.gateway_service ||
        index_.has_parent[root] || roles_[root] != Role::operation ||
        index_.children[root].size() != 1) {
      return std::nullopt;
    }
    const std::size_t child = index_.children[root].front();
    const bool direct = roles_[child] == Role::operation;
    const bool through_client = roles_[child] == Role::call && index_.children[child].size() == 1 &&
                                roles_[index_.children[child].front()] == Role::operation;
    if (!direct && !through_client) return std::nullopt;
    std::vector<CallObservation> calls;
    collect_calls(root, root, calls);
    if (calls.size() != 1 || calls.front().key.kind != ComponentKind::service) return std::nullopt;
    const CallObservation& call = calls.front();
    if (call.timed && span.has_start && span.has_duration) {
      const std::int64_t own = span.duration_ns() - (call.end_ns - call.client_start_ns);
      stats_.gateway_ms.add(static_cast<double>(std::max<std::int64_t>(0, own)) / kNsPerMs,
                            options_.max_samples_per_operation, rng_);
    }
    return call.key;
  }

  bool is_leaf(std::size_t i) const { return index_.children[i].empty(); }

  // A leaf server span answering a client span of another service, in a service named after
  // a database technology ("mysql", "redis-cart"): the datastore traced its own side.
  bool is_traced_store(std::size_t i) const {
    const std::size_t parent = parent_of_[i];
    return is_leaf(i) && parent != kNoParent && spans_[parent].kind == SpanKind::client &&
           spans_[parent].service != spans_[i].service &&
           kind_from_words(spans_[i].service).has_value();
  }

  bool has_child_in_other_service(std::size_t i) const {
    return std::any_of(index_.children[i].begin(), index_.children[i].end(),
                       [&](std::size_t c) { return spans_[c].service != spans_[i].service; });
  }

  Role role_of(std::size_t i) const {
    const std::size_t parent = parent_of_[i];
    const Span& span = spans_[i];
    if (parent == kNoParent) {
      // A client span whose caller never came (a request still in flight when tracing
      // stopped) is a call with no known caller, not an operation of the calling service.
      const bool orphan_call = index_.has_parent[i] &&
                               (span.kind == SpanKind::client || span.kind == SpanKind::producer);
      return orphan_call ? Role::call : Role::operation;
    }
    switch (span.kind) {
      case SpanKind::server:
        if (is_traced_store(i)) return Role::store_server;
        return Role::operation;
      case SpanKind::consumer:
        return Role::operation;
      case SpanKind::client:
      case SpanKind::producer:
        return Role::call;
      case SpanKind::internal:
      case SpanKind::unspecified:
        break;
    }
    const bool store_hint = is_leaf(i) && datastore_kind_evidence(span).has_value();
    if (span.service != spans_[parent].service) return store_hint ? Role::call : Role::operation;
    if (has_child_in_other_service(i) || store_hint) return Role::call;
    return Role::internal;
  }

  // The calls an operation span makes: through its own internal spans, to the operation
  // spans below its call spans (or directly below it), and to datastores and queues.
  void collect_calls(std::size_t operation, std::size_t node, std::vector<CallObservation>& out) {
    for (std::size_t child : index_.children[node]) {
      switch (roles_[child]) {
        case Role::internal:
          collect_calls(operation, child, out);
          break;
        case Role::operation:
          out.push_back(service_call(child, spans_[child]));
          break;
        case Role::call:
          collect_call_span(operation, child, out);
          break;
        case Role::store_server:  // answered through its client span
          break;
      }
    }
  }

  CallObservation service_call(std::size_t callee, const Span& interval) {
    const Span& target = spans_[callee];
    CallObservation call;
    call.key = CalleeKey{target.service, target.operation, ComponentKind::service};
    call.start_ns = interval.start_ns;
    call.end_ns = interval.end_ns;
    call.client_start_ns = interval.start_ns;
    call.served_start_ns = target.start_ns;
    call.served_end_ns = target.end_ns;
    call.timed = interval.has_start && interval.has_duration;
    call.failed = target.error || interval.error;
    call.request_bytes = numeric_attribute(
        target, {"http.request_content_length", "http.request.body.size", "rpc.request.size"});
    call.response_bytes = numeric_attribute(
        target, {"http.response_content_length", "http.response.body.size", "rpc.response.size"});
    return call;
  }

  void collect_call_span(std::size_t operation, std::size_t call_index,
                         std::vector<CallObservation>& out) {
    const Span& call_span = spans_[call_index];
    std::vector<std::size_t> callees;
    for (std::size_t child : index_.children[call_index]) {
      if (roles_[child] == Role::operation) callees.push_back(child);
    }
    const bool messaging = call_span.kind == SpanKind::producer ||
                           first_attribute(call_span, {"messaging.system"}) != nullptr;
    if (messaging) {
      CallObservation call = store_call(operation, call_index, /*queue=*/true);
      call.consumer_seen = !callees.empty();
      for (std::size_t consumer : callees) {
        stats_.stores[call.key.component].consumers.insert(spans_[consumer].service);
      }
      out.push_back(std::move(call));
      return;
    }
    if (callees.empty()) {
      for (std::size_t child : index_.children[call_index]) {
        if (roles_[child] == Role::store_server) {
          out.push_back(traced_store_call(operation, call_index, child));
          return;
        }
      }
    }
    if (!callees.empty()) {
      for (std::size_t callee : callees) {
        // With one callee the client span is the call as the caller saw it (network
        // included); several callees under one client span are retries or fan-out.
        CallObservation call =
            service_call(callee, callees.size() == 1 ? call_span : spans_[callee]);
        if (callees.size() == 1) split_wait(call_span, spans_[callee], call);
        call.failed = call.failed || call_span.error;
        if (call_span.error && !spans_[callee].error) {
          // Only the caller saw it fail (a timeout, a reset): from the caller's side the
          // callee failed, and that is what the twin must reproduce.
          ++stats_.services[spans_[callee].service].operations[spans_[callee].operation].own_errors;
        }
        merge_sizes(call, call_span);
        out.push_back(std::move(call));
      }
      return;
    }
    const bool stand_in_service = call_span.service != spans_[operation].service;
    if (datastore_kind_evidence(call_span) || stand_in_service) {
      out.push_back(store_call(operation, call_index, /*queue=*/false));
      return;
    }
    if (std::string peer = peer_name(call_span); !peer.empty()) {
      // A call to something not instrumented: it becomes a service whose operation costs
      // what the caller waited.
      CallObservation call;
      call.key = CalleeKey{peer, call_span.operation, ComponentKind::service};
      call.start_ns = call_span.start_ns;
      call.end_ns = call_span.end_ns;
      call.client_start_ns = call_span.start_ns;
      call.served_start_ns = call_span.start_ns;
      call.served_end_ns = call_span.end_ns;
      call.timed = call_span.has_start && call_span.has_duration;
      call.failed = call_span.error;
      merge_sizes(call, call_span);
      auto& service = stats_.services[peer];
      auto& op = service.operations[call_span.operation];
      ++op.instances;
      if (call_span.error) ++op.own_errors;
      if (auto ms = duration_ms(call_span)) {
        op.self_ms.add(*ms, options_.max_samples_per_operation, rng_);
        op.latency_ms.add(*ms, options_.max_samples_per_operation, rng_);
      }
      out.push_back(std::move(call));
      return;
    }
    // Nothing says where it went: its time stays in the caller's self time.
    ++stats_.counters.transparent_client_spans;
  }

  // A client span with the callee's span inside it: the time before the callee started is
  // the request's one-way trip plus any wait on the caller's side (a connection pool, a
  // client-side limit); the time after it ended is the response's trip alone. The wait is
  // the caller's own time, not the call's: it moves out of the call's interval (so self time
  // keeps it), and only the trips are network samples. Trips are taken as symmetric.
  void split_wait(const Span& client, const Span& server, CallObservation& call) {
    if (!call.timed || !server.has_start || !server.has_duration ||
        server.service == client.service) {
      return;
    }
    const std::int64_t before = server.start_ns - client.start_ns;
    const std::int64_t after = client.end_ns - server.end_ns;
    if (before < 0 || after < 0) return;  // clock skew: nothing to learn
    const std::int64_t one_way = std::min(before, after);
    const std::int64_t wait = before - one_way;
    call.start_ns = client.start_ns + wait;
    // A wait worth the name: beyond clock noise and the trips' asymmetry.
    const std::int64_t served = server.end_ns - server.start_ns;
    const bool waited = wait > std::max<std::int64_t>(100'000, served / 10);
    EdgeUsage& edge = stats_.edges[{client.service, call.key.component}];
    ++edge.calls;
    if (waited) ++edge.waited;
    if (edge.intervals < EdgeUsage::kMaxServedIntervals) {
      const std::string& instance = client.instance.empty() ? client.host : client.instance;
      edge.served[instance].emplace_back(server.start_ns, server.end_ns);
      ++edge.intervals;
    }
    stats_.one_way_network_ms.add(static_cast<double>(before - wait + after) / 2.0 / kNsPerMs,
                                  options_.max_samples_per_operation, rng_);
  }

  // A datastore call whose datastore traced its own side: the cost is the datastore's span
  // (queueing at the datastore included), the interval the client's.
  CallObservation traced_store_call(std::size_t operation, std::size_t call_index,
                                    std::size_t server_index) {
    const Span& client = spans_[call_index];
    const Span& server = spans_[server_index];
    CallObservation call;
    call.key = CalleeKey{server.service, server.operation, ComponentKind::datastore};
    call.start_ns = client.start_ns;
    call.end_ns = client.end_ns;
    call.client_start_ns = client.start_ns;
    call.served_start_ns = server.start_ns;
    call.served_end_ns = server.end_ns;
    call.timed = client.has_start && client.has_duration;
    call.failed = client.error || server.error;
    merge_sizes(call, client);
    split_wait(client, server, call);
    (void)operation;

    StoreStats& store = stats_.stores[call.key.component];
    store.kind = ComponentKind::datastore;
    if (store.evidence.empty()) {
      store.datastore_kind = kind_from_words(server.service).value_or(model::DatastoreKind::kv);
      store.evidence = "its own server spans, service name \"" + server.service + "\"";
    }
    QueryStats& query = store.queries[call.key.operation];
    ++query.calls;
    if (call.failed) ++query.errors;
    if (auto ms = duration_ms(server)) {
      query.server_cost_ms.add(*ms, options_.max_samples_per_operation, rng_);
    }
    return call;
  }

  static void merge_sizes(CallObservation& call, const Span& client) {
    if (!call.request_bytes) {
      call.request_bytes = numeric_attribute(
          client, {"http.request_content_length", "http.request.body.size", "rpc.request.size",
                   "messaging.message.body.size", "messaging.message_payload_size_bytes"});
    }
    if (!call.response_bytes) {
      call.response_bytes = numeric_attribute(
          client, {"http.response_content_length", "http.response.body.size", "rpc.response.size"});
    }
  }

  // The datastore (or queue) a leaf client span talks to, named so that the same store gets
  // the same name from every caller (docs/reconstruction.md, "Datastores and queues").
  std::string store_name(std::size_t operation, const Span& span, bool queue) const {
    if (queue) {
      if (const std::string* destination =
              first_attribute(span, {"messaging.destination.name", "messaging.destination"})) {
        return *destination;
      }
      if (std::string peer = peer_name(span); !peer.empty()) return peer;
      if (const std::string* system = first_attribute(span, {"messaging.system"})) {
        return lowercase(*system);
      }
      return strip_service_suffix(spans_[operation].service) + "-queue";
    }
    if (std::string peer = peer_name(span); !peer.empty()) return peer;
    // HotROD style: the client span carries the database's own name as its service.
    if (span.service != spans_[operation].service) return span.service;
    return strip_service_suffix(spans_[operation].service) + "-" + technology_of(span);
  }

  CallObservation store_call(std::size_t operation, std::size_t call_index, bool queue) {
    const Span& span = spans_[call_index];
    CallObservation call;
    call.key.component = store_name(operation, span, queue);
    call.key.kind = queue ? ComponentKind::queue : ComponentKind::datastore;
    call.key.operation = queue ? std::string("publish") : query_name(span);
    call.start_ns = span.start_ns;
    call.end_ns = span.end_ns;
    call.client_start_ns = span.start_ns;
    call.served_start_ns = span.start_ns;
    call.served_end_ns = span.end_ns;
    call.timed = span.has_start && span.has_duration;
    call.failed = span.error;
    merge_sizes(call, span);

    StoreStats& store = stats_.stores[call.key.component];
    store.kind = call.key.kind;
    if (queue) {
      store.datastore_kind = model::DatastoreKind::queue;
      if (store.evidence.empty()) store.evidence = "producer span";
    } else if (store.evidence.empty()) {
      if (auto kind = datastore_kind_evidence(span)) {
        store.datastore_kind = *kind;
        store.evidence = fmt_evidence(span);
      } else if (auto by_name = kind_from_words(call.key.component)) {
        store.datastore_kind = *by_name;
        store.evidence = "name \"" + call.key.component + "\"";
      } else {
        store.datastore_kind = model::DatastoreKind::kv;
        store.evidence = "leaf client span under another service name (kind defaulted to kv)";
      }
    }
    QueryStats& query = store.queries[call.key.operation];
    ++query.calls;
    if (span.error) ++query.errors;
    if (auto ms = duration_ms(span))
      query.cost_ms.add(*ms, options_.max_samples_per_operation, rng_);
    return call;
  }

  static std::string fmt_evidence(const Span& span) {
    if (const std::string* system = first_attribute(span, {"db.system", "db.type"})) {
      return "db.system=" + *system;
    }
    return "operation name \"" + span.operation + "\"";
  }

  void analyse_operation(std::size_t i) {
    const Span& span = spans_[i];
    ServiceStats& service = stats_.services[span.service];
    ++service.spans;
    if (!span.instance.empty()) {
      service.instances.insert(span.instance);
    } else if (!span.host.empty()) {
      service.instances.insert(span.host);
    }
    OperationStats& op = service.operations[span.operation];
    ++op.instances;

    std::vector<CallObservation> calls;
    collect_calls(i, i, calls);
    std::stable_sort(
        calls.begin(), calls.end(),
        [](const CallObservation& a, const CallObservation& b) { return a.start_ns < b.start_ns; });

    const bool any_call_failed =
        std::any_of(calls.begin(), calls.end(), [](const CallObservation& c) { return c.failed; });
    // A failure a failed call explains is the callee's, not this operation's own.
    if (span.error && !any_call_failed) ++op.own_errors;

    if (auto total_ms = duration_ms(span)) {
      op.self_ms.add(self_time_ms(span, calls, /*waits_are_own_time=*/true),
                     options_.max_samples_per_operation, rng_);
      op.self_ms_waits_in_calls.add(self_time_ms(span, calls, /*waits_are_own_time=*/false),
                                    options_.max_samples_per_operation, rng_);
      op.latency_ms.add(*total_ms, options_.max_samples_per_operation, rng_);
    }
    record_call_structure(span, calls, op);
  }

  // Duration minus the union of the calls' intervals (clipped to the span): overlapping
  // calls are counted once. A call's wait on the caller's side (split_wait) is the caller's
  // own time, or the call's when the replay reproduces it with a connection pool.
  static double self_time_ms(const Span& span, const std::vector<CallObservation>& calls,
                             bool waits_are_own_time) {
    std::vector<std::pair<std::int64_t, std::int64_t>> intervals;
    for (const auto& call : calls) {
      if (!call.timed) continue;
      intervals.emplace_back(waits_are_own_time ? call.start_ns : call.client_start_ns,
                             call.end_ns);
    }
    std::sort(intervals.begin(), intervals.end());
    std::int64_t covered = 0;
    std::int64_t cursor = span.start_ns;
    for (const auto& [call_start, call_end] : intervals) {
      const std::int64_t start = std::max(call_start, cursor);
      const std::int64_t end = std::min(call_end, span.end_ns);
      if (end > start) {
        covered += end - start;
        cursor = end;
      }
    }
    return static_cast<double>(std::max<std::int64_t>(0, span.duration_ns() - covered)) / kNsPerMs;
  }

  void record_call_structure(const Span& span, const std::vector<CallObservation>& calls,
                             OperationStats& op) {
    // Waves: maximal runs of calls whose intervals chain-overlap (sorted by start).
    std::vector<std::size_t> wave(calls.size(), 0);
    std::int64_t wave_end = 0;
    std::size_t current = 0;
    for (std::size_t c = 0; c < calls.size(); ++c) {
      if (c > 0 && !(calls[c].timed && calls[c].start_ns < wave_end)) ++current;
      wave[c] = current;
      wave_end =
          c > 0 && wave[c] == wave[c - 1] ? std::max(wave_end, calls[c].end_ns) : calls[c].end_ns;
    }
    std::map<CalleeKey, std::vector<std::size_t>> by_key;
    for (std::size_t c = 0; c < calls.size(); ++c) by_key[calls[c].key].push_back(c);

    const double span_ns = static_cast<double>(std::max<std::int64_t>(1, span.duration_ns()));
    for (const auto& [key, indices] : by_key) {
      CallStats& call = op.calls[key];
      call.total_calls += indices.size();
      ++call.instances_with_call;
      call.relative_start_sum += std::clamp(
          static_cast<double>(calls[indices.front()].start_ns - span.start_ns) / span_ns, 0.0, 1.0);
      if (indices.size() >= 2) {
        ++call.instances_with_repeats;
        bool overlapping = false;
        for (std::size_t k = 1; k < indices.size(); ++k) {
          overlapping = overlapping || wave[indices[k]] == wave[indices[k - 1]];
        }
        if (overlapping) ++call.instances_with_overlapping_repeats;
        std::vector<std::pair<std::int64_t, std::int64_t>> asked;
        std::vector<std::pair<std::int64_t, std::int64_t>> served;
        for (std::size_t c : indices) {
          if (!calls[c].timed) continue;
          asked.emplace_back(calls[c].client_start_ns, calls[c].end_ns);
          served.emplace_back(calls[c].served_start_ns, calls[c].served_end_ns);
        }
        const int served_at_once = peak_concurrency(std::move(served));
        if (served_at_once < peak_concurrency(std::move(asked))) {
          ++call.instances_with_limited_concurrency;
        }
        call.max_served_concurrently = std::max(call.max_served_concurrently, served_at_once);
      }
      for (std::size_t c : indices) {
        const CallObservation& observed = calls[c];
        if (observed.failed) ++call.failed_calls;
        if (observed.request_bytes) {
          call.request_bytes_sum += *observed.request_bytes;
          ++call.request_bytes_seen;
        }
        if (observed.response_bytes) {
          call.response_bytes_sum += *observed.response_bytes;
          ++call.response_bytes_seen;
        }
        if (observed.consumer_seen) ++call.messaging_consumers;
        if (observed.timed) {
          stats_.max_call_ms =
              std::max(stats_.max_call_ms,
                       static_cast<double>(observed.end_ns - observed.start_ns) / kNsPerMs);
        }
      }
    }
    for (auto a = by_key.begin(); a != by_key.end(); ++a) {
      for (auto b = std::next(a); b != by_key.end(); ++b) {
        PairStats& pair = op.pairs[{a->first, b->first}];
        ++pair.together;
        bool overlapping = false;
        for (std::size_t x : a->second) {
          for (std::size_t y : b->second) overlapping = overlapping || wave[x] == wave[y];
        }
        if (overlapping) ++pair.overlapping;
      }
    }
  }

  void record_entry(const Span& root, const std::string& service, const std::string& operation) {
    EntryStats& entry = stats_.entries[{service, operation}];
    const auto window_ns = static_cast<std::int64_t>(std::max(1e-3, options_.rate_window_s) * 1e9);
    ++entry.arrivals_per_window[root.start_ns / window_ns];
    ++stats_.counters.entry_requests;
    if (entry.method.empty()) {
      if (const std::string* method =
              first_attribute(root, {"http.request.method", "http.method"})) {
        entry.method = *method;
      }
    }
    if (entry.path.empty()) entry.path = request_path(root);
    if (entry.route.empty()) {
      // A route name rather than a path template (Doppel's gateway writes its route's name).
      const std::string* route = first_attribute(root, {"http.route"});
      if (route != nullptr && route->front() != '/') entry.route = *route;
    }
  }

  static std::string request_path(const Span& span) {
    std::string path;
    if (const std::string* route = first_attribute(span, {"http.route"});
        route != nullptr && route->front() == '/') {
      return *route;
    }
    if (const std::string* url_path = first_attribute(span, {"url.path"})) {
      path = *url_path;
    } else if (const std::string* target = first_attribute(span, {"http.target"})) {
      path = *target;
    } else if (const std::string* url = first_attribute(span, {"http.url", "url.full"})) {
      path = *url;
      if (auto scheme = path.find("://"); scheme != std::string::npos) {
        auto slash = path.find('/', scheme + 3);
        path = slash == std::string::npos ? "/" : path.substr(slash);
      }
    }
    if (auto query = path.find_first_of("?#"); query != std::string::npos) path.resize(query);
    if (!path.empty() && path.front() != '/') path.clear();
    return path;
  }

  std::vector<Span>& spans_;
  const ReconstructOptions& options_;
  model::RandomStream& rng_;
  ObservedStats& stats_;
  TraceIndex index_;
  std::vector<Role> roles_;
  std::vector<std::size_t> parent_of_;
};

}  // namespace

void SampleReservoir::add(double value, std::size_t capacity, model::RandomStream& rng) {
  ++seen_;
  if (samples_.size() < capacity) {
    samples_.push_back(value);
    return;
  }
  const std::uint64_t slot = rng.below(seen_);
  if (slot < samples_.size()) samples_[slot] = value;
}

std::optional<model::DatastoreKind> datastore_kind_evidence(const Span& span) {
  if (const std::string* system = first_attribute(span, {"db.system", "db.type"})) {
    return kind_of_db_system(*system);
  }
  if (first_attribute(span, {"db.operation", "db.name", "db.instance"}) != nullptr) {
    return model::DatastoreKind::kv;
  }
  if (starts_with_sql_verb(span.operation)) return model::DatastoreKind::sql;
  return kind_from_words(span.operation);
}

std::string query_name(const Span& span) {
  if (const std::string* operation = first_attribute(span, {"db.operation"})) return *operation;
  // "url_mongo_insert_client" -> "insert"; "SQL SELECT" -> "SELECT".
  const auto words = words_of(span.operation);
  std::size_t after = words.size();
  for (std::size_t w = 0; w < words.size(); ++w) {
    const std::string lower = lowercase(words[w]);
    const bool technology = std::any_of(kTechnologyWords.begin(), kTechnologyWords.end(),
                                        [&](const TechnologyWord& t) { return lower == t.word; });
    if (technology) {
      after = w + 1;
      break;
    }
  }
  std::string name;
  for (std::size_t w = after; w < words.size(); ++w) {
    if (w + 1 == words.size() && lowercase(words[w]) == "client") break;
    if (!name.empty()) name += '_';
    name += words[w];
  }
  return name.empty() ? span.operation : name;
}

model::QueryType query_type(const std::string& query) {
  static constexpr std::array<std::string_view, 22> kWriteWords{
      "insert", "update", "delete", "upsert", "replace", "merge", "set",  "put",
      "write",  "store",  "del",    "incr",   "decr",    "hset",  "hdel", "lpush",
      "rpush",  "sadd",   "zadd",   "expire", "create",  "save"};
  for (const auto& word : words_of(lowercase(query))) {
    if (std::find(kWriteWords.begin(), kWriteWords.end(), word) != kWriteWords.end()) {
      return model::QueryType::write;
    }
  }
  return model::QueryType::read;
}

void analyse_trace(std::vector<Span>& spans, const ReconstructOptions& options,
                   model::RandomStream& rng, ObservedStats& stats) {
  ++stats.counters.traces;
  stats.counters.spans += spans.size();
  TraceAnalysis(spans, options, rng, stats).run();
}

}  // namespace doppel::ingest::detail
