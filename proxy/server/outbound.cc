// The outbound side: a pod connection the kernel handed to this proxy
// (docs/mtls.md "The hand-off in the kernel") becomes a stream of a pooled
// tunnel to the destination's node, presenting the source pod's identity.
// Asio brings glibc's net/if.h: it must come before the kernel's headers.
#include "proxy/server/worker.h"
// clang-format off
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <sys/socket.h>
#include <time.h>
// clang-format on

#include "absl/strings/str_cat.h"
#include "proxy/server/plain_relay.h"
#include "proxy/server/pod_leg.h"
#include "proxy/server/tunnel_conn.h"

namespace shunt::proxy {
namespace {

// Where the pod was connecting to, as the kernel kept it (cgroup/getsockopt
// answers SO_ORIGINAL_DST from the hand-off's record).
bool OriginalDst(int fd, bool v6, Destination* d) {
  if (!v6) {
    sockaddr_in o{};
    socklen_t len = sizeof(o);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &o, &len) != 0) return false;
    d->family = AF_INET;
    memcpy(d->addr.data(), &o.sin_addr, 4);
    d->port = ntohs(o.sin_port);
    return true;
  }
  sockaddr_in6 o{};
  socklen_t len = sizeof(o);
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &o, &len) != 0) return false;
  d->family = AF_INET6;
  memcpy(d->addr.data(), &o.sin6_addr, 16);
  d->port = ntohs(o.sin6_port);
  return true;
}

void Reset(asio::ip::tcp::socket& s) {
  linger l{.l_onoff = 1, .l_linger = 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  asio::error_code ec;
  s.close(ec);
}

}  // namespace

void Worker::HandleOutbound(asio::ip::tcp::socket socket) {
  stats().Add(Stat::kOutboundAccepted);
  asio::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  const std::string source = peer.address().to_string();
  const bool v6 = peer.address().is_v6();
  auto refuse = [&](Stat stat, const char* reason, const std::string& destination) {
    stats().Add(stat);
    stats().Refuse(
        {.reason = reason, .peer = source, .source = source, .destination = destination});
    Reset(socket);
  };
  Destination dst;
  if (!OriginalDst(socket.native_handle(), v6, &dst))
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
  const int fd = socket.release(ec);
  if (owner == this) return CarryOutbound(fd, o);
  asio::post(owner->io(), [owner, fd, o] { owner->CarryOutbound(fd, o); });
}

void Worker::CarryOutbound(int fd, const Outbound& o) {
  asio::error_code ec;
  asio::ip::tcp::socket socket(io_);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  socket.assign(ss.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
  if (ec) {
    close(fd);
    return;
  }
  auto rt = shared_->runtime.Get();
  if (!rt->clients.count(o.identity)) return Reset(socket);  // its certificate went meanwhile
  auto leg = std::make_shared<PodLeg>(this, std::move(socket));
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

void Worker::MarkMeshless(const std::string& node) {
  meshless_[node] = std::chrono::steady_clock::now() + std::chrono::seconds(30);
}

void Worker::RelayPlain(const std::shared_ptr<PodLeg>& leg) {
  auto socket = leg->TakeSocket();
  if (!socket) return leg->Abort();
  stats().Add(Stat::kPlaintextToMeshless);
  std::make_shared<PlainRelay>(this, std::move(*socket))->Start(leg->destination());
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
  asio::error_code ec;
  const auto address = asio::ip::make_address(node, ec);
  if (ec) return nullptr;
  auto t = TunnelConn::Client(this, ctx, identity,
                              asio::ip::tcp::endpoint(address, shared_->options.inbound_port));
  tunnels.push_back(t);
  t->Start();
  return t;
}

}  // namespace shunt::proxy
