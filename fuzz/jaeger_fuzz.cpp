// libFuzzer target for the jaeger reader; also built as a replay executable (replay_main.cpp).
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return doppel::fuzz::read_as(doppel::ingest::TraceFormat::jaeger_ui_json, data, size);
}
