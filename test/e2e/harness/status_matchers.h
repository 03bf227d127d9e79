// absl::Status assertions for GoogleTest (Abseil 2022 ships none).
#pragma once

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shunt::testing_internal {
inline const absl::Status& AsStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace shunt::testing_internal

#define SHUNT_TM_CONCAT_(a, b) a##b
#define SHUNT_TM_CONCAT(a, b) SHUNT_TM_CONCAT_(a, b)

#define ASSERT_OK(expr)                                                                 \
  do {                                                                                  \
    const auto& shunt_tm_v_ = (expr);                                                   \
    const absl::Status& shunt_tm_s_ = ::shunt::testing_internal::AsStatus(shunt_tm_v_); \
    ASSERT_TRUE(shunt_tm_s_.ok()) << #expr << ": " << shunt_tm_s_;                      \
  } while (0)

#define EXPECT_OK(expr)                                                                 \
  do {                                                                                  \
    const auto& shunt_tm_v_ = (expr);                                                   \
    const absl::Status& shunt_tm_s_ = ::shunt::testing_internal::AsStatus(shunt_tm_v_); \
    EXPECT_TRUE(shunt_tm_s_.ok()) << #expr << ": " << shunt_tm_s_;                      \
  } while (0)

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(SHUNT_TM_CONCAT(shunt_tm_or_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(var, lhs, expr)        \
  auto var = (expr);                                      \
  ASSERT_TRUE(var.ok()) << #expr << ": " << var.status(); \
  lhs = std::move(var).value()
