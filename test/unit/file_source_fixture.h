// The file source tests' shared fixture: a temporary config directory, a
// source with its object store, and helpers to write and read manifests.
#pragma once

#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/source/file_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::source::file_source_test {

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

// A valid Pod manifest as one YAML document (no leading "---").
inline std::string PodYaml(const std::string& ns, const std::string& name, const std::string& ip,
                           const std::string& node = "node-a") {
  return absl::StrCat("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", name, "\n  namespace: ", ns,
                      "\nspec:\n  nodeName: ", node, "\nstatus:\n  podIP: ", ip, "\n");
}

inline std::vector<std::string> Keys(const Snapshot& s) {
  std::vector<std::string> out;
  for (const model::Pod& p : s.pods) out.push_back(p.Key());
  return out;
}

inline std::vector<std::string> Strings(const std::vector<model::Problem>& problems) {
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

// The keys (namespace/name) of objects, in order.
template <typename T>
inline std::vector<std::string> SmiKeys(const std::vector<T>& objects) {
  std::vector<std::string> out;
  for (const T& o : objects) out.push_back(o.Key());
  return out;
}

}  // namespace shunt::source::file_source_test
