#include "agent/model/l7_settings.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace shunt::model {
namespace {

constexpr int64_t kHourMs = 3'600'000;

struct Reporter {
  const Service& svc;
  std::vector<Problem>* problems;
  void operator()(const std::string& key, const std::string& value, const std::string& why) {
    Problem p;
    p.ref.kind = "Service";
    p.ref.namespace_ = svc.namespace_;
    p.ref.name = svc.name;
    p.reason = absl::StrCat("metadata.annotations.", key, ": '", value.substr(0, 64), "' ", why,
                            "; the default applies");
    problems->push_back(std::move(p));
  }
};

std::optional<int> IntIn(const std::string& v, int lo, int hi) {
  int n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < lo || n > hi) return std::nullopt;
  return n;
}

}  // namespace

std::optional<int64_t> ParseDurationMs(const std::string& text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  double scale = 0;
  if (absl::ConsumeSuffix(&s, "ms")) {
    scale = 1;
  } else if (absl::ConsumeSuffix(&s, "s")) {
    scale = 1000;
  } else if (absl::ConsumeSuffix(&s, "m")) {
    scale = 60000;
  } else if (absl::ConsumeSuffix(&s, "h")) {
    scale = kHourMs;
  } else {
    return std::nullopt;
  }
  double n = 0;
  if (s.empty() || !absl::SimpleAtod(s, &n) || !std::isfinite(n) || n < 0) return std::nullopt;
  // Digits only, as Kubernetes writes them (no "1e3s", no "+2s", no "inf").
  for (char c : s)
    if (!((c >= '0' && c <= '9') || c == '.')) return std::nullopt;
  return static_cast<int64_t>(std::llround(n * scale));
}

L7Settings ParseL7Settings(const Service& svc, std::vector<Problem>* problems) {
  L7Settings s;
  Reporter bad{svc, problems};
  auto get = [&](const char* name) -> const std::string* {
    auto it = svc.annotations.find(absl::StrCat(kL7AnnotationPrefix, name));
    if (it == svc.annotations.end()) return nullptr;
    s.enabled = true;
    return &it->second;
  };
  const std::string key = kL7AnnotationPrefix;
  if (const std::string* v = get("l7"); v && *v != "http")
    bad(key + "l7", *v, "is not http (the one L7 protocol this version judges)");
  if (const std::string* v = get("timeout")) {
    auto ms = ParseDurationMs(*v);
    if (!ms || *ms <= 0 || *ms > kHourMs)
      bad(key + "timeout", *v, "is not a duration between 1ms and 1h (e.g. 2s, 500ms)");
    else
      s.timeout_ms = *ms;
  }
  if (const std::string* v = get("retries")) {
    if (auto n = IntIn(*v, 0, 10))
      s.retries = *n;
    else
      bad(key + "retries", *v, "is not a whole number from 0 to 10");
  }
  if (const std::string* v = get("retry-budget")) {
    absl::string_view t = absl::StripAsciiWhitespace(*v);
    double pct = 0;
    if (absl::ConsumeSuffix(&t, "%") && absl::SimpleAtod(t, &pct) && pct >= 0 && pct <= 100)
      s.retry_budget = pct / 100;
    else
      bad(key + "retry-budget", *v, "is not a percentage from 0% to 100%");
  }
  if (const std::string* v = get("retry-on")) {
    L7Settings on = s;
    on.retry_on_5xx = on.retry_on_connect_failure = on.retry_on_reset = false;
    bool ok = true;
    for (absl::string_view t : absl::StrSplit(*v, ',')) {
      t = absl::StripAsciiWhitespace(t);
      if (t == "5xx") {
        on.retry_on_5xx = true;
      } else if (t == "connect-failure") {
        on.retry_on_connect_failure = true;
      } else if (t == "reset") {
        on.retry_on_reset = true;
      } else {
        ok = false;
      }
    }
    if (ok) {
      s = on;
    } else {
      bad(key + "retry-on", *v, "is not a list of 5xx, connect-failure, reset");
    }
  }
  if (const std::string* v = get("outlier-consecutive-failures")) {
    if (auto n = IntIn(*v, 1, 1000))
      s.outlier_consecutive_failures = *n;
    else
      bad(key + "outlier-consecutive-failures", *v, "is not a whole number from 1 to 1000");
  }
  if (const std::string* v = get("outlier-ejection")) {
    auto ms = ParseDurationMs(*v);
    if (!ms || *ms < 1000 || *ms > kHourMs)
      bad(key + "outlier-ejection", *v, "is not a duration between 1s and 1h");
    else
      s.outlier_ejection_ms = *ms;
  }
  return s;
}

}  // namespace shunt::model
