// Services at the socket: connect() to a ClusterIP address becomes a
// connection to a ready backend pod, getpeername() still answers the
// service address, weights of a TrafficSplit hold, a service without a
// ready backend refuses at once, and the rewritten connection is
// short-circuited like any pod-to-pod one.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"
#include "test/e2e/harness/sanitizers.h"

namespace shunt::e2e {
namespace {

constexpr char kServicesVip[] = "10.96.0.10";
constexpr char kVipV1[] = "10.96.0.11";
constexpr char kVipV2[] = "10.96.0.12";

class ServicesTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(
        server_b_,
        node_->AddPod({.name = "server-b", .namespace_ = "demo", .service_account = "server"}));
  }

  // These tests check the slot tables (uniform, weighted, refused), so their
  // services balance at random: with the latency-aware default, one rude
  // connection (the acceptor closes without reading: a request unanswered)
  // rightly makes its backend the one to avoid. latency_lb_test.cc tests that.
  static std::string Service(const std::string& name, const std::string& vip) {
    return absl::StrCat("---\napiVersion: v1\nkind: Service\nmetadata: {name: ", name,
                        ", namespace: demo, annotations: {balancer.shunt.dev/algorithm: "
                        "random}}\nspec:\n  clusterIP: ",
                        vip, "\n  ports: [{name: http, port: 80, targetPort: 8080}]\n");
  }
  static std::string Slice(const std::string& service, const std::vector<const TestPod*>& pods,
                           bool ready) {
    std::string y = absl::StrCat(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ", service,
        "-1\n  namespace: demo\n  labels: {kubernetes.io/service-name: ", service,
        "}\naddressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\n"
        "endpoints:\n");
    for (const TestPod* p : pods)
      absl::StrAppend(&y, "- addresses: [\"", p->ip,
                      "\"]\n  conditions: {ready: ", ready ? "true" : "false",
                      "}\n  targetRef: {kind: Pod, name: ", p->name, ", namespace: demo}\n");
    return y;
  }

  // Listeners on 8080 in each server pod, accepting in the background and
  // counting connections by pod.
  void Serve(const std::vector<const TestPod*>& pods) {
    for (const TestPod* p : pods) {
      ASSERT_OK_AND_ASSIGN(auto l, node_->PodSocket(*p, SOCK_STREAM));
      ASSERT_OK(ListenOn(l.get(), 8080));
      listeners_.emplace_back(p->name, std::move(l));
      accepted_[p->name] = 0;  // every entry exists before the acceptor runs
    }
    acceptor_ = std::thread([this] {
      while (!stop_) {
        std::vector<pollfd> fds;
        for (auto& [name, l] : listeners_) fds.push_back({l.get(), POLLIN, 0});
        if (poll(fds.data(), fds.size(), 20) <= 0) continue;
        for (size_t i = 0; i < fds.size(); ++i) {
          if (!(fds[i].revents & POLLIN)) continue;
          int c = accept(fds[i].fd, nullptr, nullptr);
          if (c < 0) continue;
          ++accepted_[listeners_[i].first];
          close(c);  // counted; thousands kept open would run out of descriptors
        }
      }
    });
  }

  void TearDown() override {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    MeshTest::TearDown();
  }

  // The agent has `n` service addresses in force, written without an error.
  // (The config it was started with, or wrote with ApplyConfigFile, is
  // applied by the time it answers: nothing to wait for.)
  absl::Status CheckServices(size_t n) {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, node_->AgentStatus());
    if (st["services"]["addresses"].get<size_t>() == n &&
        st["services"]["last_apply"]["errors"].empty())
      return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("want ", n, " addresses: ", st["services"].dump()));
  }

  // connect() from the client pod to vip:80; errno on failure, 0 on success.
  int TryConnect(const char* vip, lib::UniqueFd* keep = nullptr) {
    // Client sockets are made ahead, a few hundred per child process (a
    // fork of the test for each would cost more than the connect).
    if (spare_.empty()) {
      auto more = node_->PodSockets(*client_, SOCK_STREAM, 256);
      if (!more.ok()) return -1;
      spare_ = std::move(*more);
    }
    std::optional<lib::UniqueFd> s(std::move(spare_.back()));
    spare_.pop_back();
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(80);
    inet_pton(AF_INET, vip, &a.sin_addr);
    if (connect(s->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return errno;
    if (keep) *keep = std::move(*s);
    return 0;
  }

  std::vector<lib::UniqueFd> spare_;  // TryConnect's
  TestPod* server_b_ = nullptr;
  std::vector<std::pair<std::string, lib::UniqueFd>> listeners_;
  // Written by the acceptor thread, read by the test: atomics, and no
  // insertion after Serve().
  std::map<std::string, std::atomic<int>> accepted_;
  int Accepted(const std::string& pod) const {
    auto it = accepted_.find(pod);
    return it == accepted_.end() ? 0 : it->second.load();
  }
  // Waits until the acceptor has taken `total` connections in all (a
  // connect() returns before its server end is accepted).
  absl::Status WaitAccepted(int total) {
    return Eventually(absl::StrCat(total, " connections accepted"), [&]() -> absl::Status {
      const int got = Accepted("server") + Accepted("server-b");
      if (got >= total) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat(got, " so far"));
    });
  }
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
};

