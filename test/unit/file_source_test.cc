// FileSource + ObjectStore: a directory of YAML manifests -> Snapshot.
#include "agent/source/file_source.h"

#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::source {
namespace {

namespace fs = std::filesystem;
using model::Snapshot;

// A source and the store it feeds, loaded the way the agent does: sync, publish.
struct Loader {
  explicit Loader(std::string dir) : src(std::move(dir)) {}
  absl::StatusOr<Snapshot> Load() {
    if (absl::Status s = src.Sync(store); !s.ok()) return s;
    return *store.Publish();
  }
  FileSource src;
  model::ObjectStore store;
};
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// A valid Pod manifest as one YAML document (no leading "---").
std::string PodYaml(const std::string& ns, const std::string& name, const std::string& ip,
                    const std::string& node = "node-a") {
  return absl::StrCat("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", name, "\n  namespace: ", ns,
                      "\nspec:\n  nodeName: ", node, "\nstatus:\n  podIP: ", ip, "\n");
}

std::vector<std::string> Keys(const Snapshot& s) {
  std::vector<std::string> out;
  for (const model::Pod& p : s.pods) out.push_back(p.Key());
  return out;
}

std::vector<std::string> Strings(const std::vector<model::Problem>& problems) {
  std::vector<std::string> out;
  for (const model::Problem& p : problems) out.push_back(p.ToString());
  return out;
}

// Drops file-access privileges of this thread to `nobody` for its lifetime
// (setfsuid clears CAP_DAC_OVERRIDE), so permission tests also run as root.
class AsNobody {
 public:
  AsNobody() : old_(setfsuid(65534)) {}
  ~AsNobody() { setfsuid(old_); }

 private:
  int old_;
};

class FileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shunt_file_source_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream out(dir_ + "/" + name, std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << name;
  }
  void Remove(const std::string& name) { ASSERT_TRUE(fs::remove(dir_ + "/" + name)) << name; }

  // Loads through `src` and fails the test if the directory itself fails.
  Snapshot Load(Loader& src) {
    absl::StatusOr<Snapshot> s = src.Load();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : Snapshot{};
  }

  std::string dir_;
};

TEST_F(FileSourceTest, MissingDirectoryIsNotFound) {
  Loader src(dir_ + "/absent");
  absl::StatusOr<Snapshot> s = src.Load();
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr(dir_ + "/absent"));
}

