// The outbound side: a pod connection the kernel handed to this proxy
// (docs/mtls.md "The hand-off in the kernel") becomes a stream of a pooled
// tunnel to the destination's node, presenting the source pod's identity.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "proxy/common/socket_ops.h"
#include "proxy/server/l7_entry.h"
#include "proxy/server/l7_stream_leg.h"
#include "proxy/server/plain_relay.h"
#include "proxy/server/pod_leg.h"
#include "proxy/server/pod_socket.h"
#include "proxy/server/tunnel_conn.h"
#include "proxy/server/worker.h"

namespace shunt::proxy {
namespace {

// The pod connecting to `fd` gets a reset.
void ResetPodSocket(lib::UniqueFd& fd) {
  ResetOnClose(fd.get());
  fd.Reset();
}

}  // namespace

void Worker::HandleOutbound(lib::UniqueFd socket) {
  stats().Add(Stat::kOutboundAccepted);
  const std::string source = PeerAddressText(socket.get());
  if (source.empty()) return;  // gone already
  const bool v6 = source.find(':') != std::string::npos;
  auto refuse = [&](Stat stat, const char* reason, const std::string& destination) {
    stats().Add(stat);
    stats().Refuse(
        {.reason = reason, .peer = source, .source = source, .destination = destination});
    ResetPodSocket(socket);
  };
  Destination dst;
  if (!OriginalDestination(socket.get(), v6, &dst))
    return refuse(Stat::kOutboundNoOriginalDst, "no-original-dst", "");
  const std::string authority = dst.ToAuthority();
  auto rt = shared_->runtime.Get();
  const std::string* identity = rt->IdentityOfLocalPod(source);
  if (!identity) return refuse(Stat::kOutboundUnknownSource, "unknown-source", authority);
  const std::string* node = rt->NodeOfRemotePod(dst.AddressText());
  if (!node) return refuse(Stat::kOutboundUnknownNode, "unknown-destination-node", authority);
  if (!rt->clients.count(*identity))
    return refuse(Stat::kOutboundNoCertificate, "no-certificate", authority);
  Outbound o{
      .identity = *identity,
      .node = *node,
      .authority = authority,
      .forwarded = v6 ? absl::StrCat("for=\"[", source, "]\"") : absl::StrCat("for=", source),
      .destination = dst};
  // One worker owns the tunnels of each (identity, node), so there is one
  // pool per proxy, not per thread: the connection moves there.
  const auto& all = shared_->workers;
  Worker* owner = all[std::hash<std::string>{}(o.identity + "|" + o.node) % all.size()];
  if (owner == this) return CarryOutbound(std::move(socket), o);
  const int fd = socket.Release();
  owner->loop().Post([owner, fd, o] { owner->CarryOutbound(lib::UniqueFd(fd), o); });
}

void Worker::CarryOutbound(lib::UniqueFd socket, const Outbound& o) {
  auto rt = shared_->runtime.Get();
  // Its certificate went meanwhile, or this worker no longer carries anything new.
  if (!rt->clients.count(o.identity) || draining_) return ResetPodSocket(socket);
  auto leg = PodLeg::Make(this, std::move(socket));
  if (!leg) return;
  leg->set_destination(o.destination);
  if (auto m = meshless_.find(o.node); m != meshless_.end()) {
    if (std::chrono::steady_clock::now() < m->second && rt->config.mode == "permissive")
      return RelayPlain(leg);
    meshless_.erase(m);  // time to try the tunnel again
  }
  // A full tunnel gets a sibling; two misses in a row means none can be made.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto tunnel = TunnelFor(*rt, o.identity, o.node);
    if (tunnel && tunnel->Open(leg, o.authority, o.forwarded)) return;
  }
  leg->Abort();
}

