// Mutual TLS between nodes end to end (docs/mtls.md): two simulated nodes,
// each agent with --mtls=strict running its own shunt-proxy; a pod's
// connection to a pod on the other node is handed to the local proxy,
// carried as a stream of a pooled mTLS tunnel, judged by the peer node's
// proxy and connected to the pod. Checked from outside: the bytes both pods
// see, FIN and RST carried through, the proxies' own counts.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <sys/socket.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/mtls_fixture.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;

class MtlsProxyTest : public MtlsMeshTest {};

std::string PeerIp(int fd) {
  sockaddr_in peer{};
  socklen_t len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return "?";
  char ip[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
  return ip;
}

TEST_F(MtlsProxyTest, ACrossNodeConnectionIsCarriedThroughTheTunnelBothWays) {
  ASSERT_OK_AND_ASSIGN(Pair p, CrossNode(7000));
  // Each pod sees the other, not a proxy: the server its real client
  // (the proxy connects from the client pod's address), the client the
  // pod it asked for.
  EXPECT_EQ(PeerIp(p.server.get()), client_->ip);
  EXPECT_EQ(PeerIp(p.client.get()), server_->ip);
  // Both pods' legs to their proxies go socket to socket: of 2 MiB, little
  // crosses either pod's veth (the first exchange, before each reader was
  // seen reading, takes TCP).
  ASSERT_OK(WriteAll(p.client.get(), "warm"));
  ASSERT_OK_AND_ASSIGN(std::string warm, ReadExactly(p.server.get(), 4));
  ASSERT_OK(WriteAll(p.server.get(), "warm"));
  ASSERT_OK_AND_ASSIGN(warm, ReadExactly(p.client.get(), 4));
  ASSERT_OK_AND_ASSIGN(uint64_t client_veth0, n1_->VethBytes(*client_));
  ASSERT_OK_AND_ASSIGN(uint64_t server_veth0, n2_->VethBytes(*server_));
  const std::string up = RandomBytes(1 << 20, 1), down = RandomBytes(1 << 20, 2);
  std::thread writer([&] { EXPECT_OK(WriteAll(p.client.get(), up)); });
  ASSERT_OK_AND_ASSIGN(std::string got_up, ReadExactly(p.server.get(), up.size()));
  writer.join();
  EXPECT_EQ(Fnv1a(got_up), Fnv1a(up));
  std::thread writer2([&] { EXPECT_OK(WriteAll(p.server.get(), down)); });
  ASSERT_OK_AND_ASSIGN(std::string got_down, ReadExactly(p.client.get(), down.size()));
  writer2.join();
  EXPECT_EQ(Fnv1a(got_down), Fnv1a(down));
  ASSERT_OK_AND_ASSIGN(uint64_t client_veth1, n1_->VethBytes(*client_));
  ASSERT_OK_AND_ASSIGN(uint64_t server_veth1, n2_->VethBytes(*server_));
  EXPECT_LT(client_veth1 - client_veth0, 64u * 1024) << "the client's leg took TCP";
  EXPECT_LT(server_veth1 - server_veth0, 64u * 1024) << "the server's leg took TCP";
  // It went through both proxies: node 1's opened a stream, node 2's
  // accepted it after checking the client's certificate and policy.
  // (Each proxy reports on its own beat: a count is waited for, then the
  // counts that came before it in the proxy are in the same report.)
  ASSERT_OK(WaitCounter(*n1_, "bytes_to_peer", up.size()));
  ASSERT_OK(WaitCounter(*n1_, "tunnels_opened", 1));
  ASSERT_OK(WaitCounter(*n2_, "inbound_streams_accepted", 1));
  EXPECT_EQ(ProxyCounter(*n1_, "streams_opened"), 1u);
  EXPECT_EQ(ProxyCounter(*n1_, "tunnels_opened"), 1u);
  EXPECT_EQ(ProxyCounter(*n2_, "inbound_tunnels"), 1u);
  EXPECT_EQ(ProxyCounter(*n2_, "inbound_transparent"), 1u);

  // Both nodes list the connection as the pods' own, path mtls, with the
  // identity on the other node and every byte (and the warm-up's).
  p = Pair();
  for (TestNode* n : {n1_.get(), n2_.get()}) {
    nlohmann::json flow;
    ASSERT_OK(Eventually(absl::StrCat(n->name(), " lists the closed flow"), [&]() -> absl::Status {
      SHUNT_ASSIGN_OR_RETURN(auto flows,
                             ShuntctlFlows(*n, "--state closed --to demo/server --port 7000"));
      if (flows.empty()) return absl::NotFoundError("no flow yet");
      flow = flows.back();
      return absl::OkStatus();
    }));
    EXPECT_EQ(flow["path"], "mtls") << flow.dump();
    EXPECT_EQ(flow["client"]["ip"], client_->ip) << flow.dump();
    EXPECT_EQ(flow["client"]["service_account"], "client") << flow.dump();
    EXPECT_EQ(flow["server"]["ip"], server_->ip) << flow.dump();
    EXPECT_EQ(flow["bytes_to_server"], up.size() + 4) << flow.dump();
    EXPECT_EQ(flow["bytes_to_client"], down.size() + 4) << flow.dump();
    EXPECT_EQ(flow["peer_identity"], n == n1_.get() ? "spiffe://cluster.local/ns/demo/sa/server"
                                                    : "spiffe://cluster.local/ns/demo/sa/client")
        << flow.dump();
  }
  // `shuntctl stat` tells the tunnelled flow apart (its MTLS column).
  ASSERT_OK_AND_ASSIGN(std::string stat, Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ",
                                                         n1_->api_socket(), " stat edge -o json")));
  auto st = nlohmann::json::parse(stat, nullptr, false);
  ASSERT_FALSE(st.is_discarded()) << stat;
  uint64_t mtls_flows = 0;
  for (const auto& row : st["rows"])  // the one edge: sa/client -> sa/server
    mtls_flows += row.value("mtls_flows", uint64_t{0});
  EXPECT_EQ(mtls_flows, 1u) << stat;
  ASSERT_OK_AND_ASSIGN(std::string table, Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ",
                                                          n1_->api_socket(), " stat edge")));
  EXPECT_THAT(table, HasSubstr("MTLS")) << table;
  EXPECT_THAT(table, HasSubstr("100%")) << table;
}