TEST_F(FileSourceTest, UnreadableDirectoryIsPermissionDenied) {
  // Regression: the header promises PermissionDenied; Load() returns NotFound for
  // every directory_iterator error.
  ASSERT_EQ(chmod(dir_.c_str(), 0), 0);
  AsNobody nobody;
  Loader src(dir_);
  EXPECT_EQ(src.Load().status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(FileSourceTest, EmptyDirectoryIsAnEmptySnapshot) {
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.pods, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_THAT(s.notices, IsEmpty());
  EXPECT_EQ(s.origins, 0);
  EXPECT_EQ(s.documents, 0);
}

TEST_F(FileSourceTest, ReadsOnlyManifestFiles) {
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1"));
  Write("b.yml", PodYaml("demo", "b", "10.0.0.2"));
  Write("c.json",
        R"({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "demo"},
            "spec": {"nodeName": "node-a"}, "status": {"podIP": "10.0.0.3"}})");
  // Skipped: dotfiles (editor swap/lock files), backups, other extensions, directories.
  Write(".hidden.yaml", PodYaml("demo", "hidden", "10.0.0.4"));
  Write("d.yaml~", PodYaml("demo", "backup", "10.0.0.5"));
  Write("e.txt", PodYaml("demo", "text", "10.0.0.6"));
  Write("f.yaml.bak", PodYaml("demo", "bak", "10.0.0.7"));
  ASSERT_TRUE(fs::create_directory(dir_ + "/sub.yaml"));
  std::ofstream(dir_ + "/sub.yaml/g.yaml") << PodYaml("demo", "nested", "10.0.0.8");

  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a", "demo/b", "demo/c"));
  EXPECT_EQ(s.origins, 3);
  EXPECT_EQ(s.documents, 3);
  EXPECT_THAT(s.problems, IsEmpty());
}

TEST_F(FileSourceTest, FilesAreReadInNameOrderAndDocumentsInFileOrder) {
  Write("20-second.yaml",
        PodYaml("demo", "z", "10.0.0.1") + "---\n" + PodYaml("demo", "y", "10.0.0.2"));
  Write("10-first.yaml", PodYaml("demo", "x", "10.0.0.3"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/x", "demo/z", "demo/y"));
}

TEST_F(FileSourceTest, MultiDocumentFileSkipsEmptyDocuments) {
  Write("pods.yaml", "---\n" + PodYaml("demo", "a", "10.0.0.1") + "---\n---\n" +
                         PodYaml("demo", "b", "10.0.0.2") + "---\n");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a", "demo/b"));
  EXPECT_EQ(s.documents, 2);
  EXPECT_THAT(s.problems, IsEmpty());
}

TEST_F(FileSourceTest, ListIsUnpackedIntoItsItems) {
  Write("list.yaml", R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: demo}
  spec: {nodeName: node-a}
  status: {podIP: 10.0.0.1}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm, namespace: demo}
- apiVersion: v1
  kind: Pod
  metadata: {name: b, namespace: demo}
  spec: {nodeName: node-b}
  status: {podIP: 10.0.0.2}
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a", "demo/b"));
  EXPECT_EQ(s.documents, 3);  // the items, not the List
  EXPECT_THAT(Strings(s.notices),
              ElementsAre("list.yaml:9 ConfigMap demo/cm: kind ConfigMap (v1) is not handled by "
                          "this version; skipped"));
}

TEST_F(FileSourceTest, OtherKindsAndVersionsBecomeNotices) {
  Write("mixed.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
---
apiVersion: v2
kind: Pod
metadata: {name: p}
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.pods, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_THAT(Strings(s.notices),
              ElementsAre("mixed.yaml:1 Deployment demo/web: kind Deployment (apps/v1) is not "
                          "handled by this version; skipped",
                          "mixed.yaml:5 Pod p: kind Pod (v2) is not handled by this version; "
                          "skipped"));
  EXPECT_EQ(s.documents, 2);
}

TEST_F(FileSourceTest, InvalidObjectsBecomeProblemsWithFileLineAndReason) {
  Write("pods.yaml", PodYaml("demo", "good", "10.0.0.1") + R"(---
apiVersion: v1
kind: Pod
metadata:
  name: unscheduled
  namespace: demo
spec: {}
status:
  podIP: 10.0.0.2
---
apiVersion: v1
kind: Pod
metadata: {name: noip}
spec: {nodeName: node-a}
---
- not
- a map
---
kind: Pod
metadata: {name: x}
---
apiVersion: v1
metadata: {name: y}
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/good"));
  EXPECT_EQ(s.documents, 6);
  EXPECT_THAT(Strings(s.problems),
              ElementsAre("pods.yaml:11 Pod demo/unscheduled: spec.nodeName is missing (the pod "
                          "is not scheduled)",
                          "pods.yaml:20 Pod default/noip: status.podIP is missing",
                          "pods.yaml:25: not a Kubernetes object (expected a mapping)",
                          "pods.yaml:28 Pod x: apiVersion is missing",
                          "pods.yaml:31 object y: kind is missing"));
}

TEST_F(FileSourceTest, ExceptionFromTheParserBecomesAProblem) {
  // yaml-cpp throws on a non-boolean hostNetwork; the source must contain it.
  Write("pods.yaml", R"(apiVersion: v1
kind: Pod
metadata: {name: h, namespace: demo}
spec: {nodeName: node-a, hostNetwork: maybe}
status: {podIP: 10.0.0.1}
)" + std::string("---\n") +
                         PodYaml("demo", "ok", "10.0.0.2"));
  Loader src(dir_);
  absl::StatusOr<Snapshot> s;
  ASSERT_NO_THROW(s = src.Load());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(Keys(*s), ElementsAre("demo/ok"));
  ASSERT_THAT(s->problems, SizeIs(1));
  EXPECT_EQ(s->problems[0].ref.file, "pods.yaml");
  EXPECT_EQ(s->problems[0].ref.line, 1);
  EXPECT_EQ(s->problems[0].ref.name, "h");
}

TEST_F(FileSourceTest, SyntaxErrorInANewFileIsAProblemWithALine) {
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1"));
  Write("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a"));
  EXPECT_EQ(s.origins, 2);
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_EQ(s.problems[0].ref.file, "broken.yaml");
  EXPECT_GT(s.problems[0].ref.line, 0);
  EXPECT_THAT(s.problems[0].reason, HasSubstr("YAML syntax error: "));
  EXPECT_THAT(s.problems[0].reason, Not(HasSubstr("keeping")));
}

TEST_F(FileSourceTest, RepeatedSyntaxErrorInANewFileDoesNotClaimToKeepObjects) {
  // Regression: the first failed load records an empty "last good" entry, so the
  // second load says "keeping this file's last good objects" for a file that
  // never parsed.
  Write("broken.yaml", "a: [\n");
  Loader src(dir_);
  Load(src);
  Snapshot s = Load(src);
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_THAT(s.problems[0].reason, Not(HasSubstr("keeping")));
}

TEST_F(FileSourceTest, SyntaxErrorKeepsTheFilesLastGoodObjects) {
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1") + "---\n" + PodYaml("demo", "b", "10.0.0.2"));
  Write("c.yaml", PodYaml("demo", "c", "10.0.0.3"));
  Loader src(dir_);
  ASSERT_THAT(Keys(Load(src)), ElementsAre("demo/a", "demo/b", "demo/c"));

  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1") + "---\nmetadata: {name: [\n");
  Write("c.yaml", PodYaml("demo", "c2", "10.0.0.4"));
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a", "demo/b", "demo/c2"));
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_EQ(s.problems[0].ref.file, "a.yaml");
  EXPECT_THAT(s.problems[0].reason, HasSubstr("YAML syntax error: "));
  EXPECT_THAT(s.problems[0].reason, HasSubstr("; keeping this file's last good objects"));

  // Still broken on the next load: the same objects stay in force.
  EXPECT_THAT(Keys(Load(src)), ElementsAre("demo/a", "demo/b", "demo/c2"));

  // Fixed: the new contents replace them.
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1"));
  s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a", "demo/c2"));
  EXPECT_THAT(s.problems, IsEmpty());
}

TEST_F(FileSourceTest, InvalidObjectKeepsItsPreviousGoodVersion) {
  Write("pods.yaml", PodYaml("demo", "a", "10.0.0.1") + "---\n" + PodYaml("demo", "b", "10.0.0.2"));
  Loader src(dir_);
  ASSERT_THAT(Keys(Load(src)), ElementsAre("demo/a", "demo/b"));

  // b loses its IP (a bad edit); a changes IP (a good edit).
  Write("pods.yaml",
        PodYaml("demo", "a", "10.0.0.9") + "---\n" + PodYaml("demo", "b", "not-an-ip"));
  Snapshot s = Load(src);
  ASSERT_THAT(Keys(s), ElementsAre("demo/a", "demo/b"));
  EXPECT_EQ(s.pods[0].ip, "10.0.0.9");
  EXPECT_EQ(s.pods[1].ip, "10.0.0.2");  // the previous good version
  EXPECT_THAT(Strings(s.problems),
              ElementsAre("pods.yaml:11 Pod demo/b: status.podIP 'not-an-ip' is not an IPv4 "
                          "address; keeping its last good version"));

  // Still invalid on the next load: the kept version stays.
  s = Load(src);
  ASSERT_THAT(Keys(s), ElementsAre("demo/a", "demo/b"));
  EXPECT_EQ(s.pods[1].ip, "10.0.0.2");
}

TEST_F(FileSourceTest, InvalidObjectDoesNotInheritAVersionFromAnotherFile) {
  Write("a.yaml", PodYaml("demo", "p", "10.0.0.1"));
  Loader src(dir_);
  ASSERT_THAT(Keys(Load(src)), ElementsAre("demo/p"));

  // Moved to another file and broken on the way: the old file no longer has it.
  Remove("a.yaml");
  Write("b.yaml", PodYaml("demo", "p", "bad"));
  Snapshot s = Load(src);
  EXPECT_THAT(s.pods, IsEmpty());
  EXPECT_THAT(Strings(s.problems),
              ElementsAre("b.yaml:1 Pod demo/p: status.podIP 'bad' is not an IPv4 address"));
}

TEST_F(FileSourceTest, NewInvalidObjectHasNoVersionToKeep) {
  Write("pods.yaml", PodYaml("demo", "a", "10.0.0.1"));
  Loader src(dir_);
  Load(src);
  Write("pods.yaml", PodYaml("demo", "a", "10.0.0.1") + "---\n" + PodYaml("demo", "new", "x"));
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a"));
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_THAT(s.problems[0].reason, Not(HasSubstr("keeping")));
}

TEST_F(FileSourceTest, RemovedFileWithdrawsItsObjects) {
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1"));
  Write("b.yaml", PodYaml("demo", "b", "10.0.0.2"));
  Loader src(dir_);
  ASSERT_THAT(Keys(Load(src)), ElementsAre("demo/a", "demo/b"));
  Remove("a.yaml");
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/b"));
  EXPECT_EQ(s.origins, 1);
}

TEST_F(FileSourceTest, DuplicateNameLaterFileLoses) {
  Write("a.yaml", PodYaml("demo", "p", "10.0.0.1"));
  Write("b.yaml", PodYaml("demo", "p", "10.0.0.2") + "---\n" + PodYaml("other", "p", "10.0.0.3"));
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(Keys(s), ElementsAre("demo/p", "other/p"));
  EXPECT_EQ(s.pods[0].ip, "10.0.0.1");
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("b.yaml:1 Pod demo/p: duplicate: Pod demo/p is already defined in a.yaml; "
                  "this copy is ignored"));
}

TEST_F(FileSourceTest, DuplicateNameInOneFileLaterObjectLoses) {
  // "default" is the namespace of a pod without one.
  Write("a.yaml", PodYaml("default", "p", "10.0.0.1") +
                      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                      "spec: {nodeName: n}\nstatus: {podIP: 10.0.0.2}\n");
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(s.pods, SizeIs(1));
  EXPECT_EQ(s.pods[0].ip, "10.0.0.1");
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_THAT(s.problems[0].reason,
              HasSubstr("duplicate: Pod default/p is already defined in a.yaml"));
}

TEST_F(FileSourceTest, DuplicatePodIpLaterPodLoses) {
  Write("a.yaml", PodYaml("demo", "first", "10.0.0.1"));
  Write("b.yaml",
        PodYaml("demo", "second", "10.0.0.1") + "---\n" + PodYaml("demo", "third", "10.0.0.2"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/first", "demo/third"));
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("b.yaml:1 Pod demo/second: status.podIP 10.0.0.1 is already the IP of Pod "
                  "demo/first; this pod is ignored"));
}

TEST_F(FileSourceTest, AnUnchangedFileStillReportsItsProblemsAndObjects) {
  // Unchanged files are not parsed again; what they said must still show.
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1") +
                      "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n" +
                      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {}\n");
  Write("b.yaml", PodYaml("demo", "b", "10.0.0.2"));
  Loader src(dir_);
  Snapshot first = Load(src);
  Write("b.yaml", PodYaml("demo", "b", "10.0.0.3"));  // only b changes
  Snapshot second = Load(src);
  EXPECT_EQ(Strings(second.problems), Strings(first.problems));
  EXPECT_EQ(Strings(second.notices), Strings(first.notices));
  EXPECT_EQ(second.documents, first.documents);
  ASSERT_EQ(second.pods.size(), 2u);
  EXPECT_EQ(second.pods[0].ip, "10.0.0.1");
  EXPECT_EQ(second.pods[1].ip, "10.0.0.3");
}

TEST_F(FileSourceTest, UnreadableFileKeepsItsLastGoodObjects) {
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1"));
  Loader src(dir_);
  ASSERT_THAT(Keys(Load(src)), ElementsAre("demo/a"));
  ASSERT_EQ(chmod((dir_ + "/a.yaml").c_str(), 0), 0);
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);  // nobody may list the directory...
  AsNobody nobody;                          // ...but not read the file
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a"));
  EXPECT_THAT(Strings(s.problems), ElementsAre("a.yaml: cannot be read"));
}

// --- SMI kinds ---------------------------------------------------------------

// A TrafficTarget `ns/name`: SA `client` may reach SA `server` through one rule
// of `rule_kind` named `route`.
std::string TargetYaml(const std::string& ns, const std::string& name,
                       const std::string& api = "access.smi-spec.io/v1alpha3",
                       const std::string& rule_kind = "TCPRoute") {
  return absl::StrCat("apiVersion: ", api, "\nkind: TrafficTarget\nmetadata: {name: ", name,
                      ", namespace: ", ns, "}\nspec:\n",
                      "  destination: {kind: ServiceAccount, name: server, namespace: ", ns, "}\n",
                      "  sources: [{kind: ServiceAccount, name: client}]\n",
                      "  rules: [{kind: ", rule_kind, ", name: route}]\n");
}
// A TCPRoute or UDPRoute with the given ports list ("[80]", "[]").
std::string PortRouteYaml(const std::string& kind, const std::string& ns, const std::string& name,
                          const std::string& ports,
                          const std::string& api = "specs.smi-spec.io/v1alpha4") {
  return absl::StrCat("apiVersion: ", api, "\nkind: ", kind, "\nmetadata: {name: ", name,
                      ", namespace: ", ns, "}\nspec: {matches: {ports: ", ports, "}}\n");
}
std::string GroupYaml(const std::string& ns, const std::string& name, const std::string& path_regex,
                      const std::string& api = "specs.smi-spec.io/v1alpha4") {
  return absl::StrCat("apiVersion: ", api, "\nkind: HTTPRouteGroup\nmetadata: {name: ", name,
                      ", namespace: ", ns, "}\nspec:\n  matches:\n  - {name: m, pathRegex: '",
                      path_regex, "'}\n");
}

template <typename T>
std::vector<std::string> SmiKeys(const std::vector<T>& objects) {
  std::vector<std::string> out;
  for (const T& o : objects) out.push_back(o.Key());
  return out;
}

TEST_F(FileSourceTest, ReadsSmiKindsOfEverySupportedVersion) {
  Write("smi.yaml", TargetYaml("n", "tt3") + "---\n" +
                        R"(apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata: {name: tt2, namespace: n}
spec:
  destination: {kind: ServiceAccount, name: server, port: 8080}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: HTTPRouteGroup, name: g4, matches: [m]}]
---
apiVersion: specs.smi-spec.io/v1alpha3
kind: TCPRoute
metadata: {name: raw, namespace: n}
spec: {}
---
)" + PortRouteYaml("TCPRoute", "n", "tcp4", "[80, 443]") +
                        "---\n" + PortRouteYaml("UDPRoute", "n", "udp4", "[53]") + "---\n" +
                        GroupYaml("n", "g4", "/v4") + "---\n" +
                        GroupYaml("n", "g3", "/v3", "specs.smi-spec.io/v1alpha3"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Strings(s.problems), IsEmpty());
  EXPECT_THAT(Strings(s.notices), IsEmpty());
  EXPECT_EQ(s.documents, 7);
  EXPECT_THAT(s.pods, IsEmpty());

  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt3", "n/tt2"));
  EXPECT_EQ(s.traffic_targets[0].api_version, "access.smi-spec.io/v1alpha3");
  EXPECT_EQ(s.traffic_targets[0].destination_port, std::nullopt);
  EXPECT_EQ(s.traffic_targets[1].api_version, "access.smi-spec.io/v1alpha2");
  EXPECT_EQ(s.traffic_targets[1].destination_port, 8080);

  ASSERT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/raw", "n/tcp4"));
  EXPECT_THAT(s.tcp_routes[0].ports, IsEmpty());  // v1alpha3 `spec: {}` = any port
  EXPECT_THAT(s.tcp_routes[1].ports, ElementsAre(80, 443));
  EXPECT_EQ(s.tcp_routes[1].kind, model::RouteKind::kTcp);

  ASSERT_THAT(SmiKeys(s.udp_routes), ElementsAre("n/udp4"));
  EXPECT_EQ(s.udp_routes[0].kind, model::RouteKind::kUdp);
  EXPECT_THAT(s.udp_routes[0].ports, ElementsAre(53));

  ASSERT_THAT(SmiKeys(s.http_route_groups), ElementsAre("n/g4", "n/g3"));
  EXPECT_EQ(s.http_route_groups[1].matches[0].path_regex, "/v3");
}

TEST_F(FileSourceTest, UnsupportedSmiVersionsAreProblems) {
  // Each document is 7 (TrafficTarget) or 4 (routes) lines plus "---".
  Write("old.yaml",
        TargetYaml("n", "v1", "access.smi-spec.io/v1alpha1") + "---\n" +
            TargetYaml("n", "draft", "access.smi-spec.io/v1alpha4") + "---\n" +
            TargetYaml("n", "group", "specs.smi-spec.io/v1alpha3") + "---\n" +
            PortRouteYaml("TCPRoute", "n", "t", "[80]", "specs.smi-spec.io/v1alpha2") + "---\n" +
            PortRouteYaml("UDPRoute", "n", "u", "[53]", "specs.smi-spec.io/v1alpha3") + "---\n" +
            GroupYaml("n", "g", "/", "specs.smi-spec.io/v1alpha2") + "---\n" +
            PortRouteYaml("TCPRoute", "n", "wrong-group", "[80]", "access.smi-spec.io/v1alpha4"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.traffic_targets, IsEmpty());
  EXPECT_THAT(s.tcp_routes, IsEmpty());
  EXPECT_THAT(s.udp_routes, IsEmpty());
  EXPECT_THAT(s.http_route_groups, IsEmpty());
  EXPECT_THAT(s.notices, IsEmpty());  // a handled kind in the wrong version is an error, not a skip
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre(
          "old.yaml:1 TrafficTarget n/v1: apiVersion access.smi-spec.io/v1alpha1 of TrafficTarget "
          "is "
          "not supported (use access.smi-spec.io/v1alpha3 or v1alpha2)",
          "old.yaml:9 TrafficTarget n/draft: apiVersion access.smi-spec.io/v1alpha4 of "
          "TrafficTarget "
          "is not supported (use access.smi-spec.io/v1alpha3 or v1alpha2)",
          "old.yaml:17 TrafficTarget n/group: apiVersion specs.smi-spec.io/v1alpha3 of "
          "TrafficTarget "
          "is not supported (use access.smi-spec.io/v1alpha3 or v1alpha2)",
          "old.yaml:25 TCPRoute n/t: apiVersion specs.smi-spec.io/v1alpha2 of TCPRoute is not "
          "supported (use specs.smi-spec.io/v1alpha4 or v1alpha3)",
          "old.yaml:30 UDPRoute n/u: apiVersion specs.smi-spec.io/v1alpha3 of UDPRoute is not "
          "supported (use specs.smi-spec.io/v1alpha4)",
          "old.yaml:35 HTTPRouteGroup n/g: apiVersion specs.smi-spec.io/v1alpha2 of HTTPRouteGroup "
          "is not supported (use specs.smi-spec.io/v1alpha4 or v1alpha3)",
          "old.yaml:42 TCPRoute n/wrong-group: apiVersion access.smi-spec.io/v1alpha4 of TCPRoute "
          "is "
          "not supported (use specs.smi-spec.io/v1alpha4 or v1alpha3)"));
}

TEST_F(FileSourceTest, InvalidSmiObjectsAreProblemsWithTheFieldPath) {
  Write("bad.yaml", R"(apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: cross, namespace: a}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: b}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: TCPRoute, name: route}]
---
)" + PortRouteYaml("TCPRoute", "a", "zero", "[0]") +
                        "---\n" + PortRouteYaml("UDPRoute", "a", "list", "{}") + "---\n" +
                        GroupYaml("a", "regex", "/a(") + "---\n" + TargetYaml("a", "ok"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("a/ok"));
  EXPECT_THAT(s.tcp_routes, IsEmpty());
  EXPECT_THAT(s.udp_routes, IsEmpty());
  EXPECT_THAT(s.http_route_groups, IsEmpty());
  ASSERT_THAT(s.problems, SizeIs(4));
  std::vector<std::string> got = Strings(s.problems);
  EXPECT_EQ(got[0],
            "bad.yaml:1 TrafficTarget a/cross: spec.destination.namespace 'b' differs from the "
            "TrafficTarget's namespace 'a'; a TrafficTarget may only protect its own namespace");
  EXPECT_EQ(got[1],
            "bad.yaml:9 TCPRoute a/zero: spec.matches.ports[0] '0' is not a port (1-65535)");
  EXPECT_EQ(got[2], "bad.yaml:14 UDPRoute a/list: spec.matches.ports must be a list of ports");
  EXPECT_THAT(got[3],
              HasSubstr("bad.yaml:19 HTTPRouteGroup a/regex: spec.matches[0].pathRegex '/a(' "
                        "is not a valid RE2 regex: "));
}

TEST_F(FileSourceTest, SmiObjectsWithoutANamespaceAreInDefault) {
  Write("smi.yaml", R"(apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: tt}
spec:
  destination: {kind: ServiceAccount, name: server}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: TCPRoute, name: route}]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: route}
