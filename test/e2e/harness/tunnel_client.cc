#include "test/e2e/harness/tunnel_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "agent/certs/authority.h"
#include "agent/lib/status_macros.h"

namespace shunt::e2e {

absl::StatusOr<proxy::TlsCredentials> ClientCredentials(const std::string& ca_dir,
                                                        const std::string& ns,
                                                        const std::string& sa,
                                                        const std::string& trust_ca_dir) {
  const absl::Time now = absl::Now();
  SHUNT_ASSIGN_OR_RETURN(auto ca, certs::Authority::Load(ca_dir, now));
  SHUNT_ASSIGN_OR_RETURN(certs::SpiffeId id, certs::MakeSpiffeId("cluster.local", ns, sa));
  SHUNT_ASSIGN_OR_RETURN(certs::IssuedCertificate cert, ca->Issue(id, absl::Hours(1), now));
  std::string trust = ca->cert_pem();
  if (!trust_ca_dir.empty()) {
    SHUNT_ASSIGN_OR_RETURN(auto other, certs::Authority::Load(trust_ca_dir, now));
    trust = other->cert_pem();
  }
  SHUNT_ASSIGN_OR_RETURN(certs::SpiffeId proxy_id,
                         certs::MakeSpiffeId("cluster.local", certs::kNodeProxyNamespace,
                                             certs::kNodeProxyServiceAccount));
  return proxy::TlsCredentials{
      .cert_pem = cert.cert_pem, .key_pem = cert.key_pem, .ca_pem = trust, .expect_peer = proxy_id};
}

absl::StatusOr<std::unique_ptr<TestTunnelClient>> TestTunnelClient::Create(
    lib::UniqueFd fd, const proxy::TlsCredentials& creds) {
  std::unique_ptr<TestTunnelClient> c(new TestTunnelClient());
  c->fd_ = std::move(fd);
  SHUNT_ASSIGN_OR_RETURN(auto ctx,
                         proxy::TlsContext::Create(proxy::TlsContext::Role::kClient, creds));
  SHUNT_ASSIGN_OR_RETURN(c->tls_, proxy::TlsChannel::Create(ctx));
  TestTunnelClient* self = c.get();
  proxy::TunnelSession::Events ev;
  ev.on_response = [self](int32_t id, int status) { self->status_[id] = status; };
  ev.on_close = [self](int32_t id, uint32_t) { self->closed_[id] = true; };
  ev.on_data = [self](int32_t id, absl::string_view d) { self->session_->Consumed(id, d.size()); };
  SHUNT_ASSIGN_OR_RETURN(c->session_, proxy::TunnelSession::Create(
                                          proxy::TunnelSession::Role::kClient, {}, std::move(ev)));
  return c;
}

absl::Status TestTunnelClient::Pump(int timeout_ms, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::string out;
    if (tls_->established()) {
      std::string plain;
      session_->TakeOutput(&plain);
      if (!plain.empty()) SHUNT_RETURN_IF_ERROR(tls_->Write(plain));
    }
    tls_->TakeOutput(&out);
    if (!out.empty() && send(fd_.get(), out.data(), out.size(), MSG_NOSIGNAL) < 0)
      return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    if (done()) return absl::OkStatus();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("tunnel client: timed out");
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) return absl::UnavailableError("the proxy closed the connection");
    SHUNT_RETURN_IF_ERROR(tls_->Feed({buf, static_cast<size_t>(n)}));
    if (tls_->established()) {
      std::string plain;
      tls_->Read(&plain);
      if (!plain.empty()) SHUNT_RETURN_IF_ERROR(session_->Receive(plain));
    }
  }
}

absl::Status TestTunnelClient::SendRawUntilClosed(const std::string& h2_bytes, int timeout_ms) {
  SHUNT_RETURN_IF_ERROR(tls_->Write(h2_bytes));
  std::string out;
  tls_->TakeOutput(&out);
  // Written as the proxy reads it; a refusal to read more is the answer.
  for (size_t off = 0; off < out.size();) {
    const ssize_t n = send(fd_.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return absl::OkStatus();  // closed on us mid-way
    off += static_cast<size_t>(n);
  }
  absl::Status st = Pump(timeout_ms, [] { return false; });
  if (absl::IsUnavailable(st)) return absl::OkStatus();
  return st.ok() ? absl::DeadlineExceededError("the proxy kept the connection") : st;
}

absl::Status TestTunnelClient::Handshake(int timeout_ms) {
  return Pump(timeout_ms, [this] { return tls_->established(); });
}

absl::StatusOr<int> TestTunnelClient::Connect(const std::string& authority,
                                              const std::string& forwarded, int timeout_ms) {
  SHUNT_ASSIGN_OR_RETURN(int32_t id, session_->OpenStream(authority, forwarded));
  SHUNT_RETURN_IF_ERROR(
      Pump(timeout_ms, [this, id] { return status_.count(id) > 0 || closed_.count(id) > 0; }));
  return status_.count(id) ? status_[id] : 0;
}

}  // namespace shunt::e2e
