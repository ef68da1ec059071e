#include "doppel/experiments/process_pool.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

extern char** environ;

namespace doppel::experiments {

namespace {

// posix_spawn file actions that send stdout and stderr to `file` (or /dev/null).
class OutputRedirect {
 public:
  explicit OutputRedirect(const std::filesystem::path& file) {
    ::posix_spawn_file_actions_init(&actions_);
    path_ = file.empty() ? std::string("/dev/null") : file.string();
    ::posix_spawn_file_actions_addopen(&actions_, STDOUT_FILENO, path_.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::posix_spawn_file_actions_adddup2(&actions_, STDOUT_FILENO, STDERR_FILENO);
  }
  ~OutputRedirect() { ::posix_spawn_file_actions_destroy(&actions_); }
  OutputRedirect(const OutputRedirect&) = delete;
  OutputRedirect& operator=(const OutputRedirect&) = delete;

  const posix_spawn_file_actions_t* get() const { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
  std::string path_;  // must outlive the actions
};

ChildExit exit_of(int status) {
  ChildExit exit;
  if (WIFEXITED(status)) {
    exit.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.exit_code = -1;
    exit.signal = WTERMSIG(status);
  } else {
    exit.exit_code = -1;
  }
  return exit;
}

}  // namespace

std::string ChildExit::describe() const {
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, ::strsignal(signal));
  return fmt::format("exit code {}", exit_code);
}

std::vector<ChildExit> run_children(
    const std::filesystem::path& executable, const std::vector<ChildProcess>& children, int jobs,
    const std::function<void(std::size_t index, const ChildExit& exit)>& on_exit) {
  if (jobs < 1) throw std::invalid_argument("run_children: jobs must be at least 1");
  std::vector<ChildExit> exits(children.size());
  std::map<pid_t, std::size_t> running;
  std::size_t next = 0;
  std::string start_error;

  auto reap_one = [&] {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) return;
      throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
    }
    const auto it = running.find(pid);
    if (it == running.end()) return;  // a child someone else started
    const std::size_t index = it->second;
    running.erase(it);
    exits[index] = exit_of(status);
    if (on_exit) on_exit(index, exits[index]);
  };

  while ((next < children.size() && start_error.empty()) || !running.empty()) {
    while (start_error.empty() && next < children.size() &&
           running.size() < static_cast<std::size_t>(jobs)) {
      const std::size_t index = next++;
      std::vector<std::string> args = children[index].arguments;
      args.insert(args.begin(), executable.string());
      std::vector<char*> argv;
      argv.reserve(args.size() + 1);
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      const OutputRedirect redirect(children[index].output_file);
      pid_t pid = 0;
      const int error =
          ::posix_spawn(&pid, executable.c_str(), redirect.get(), nullptr, argv.data(), environ);
      if (error != 0) {
        start_error = fmt::format("cannot start {}: {}", executable.string(), std::strerror(error));
        break;
      }
      running.emplace(pid, index);
    }
    if (!running.empty()) reap_one();
  }
  if (!start_error.empty()) throw std::runtime_error(start_error);
  return exits;
}

int default_jobs() {
  const unsigned threads = std::thread::hardware_concurrency();
  return threads == 0 ? 1 : static_cast<int>(threads);
}

}  // namespace doppel::experiments
