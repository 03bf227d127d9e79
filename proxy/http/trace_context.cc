#include "proxy/http/trace_context.h"

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace shunt::proxy::http {
namespace {

bool IsLowerHex(absl::string_view s, size_t n) {
  if (s.size() != n) return false;
  bool nonzero = false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    nonzero |= c != '0';
  }
  return nonzero;
}

std::string RandomHex(absl::BitGenRef rng, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(static_cast<size_t>(digits), '0');
  bool nonzero = false;
  while (!nonzero) {
    for (char& c : s) {
      c = kHex[absl::Uniform(rng, 0, 16)];
      nonzero |= c != '0';
    }
  }
  return s;
}

const std::string* Find(const std::vector<std::pair<std::string, std::string>>& headers,
                        absl::string_view name) {
  for (const auto& [n, v] : headers)
    if (absl::EqualsIgnoreCase(n, name)) return &v;
  return nullptr;
}

void Set(std::vector<std::pair<std::string, std::string>>* headers, absl::string_view name,
         std::string value) {
  headers->erase(
      std::remove_if(headers->begin(), headers->end(),
                     [&](const auto& h) { return absl::EqualsIgnoreCase(h.first, name); }),
      headers->end());
  headers->emplace_back(std::string(name), std::move(value));
}

}  // namespace

bool ParseTraceparent(absl::string_view value, std::string* trace_id, std::string* span_id,
                      bool* sampled) {
  std::vector<absl::string_view> f = absl::StrSplit(value, '-');
  if (f.size() < 4 || f[0].size() != 2 || f[0] == "ff") return false;
  if (!absl::ascii_isxdigit(f[0][0]) || !absl::ascii_isxdigit(f[0][1])) return false;
  if (f[0] == "00" && f.size() != 4) return false;
  if (!IsLowerHex(f[1], 32) || !IsLowerHex(f[2], 16)) return false;
  if (f[3].size() != 2 || !absl::ascii_isxdigit(f[3][0]) || !absl::ascii_isxdigit(f[3][1]))
    return false;
  *trace_id = std::string(f[1]);
  *span_id = std::string(f[2]);
  const int flags = std::stoi(std::string(f[3]), nullptr, 16);
  *sampled = (flags & 1) != 0;
  return true;
}

HopSpan StartHop(const std::vector<std::pair<std::string, std::string>>& headers,
                 absl::BitGenRef rng) {
  HopSpan s;
  if (const std::string* tp = Find(headers, "traceparent")) {
    s.w3c =
        ParseTraceparent(absl::StripAsciiWhitespace(*tp), &s.trace_id, &s.parent_id, &s.sampled);
  }
  if (const std::string* b3 = Find(headers, "b3")) {
    // "traceid-spanid[-sampled[-parentspanid]]"; a 16-digit trace id is
    // left-padded to 32 as W3C needs.
    std::vector<absl::string_view> f = absl::StrSplit(absl::StripAsciiWhitespace(*b3), '-');
    if (f.size() >= 2 && (IsLowerHex(f[0], 32) || IsLowerHex(f[0], 16)) && IsLowerHex(f[1], 16)) {
      s.b3_single = true;
      if (!s.w3c) {
        s.trace_id =
            f[0].size() == 16 ? absl::StrCat(std::string(16, '0'), f[0]) : std::string(f[0]);
        s.parent_id = std::string(f[1]);
        s.sampled = f.size() < 3 || f[2] == "1" || f[2] == "d";
      }
    }
  }
  const std::string* xt = Find(headers, "x-b3-traceid");
  const std::string* xs = Find(headers, "x-b3-spanid");
  if (xt && xs && (IsLowerHex(*xt, 32) || IsLowerHex(*xt, 16)) && IsLowerHex(*xs, 16)) {
    s.b3_multi = true;
    if (!s.w3c && !s.b3_single) {
      s.trace_id = xt->size() == 16 ? absl::StrCat(std::string(16, '0'), *xt) : *xt;
      s.parent_id = *xs;
      const std::string* sampled = Find(headers, "x-b3-sampled");
      s.sampled = !sampled || *sampled == "1" || *sampled == "true";
    }
  }
  if (s.trace_id.empty()) {
    s.trace_id = RandomHex(rng, 32);
    s.parent_id.clear();
    s.sampled = true;
  }
  s.span_id = RandomHex(rng, 16);
  return s;
}

void Propagate(const HopSpan& span, std::vector<std::pair<std::string, std::string>>* headers) {
  Set(headers, "traceparent",
      absl::StrCat("00-", span.trace_id, "-", span.span_id, span.sampled ? "-01" : "-00"));
  if (span.b3_single) {
    std::string v = absl::StrCat(span.trace_id, "-", span.span_id, "-", span.sampled ? "1" : "0");
    if (!span.parent_id.empty()) absl::StrAppend(&v, "-", span.parent_id);
    Set(headers, "b3", std::move(v));
  }
  if (span.b3_multi) {
    Set(headers, "X-B3-TraceId", span.trace_id);
    Set(headers, "X-B3-SpanId", span.span_id);
    if (!span.parent_id.empty()) Set(headers, "X-B3-ParentSpanId", span.parent_id);
    Set(headers, "X-B3-Sampled", span.sampled ? "1" : "0");
  }
}

}  // namespace shunt::proxy::http
