// Many cases: shards, the manifest, merging shard outputs, and one process per case.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <unistd.h>

#include <fmt/format.h>

#include "doppel/experiments/generate.hpp"
#include "doppel/experiments/process_pool.hpp"
#include "doppel/model/input_error.hpp"

namespace doppel::experiments {

namespace {

constexpr std::string_view kManifestFileName = "manifest.jsonl";

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::optional<std::uint64_t> parse_index(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

// Indices of the complete case directories of a dataset, ascending.
std::vector<std::uint64_t> complete_cases(const std::filesystem::path& dir) {
  std::vector<std::uint64_t> indices;
  if (!std::filesystem::is_directory(dir)) return indices;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !name.starts_with("case-")) continue;
    const auto index = parse_index(std::string_view(name).substr(5));
    if (index && case_complete(dir, *index)) indices.push_back(*index);
  }
  std::sort(indices.begin(), indices.end());
  return indices;
}

// Files of a case directory, relative, sorted: for comparing two copies.
std::vector<std::filesystem::path> files_under(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(std::filesystem::relative(entry.path(), dir));
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool same_tree(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto files = files_under(a);
  if (files != files_under(b)) return false;
  return std::all_of(files.begin(), files.end(),
                     [&](const auto& file) { return read_all(a / file) == read_all(b / file); });
}

InputError usage_error(const std::string& what, const std::string& message) {
  return InputError(what, InputLocation{}, message);
}

}  // namespace

std::filesystem::path case_log_file(const std::filesystem::path& out_dir, std::uint64_t index) {
  return out_dir / fmt::format(".{}.log", case_dir_name(index));
}

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  const auto index = slash == std::string::npos ? std::nullopt : parse_index(text.substr(0, slash));
  const auto count =
      slash == std::string::npos ? std::nullopt : parse_index(text.substr(slash + 1));
  if (!index || !count || *count == 0 || *index >= *count) {
    throw usage_error("--shard", fmt::format("expected I/K with 0 <= I < K, got \"{}\"", text));
  }
  return {*index, *count};
}

std::optional<Shard> shard_from_environment(const std::function<const char*(const char*)>& lookup) {
  auto from = [&](const char* index_var, const char* count_var) -> std::optional<Shard> {
    const char* index = lookup(index_var);
    if (index == nullptr) return std::nullopt;
    const char* count = lookup(count_var);
    if (count == nullptr) {
      throw usage_error(
          index_var, fmt::format("is set but {} is not: cannot tell the shard count", count_var));
    }
    try {
      return parse_shard(fmt::format("{}/{}", index, count));
    } catch (const InputError&) {
      throw usage_error(index_var, fmt::format("{}={} and {}={} is no valid shard", index_var,
                                               index, count_var, count));
    }
  };
  if (auto shard = from("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")) return shard;
  return from("JOB_COMPLETION_INDEX", "DOPPEL_SHARD_COUNT");
}

std::vector<std::uint64_t> shard_indices(std::uint64_t cases, const Shard& shard) {
  std::vector<std::uint64_t> indices;
  for (std::uint64_t i = shard.index; i < cases; i += shard.count) indices.push_back(i);
  return indices;
}

bool case_complete(const std::filesystem::path& out_dir, std::uint64_t index) {
  return std::filesystem::is_regular_file(out_dir / case_dir_name(index) / "label.json");
}

std::size_t write_manifest(const std::filesystem::path& out_dir) {
  const auto indices = complete_cases(out_dir);
  // Shards sharing a directory may rewrite the manifest at the same time: each through its
  // own temporary file (named by host and process: shards on several machines may share
  // the directory), then an atomic rename.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const auto tmp = out_dir / fmt::format(".manifest.jsonl.tmp-{}-{}", host, ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    for (std::uint64_t index : indices) {
      const auto label_file = out_dir / case_dir_name(index) / "label.json";
      nlohmann::json label;
      try {
        label = nlohmann::json::parse(read_all(label_file));
      } catch (const nlohmann::json::parse_error& e) {
        throw InputError(label_file.string(), InputLocation{}, e.what());
      }
      const nlohmann::json line = {{"index", index},
                                   {"dir", case_dir_name(index)},
                                   {"seed", label.value("seed", std::uint64_t{0})},
                                   {"label", label}};
      out << line.dump() << '\n';
    }
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, out_dir / kManifestFileName);
  return indices.size();
}

