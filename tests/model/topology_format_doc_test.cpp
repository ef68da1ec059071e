// docs/topology-format.md must not drift from the loader: its example loads, and every error
// message it quotes is the exact message of a file in the broken-topology corpus.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "doppel/model/topology_loader.hpp"

namespace doppel::model {
namespace {

const std::filesystem::path kSource(DOPPEL_SOURCE_DIR);

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The body of the first fenced block of `language` after `heading`.
std::string fenced_block_after(const std::string& doc, const std::string& heading,
                               const std::string& language) {
  const auto at = doc.find(heading);
  if (at == std::string::npos) return {};
  const std::string fence = "```" + language + "\n";
  const auto start = doc.find(fence, at);
  if (start == std::string::npos) return {};
  const auto end = doc.find("\n```", start + fence.size());
  return doc.substr(start + fence.size(), end - start - fence.size());
}

TEST(TopologyFormatDoc, ExampleLoadsWithoutWarnings) {
  const std::string doc = read_text(kSource / "docs/topology-format.md");
  const std::string example = fenced_block_after(doc, "\n## Example", "json");
  ASSERT_FALSE(example.empty());
  std::vector<std::string> warnings;
  const Topology t = parse_topology_text(example, "docs example", &warnings);
  EXPECT_EQ(t.name, "hello");
  EXPECT_EQ(warnings, std::vector<std::string>{});
}

TEST(TopologyFormatDoc, QuotedErrorsAreRealMessages) {
  const std::string doc = read_text(kSource / "docs/topology-format.md");
  const std::string block = fenced_block_after(doc, "\n## Error messages", "");
  ASSERT_FALSE(block.empty());
  std::set<std::string> corpus;
  for (const auto& entry : std::filesystem::directory_iterator(kSource / "tests/data/bad")) {
    if (entry.path().extension() != ".expected") continue;
    std::string line;
    std::ifstream in(entry.path());
    std::getline(in, line);
    corpus.insert(line);
  }
  std::istringstream lines(block);
  std::string line;
  int quoted = 0;
  while (std::getline(lines, line)) {
    const std::string prefix = "x.json: ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    EXPECT_TRUE(corpus.contains(line.substr(prefix.size()))) << line;
    ++quoted;
  }
  EXPECT_GE(quoted, 10);
}

}  // namespace
}  // namespace doppel::model
