// libFuzzer target for the zipkin reader; also built as a replay executable (replay_main.cpp).
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return doppel::fuzz::read_as(doppel::ingest::TraceFormat::zipkin_v2_json, data, size);
}
