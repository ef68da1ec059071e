// Golden tests of broken topologies: each tests/data/bad/NAME.json holds one mistake, and
// NAME.expected the exact message after "FILE: " (place and explanation).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::model {
namespace {

const std::filesystem::path kBadDir = std::filesystem::path(DOPPEL_SOURCE_DIR) / "tests/data/bad";

std::vector<std::string> bad_file_stems() {
  std::vector<std::string> stems;
  for (const auto& entry : std::filesystem::directory_iterator(kBadDir)) {
    if (entry.path().extension() == ".json") stems.push_back(entry.path().stem().string());
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

std::string read_expected(const std::string& stem) {
  std::ifstream in(kBadDir / (stem + ".expected"));
  std::string line;
  std::getline(in, line);
  return line;
}

class BadTopology : public testing::TestWithParam<std::string> {};

TEST_P(BadTopology, ReportsTheExactMessage) {
  const std::string stem = GetParam();
  const std::filesystem::path file = kBadDir / (stem + ".json");
  const std::string expected = read_expected(stem);
  ASSERT_FALSE(expected.empty()) << "missing or empty " << stem << ".expected";
  try {
    load_topology(file);
    FAIL() << stem << ".json loaded without error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + ": " + expected);
    EXPECT_EQ(e.file(), file.string());
    // The place is structured too, not only baked into the text.
    const std::string place = e.where().to_string();
    if (!place.empty()) {
      EXPECT_EQ(expected.rfind(place + ": ", 0), 0u) << place;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadTopology, testing::ValuesIn(bad_file_stems()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(BadTopologyCorpus, EveryFileHasAnExpectedMessage) {
  const auto stems = bad_file_stems();
  EXPECT_GE(stems.size(), 15u);
  for (const auto& stem : stems) {
    EXPECT_TRUE(std::filesystem::exists(kBadDir / (stem + ".expected"))) << stem;
  }
}

TEST(BadTopologyCorpus, MalformedJsonCarriesLineAndColumn) {
  try {
    load_topology(kBadDir / "malformed-json.json");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where().line, 3);
    EXPECT_EQ(e.where().column, 18);
    EXPECT_TRUE(e.where().json_pointer.empty());
  }
}

std::string error_of(const std::string& text) {
  try {
    parse_topology_text(text, "inline.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(TopologyErrors, PointerTokensAreEscaped) {
  EXPECT_EQ(error_of(R"({"doppel": "topology/v1", "name": "x", "a/b~c": 1})"),
            "inline.json: /a~1b~0c: unknown field \"a/b~c\" (allowed here: doppel, name, "
            "description, zones, network, services, edge_defaults, edges, datastores, gateway, "
            "workload, slos)");
}

TEST(TopologyErrors, TransposedLettersAreOneEdit) {
  EXPECT_EQ(error_of(R"({"doppel": "topology/v1", "nmae": "x"})"),
            "inline.json: /nmae: unknown field \"nmae\" (did you mean \"name\"?)");
}

TEST(TopologyErrors, UnknownKeysAreReportedBeforeMissingOnes) {
  // A misspelt required field is one mistake: report the typo, not the absence.
  EXPECT_EQ(error_of(R"({"doppel": "topology/v1", "name": "x", "zone": []})"),
            "inline.json: /zone: unknown field \"zone\" (did you mean \"zones\"?)");
}

TEST(TopologyErrors, HugeIntegersAreRejectedNotWrapped) {
  EXPECT_EQ(error_of(R"({"doppel": "topology/v1", "name": "x",
                         "zones": [{"name": "z", "hosts": [{"name": "h", "cores": 4294967297}]}],
                         "services": []})"),
            "inline.json: /zones/0/hosts/0/cores: integer 4294967297 is out of range");
}

TEST(TopologyErrors, EmptyInputIsMalformed) {
  EXPECT_EQ(error_of(""),
            "inline.json: line 1, column 1: malformed JSON: syntax error while parsing value - "
            "unexpected end of input; expected '[', '{', or a literal");
}

TEST(TopologyWarnings, UnusedPartsAreReported) {
  std::vector<std::string> warnings;
  parse_topology_text(R"({
    "doppel": "topology/v1", "name": "w",
    "zones": [{"name": "z", "hosts": [{"name": "h"}]}],
    "services": [
      {"name": "front", "placement": [{"zone": "z"}], "operations": [{"name": "op"}]},
      {"name": "lonely", "placement": [{"zone": "z"}], "operations": [{"name": "op"}]}
    ],
    "datastores": [{"name": "db", "primary": {"zone": "z"}, "queries": [{"name": "q"}]}],
    "edges": [{"from": "front", "to": "db", "timeout_ms": 10}],
    "gateway": {"routes": [{"name": "r", "to": {"service": "front", "operation": "op"}}]},
    "slos": [{"route": "r"}]
  })",
                      "w.json", &warnings);
  EXPECT_EQ(warnings,
            (std::vector<std::string>{
                "/slos/0: this SLO has neither latency bounds nor max_error_rate: it always holds",
                "/services/1: service \"lonely\" is never called: no route and no operation "
                "leads to it",
                "/datastores/0: datastore \"db\" is never queried",
                "/edges/0: no operation of \"front\" calls \"db\": this edge policy is never used",
            }));
}

}  // namespace
}  // namespace doppel::model