TEST_F(ServicesTest, ConnectToTheServiceReachesABackendAndGetpeernameShowsTheService) {
  ASSERT_OK(node_->WriteConfigFile(
      "svc.yaml", Service("web", kServicesVip) + Slice("web", {server_, server_b_}, true)));
  StartMesh();
  ASSERT_OK(CheckServices(1));
  Serve({server_, server_b_});
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    lib::UniqueFd s;
    ASSERT_EQ(TryConnect(kServicesVip, &s), 0) << "connect " << i << ": " << strerror(errno);
    if (i == 0) {
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      ASSERT_EQ(getpeername(s.get(), reinterpret_cast<sockaddr*>(&peer), &len), 0);
      char ip[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
      EXPECT_EQ(std::string(ip), kServicesVip);
      EXPECT_EQ(ntohs(peer.sin_port), 80);
      // And the bytes go socket to socket: the backend is a local pod.
      ASSERT_OK(WriteAll(s.get(), "ping"));
    }
  }
  EXPECT_OK(WaitAccepted(n));
  EXPECT_EQ(Accepted("server") + Accepted("server-b"), n);
  // Uniform over two backends: 200 each expected; 5 standard deviations is 50.
  EXPECT_GT(Accepted("server"), 150);
  EXPECT_GT(Accepted("server-b"), 150);
  EXPECT_GE(Counter(SHUNT_CTR_SVC_CONNECTS), static_cast<uint64_t>(n));
  EXPECT_GE(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED), static_cast<uint64_t>(2 * n))
      << "rewritten connections are short-circuited like pod-to-pod ones";
}

TEST_F(ServicesTest, NoReadyBackendRefusesAtOnceAndReadinessFollowsTheSlice) {
  ASSERT_OK(node_->WriteConfigFile("svc.yaml",
                                   Service("web", kServicesVip) + Slice("web", {server_}, false)));
  StartMesh();
  ASSERT_OK(CheckServices(1));
  Serve({server_});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(TryConnect(kServicesVip), ECONNREFUSED);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100))
      << "refused at once, no SYN";
  EXPECT_EQ(Counter(SHUNT_CTR_SVC_NO_BACKEND), 1u);
  // The pod becomes ready: the next connect() reaches it.
  ASSERT_OK(node_->ApplyConfigFile("svc.yaml",
                                   Service("web", kServicesVip) + Slice("web", {server_}, true)));
  EXPECT_EQ(TryConnect(kServicesVip), 0);
  // The Service goes away: the address is no longer balanced.
  ASSERT_OK(node_->ApplyConfigFile("svc.yaml", ""));
  ASSERT_OK(CheckServices(0));
}

