// The L7 layer's fixture on one node (docs/l7.md): two simulated nodes as
// MtlsMeshTest, a TrafficTarget that grants demo/client only GET /allowed*
// of demo/local (so its connections go to the node proxy's L7 port), and
// python's http.server in demo/local on port 8000.
#pragma once

#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/mtls_fixture.h"

namespace shunt::e2e {

// python's http.server in `pod` on port 8000, serving allowed.txt and
// denied.txt from `dir`, its log in `log`; returns once it accepts.
// `bind` "::": IPv6 and IPv4 both (python's dual-stack server).
inline absl::Status StartHttpServer(TestNode& node, const TestPod& pod, const std::string& dir,
                                    const std::string& log, const std::string& bind = "") {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/allowed.txt") << "ALLOWED-PAGE\n";
  std::ofstream(dir + "/denied.txt") << "DENIED-PAGE\n";
  std::vector<std::string> argv = {"python3", "-m", "http.server", "8000", "--directory", dir};
  if (!bind.empty()) argv.insert(argv.end(), {"--bind", bind});
  SHUNT_RETURN_IF_ERROR(node.Spawn(pod, argv, log).status());
  return Eventually(
      "http.server listens",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, node.PodSocket(pod, SOCK_STREAM));
        return ConnectTo(s.get(), pod.ip, 8000);
      },
      10000);
}

// demo/client may GET /allowed* of demo/local; the group's other match
// (POST /allowed*) is granted to nobody.
inline constexpr char kHttpOnlyGrant[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: local-api, namespace: demo}
spec:
  matches:
  - {name: read, pathRegex: "/allowed.*", methods: [GET]}
  - {name: write, pathRegex: "/allowed.*", methods: [POST]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-reads-local, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: local, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: local-api, matches: [read]}]
)";

// Across nodes: demo/client (node 1) may GET /allowed* of demo/server
// (node 2), whose node's proxy judges each request.
inline constexpr char kCrossNodeHttpGrant[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: server-api, namespace: demo}
spec:
  matches:
  - {name: read, pathRegex: "/allowed.*", methods: [GET]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-reads-server, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: server-api, matches: [read]}]
)";

// Across nodes (kCrossNodeHttpGrant): the connection rides the mTLS
// tunnel; node 2's proxy runs the L7 layer on the stream and judges each
// request on the identity the client's certificate proved.
class L7CrossNodeTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    n1_flags_ = {"--mode=enforce"};
    n2_flags_ = {"--mode=enforce"};
    policy_yaml_ = kCrossNodeHttpGrant;
    MtlsMeshTest::SetUp();
  }
};

class L7ProxyTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    n1_flags_ = {n1_flags_extra_, "--metrics-addr=127.0.0.1:0"};
    n1_flags_.insert(n1_flags_.end(), more_flags_.begin(), more_flags_.end());
    policy_yaml_ = kHttpOnlyGrant;
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // python's http.server in demo/local, serving two files.
    www_ = n1_->work_dir() + "/www";
    server_log_ = n1_->work_dir() + "/http.log";
    ASSERT_OK(StartHttpServer(*n1_, *local_, www_, server_log_, dual_stack_ ? "::" : ""));
  }

  absl::StatusOr<std::string> RunInClient(const std::vector<std::string>& argv) {
    return RunInPod(*n1_, *client_, argv);
  }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://", local_->ip, ":8000", path);
  }

  std::string n1_flags_extra_ = "--mode=enforce";  // node 1's policy mode
  std::vector<std::string> more_flags_;            // node 1's other flags
  std::string www_, server_log_;
};

}  // namespace shunt::e2e
