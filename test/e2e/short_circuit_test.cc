// Same-node short-circuit, seen from applications: bytes arrive intact in
// both directions and socket semantics match plain TCP, while counters and
// the veth packet counters prove the bytes went socket to socket.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/status_macros.h"
#include "shunt/abi/pins.h"
#include "shunt/abi/sockmap.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class ShortCircuitTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // A reader that stops is held to the node's budget (32 MiB here), not
    // to its flow's (16 MiB): it may have switched to splice.
    ASSERT_OK(
        node_->StartAgent({"--max-queued-bytes=16777216", "--node-tcp-memory-bytes=33554432"}));
    ASSERT_OK(node_->WaitMeshed());
  }
};

class PayloadTest : public MeshTest, public ::testing::WithParamInterface<size_t> {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh();  // the default per-flow budget
  }
};

TEST_P(PayloadTest, ArrivesIntactBothWaysAndBypassesTheVeth) {
  const size_t size = GetParam();
  const std::string up = RandomBytes(size, 1), down = RandomBytes(size, 2);
  const uint64_t socks_before = Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED);
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7001));
  // The first exchange takes TCP (each end's first plain read admits it).
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, node_->VethBytes(*client_));
  const uint64_t bytes_before = Counter(SHUNT_CTR_BYTES_REDIRECTED);
  absl::Status client_status;
  std::string client_got;
  std::thread client([&] {
    client_status = WriteAll(c.client.get(), up);
    if (!client_status.ok()) return;
    shutdown(c.client.get(), SHUT_WR);  // half-close: the server must see EOF
    auto got = ReadToEof(c.client.get());
    if (got.ok())
      client_got = std::move(*got);
    else
      client_status = got.status();
  });
  auto server_got = ReadToEof(c.server.get());
  ASSERT_OK(server_got);
  ASSERT_OK(WriteAll(c.server.get(), down));  // still allowed after the peer's FIN
  c.server.Reset();
  client.join();
  ASSERT_OK(client_status);

  ASSERT_EQ(server_got->size(), size);
  EXPECT_EQ(Fnv1a(*server_got), Fnv1a(up));
  ASSERT_EQ(client_got.size(), size);
  EXPECT_EQ(Fnv1a(client_got), Fnv1a(down));

  EXPECT_EQ(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED) - socks_before, 2u);
  EXPECT_EQ(Counter(SHUNT_CTR_MSG_PEER_MISS), 0u);
  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, node_->VethBytes(*client_));
  const uint64_t redirected = Counter(SHUNT_CTR_BYTES_REDIRECTED) - bytes_before;
  if (Counter(SHUNT_CTR_FLOW_BACKPRESSURE) == 0) {
    // Only the handshake and FINs cross the veth, never the payload.
    EXPECT_EQ(redirected, 2 * size);
    EXPECT_LT(veth_after - veth_before, 4096u) << "payload went through the TCP/IP path";
  } else {
    // The reader fell more than a receive buffer behind: part of the bytes
    // took TCP (flow control), the rest went socket to socket.
    std::fprintf(stderr, "note: slow reader, %lu of %lu bytes redirected\n",
                 static_cast<unsigned long>(redirected), static_cast<unsigned long>(2 * size));
    EXPECT_GT(redirected, 0u);
    EXPECT_LT(redirected, 2 * size);
    EXPECT_GE(veth_after - veth_before, 2 * size - redirected) << "bytes unaccounted for";
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, PayloadTest,
                         ::testing::Values(1, 1000, 64 * 1024, 1024 * 1024, 64 * 1024 * 1024),
                         [](const auto& info) { return std::to_string(info.param) + "B"; });

