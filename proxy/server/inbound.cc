// The inbound side: each CONNECT on a tunnel a peer proxy opened to this
// node is judged (InboundPolicy: a local pod, the certificate's identity is
// the source pod's, SMI grants it the port) and, if allowed, connected to
// the pod; a refusal answers the stream alone and is counted by reason.
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "proxy/server/l7_entry.h"
#include "proxy/server/l7_stream_leg.h"
#include "proxy/server/pod_leg.h"
#include "proxy/server/pod_socket.h"
#include "proxy/server/tunnel_conn.h"
#include "proxy/server/worker.h"

namespace shunt::proxy {
void Worker::OnConnect(const std::shared_ptr<TunnelConn>& tunnel, int32_t id,
                       absl::string_view authority) {
  stats().Add(Stat::kInboundStreams);
  auto rt = shared_->runtime.Get();
  const std::string peer = tunnel->peer_uri();
  const std::string forwarded(tunnel->session().forwarded(id));
  auto dst = ParseConnectAuthority(authority);
  if (!dst.ok()) {
    stats().Refuse({.reason = "bad-authority",
                    .peer = peer,
                    .destination = std::string(authority.substr(0, 64))});
    tunnel->Refuse(id, 400);
    return;
  }
  auto src = ForwardedFor(forwarded);
  const std::string source = src.ok() ? src->AddressText() : std::string();
  InboundVerdict v = shared_->policy.Judge(*rt, tunnel->peer_identity(), forwarded, *dst,
                                           shared_->options.l7_port != 0);
  if (!v.allowed) {
    stats().Refuse(
        {.reason = v.reason, .peer = peer, .source = source, .destination = dst->ToAuthority()});
    tunnel->Refuse(id, v.http_status);
    return;
  }
  if (!v.reason.empty()) stats().Add(Stat::kInboundPermissiveAllowed);
  if (v.l7) return CarryInboundL7(tunnel, id, *src, *dst);
  socklen_t len = 0;
  const sockaddr_storage ss = ToSockaddr(*dst, &len);
  // The pod sees its real client: connect from the client pod's address.
  SourceKept kept = SourceKept::kNotAsked;
  lib::UniqueFd socket =
      OpenPodSocket(*dst, shared_->options.transparent && src.ok() ? &*src : nullptr, &kept);
  if (!socket.valid()) {
    tunnel->Refuse(id, 503);
    return;
  }
  if (kept == SourceKept::kKept) stats().Add(Stat::kInboundTransparent);
  if (kept == SourceKept::kFailed)
    stats().Add(Stat::kInboundTransparentFailed);  // the node's address, then
  const int fd = socket.get();
  if (connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    stats().Refuse({.reason = "pod-refused",
                    .peer = peer,
                    .source = source,
                    .destination = dst->ToAuthority()});
    tunnel->Refuse(id, 502);
    return;
  }
  auto leg = PodLeg::Make(this, std::move(socket));
  if (!leg) {
    tunnel->Refuse(id, 503);
    return;
  }
  // The tunnel holds the leg while it connects: a reset stream or a failed
  // tunnel closes the connect too.
  tunnel->Connecting(id, leg);
  leg->AwaitConnect([this, weak = std::weak_ptr<TunnelConn>(tunnel), id, peer, source,
                     to = dst->ToAuthority()](int error) {
    auto t = weak.lock();
    if (!t || !t->has_stream(id)) return;  // the caller went away meanwhile
    if (error != 0) {
      stats().Refuse({.reason = "pod-refused", .peer = peer, .source = source, .destination = to});
      t->Refuse(id, 502);
      return;
    }
    stats().Add(Stat::kInboundStreamsAccepted);
    t->Accept(id);
  });
}

// An HTTP-routes-only stream: the L7 layer reads and writes the stream in
// process (L7StreamLeg) as it reads a local pod's connection
// (l7_entry.cc), with the identity the certificate proved as the source;
// allowed requests go to the pod from the client pod's address.
void Worker::CarryInboundL7(const std::shared_ptr<TunnelConn>& tunnel, int32_t id,
                            const Destination& source, const Destination& destination) {
  auto rt = shared_->runtime.Get();
  const std::string* to = rt->IdentityOfLocalPod(destination.AddressText());
  if (L7AtCapacity()) {
    stats().Add(Stat::kL7Refused);
    stats().Refuse({.reason = "l7-connection-limit",
                    .peer = tunnel->peer_identity(),
                    .source = source.AddressText(),
                    .destination = destination.ToAuthority(),
                    .type = "l7"});
    tunnel->Refuse(id, 503);
    return;
  }
  if (!to) {
    tunnel->Refuse(id, 503);
    return;
  }
  auto leg = std::make_shared<L7StreamLeg>(this);
  L7Flow flow;
  flow.source = source;
  flow.destination = destination;
  flow.source_text = tunnel->peer_identity();
  flow.destination_text = *to;
  flow.source_identity = SubjectOf(flow.source_text);
  flow.destination_identity = SubjectOf(flow.destination_text);
  auto entry = L7Entry::Start(this, StreamIo(std::shared_ptr<ByteChannel>(leg)), std::move(flow));
  if (!entry) {
    tunnel->Refuse(id, 503);
    return;
  }
  KeepL7(entry.get(), entry);
  stats().Add(Stat::kL7Accepted);
  tunnel->Connecting(id, leg);
  stats().Add(Stat::kInboundStreamsAccepted);
  tunnel->Accept(id);
}

}  // namespace shunt::proxy
