// What is not invisible yet on a kernel without BPF tracing programs
// (docs/short-circuit.md, "What is not invisible yet"), pinned down so a
// change in it is noticed: where the short-circuit still differs from TCP,
// it delays bytes, and never loses or reorders them.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "shunt/abi/counters.h"
#include "shunt/abi/sockmap.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class CompatLimitsTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh({"--max-queued-bytes=16777216"});
  }
};

// A reader that reads with recv and then switches to splice while
// redirected bytes wait: splice cannot see them, but it never sees bytes
// that came after them either, not even once the writer is over its budget
// (a reader that took nothing off its queue is not sent TCP bytes). Back
// on recv, the reader gets every byte in order.
TEST_F(CompatLimitsTest, SpliceAfterRecvWithBytesWaitingNeverReordersThem) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7801));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  const std::string data = RandomBytes(64 << 20, 41);  // 4x the budget
  std::atomic<bool> done{false};
  absl::Status wrote;
  std::thread w([&] {
    wrote = WriteAll(c.client.get(), data, 60000);
    shutdown(c.client.get(), SHUT_WR);
    done = true;
  });
  // Let the writer get past its budget before the reader splices: as the
  // reader does not read, the writer is held to the node's budget instead
  // of moving to TCP (which a splicing reader would read first).
  ASSERT_OK(Eventually("the writer is over its budget", [&]() -> absl::Status {
    if (Counter(SHUNT_CTR_FLOW_HELD_NOT_READING) >= 1) return absl::OkStatus();
    return absl::UnavailableError("still within the budget");
  }));
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  lib::UniqueFd rd(p[0]), wr(p[1]);
  ASSERT_EQ(fcntl(c.server.get(), F_SETFL, O_NONBLOCK), 0);
  std::string got, buf(1 << 16, '\0');
  for (int i = 0; i < 50; ++i) {
    ssize_t n = splice(c.server.get(), nullptr, wr.get(), nullptr, buf.size(), SPLICE_F_NONBLOCK);
    if (n > 0) got.append(buf.data(), read(rd.get(), buf.data(), n));
    pollfd pf{c.server.get(), POLLIN, 0};
    poll(&pf, 1, 10);
  }
  EXPECT_EQ(got.size(), 0u) << "splice read bytes that came after unread redirected ones";
  EXPECT_EQ(Counter(SHUNT_CTR_FLOW_BACKPRESSURE), 0u);
  // Back to recv: everything, in order.
  ASSERT_OK_AND_ASSIGN(std::string rest, ReadToEof(c.server.get(), 60000));
  w.join();
  ASSERT_OK(wrote);
  got += rest;
  ASSERT_EQ(got.size(), data.size());
  EXPECT_EQ(Fnv1a(got), Fnv1a(data));
}

// MSG_WAITALL on a socket that read with plain recv before, while fewer
// redirected bytes wait than asked for: that one call returns them (as if a
// signal cut it short), because the sockmap's recvmsg does not wait for
// more; the flow is on TCP from then on and the next call waits as TCP's.
TEST_F(CompatLimitsTest, WaitAllAfterPlainReadsReturnsShortOnceThenWaitsAsOnTcp) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7802));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK(WriteAll(c.client.get(), std::string(50, 'a')));
  pollfd pf{c.server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  char buf[100];
  EXPECT_EQ(recv(c.server.get(), buf, sizeof(buf), MSG_WAITALL), 50) << "now exact?";
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> reasons, node_->TcpReasonCounts());
  EXPECT_EQ(reasons[SHUNT_TCP_WAITALL], 1u);
  std::thread w([&] {
    EXPECT_OK(WriteAll(c.client.get(), std::string(50, 'b')));
    EXPECT_OK(WriteAll(c.client.get(), std::string(50, 'c')));
  });
  EXPECT_EQ(recv(c.server.get(), buf, sizeof(buf), MSG_WAITALL), 100);
  w.join();
  EXPECT_EQ(std::string(buf, 100), std::string(50, 'b') + std::string(50, 'c'));
}

// FIONREAD on a connection's first request, before the server read
// anything (Java's InputStream.available(), Ruby's IO#nread): the request
// came by TCP (the server was not seen reading yet), and this kernel's
// sockmap answers FIONREAD from the psock queue alone (tcp_bpf_ioctl), so
// it says 0 although the request is readable; plain TCP says 1000.
TEST_F(CompatLimitsTest, FionreadBeforeTheFirstReadCountsOnlyRedirectedBytes) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7803));
  ASSERT_OK(WriteAll(c.client.get(), RandomBytes(1000, 42)));
  pollfd pf{c.server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  int inq = -1;
  ASSERT_EQ(ioctl(c.server.get(), FIONREAD, &inq), 0);
  EXPECT_EQ(inq, 0) << "this kernel now counts the TCP queue too: update docs/short-circuit.md";
  char buf[2000];
  EXPECT_EQ(recv(c.server.get(), buf, sizeof(buf), 0), 1000);
}

