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

// `digits` random lower-case hex digits, not all zero, into *s: 16 from
// each 64-bit draw (one call through BitGenRef per 16 digits, not per
// digit: this runs for every request).
void RandomHex(absl::BitGenRef rng, int digits, std::string* s) {
  static constexpr char kHex[] = "0123456789abcdef";
  s->resize(static_cast<size_t>(digits));
  bool nonzero = false;
  while (!nonzero) {
    uint64_t bits = 0;
    for (size_t i = 0; i < s->size(); ++i) {
      if (i % 16 == 0) bits = absl::Uniform<uint64_t>(rng);
      (*s)[i] = kHex[bits & 0xf];
      bits >>= 4;
      nonzero |= (*s)[i] != '0';
    }
  }
}

// Splits `s` at '-' into at most `max` fields; the number of fields (more
// than max: max + 1).
size_t SplitDash(absl::string_view s, absl::string_view* f, size_t max) {
  size_t n = 0;
  for (;;) {
    const size_t dash = s.find('-');
    if (n == max) return max + 1;
    f[n++] = s.substr(0, dash);
    if (dash == absl::string_view::npos) return n;
    s.remove_prefix(dash + 1);
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

const std::string* Find(const std::vector<std::pair<std::string, std::string>>& headers,
                        absl::string_view name) {
  for (const auto& [n, v] : headers)
    if (absl::EqualsIgnoreCase(n, name)) return &v;
  return nullptr;
}

// Sets header `name` to the concatenation of `parts`: the first one of
// that name is rewritten in place (its memory reused), later ones go.
void Set(std::vector<std::pair<std::string, std::string>>* headers,
         std::vector<std::pair<std::string, std::string>>* spare, absl::string_view name,
         std::initializer_list<absl::string_view> parts) {
  std::string* value = nullptr;
  for (auto& h : *headers) {
    if (!absl::EqualsIgnoreCase(h.first, name)) continue;
    if (!value) value = &h.second;
  }
  if (value) {
    // Others of the name (a client that sent two) go.
    bool first = true;
    headers->erase(std::remove_if(headers->begin(), headers->end(),
                                  [&](const auto& h) {
                                    if (!absl::EqualsIgnoreCase(h.first, name)) return false;
                                    if (first) return first = false;
                                    return true;
                                  }),
                   headers->end());
    for (auto& h : *headers)
      if (absl::EqualsIgnoreCase(h.first, name)) value = &h.second;
  } else {
    if (spare && !spare->empty()) {
      headers->push_back(std::move(spare->back()));
      spare->pop_back();
    } else {
      headers->emplace_back();
    }
    headers->back().first.assign(name.data(), name.size());
    value = &headers->back().second;
  }
  size_t size = 0;
  for (absl::string_view p : parts) size += p.size();
  value->clear();
  value->reserve(size);  // one allocation at most
  for (absl::string_view p : parts) value->append(p.data(), p.size());
}

}  // namespace

bool ParseTraceparent(absl::string_view value, std::string* trace_id, std::string* span_id,
                      bool* sampled) {
  // Versions after 00 may add fields: the first four are read.
  absl::string_view f[4];
  const size_t n = SplitDash(value, f, 4);
  if (n < 4 || f[0].size() != 2 || f[0] == "ff") return false;
  if (!absl::ascii_isxdigit(f[0][0]) || !absl::ascii_isxdigit(f[0][1])) return false;
  if (f[0] == "00" && n != 4) return false;
  if (!IsLowerHex(f[1], 32) || !IsLowerHex(f[2], 16)) return false;
  if (f[3].size() != 2 || HexDigit(f[3][0]) < 0 || HexDigit(f[3][1]) < 0) return false;
  trace_id->assign(f[1].data(), f[1].size());
  span_id->assign(f[2].data(), f[2].size());
  *sampled = (HexDigit(f[3][1]) & 1) != 0;
  return true;
}

HopSpan StartHop(const std::vector<std::pair<std::string, std::string>>& headers,
                 absl::BitGenRef rng) {
  HopSpan s;
  StartHop(headers, rng, &s);
  return s;
}

void StartHop(const std::vector<std::pair<std::string, std::string>>& headers, absl::BitGenRef rng,
              HopSpan* span) {
  HopSpan& s = *span;
  s.trace_id.clear();
  s.parent_id.clear();
  s.sampled = true;
  s.w3c = s.b3_single = s.b3_multi = false;
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
    RandomHex(rng, 32, &s.trace_id);
    s.parent_id.clear();
    s.sampled = true;
  }
  RandomHex(rng, 16, &s.span_id);
}

void Propagate(const HopSpan& span, std::vector<std::pair<std::string, std::string>>* headers,
               std::vector<std::pair<std::string, std::string>>* spare) {
  Set(headers, spare, "traceparent",
      {"00-", span.trace_id, "-", span.span_id, span.sampled ? "-01" : "-00"});
  if (span.b3_single) {
    const bool parent = !span.parent_id.empty();
    Set(headers, spare, "b3",
        {span.trace_id, "-", span.span_id, "-", span.sampled ? "1" : "0", parent ? "-" : "",
         span.parent_id});
  }
  if (span.b3_multi) {
    Set(headers, spare, "X-B3-TraceId", {span.trace_id});
    Set(headers, spare, "X-B3-SpanId", {span.span_id});
    if (!span.parent_id.empty()) Set(headers, spare, "X-B3-ParentSpanId", {span.parent_id});
    Set(headers, spare, "X-B3-Sampled", {span.sampled ? "1" : "0"});
  }
}

}  // namespace shunt::proxy::http