spec: {matches: {ports: [1]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata: {name: broken}
spec: {matches: {ports: [x]}}
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("default/tt"));
  EXPECT_EQ(s.traffic_targets[0].destination, (model::Subject{"default", "server"}));
  EXPECT_THAT(s.traffic_targets[0].sources, ElementsAre(model::Subject{"default", "client"}));
  EXPECT_THAT(SmiKeys(s.tcp_routes), ElementsAre("default/route"));
  EXPECT_THAT(Strings(s.problems),
              ElementsAre("smi.yaml:14 UDPRoute default/broken: spec.matches.ports[0] 'x' is not a "
                          "port (1-65535)"));
}

TEST_F(FileSourceTest, SmiObjectsInAListAreUnpacked) {
  Write("list.yaml", R"(apiVersion: v1
kind: List
items:
- apiVersion: specs.smi-spec.io/v1alpha4
  kind: TCPRoute
  metadata: {name: route, namespace: n}
  spec: {matches: {ports: [5432]}}
- apiVersion: access.smi-spec.io/v1alpha3
  kind: TrafficTarget
  metadata: {name: tt, namespace: n}
  spec:
    destination: {kind: ServiceAccount, name: server}
    sources: [{kind: ServiceAccount, name: client, namespace: other}]
    rules: [{kind: TCPRoute, name: route}]
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_EQ(s.documents, 2);
  EXPECT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_THAT(s.traffic_targets[0].sources, ElementsAre(model::Subject{"other", "client"}));
}

TEST_F(FileSourceTest, DuplicateSmiObjectsAreRejectedPerKind) {
  // One name across the four kinds and across namespaces is fine; the same
  // kind/namespace/name twice is not, whichever file it is in.
  Write("a.yaml", TargetYaml("n", "route") + "---\n" +
                      PortRouteYaml("TCPRoute", "n", "route", "[1]") + "---\n" +
                      PortRouteYaml("UDPRoute", "n", "route", "[2]") + "---\n" +
                      GroupYaml("n", "route", "/a") + "---\n" + TargetYaml("other", "route"));
  Write("b.yaml", TargetYaml("n", "route") + "---\n" +
                      PortRouteYaml("TCPRoute", "n", "route", "[3]") + "---\n" +
                      PortRouteYaml("UDPRoute", "n", "route", "[4]") + "---\n" +
                      GroupYaml("n", "route", "/b") + "---\n" +
                      PortRouteYaml("TCPRoute", "n", "route", "[5]"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/route", "other/route"));
  ASSERT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  EXPECT_THAT(s.tcp_routes[0].ports, ElementsAre(1));
  ASSERT_THAT(SmiKeys(s.udp_routes), ElementsAre("n/route"));
  EXPECT_THAT(s.udp_routes[0].ports, ElementsAre(2));
  ASSERT_THAT(SmiKeys(s.http_route_groups), ElementsAre("n/route"));
  EXPECT_EQ(s.http_route_groups[0].matches[0].path_regex, "/a");
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("b.yaml:1 TrafficTarget n/route: duplicate: TrafficTarget n/route is "
                  "already defined in a.yaml; this copy is ignored",
                  "b.yaml:9 TCPRoute n/route: duplicate: TCPRoute n/route is already defined "
                  "in a.yaml; this copy is ignored",
                  "b.yaml:26 TCPRoute n/route: duplicate: TCPRoute n/route is already defined "
                  "in a.yaml; this copy is ignored",
                  "b.yaml:14 UDPRoute n/route: duplicate: UDPRoute n/route is already defined "
                  "in a.yaml; this copy is ignored",
                  "b.yaml:19 HTTPRouteGroup n/route: duplicate: HTTPRouteGroup n/route is "
                  "already defined in a.yaml; this copy is ignored"));
}

TEST_F(FileSourceTest, InvalidSmiObjectKeepsItsLastGoodVersion) {
  Write("smi.yaml", TargetYaml("n", "tt") + "---\n" +
                        PortRouteYaml("TCPRoute", "n", "route", "[80]") + "---\n" +
                        PortRouteYaml("UDPRoute", "n", "dns", "[53]") + "---\n" +
                        GroupYaml("n", "g", "/ok"));
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(s.problems, IsEmpty());

  // Bad edits to all four: each keeps its previous version.
  Write("smi.yaml", TargetYaml("n", "tt", "access.smi-spec.io/v1alpha3", "GRPCRoute") + "---\n" +
                        PortRouteYaml("TCPRoute", "n", "route", "[80, 99999]") + "---\n" +
                        PortRouteYaml("UDPRoute", "n", "dns", "[domain]") + "---\n" +
                        GroupYaml("n", "g", "("));
  s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_EQ(s.traffic_targets[0].rules[0].kind, model::RouteKind::kTcp);
  ASSERT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  EXPECT_THAT(s.tcp_routes[0].ports, ElementsAre(80));
  ASSERT_THAT(SmiKeys(s.udp_routes), ElementsAre("n/dns"));
  EXPECT_THAT(s.udp_routes[0].ports, ElementsAre(53));
  ASSERT_THAT(SmiKeys(s.http_route_groups), ElementsAre("n/g"));
  EXPECT_EQ(s.http_route_groups[0].matches[0].path_regex, "/ok");
  ASSERT_THAT(s.problems, SizeIs(4));
  for (const model::Problem& p : s.problems)
    EXPECT_THAT(p.reason, HasSubstr("; keeping its last good version")) << p.ToString();
  EXPECT_EQ(s.problems[0].ToString(),
            "smi.yaml:1 TrafficTarget n/tt: spec.rules[0].kind unknown route kind 'GRPCRoute' "
            "(expected TCPRoute, UDPRoute or HTTPRouteGroup); keeping its last good version");

  // Fixed: the new version replaces the kept one.
  Write("smi.yaml", TargetYaml("n", "tt", "access.smi-spec.io/v1alpha3", "UDPRoute"));
  s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_EQ(s.traffic_targets[0].rules[0].kind, model::RouteKind::kUdp);
  EXPECT_THAT(s.tcp_routes, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
}

TEST_F(FileSourceTest, SyntaxErrorKeepsTheFilesLastGoodSmiObjects) {
  Write("smi.yaml",
        TargetYaml("n", "tt") + "---\n" + PortRouteYaml("TCPRoute", "n", "route", "[80]"));
  Loader src(dir_);
  ASSERT_THAT(Load(src).problems, IsEmpty());
  Write("smi.yaml", TargetYaml("n", "tt") + "---\nspec: {matches: [\n");
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_THAT(s.problems[0].reason, HasSubstr("; keeping this file's last good objects"));
}

// Bug (contract): the header says "A rejected object keeps its last good
// version in force", but a TrafficTarget edited to an unsupported apiVersion is
// reported as a problem and withdrawn at once (file_source.cc: the
// unsupported_version branch `continue`s without looking at the previous
// version). Every other rejection of an SMI object keeps the last good one.
TEST_F(FileSourceTest, SmiObjectInAnUnsupportedVersionKeepsItsLastGoodVersion) {
  Write("smi.yaml", TargetYaml("n", "tt"));
  Loader src(dir_);
  ASSERT_THAT(SmiKeys(Load(src).traffic_targets), ElementsAre("n/tt"));
  Write("smi.yaml", TargetYaml("n", "tt", "access.smi-spec.io/v1alpha1"));
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_THAT(s.problems[0].reason, HasSubstr("; keeping its last good version"));
}

// --- Services, EndpointSlices and TrafficSplits ------------------------------

// A ClusterIP Service with one port 80 -> `target`.
std::string ServiceYaml(const std::string& ns, const std::string& name, const std::string& ip,
                        const std::string& target = "8080") {
  return absl::StrCat("apiVersion: v1\nkind: Service\nmetadata: {name: ", name, ", namespace: ", ns,
                      "}\nspec:\n  clusterIP: ", ip,
                      "\n  ports: [{name: http, port: 80, targetPort: ", target, "}]\n");
}
// An IPv4 EndpointSlice of `service` with one ready endpoint at `ip`.
std::string SliceYaml(const std::string& ns, const std::string& name, const std::string& service,
                      const std::string& ip, const std::string& address_type = "IPv4",
                      const std::string& api = "discovery.k8s.io/v1") {
  return absl::StrCat("apiVersion: ", api, "\nkind: EndpointSlice\nmetadata:\n  name: ", name,
                      "\n  namespace: ", ns, "\n  labels: {kubernetes.io/service-name: ", service,
                      "}\naddressType: ", address_type, "\nendpoints:\n- addresses: ['", ip,
                      "']\n  nodeName: node-a\nports: [{name: http, port: 8080}]\n");
}
// A TrafficSplit of root `root` over `backends` ("{service: a, weight: 1}, ...").
std::string SplitYaml(const std::string& ns, const std::string& name, const std::string& root,
                      const std::string& backends, const std::string& created = "",
                      const std::string& api = "split.smi-spec.io/v1alpha4") {
  return absl::StrCat("apiVersion: ", api, "\nkind: TrafficSplit\nmetadata: {name: ", name,
                      ", namespace: ", ns,
                      created.empty() ? "" : absl::StrCat(", creationTimestamp: '", created, "'"),
                      "}\nspec:\n  service: ", root, "\n  backends: [", backends, "]\n");
}

TEST_F(FileSourceTest, ReadsTheCanaryExampleWithItsPodsServicesAndSlices) {
  // SMI.md 5.3 with what it needs around it: the root and leaf Services,
  // their EndpointSlices and the pods behind them.
  Write("shop.yaml", PodYaml("shop", "checkout-v1-a", "10.244.1.10") + "---\n" +
                         PodYaml("shop", "checkout-v2-a", "10.244.2.20", "node-b") + R"(---
apiVersion: v1
kind: Service
metadata:
  name: checkout
  namespace: shop
  annotations: {shunt.io/balancer: ewma}
spec:
  clusterIP: 10.96.0.100
  selector: {app: checkout}
  ports:
  - {name: http, port: 80, targetPort: http}
---
)" + ServiceYaml("shop", "checkout-v1", "10.96.0.101") +
                         "---\n" + ServiceYaml("shop", "checkout-v2", "10.96.0.102") + R"(---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: checkout-v1-x7k2p
  namespace: shop
  labels: {kubernetes.io/service-name: checkout-v1}
addressType: IPv4
endpoints:
- addresses: [10.244.1.10]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-a
  targetRef: {kind: Pod, namespace: shop, name: checkout-v1-a}
ports:
- {name: http, port: 8080, protocol: TCP}
---
)" + SliceYaml("shop", "checkout-v2-q9z4d", "checkout-v2", "10.244.2.20") +
                         R"(---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata:
  name: checkout-canary
  namespace: shop
spec:
  service: checkout           # root/apex Service clients call (OSM also accepts the FQDN)
  backends:
  - service: checkout-v1      # leaf Services, same namespace, same port as root
    weight: 90
  - service: checkout-v2
    weight: 10                # relative weights; 900/100 or 9/1 mean the same
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Strings(s.problems), IsEmpty());
  EXPECT_THAT(Strings(s.notices), IsEmpty());
  EXPECT_EQ(s.documents, 8);
  EXPECT_THAT(Keys(s), ElementsAre("shop/checkout-v1-a", "shop/checkout-v2-a"));

  ASSERT_THAT(SmiKeys(s.services),
              ElementsAre("shop/checkout", "shop/checkout-v1", "shop/checkout-v2"));
  EXPECT_EQ(s.services[0].cluster_ip, "10.96.0.100");
  EXPECT_EQ(s.services[0].ports[0].target_port_name, "http");
  EXPECT_EQ(s.services[0].annotations.at("shunt.io/balancer"), "ewma");
  EXPECT_EQ(s.services[1].ports[0].target_port, 8080);

  ASSERT_THAT(SmiKeys(s.endpoint_slices),
              ElementsAre("shop/checkout-v1-x7k2p", "shop/checkout-v2-q9z4d"));
  EXPECT_EQ(s.endpoint_slices[0].service_name, "checkout-v1");
  EXPECT_THAT(s.endpoint_slices[0].endpoints[0].addresses, ElementsAre("10.244.1.10"));
  EXPECT_EQ(s.endpoint_slices[0].endpoints[0].target_ref->name, "checkout-v1-a");
  EXPECT_EQ(s.endpoint_slices[1].service_name, "checkout-v2");
  EXPECT_TRUE(s.endpoint_slices[1].endpoints[0].ready);
  EXPECT_EQ(s.endpoint_slices[1].ports[0].port, 8080);

  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("shop/checkout-canary"));
  EXPECT_EQ(s.traffic_splits[0].service, "checkout");
  EXPECT_THAT(s.traffic_splits[0].backends, ElementsAre(model::SplitBackend{"checkout-v1", 90},
                                                        model::SplitBackend{"checkout-v2", 10}));
}

