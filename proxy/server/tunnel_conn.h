// One mTLS tunnel between two nodes' proxies on a socket: TCP, TLS 1.3
// (TlsChannel), HTTP/2 CONNECT streams (TunnelSession), each stream a pod
// connection (a StreamLeg: PodLeg to a pod's socket, or L7StreamLeg into
// this node's L7 layer). The client end is pooled per (source identity,
// peer node) and carries many pod connections; the server end is accepted
// on the node's inbound port and asks its worker to judge each CONNECT.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/lib/unique_fd.h"
#include "proxy/loop/event_loop.h"
#include "proxy/server/stream_leg.h"
#include "proxy/tls/tls_channel.h"
#include "proxy/tunnel/connect_authority.h"
#include "proxy/tunnel/tunnel_session.h"

namespace shunt::proxy {

class Worker;

class TunnelConn : public std::enable_shared_from_this<TunnelConn>, public EventLoop::Watcher {
 public:
  enum class Role { kClient, kServer };
  // A client tunnel to `peer` (the peer node proxy's address and port).
  static std::shared_ptr<TunnelConn> Client(Worker* worker, std::shared_ptr<TlsContext> tls,
                                            std::string identity, const Destination& peer);
  // A server tunnel on an accepted connection.
  static std::shared_ptr<TunnelConn> Server(Worker* worker, std::shared_ptr<TlsContext> tls,
                                            lib::UniqueFd socket);
  ~TunnelConn();
  TunnelConn(const TunnelConn&) = delete;
  TunnelConn& operator=(const TunnelConn&) = delete;

  // Client: connects and handshakes; server: handshakes (bounded in time).
  void Start();
  // Client: carries `leg` as a new stream to `authority`. False when this
  // tunnel takes no more streams (full, failing or draining).
  bool Open(const std::shared_ptr<StreamLeg>& leg, const std::string& authority,
            const std::string& forwarded);
  // Server: the CONNECT `id` is being connected to a pod through `leg`;
  // then accepted, or refused (which closes the leg, if any).
  void Connecting(int32_t id, const std::shared_ptr<StreamLeg>& leg);
  void Accept(int32_t id);
  void Refuse(int32_t id, int http_status);
  bool has_stream(int32_t id) const { return session_ && session_->has_stream(id); }

  // For the legs: the session and "write what it produced".
  TunnelSession& session() { return *session_; }
  void Flush();
  // The same once the loop's current batch of events is handled: what
  // every leg queued in it goes out in one TLS write and one send (eight
  // pod connections ready at once cost one system call, not eight).
  void FlushSoon();
  void Forget(int32_t id) { legs_.erase(id); }
  // A leg got DATA in the batch being received: FlushBatch once it is done.
  void Batched(const std::shared_ptr<StreamLeg>& leg) { batched_.push_back(leg); }

  // No new streams; closes once the last one ends.
  void Drain();
  // Takes new streams: connected or connecting, not draining, not full.
  bool usable() const;
  bool established() const { return tls_ && tls_->established(); }
  const std::string& identity() const { return identity_; }
  const std::shared_ptr<TlsContext>& tls_context() const { return tls_ctx_; }
  // Server: who the peer proved to be ("ns/sa"), after the handshake.
  const std::string& peer_identity() const { return peer_identity_; }
  // Its SPIFFE ID, as the certificate named it.
  std::string peer_uri() const { return tls_ ? tls_->peer().Uri() : std::string(); }
  std::string peer_address() const;
  size_t streams() const { return legs_.size(); }

  void OnEvents(uint32_t events) override;

 private:
  TunnelConn(Worker* worker, Role role, std::shared_ptr<TlsContext> tls, lib::UniqueFd socket);
  // The client's connect finished: 0 or its errno.
  void OnConnected(int error);
  // Tells the loop what this tunnel waits for now.
  void UpdateInterest();
  void OnReadable();
  // One timer at a time: the connect and handshake deadline, then idle.
  void SetTimer(int ms, void (*fire)(TunnelConn&));
  void CancelTimer();
  void OnHandshake();
  void WriteOut();
  // Ends the tunnel: every pod connection on it is reset.
  void Fail(const std::string& why);
  void CloseIfIdle();
  TunnelSession::Events SessionEvents();

  Worker* worker_;
  Role role_;
  std::shared_ptr<TlsContext> tls_ctx_;
  lib::UniqueFd socket_;
  Destination peer_;  // client: the peer node's inbound port
  EventLoop::TimerId timer_ = 0;
  std::unique_ptr<TlsChannel> tls_;
  std::unique_ptr<TunnelSession> session_;
  std::map<int32_t, std::shared_ptr<StreamLeg>> legs_;
  std::vector<std::shared_ptr<StreamLeg>> batched_;
  std::string identity_;       // client: the source identity it presents
  std::string peer_identity_;  // server: the identity the client proved
  // Ciphertext not yet written, at most about this much (then nghttp2 holds the rest).
  static constexpr size_t kMaxUnsent = 1u << 20;
  ByteBuffer out_;        // ciphertext not yet written
  ByteBuffer plain_in_;   // from the peer, decrypted, for the session
  ByteBuffer plain_out_;  // the session's output, before encryption
  // Inside session_->Receive: nghttp2 must not be asked for output from
  // its own callbacks (a refusal there); the Flush after Receive sends it.
  bool receiving_ = false;
  bool flush_soon_ = false;  // a FlushSoon is queued
  int64_t started_us_ = 0;
  bool connecting_ = false;
  bool connected_ = false;
  bool write_blocked_ = false;  // a send hit EAGAIN: wait to be told writable
  bool draining_ = false;
  bool failed_ = false;
};

}  // namespace shunt::proxy
