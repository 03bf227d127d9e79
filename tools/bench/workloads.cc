#include "tools/bench/workloads.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "tools/bench/blocking_io.h"
#include "tools/bench/interrupt.h"

namespace shunt::bench {

namespace {

using Clock = std::chrono::steady_clock;

int64_t NsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// Wakes a peer thread blocked on `fd` (it sees EOF) after this side failed.
void Abort(int fd) { shutdown(fd, SHUT_RDWR); }

}  // namespace

absl::StatusOr<LatencySummary> RunRequestResponse(Connection conn, int warmup, int iterations) {
  const int total = warmup + iterations;
  const int server_fd = conn.server.get(), client_fd = conn.client.get();

  absl::Status server_status;
  std::thread server([&] {
    char buf[kRrMessageBytes];
    for (int i = 0; i < total; ++i) {
      server_status = ReadFull(server_fd, buf, sizeof(buf));
      if (server_status.ok()) server_status = WriteFull(server_fd, buf, sizeof(buf));
      if (!server_status.ok()) {
        server_status =
            absl::Status(server_status.code(),
                         absl::StrCat("rr server, round trip ", i, ": ", server_status.message()));
        Abort(server_fd);
        return;
      }
    }
  });

  std::vector<int64_t> samples;
  samples.reserve(static_cast<size_t>(iterations));
  absl::Status client_status;
  char out[kRrMessageBytes], in[kRrMessageBytes];
  for (int i = 0; i < total && client_status.ok(); ++i) {
    std::memset(out, 'a' + i % 26, sizeof(out));
    std::memcpy(out, &i, sizeof(i));
    const Clock::time_point t0 = Clock::now();
    client_status = WriteFull(client_fd, out, sizeof(out));
    if (client_status.ok()) client_status = ReadFull(client_fd, in, sizeof(in));
    const Clock::time_point t1 = Clock::now();
    if (client_status.ok() && Interrupted()) client_status = CheckInterrupted();
    if (!client_status.ok()) {
      client_status =
          absl::Status(client_status.code(),
                       absl::StrCat("rr client, round trip ", i, ": ", client_status.message()));
    } else if (std::memcmp(in, out, sizeof(in)) != 0) {
      client_status =
          absl::DataLossError(absl::StrCat("rr: echo ", i, " differs from the request"));
    } else if (i >= warmup) {
      samples.push_back(NsBetween(t0, t1));
    }
  }
  if (!client_status.ok()) Abort(client_fd);
  server.join();
  if (!client_status.ok()) return client_status;
  if (!server_status.ok()) return server_status;
  return Summarize(samples);
}

absl::StatusOr<BulkResult> RunBulk(Connection conn, double seconds) {
  const int server_fd = conn.server.get(), client_fd = conn.client.get();

  absl::Status server_status;
  uint64_t received = 0, measured = 0;
  Clock::time_point first{}, last{};
  std::thread server([&] {
    std::vector<char> buf(kBulkReadBytes);
    for (;;) {
      ssize_t n = recv(server_fd, buf.data(), buf.size(), 0);
      if (n > 0) {
        const Clock::time_point now = Clock::now();
        if (received == 0)
          first = now;  // the clock starts here; these bytes are not counted
        else
          measured += static_cast<uint64_t>(n);
        received += static_cast<uint64_t>(n);
        last = now;
        continue;
      }
      if (n == 0) return;  // the client's FIN: everything arrived
      if (errno == EINTR) continue;
      server_status = (errno == EAGAIN || errno == EWOULDBLOCK)
                          ? absl::DeadlineExceededError("bulk server: recv timed out")
                          : lib::ErrnoStatus(errno, "bulk server: recv");
      Abort(server_fd);
      return;
    }
  });

  std::vector<char> chunk(kBulkWriteBytes, 'b');
  absl::Status client_status;
  uint64_t sent = 0;
  const Clock::time_point client_start = Clock::now();
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(seconds));
  while (Clock::now() < deadline) {
    if (client_status = CheckInterrupted(); !client_status.ok()) break;
    client_status = WriteFull(client_fd, chunk.data(), chunk.size());
    if (!client_status.ok()) break;
    sent += chunk.size();
  }
  const Clock::time_point client_end = Clock::now();
  if (client_status.ok() && shutdown(client_fd, SHUT_WR) != 0)
    client_status = lib::ErrnoStatus(errno, "bulk client: shutdown(SHUT_WR)");
  if (!client_status.ok()) Abort(client_fd);
  server.join();
  if (!client_status.ok())
    return absl::Status(client_status.code(),
                        absl::StrCat("bulk client: ", client_status.message()));
  if (!server_status.ok()) return server_status;
  if (received != sent)
    return absl::DataLossError(
        absl::StrCat("bulk: client sent ", sent, " bytes, server received ", received));

  BulkResult r;
  r.bytes_sent = sent;
  r.bytes_measured = measured;
  r.server_seconds = static_cast<double>(NsBetween(first, last)) / 1e9;
  r.client_seconds = static_cast<double>(NsBetween(client_start, client_end)) / 1e9;
  if (r.server_seconds <= 0)
    return absl::InternalError("bulk: all bytes arrived in one read; nothing to time");
  r.gbit_per_s = static_cast<double>(measured) * 8.0 / r.server_seconds / 1e9;
  return r;
}

}  // namespace shunt::bench
