// Latency-aware balancing (the default for a Service without a
// TrafficSplit): three real request/response servers behind one Service;
// when one of them starts answering 10x slower, it gets less than 10% of
// new connections within 5 s, and its share comes back once it is fast
// again. shuntctl services and lb explain show why.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "nlohmann/json.hpp"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kLbVip[] = "10.96.0.20";

class LatencyLbTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    servers_.push_back(server_);
    for (const char* name : {"server-b", "server-c"}) {
      ASSERT_OK_AND_ASSIGN(
          TestPod * p,
          node_->AddPod({.name = name, .namespace_ = "demo", .service_account = "server"}));
      servers_.push_back(p);
    }
  }

  void TearDown() override {
    stop_ = true;
    for (auto& t : threads_) t.join();
    MeshTest::TearDown();
  }

  std::string Manifests(const std::string& annotation = "") const {
    std::string y = absl::StrCat(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: demo\n",
        annotation.empty() ? "" : absl::StrCat("  annotations: {", annotation, "}\n"),
        "spec:\n  clusterIP: ", kLbVip, "\n  ports: [{name: http, port: 80, targetPort: 8080}]\n",
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n"
        "  namespace: demo\n  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\n"
        "ports: [{name: http, port: 8080, protocol: TCP}]\nendpoints:\n");
    for (const TestPod* p : servers_)
      absl::StrAppend(&y, "- addresses: [\"", p->ip,
                      "\"]\n  conditions: {ready: true}\n  targetRef: {kind: Pod, name: ", p->name,
                      ", namespace: demo}\n");
    return y;
  }

  // One request/response server per pod on 8080, each on its own thread:
  // reads a request, waits its delay, answers, and counts the connection.
  void Serve() {
    for (size_t i = 0; i < servers_.size(); ++i) {
      delay_us_[i] = 1000;
      served_[i] = 0;
      ASSERT_OK_AND_ASSIGN(auto l, node_->PodSocket(*servers_[i], SOCK_STREAM));
      ASSERT_OK(ListenOn(l.get(), 8080));
      threads_.emplace_back([this, i, l = std::make_shared<lib::UniqueFd>(std::move(l))] {
        while (!stop_) {
          pollfd p{l->get(), POLLIN, 0};
          if (poll(&p, 1, 20) != 1) continue;
          int c = accept(l->get(), nullptr, nullptr);
          if (c < 0) continue;
          char buf[64];
          pollfd q{c, POLLIN, 0};
          if (poll(&q, 1, 2000) == 1 && read(c, buf, sizeof(buf)) > 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(delay_us_[i].load()));
            (void)!write(c, "pong", 4);
            ++served_[i];
          }
          close(c);
        }
      });
    }
  }

  // Request/response connections from the client pod to the service, one
  // after another, for `d`; returns how many each server answered (by
  // index) over that time. Sockets are made ahead on this thread (moving
  // into the pod's cgroup is not thread-safe).
  absl::StatusOr<std::vector<int>> Drive(std::chrono::milliseconds d, int* failures) {
    std::vector<int> before(servers_.size());
    for (size_t i = 0; i < servers_.size(); ++i) before[i] = served_[i].load();
    int answered = 0;
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
      SHUNT_ASSIGN_OR_RETURN(std::vector<lib::UniqueFd> socks,
                             node_->PodSockets(*client_, SOCK_STREAM, 50));
      for (auto& s : socks) {
        if (Clock::now() >= end) break;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(80);
        inet_pton(AF_INET, kLbVip, &a.sin_addr);
        char buf[8];
        pollfd q{s.get(), POLLIN, 0};
        if (connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
            write(s.get(), "ping", 4) != 4 || poll(&q, 1, 2000) != 1 ||
            read(s.get(), buf, sizeof(buf)) != 4)
          ++*failures;
        else
          ++answered;
        s.Reset();
      }
    }
    // A server counts an answer just after writing it: wait until every
    // answer the client read is counted.
    std::vector<int> out(servers_.size());
    absl::Status counted = Eventually("the servers count every answer", [&]() -> absl::Status {
      int total = 0;
      for (size_t i = 0; i < servers_.size(); ++i) {
        out[i] = served_[i].load() - before[i];
        total += out[i];
      }
      if (total >= answered) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat(total, " of ", answered, " counted"));
    });
    if (!counted.ok()) return counted;
    return out;
  }

  static double Share(const std::vector<int>& n, size_t i) {
    int total = 0;
    for (int x : n) total += x;
    return total ? static_cast<double>(n[i]) / total : 0;
  }

  absl::StatusOr<nlohmann::json> CtlJson(const std::string& args) {
    auto out = Sh(
        absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(), " ", args, " -o json"));
    if (!out.ok()) return out.status();
    return nlohmann::json::parse(*out);
  }

  std::vector<TestPod*> servers_;
  std::atomic<int> delay_us_[3];
  std::atomic<int> served_[3];
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

