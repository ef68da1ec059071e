#include "byte_source.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <zstd.h>

#include "doppel/model/input_error.hpp"

namespace doppel::ingest::detail {

FileSource::FileSource(const std::filesystem::path& path, std::string name)
    : file_(std::fopen(path.c_str(), "rb")), name_(std::move(name)) {
  if (!file_) throw InputError(name_, {}, std::string("cannot open: ") + std::strerror(errno));
}

FileSource::~FileSource() {
  if (file_) std::fclose(file_);
}

std::size_t FileSource::read(char* out, std::size_t capacity) {
  const std::size_t count = std::fread(out, 1, capacity, file_);
  if (count == 0 && std::ferror(file_)) {
    throw InputError(name_, {}, std::string("read error: ") + std::strerror(errno));
  }
  return count;
}

std::size_t MemorySource::read(char* out, std::size_t capacity) {
  const std::size_t count = std::min(capacity, bytes_.size());
  std::memcpy(out, bytes_.data(), count);
  bytes_.remove_prefix(count);
  return count;
}

std::size_t PrefixedSource::read(char* out, std::size_t capacity) {
  if (prefix_used_ < prefix_.size()) {
    const std::size_t count = std::min(capacity, prefix_.size() - prefix_used_);
    std::memcpy(out, prefix_.data() + prefix_used_, count);
    prefix_used_ += count;
    return count;
  }
  return rest_.read(out, capacity);
}

struct ZstdSource::State {
  ZSTD_DStream* stream = ZSTD_createDStream();
  std::vector<char> input = std::vector<char>(ZSTD_DStreamInSize());
  ZSTD_inBuffer in{input.data(), 0, 0};
  std::uint64_t compressed_offset = 0;  // of in.src[0]
  bool input_ended = false;
  bool output_pending = false;  // the last call filled the output: more may be buffered
  std::size_t last_hint = 0;    // 0 once a frame is complete

  ~State() { ZSTD_freeDStream(stream); }
};

ZstdSource::ZstdSource(ByteSource& compressed, std::string name)
    : compressed_(compressed), name_(std::move(name)), state_(std::make_unique<State>()) {
  if (!state_->stream) throw InputError(name_, {}, "zstd: cannot create a decompression stream");
  ZSTD_initDStream(state_->stream);
}

ZstdSource::~ZstdSource() = default;

std::size_t ZstdSource::read(char* out, std::size_t capacity) {
  if (capacity == 0) return 0;  // no room, no progress: never loop on it
  State& state = *state_;
  ZSTD_outBuffer output{out, capacity, 0};
  while (output.pos == 0) {
    const bool input_used_up = state.in.pos == state.in.size;
    if (input_used_up && !state.output_pending) {
      if (!state.input_ended) {
        state.compressed_offset += state.in.size;
        const std::size_t count = compressed_.read(state.input.data(), state.input.size());
        state.in = ZSTD_inBuffer{state.input.data(), count, 0};
        if (count == 0) state.input_ended = true;
      }
      if (state.input_ended) {
        if (state.last_hint != 0) {
          InputLocation where;
          where.byte_offset = static_cast<std::int64_t>(state.compressed_offset);
          throw InputError(name_, where,
                           "truncated zstd stream: the compressed data ends inside a frame");
        }
        return 0;
      }
    }
    const std::size_t hint = ZSTD_decompressStream(state.stream, &output, &state.in);
    if (ZSTD_isError(hint)) {
      InputLocation where;
      where.byte_offset = static_cast<std::int64_t>(state.compressed_offset + state.in.pos);
      throw InputError(
          name_, where,
          std::string("corrupt zstd data (in the compressed file): ") + ZSTD_getErrorName(hint));
    }
    state.last_hint = hint;
    state.output_pending = output.pos == output.size;
  }
  return output.pos;
}

}  // namespace doppel::ingest::detail