TEST_F(FileSourceTest, SplitsOfEverySupportedVersion) {
  Write(
      "splits.yaml",
      SplitYaml("n", "s4", "r4", "{service: a, weight: 1}") + "---\n" +
          SplitYaml("n", "s3", "r3", "{service: a, weight: 1}", "", "split.smi-spec.io/v1alpha3") +
          "---\n" +
          SplitYaml("n", "s2", "r2", "{service: a, weight: 1}", "", "split.smi-spec.io/v1alpha2") +
          "---\n" +
          SplitYaml("n", "s1", "r1", "{service: a, weight: 500m}", "",
                    "split.smi-spec.io/v1alpha1") +
          "---\n" +
          SplitYaml("n", "beta", "r0", "{service: a, weight: 1}", "", "split.smi-spec.io/v1beta1"));
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("n/s4", "n/s3", "n/s2", "n/s1"));
  EXPECT_EQ(s.traffic_splits[3].backends[0].weight, 500);
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("splits.yaml:29 TrafficSplit n/beta: apiVersion split.smi-spec.io/v1beta1 of "
                  "TrafficSplit is not supported (use split.smi-spec.io/v1alpha4, v1alpha3, "
                  "v1alpha2 or v1alpha1)"));
}

TEST_F(FileSourceTest, ObjectsNotLoadBalancedAreNoticesNotProblems) {
  // An IPv6 slice (the other half of a dual-stack service) and an
  // ExternalName service are valid Kubernetes this version skips.
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\n" +
                        SliceYaml("demo", "web-v4", "web", "10.244.0.5") + "---\n" +
                        SliceYaml("demo", "web-v6", "web", "fd00::5", "IPv6") + R"(---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: demo}
spec: {type: ExternalName, externalName: db.example.com}
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.services), ElementsAre("demo/web"));
  EXPECT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/web-v4"));
  EXPECT_THAT(Strings(s.problems), IsEmpty());
  EXPECT_THAT(
      Strings(s.notices),
      ElementsAre("svc.yaml:20 EndpointSlice demo/web-v6: addressType IPv6 is not "
                  "load-balanced in this version",
                  "svc.yaml:32 Service demo/db: spec.type ExternalName has no cluster IP; not "
                  "load-balanced"));
  EXPECT_EQ(s.documents, 4);
}