TEST_F(MtlsProxyTest, ASecondConnectionRidesTheWarmTunnel) {
  ASSERT_OK_AND_ASSIGN(Pair first, CrossNode(7001));
  ASSERT_OK(WriteAll(first.client.get(), "one"));
  ASSERT_OK_AND_ASSIGN(std::string a, ReadExactly(first.server.get(), 3));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c2, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c2.get(), server_->ip, 7001));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s2, AcceptOne(first.listener.get()));
  ASSERT_OK(WriteAll(c2.get(), "two"));
  ASSERT_OK_AND_ASSIGN(std::string b, ReadExactly(s2.get(), 3));
  EXPECT_EQ(b, "two");
  ASSERT_OK(WaitCounter(*n1_, "streams_opened", 2));
  EXPECT_EQ(ProxyCounter(*n1_, "tunnels_opened"), 1u);
  EXPECT_GE(ProxyCounter(*n1_, "streams_on_warm_tunnel"), 1u);
}

TEST_F(MtlsProxyTest, APodThatStopsReadingStallsOnlyItsOwnConnection) {
  // 8 MiB toward a server pod that reads nothing: more than the stream's
  // window and the sockets' buffers, so the receiving proxy keeps what the
  // pod has not taken and the sending one stops reading the client.
  ASSERT_OK_AND_ASSIGN(Pair stalled, CrossNode(7005));
  const std::string big = RandomBytes(8 << 20, 3);
  std::thread writer([&] { EXPECT_OK(WriteAll(stalled.client.get(), big, 60000)); });
  ASSERT_OK(WaitCounter(*n2_, "bytes_from_peer", 1u << 20));
  // Meanwhile a second connection on the same tunnel moves 1 MiB each way.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c2, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c2.get(), server_->ip, 7005));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s2, AcceptOne(stalled.listener.get()));
  const std::string up = RandomBytes(1 << 20, 4), down = RandomBytes(1 << 20, 5);
  std::thread w_up([&] { EXPECT_OK(WriteAll(c2.get(), up)); });
  ASSERT_OK_AND_ASSIGN(std::string got_up, ReadExactly(s2.get(), up.size()));
  w_up.join();
  EXPECT_EQ(Fnv1a(got_up), Fnv1a(up));
  std::thread w_down([&] { EXPECT_OK(WriteAll(s2.get(), down)); });
  ASSERT_OK_AND_ASSIGN(std::string got_down, ReadExactly(c2.get(), down.size()));
  w_down.join();
  EXPECT_EQ(Fnv1a(got_down), Fnv1a(down));
  EXPECT_EQ(ProxyCounter(*n1_, "tunnels_opened"), 1u);
  // The stalled pod reads at last: every byte, in order.
  ASSERT_OK_AND_ASSIGN(std::string got_big, ReadExactly(stalled.server.get(), big.size(), 60000));
  writer.join();
  EXPECT_EQ(Fnv1a(got_big), Fnv1a(big));
}

