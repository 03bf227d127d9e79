// Lets fmt/spdlog print absl::string_view (Debian's Abseil 2022 has its own
// string_view type, not std::string_view) and absl::Status.
#pragma once

#include <fmt/format.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

template <>
struct fmt::formatter<absl::Status> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(const absl::Status& s, Ctx& ctx) const {
    absl::string_view m = s.message();
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(m.data(), m.size()), ctx);
  }
};