TEST_F(FileSourceTest, AnObjectThatBecomesUnbalancedIsWithdrawnNotKept) {
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\n" +
                        SliceYaml("demo", "web-1", "web", "10.244.0.5"));
  Loader src(dir_);
  ASSERT_THAT(SmiKeys(Load(src).endpoint_slices), ElementsAre("demo/web-1"));
  // A valid change to something this version skips is not a bad edit.
  Write("svc.yaml", ServiceYaml("demo", "web", "'fd00::1'") + "---\n" +
                        SliceYaml("demo", "web-1", "web", "fd00::5", "IPv6"));
  Snapshot s = Load(src);
  EXPECT_THAT(s.services, IsEmpty());
  EXPECT_THAT(s.endpoint_slices, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_THAT(
      Strings(s.notices),
      ElementsAre("svc.yaml:1 Service demo/web: spec.clusterIP 'fd00::1' is IPv6; IPv6 is not "
                  "load-balanced in this version",
                  "svc.yaml:8 EndpointSlice demo/web-1: addressType IPv6 is not load-balanced "
                  "in this version"));
}

TEST_F(FileSourceTest, InvalidServicesSlicesAndSplitsAreProblemsWithTheFieldPath) {
  Write("bad.yaml",
        ServiceYaml("demo", "web", "10.96.0.1", "Web") + "---\n" +
            SliceYaml("demo", "web-1", "web", "10.244.0.300") + "---\n" +
            SplitYaml("demo", "zero", "web", "{service: a, weight: 0}, {service: b, weight: 0}") +
            "---\n" +
            SplitYaml("demo", "v2m", "web", "{service: a, weight: 1}", "",
                      "split.smi-spec.io/v1alpha2") +
            "  matches: [{kind: HTTPRouteGroup, name: g}]\n" + "---\n" +
            SliceYaml("demo", "web-2", "web", "10.244.0.1", "IPv4", "discovery.k8s.io/v1beta1"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.services, IsEmpty());
  EXPECT_THAT(s.endpoint_slices, IsEmpty());
  EXPECT_THAT(s.traffic_splits, IsEmpty());
  EXPECT_THAT(s.notices, IsEmpty());
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("bad.yaml:1 Service demo/web: spec.ports[0].targetPort 'Web' is not a valid "
                  "port name (at most 15 lowercase letters, digits and '-', with a letter, no "
                  "'-' at either end or twice in a row)",
                  "bad.yaml:8 EndpointSlice demo/web-1: endpoints[0].addresses[0] '10.244.0.300' "
                  "is not an IPv4 address (the slice's addressType is IPv4)",
                  "bad.yaml:20 TrafficSplit demo/zero: spec.backends: all backend weights are 0",
                  "bad.yaml:27 TrafficSplit demo/v2m: spec.matches is not part of "
                  "split.smi-spec.io/v1alpha2 (it came in v1alpha3)",
                  "bad.yaml:35 EndpointSlice demo/web-2: apiVersion discovery.k8s.io/v1beta1 of "
                  "EndpointSlice is not supported (use discovery.k8s.io/v1)"));
}