TEST_F(ShortCircuitTest, HalfCloseKeepsTheOtherDirectionOpen) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7002));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK(WriteAll(c.client.get(), "request"));
  ASSERT_EQ(shutdown(c.client.get(), SHUT_WR), 0);
  ASSERT_OK_AND_ASSIGN(std::string req, ReadToEof(c.server.get()));
  EXPECT_EQ(req, "request");
  // Several writes after the peer's FIN, then our own FIN.
  for (int i = 0; i < 3; ++i) ASSERT_OK(WriteAll(c.server.get(), "part" + std::to_string(i) + ";"));
  ASSERT_EQ(shutdown(c.server.get(), SHUT_WR), 0);
  ASSERT_OK_AND_ASSIGN(std::string resp, ReadToEof(c.client.get()));
  EXPECT_EQ(resp, "part0;part1;part2;");
  // Writing after our own shutdown fails as on TCP.
  EXPECT_EQ(send(c.client.get(), "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_GE(Counter(SHUNT_CTR_MSG_REDIRECTED), 4u);
}

TEST_F(ShortCircuitTest, PeerResetIsReportedAsConnectionReset) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7003));
  ASSERT_OK(WriteAll(c.client.get(), "hello"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(c.server.get(), 5));
  EXPECT_EQ(got, "hello");
  linger lg{.l_onoff = 1, .l_linger = 0};  // close() sends RST
  ASSERT_EQ(setsockopt(c.server.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  c.server.Reset();
  pollfd p{c.client.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "no readiness after peer reset";
  EXPECT_TRUE(p.revents & (POLLERR | POLLHUP | POLLIN)) << p.revents;
  char buf[16];
  EXPECT_EQ(recv(c.client.get(), buf, sizeof(buf), MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, ECONNRESET);
}

// Each short-circuited socket's kernel address is recorded for the
// slow-reader check; a closed socket's entry goes at once (left to LRU
// eviction, every new connection paid for a victim scan). With telemetry
// off too: then only the short-circuit asks to hear about the close.
TEST_F(ShortCircuitTest, ClosedSocketsLeaveNoRecordBehind) {
  ASSERT_OK(node_->StopAgent(SIGTERM));
  ASSERT_OK(node_->StartAgent({"--telemetry=false"}));
  ASSERT_OK(node_->WaitMeshed());
  const uint64_t before = Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED);
  {
    std::vector<Conn> open;
    for (int i = 0; i < 20; ++i) {
      ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7100 + i));
      open.push_back(std::move(c));
    }
    EXPECT_EQ(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED) - before, 40u);
    ASSERT_OK_AND_ASSIGN(uint64_t live, node_->SockrefEntries());
    EXPECT_EQ(live, 40u) << "both ends of 20 open connections are recorded";
  }
  // The FIN exchanges finish in softirq, after close() returned.
  EXPECT_OK(Eventually("every closed socket's record goes", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(uint64_t left, node_->SockrefEntries());
    if (left == 0) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(left, " records left behind"));
  }));
}

TEST_F(ShortCircuitTest, EpollReadinessFollowsRedirectedData) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7004));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  lib::UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{.events = EPOLLIN | EPOLLRDHUP, .data = {.fd = c.client.get()}};
  ASSERT_EQ(epoll_ctl(ep.get(), EPOLL_CTL_ADD, c.client.get(), &ev), 0);
  epoll_event out[4];
  EXPECT_EQ(epoll_wait(ep.get(), out, 4, 100), 0) << "readable before any data";

  ASSERT_OK(WriteAll(c.server.get(), std::string(100, 'r')));
  ASSERT_EQ(epoll_wait(ep.get(), out, 4, 2000), 1);
  EXPECT_TRUE(out[0].events & EPOLLIN);
  char buf[256];
  EXPECT_EQ(recv(c.client.get(), buf, sizeof(buf), MSG_DONTWAIT), 100);
  EXPECT_EQ(recv(c.client.get(), buf, sizeof(buf), MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(epoll_wait(ep.get(), out, 4, 100), 0) << "still readable after draining";

  // The peer's FIN: readable, RDHUP, and recv returns 0.
  ASSERT_EQ(shutdown(c.server.get(), SHUT_WR), 0);
  ASSERT_EQ(epoll_wait(ep.get(), out, 4, 2000), 1);
  EXPECT_TRUE(out[0].events & EPOLLRDHUP) << out[0].events;
  EXPECT_EQ(recv(c.client.get(), buf, sizeof(buf), MSG_DONTWAIT), 0);
  EXPECT_GE(Counter(SHUNT_CTR_MSG_REDIRECTED), 1u);
}

// The unread bytes of a flow are measured at the peer socket its record
// names, and the record says how the peer reads; a flow whose peer's record
// is gone (evicted from the LRU map) must still be held back, not queue
// without limit: it takes TCP for good, in order, where flow control holds.
TEST_F(ShortCircuitTest, AFlowWhosePeerRecordIsLostIsStillHeldBack) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7006));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK(WriteAll(c.client.get(), "warm"));
  ASSERT_OK_AND_ASSIGN(std::string warm, ReadExactly(c.server.get(), 4));
  ASSERT_GE(Counter(SHUNT_CTR_MSG_REDIRECTED), 1u);
  // Every record goes, as an LRU eviction would take them.
  ASSERT_OK_AND_ASSIGN(auto refs,
                       lib::OpenPin(lib::PinLayout(node_->bpffs()).Map(SHUNT_MAP_SOCKREF), false));
  shunt_sock_key key{}, next{};
  while (bpf_map_get_next_key(refs.get(), nullptr, &next) == 0) {
    key = next;
    ASSERT_EQ(bpf_map_delete_elem(refs.get(), &key), 0);
  }
  ASSERT_OK_AND_ASSIGN(uint64_t left, node_->SockrefEntries());
  ASSERT_EQ(left, 0u);

  ASSERT_EQ(fcntl(c.client.get(), F_SETFL, O_NONBLOCK), 0);
  const std::string chunk = RandomBytes(64 * 1024, 8);
  std::string sent;
  while (sent.size() < 256u * 1024 * 1024) {  // a bound for the test, not for the mesh
    ssize_t n = send(c.client.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN) << strerror(errno);
      break;
    }
    sent.append(chunk.data(), n);
  }
  ASSERT_LT(sent.size(), 96u * 1024 * 1024) << "no backpressure without the peer's record";
  EXPECT_EQ(Counter(SHUNT_CTR_MSG_PEER_MISS), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> reasons, node_->TcpReasonCounts());
  EXPECT_EQ(reasons[SHUNT_TCP_PEER_MISSING], 1u);
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(c.server.get(), sent.size(), 20000));
  EXPECT_EQ(Fnv1a(got), Fnv1a(sent));
}

