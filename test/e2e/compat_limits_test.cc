// What is not invisible yet on a kernel without BPF tracing programs
// (docs/short-circuit.md, "What is not invisible yet"), pinned down so a
// change in it is noticed: where the short-circuit still differs from TCP,
// it delays bytes, and never loses or reorders them.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

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

}  // namespace
}  // namespace shunt::e2e
