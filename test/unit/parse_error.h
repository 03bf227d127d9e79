// What a failed parse said, for the model tests: its message, "OK" if it
// parsed; the status code is checked too.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace shunt::testing {

template <typename T>
std::string ErrorOf(const absl::StatusOr<T>& s,
                    absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  if (s.ok()) return "OK";
  EXPECT_EQ(s.status().code(), code) << s.status();
  return std::string(s.status().message());
}

}  // namespace shunt::testing
