// UDP request/response in enforce mode: a datagram policy allows opens the
// way back for its replies (the server's port to the client's port, while
// the client keeps sending), so a DNS server behind a TrafficTarget can
// answer; anything else the server side sends is still denied.
#include <fstream>
#include <iterator>

#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

using UdpReplyTest = AttackFixture;

// recvfrom() with a deadline; the payload, or an error.
absl::StatusOr<std::string> RecvFrom(int fd, sockaddr_in* from, int timeout_ms = 5000) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return absl::DeadlineExceededError("no datagram");
  char buf[512];
  socklen_t len = sizeof(*from);
  ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(from), &len);
  if (n < 0) return absl::InternalError(strerror(errno));
  return std::string(buf, n);
}

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

int SendTo(int fd, const std::string& what, const sockaddr_in& to) {
  if (sendto(fd, what.data(), what.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) <
      0)
    return errno;
  return 0;
}

TEST_F(UdpReplyTest, AServerAnswersAnAllowedClientInEnforceMode) {
  Start("enforce");
  lib::UniqueFd server = Listen(*store_, 5353, SOCK_DGRAM);
  // An unconnected client (sendto/recvfrom) and a connected one (send/recv).
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd unconnected, node_->PodSocket(*buyer_, SOCK_DGRAM));
  ASSERT_EQ(SendTo(unconnected.get(), "q1", Addr(store_->ip, 5353)), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd connected, node_->PodSocket(*buyer_, SOCK_DGRAM));
  ASSERT_OK(ConnectTo(connected.get(), store_->ip, 5353));
  ASSERT_EQ(send(connected.get(), "q2", 2, 0), 2);

  for (int i = 0; i < 2; ++i) {
    sockaddr_in client{};
    ASSERT_OK_AND_ASSIGN(std::string q, RecvFrom(server.get(), &client));
    EXPECT_EQ(SendTo(server.get(), "answer-" + q, client), 0) << "the reply to " << q;
  }
  sockaddr_in from{};
  ASSERT_OK_AND_ASSIGN(std::string a1, RecvFrom(unconnected.get(), &from));
  EXPECT_EQ(a1, "answer-q1");
  EXPECT_EQ(ntohs(from.sin_port), 5353);
  char buf[64];
  pollfd p{connected.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  ASSERT_EQ(recv(connected.get(), buf, sizeof(buf), 0), 9);
  EXPECT_EQ(std::string(buf, 9), "answer-q2");
  EXPECT_GE(Counter(SHUNT_CTR_UDP_REPLY_ALLOWED), 2u);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_DENIED), 0u);
}

TEST_F(UdpReplyTest, WhatTheServerSendsUnaskedIsStillDenied) {
  Start("enforce");
  lib::UniqueFd server = Listen(*store_, 5353, SOCK_DGRAM);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd client, node_->PodSocket(*buyer_, SOCK_DGRAM));
  ASSERT_EQ(SendTo(client.get(), "q", Addr(store_->ip, 5353)), 0);
  sockaddr_in asker{};
  ASSERT_OK_AND_ASSIGN(std::string q, RecvFrom(server.get(), &asker));
  const uint16_t client_port = ntohs(asker.sin_port);

  // To another port of the client, to the thief, and from another port of
  // the server: none answers the buyer's exchange.
  EXPECT_EQ(SendTo(server.get(), "x", Addr(buyer_->ip, client_port + 1)), EPERM);
  EXPECT_EQ(SendTo(server.get(), "x", Addr(thief_->ip, client_port)), EPERM);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd other, node_->PodSocket(*store_, SOCK_DGRAM));
  EXPECT_EQ(SendTo(other.get(), "x", asker), EPERM);
  // Nor does a frame the server writes itself, past its socket hooks.
  ASSERT_OK(PacketUdp(*store_, buyer_->ip, client_port, "forged"));
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 1, "the store's own frame is dropped"));
  // The real reply still gets through, and is the only datagram there.
  ASSERT_EQ(SendTo(server.get(), "real", asker), 0);
  sockaddr_in from{};
  ASSERT_OK_AND_ASSIGN(std::string got, RecvFrom(client.get(), &from));
  EXPECT_EQ(got, "real");
  char buf[64];
  EXPECT_EQ(recv(client.get(), buf, sizeof(buf), MSG_DONTWAIT), -1);
}

