// The bad-scenario corpus: each file in tests/data/scenarios/bad/ is rejected with exactly
// the place and message in its .expected file ("POINTER<TAB>MESSAGE").
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"

namespace doppel::faults {
namespace {

const std::filesystem::path kBad =
    std::filesystem::path(DOPPEL_SOURCE_DIR) / "tests/data/scenarios/bad";

std::vector<std::filesystem::path> bad_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(kBad)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  std::string out = text.str();
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST(BadScenarios, CorpusHasAtLeastEightFiles) {
  EXPECT_GE(bad_files().size(), 8u);
}

TEST(BadScenarios, EachIsRejectedWithItsGoldenPlaceAndMessage) {
  for (const auto& file : bad_files()) {
    SCOPED_TRACE(file.filename().string());
    std::string actual = "(loaded without error)";
    try {
      (void)load_scenario(file);
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), file.string());
      actual = e.where().json_pointer + "\t" + e.message();
    }
    auto expected_file = file;
    expected_file.replace_extension(".expected");
    if (std::getenv("DOPPEL_WRITE_GOLDEN") != nullptr) {
      std::ofstream(expected_file) << actual << "\n";
    }
    EXPECT_EQ(actual, read_text(expected_file));
  }
}

}  // namespace
}  // namespace doppel::faults
