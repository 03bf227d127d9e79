// HTTPRouteGroup matches (specs.smi-spec.io v1alpha4, ../shared/SMI.md)
// compiled once and judged per request. The path regexes of all matches go
// into one RE2::Set, so a request's path is scanned once however many
// routes there are; methods are a bit mask per route; header regexes are
// tried only for routes whose path and method matched.
//
// Semantics (SMI leaves them open; these are Envoy's, so OSM's):
// - pathRegex is RE2 and must match the whole path, the query excluded
//   ("/api" matches "/api" only; write "/api(/.*)?" for the subtree). An
//   empty pathRegex matches every path.
// - methods: empty or "*" is any method; otherwise exact, upper case.
// - headers: name case-insensitive, the regex must match the whole value;
//   a header sent several times is judged on its values joined by ",".
//   Every header of a match must match (AND); a missing header fails.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/model/smi.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace shunt::proxy::http {

// What a route is judged on: the request's method, its path without the
// query, and its headers (names as sent; compared case-insensitively).
struct RequestView {
  absl::string_view method;
  absl::string_view path;
  std::vector<std::pair<absl::string_view, absl::string_view>> headers;
};

class RouteMatcher {
 public:
  // One named match of one group: "ns/group" and the match's name.
  struct Route {
    std::string group;
    std::string name;
    std::string key;  // "ns/group#name", made once
    const std::string& Key() const { return key; }
  };

  // Errors name the group and match ("routes: HTTPRouteGroup ns/g match
  // 'm': pathRegex '(' ...").
  static absl::StatusOr<std::unique_ptr<RouteMatcher>> Compile(
      const std::vector<model::HttpRouteGroup>& groups);
  ~RouteMatcher();

  const std::vector<Route>& routes() const { return routes_; }
  // Sets `out` to the indices (into routes()) of every route `r` matches,
  // in ascending order; a caller that keeps `out` allocates nothing.
  void Match(const RequestView& r, std::vector<int>* out) const;
  // True if `r` matches route `index` (the same judgement, for one route).
  bool Matches(const RequestView& r, int index) const;

 private:
  struct HeaderRule {
    std::string name;  // lower case
    std::unique_ptr<re2::RE2> value;
  };
  struct Compiled {
    uint32_t methods = 0;  // bit per known method; kAnyMethod for any
    bool any_path = false;
    std::vector<HeaderRule> headers;
  };
  RouteMatcher();
  bool MethodAndHeadersMatch(const RequestView& r, const Compiled& c) const;

  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
  // The path regexes, one per route that has one: set entry i is route
  // path_routes_[i] (an RE2::Set, behind a pointer to keep re2/set.h out).
  struct PathSet;
  std::unique_ptr<PathSet> paths_;
  std::vector<int> path_routes_;
  std::vector<int> any_path_routes_;
};

// The bit of a method in a route's mask; 0 for a method no route can name
// (the CRD's enum: GET HEAD PUT POST DELETE CONNECT OPTIONS TRACE PATCH).
uint32_t MethodBit(absl::string_view method);

}  // namespace shunt::proxy::http
