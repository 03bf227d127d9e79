// The kernel half of mTLS (docs/mtls.md): with the hand-off on, a meshed
// pod's TCP connection to a pod on another node lands on the node proxy's
// outbound address instead, and the proxy learns the real destination from
// getsockopt(SOL_IP, SO_ORIGINAL_DST), as with netfilter's REDIRECT but
// without netfilter. The test plays the proxy: a listener in the node's
// namespace. Same-node connections, host processes and the proxy's own
// connections are never handed off.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <sys/socket.h>

#include <thread>

#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "shunt/abi/counters.h"
#include "shunt/abi/mtls.h"
#include "shunt/abi/pins.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

constexpr uint16_t kProxyPort = 15001;

class MtlsHandoffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(n1_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(n2_, TestNode::Create("n2"));
    ASSERT_OK_AND_ASSIGN(a1_, n1_->AddPod({.name = "a1", .namespace_ = "demo"}));
    ASSERT_OK_AND_ASSIGN(b1_, n1_->AddPod({.name = "b1", .namespace_ = "demo"}));
    ASSERT_OK_AND_ASSIGN(a2_, n2_->AddPod({.name = "a2", .namespace_ = "demo"}));
    ASSERT_OK_AND_ASSIGN(c1_, n1_->AddPod({.name = "c1", .namespace_ = "demo", .ipv6 = true}));
    ASSERT_OK_AND_ASSIGN(c2_, n2_->AddPod({.name = "c2", .namespace_ = "demo", .ipv6 = true}));
    ASSERT_OK(TestNode::Link(*n1_, *n2_));
    ASSERT_OK(n1_->WriteManifests({n2_.get()}));
    ASSERT_OK(n2_->WriteManifests({n1_.get()}));
    ASSERT_OK(n1_->StartAgent());
    ASSERT_OK(n2_->StartAgent());
    ASSERT_OK(n1_->WaitMeshed());
    ASSERT_OK(n2_->WaitMeshed());
    // The stand-in proxy: node 1's namespace and cgroup, on the node's IP.
    ASSERT_OK_AND_ASSIGN(proxy_, n1_->NodeSocket(SOCK_STREAM));
    int one = 1;
    setsockopt(proxy_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kProxyPort);
    inet_pton(AF_INET, n1_->link_ip().c_str(), &a.sin_addr);
    ASSERT_EQ(bind(proxy_.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0) << errno;
    ASSERT_EQ(listen(proxy_.get(), 16), 0);
    ASSERT_OK_AND_ASSIGN(proxy6_, n1_->NodeSocket(SOCK_STREAM, AF_INET6));
    setsockopt(proxy6_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(kProxyPort);
    inet_pton(AF_INET6, n1_->link_ip6().c_str(), &a6.sin6_addr);
    ASSERT_EQ(bind(proxy6_.get(), reinterpret_cast<sockaddr *>(&a6), sizeof(a6)), 0) << errno;
    ASSERT_EQ(listen(proxy6_.get(), 16), 0);
  }
  void TearDown() override {
    if (HasFailure() && n1_)
      std::fprintf(stderr, "--- n1 agent ---\n%s\n", n1_->AgentLog().c_str());
    n1_.reset();
    n2_.reset();
  }
  // What the agent will write once the proxy runs: node 1 hands off.
  void HandOff(uint32_t mode) {
    ASSERT_OK_AND_ASSIGN(lib::UniqueFd m,
                         lib::OpenPin(lib::PinLayout(n1_->bpffs()).Map(SHUNT_MAP_MTLS_CONFIG),
                                      /*read_only=*/false));
    shunt_mtls_config c{.mode = mode, .proxy_port = htons(kProxyPort)};
    inet_pton(AF_INET, n1_->link_ip().c_str(), &c.proxy_ip4);
    inet_pton(AF_INET6, n1_->link_ip6().c_str(), c.proxy_ip6);
    uint32_t zero = 0;
    ASSERT_EQ(bpf_map_update_elem(m.get(), &zero, &c, BPF_ANY), 0) << errno;
  }
  absl::StatusOr<std::string> OriginalDst(int fd) {
    sockaddr_in o{};
    socklen_t len = sizeof(o);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &o, &len) != 0)
      return absl::NotFoundError(absl::StrCat("SO_ORIGINAL_DST: ", strerror(errno)));
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &o.sin_addr, ip, sizeof(ip));
    return absl::StrCat(ip, ":", ntohs(o.sin_port));
  }
  uint64_t Ctr(int idx) {
    auto c = n1_->Counters();
    return c.ok() ? (*c)[idx] : 0;
  }
  std::unique_ptr<TestNode> n1_, n2_;
  TestPod *a1_ = nullptr, *b1_ = nullptr, *a2_ = nullptr, *c1_ = nullptr, *c2_ = nullptr;
  lib::UniqueFd proxy_, proxy6_;
};