StreamIo Worker::OpenTunnelStream(const L7Flow& flow, const Destination& to, bool* plaintext) {
  auto rt = shared_->runtime.Get();
  const std::string* node = rt->NodeOfRemotePod(to.AddressText());
  if (!node || !rt->clients.count(flow.source_text) || draining_) return StreamIo();
  if (auto m = meshless_.find(*node); m != meshless_.end()) {
    if (std::chrono::steady_clock::now() < m->second && rt->config.mode == "permissive") {
      *plaintext = true;
      return StreamIo();
    }
    meshless_.erase(m);  // time to try the tunnel again
  }
  const std::string source = flow.source.AddressText();
  const bool v6 = flow.source.family == AF_INET6;
  const std::string forwarded =
      v6 ? absl::StrCat("for=\"[", source, "]\"") : absl::StrCat("for=", source);
  stats().Add(Stat::kOutboundAccepted);
  // This worker's own tunnel (not the one CarryOutbound's hash picks): the
  // stream and the L7 layer share the thread, so no socketpair between them.
  auto leg = std::make_shared<L7StreamLeg>(this);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto tunnel = TunnelFor(*rt, flow.source_text, *node);
    if (tunnel && tunnel->Open(leg, to.ToAuthority(), forwarded))
      return StreamIo(std::shared_ptr<ByteChannel>(leg));
  }
  return StreamIo();
}

void Worker::MarkMeshless(const std::string& node) {
  meshless_[node] = std::chrono::steady_clock::now() + std::chrono::seconds(30);
}

bool Worker::PlaintextToMeshless(const std::string& source, const Destination& to) {
  // Relayed, it would reach the pod from this node's address, which the
  // other node's guard does not judge as a pod's: every request would pass
  // unjudged (docs/security.md).
  const bool enforce = shared_->policy.Enforcing();
  stats().Add(Stat::kL7GrantNeedsTunnel);
  stats().Refuse({.reason = "l7-grant-needs-tunnel",
                  .peer = to.AddressText(),
                  .source = source,
                  .destination = to.ToAuthority(),
                  .enforced = enforce});
  if (!enforce) stats().Add(Stat::kPlaintextToMeshless);
  return !enforce;
}

void Worker::RelayPlain(const std::shared_ptr<PodLeg>& leg) {
  // Asked of the kernel here, not at accept: only a meshless fallback needs it.
  const bool needs_tunnel = HandoffNeedsTunnel(leg->fd(), leg->destination().family == AF_INET6);
  if (needs_tunnel && !PlaintextToMeshless(PeerAddressText(leg->fd()), leg->destination()))
    return leg->Abort();
  lib::UniqueFd socket = leg->TakeSocket();
  if (!socket.valid()) return leg->Abort();
  if (!needs_tunnel) stats().Add(Stat::kPlaintextToMeshless);
  auto relay = std::make_shared<PlainRelay>(this, std::move(socket));
  relays_.insert(relay);
  relay->Start(leg->destination());
}

std::shared_ptr<TunnelConn> Worker::TunnelFor(const Runtime& rt, const std::string& identity,
                                              const std::string& node) {
  const auto& ctx = rt.clients.at(identity);
  auto& tunnels = pool_[{identity, node}];
  std::shared_ptr<TunnelConn> pick;
  for (const auto& t : tunnels) {
    if (!t->usable()) continue;
    if (t->tls_context() != ctx) {
      // Made with a certificate since renewed: it finishes what it carries
      // and takes nothing new.
      t->Drain();
      continue;
    }
    pick = t;
  }
  if (pick) return pick;
  // The node's inbound port: the node is a peer proxy's address.
  Destination peer;
  if (inet_pton(AF_INET, node.c_str(), peer.addr.data()) != 1) {
    if (inet_pton(AF_INET6, node.c_str(), peer.addr.data()) != 1) return nullptr;
    peer.family = AF_INET6;
  }
  peer.port = shared_->options.inbound_port;
  auto t = TunnelConn::Client(this, ctx, identity, peer);
  tunnels.push_back(t);
  t->Start();
  return t;
}

}  // namespace shunt::proxy
