#include "proxy/http/l7_policy.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::proxy::http {
namespace {

using ::testing::HasSubstr;

model::Subject Sa(std::string name) { return {"shop", std::move(name)}; }

model::TargetRule Http(std::string group, std::vector<std::string> matches = {}) {
  return {model::RouteKind::kHttp, std::move(group), std::move(matches)};
}
model::TargetRule Tcp(std::string route) { return {model::RouteKind::kTcp, std::move(route), {}}; }

model::TrafficTarget Target(std::string name, std::vector<model::Subject> sources,
                            std::vector<model::TargetRule> rules) {
  model::TrafficTarget t;
  t.namespace_ = "shop";
  t.name = std::move(name);
  t.destination = Sa("books");
  t.sources = std::move(sources);
  t.rules = std::move(rules);
  return t;
}

// The bookstore's routes: reading the catalogue, and its admin pages.
model::HttpRouteGroup Routes() {
  model::HttpRouteGroup g;
  g.namespace_ = "shop";
  g.name = "books-api";
  g.matches = {{.name = "read", .path_regex = "/books(/.*)?", .methods = {"GET", "HEAD"}},
               {.name = "admin", .path_regex = "/admin(/.*)?"}};
  return g;
}

struct Judged {
  const L7Policy& policy;
  std::vector<int> scratch;
  L7Policy::Decision operator()(const std::string& source, uint16_t port, absl::string_view method,
                                absl::string_view path) {
    return policy.Judge(Sa(source), Sa("books"), port, {method, path, {}}, &scratch);
  }
};

TEST(L7PolicyTest, OnlyTheGrantedMatchesAreAllowedAndADenialNamesWhy) {
  L7Policy::Input in;
  in.groups = {Routes()};
  in.targets = {Target("readers", {Sa("client")}, {Http("books-api", {"read"})})};
  auto p = L7Policy::Compile(in);
  ASSERT_TRUE(p.ok()) << p.status();
  Judged judge{**p};
  auto ok = judge("client", 8080, "GET", "/books/42");
  EXPECT_TRUE(ok.allow);
  EXPECT_EQ(ok.route, "shop/books-api#read");
  EXPECT_EQ(ok.target, "shop/readers");
  auto admin = judge("client", 8080, "GET", "/admin/users");
  EXPECT_FALSE(admin.allow);
  EXPECT_EQ(admin.reason, "route-not-granted");
  EXPECT_EQ(admin.route, "shop/books-api#admin");
  auto post = judge("client", 8080, "POST", "/books");
  EXPECT_FALSE(post.allow);
  EXPECT_EQ(post.reason, "no-route-matched");
  auto stranger = judge("stranger", 8080, "GET", "/books");
  EXPECT_FALSE(stranger.allow);
  EXPECT_EQ(stranger.reason, "no-grant");
}

TEST(L7PolicyTest, TcpRoutesNarrowTheHttpGrantsPortsAndAloneGrantEveryRequest) {
  L7Policy::Input in;
  in.groups = {Routes()};
  in.tcp_routes = {{model::RouteKind::kTcp, "shop", "web", {8080}},
                   {model::RouteKind::kTcp, "shop", "metrics", {9100}}};
  in.targets = {Target("readers", {Sa("client")}, {Http("books-api"), Tcp("web")}),
                Target("scraper", {Sa("prometheus")}, {Tcp("metrics")})};
  auto p = L7Policy::Compile(in);
  ASSERT_TRUE(p.ok()) << p.status();
  Judged judge{**p};
  EXPECT_TRUE(judge("client", 8080, "GET", "/admin").allow) << "no matches: the whole group";
  EXPECT_EQ(judge("client", 9090, "GET", "/books").reason, "no-grant");
  auto scrape = judge("prometheus", 9100, "DELETE", "/anything");
  EXPECT_TRUE(scrape.allow) << "an L4 grant allows every request on its ports";
  EXPECT_EQ(scrape.target, "shop/scraper");
  EXPECT_EQ(judge("prometheus", 8080, "GET", "/books").reason, "no-grant");
}

TEST(L7PolicyTest, GrantsAddUpAcrossTrafficTargets) {
  L7Policy::Input in;
  in.groups = {Routes()};
  in.targets = {Target("readers", {Sa("client")}, {Http("books-api", {"read"})}),
                Target("admins", {Sa("client"), Sa("ops")}, {Http("books-api", {"admin"})})};
  auto p = L7Policy::Compile(in);
  ASSERT_TRUE(p.ok()) << p.status();
  Judged judge{**p};
  EXPECT_TRUE(judge("client", 80, "GET", "/books").allow);
  auto admin = judge("client", 80, "PUT", "/admin/x");
  EXPECT_TRUE(admin.allow);
  EXPECT_EQ(admin.target, "shop/admins");
  EXPECT_EQ(judge("ops", 80, "GET", "/books").reason, "route-not-granted");
}

TEST(L7PolicyTest, DanglingReferencesGrantNothingAndAreReported) {
  L7Policy::Input in;
  in.groups = {Routes()};
  in.targets = {Target("gone", {Sa("client")}, {Http("no-such-group")}),
                Target("typo", {Sa("client")}, {Http("books-api", {"raed"})}),
                Target("ports", {Sa("client")}, {Http("books-api"), Tcp("no-such-route")})};
  auto p = L7Policy::Compile(in);
  ASSERT_TRUE(p.ok()) << p.status();
  Judged judge{**p};
  EXPECT_EQ(judge("client", 80, "GET", "/books").reason, "no-grant");
  ASSERT_EQ((*p)->problems().size(), 3u);
  EXPECT_THAT((*p)->problems()[0], HasSubstr("TrafficTarget shop/gone: HTTPRouteGroup "
                                             "shop/no-such-group does not exist"));
  EXPECT_THAT((*p)->problems()[1], HasSubstr("has no match 'raed'"));
  EXPECT_THAT((*p)->problems()[2], HasSubstr("TCPRoute shop/no-such-route does not exist"));
}

TEST(L7PolicyTest, V1alpha2DestinationPortNarrowsEveryRule) {
  L7Policy::Input in;
  in.groups = {Routes()};
  auto t = Target("readers", {Sa("client")}, {Http("books-api", {"read"})});
  t.destination_port = 8443;
  in.targets = {t};
  auto p = L7Policy::Compile(in);
  ASSERT_TRUE(p.ok()) << p.status();
  Judged judge{**p};
  EXPECT_TRUE(judge("client", 8443, "GET", "/books").allow);
  EXPECT_EQ(judge("client", 8080, "GET", "/books").reason, "no-grant");
}

TEST(L7PolicyTest, ABadRegexIsAnErrorNamingItsGroup) {
  L7Policy::Input in;
  auto g = Routes();
  g.matches[1].path_regex = "/admin(";
  in.groups = {g};
  auto p = L7Policy::Compile(in);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("HTTPRouteGroup shop/books-api match 'admin'"));
}

}  // namespace
}  // namespace shunt::proxy::http