// The issue's check: a real DNS server behind a TrafficTarget, queried with
// dig, in enforce mode; the thief's dig gets nothing.
TEST_F(UdpReplyTest, DnsmasqAnswersDigInEnforceMode) {
  if (access("/usr/sbin/dnsmasq", X_OK) != 0 || access("/usr/bin/dig", X_OK) != 0)
    GTEST_FAIL() << "dnsmasq/dig missing: run tools/install-deps.sh";
  Start("enforce");
  ASSERT_OK(
      node_->Spawn(*store_,
                   {"/usr/sbin/dnsmasq", "-k", "--port=5353", "--listen-address=" + store_->ip,
                    "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", "--user=root",
                    "--address=/shunt.test/192.0.2.7", "--log-facility=-"},
                   node_->work_dir() + "/dnsmasq.log"));
  int tries = 0;
  auto dig = [&](const TestPod& from, const std::string& server,
                 const std::string& port = "5353") -> absl::StatusOr<std::string> {
    const std::string log = absl::StrCat(node_->work_dir(), "/dig", tries++, ".log");
    SHUNT_ASSIGN_OR_RETURN(pid_t pid, node_->Spawn(from,
                                                   {"/usr/bin/dig", "@" + server, "-p", port,
                                                    "shunt.test", "+short", "+time=1", "+tries=1"},
                                                   log));
    SHUNT_RETURN_IF_ERROR(WaitExit(pid, 5000).status());
    std::ifstream f(log);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  };
  std::string answer;
  EXPECT_OK(Eventually(
      "dig from the buyer gets an answer",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(answer, dig(*buyer_, store_->ip));
        if (answer.find("192.0.2.7") != std::string::npos) return absl::OkStatus();
        return absl::UnavailableError(absl::StrCat("dig said: ", answer));
      },
      10000));
  EXPECT_EQ(answer, "192.0.2.7\n");
  // Through the service address too: the exchange is the backend's, and
  // recvmsg4 shows the reply coming from the address dig asked.
  ASSERT_OK_AND_ASSIGN(std::string via_service, dig(*buyer_, kVip, "53"));
  EXPECT_EQ(via_service, "192.0.2.7\n");
  ASSERT_OK_AND_ASSIGN(std::string thief, dig(*thief_, store_->ip));
  EXPECT_EQ(thief.find("192.0.2.7"), std::string::npos) << thief;
  EXPECT_GE(Counter(SHUNT_CTR_POLICY_DENIED), 1u);
}

}  // namespace
}  // namespace shunt::e2e

namespace shunt::e2e {
namespace {

// One pod's one-shot sockets to a UDP service take at most its budget of
// the shared reverse-NAT map (--udp-exchanges-per-pod): past it, its own
// replies show the backend's address, and another pod's still show the
// service's.
TEST_F(UdpReplyTest, OnePodsOneShotSocketsTakeOnlyItsBudgetOfServiceReplyMappings) {
  Start("permissive", {"--udp-exchanges-per-pod=16"});
  lib::UniqueFd server = Listen(*store_, 5353, SOCK_DGRAM);
  // Asks the service from a fresh socket of `from`; the address the reply
  // shows.
  auto ask = [&](const TestPod& from) -> absl::StatusOr<std::string> {
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, node_->PodSocket(from, SOCK_DGRAM));
    if (SendTo(s.get(), "q", Addr(kVip, 53)) != 0) return absl::InternalError("sendto");
    sockaddr_in client{};
    SHUNT_ASSIGN_OR_RETURN(std::string q, RecvFrom(server.get(), &client));
    if (SendTo(server.get(), "a", client) != 0) return absl::InternalError("reply");
    sockaddr_in from_addr{};
    SHUNT_ASSIGN_OR_RETURN(std::string a, RecvFrom(s.get(), &from_addr));
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from_addr.sin_addr, ip, sizeof(ip));
    return std::string(ip);
  };
  int shown_as_service = 0, shown_as_backend = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string shown, ask(*buyer_));
    if (shown == kVip) ++shown_as_service;
    if (shown == store_->ip) ++shown_as_backend;
  }
  EXPECT_EQ(shown_as_service, 16);
  EXPECT_EQ(shown_as_backend, 4);
  EXPECT_EQ(Counter(SHUNT_CTR_SVC_REVNAT_OVER_BUDGET), 4u);
  ASSERT_OK_AND_ASSIGN(std::string other, ask(*thief_));
  EXPECT_EQ(other, kVip) << "another pod's budget is its own";
}

}  // namespace
}  // namespace shunt::e2e
