#include "proxy/http/route_matcher.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "re2/set.h"

namespace shunt::proxy::http {
namespace {

constexpr const char* kMethods[] = {"GET",     "HEAD",    "PUT",   "POST", "DELETE",
                                    "CONNECT", "OPTIONS", "TRACE", "PATCH"};
constexpr uint32_t kAnyMethod = ~uint32_t{0};

RE2::Options Quiet() {
  RE2::Options o;
  o.set_log_errors(false);
  return o;
}

}  // namespace

uint32_t MethodBit(absl::string_view method) {
  for (size_t i = 0; i < std::size(kMethods); ++i)
    if (method == kMethods[i]) return uint32_t{1} << i;
  return 0;
}

// RE2::Set::Match allocates its match list on every call: with few path
// regexes, each is matched on its own instead (no allocation per request;
// shunt-l7-alloc-bench), and the set serves the many.
constexpr size_t kFewPaths = 16;

struct RouteMatcher::PathSet {
  RE2::Set set{Quiet(), RE2::ANCHOR_BOTH};
  std::vector<std::string> patterns;       // by set index
  std::vector<std::unique_ptr<RE2>> each;  // by set index, when few
};

RouteMatcher::RouteMatcher() : paths_(std::make_unique<PathSet>()) {}
RouteMatcher::~RouteMatcher() = default;

absl::StatusOr<std::unique_ptr<RouteMatcher>> RouteMatcher::Compile(
    const std::vector<model::HttpRouteGroup>& groups) {
  std::unique_ptr<RouteMatcher> m(new RouteMatcher());
  for (const model::HttpRouteGroup& g : groups) {
    for (const model::HttpMatch& hm : g.matches) {
      const std::string where =
          absl::StrCat("routes: HTTPRouteGroup ", g.Key(), " match '", hm.name, "'");
      Compiled c;
      c.methods = hm.methods.empty() ? kAnyMethod : 0;
      for (const std::string& method : hm.methods) {
        if (method == "*") {
          c.methods = kAnyMethod;
          continue;
        }
        const uint32_t bit = MethodBit(method);
        if (bit == 0)
          return absl::InvalidArgumentError(absl::StrCat(where, ": unknown method '", method, "'"));
        c.methods |= bit;
      }
      for (const auto& [name, regex] : hm.headers) {
        auto re = std::make_unique<RE2>(regex, Quiet());
        if (!re->ok())
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": header '", name, "' regex '", regex, "': ", re->error()));
        c.headers.push_back({absl::AsciiStrToLower(name), std::move(re)});
      }
      const int index = static_cast<int>(m->routes_.size());
      if (hm.path_regex.empty()) {
        c.any_path = true;
        m->any_path_routes_.push_back(index);
      } else {
        std::string error;
        if (m->paths_->set.Add(hm.path_regex, &error) < 0)
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": pathRegex '", hm.path_regex, "': ", error));
        m->paths_->patterns.push_back(hm.path_regex);
        m->path_routes_.push_back(index);
      }
      m->routes_.push_back({g.Key(), hm.name, absl::StrCat(g.Key(), "#", hm.name)});
      m->compiled_.push_back(std::move(c));
    }
  }
  if (!m->path_routes_.empty() && !m->paths_->set.Compile())
    return absl::ResourceExhaustedError(
        "routes: the path regexes of all HTTPRouteGroups together are too large for RE2");
  if (m->paths_->patterns.size() <= kFewPaths) {
    for (const std::string& p : m->paths_->patterns) {
      auto re = std::make_unique<RE2>(p, Quiet());
      if (!re->ok()) {  // the set took it: not expected; the set then serves
        m->paths_->each.clear();
        break;
      }
      m->paths_->each.push_back(std::move(re));
    }
  }
  return m;
}

bool RouteMatcher::MethodAndHeadersMatch(const RequestView& r, const Compiled& c) const {
  if (c.methods != kAnyMethod && !(c.methods & MethodBit(r.method))) return false;
  for (const HeaderRule& rule : c.headers) {
    // Every value of the header, joined by "," (as a proxy folds them); a
    // header sent once, the usual case, is judged in place, with no copy.
    absl::string_view only;
    std::string joined;
    int found = 0;
    for (const auto& [name, value] : r.headers) {
      if (!absl::EqualsIgnoreCase(name, rule.name)) continue;
      if (found == 1) joined.assign(only.data(), only.size());
      if (found >= 1) {
        joined.push_back(',');
        joined.append(value.data(), value.size());
      }
      only = value;
      ++found;
    }
    if (found == 0) return false;
    const absl::string_view v = found == 1 ? only : absl::string_view(joined);
    if (!RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *rule.value)) return false;
  }
  return true;
}

void RouteMatcher::Match(const RequestView& r, std::vector<int>* out) const {
  out->clear();
  const re2::StringPiece path(r.path.data(), r.path.size());
  if (!paths_->each.empty()) {
    for (size_t i = 0; i < paths_->each.size(); ++i)
      if (RE2::FullMatch(path, *paths_->each[i])) out->push_back(path_routes_[i]);
  } else if (!path_routes_.empty()) {
    paths_->set.Match(path, out);  // in no order
    for (int& i : *out) i = path_routes_[static_cast<size_t>(i)];
  }
  out->insert(out->end(), any_path_routes_.begin(), any_path_routes_.end());
  std::sort(out->begin(), out->end());
  out->erase(std::remove_if(out->begin(), out->end(),
                            [&](int i) {
                              return !MethodAndHeadersMatch(r, compiled_[static_cast<size_t>(i)]);
                            }),
             out->end());
}

bool RouteMatcher::Matches(const RequestView& r, int index) const {
  if (index < 0 || static_cast<size_t>(index) >= compiled_.size()) return false;
  std::vector<int> all;
  Match(r, &all);
  return std::binary_search(all.begin(), all.end(), index);
}

}  // namespace shunt::proxy::http