TEST_F(LatencyLbTest, ASlowBackendLosesItsShareWithinFiveSecondsAndGetsItBack) {
  ASSERT_OK(node_->WriteConfigFile("web.yaml", Manifests()));
  StartMesh();
  Serve();
  int failures = 0;
  // All fast: the three share the load.
  ASSERT_OK_AND_ASSIGN(auto warm, Drive(std::chrono::milliseconds(3000), &failures));
  std::fprintf(stderr, "all fast (3 s): %d %d %d\n", warm[0], warm[1], warm[2]);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_GT(Share(warm, i), 0.15) << "server " << i << " while all are fast";

  // server-c turns 10x slower. Within 5 s it gets < 10% of new connections.
  delay_us_[2] = 10000;
  ASSERT_OK_AND_ASSIGN(auto shift, Drive(std::chrono::milliseconds(5000), &failures));
  ASSERT_OK_AND_ASSIGN(auto slow, Drive(std::chrono::milliseconds(5000), &failures));
  std::fprintf(stderr, "server-c slow, first 5 s: %d %d %d; next 5 s: %d %d %d (share %.1f%%)\n",
               shift[0], shift[1], shift[2], slow[0], slow[1], slow[2], 100 * Share(slow, 2));
  EXPECT_LT(Share(slow, 2), 0.10) << "the slow backend's share 5..10 s after it turned slow";
  EXPECT_GT(slow[2], 0)
      << "a slow backend is still probed now and then (else it could never recover)";

  // What the operator sees: the slow backend's EWMA and score are higher,
  // and lb explain shows choices decided by score.
  ASSERT_OK_AND_ASSIGN(auto svcs, CtlJson("services"));
  ASSERT_EQ(svcs["services"].size(), 1u) << svcs.dump();
  const auto& s = svcs["services"][0];
  EXPECT_EQ(s["balancer"], "p2c-ewma");
  std::map<std::string, double> ewma;
  for (const auto& b : s["backends"]) {
    ASSERT_TRUE(b.contains("ewma_ms")) << b.dump();
    ewma[b["pod"].get<std::string>()] = b["ewma_ms"].get<double>();
  }
  // Between probes the slow backend's estimate decays toward the others'
  // (that is how it gets probed), but while it is passed over it stays
  // above them: it is taken again once within 25% of a fast one.
  EXPECT_GT(ewma["demo/server-c"], 1.1 * ewma["demo/server"]) << svcs.dump();
  EXPECT_GT(ewma["demo/server-c"], 1.1 * ewma["demo/server-b"]) << svcs.dump();
  ASSERT_OK_AND_ASSIGN(auto explain, CtlJson("lb explain demo/web"));
  ASSERT_EQ(explain["services"].size(), 1u) << explain.dump();
  const auto& choices = explain["services"][0]["choices"];
  ASSERT_FALSE(choices.empty()) << explain.dump();
  int by_score = 0;
  for (const auto& c : choices) {
    ASSERT_EQ(c["candidates"].size(), 2u) << c.dump();
    EXPECT_NE(c["candidates"][0]["address"], c["candidates"][1]["address"])
        << "two distinct candidates";
    if (c["picked"]["pod"] != "demo/server-c" && (c["candidates"][0]["pod"] == "demo/server-c" ||
                                                  c["candidates"][1]["pod"] == "demo/server-c"))
      ++by_score;
  }
  EXPECT_GT(by_score, 0) << "no recent choice passed over the slow backend: " << explain.dump();
  ASSERT_OK_AND_ASSIGN(std::string table,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(),
                                       " lb explain demo/web")));
  EXPECT_NE(table.find("lower score"), std::string::npos) << table;
  std::fprintf(stderr, "shuntctl lb explain demo/web:\n%s\n", table.c_str());
  // The kernel's side, read from the pins: the service's inline table and
  // the scores the agent wrote, the slow backend's the highest.
  ASSERT_OK_AND_ASSIGN(auto dump, CtlJson("--bpffs " + node_->bpffs() + " maps dump services"));
  ASSERT_EQ(dump.size(), 1u) << dump.dump();
  EXPECT_EQ(dump[0]["address"], absl::StrCat(kLbVip, ":80"));
  EXPECT_EQ(dump[0]["balancer"], "p2c-ewma");
  EXPECT_EQ(dump[0]["table"], "inline");
  EXPECT_EQ(dump[0]["backends"].size(), 3u) << dump.dump();
  ASSERT_OK_AND_ASSIGN(auto scores, CtlJson("--bpffs " + node_->bpffs() + " maps dump lb_scores"));
  ASSERT_EQ(scores.size(), 3u) << scores.dump();
  std::map<std::string, uint32_t> score;
  for (const auto& x : scores) score[x["backend"].get<std::string>()] = x["score"].get<uint32_t>();
  EXPECT_GT(score[servers_[2]->ip + ":8080"], score[servers_[0]->ip + ":8080"]) << scores.dump();

  // Fast again: its share comes back. Waited for, window by window (3 s
  // each, 30 s at most): on a loaded machine a backend as fast as the
  // others can still lose its share for a few seconds to one latency spike
  // (seen in a CI rehearsal: 985 of 3,871 in the first 6 s, 120 in the next
  // 5), and what is checked is that it recovers, not when.
  delay_us_[2] = 1000;
  double share = 0;
  std::string windows;
  for (int i = 0; i < 10 && share <= 0.20; ++i) {
    ASSERT_OK_AND_ASSIGN(auto w, Drive(std::chrono::milliseconds(3000), &failures));
    share = Share(w, 2);
    absl::StrAppend(&windows, " [", w[0], " ", w[1], " ", w[2], "]");
  }
  std::fprintf(stderr, "server-c fast again, 3 s windows until its share is back:%s\n",
               windows.c_str());
  EXPECT_GT(share, 0.20) << "the recovered backend's share, windows:" << windows;
  EXPECT_EQ(failures, 0);
}

