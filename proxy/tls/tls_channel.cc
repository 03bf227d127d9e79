#include "proxy/tls/tls_channel.h"

#include <openssl/err.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/certs/openssl_util.h"

namespace shunt::proxy {
namespace {

constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
constexpr char kCipherSuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
             unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnH2, sizeof(kAlpnH2), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // a peer that does not speak h2 is not a proxy
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string SslErrorText() {
  unsigned long e = ERR_peek_last_error();
  char buf[256] = "handshake failed";
  if (e) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

}  // namespace

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::Create(Role role, const TlsCredentials& c) {
  std::shared_ptr<TlsContext> t(new TlsContext(role, c));
  t->ctx_ = SSL_CTX_new(role == Role::kClient ? TLS_client_method() : TLS_server_method());
  if (!t->ctx_) return certs::OsslError(absl::StatusCode::kInternal, "tls: new context");
  SSL_CTX* ctx = t->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_num_tickets(ctx, 0);  // tunnels are long-lived: no resumption
  // AES-128-GCM first, TLS 1.3's mandatory suite (RFC 8446 9.1), as Go's
  // crypto/tls orders it on CPUs with AES instructions: OpenSSL's default
  // order would pick AES-256-GCM, 40% more AES rounds per byte.
  if (SSL_CTX_set_ciphersuites(ctx, kCipherSuites) != 1)
    return certs::OsslError(absl::StatusCode::kInternal, "tls: cipher suites");
  auto cert = certs::CertFromPem(c.cert_pem, "tls: certificate");
  if (!cert.ok()) return cert.status();
  auto key = certs::KeyFromPem(c.key_pem, "tls: key");
  if (!key.ok()) return key.status();
  auto ca = certs::CertFromPem(c.ca_pem, "tls: CA certificate");
  if (!ca.ok()) return ca.status();
  if (SSL_CTX_use_certificate(ctx, cert->get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    return certs::OsslError(absl::StatusCode::kInvalidArgument,
                            "tls: the key is not the certificate's");
  // The cluster CA is the only trust anchor (no system store).
  if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca->get()) != 1)
    return certs::OsslError(absl::StatusCode::kInternal, "tls: trust store");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, &TlsChannel::OnVerify);
  if (c.verify_time) {
    X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(ctx), absl::ToTimeT(*c.verify_time));
  }
  if (role == Role::kClient) {
    SSL_CTX_set_alpn_protos(ctx, kAlpnH2, sizeof(kAlpnH2));
  } else {
    SSL_CTX_set_alpn_select_cb(ctx, SelectH2, nullptr);
  }
  return t;
}

TlsContext::~TlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

// The channel's BIO: reads take from the bytes being fed, writes append to
// the ciphertext buffer. One method for the process, made once.
BIO_METHOD* TlsChannel::BioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shunt-tls-channel");
    if (m) {
      BIO_meth_set_read_ex(m, &TlsChannel::BioRead);
      BIO_meth_set_write_ex(m, &TlsChannel::BioWrite);
      BIO_meth_set_ctrl(m, &TlsChannel::BioCtrl);
    }
    return m;
  }();
  return method;
}

int TlsChannel::BioRead(BIO* b, char* buf, size_t len, size_t* read) {
  auto* ch = static_cast<TlsChannel*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (ch->feed_.empty()) {
    BIO_set_retry_read(b);  // more when the peer sends it
    *read = 0;
    return 0;
  }
  const size_t n = std::min(len, ch->feed_.size());
  memcpy(buf, ch->feed_.data(), n);
  ch->feed_.remove_prefix(n);
  *read = n;
  return 1;
}

int TlsChannel::BioWrite(BIO* b, const char* buf, size_t len, size_t* written) {
  auto* ch = static_cast<TlsChannel*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ch->cipher_out_.Append({buf, len});
  *written = len;
  return 1;
}

long TlsChannel::BioCtrl(BIO* b, int cmd, long, void*) {
  auto* ch = static_cast<TlsChannel*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(ch->feed_.size());
    case BIO_CTRL_WPENDING:
      return static_cast<long>(ch->cipher_out_.size());
    default:
      return 0;
  }
}

absl::StatusOr<std::unique_ptr<TlsChannel>> TlsChannel::Create(std::shared_ptr<TlsContext> ctx) {
  std::unique_ptr<TlsChannel> ch(new TlsChannel(std::move(ctx)));
  BIO_METHOD* method = BioMethod();
  BIO* bio = method ? BIO_new(method) : nullptr;
  ch->ssl_ = bio ? SSL_new(ch->ctx_->ctx()) : nullptr;
  if (!ch->ssl_) {
    BIO_free(bio);
    return certs::OsslError(absl::StatusCode::kInternal, "tls: new channel");
  }
  BIO_set_data(bio, ch.get());
  BIO_set_init(bio, 1);
  SSL_set_bio(ch->ssl_, bio, bio);  // one BIO both ways: one reference taken
  SSL_set_app_data(ch->ssl_, ch.get());
  if (ch->ctx_->role() == TlsContext::Role::kClient) {
    SSL_set_connect_state(ch->ssl_);
    SSL_do_handshake(ch->ssl_);  // the ClientHello, for TakeOutput
    ERR_clear_error();
  } else {
    SSL_set_accept_state(ch->ssl_);
  }
  return ch;
}

