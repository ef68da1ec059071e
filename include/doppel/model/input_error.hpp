// The one error type for input a user can get wrong: it names the file and the place in it.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace doppel {

// Where in a file: a JSON pointer ("/services/3/operations/0"), a line (and column), or a
// byte offset, whichever the reader knows.
struct InputLocation {
  std::string json_pointer;
  std::optional<std::int64_t> line;
  std::optional<std::int64_t> column;
  std::optional<std::int64_t> byte_offset;

  std::string to_string() const;  // "/a/0", "line 3, column 7", "byte 1234"; "" if none
};

// Thrown at the boundary (parsers, loaders, CLI); the CLI prints what() and exits with 2.
// what() reads "FILE: PLACE: MESSAGE" (the place is left out when unknown).
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, InputLocation where, std::string message);

  const std::string& file() const { return file_; }
  const InputLocation& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  InputLocation where_;
  std::string message_;
};

}  // namespace doppel
