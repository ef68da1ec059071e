// Suggestions for misspelt names ("did you mean ...?"), shared by the model's readers.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace doppel::model::detail {

// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, because
// swapped letters ("nmae") are the commonest typo and should cost one edit, not two.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `typed`, if it is close enough to be a plausible typo; ties go to
// the earliest candidate so suggestions follow file order.
std::optional<std::string> closest_match(std::string_view typed,
                                         const std::vector<std::string>& candidates);

// " (did you mean "x"?)" or "".
std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates);

}  // namespace doppel::model::detail
