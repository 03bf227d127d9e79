// Fuzz target route_matcher: HTTPRouteGroup matches as the L7 layer compiles
// them (regexes, methods and headers from the cluster's objects) and the
// requests it judges against them. The input is split on NUL bytes: a path
// regex, a header name and regex, a method, then the request's path,
// method and header value.
//
// Beyond not crashing:
//  * a bad regex or method is an error naming the group, never a crash;
//  * Match returns ascending, distinct indices within routes();
//  * Matches(r, i) agrees with Match for every route;
//  * a route with an empty pathRegex, no methods and no headers matches
//    every request.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "proxy/http/route_matcher.h"
#include "test/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> f = absl::StrSplit(input, absl::ByChar('\0'));
  f.resize(7);
  model::HttpRouteGroup g;
  g.namespace_ = "ns";
  g.name = "g";
  model::HttpMatch m{.name = "fuzzed", .path_regex = f[0]};
  if (!f[1].empty()) m.headers.push_back({f[1], f[2]});
  if (!f[3].empty()) m.methods.push_back(f[3]);
  g.matches = {m, {.name = "any"}};
  auto matcher = proxy::http::RouteMatcher::Compile({g});
  if (!matcher.ok()) {
    FUZZ_CHECK(absl::StrContains(matcher.status().message(), "HTTPRouteGroup ns/g match"));
    return 0;
  }
  proxy::http::RequestView r{.method = f[5], .path = f[4]};
  r.headers.push_back({f[1], f[6]});
  std::vector<int> out;
  (*matcher)->Match(r, &out);
  for (size_t i = 0; i < out.size(); ++i) {
    FUZZ_CHECK(out[i] >= 0 && static_cast<size_t>(out[i]) < (*matcher)->routes().size());
    if (i > 0) FUZZ_CHECK(out[i - 1] < out[i]);
  }
  for (int i = 0; i < static_cast<int>((*matcher)->routes().size()); ++i) {
    const bool listed = std::find(out.begin(), out.end(), i) != out.end();
    FUZZ_CHECK((*matcher)->Matches(r, i) == listed);
  }
  FUZZ_CHECK(!out.empty() && out.back() == 1);  // "any" matches everything
  return 0;
}
