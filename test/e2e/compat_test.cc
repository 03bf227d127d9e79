// The compatibility suite: every case of test/e2e/compat runs once on
// plain TCP (before the agent starts) and once meshed, in the same pods, and
// what the application saw must be the same. The meshed run must also have
// taken the path docs/short-circuit.md gives for it: most payload socket to
// socket, off the veths (the node-side veth byte counters), or all of it on
// TCP for the reason counted.
#include "absl/strings/str_cat.h"
#include "shunt/abi/counters.h"
#include "shunt/abi/sockmap.h"
#include "test/e2e/compat/compat_case.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

using compat::Case;
using compat::CaseEnv;
using compat::Path;

std::vector<Case> AllCases() {
  std::vector<Case> all = compat::ReceiveCases();
  for (auto& c : compat::SendCases()) all.push_back(c);
  for (auto& c : compat::ProgramCases()) all.push_back(c);
  return all;
}

class CompatTest : public MeshTest, public ::testing::WithParamInterface<Case> {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(
        proxy_, node_->AddPod({.name = "proxy", .namespace_ = "demo", .service_account = "proxy"}));
  }
  absl::StatusOr<compat::Outcome> Run(uint16_t port) {
    CaseEnv env{*node_, *client_, *server_, *proxy_, port};
    return GetParam().run(env);
  }
  TestPod* proxy_ = nullptr;
};

TEST_P(CompatTest, SeesTheSameWithAndWithoutTheAgent) {
  const Case& c = GetParam();
  ASSERT_OK_AND_ASSIGN(compat::Outcome plain, Run(7200));

  // A reader that stops is held to the node's budget (256 MiB here; by
  // default the kernel's tcp_mem pressure threshold, GiBs on this VM).
  StartMesh({"--node-tcp-memory-bytes=268435456"});
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, node_->VethBytes(*client_));
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> reasons_before, node_->TcpReasonCounts());
  const uint64_t redirected_before = Counter(SHUNT_CTR_BYTES_REDIRECTED);
  const uint64_t awaited_before = Counter(SHUNT_CTR_MSG_AWAIT_READER);
  ASSERT_OK_AND_ASSIGN(compat::Outcome meshed, Run(7300));
  EXPECT_EQ(meshed.seen, plain.seen) << "the application saw something else with the agent";

  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, node_->VethBytes(*client_));
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> reasons_after, node_->TcpReasonCounts());
  const uint64_t veth = veth_after - veth_before;
  const uint64_t redirected = Counter(SHUNT_CTR_BYTES_REDIRECTED) - redirected_before;
  std::fprintf(stderr, "%s: %s\n  payload %lu, redirected %lu, veth %lu\n", c.name,
               meshed.seen.c_str(), static_cast<unsigned long>(meshed.payload),
               static_cast<unsigned long>(redirected), static_cast<unsigned long>(veth));
  if (c.path == Path::kShortCircuit) {
    // What crosses the veth: handshakes, FINs, and what went by TCP before
    // the reader was seen reading and had read all of it — for a writer that
    // streams from the start (nginx's sendfile) anything from 5 to 100% of
    // its first 48 MiB on this VM; most of the payload goes socket to socket.
    EXPECT_GE(redirected, meshed.payload / 2) << "payload did not go socket to socket";
    EXPECT_LT(veth, meshed.payload / 2 + 64 * 1024) << "payload crossed the veth";
    // A case that ends on TCP after its short-circuited part says why.
    if (c.reason > 0) {
      EXPECT_GE(reasons_after[c.reason] - reasons_before[c.reason], 1u)
          << "reason " << c.reason << " was not counted";
    }
  } else {
    EXPECT_GE(veth, meshed.payload) << "payload did not take the TCP/IP path";
    EXPECT_LT(redirected, meshed.payload / 100 + 4096) << "payload was redirected";
    if (c.reason >= 0) {
      EXPECT_GE(reasons_after[c.reason] - reasons_before[c.reason], 1u)
          << "reason " << c.reason << " was not counted";
    } else {
      EXPECT_GE(Counter(SHUNT_CTR_MSG_AWAIT_READER) - awaited_before, 1u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CompatTest, ::testing::ValuesIn(AllCases()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace shunt::e2e
