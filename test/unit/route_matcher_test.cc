#include "proxy/http/route_matcher.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::proxy::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

model::HttpRouteGroup Group(std::string name, std::vector<model::HttpMatch> matches) {
  model::HttpRouteGroup g;
  g.namespace_ = "shop";
  g.name = std::move(name);
  g.matches = std::move(matches);
  return g;
}

std::vector<int> MatchOf(
    const RouteMatcher& m, absl::string_view method, absl::string_view path,
    std::vector<std::pair<absl::string_view, absl::string_view>> headers = {}) {
  std::vector<int> out;
  m.Match({method, path, std::move(headers)}, &out);
  return out;
}

TEST(RouteMatcherTest, ThePathRegexMustMatchTheWholePath) {
  auto m = RouteMatcher::Compile({Group("api", {{.name = "books", .path_regex = "/books"},
                                                {.name = "tree", .path_regex = "/books(/.*)?"}})});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(MatchOf(**m, "GET", "/books"), ElementsAre(0, 1));
  EXPECT_THAT(MatchOf(**m, "GET", "/books/7"), ElementsAre(1));
  // Neither a prefix nor a substring: Envoy's (and so OSM's) reading.
  EXPECT_THAT(MatchOf(**m, "GET", "/booksale"), IsEmpty());
  EXPECT_THAT(MatchOf(**m, "GET", "/x/books"), IsEmpty());
  EXPECT_EQ((*m)->routes()[1].Key(), "shop/api#tree");
}

TEST(RouteMatcherTest, MethodsAreExactAndStarOrNoneIsAny) {
  auto m = RouteMatcher::Compile(
      {Group("g", {{.name = "read", .path_regex = "/.*", .methods = {"GET", "HEAD"}},
                   {.name = "any", .path_regex = "/.*", .methods = {"*"}},
                   {.name = "unset", .path_regex = "/.*"}})});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(MatchOf(**m, "GET", "/a"), ElementsAre(0, 1, 2));
  EXPECT_THAT(MatchOf(**m, "POST", "/a"), ElementsAre(1, 2));
  EXPECT_THAT(MatchOf(**m, "get", "/a"), ElementsAre(1, 2)) << "methods are case-sensitive";
  EXPECT_THAT(MatchOf(**m, "BREW", "/a"), ElementsAre(1, 2));
}

TEST(RouteMatcherTest, EveryHeaderMustMatchItsWholeValueAndNamesIgnoreCase) {
  auto m = RouteMatcher::Compile(
      {Group("g", {{.name = "android",
                    .headers = {{"User-Agent", ".*Android.*"}, {"x-canary", "yes|true"}}}})});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(MatchOf(**m, "GET", "/any/path",
                      {{"user-agent", "Mozilla (Linux; Android 14)"}, {"X-Canary", "true"}}),
              ElementsAre(0));
  EXPECT_THAT(MatchOf(**m, "GET", "/", {{"user-agent", "Android"}}), IsEmpty())
      << "a missing header fails the match";
  EXPECT_THAT(MatchOf(**m, "GET", "/", {{"user-agent", "Android"}, {"x-canary", "yes!"}}),
              IsEmpty())
      << "the regex matches the whole value";
  // Sent twice: judged on "yes,true", which "yes|true" does not match whole.
  EXPECT_THAT(MatchOf(**m, "GET", "/",
                      {{"user-agent", "Android"}, {"x-canary", "yes"}, {"x-canary", "true"}}),
              IsEmpty());
}

TEST(RouteMatcherTest, ManyGroupsAreJudgedInOnePassAndInOrder) {
  std::vector<model::HttpRouteGroup> groups;
  for (int g = 0; g < 50; ++g) {
    std::vector<model::HttpMatch> ms;
    for (int i = 0; i < 20; ++i)
      ms.push_back({.name = "m" + std::to_string(i),
                    .path_regex = "/g" + std::to_string(g) + "/r" + std::to_string(i) + "(/.*)?"});
    groups.push_back(Group("g" + std::to_string(g), std::move(ms)));
  }
  auto m = RouteMatcher::Compile(groups);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ((*m)->routes().size(), 1000u);
  EXPECT_THAT(MatchOf(**m, "GET", "/g49/r19/x"), ElementsAre(999));
  EXPECT_THAT(MatchOf(**m, "GET", "/g7/r3"), ElementsAre(7 * 20 + 3));
  EXPECT_TRUE((*m)->Matches({"GET", "/g7/r3", {}}, 143));
  EXPECT_FALSE((*m)->Matches({"GET", "/g7/r3", {}}, 144));
  EXPECT_FALSE((*m)->Matches({"GET", "/g7/r3", {}}, 5000));
}

TEST(RouteMatcherTest, BadInputIsNamedWithItsGroupAndMatch) {
  auto bad_path = RouteMatcher::Compile({Group("g", {{.name = "m", .path_regex = "/(a"}})});
  ASSERT_FALSE(bad_path.ok());
  EXPECT_THAT(std::string(bad_path.status().message()),
              HasSubstr("HTTPRouteGroup shop/g match 'm': pathRegex '/(a'"));
  auto bad_header =
      RouteMatcher::Compile({Group("g", {{.name = "h", .headers = {{"x-a", "[z-a]"}}}})});
  ASSERT_FALSE(bad_header.ok());
  EXPECT_THAT(std::string(bad_header.status().message()), HasSubstr("header 'x-a' regex '[z-a]'"));
  auto bad_method =
      RouteMatcher::Compile({Group("g", {{.name = "x", .methods = {"GET", "FETCH"}}})});
  ASSERT_FALSE(bad_method.ok());
  EXPECT_THAT(std::string(bad_method.status().message()), HasSubstr("unknown method 'FETCH'"));
}

TEST(RouteMatcherTest, NoRoutesMatchNothing) {
  auto m = RouteMatcher::Compile({});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(MatchOf(**m, "GET", "/"), IsEmpty());
}

}  // namespace
}  // namespace shunt::proxy::http
