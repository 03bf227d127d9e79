// The kube source's watch stream decoder: events are JSON objects back to
// back, found by their braces, however the bytes are split.
#include "agent/source/kube/watch_stream.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::source::kube {
namespace {

using ::testing::HasSubstr;

// Two events as the API server sends them, the first with a string that
// holds braces, an escaped quote and an escaped newline, and no newline
// between the two.
const char kTwoEvents[] =
    R"({"type":"ADDED","object":{"metadata":{"name":"a {\"x\"}\n}","resourceVersion":"7"}}})"
    R"( {"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})"
    "\n";

std::vector<nlohmann::json> Drain(WatchStreamDecoder& d) {
  std::vector<nlohmann::json> out;
  while (auto next = d.Next()) {
    EXPECT_TRUE(next->ok()) << next->status();
    if (!next->ok()) break;
    out.push_back(**next);
  }
  return out;
}

TEST(WatchStreamDecoderTest, ObjectsAreFoundHoweverTheBytesAreSplit) {
  const std::string all = kTwoEvents;
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    WatchStreamDecoder d;
    d.Feed(all.substr(0, cut));
    std::vector<nlohmann::json> got = Drain(d);
    d.Feed(all.substr(cut));
    for (auto& j : Drain(d)) got.push_back(j);
    ASSERT_EQ(got.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(got[0]["object"]["metadata"]["name"], "a {\"x\"}\n}") << "cut at " << cut;
    EXPECT_EQ(got[1]["type"], "BOOKMARK");
    EXPECT_EQ(d.pending(), 0u);
  }
}

TEST(WatchStreamDecoderTest, ByteByByte) {
  WatchStreamDecoder d;
  std::vector<nlohmann::json> got;
  for (char c : std::string(kTwoEvents)) {
    d.Feed(std::string_view(&c, 1));
    for (auto& j : Drain(d)) got.push_back(j);
  }
  EXPECT_EQ(got.size(), 2u);
}

TEST(WatchStreamDecoderTest, GarbageAndOversizedObjectsEndTheStream) {
  WatchStreamDecoder d;
  d.Feed("  [1,2]");
  auto next = d.Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(next->status().message(), HasSubstr("expected a JSON object"));
  EXPECT_EQ(d.Next()->status().code(), absl::StatusCode::kFailedPrecondition);

  WatchStreamDecoder small(16);
  small.Feed(R"({"type":"ADDED","object":{}})");
  next = small.Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_THAT(next->status().message(), HasSubstr("larger than 16 bytes"));

  WatchStreamDecoder bad;
  bad.Feed(R"({"type": nope})");
  next = bad.Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_THAT(next->status().message(), HasSubstr("not valid JSON"));
}

TEST(ParseWatchEventTest, TypesResourceVersionsAndExpiredErrors) {
  auto added = ParseWatchEvent(nlohmann::json::parse(
      R"({"type":"MODIFIED","object":{"metadata":{"name":"p","resourceVersion":"42"}}})"));
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->type, WatchEvent::Type::kModified);
  EXPECT_EQ(added->resource_version, "42");

  const std::string expired =
      "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\","
      "\"message\":\"too old resource version: 1 (42)\"}}";
  auto gone = ParseWatchEvent(nlohmann::json::parse(expired));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->type, WatchEvent::Type::kError);
  EXPECT_EQ(gone->code, 410);
  EXPECT_EQ(gone->reason, "Expired");

  auto bookmark = ParseWatchEvent(nlohmann::json::parse(R"({"type":"BOOKMARK","object":{}})"));
  EXPECT_THAT(bookmark.status().message(), HasSubstr("no metadata.resourceVersion"));
  auto unknown = ParseWatchEvent(nlohmann::json::parse(R"({"type":"PATCHED","object":{}})"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown type 'PATCHED'"));
  auto bare = ParseWatchEvent(nlohmann::json::parse(R"({"type":"ADDED"})"));
  EXPECT_THAT(bare.status().message(), HasSubstr("no object"));
}

TEST(ParseListPageTest, ItemsGetTheListsKindAndApiVersion) {
  auto page =
      ParseListPage(R"({"apiVersion":"v1","metadata":{"resourceVersion":"12","continue":"c"},)"
                    R"("items":[{"metadata":{"name":"a","namespace":"demo"}},7,)"
                    R"({"kind":"Other","metadata":{"name":"b"}}]})",
                    "Pod");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->items.size(), 2u);  // 7 is not an object
  EXPECT_EQ(page->items[0].first, "demo/a");
  EXPECT_EQ(page->items[0].second["kind"], "Pod");
  EXPECT_EQ(page->items[0].second["apiVersion"], "v1");
  EXPECT_EQ(page->items[1].first, "/b");
  EXPECT_EQ(page->items[1].second["kind"], "Other");
  EXPECT_EQ(page->resource_version, "12");
  EXPECT_EQ(page->continue_token, "c");
  EXPECT_EQ(ParseListPage(R"({"items":{}})", "Pod").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseListPage("not json", "Pod").status().code(), absl::StatusCode::kInvalidArgument);
}

// Found by reading the code while writing the fuzz targets (test/fuzz
// manifest_json covers both): nlohmann's value() throws type_error when the
// member is there with another type, so a list whose apiVersion was not a
// string, or a bookmark whose initial-events-end annotation was not a
// string, threw out of the reflector's thread (std::terminate: the agent
// ended).
TEST(ParseListPageTest, MembersOfTheWrongTypeAreNotThrownOn) {
  absl::StatusOr<ListPage> page;
  ASSERT_NO_THROW(page = ParseListPage(
                      R"({"apiVersion":7,"metadata":{"resourceVersion":[]},"items":[{}]})", "Pod"));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->items[0].second["apiVersion"], "");
  EXPECT_EQ(page->resource_version, "");

  for (const char* annotations : {R"({"k8s.io/initial-events-end":true})", R"("x")", "[1]"}) {
    auto event = ParseWatchEvent(nlohmann::json::parse(
        std::string(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9",)") +
        R"("annotations":)" + annotations + "}}}"));
    ASSERT_TRUE(event.ok()) << event.status();
    bool ends = true;
    ASSERT_NO_THROW(ends = EndsInitialEvents(*event)) << annotations;
    EXPECT_FALSE(ends) << annotations;
  }
  auto end = ParseWatchEvent(
      nlohmann::json::parse(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9",)"
                            R"("annotations":{"k8s.io/initial-events-end":"true"}}}})"));
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(EndsInitialEvents(*end));
}

}  // namespace
}  // namespace shunt::source::kube
