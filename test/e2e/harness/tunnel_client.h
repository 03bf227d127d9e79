// A tunnel client the test drives itself: a stand-in for another node's
// proxy that presents the certificate and makes the claims the test
// chooses (another CA's certificate, another pod's address), over a
// blocking socket, with the proxy's own TLS and stream layers.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"
#include "proxy/tls/tls_channel.h"
#include "proxy/tunnel/tunnel_session.h"

namespace shunt::e2e {

// A certificate for ns/sa from the CA in `ca_dir` (ca.crt, ca.key), as a
// client's TLS credentials that expect a node proxy of `trust_domain`.
absl::StatusOr<proxy::TlsCredentials> ClientCredentials(const std::string& ca_dir,
                                                        const std::string& ns,
                                                        const std::string& sa,
                                                        const std::string& trust_ca_dir = "");

class TestTunnelClient {
 public:
  // `fd`: a TCP socket already connected to the proxy's inbound port.
  static absl::StatusOr<std::unique_ptr<TestTunnelClient>> Create(
      lib::UniqueFd fd, const proxy::TlsCredentials& creds);
  // The TLS handshake: OK once established; else why it failed (our side's
  // verdict, or the peer closing on us).
  absl::Status Handshake(int timeout_ms = 5000);
  // A CONNECT stream: its response status, or 0 when the stream ended
  // without one.
  absl::StatusOr<int> Connect(const std::string& authority, const std::string& forwarded,
                              int timeout_ms = 5000);

  // Bytes straight into the TLS channel, past the HTTP/2 layer (a peer
  // that breaks the protocol), then waits until the proxy closes the
  // connection: OK when it did, DeadlineExceeded when it did not.
  absl::Status SendRawUntilClosed(const std::string& h2_bytes, int timeout_ms = 5000);

 private:
  TestTunnelClient() = default;
  // Moves bytes until `done()` or the deadline; error when the peer closed.
  absl::Status Pump(int timeout_ms, const std::function<bool()>& done);

  lib::UniqueFd fd_;
  std::unique_ptr<proxy::TlsChannel> tls_;
  std::unique_ptr<proxy::TunnelSession> session_;
  std::map<int32_t, int> status_;
  std::map<int32_t, bool> closed_;
};

}  // namespace shunt::e2e