// A reader slower than its writer: the flow moves to TCP at its budget and
// back once the reader caught up. FIONREAD never says more than a read then
// returns, and the bytes arrive in order; but while the reader takes the
// TCP bytes (the psock queue empty), FIONREAD says 0 although data is
// readable, which plain TCP never does.
//
// "Slower" is a state the test brings about, not a race it hopes to win
// (under a loaded CPU the reader either kept up or looked idle, and an idle
// reader is held, not moved): the writer puts more than the budget in the
// reader's queue, then writes one budget check's worth (1 MiB) at a time,
// each only once the reader took a little since the last, until the flow
// moved to TCP; from then on both run free.
TEST_F(CompatLimitsTest, FionreadAcrossASlowReaderFallbackNeverOverstates) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7804));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  const std::string data = RandomBytes(64 << 20, 43);    // 4x the budget
  const size_t over_budget = 20 << 20, check = 1 << 20;  // budget 16 MiB, checked per 1/16
  std::atomic<int> reads{0}, chunks{0};
  std::atomic<bool> writer_done{false}, gave_up{false};
  auto moved_to_tcp = [&] { return Counter(SHUNT_CTR_FLOW_BACKPRESSURE) >= 1; };
  absl::Status wrote;
  std::thread w([&] {
    wrote = WriteAll(c.client.get(), data.substr(0, over_budget), 60000);
    for (size_t at = over_budget; wrote.ok() && at < data.size(); at += check) {
      // The j-th chunk waits for the reader's j-th read since the first.
      wrote = Eventually(
          "the reader took something",
          [&]() -> absl::Status {
            if (reads > chunks || moved_to_tcp() || gave_up) return absl::OkStatus();
            return absl::UnavailableError("it did not");
          },
          30000);
      if (!wrote.ok()) break;
      const size_t n = moved_to_tcp() ? data.size() - at : check;
      wrote = WriteAll(c.client.get(), data.substr(at, n), 60000);
      at += n - check;
      ++chunks;
    }
    writer_done = true;
    shutdown(c.client.get(), SHUT_WR);
  });
  absl::Cleanup join_writer = [&] {
    gave_up = true;  // a failed assertion must not leave the writer waiting
    shutdown(c.server.get(), SHUT_RDWR);
    w.join();
  };
  ASSERT_OK(Eventually("the unread queue is over the budget", [&]() -> absl::Status {
    if (Counter(SHUNT_CTR_FLOW_HELD_NOT_READING) >= 1) return absl::OkStatus();
    return absl::UnavailableError("still within the budget");
  }));
  EXPECT_FALSE(moved_to_tcp()) << "moved to TCP before the reader read";
  std::string got, buf(1 << 16, '\0');
  int overstated = 0, zero_while_readable = 0;
  for (;;) {
    if (!writer_done && !moved_to_tcp()) {
      // The k-th read waits for the writer's k-th chunk since the first.
      absl::Status wrote_on = Eventually(
          "the writer wrote on",
          [&]() -> absl::Status {
            if (chunks >= reads || writer_done || moved_to_tcp()) return absl::OkStatus();
            return absl::UnavailableError("it did not");
          },
          30000);
      ASSERT_TRUE(wrote_on.ok()) << wrote_on << " after " << got.size() << " bytes";
    }
    pollfd pf{c.server.get(), POLLIN, 0};
    if (poll(&pf, 1, 60000) != 1) break;
    int inq = -1;
    ioctl(c.server.get(), FIONREAD, &inq);
    // Slower than the writer: a quarter of what one read could take.
    ssize_t n = recv(c.server.get(), buf.data(), buf.size() / 4, 0);
    if (n <= 0) break;
    ++reads;
    got.append(buf.data(), n);
    if (inq > 0 && n < std::min<ssize_t>(inq, buf.size() / 4)) ++overstated;
    if (inq == 0) ++zero_while_readable;
  }
  std::move(join_writer).Invoke();
  ASSERT_OK(wrote);
  std::fprintf(stderr, "fallbacks %lu, FIONREAD 0 while readable %d times\n",
               static_cast<unsigned long>(Counter(SHUNT_CTR_FLOW_BACKPRESSURE)),
               zero_while_readable);
  EXPECT_TRUE(moved_to_tcp()) << "the reader was never over its budget";
  EXPECT_EQ(overstated, 0) << "FIONREAD said more than a read returned";
  ASSERT_EQ(got.size(), data.size());
  EXPECT_EQ(Fnv1a(got), Fnv1a(data));
}

// An urgent byte sent while redirected bytes wait unread: it takes TCP, so
// SIGURG and POLLPRI come as on TCP; but recv(MSG_OOB) is served from the
// psock queue while anything redirected is left in it, and returns an
// ordinary byte instead of the urgent one (plain TCP returns '!').
TEST_F(CompatLimitsTest, UrgentByteBehindUnreadRedirectedBytes) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7805));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK(WriteAll(c.client.get(), "abc"));
  ASSERT_EQ(send(c.client.get(), "!", 1, MSG_OOB), 1);
  pollfd pf{c.server.get(), POLLPRI, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1) << "no POLLPRI: the urgent byte was redirected";
  char urgent = 0;
  EXPECT_EQ(recv(c.server.get(), &urgent, 1, MSG_OOB | MSG_DONTWAIT), 1);
  EXPECT_EQ(urgent, 'a') << "recv(MSG_OOB) is exact now: update docs/short-circuit.md";
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> reasons, node_->TcpReasonCounts());
  EXPECT_EQ(reasons[SHUNT_TCP_URGENT], 1u);
}

}  // namespace
}  // namespace shunt::e2e