TEST_F(FileSourceTest, InvalidServiceSliceOrSplitKeepsItsLastGoodVersion) {
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\n" +
                        SliceYaml("demo", "web-1", "web", "10.244.0.5") + "---\n" +
                        SplitYaml("demo", "split", "web", "{service: a, weight: 1}"));
  Loader src(dir_);
  ASSERT_THAT(Load(src).problems, IsEmpty());

  // Bad edits to all three, and the slice moved to an unsupported version.
  Write("svc.yaml",
        ServiceYaml("demo", "web", "10.96.0.1", "70000") + "---\n" +
            SliceYaml("demo", "web-1", "web", "10.244.0.6", "IPv4", "discovery.k8s.io/v1beta1") +
            "---\n" + SplitYaml("demo", "split", "web", "{service: a, weight: -1}"));
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.services), ElementsAre("demo/web"));
  EXPECT_EQ(s.services[0].ports[0].target_port, 8080);
  ASSERT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/web-1"));
  EXPECT_THAT(s.endpoint_slices[0].endpoints[0].addresses, ElementsAre("10.244.0.5"));
  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("demo/split"));
  EXPECT_EQ(s.traffic_splits[0].backends[0].weight, 1);
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("svc.yaml:1 Service demo/web: spec.ports[0].targetPort '70000' is not a port "
                  "(1-65535); keeping its last good version",
                  "svc.yaml:8 EndpointSlice demo/web-1: apiVersion discovery.k8s.io/v1beta1 of "
                  "EndpointSlice is not supported (use discovery.k8s.io/v1); keeping its last "
                  "good version",
                  "svc.yaml:20 TrafficSplit demo/split: spec.backends[0].weight -1 is negative; "
                  "keeping its last good version"));

  // A syntax error keeps the whole file's last good objects.
  Write("svc.yaml", ServiceYaml("demo", "web", "10.96.0.1") + "---\nspec: [\n");
  s = Load(src);
  EXPECT_THAT(SmiKeys(s.services), ElementsAre("demo/web"));
  EXPECT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/web-1"));
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("demo/split"));
}

