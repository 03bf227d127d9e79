// FileSource + ObjectStore: a directory of YAML manifests -> Snapshot; files,
// documents, last good versions, duplicates.
#include "agent/source/file_source.h"

#include "test/unit/file_source_fixture.h"

namespace shunt::source {
namespace {

using namespace file_source_test;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

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

TEST_F(FileSourceTest, AFileOverTheSizeLimitIsNotReadAndKeepsItsLastGoodObjects) {
  const std::string a = PodYaml("demo", "a", "10.0.0.1");
  Write("a.yaml", a);
  Loader src(dir_);
  src.src.set_max_file_bytes(a.size());  // exactly at the limit: read
  ASSERT_THAT(Keys(Load(src)), ElementsAre("demo/a"));
  // One byte over: not read, with a reason; the file's objects stay.
  Write("a.yaml", a + "\n");
  Snapshot s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a"));
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_EQ(s.problems[0].ref.file, "a.yaml");
  EXPECT_EQ(s.problems[0].reason,
            absl::StrCat("is larger than ", a.size(),
                         " bytes, the most a manifest file may hold: not read; keeping this "
                         "file's last good objects"));
  // A new file over the limit brings nothing and claims to keep nothing.
  Write("b.yaml", PodYaml("demo", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "10.0.0.2"));
  s = Load(src);
  EXPECT_THAT(Keys(s), ElementsAre("demo/a"));
  ASSERT_THAT(s.problems, SizeIs(2));
  EXPECT_EQ(s.problems[1].ref.file, "b.yaml");
  EXPECT_THAT(s.problems[1].reason, Not(HasSubstr("keeping")));
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
  EXPECT_THAT(Strings(s.problems),
              ElementsAre("b.yaml:1 Pod demo/second: status.podIP 10.0.0.1 is already an IP of Pod "
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

// Found by fuzzing (test/fuzz manifest_yaml): on this input yaml-cpp 0.7's
// LoadAll hands out the same empty document for ever and allocates until
// the machine runs out of memory; a manifest file of 5 bytes took the agent
// down. It is now a syntax error of its file.
TEST(ParseManifestTest, InputOnWhichTheYamlParserMakesNoProgressIsASyntaxError) {
  for (const char* text : {"{\"\"},", "a: 1\n---\n{\"\"},\n"}) {
    const ManifestText parsed = ParseManifest("bad.yaml", text);
    ASSERT_TRUE(parsed.syntax_error) << text;
    EXPECT_THAT(parsed.syntax_error->ToString(), HasSubstr("bad.yaml:"));
    EXPECT_THAT(parsed.syntax_error->reason, HasSubstr("makes no progress"));
    EXPECT_THAT(parsed.docs, IsEmpty());
  }
  // Empty documents and a trailing "..." still make progress.
  const ManifestText ok = ParseManifest("ok.yaml", "---\n---\na: 1\n...\n");
  EXPECT_FALSE(ok.syntax_error);
  EXPECT_THAT(ok.docs, SizeIs(1));
}

}  // namespace
}  // namespace shunt::source
