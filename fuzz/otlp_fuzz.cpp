// libFuzzer target for the otlp reader; also built as a replay executable (replay_main.cpp).
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return doppel::fuzz::read_as(doppel::ingest::TraceFormat::otlp_json, data, size);
}
