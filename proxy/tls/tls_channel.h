// Mutual TLS between two nodes' proxies (OpenSSL 3), sans-I/O: ciphertext
// in (Feed) and out (TakeOutput), plaintext through Read and Write, so the
// handshake and its refusals are tested without sockets. Bytes go through
// a BIO of our own over the caller's input and a ByteBuffer for output, so
// no memory BIO copies them on the way: records are read from the bytes
// fed, decrypted into the buffer Read hands over, and encrypted into the
// buffer TakeOutput hands over (both handed over by swapping when the
// caller's buffer is empty).
//
// TLS 1.3 only, both ends present a certificate of the cluster CA, ALPN
// "h2". The client end is a source workload (one tunnel per source
// identity and destination node) and checks that the server is a node
// proxy of the trust domain (`expect_peer`); the server end is the node
// proxy and learns the client's workload identity, which SMI policy then
// judges per stream. Each failed handshake has a reason (certs::Refusal).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/certs/peer_verifier.h"
#include "agent/certs/spiffe_id.h"
#include "proxy/common/byte_buffer.h"

namespace shunt::proxy {

struct TlsCredentials {
  std::string cert_pem;  // this end's certificate (issued by the cluster CA)
  std::string key_pem;
  std::string ca_pem;  // the cluster CA: the only trust anchor
  std::string trust_domain = "cluster.local";
  // Client: the peer must be exactly this identity (the node proxy's).
  std::optional<certs::SpiffeId> expect_peer;
  // Tests: verify certificates at this time instead of now.
  std::optional<absl::Time> verify_time;
};

class TlsContext {
 public:
  enum class Role { kClient, kServer };
  // InvalidArgument naming what is wrong with the credentials.
  static absl::StatusOr<std::shared_ptr<TlsContext>> Create(Role role, const TlsCredentials& c);
  ~TlsContext();
  Role role() const { return role_; }
  SSL_CTX* ctx() const { return ctx_; }
  const TlsCredentials& credentials() const { return creds_; }

 private:
  TlsContext(Role role, TlsCredentials c) : role_(role), creds_(std::move(c)) {}
  Role role_;
  TlsCredentials creds_;
  SSL_CTX* ctx_ = nullptr;
};

class TlsChannel {
 public:
  static absl::StatusOr<std::unique_ptr<TlsChannel>> Create(std::shared_ptr<TlsContext> ctx);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  // Ciphertext from the peer, all of it taken (a partial record waits in
  // OpenSSL for the rest). Drives the handshake, then decrypts what it can
  // for Read. An error of the handshake ends the channel (refusal() says
  // why, an alert is queued for the peer); a bad record later makes Read
  // say false.
  absl::Status Feed(absl::string_view ciphertext);
  // Ciphertext for the peer (handshake messages, alerts, records), moved to
  // the back of `out`.
  void TakeOutput(ByteBuffer* out);
  void TakeOutput(std::string* out);
  bool established() const { return established_; }
  bool failed() const { return failed_; }
  // After a failed handshake: why (kNone when it was not the certificate).
  certs::Refusal refusal() const { return refusal_; }
  const std::string& error() const { return error_; }
  // After the handshake: who the peer proved to be.
  const certs::SpiffeId& peer() const { return peer_; }
  // "TLSv1.3".
  const char* protocol() const { return SSL_get_version(ssl_); }

  // Plaintext the peer sent, moved to the back of `out`; false when the
  // peer closed or a record was bad.
  bool Read(ByteBuffer* out);
  bool Read(std::string* out);
  // Plaintext for the peer (only once established).
  absl::Status Write(absl::string_view plaintext);
  // A close_notify for the peer.
  void Close();

 private:
  explicit TlsChannel(std::shared_ptr<TlsContext> ctx) : ctx_(std::move(ctx)) {}
  void Fail(certs::Refusal refusal, std::string error);
  friend class TlsContext;
  static int OnVerify(int preverify_ok, X509_STORE_CTX* store);
  void CheckPeer();
  void Decrypt();
  static int BioRead(BIO* b, char* buf, size_t len, size_t* read);
  static int BioWrite(BIO* b, const char* buf, size_t len, size_t* written);
  static long BioCtrl(BIO* b, int cmd, long num, void* ptr);
  static BIO_METHOD* BioMethod();

  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_ = nullptr;
  absl::string_view feed_;  // ciphertext being fed, not yet read by OpenSSL
  ByteBuffer cipher_out_;   // ciphertext for the peer
  ByteBuffer plain_in_;     // plaintext from the peer
  bool established_ = false;
  bool failed_ = false;
  bool peer_closed_ = false;
  certs::Refusal refusal_ = certs::Refusal::kNone;
  std::string error_;
  certs::SpiffeId peer_;
};

}  // namespace shunt::proxy