std::size_t merge_datasets(const std::vector<std::filesystem::path>& shard_dirs,
                           const std::filesystem::path& out_dir) {
  std::filesystem::create_directories(out_dir);
  for (const auto& dir : shard_dirs) {
    if (!std::filesystem::is_directory(dir)) {
      throw usage_error(dir.string(), "no such dataset directory");
    }
    if (std::filesystem::equivalent(dir, out_dir)) continue;
    for (std::uint64_t index : complete_cases(dir)) {
      const auto from = dir / case_dir_name(index);
      const auto to = out_dir / case_dir_name(index);
      if (case_complete(out_dir, index)) {
        if (!same_tree(from, to)) {
          throw usage_error(from.string(),
                            fmt::format("differs from {}: the shards were not made with the same "
                                        "topology, catalogue and seed",
                                        to.string()));
        }
        continue;
      }
      const auto tmp = out_dir / (".tmp-" + case_dir_name(index));
      std::filesystem::remove_all(tmp);
      std::filesystem::copy(from, tmp, std::filesystem::copy_options::recursive);
      std::filesystem::remove_all(to);
      std::filesystem::rename(tmp, to);
    }
  }
  return write_manifest(out_dir);
}

std::map<std::string, std::size_t> class_balance(const std::filesystem::path& out_dir) {
  std::map<std::string, std::size_t> balance;
  std::ifstream in(out_dir / kManifestFileName);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto json = nlohmann::json::parse(line);
    ++balance[json.at("label").value("fault", std::string("unknown"))];
  }
  return balance;
}

std::vector<std::string> case_command_arguments(const GenerateOptions& options,
                                                std::uint64_t index) {
  std::vector<std::string> args = {
      "generate-case",  options.topology_file.string(),
      "--index",        std::to_string(index),
      "--seed",         std::to_string(options.seed),
      "--trace-sample", fmt::format("{}", options.case_options.trace_sample_ratio),
      "--out",          options.out_dir.string()};
  if (options.catalog_file) {
    args.push_back("--catalog");
    args.push_back(options.catalog_file->string());
  }
  if (options.case_options.write_otlp) args.push_back("--otlp");
  return args;
}

GenerateResult generate_dataset(const GenerateOptions& options,
                                const std::filesystem::path& executable) {
  if (options.jobs < 1) throw usage_error("--jobs", "must be at least 1");
  std::filesystem::create_directories(options.out_dir);
  GenerateResult result;
  std::vector<std::uint64_t> todo;
  for (std::uint64_t index : shard_indices(options.cases, options.shard)) {
    if (case_complete(options.out_dir, index)) {
      if (!options.resume) {
        throw usage_error(options.out_dir.string(),
                          fmt::format("already holds {}: pass --resume to keep the complete "
                                      "cases, or choose another directory",
                                      case_dir_name(index)));
      }
      ++result.skipped;
      continue;
    }
    todo.push_back(index);
  }

  // A case's own messages go to a log beside it, kept only when the case failed.
  std::vector<ChildProcess> children;
  children.reserve(todo.size());
  for (std::uint64_t index : todo) {
    children.push_back(
        {case_command_arguments(options, index), case_log_file(options.out_dir, index)});
  }
  std::uint64_t done = 0;
  run_children(executable, children, options.jobs, [&](std::size_t child, const ChildExit& exit) {
    const std::uint64_t index = todo[child];
    if (exit.ok() && case_complete(options.out_dir, index)) {
      ++result.generated;
      std::filesystem::remove(children[child].output_file);
    } else {
      result.failed.push_back(index);
    }
    ++done;
    if (options.on_progress) options.on_progress(done, todo.size());
  });
  std::sort(result.failed.begin(), result.failed.end());
  if (options.write_manifest) result.manifest_cases = write_manifest(options.out_dir);
  return result;
}

}  // namespace doppel::experiments
