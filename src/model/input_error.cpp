#include "doppel/model/input_error.hpp"

#include <fmt/format.h>

namespace doppel {

std::string InputLocation::to_string() const {
  if (!json_pointer.empty()) return json_pointer;
  if (line && column) return fmt::format("line {}, column {}", *line, *column);
  if (line) return fmt::format("line {}", *line);
  if (byte_offset) return fmt::format("byte {}", *byte_offset);
  return {};
}

namespace {
std::string compose(const std::string& file, const InputLocation& where,
                    const std::string& message) {
  const std::string place = where.to_string();
  if (place.empty()) return fmt::format("{}: {}", file, message);
  return fmt::format("{}: {}: {}", file, place, message);
}
}  // namespace

InputError::InputError(std::string file, InputLocation where, std::string message)
    : std::runtime_error(compose(file, where, message)),
      file_(std::move(file)),
      where_(std::move(where)),
      message_(std::move(message)) {}

}  // namespace doppel
