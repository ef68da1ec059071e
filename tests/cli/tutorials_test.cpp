// Keeps docs/tutorials/ honest without running them: every `doppel ...` command in a ```sh
// block must name subcommands and options the binary accepts, and every bundled file it names
// must exist. Running the tutorials themselves would take minutes (diagnose --auto alone
// runs ~60 simulations); a renamed option or a moved scenario is what breaks them silently.
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/doppel_cli.hpp"

namespace {

namespace fs = std::filesystem;
using doppel::testing::slurp;

fs::path tutorials_dir() {
  return fs::path(DOPPEL_SOURCE_DIR) / "docs" / "tutorials";
}

// A doppel invocation found in a tutorial, split into shell words.
struct Command {
  std::string file;
  int line = 0;
  std::string text;
  std::vector<std::string> words;  // after `doppel`
};

// Shell words of one line: quotes grouped, the line cut at the first pipe, redirection or
// command separator (what follows is another program's business).
std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
      continue;
    }
    if (c == '#' && !in_word) break;
    if (c == '|' || c == ';' || c == '>' || c == '<' || c == '&') break;
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
      continue;
    }
    word += c;
    in_word = true;
  }
  if (in_word) words.push_back(word);
  return words;
}

bool names_doppel(const std::string& word) {
  return word == "doppel" || word.ends_with("/doppel");
}

// The words after `doppel`, when the line runs it: leading `nice -n N`, `time` and VAR=value
// assignments are skipped, as the shell would.
std::optional<std::vector<std::string>> doppel_arguments(const std::vector<std::string>& words) {
  std::size_t i = 0;
  while (i < words.size()) {
    if (words[i] == "time") {
      ++i;
    } else if (words[i] == "nice") {
      ++i;
      if (i < words.size() && words[i] == "-n") i += 2;
    } else if (words[i].find('=') != std::string::npos && words[i].front() != '-') {
      ++i;
    } else {
      break;
    }
  }
  if (i >= words.size() || !names_doppel(words[i])) return std::nullopt;
  return std::vector<std::string>(words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end());
}

// Every doppel command of the ```sh blocks of a Markdown text, continuation lines joined.
std::vector<Command> extract_commands(const std::string& markdown, const std::string& file) {
  std::vector<Command> commands;
  std::istringstream in(markdown);
  std::string line;
  int number = 0;
  bool in_sh_block = false;
  bool in_other_block = false;
  std::string pending;
  int pending_line = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.starts_with("```")) {
      if (in_sh_block || in_other_block) {
        in_sh_block = in_other_block = false;
      } else if (line == "```sh" || line == "```bash" || line == "```shell") {
        in_sh_block = true;
      } else {
        in_other_block = true;
      }
      continue;
    }
    if (!in_sh_block) continue;
    if (pending.empty()) pending_line = number;
    if (line.ends_with("\\")) {
      pending += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    pending += line;
    if (auto arguments = doppel_arguments(shell_words(pending))) {
      commands.push_back({file, pending_line, pending, std::move(*arguments)});
    }
    pending.clear();
  }
  return commands;
}

// CLI11's help lists a subcommand's own subcommands after "Subcommands:", one per line.
std::vector<std::string> listed_subcommands(const std::string& help) {
  std::vector<std::string> names;
  const auto start = help.find("Subcommands:");
  if (start == std::string::npos) return names;
  std::istringstream in(help.substr(start));
  std::string line;
  std::getline(in, line);
  const std::regex entry(R"(^  ([a-z][a-z0-9-]*)\s)");
  while (std::getline(in, line)) {
    std::smatch match;
    if (std::regex_search(line, match, entry)) names.push_back(match[1]);
  }
  return names;
}

// Whether the help text declares the option: "-o,--out TEXT", "--json", "-j,--jobs INT".
bool help_declares(const std::string& help, const std::string& option) {
  const std::regex declared("(^|[ ,])" + option + "([ ,\n]|$)", std::regex::multiline);
  return std::regex_search(help, declared);
}

// What is wrong with one command, or nothing: help texts are cached per subcommand path.
class CommandChecker {
 public:
  std::vector<std::string> problems(const Command& command) {
    std::vector<std::string> found;
    std::string path;  // "topology validate"
    std::string help = help_for(path);
    for (const std::string& word : command.words) {
      if (word.starts_with("-") && word.size() > 1) {
        const std::string option = word.substr(0, word.find('='));
        if (!help_declares(help, option)) {
          found.push_back("`doppel " + path + "` has no option " + option);
        }
        continue;
      }
      const auto subcommands = listed_subcommands(help);
      if (std::find(subcommands.begin(), subcommands.end(), word) != subcommands.end()) {
        path = path.empty() ? word : path + " " + word;
        help = help_for(path);
        if (help.empty()) found.push_back("`doppel " + path + " --help` failed");
      } else if (path.empty()) {
        found.push_back("doppel has no subcommand " + word);
        return found;
      }
      for (const char* bundled : {"topologies/", "scenarios/", "fixes/", "tests/data/"}) {
        const std::string value = word.substr(word.find('=') + 1);
        if (value.starts_with(bundled) && !fs::exists(fs::path(DOPPEL_SOURCE_DIR) / value)) {
          found.push_back("no file " + value + " in the repository");
        }
      }
    }
    if (path.empty()) found.push_back("no subcommand");
    return found;
  }

