// The attack suite's fixture: a node in enforce or permissive mode with the
// bookstore (bookbuyer may reach bookstore on TCP 8080 and UDP 5353;
// bookthief may not; Service "store", 10.96.0.20, fronts it on TCP 80 and
// UDP 53), and what a hostile pod uses: v4-mapped sockets, raw IP and
// AF_PACKET sockets that bypass the socket hooks.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {

inline constexpr char kVip[] = "10.96.0.20";

inline constexpr char kConfig[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: store-port, namespace: bookstore}
spec: {matches: {ports: [8080]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata: {name: store-dns, namespace: bookstore}
spec: {matches: {ports: [5353]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: buyer-to-store, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
  rules:
  - {kind: TCPRoute, name: store-port}
  - {kind: UDPRoute, name: store-dns}
---
apiVersion: v1
kind: Service
metadata: {name: store, namespace: bookstore, annotations: {balancer.shunt.dev/algorithm: random}}
spec:
  clusterIP: 10.96.0.20
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}
)";

// The IPv4-mapped IPv6 address ::ffff:<ip4>, as Java and any dual-stack
// socket spell an IPv4 destination.
inline sockaddr_in6 Mapped(const std::string& ip4, uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ("::ffff:" + ip4).c_str(), &a.sin6_addr);
  return a;
}

inline std::string Ip6String(const in6_addr& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &a, buf, sizeof(buf));
  return buf;
}

class AttackFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(node_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(buyer_, node_->AddPod({.name = "buyer",
                                                .namespace_ = "bookbuyer",
                                                .service_account = "bookbuyer",
                                                .ipv6 = true}));
    ASSERT_OK_AND_ASSIGN(thief_, node_->AddPod({.name = "thief",
                                                .namespace_ = "bookthief",
                                                .service_account = "bookthief",
                                                .ipv6 = true}));
    ASSERT_OK_AND_ASSIGN(store_, node_->AddPod({.name = "store",
                                                .namespace_ = "bookstore",
                                                .service_account = "bookstore",
                                                .ipv6 = true}));
    std::string slice = absl::StrCat(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: store-1\n"
        "  namespace: bookstore\n  labels: {kubernetes.io/service-name: store}\n"
        "addressType: IPv4\nports:\n- {name: http, port: 8080, protocol: TCP}\n"
        "- {name: dns, port: 5353, protocol: UDP}\nendpoints:\n- addresses: [\"",
        store_->ip, "\"]\n  conditions: {ready: true}\n");
    ASSERT_OK(node_->WriteConfigFile("policy.yaml", absl::StrCat(kConfig, slice)));
  }
  void TearDown() override {
    if (HasFailure() && node_)
      std::fprintf(stderr, "--- agent log ---\n%s\n", node_->AgentLog().c_str());
    node_.reset();
  }
  void Start(const std::string& mode, const std::vector<std::string>& more = {}) {
    std::vector<std::string> flags = {"--mode=" + mode, "--debounce-ms=5"};
    flags.insert(flags.end(), more.begin(), more.end());
    ASSERT_OK(node_->StartAgent(flags));
    ASSERT_OK(node_->WaitMeshed());
  }

  lib::UniqueFd Listen(const TestPod& pod, uint16_t port, int type = SOCK_STREAM) {
    auto l = node_->PodSocket(pod, type);
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return {};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    EXPECT_EQ(bind(l->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (type == SOCK_STREAM) {
      EXPECT_EQ(listen(l->get(), 64), 0);
    }
    return std::move(*l);
  }

  // connect() of an AF_INET6 socket of `from` to ::ffff:ip4:port; 0 or the errno.
  int ConnectMapped(const TestPod& from, int type, const std::string& ip4, uint16_t port,
                    lib::UniqueFd* keep = nullptr) {
    auto s = node_->PodSocket(from, type, AF_INET6);
    if (!s.ok()) return -1;
    sockaddr_in6 a = Mapped(ip4, port);
    if (connect(s->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return errno;
    if (keep) *keep = std::move(*s);
    return 0;
  }

  // sendto() of an AF_INET6 UDP socket of `from` to ::ffff:ip4:port; 0 or the errno.
  int SendToMapped(const TestPod& from, const std::string& ip4, uint16_t port, const char* what,
                   lib::UniqueFd* keep = nullptr) {
    auto s = node_->PodSocket(from, SOCK_DGRAM, AF_INET6);
    if (!s.ok()) return -1;
    sockaddr_in6 a = Mapped(ip4, port);
    if (sendto(s->get(), what, strlen(what), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
      return errno;
    if (keep) *keep = std::move(*s);
    return 0;
  }

  // Connections waiting on `listener` (accepted and closed), without blocking.
  static int DrainAccepts(int listener) {
    int n = 0;
    while (true) {
      pollfd p{listener, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) return n;
      int c = accept(listener, nullptr, nullptr);
      if (c < 0) return n;
      close(c);
      ++n;
    }
  }

  // Sends one TCP SYN from `from` to dst:dport through a raw IP socket:
  // no connect(), so no socket hook sees it.
  absl::Status RawSyn(const TestPod& from, const std::string& dst, uint16_t dport) {
    auto s = node_->PodSocket(from, SOCK_RAW, AF_INET, IPPROTO_TCP);
    if (!s.ok()) return s.status();
    const std::string syn = SynHeader(from.ip, dst, dport);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    inet_pton(AF_INET, dst.c_str(), &to.sin_addr);
    if (sendto(s->get(), syn.data(), syn.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) !=
        static_cast<ssize_t>(syn.size()))
      return absl::InternalError(absl::StrCat("raw sendto: ", strerror(errno)));
    return absl::OkStatus();
  }

  // Writes one IPv4 packet from `from` to `dst` as a whole frame on the
  // pod's eth0 through an AF_PACKET socket (IP header ours too), addressed
  // to the node-side veth (the pod's gateway answers by proxy ARP).
  // `frag` is the IP header's flags-and-offset field (host order), `l4`
  // the bytes after the IP header.
  // `vlan_tags` 802.1Q tags of VLAN 0 (priority tags) go before the IP
  // header, as a hostile pod may write them.
  absl::Status SendFrame(const TestPod& from, const std::string& dst, uint8_t proto, uint16_t frag,
                         uint16_t id, const std::string& l4, int vlan_tags = 0) {
    SHUNT_ASSIGN_OR_RETURN(std::string ifindex_text,
                           Sh("ip netns exec " + from.netns + " cat /sys/class/net/eth0/ifindex"));
    SHUNT_ASSIGN_OR_RETURN(std::string mac_text,
                           Sh("ip netns exec " + node_->node_netns() + " cat /sys/class/net/" +
                              from.host_veth + "/address"));
    int ifindex = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ifindex_text), &ifindex))
      return absl::InternalError("eth0 ifindex: " + ifindex_text);
    unsigned mac[6];
    if (sscanf(mac_text.c_str(), "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
               &mac[5]) != 6)
      return absl::InternalError("veth MAC: " + mac_text);
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s,
                           node_->PodSocket(from, SOCK_DGRAM, AF_PACKET, htons(ETH_P_IP)));
    std::string packet(sizeof(iphdr), '\0');
    packet += l4;
    auto* ip = reinterpret_cast<iphdr*>(packet.data());
    ip->version = 4;
    ip->ihl = 5;
    ip->tot_len = htons(packet.size());
    ip->id = htons(id);
    ip->frag_off = htons(frag);
    ip->ttl = 64;
    ip->protocol = proto;
    inet_pton(AF_INET, from.ip.c_str(), &ip->saddr);
    inet_pton(AF_INET, dst.c_str(), &ip->daddr);
    ip->check = Checksum(ip, sizeof(iphdr), 0);
    std::string frame;
    for (int i = 0; i < vlan_tags; ++i) {
      // TCI 0 (VLAN 0, priority 0), then the type of what follows.
      const uint16_t next = i + 1 < vlan_tags ? ETH_P_8021Q : ETH_P_IP;
      frame += std::string("\0\0", 2);
      frame += static_cast<char>(next >> 8);
      frame += static_cast<char>(next & 0xff);
    }
    frame += packet;
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(vlan_tags > 0 ? ETH_P_8021Q : ETH_P_IP);
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    for (int i = 0; i < 6; ++i) to.sll_addr[i] = static_cast<uint8_t>(mac[i]);
    if (sendto(s.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
               sizeof(to)) != static_cast<ssize_t>(frame.size()))
      return absl::InternalError(absl::StrCat("packet sendto: ", strerror(errno)));
    return absl::OkStatus();
  }

  // A UDP datagram from `from` to dst:dport, written as a frame (SendFrame).
  absl::Status PacketUdp(const TestPod& from, const std::string& dst, uint16_t dport,
                         const std::string& payload) {
    std::string l4(sizeof(udphdr), '\0');
    auto* udp = reinterpret_cast<udphdr*>(l4.data());
    udp->source = htons(41000);
    udp->dest = htons(dport);
    udp->len = htons(sizeof(udphdr) + payload.size());
    return SendFrame(from, dst, IPPROTO_UDP, 0, 0x1234, l4 + payload);
  }

  // A TCP SYN header from `from` to dst:dport, checksum included.
  static std::string SynHeader(const std::string& src, const std::string& dst, uint16_t dport) {
    tcphdr tcp{};
    tcp.source = htons(40000 + (dport % 1000));
    tcp.dest = htons(dport);
    tcp.seq = htonl(0x5eed);
    tcp.doff = 5;
    tcp.syn = 1;
    tcp.window = htons(65535);
    in_addr s{}, d{};
    inet_pton(AF_INET, src.c_str(), &s);
    inet_pton(AF_INET, dst.c_str(), &d);
    tcp.check = L4Checksum(s, d, IPPROTO_TCP, &tcp, sizeof(tcp));
    return std::string(reinterpret_cast<const char*>(&tcp), sizeof(tcp));
  }

  // A counter of the pod's own network stack (/proc/net/snmp), e.g.
  // ("Tcp", "InSegs"): what reached the pod, seen from the pod.
  absl::StatusOr<uint64_t> Snmp(const TestPod& pod, const std::string& group,
                                const std::string& name) {
    SHUNT_ASSIGN_OR_RETURN(std::string snmp,
                           Sh("ip netns exec " + pod.netns + " cat /proc/net/snmp"));
    std::istringstream in(snmp);
    std::string header, values;
    while (std::getline(in, header)) {
      if (header.rfind(group + ":", 0) != 0 || !std::getline(in, values)) continue;
      std::istringstream h(header), v(values);
      std::string n, value;
      while (h >> n && v >> value)
        if (n == name) return std::stoull(value);
    }
    return absl::NotFoundError(absl::StrCat("no ", group, " ", name, " in /proc/net/snmp"));
  }

  uint64_t Counter(int idx) {
    auto c = node_->Counters();
    return c.ok() ? (*c)[idx] : 0;
  }

  // Waits until counter `idx` is at least `want`.
  absl::Status CounterReaches(int idx, uint64_t want, const std::string& what) {
    return Eventually(
        what,
        [&]() -> absl::Status {
          if (Counter(idx) >= want) return absl::OkStatus();
          return absl::UnavailableError(absl::StrCat("counter at ", Counter(idx)));
        },
        5000);
  }

  // The Internet checksum (RFC 1071) of `data`, `sum` carried in.
 public:
  static uint16_t Checksum(const void* data, size_t len, uint32_t sum) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
    if (len & 1) sum += p[len - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons(static_cast<uint16_t>(~sum));
  }
  static uint16_t L4Checksum(in_addr src, in_addr dst, uint8_t proto, const void* l4, size_t len) {
    uint8_t pseudo[12];
    std::memcpy(pseudo, &src, 4);
    std::memcpy(pseudo + 4, &dst, 4);
    pseudo[8] = 0;
    pseudo[9] = proto;
    pseudo[10] = static_cast<uint8_t>(len >> 8);
    pseudo[11] = static_cast<uint8_t>(len);
    uint32_t sum = 0;
    for (int i = 0; i < 12; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
    return Checksum(l4, len, sum);
  }

 protected:
  absl::StatusOr<std::string> Drops() {
    return Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(), " drops -o json"));
  }

  std::unique_ptr<TestNode> node_;
  TestPod* buyer_ = nullptr;
  TestPod* thief_ = nullptr;
  TestPod* store_ = nullptr;
};

}  // namespace shunt::e2e