TlsChannel::~TlsChannel() {
  if (ssl_) SSL_free(ssl_);  // frees the BIOs too
}

// OpenSSL's chain check, as it goes: the first certificate it refuses is
// kept with its reason (after the handshake the peer's certificate is no
// longer at hand for a refused one).
int TlsChannel::OnVerify(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 1) return 1;
  SSL* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* ch = ssl ? static_cast<TlsChannel*>(SSL_get_app_data(ssl)) : nullptr;
  if (ch && ch->refusal_ == certs::Refusal::kNone) {
    ch->refusal_ = certs::RefusalOfVerifyError(X509_STORE_CTX_get_error(store),
                                               X509_STORE_CTX_get_current_cert(store), &ch->error_);
  }
  return 0;
}

void TlsChannel::Fail(certs::Refusal refusal, std::string error) {
  failed_ = true;
  refusal_ = refusal;
  error_ = std::move(error);
}

void TlsChannel::CheckPeer() {
  X509* peer = SSL_get0_peer_certificate(ssl_);
  if (!peer) return Fail(certs::Refusal::kBadCertificate, "the peer sent no certificate");
  const TlsCredentials& c = ctx_->credentials();
  certs::PeerVerifier::Result r = certs::IdentityOf(peer, c.trust_domain);
  if (r.refusal != certs::Refusal::kNone) return Fail(r.refusal, r.detail);
  if (c.expect_peer && !(r.id == *c.expect_peer)) {
    return Fail(certs::Refusal::kNoIdentity,
                absl::StrCat("the peer is ", r.id.Uri(), ", not ", c.expect_peer->Uri()));
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn_len != 2 || alpn[0] != 'h' || alpn[1] != '2')
    return Fail(certs::Refusal::kNone, "the peer did not agree on h2");
  peer_ = std::move(r.id);
  established_ = true;
}

absl::Status TlsChannel::Feed(absl::string_view ciphertext) {
  if (failed_) return absl::FailedPreconditionError("tls: channel failed: " + error_);
  feed_ = ciphertext;
  if (established_) {
    Decrypt();
    return absl::OkStatus();
  }
  const int rv = SSL_do_handshake(ssl_);
  if (rv == 1) {
    CheckPeer();
    if (failed_) {
      feed_ = {};
      SSL_shutdown(ssl_);  // tell the peer; it gets a close instead of data
      return absl::PermissionDeniedError("tls: " + error_);
    }
    Decrypt();  // records the peer sent right behind its Finished
    return absl::OkStatus();
  }
  feed_ = {};
  const int err = SSL_get_error(ssl_, rv);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return absl::OkStatus();
  }
  std::string detail = SslErrorText();
  if (refusal_ != certs::Refusal::kNone) {
    Fail(refusal_, error_);  // what OnVerify found
  } else {
    Fail(certs::Refusal::kNone, detail);
  }
  return absl::PermissionDeniedError("tls: " + error_);
}

void TlsChannel::TakeOutput(ByteBuffer* out) { cipher_out_.MoveTo(out); }

void TlsChannel::TakeOutput(std::string* out) {
  out->append(cipher_out_.data(), cipher_out_.size());
  cipher_out_.clear();
}

// Every whole record fed so far, decrypted straight into plain_in_; a
// partial one stays in OpenSSL's buffer until the rest comes.
void TlsChannel::Decrypt() {
  constexpr size_t kRecord = 16384;  // TLS's largest plaintext per record
  while (!failed_ && !peer_closed_) {
    size_t n = 0;
    if (SSL_read_ex(ssl_, plain_in_.Reserve(kRecord), kRecord, &n) == 1) {
      plain_in_.Commit(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, 0);
    if (err == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
    } else if (err != SSL_ERROR_WANT_READ) {
      failed_ = true;
      error_ = SslErrorText();
    }
    ERR_clear_error();
    break;  // WANT_READ: the rest of a record is still on its way
  }
  feed_ = {};
}

bool TlsChannel::Read(ByteBuffer* out) {
  plain_in_.MoveTo(out);
  return !peer_closed_ && !failed_;
}

bool TlsChannel::Read(std::string* out) {
  out->append(plain_in_.data(), plain_in_.size());
  plain_in_.clear();
  return !peer_closed_ && !failed_;
}

absl::Status TlsChannel::Write(absl::string_view plaintext) {
  if (!established_ || failed_) return absl::FailedPreconditionError("tls: not established");
  size_t written = 0;
  if (!plaintext.empty() && SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &written) != 1) {
    failed_ = true;
    return absl::InternalError("tls: write: " + SslErrorText());
  }
  return absl::OkStatus();
}

void TlsChannel::Close() {
  if (ssl_ && established_ && !failed_) SSL_shutdown(ssl_);
}

}  // namespace shunt::proxy