 private:
  std::string help_for(const std::string& path) {
    if (const auto cached = helps_.find(path); cached != helps_.end()) return cached->second;
    const auto r = doppel::testing::run_doppel(path + " --help");
    return helps_[path] = r.exit_code == 0 ? r.out : std::string();
  }

  std::map<std::string, std::string> helps_;
};

std::vector<fs::path> tutorial_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(tutorials_dir())) {
    if (entry.path().extension() == ".md") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(TutorialExtraction, FindsDoppelCommandsInShellBlocksOnly) {
  const std::string markdown =
      "```sh\n"
      "export PATH=\"$PWD/build/src/cli:$PATH\"\n"
      "nice -n 10 doppel rehearse scenarios/x.json \\\n"
      "    --no-abort --out prod | head -3\n"
      "build/src/cli/doppel run topologies/a.json --out r  # a comment --json\n"
      "```\n"
      "```\n"
      "doppel run --in-an-output-block\n"
      "```\n";
  const auto commands = extract_commands(markdown, "t.md");
  ASSERT_EQ(commands.size(), 2U);
  EXPECT_EQ(commands[0].line, 3);
  EXPECT_EQ(commands[0].words, (std::vector<std::string>{"rehearse", "scenarios/x.json",
                                                         "--no-abort", "--out", "prod"}));
  EXPECT_EQ(commands[1].words,
            (std::vector<std::string>{"run", "topologies/a.json", "--out", "r"}));
}

TEST(TutorialExtraction, ReportsUnknownOptionsSubcommandsAndMissingFiles) {
  CommandChecker checker;
  const auto check = [&](const std::string& line) {
    const auto commands = extract_commands("```sh\n" + line + "\n```\n", "t.md");
    EXPECT_EQ(commands.size(), 1U) << line;
    return commands.empty() ? std::vector<std::string>{} : checker.problems(commands.front());
  };
  // run has no --jobs; --seed=3 is --seed
  EXPECT_EQ(check("doppel run topologies/online-boutique.json --out r --seed=3 -j 2").size(), 1U);
  EXPECT_TRUE(check("doppel topology validate topologies/online-boutique.json --json").empty());
  EXPECT_EQ(check("doppel run topologies/online-boutique.json --no-such-flag --out r").size(), 1U);
  EXPECT_EQ(check("doppel frobnicate topologies/online-boutique.json").size(), 1U);
  EXPECT_EQ(check("doppel rehearse scenarios/no-such-scenario.json --out r").size(), 1U);
  EXPECT_EQ(check("doppel generate merge a b --out c").size(), 0U);
}

TEST(Tutorials, EveryCommandUsesRealSubcommandsOptionsAndFiles) {
  CommandChecker checker;
  std::size_t commands_seen = 0;
  for (const fs::path& file : tutorial_files()) {
    const auto commands = extract_commands(slurp(file), file.filename().string());
    if (file.filename() != "README.md") {
      EXPECT_FALSE(commands.empty()) << file << " has no doppel command in a ```sh block";
    }
    for (const Command& command : commands) {
      ++commands_seen;
      for (const std::string& problem : checker.problems(command)) {
        ADD_FAILURE() << command.file << ":" << command.line << ": " << problem << "\n  "
                      << command.text;
      }
    }
  }
  EXPECT_GE(commands_seen, 10U);
}

TEST(Tutorials, TheIndexLinksEveryTutorialAndNothingMissing) {
  const std::string index = slurp(tutorials_dir() / "README.md");
  ASSERT_FALSE(index.empty());
  const std::regex local_link(R"(\]\(([a-z0-9-]+\.md)\))");
  for (auto it = std::sregex_iterator(index.begin(), index.end(), local_link);
       it != std::sregex_iterator(); ++it) {
    EXPECT_TRUE(fs::exists(tutorials_dir() / (*it)[1].str()))
        << "docs/tutorials/README.md links " << (*it)[1] << ", which does not exist";
  }
  for (const fs::path& file : tutorial_files()) {
    if (file.filename() == "README.md") continue;
    EXPECT_NE(index.find("](" + file.filename().string() + ")"), std::string::npos)
        << "docs/tutorials/README.md does not link " << file.filename();
  }
}

}  // namespace