// The annotation turns latency-awareness off: a uniformly random backend
// whatever its latency. An unknown value is reported, and the default holds.
TEST_F(LatencyLbTest, TheAnnotationSelectsRandomAndAnUnknownValueIsReported) {
  ASSERT_OK(node_->WriteConfigFile("web.yaml", Manifests("balancer.shunt.dev/algorithm: random")));
  StartMesh();
  Serve();
  delay_us_[2] = 10000;
  int failures = 0;
  ASSERT_OK_AND_ASSIGN(auto n, Drive(std::chrono::milliseconds(4000), &failures));
  std::fprintf(stderr, "random, server-c slow: %d %d %d\n", n[0], n[1], n[2]);
  // Uniform choice: each a third, whatever its speed.
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(Share(n, i), 1.0 / 3, 0.07) << "server " << i;
  EXPECT_EQ(failures, 0);
  ASSERT_OK_AND_ASSIGN(auto svcs, CtlJson("services"));
  EXPECT_EQ(svcs["services"][0]["balancer"], "random");

  ASSERT_OK(node_->ApplyConfigFile("web.yaml", Manifests("balancer.shunt.dev/algorithm: fastest")));
  ASSERT_OK_AND_ASSIGN(svcs, CtlJson("services"));
  ASSERT_EQ(svcs["problems"].size(), 1u) << svcs.dump();
  EXPECT_NE(svcs["problems"][0].dump().find("'fastest' is not p2c-ewma or random"),
            std::string::npos)
      << svcs.dump();
  EXPECT_EQ(svcs["services"][0]["balancer"], "p2c-ewma");
}

}  // namespace
}  // namespace shunt::e2e