// Node-wide: every flow below its own budget (64 MiB here), but together
// past the node's TCP memory budget (8 MiB here, the kernel's tcp_mem
// pressure threshold by default): each never-read flow falls back to TCP
// flow control after a check's worth (4 MiB), so writers block long before
// 4 x 48 MiB sit unread in the kernel; then every byte arrives in order.
class NodeMemoryBudgetTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK(
        node_->StartAgent({"--max-queued-bytes=67108864", "--node-tcp-memory-bytes=8388608"}));
    ASSERT_OK(node_->WaitMeshed());
  }
};

TEST_F(NodeMemoryBudgetTest, FlowsUnderTheirOwnBudgetStillStopAtTheNodesBudget) {
  constexpr size_t kFlows = 4, kCap = 48u << 20;
  std::vector<Conn> conns;
  std::vector<std::string> sent(kFlows);
  for (size_t i = 0; i < kFlows; ++i) {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7101 + i));
    ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
    ASSERT_EQ(fcntl(c.client.get(), F_SETFL, O_NONBLOCK), 0);
    conns.push_back(std::move(c));
  }
  const std::string chunk = RandomBytes(64 * 1024, 9);
  for (size_t i = 0; i < kFlows; ++i) {
    while (sent[i].size() < kCap) {  // under the flow's own 64 MiB budget
      ssize_t n = send(conns[i].client.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n < 0) {
        ASSERT_EQ(errno, EAGAIN) << strerror(errno);
        break;
      }
      sent[i].append(chunk.data(), n);
    }
  }
  size_t total = 0;
  for (size_t i = 0; i < kFlows; ++i) {
    EXPECT_LT(sent[i].size(), kCap) << "flow " << i << " was never held back";
    total += sent[i].size();
  }
  EXPECT_LT(total, kFlows * kCap / 2);
  EXPECT_GE(Counter(SHUNT_CTR_FLOW_NODE_MEMORY), 1u);
  EXPECT_GE(Counter(SHUNT_CTR_FLOW_BACKPRESSURE), kFlows);
  for (size_t i = 0; i < kFlows; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string got,
                         ReadExactly(conns[i].server.get(), sent[i].size(), 20000));
    EXPECT_EQ(Fnv1a(got), Fnv1a(sent[i])) << "flow " << i;
  }
}

