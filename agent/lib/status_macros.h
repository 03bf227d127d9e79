// Propagation macros for absl::Status / absl::StatusOr (Abseil 2022 has none).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SHUNT_STATUS_CONCAT_INNER(a, b) a##b
#define SHUNT_STATUS_CONCAT(a, b) SHUNT_STATUS_CONCAT_INNER(a, b)

#define SHUNT_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status shunt_status_ = (expr);         \
    if (!shunt_status_.ok()) return shunt_status_; \
  } while (0)

#define SHUNT_ASSIGN_OR_RETURN(lhs, expr) \
  SHUNT_ASSIGN_OR_RETURN_IMPL(SHUNT_STATUS_CONCAT(shunt_statusor_, __LINE__), lhs, expr)

#define SHUNT_ASSIGN_OR_RETURN_IMPL(var, lhs, expr) \
  auto var = (expr);                                \
  if (!var.ok()) return std::move(var).status();    \
  lhs = std::move(var).value()