TEST_F(FileSourceTest, DuplicateServicesSlicesAndSplitsLaterCopyLoses) {
  Write("a.yaml", ServiceYaml("demo", "x", "10.96.0.1") + "---\n" +
                      SliceYaml("demo", "x-1", "x", "10.244.0.1") + "---\n" +
                      SplitYaml("demo", "x", "x", "{service: x-v1, weight: 1}"));
  // The same names again, and the same names in another namespace (fine).
  Write("b.yaml", ServiceYaml("demo", "x", "10.96.0.2") + "---\n" +
                      SliceYaml("demo", "x-1", "x", "10.244.0.2") + "---\n" +
                      SplitYaml("demo", "x", "x", "{service: x-v2, weight: 1}") + "---\n" +
                      ServiceYaml("other", "x", "10.96.0.3"));
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.services), ElementsAre("demo/x", "other/x"));
  EXPECT_EQ(s.services[0].cluster_ip, "10.96.0.1");
  ASSERT_THAT(SmiKeys(s.endpoint_slices), ElementsAre("demo/x-1"));
  EXPECT_EQ(s.endpoint_slices[0].endpoints[0].addresses[0], "10.244.0.1");
  ASSERT_THAT(SmiKeys(s.traffic_splits), ElementsAre("demo/x"));
  EXPECT_EQ(s.traffic_splits[0].backends[0].service, "x-v1");
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre(
          "b.yaml:1 Service demo/x: duplicate: Service demo/x is already defined in "
          "a.yaml; this copy is ignored",
          "b.yaml:8 EndpointSlice demo/x-1: duplicate: EndpointSlice demo/x-1 is already "
          "defined in a.yaml; this copy is ignored",
          "b.yaml:20 TrafficSplit demo/x: duplicate: TrafficSplit demo/x is already defined "
          "in a.yaml; this copy is ignored"));
}