TEST_F(MtlsHandoffTest, ACrossNodeConnectionLandsOnTheProxyWhichLearnsItsDestination) {
  HandOff(SHUNT_MTLS_STRICT);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*a1_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), a2_->ip, 7000));  // a2 listens nowhere: only the proxy answers
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(proxy_.get()));
  ASSERT_OK_AND_ASSIGN(std::string dst, OriginalDst(s.get()));
  EXPECT_EQ(dst, absl::StrCat(a2_->ip, ":7000"));
  // The pod still believes it talks to a2.
  sockaddr_in peer{};
  socklen_t plen = sizeof(peer);
  getpeername(c.get(), reinterpret_cast<sockaddr *>(&peer), &plen);
  char ip[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
  EXPECT_EQ(absl::StrCat(ip, ":", ntohs(peer.sin_port)), absl::StrCat(a2_->ip, ":7000"));
  ASSERT_OK(WriteAll(c.get(), "hello"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(s.get(), 5));
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(Ctr(SHUNT_CTR_MTLS_HANDED_OFF), 1u);

  // Once both ends closed, the pod's address no longer names a destination
  // (the proxy's end asks no more; the flow record needed it until then).
  c.Reset();
  const int proxy_end_port = [&] {
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    getpeername(s.get(), reinterpret_cast<sockaddr *>(&peer), &len);
    return ntohs(peer.sin_port);
  }();
  s.Reset();
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd origs,
                       lib::OpenPin(lib::PinLayout(n1_->bpffs()).Map(SHUNT_MAP_MTLS_ORIG),
                                    /*read_only=*/true));
  ASSERT_OK(Eventually("the hand-off record is gone", [&]() -> absl::Status {
    shunt_mtls_addr pod{};
    inet_pton(AF_INET, a1_->ip.c_str(), &pod.ip4);
    pod.port = htons(proxy_end_port);
    shunt_mtls_addr to{};
    if (bpf_map_lookup_elem(origs.get(), &pod, &to) != 0) return absl::OkStatus();
    return absl::UnavailableError("still there");
  }));
}

// The leg from the pod to the proxy is a local pair: after the first
// exchange its bytes go socket to socket, not through the pod's veth.
TEST_F(MtlsHandoffTest, ThePodToProxyLegIsShortCircuited) {
  HandOff(SHUNT_MTLS_STRICT);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*a1_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), a2_->ip, 7006));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(proxy_.get()));
  ASSERT_OK(WarmUp(c.get(), s.get()));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, n1_->VethBytes(*a1_));
  const uint64_t redirected_before = Ctr(SHUNT_CTR_BYTES_REDIRECTED);
  const std::string up = RandomBytes(1 << 20, 61), down = RandomBytes(1 << 20, 62);
  std::thread w([&] { EXPECT_OK(WriteAll(c.get(), up)); });
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(s.get(), up.size()));
  w.join();
  EXPECT_EQ(Fnv1a(got), Fnv1a(up));
  std::thread w2([&] { EXPECT_OK(WriteAll(s.get(), down)); });
  ASSERT_OK_AND_ASSIGN(std::string back, ReadExactly(c.get(), down.size()));
  w2.join();
  EXPECT_EQ(Fnv1a(back), Fnv1a(down));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, n1_->VethBytes(*a1_));
  EXPECT_LT(veth_after - veth_before, 64u * 1024) << "the hand-off crossed the veth";
  EXPECT_GE(Ctr(SHUNT_CTR_BYTES_REDIRECTED) - redirected_before, 2u << 20);
}