TEST_F(MtlsProxyTest, HalfCloseAndResetAreCarriedThrough) {
  ASSERT_OK_AND_ASSIGN(Pair p, CrossNode(7002));
  ASSERT_OK(WriteAll(p.client.get(), "request"));
  ASSERT_EQ(shutdown(p.client.get(), SHUT_WR), 0);
  ASSERT_OK_AND_ASSIGN(std::string req, ReadToEof(p.server.get()));
  EXPECT_EQ(req, "request");
  // The other direction is still open.
  ASSERT_OK(WriteAll(p.server.get(), "response"));
  p.server.Reset();
  ASSERT_OK_AND_ASSIGN(std::string resp, ReadToEof(p.client.get()));
  EXPECT_EQ(resp, "response");

  ASSERT_OK_AND_ASSIGN(Pair r, CrossNode(7003));
  ASSERT_OK(WriteAll(r.client.get(), "x"));
  ASSERT_OK_AND_ASSIGN(std::string x, ReadExactly(r.server.get(), 1));
  linger l{.l_onoff = 1, .l_linger = 0};
  setsockopt(r.server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  r.server.Reset();  // RST
  auto rest = ReadToEof(r.client.get());
  EXPECT_FALSE(rest.ok()) << "the client saw a clean end, not the server's reset";
}

TEST_F(MtlsProxyTest, AConnectionToAClosedPortIsResetAndCounted) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  // connect() succeeds (the local proxy accepts); the far end's refusal
  // arrives as a reset.
  ASSERT_OK(ConnectTo(c.get(), server_->ip, 7999));
  auto got = ReadToEof(c.get());
  EXPECT_FALSE(got.ok());
  ASSERT_OK(WaitRefusal(*n2_, "pod-refused"));
  // Node 1's proxy reports its counts on its own beat: waited for, too.
  ASSERT_OK(WaitCounter(*n1_, "streams_refused_by_peer", 1));
}

TEST_F(MtlsProxyTest, SameNodeConnectionsNeverTouchTheProxy) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n1_->PodSocket(*local_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7004));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), local_->ip, 7004));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(l.get()));
  sockaddr_in peer{};
  socklen_t len = sizeof(peer);
  ASSERT_EQ(getpeername(s.get(), reinterpret_cast<sockaddr*>(&peer), &len), 0);
  char ip[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
  EXPECT_EQ(std::string(ip), client_->ip);  // directly from the client pod
  ASSERT_OK(WriteAll(c.get(), "hi"));
  ASSERT_OK_AND_ASSIGN(std::string hi, ReadExactly(s.get(), 2));
  // A report after the connection: the proxy saw nothing of it.
  const uint64_t reports_before = ProxyCounter(*n1_, "outbound_accepted");
  EXPECT_EQ(reports_before, 0u);
}

}  // namespace
// IPv6 pods: the hand-off to the proxy's IPv6 address, the tunnel (over
// the nodes' IPv4 link), and the server pod seeing its client's own IPv6
// address (IPV6_TRANSPARENT; the TC guard marks the replies, the agent's
// ip -6 rule delivers them to the proxy).
class MtlsIpv6Test : public MtlsMeshTest {
 protected:
  MtlsIpv6Test() { dual_stack_ = true; }
};

TEST_F(MtlsIpv6Test, AnIpv6ConnectionAcrossNodesShowsTheRealClientAddress) {
  ASSERT_FALSE(client_->ip6.empty());
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd listener, n2_->PodSocket(*server_, SOCK_STREAM, AF_INET6));
  const int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(7006);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0) << errno;
  ASSERT_EQ(listen(listener.get(), 8), 0) << errno;
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM, AF_INET6));
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(7006);
  ASSERT_EQ(inet_pton(AF_INET6, server_->ip6.c_str(), &to.sin6_addr), 1) << server_->ip6;
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0) << strerror(errno);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd server, AcceptOne(listener.get()));
  sockaddr_in6 peer{};
  socklen_t len = sizeof(peer);
  ASSERT_EQ(getpeername(server.get(), reinterpret_cast<sockaddr*>(&peer), &len), 0);
  char ip[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &peer.sin6_addr, ip, sizeof(ip));
  EXPECT_EQ(std::string(ip), client_->ip6) << "the server sees the proxy, not its client";
  // Bytes both ways (the replies find the proxy's transparent socket).
  const std::string up = RandomBytes(256 << 10, 3), down = RandomBytes(256 << 10, 4);
  std::thread writer([&] { EXPECT_OK(WriteAll(c.get(), up)); });
  ASSERT_OK_AND_ASSIGN(std::string got_up, ReadExactly(server.get(), up.size()));
  writer.join();
  EXPECT_EQ(Fnv1a(got_up), Fnv1a(up));
  std::thread writer2([&] { EXPECT_OK(WriteAll(server.get(), down)); });
  ASSERT_OK_AND_ASSIGN(std::string got_down, ReadExactly(c.get(), down.size()));
  writer2.join();
  EXPECT_EQ(Fnv1a(got_down), Fnv1a(down));
  ASSERT_OK(WaitCounter(*n2_, "inbound_streams_accepted", 1));
  EXPECT_EQ(ProxyCounter(*n2_, "inbound_transparent"), 1u);
  EXPECT_EQ(ProxyCounter(*n2_, "inbound_transparent_failed"), 0u);
}

}  // namespace shunt::e2e
