// Sequential byte streams the readers pull from: a file, memory, or zstd decompression of
// another stream. Reading in chunks is what keeps a 10 GB trace file out of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace doppel::ingest::detail {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `capacity` bytes into `out`; 0 only at the end of the stream.
  virtual std::size_t read(char* out, std::size_t capacity) = 0;
};

class FileSource final : public ByteSource {
 public:
  // Throws InputError when the file cannot be opened.
  FileSource(const std::filesystem::path& path, std::string name);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  std::size_t read(char* out, std::size_t capacity) override;

 private:
  std::FILE* file_ = nullptr;
  std::string name_;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  std::size_t read(char* out, std::size_t capacity) override;

 private:
  std::string_view bytes_;
};

// Gives `prefix` first, then the rest of `rest`: lets the caller look at the first bytes
// (magic numbers) without losing them.
class PrefixedSource final : public ByteSource {
 public:
  PrefixedSource(std::string prefix, ByteSource& rest) : prefix_(std::move(prefix)), rest_(rest) {}
  std::size_t read(char* out, std::size_t capacity) override;

 private:
  std::string prefix_;
  std::size_t prefix_used_ = 0;
  ByteSource& rest_;
};

// Streaming zstd decompression (ZSTD_decompressStream), concatenated frames included.
class ZstdSource final : public ByteSource {
 public:
  ZstdSource(ByteSource& compressed, std::string name);
  ~ZstdSource() override;
  ZstdSource(const ZstdSource&) = delete;
  ZstdSource& operator=(const ZstdSource&) = delete;
  std::size_t read(char* out, std::size_t capacity) override;

 private:
  struct State;
  ByteSource& compressed_;
  std::string name_;
  std::unique_ptr<State> state_;
};

inline bool starts_with_zstd_magic(std::string_view bytes) {
  return bytes.size() >= 4 && static_cast<unsigned char>(bytes[0]) == 0x28 &&
         static_cast<unsigned char>(bytes[1]) == 0xB5 &&
         static_cast<unsigned char>(bytes[2]) == 0x2F &&
         static_cast<unsigned char>(bytes[3]) == 0xFD;
}

}  // namespace doppel::ingest::detail