// A dual-stack client (AF_INET6, v4-mapped destination: Java, Go's
// default) is handed off the same way.
TEST_F(MtlsHandoffTest, AV4MappedClientIsHandedOffToo) {
  HandOff(SHUNT_MTLS_PERMISSIVE);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*a1_, SOCK_STREAM, AF_INET6));
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(7004);
  ASSERT_EQ(inet_pton(AF_INET6, ("::ffff:" + a2_->ip).c_str(), &to.sin6_addr), 1);
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr *>(&to), sizeof(to)), 0) << errno;
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(proxy_.get()));
  ASSERT_OK_AND_ASSIGN(std::string dst, OriginalDst(s.get()));
  EXPECT_EQ(dst, absl::StrCat(a2_->ip, ":7004"));
  sockaddr_in6 peer{};
  socklen_t plen = sizeof(peer);
  getpeername(c.get(), reinterpret_cast<sockaddr *>(&peer), &plen);
  char ip[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &peer.sin6_addr, ip, sizeof(ip));
  EXPECT_EQ(absl::StrCat(ip, ":", ntohs(peer.sin6_port)),
            absl::StrCat("::ffff:", a2_->ip, ":7004"));
}

// Native IPv6 between dual-stack pods: handed to the proxy's IPv6
// address; getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) answers.
TEST_F(MtlsHandoffTest, ANativeIpv6ConnectionIsHandedOffToTheProxysIpv6Address) {
  HandOff(SHUNT_MTLS_STRICT);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*c1_, SOCK_STREAM, AF_INET6));
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(7005);
  ASSERT_EQ(inet_pton(AF_INET6, c2_->ip6.c_str(), &to.sin6_addr), 1) << c2_->ip6;
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr *>(&to), sizeof(to)), 0) << errno;
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(proxy6_.get()));
  sockaddr_in6 o{};
  socklen_t len = sizeof(o);
  ASSERT_EQ(getsockopt(s.get(), SOL_IPV6, IP6T_SO_ORIGINAL_DST, &o, &len), 0) << errno;
  char ip[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &o.sin6_addr, ip, sizeof(ip));
  EXPECT_EQ(absl::StrCat("[", ip, "]:", ntohs(o.sin6_port)), absl::StrCat("[", c2_->ip6, "]:7005"));
  sockaddr_in6 peer{};
  socklen_t plen = sizeof(peer);
  getpeername(c.get(), reinterpret_cast<sockaddr *>(&peer), &plen);
  inet_ntop(AF_INET6, &peer.sin6_addr, ip, sizeof(ip));
  EXPECT_EQ(std::string(ip), c2_->ip6) << "the pod sees the proxy's address";
  ASSERT_OK(WriteAll(c.get(), "over six"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(s.get(), 8));
  EXPECT_EQ(got, "over six");
  c.Reset();
  ASSERT_OK(Eventually("the IPv6 hand-off record is gone", [&]() -> absl::Status {
    sockaddr_in6 again{};
    socklen_t l = sizeof(again);
    if (getsockopt(s.get(), SOL_IPV6, IP6T_SO_ORIGINAL_DST, &again, &l) != 0)
      return absl::OkStatus();
    return absl::UnavailableError("still answered");
  }));
}

TEST_F(MtlsHandoffTest, SameNodeHostAndDirectConnectionsAreNotHandedOff) {
  HandOff(SHUNT_MTLS_STRICT);
  // A pod on the same node: straight there.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n1_->PodSocket(*b1_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7001));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*a1_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), b1_->ip, 7001));
  ASSERT_OK(AcceptOne(l.get()).status());
  // A host process of node 1 (the proxy's own outbound connections are
  // such): straight to the remote pod.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd r, n2_->PodSocket(*a2_, SOCK_STREAM));
  ASSERT_OK(ListenOn(r.get(), 7002));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd h, n1_->NodeSocket(SOCK_STREAM));
  ASSERT_OK(ConnectTo(h.get(), a2_->ip, 7002));
  ASSERT_OK(AcceptOne(r.get()).status());
  EXPECT_EQ(Ctr(SHUNT_CTR_MTLS_HANDED_OFF), 0u);
  // A pod that connects to the proxy port itself names no destination.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd d, n1_->PodSocket(*a1_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(d.get(), n1_->link_ip(), kProxyPort));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(proxy_.get()));
  EXPECT_FALSE(OriginalDst(s.get()).ok());
}

TEST_F(MtlsHandoffTest, WithTheHandOffOffNothingChanges) {
  HandOff(SHUNT_MTLS_OFF);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd r, n2_->PodSocket(*a2_, SOCK_STREAM));
  ASSERT_OK(ListenOn(r.get(), 7003));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*a1_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), a2_->ip, 7003));
  ASSERT_OK(AcceptOne(r.get()).status());
  EXPECT_EQ(Ctr(SHUNT_CTR_MTLS_HANDED_OFF), 0u);
}

}  // namespace
}  // namespace shunt::e2e