TEST_F(ServicesTest, TrafficSplitWeightsHold) {
  const std::string split = R"(---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: web-split, namespace: demo}
spec:
  service: web
  backends:
  - {service: web-v1, weight: 90}
  - {service: web-v2, weight: 10}
)";
  ASSERT_OK(node_->WriteConfigFile(
      "svc.yaml", Service("web", kServicesVip) + Service("web-v1", kVipV1) +
                      Service("web-v2", kVipV2) + Slice("web-v1", {server_}, true) +
                      Slice("web-v2", {server_b_}, true) + split));
  StartMesh();
  ASSERT_OK(CheckServices(3));
  Serve({server_, server_b_});
  const int n = 2000;
  for (int i = 0; i < n; ++i) ASSERT_EQ(TryConnect(kServicesVip), 0) << i;
  ASSERT_OK(WaitAccepted(n));
  ASSERT_EQ(Accepted("server") + Accepted("server-b"), n);
  // 10% of 2000: standard deviation 0.67 percentage points; 3 pp is 4.5 of them.
  const double v2 = 100.0 * Accepted("server-b") / n;
  EXPECT_NEAR(v2, 10.0, 3.0) << Accepted("server") << " / " << Accepted("server-b");

  // shuntctl services: the weights, and the live share of finished flows
  // once every connection's record has reached the agent.
  nlohmann::json web;
  ASSERT_OK(Eventually("every connection's flow record is in", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(
        std::string out,
        Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(), " services -o json")));
    const nlohmann::json all =
        nlohmann::json::parse(out);  // a named object: the loop below refers into it
    for (const auto& svc : all["services"])
      if (svc["service"] == "demo/web") web = svc;
    uint64_t flows = 0;
    for (const auto& b : web["backends"]) flows += b["flows"].get<uint64_t>();
    if (flows >= static_cast<uint64_t>(n)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(flows, " flows"));
  }));
  ASSERT_EQ(web["split"], "demo/web-split") << web.dump();
  ASSERT_EQ(web["backends"].size(), 2u) << web.dump();
  for (const auto& b : web["backends"]) {
    const bool canary = b["pod"] == "demo/server-b";
    EXPECT_EQ(b["weight_percent"].get<double>(), canary ? 10.0 : 90.0) << b.dump();
    EXPECT_NEAR(b["live_share_percent"].get<double>(), canary ? v2 : 100 - v2, 0.5) << b.dump();
  }
  ASSERT_OK_AND_ASSIGN(std::string table, Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ",
                                                          node_->api_socket(), " services")));
  EXPECT_NE(table.find("demo/web-split"), std::string::npos) << table;
}

