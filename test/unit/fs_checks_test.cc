// lib::PlanBpffsDir / CheckBpffsDir: which --bpffs directories are accepted,
// which get created, and what the refusal names. A fake filesystem serves
// the bpffs cases (no root, no mount); the real one the refusals.
#include "agent/lib/fs_checks.h"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::lib {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr PathFacts kBpffsDir{.is_dir = true, .on_bpffs = true};
constexpr PathFacts kOtherDir{.is_dir = true, .on_bpffs = false};
constexpr PathFacts kBpffsPin{.is_dir = false, .on_bpffs = true};
constexpr char kMountHint[] =
    "; mount one with `mount -t bpf bpf /sys/fs/bpf` and pass a directory below it";

// Paths not listed do not exist (ENOENT).
PathProbe FakeFs(std::map<std::string, PathFacts> paths) {
  return [paths = std::move(paths)](const std::string& path) {
    auto it = paths.find(path);
    return it == paths.end() ? PathFacts{.err = ENOENT} : it->second;
  };
}

const PathProbe kMounted = FakeFs({{"/", kOtherDir},
                                   {"/sys", kOtherDir},
                                   {"/sys/fs", kOtherDir},
                                   {"/sys/fs/bpf", kBpffsDir},
                                   {"/sys/fs/bpf/shunt", kBpffsDir},
                                   {"/sys/fs/bpf/shunt/shunt_meta_v1", kBpffsPin},
                                   {"/tmp", kOtherDir}});

TEST(PlanBpffsDirTest, ExistingDirectoryOnBpffsNeedsNothing) {
  auto plan = PlanBpffsDir("/sys/fs/bpf/shunt", kMounted);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, IsEmpty());
}

TEST(PlanBpffsDirTest, MissingDirectoriesBelowBpffsAreCreatedOutermostFirst) {
  auto plan = PlanBpffsDir("/sys/fs/bpf/shunt-test-a/b/c", kMounted);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre("/sys/fs/bpf/shunt-test-a", "/sys/fs/bpf/shunt-test-a/b",
                                 "/sys/fs/bpf/shunt-test-a/b/c"));
  plan = PlanBpffsDir("/sys/fs/bpf/shunt/node-1/", kMounted);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre("/sys/fs/bpf/shunt/node-1"));
}

TEST(PlanBpffsDirTest, RelativePathStartsFromTheWorkingDirectory) {
  auto plan = PlanBpffsDir("pins/n1", FakeFs({{".", kBpffsDir}}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre("pins", "pins/n1"));
}

TEST(PlanBpffsDirTest, ExistingDirectoryElsewhereIsNotOnBpffs) {
  auto plan = PlanBpffsDir("/tmp", kMounted);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(),
            absl::StrCat("bpffs: /tmp is not on a BPF filesystem", kMountHint));
}

TEST(PlanBpffsDirTest, NamesTheMissingDirectoryAndItsParentOffBpffs) {
  auto plan = PlanBpffsDir("/tmp/pins", kMounted);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(),
            absl::StrCat("bpffs: /tmp/pins does not exist, and its parent /tmp is not on a BPF "
                         "filesystem",
                         kMountHint));
  plan = PlanBpffsDir("/nonexistent-shunt/a/b", kMounted);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(),
            absl::StrCat("bpffs: /nonexistent-shunt/a/b: /nonexistent-shunt does not exist, and "
                         "its parent / is not on a BPF filesystem",
                         kMountHint));
}

TEST(PlanBpffsDirTest, BpffsNotMountedIsNamedAsSuch) {
  auto plan =
      PlanBpffsDir("/sys/fs/bpf/shunt", FakeFs({{"/", kOtherDir}, {"/sys/fs/bpf", kOtherDir}}));
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(),
            absl::StrCat("bpffs: /sys/fs/bpf/shunt does not exist, and its parent /sys/fs/bpf is "
                         "not on a BPF filesystem",
                         kMountHint));
}

TEST(PlanBpffsDirTest, AFileOnThePathIsNamed) {
  auto plan = PlanBpffsDir("/sys/fs/bpf/shunt/shunt_meta_v1", kMounted);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(), "bpffs: /sys/fs/bpf/shunt/shunt_meta_v1 is not a directory");
  // stat() of a path below a file fails with ENOTDIR.
  PathProbe below_file = [](const std::string& path) {
    if (path == "/sys/fs/bpf/shunt/shunt_meta_v1") return kBpffsPin;
    return PathFacts{.err = ENOTDIR};
  };
  plan = PlanBpffsDir("/sys/fs/bpf/shunt/shunt_meta_v1/x", below_file);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.status().message(),
            "bpffs: /sys/fs/bpf/shunt/shunt_meta_v1 is not a directory, so "
            "/sys/fs/bpf/shunt/shunt_meta_v1/x cannot be created below it");
}

TEST(PlanBpffsDirTest, UnreadableAncestorKeepsItsErrno) {
  PathProbe denied = [](const std::string& path) {
    return path == "/sys/fs/bpf" ? PathFacts{.err = EACCES} : PathFacts{.err = ENOENT};
  };
  auto plan = PlanBpffsDir("/sys/fs/bpf/shunt", denied);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(plan.status().message()),
              ::testing::StartsWith("bpffs: stat /sys/fs/bpf"));
}

TEST(PlanBpffsDirTest, EmptyPathIsRefused) {
  EXPECT_EQ(PlanBpffsDir("", kMounted).status().code(), absl::StatusCode::kFailedPrecondition);
}

// The real filesystem: a temporary directory is not on bpffs.
class BpffsDirOnDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shunt_fs_checks_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(BpffsDirOnDiskTest, MissingParentIsNamedAndNothingIsCreated) {
  const std::string want = dir_ + "/a/b/c";
  for (const absl::Status& s : {CheckBpffsDir(want), MakeBpffsDir(want)}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message(),
              absl::StrCat("bpffs: ", want, ": ", dir_, "/a does not exist, and its ", "parent ",
                           dir_, " is not on a BPF filesystem", kMountHint));
  }
  EXPECT_FALSE(fs::exists(dir_ + "/a"));
}

TEST_F(BpffsDirOnDiskTest, ExistingDirectoryAndFileAreNamed) {
  absl::Status s = CheckBpffsDir(dir_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), absl::StrCat("bpffs: ", dir_, " is not on a BPF filesystem", kMountHint));
  std::ofstream(dir_ + "/file") << "x";
  s = CheckBpffsDir(dir_ + "/file/pins");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), absl::StrCat("bpffs: ", dir_, "/file is not a directory, so ", dir_,
                                      "/file/pins cannot be created below it"));
}

}  // namespace
}  // namespace shunt::lib