TEST_F(FileSourceTest, SplitsOfOneRootTheOldestWins) {
  // SMI.md 7.10: by creationTimestamp, then by name; a split without a
  // timestamp counts as newer than one with. Roots are per namespace, and
  // "web.shop.svc.cluster.local" is the root "web".
  Write("a.yaml",
        SplitYaml("shop", "b-new", "web", "{service: v1, weight: 1}", "2024-03-01T00:00:00Z") +
            "---\n" + SplitYaml("shop", "z-none", "web", "{service: v2, weight: 1}") + "---\n" +
            SplitYaml("other", "b-new", "web", "{service: v1, weight: 1}"));
  Write("b.yaml", SplitYaml("shop", "y-old", "web.shop.svc.cluster.local",
                            "{service: v3, weight: 1}", "2024-01-01T00:00:00Z") +
                      "---\n" + SplitYaml("shop", "a-none", "web", "{service: v4, weight: 1}"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("other/b-new", "shop/y-old"));
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("a.yaml:1 TrafficSplit shop/b-new: root service 'web' is already split by "
                  "shop/y-old; ignored",
                  "a.yaml:8 TrafficSplit shop/z-none: root service 'web' is already split by "
                  "shop/y-old; ignored",
                  "b.yaml:8 TrafficSplit shop/a-none: root service 'web' is already split by "
                  "shop/y-old; ignored"));

  // The winner goes: the next oldest takes over, without a reload of a.yaml.
  Write("b.yaml", SplitYaml("shop", "a-none", "web", "{service: v4, weight: 1}"));
  s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("shop/b-new", "other/b-new"));
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("a.yaml:8 TrafficSplit shop/z-none: root service 'web' is already split by "
                  "shop/b-new; ignored",
                  "b.yaml:1 TrafficSplit shop/a-none: root service 'web' is already split by "
                  "shop/b-new; ignored"));

  // Without timestamps, the name decides.
  Write("a.yaml", SplitYaml("shop", "z-none", "web", "{service: v2, weight: 1}"));
  s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_splits), ElementsAre("shop/a-none"));
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("a.yaml:1 TrafficSplit shop/z-none: root service 'web' is already split by "
                  "shop/a-none; ignored"));
}

TEST_F(FileSourceTest, ServiceInAnotherApiVersionIsSkipped) {
  Write("svc.yaml", "apiVersion: v2\nkind: Service\nmetadata: {name: web}\n");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.services, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_THAT(
      Strings(s.notices),
      ElementsAre(
          "svc.yaml:1 Service web: kind Service (v2) is not handled by this version; skipped"));
}

}  // namespace
}  // namespace shunt::source