// A canary rolled forward live: 90/10 (checked over 10,000 connections,
// within 2 points), 50/50, then 0/100, while a client keeps connecting; not
// one connection fails and no connect() ever meets a half-written table.
TEST_F(ServicesTest, LiveCanaryShiftNeverFailsAConnection) {
  auto config = [&](int v1, int v2) {
    return Service("web", kServicesVip) + Service("web-v1", kVipV1) + Service("web-v2", kVipV2) +
           Slice("web-v1", {server_}, true) + Slice("web-v2", {server_b_}, true) +
           absl::StrCat(
               "---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: "
               "web-split, "
               "namespace: demo}\nspec:\n  service: web\n  backends:\n  - {service: web-v1, "
               "weight: ",
               v1, "}\n  - {service: web-v2, weight: ", v2, "}\n");
  };
  ASSERT_OK(node_->WriteConfigFile("svc.yaml", config(90, 10)));
  StartMesh();
  ASSERT_OK(CheckServices(3));
  Serve({server_, server_b_});
  int connected = 0;  // by share_v2 on this thread
  auto share_v2 = [&](int n) {
    const int before_a = Accepted("server"), before_b = Accepted("server-b");
    for (int i = 0; i < n; ++i) {
      const int err = TryConnect(kServicesVip);
      EXPECT_EQ(err, 0) << i;
      connected += err == 0;
    }
    EXPECT_OK(WaitAccepted(before_a + before_b + n));
    return 100.0 * (Accepted("server-b") - before_b) / n;
  };
  // 10% of 10,000: standard deviation 0.3 points; 2 points is over 6 of them
  // (of 2,000 under the sanitizers: 0.67 points, and 4 points).
  EXPECT_NEAR(share_v2(Repeats(10000)), 10.0, kSanitized ? 4.0 : 2.0);

  // A client connecting all along, from its own thread. Sockets are made in
  // the pod beforehand (making one moves this process into the pod's
  // cgroup for a moment, which two threads must not do at once).
  ASSERT_OK_AND_ASSIGN(std::vector<lib::UniqueFd> pool,
                       node_->PodSockets(*client_, SOCK_STREAM, 1500));
  std::atomic<bool> done{false}, paused{false};
  std::atomic<int> ok{0}, failed{0}, in_flight{0};
  std::thread client([&] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(80);
    inet_pton(AF_INET, kServicesVip, &a.sin_addr);
    for (auto& sock : pool) {
      // In flight before looking at `paused`: once the test has set it and
      // then seen nothing in flight, no connect() can start.
      ++in_flight;
      while (paused && !done) {
        --in_flight;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ++in_flight;
      }
      if (done) {
        --in_flight;
        break;
      }
      if (connect(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0)
        ++ok;
      else
        ++failed;
      --in_flight;
      sock.Reset();
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  auto shift = [&](int v1, int v2, int expect_v2) {
    // The background client connects all through the update and on after it.
    const int tried_before = ok + failed;
    EXPECT_OK(node_->ApplyConfigFile("svc.yaml", config(v1, v2)));
    EXPECT_OK(Eventually("the background client connects 100 times", [&]() -> absl::Status {
      const int tried = ok + failed - tried_before;
      if (tried >= 100) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat(tried, " so far"));
    }));
    // Measured alone: the background client pauses (its connections would
    // count in the shares), and its last connections are accepted.
    paused = true;
    EXPECT_OK(Eventually("the background client pauses", [&]() -> absl::Status {
      return in_flight == 0 ? absl::OkStatus() : absl::FailedPreconditionError("connecting");
    }));
    EXPECT_OK(WaitAccepted(connected + ok));
    EXPECT_NEAR(share_v2(2000), expect_v2, expect_v2 == 100 ? 0.0 : 4.0);
    paused = false;
  };
  shift(50, 50, 50);
  shift(0, 100, 100);
  done = true;
  client.join();
  EXPECT_GT(ok.load(), 100);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(Counter(SHUNT_CTR_SVC_SLOT_MISSING), 0u);
  EXPECT_EQ(Counter(SHUNT_CTR_SVC_NO_BACKEND), 0u);
}

// UDP through a service with real programs: dnsmasq in a backend pod, dig in
// the client pod asking the service address. dig only accepts a reply from
// the address it asked, so this also proves recvmsg4 shows the service.
TEST_F(ServicesTest, DnsOverUdpThroughAServiceWithDnsmasqAndDig) {
  if (access("/usr/sbin/dnsmasq", X_OK) != 0 || access("/usr/bin/dig", X_OK) != 0)
    GTEST_FAIL() << "dnsmasq/dig missing: run tools/install-deps.sh";
  const std::string svc = absl::StrCat(
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: demo}\nspec:\n  "
      "clusterIP: 10.96.0.53\n"
      "  ports: [{name: dns, port: 53, targetPort: 5353, protocol: UDP}]\n"
      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: dns-1\n  "
      "namespace: demo\n"
      "  labels: {kubernetes.io/service-name: dns}\naddressType: IPv4\n"
      "ports: [{name: dns, port: 5353, protocol: UDP}]\nendpoints:\n- addresses: [\"",
      server_->ip, "\"]\n");
  ASSERT_OK(node_->WriteConfigFile("svc.yaml", svc));
  StartMesh();
  ASSERT_OK(CheckServices(1));
  ASSERT_OK(
      node_->Spawn(*server_,
                   {"/usr/sbin/dnsmasq", "-k", "--port=5353", "--listen-address=" + server_->ip,
                    "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", "--user=root",
                    "--address=/shunt.test/192.0.2.7", "--log-facility=-"},
                   node_->work_dir() + "/dnsmasq.log"));
  // dig until dnsmasq, starting up meanwhile, answers.
  std::string answer;
  int tries = 0;
  EXPECT_OK(Eventually(
      "dig gets an answer through the service",
      [&]() -> absl::Status {
        const std::string log = absl::StrCat(node_->work_dir(), "/dig", tries++, ".log");
        SHUNT_ASSIGN_OR_RETURN(
            pid_t pid, node_->Spawn(*client_,
                                    {"/usr/bin/dig", "@10.96.0.53", "-p", "53", "shunt.test",
                                     "+short", "+time=1", "+tries=1"},
                                    log));
        SHUNT_RETURN_IF_ERROR(WaitExit(pid, 5000).status());
        std::ifstream f(log);
        answer.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        if (answer.find("192.0.2.7") != std::string::npos) return absl::OkStatus();
        return absl::UnavailableError(absl::StrCat("dig said: ", answer));
      },
      10000));
  EXPECT_EQ(answer, "192.0.2.7\n");
  // An unconnected socket (sendto/recvfrom) sees the reply come from the
  // service address, not from the pod that answered.
  ASSERT_OK_AND_ASSIGN(auto u, node_->PodSocket(*client_, SOCK_DGRAM));
  const std::string query = std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                            std::string("\x05shunt\x04test\x00\x00\x01\x00\x01", 16);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  inet_pton(AF_INET, "10.96.0.53", &to.sin_addr);
  ASSERT_EQ(
      sendto(u.get(), query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
      static_cast<ssize_t>(query.size()));
  pollfd pfd{u.get(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 3000), 1) << "no DNS reply";
  char buf[512];
  sockaddr_in from{};
  socklen_t flen = sizeof(from);
  ASSERT_GT(recvfrom(u.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen), 12);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
  EXPECT_EQ(std::string(ip), "10.96.0.53");
  EXPECT_EQ(ntohs(from.sin_port), 53);
  EXPECT_EQ(buf[0], '\x12');
  EXPECT_EQ(buf[1], '\x34');
  EXPECT_GE(Counter(SHUNT_CTR_SVC_CONNECTS), 2u);
}

}  // namespace
}  // namespace shunt::e2e