TEST_F(ShortCircuitTest, SlowReaderGetsTcpFlowControlThenShortCircuitAgain) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7005));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_EQ(fcntl(c.client.get(), F_SETFL, O_NONBLOCK), 0);
  // The server does not read: writes must stop with EAGAIN, as on TCP,
  // instead of queueing without limit in the receiver.
  const std::string chunk = RandomBytes(64 * 1024, 7);
  std::string sent;
  for (int i = 0; i < 100000; ++i) {
    ssize_t n = send(c.client.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN) << strerror(errno);
      // Held back. What the kernel moves on in the background (the
      // psock's work queue, late on a loaded machine: a run beside other
      // work stopped at 4 MiB here) may make room again: the limit is
      // where the socket stays unwritable (2 s), not the first EAGAIN.
      pollfd p{.fd = c.client.get(), .events = POLLOUT, .revents = 0};
      if (poll(&p, 1, 2000) <= 0) break;
      continue;
    }
    sent.append(chunk.data(), n);
  }
  // The node's budget (32 MiB here) plus what TCP buffers.
  ASSERT_LT(sent.size(), 96u * 1024 * 1024) << "no backpressure";
  EXPECT_GE(sent.size(), 16u * 1024 * 1024);
  EXPECT_EQ(Counter(SHUNT_CTR_FLOW_BACKPRESSURE), 1u);
  // Draining delivers every byte in order, redirected ones first.
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(c.server.get(), sent.size(), 20000));
  EXPECT_EQ(Fnv1a(got), Fnv1a(sent));
  // Once drained, the flow is short-circuited again.
  // sk_msg looks at the peer's queue on each send, so keep sending until a
  // send finds it drained.
  const uint64_t redirected = Counter(SHUNT_CTR_BYTES_REDIRECTED);
  EXPECT_OK(Eventually("a send resumes the short-circuit", [&]() -> absl::Status {
    SHUNT_RETURN_IF_ERROR(WriteAll(c.client.get(), "more"));
    absl::StatusOr<std::string> more = ReadExactly(c.server.get(), 4);
    if (!more.ok()) return more.status();
    if (*more != "more") return absl::DataLossError("got '" + *more + "'");
    if (Counter(SHUNT_CTR_FLOW_RESUMED) > 0) return absl::OkStatus();
    return absl::FailedPreconditionError("still on TCP");
  }));
  EXPECT_EQ(Counter(SHUNT_CTR_FLOW_RESUMED), 1u);
  EXPECT_GT(Counter(SHUNT_CTR_BYTES_REDIRECTED), redirected);
}

TEST_F(ShortCircuitTest, DualStackServerOnAnyIpv6AddressIsShortCircuited) {
  // Like iperf3 or Go servers: listen on [::], accept IPv4 clients as
  // v4-mapped IPv6 sockets. The server end must still enter the sockhash.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, node_->PodSocket(*server_, SOCK_STREAM, AF_INET6));
  int off = 0;
  ASSERT_EQ(setsockopt(l.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(7006);
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0) << strerror(errno);
  ASSERT_EQ(listen(l.get(), 8), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd cl, node_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(cl.get(), server_->ip, 7006));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd srv, AcceptOne(l.get()));
  ASSERT_OK(WarmUp(cl.get(), srv.get()));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, node_->VethBytes(*server_));
  const std::string up = RandomBytes(512 * 1024, 3);
  std::thread w([&] { EXPECT_OK(WriteAll(cl.get(), up)); });
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(srv.get(), up.size()));
  w.join();
  EXPECT_EQ(Fnv1a(got), Fnv1a(up));
  ASSERT_OK(WriteAll(srv.get(), "ack"));
  ASSERT_OK_AND_ASSIGN(std::string ack, ReadExactly(cl.get(), 3));
  EXPECT_EQ(ack, "ack");
  EXPECT_EQ(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED), 2u);
  EXPECT_EQ(Counter(SHUNT_CTR_BYTES_REDIRECTED), up.size() + 3);
  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, node_->VethBytes(*server_));
  EXPECT_LT(veth_after - veth_before, 4096u);
}

TEST_F(ShortCircuitTest, ManyConcurrentConnectionsStayApart) {
  constexpr int kConns = 32;
  std::vector<Conn> conns;
  for (int i = 0; i < kConns; ++i) {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7100 + i));
    conns.push_back(std::move(c));
  }
  ASSERT_OK_AND_ASSIGN(uint64_t entries, node_->SockhashEntries());
  EXPECT_EQ(entries, 2u * kConns);
  for (int i = 0; i < kConns; ++i)
    ASSERT_OK(WriteAll(conns[i].client.get(), "conn" + std::to_string(i)));
  for (int i = 0; i < kConns; ++i) {
    const std::string want = "conn" + std::to_string(i);
    ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(conns[i].server.get(), want.size()));
    EXPECT_EQ(got, want);
  }
  conns.clear();
  // Closed sockets leave the sockhash on their own.
  EXPECT_OK(Eventually("closed sockets leave the sockhash", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(uint64_t left, node_->SockhashEntries());
    if (left == 0) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(left, " entries"));
  }));
}

}  // namespace
}  // namespace shunt::e2e
