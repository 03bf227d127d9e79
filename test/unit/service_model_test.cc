// Service, EndpointSlice and TrafficSplit parsing (agent/model/service.h).
// Errors are InvalidArgument naming the field; valid objects this version
// does not load-balance are Unimplemented.
#include <arpa/inet.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/model/service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/ipv4_util.h"
#include "test/unit/parse_error.h"
#include "test/unit/yaml_doc.h"

namespace shunt::model {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using test_util::Ipv4Be;

using shunt::testing::ErrorOf;
template <typename T>
std::string SkipOf(const absl::StatusOr<T>& s) {
  return ErrorOf(s, absl::StatusCode::kUnimplemented);
}

absl::StatusOr<Service> Svc(const std::string& yaml) {
  return ParseService(shunt::testing::YamlDoc(yaml));
}
absl::StatusOr<EndpointSlice> Slice(const std::string& yaml) {
  return ParseEndpointSlice(shunt::testing::YamlDoc(yaml));
}
constexpr char kV4[] = "split.smi-spec.io/v1alpha4";
constexpr char kV3[] = "split.smi-spec.io/v1alpha3";
constexpr char kV2[] = "split.smi-spec.io/v1alpha2";
constexpr char kV1[] = "split.smi-spec.io/v1alpha1";
absl::StatusOr<TrafficSplit> Split(const std::string& yaml, const std::string& api = kV4) {
  return ParseTrafficSplit(shunt::testing::YamlDoc(yaml), api);
}

// A ClusterIP service web/demo at 10.96.0.10 with the given spec.ports body.
std::string SvcWithPorts(const std::string& ports) {
  return "metadata: {name: web, namespace: demo}\nspec:\n  clusterIP: 10.96.0.10\n  ports: " +
         ports + "\n";
}
// A Service with the given spec body (flow style, without braces).
std::string SvcWithSpec(const std::string& spec) {
  return "metadata: {name: web, namespace: demo}\nspec: {" + spec + "}\n";
}

// ---------------------------------------------------------------------------
// Service

TEST(ServiceTest, ParsesEveryField) {
  auto s = Svc(R"(
apiVersion: v1
kind: Service
metadata:
  name: checkout
  namespace: shop
  annotations:
    shunt.io/balancer: ewma
    prometheus.io/port: 9090
    empty:
spec:
  type: ClusterIP
  clusterIP: 10.96.12.34
  clusterIPs: [10.96.12.34]
  selector: {app: checkout}
  ports:
  - name: http
    port: 80
    targetPort: web
    appProtocol: http
  - name: grpc
    port: 9000
    protocol: TCP
    targetPort: 9001
  - name: dns
    port: 53
    protocol: UDP
)");
  ASSERT_TRUE(s.ok()) << s.status();
  const Service want{
      .namespace_ = "shop",
      .name = "checkout",
      .type = ServiceType::kClusterIp,
      .headless = false,
      .cluster_ip = "10.96.12.34",
      .cluster_ip_be = Ipv4Be("10.96.12.34"),
      .ports = {{.name = "http",
                 .port = 80,
                 .protocol = Protocol::kTcp,
                 .target_port = 0,
                 .target_port_name = "web",
                 .app_protocol = "http"},
                {.name = "grpc", .port = 9000, .protocol = Protocol::kTcp, .target_port = 9001},
                {.name = "dns", .port = 53, .protocol = Protocol::kUdp, .target_port = 53}},
      .annotations = {{"shunt.io/balancer", "ewma"}, {"prometheus.io/port", "9090"}, {"empty", ""}},
  };
  EXPECT_EQ(*s, want);
  EXPECT_EQ(s->Key(), "shop/checkout");
}

TEST(ServiceTest, Defaults) {
  // No namespace, type, protocol, port name or targetPort; no annotations.
  auto s = Svc("metadata: {name: web}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 8080}]}\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->namespace_, "default");
  EXPECT_EQ(s->type, ServiceType::kClusterIp);
  EXPECT_FALSE(s->headless);
  EXPECT_THAT(s->annotations, IsEmpty());
  ASSERT_EQ(s->ports.size(), 1u);
  EXPECT_EQ(
      s->ports[0],
      (ServicePort{.name = "", .port = 8080, .protocol = Protocol::kTcp, .target_port = 8080}));
}

TEST(ServiceTest, TargetPortZeroOrEmptyIsThePortAsTheApiServerDefaultsIt) {
  auto s = Svc(
      SvcWithPorts("[{name: a, port: 80, targetPort: 0}, {name: b, port: 81, targetPort: ''}]"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ports[0].target_port, 80);
  EXPECT_EQ(s->ports[1].target_port, 81);
  EXPECT_EQ(s->ports[1].target_port_name, "");
}

TEST(ServiceTest, NodePortAndLoadBalancerAreBalancedOnTheirClusterIp) {
  for (const auto& [type, want] : {std::pair{"NodePort", ServiceType::kNodePort},
                                   std::pair{"LoadBalancer", ServiceType::kLoadBalancer}}) {
    auto s = Svc(SvcWithSpec(std::string("type: ") + type +
                             ", clusterIP: 10.96.0.7, ports: [{port: 80, nodePort: 30080}]"));
    ASSERT_TRUE(s.ok()) << type << ": " << s.status();
    EXPECT_EQ(s->type, want);
    EXPECT_EQ(s->cluster_ip, "10.96.0.7");
    EXPECT_STREQ(ServiceTypeName(s->type), type);
  }
  EXPECT_STREQ(ServiceTypeName(ServiceType::kClusterIp), "ClusterIP");
}

TEST(ServiceTest, HeadlessParsesWithoutAVirtualIp) {
  auto s = Svc(SvcWithSpec("clusterIP: None"));  // no ports either
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->headless);
  EXPECT_EQ(s->cluster_ip, "");
  EXPECT_EQ(s->cluster_ip_be, 0u);
  EXPECT_THAT(s->ports, IsEmpty());

  auto with_ports = Svc(SvcWithSpec("clusterIPs: [None], ports: [{port: 5432}]"));
  ASSERT_TRUE(with_ports.ok()) << with_ports.status();
  EXPECT_TRUE(with_ports->headless);
  EXPECT_EQ(with_ports->ports.size(), 1u);

  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("type: NodePort, clusterIP: None, ports: [{port: 80}]"))),
            "spec.clusterIP None (headless) is only valid with type ClusterIP, not NodePort");
}

TEST(ServiceTest, DualStackUsesTheIpv4Address) {
  auto s = Svc(SvcWithSpec(
      "clusterIP: 'fd00::10', clusterIPs: ['fd00::10', 10.96.0.10], ports: [{port: 80}]"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cluster_ip, "10.96.0.10");
  EXPECT_EQ(s->cluster_ip_be, Ipv4Be("10.96.0.10"));

  auto only_list = Svc(SvcWithSpec("clusterIPs: [10.96.0.11, 'fd00::11'], ports: [{port: 80}]"));
  ASSERT_TRUE(only_list.ok()) << only_list.status();
  EXPECT_EQ(only_list->cluster_ip, "10.96.0.11");

  EXPECT_EQ(ErrorOf(Svc(
                SvcWithSpec("clusterIP: 10.96.0.1, clusterIPs: [10.96.0.2], ports: [{port: 80}]"))),
            "spec.clusterIPs[0] '10.96.0.2' differs from spec.clusterIP '10.96.0.1'");
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIPs: [10.96.0.1, bogus], ports: [{port: 80}]"))),
            "spec.clusterIPs[1] 'bogus' is not an IP address");
}

TEST(ServiceTest, ClusterIpMustBeAnIpv4Address) {
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("ports: [{port: 80}]"))),
            "spec.clusterIP is missing (the file source does not allocate service addresses: "
            "write the address, or None for a headless service)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIP: '', ports: [{port: 80}]"))),
            "spec.clusterIP is missing (the file source does not allocate service addresses: "
            "write the address, or None for a headless service)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIP: 10.96.0.300, ports: [{port: 80}]"))),
            "spec.clusterIP '10.96.0.300' is not an IP address");
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIP: [10.96.0.1], ports: [{port: 80}]"))),
            "spec.clusterIP must be a string");
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIPs: 10.96.0.1, ports: [{port: 80}]"))),
            "spec.clusterIPs must be a list");
}

TEST(ServiceTest, CreationTimestampIsReadForWhoKeepsAClusterIp) {
  auto svc =
      Svc("metadata: {name: web, namespace: demo, creationTimestamp: '2024-01-02T03:04:05Z'}\n"
          "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n");
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_EQ(svc->created, 1704164645);
  EXPECT_EQ(ErrorOf(Svc("metadata: {name: web, creationTimestamp: yesterday}\n"
                        "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n")),
            "metadata.creationTimestamp 'yesterday' is not an RFC 3339 time");
  EXPECT_FALSE(Svc(SvcWithSpec("clusterIP: 10.96.0.1, ports: [{port: 80}]"))->created.has_value());
}

TEST(ServiceTest, WhatThisVersionDoesNotBalanceIsUnimplemented) {
  EXPECT_EQ(SkipOf(Svc(SvcWithSpec("type: ExternalName, externalName: db.example.com"))),
            "spec.type ExternalName has no cluster IP; not load-balanced");
  EXPECT_EQ(SkipOf(Svc(SvcWithSpec("clusterIP: 'fd00::10', ports: [{port: 80}]"))),
            "spec.clusterIP 'fd00::10' is IPv6; IPv6 is not load-balanced in this version");
  EXPECT_EQ(SkipOf(Svc(SvcWithSpec("clusterIPs: ['fd00::10', 'fd00::11'], ports: [{port: 80}]"))),
            "spec.clusterIPs[0] 'fd00::10' is IPv6; IPv6 is not load-balanced in this version");
  EXPECT_EQ(SkipOf(Svc(SvcWithPorts("[{name: a, port: 80}, {name: b, port: 9, protocol: SCTP}]"))),
            "spec.ports[1].protocol SCTP is not load-balanced in this version");
}

TEST(ServiceTest, TypeMustBeKnown) {
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("type: Internal, clusterIP: 10.96.0.1, ports: [{port: 80}]"))),
            "spec.type 'Internal' is not a service type (ClusterIP, NodePort, LoadBalancer or "
            "ExternalName)");
}

TEST(ServiceTest, PortsFollowTheKubernetesRules) {
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIP: 10.96.0.1"))),
            "spec.ports must list at least one port");
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIP: 10.96.0.1, ports: []"))),
            "spec.ports must list at least one port");
  EXPECT_EQ(ErrorOf(Svc(SvcWithSpec("clusterIP: 10.96.0.1, ports: {port: 80}"))),
            "spec.ports must be a list");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[80]"))), "spec.ports[0] must be an object");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: a, port: 80}, {port: 81}]"))),
            "spec.ports[1].name is missing (required when a service has more than one port)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: a, port: 80}, {name: a, port: 81}]"))),
            "spec.ports[1].name 'a' is already spec.ports[0]");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: Http, port: 80}]"))),
            "spec.ports[0].name 'Http' is not a valid DNS label");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: a}]"))), "spec.ports[0].port is missing");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: a, port: 0}]"))),
            "spec.ports[0].port '0' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: a, port: 65536}]"))),
            "spec.ports[0].port '65536' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: a, port: 80, protocol: ICMP}]"))),
            "spec.ports[0].protocol 'ICMP' is not a protocol (TCP, UDP or SCTP)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{name: a, port: 80}, {name: b, port: 80, protocol: TCP}]"))),
            "spec.ports[1] 80/TCP is already spec.ports[0]");
  // The same number over TCP and UDP is two ports (DNS).
  auto dns = Svc(SvcWithPorts("[{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53}]"));
  ASSERT_TRUE(dns.ok()) << dns.status();
  EXPECT_EQ(dns->ports[0].protocol, Protocol::kUdp);
  EXPECT_EQ(dns->ports[1].protocol, Protocol::kTcp);
}

TEST(ServiceTest, TargetPortIsANumberOrAPortName) {
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{port: 80, targetPort: 70000}]"))),
            "spec.ports[0].targetPort '70000' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{port: 80, targetPort: -1}]"))),
            "spec.ports[0].targetPort '-1' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Svc(SvcWithPorts("[{port: 80, targetPort: [web]}]"))),
            "spec.ports[0].targetPort must be a port number or a port name");
  for (const char* bad : {"Web", "web_1", "-web", "web-", "we--b", "12-34", "abcdefghijklmnop"}) {
    EXPECT_EQ(
        ErrorOf(Svc(SvcWithPorts(
            std::string("[{name: a, port: 80}, {name: b, port: 81, targetPort: '") + bad + "'}]"))),
        std::string("spec.ports[1].targetPort '") + bad +
            "' is not a valid port name (at most 15 lowercase letters, digits and '-', with a "
            "letter, no '-' at either end or twice in a row)");
  }
  auto s = Svc(SvcWithPorts("[{port: 80, targetPort: '8080'}]"));  // quoted digits are a number
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ports[0].target_port, 8080);
  EXPECT_EQ(s->ports[0].target_port_name, "");
}

TEST(ServiceTest, PortNamesAreIanaServiceNames) {
  for (const char* good : {"http", "a", "http-alt", "h2c", "abcdefghijklmno", "8-a"})
    EXPECT_TRUE(IsPortName(good)) << good;
  for (const char* bad : {"", "HTTP", "a_b", "-a", "a-", "a--b", "123", "abcdefghijklmnop", "a.b"})
    EXPECT_FALSE(IsPortName(bad)) << bad;
}

TEST(ServiceTest, NameMustBeADns1035Label) {
  EXPECT_EQ(
      ErrorOf(Svc("metadata: {name: 1web}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n")),
      "metadata.name '1web' is not a valid Service name (a DNS label starting with a letter)");
  EXPECT_EQ(
      ErrorOf(Svc("metadata: {name: web.v1}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n")),
      "metadata.name 'web.v1' is not a valid Service name (a DNS label starting with a letter)");
  EXPECT_EQ(ErrorOf(Svc("metadata: {name: web, namespace: Demo}\nspec: {clusterIP: 10.96.0.1}\n")),
            "metadata.namespace 'Demo' is not a valid DNS label");
  EXPECT_EQ(ErrorOf(Svc("metadata: {namespace: demo}\nspec: {clusterIP: 10.96.0.1}\n")),
            "metadata.name is missing");
  EXPECT_EQ(ErrorOf(Svc("metadata: {name: web}\n")), "spec is missing");
  EXPECT_EQ(ErrorOf(Svc("[1, 2]")), "not a Kubernetes object (expected a mapping)");
}

TEST(ServiceTest, AnnotationsMustBeStrings) {
  EXPECT_EQ(ErrorOf(Svc("metadata: {name: web, annotations: {a: [1]}}\nspec: {clusterIP: None}\n")),
            "metadata.annotations.a must be a string");
  EXPECT_EQ(ErrorOf(Svc("metadata: {name: web, annotations: [a]}\nspec: {clusterIP: None}\n")),
            "metadata.annotations must be a map of strings");
}

TEST(ServiceTest, ProtocolNames) {
  EXPECT_STREQ(ProtocolName(Protocol::kTcp), "TCP");
  EXPECT_STREQ(ProtocolName(Protocol::kUdp), "UDP");
  EXPECT_STREQ(ProtocolName(Protocol::kSctp), "SCTP");
}

// ---------------------------------------------------------------------------
// EndpointSlice

// A slice of service `web` in `demo` with the given body after the metadata.
std::string SliceYaml(const std::string& body) {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata:\n  name: web-abc12\n  namespace: demo\n"
         "  labels: {kubernetes.io/service-name: web}\n" +
         body;
}

TEST(EndpointSliceTest, ParsesEveryField) {
  // As the EndpointSlice controller writes it.
  auto s = Slice(SliceYaml(R"(addressType: IPv4
endpoints:
- addresses: [10.244.1.5]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-a
  zone: zone-1
  targetRef: {kind: Pod, namespace: demo, name: web-7d9f-x2x7k, uid: 1234}
- addresses: [10.244.2.6, 10.244.2.7]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-b
ports:
- name: http
  port: 8080
  protocol: TCP
  appProtocol: http
- name: dns
  port: 53
  protocol: UDP
)"));
  ASSERT_TRUE(s.ok()) << s.status();
  const EndpointSlice want{
      .namespace_ = "demo",
      .name = "web-abc12",
      .service_name = "web",
      .endpoints = {{.addresses = {"10.244.1.5"},
                     .addresses_be = {Ipv4Be("10.244.1.5")},
                     .ready = true,
                     .serving = true,
                     .terminating = false,
                     .node_name = "node-a",
                     .target_ref =
                         EndpointTargetRef{
                             .kind = "Pod", .namespace_ = "demo", .name = "web-7d9f-x2x7k"}},
                    {.addresses = {"10.244.2.6", "10.244.2.7"},
                     .addresses_be = {Ipv4Be("10.244.2.6"), Ipv4Be("10.244.2.7")},
                     .ready = false,
                     .serving = true,
                     .terminating = true,
                     .node_name = "node-b"}},
      .ports = {{.name = "http", .port = 8080, .protocol = Protocol::kTcp, .app_protocol = "http"},
                {.name = "dns", .port = 53, .protocol = Protocol::kUdp}},
  };
  EXPECT_EQ(*s, want);
  EXPECT_EQ(s->Key(), "demo/web-abc12");
}

TEST(EndpointSliceTest, ConditionsDefaultAsKubernetesSays) {
  struct Case {
    const char* conditions;
    bool ready, serving, terminating;
  };
  for (const Case& c :
       {Case{"", true, true, false}, Case{"conditions: {}", true, true, false},
        Case{"conditions: null", true, true, false},
        Case{"conditions: {ready: false}", false, false, false},  // serving = ready
        Case{"conditions: {ready: true}", true, true, false},
        Case{"conditions: {serving: false}", true, false, false},
        Case{"conditions: {ready: false, terminating: true}", false, false, true},
        Case{"conditions: {ready: false, serving: true, terminating: true}", false, true, true}}) {
    auto s =
        Slice(SliceYaml(std::string("addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n  ") +
                        c.conditions + "\n"));
    ASSERT_TRUE(s.ok()) << c.conditions << ": " << s.status();
    const Endpoint& e = s->endpoints[0];
    EXPECT_EQ(e.ready, c.ready) << c.conditions;
    EXPECT_EQ(e.serving, c.serving) << c.conditions;
    EXPECT_EQ(e.terminating, c.terminating) << c.conditions;
  }
  EXPECT_EQ(ErrorOf(Slice(SliceYaml("addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n"
                                    "  conditions: {ready: maybe}\n"))),
            "endpoints[0].conditions.ready must be true or false");
  EXPECT_EQ(ErrorOf(Slice(SliceYaml("addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n"
                                    "  conditions: [ready]\n"))),
            "endpoints[0].conditions must be an object");
}

TEST(EndpointSliceTest, EmptyOrNullEndpointsAndPortsAreEmpty) {
  // The controller writes `endpoints: null` for a service without ready pods.
  for (const char* body :
       {"addressType: IPv4\n", "addressType: IPv4\nendpoints: null\nports: null\n",
        "addressType: IPv4\nendpoints: []\nports: []\n"}) {
    auto s = Slice(SliceYaml(body));
    ASSERT_TRUE(s.ok()) << body << s.status();
    EXPECT_THAT(s->endpoints, IsEmpty());
    EXPECT_THAT(s->ports, IsEmpty());
  }
}

TEST(EndpointSliceTest, OtherAddressTypesAreUnimplemented) {
  EXPECT_EQ(SkipOf(Slice(SliceYaml("addressType: IPv6\nendpoints: [{addresses: ['fd00::5']}]\n"))),
            "addressType IPv6 is not load-balanced in this version");
  EXPECT_EQ(
      SkipOf(Slice(SliceYaml("addressType: FQDN\nendpoints: [{addresses: [db.example.com]}]\n"))),
      "addressType FQDN is not load-balanced in this version");
  EXPECT_EQ(ErrorOf(Slice(SliceYaml("addressType: IPv5\n"))),
            "addressType 'IPv5' is not IPv4, IPv6 or FQDN");
  EXPECT_EQ(ErrorOf(Slice(SliceYaml("endpoints: []\n"))), "addressType is missing");
}

TEST(EndpointSliceTest, ServiceNameLabelIsRequired) {
  EXPECT_EQ(
      ErrorOf(Slice("metadata: {name: s, namespace: demo}\naddressType: IPv4\n")),
      "metadata.labels[kubernetes.io/service-name] is missing (the slice belongs to no service)");
  EXPECT_EQ(
      ErrorOf(Slice("metadata: {name: s, labels: {app: web}}\naddressType: IPv4\n")),
      "metadata.labels[kubernetes.io/service-name] is missing (the slice belongs to no service)");
  EXPECT_EQ(
      ErrorOf(Slice(
          "metadata: {name: s, labels: {kubernetes.io/service-name: Web}}\naddressType: IPv4\n")),
      "metadata.labels[kubernetes.io/service-name] 'Web' is not a valid Service name");
  EXPECT_EQ(ErrorOf(Slice("metadata: {name: s, labels: [a]}\naddressType: IPv4\n")),
            "metadata.labels must be a map");
  auto s =
      Slice("metadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->namespace_, "default");
  EXPECT_EQ(s->service_name, "web");
}

TEST(EndpointSliceTest, EndpointsNeedIpv4Addresses) {
  auto bad = [](const std::string& endpoint) {
    return ErrorOf(Slice(SliceYaml("addressType: IPv4\nendpoints:\n- " + endpoint + "\n")));
  };
  EXPECT_EQ(bad("{nodeName: n}"), "endpoints[0].addresses must list at least one address");
  EXPECT_EQ(bad("{addresses: []}"), "endpoints[0].addresses must list at least one address");
  EXPECT_EQ(bad("{addresses: 10.0.0.1}"), "endpoints[0].addresses must be a list");
  EXPECT_EQ(bad("{addresses: [10.0.0.1, 'fd00::1']}"),
            "endpoints[0].addresses[1] 'fd00::1' is not an IPv4 address (the slice's addressType "
            "is IPv4)");
  EXPECT_EQ(bad("{addresses: [10.0.0.256]}"),
            "endpoints[0].addresses[0] '10.0.0.256' is not an IPv4 address (the slice's "
            "addressType is IPv4)");
  EXPECT_EQ(bad("10.0.0.1"), "endpoints[0] must be an object");
  EXPECT_EQ(bad("{addresses: [10.0.0.1], nodeName: [a]}"),
            "endpoints[0].nodeName must be a string");
  EXPECT_EQ(bad("{addresses: [10.0.0.1], targetRef: pod}"),
            "endpoints[0].targetRef must be an object");
  EXPECT_EQ(ErrorOf(Slice(SliceYaml("addressType: IPv4\nendpoints: {}\n"))),
            "endpoints must be a list");
}

TEST(EndpointSliceTest, TargetRefNamespaceDefaultsToTheSlices) {
  auto s = Slice(
      SliceYaml("addressType: IPv4\nendpoints:\n- {addresses: [10.0.0.1], targetRef: {kind: Pod, "
                "name: p}}\n- {addresses: [10.0.0.2]}\n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->endpoints[0].target_ref,
            (EndpointTargetRef{.kind = "Pod", .namespace_ = "demo", .name = "p"}));
  EXPECT_EQ(s->endpoints[1].target_ref, std::nullopt);
  EXPECT_EQ(s->endpoints[1].node_name, "");
}

TEST(EndpointSliceTest, Ports) {
  // An unnamed port (a single-port service), a port without a number ("all
  // ports"), and SCTP, which is kept: only Services reject it.
  auto s =
      Slice(SliceYaml("addressType: IPv4\nports:\n- {port: 8080}\n- {name: all}\n"
                      "- {name: sig, port: 2905, protocol: SCTP}\n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->ports,
              ElementsAre(EndpointPort{.name = "", .port = 8080, .protocol = Protocol::kTcp},
                          EndpointPort{.name = "all", .port = 0, .protocol = Protocol::kTcp},
                          EndpointPort{.name = "sig", .port = 2905, .protocol = Protocol::kSctp}));

  auto bad = [](const std::string& ports) {
    return ErrorOf(Slice(SliceYaml("addressType: IPv4\nports: " + ports + "\n")));
  };
  EXPECT_EQ(bad("[{name: a, port: 1}, {name: a, port: 2}]"),
            "ports[1].name 'a' is already ports[0]");
  EXPECT_EQ(bad("[{port: 1}, {port: 2}]"), "ports[1].name '' is already ports[0]");
  EXPECT_EQ(bad("[{name: A, port: 1}]"), "ports[0].name 'A' is not a valid DNS label");
  EXPECT_EQ(bad("[{name: a, port: 0}]"), "ports[0].port '0' is not a port (1-65535)");
  EXPECT_EQ(bad("[{name: a, port: 80, protocol: tcp}]"),
            "ports[0].protocol 'tcp' is not a protocol (TCP, UDP or SCTP)");
  EXPECT_EQ(bad("[8080]"), "ports[0] must be an object");
  EXPECT_EQ(bad("{port: 80}"), "ports must be a list");
}

// ---------------------------------------------------------------------------
// TrafficSplit

// SMI.md 5.3.
constexpr char kCanary[] = R"(
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata:
  name: checkout-canary
  namespace: shop
spec:
  service: checkout           # root/apex Service clients call (OSM also accepts the FQDN)
  backends:
  - service: checkout-v1      # leaf Services, same namespace, same port as root
    weight: 90
  - service: checkout-v2
    weight: 10                # relative weights; 900/100 or 9/1 mean the same
)";

TEST(TrafficSplitTest, ParsesTheCanaryExampleInEveryVersion) {
  for (const char* api : {kV4, kV3, kV2}) {
    auto t = Split(kCanary, api);
    ASSERT_TRUE(t.ok()) << api << ": " << t.status();
    const TrafficSplit want{.namespace_ = "shop",
                            .name = "checkout-canary",
                            .api_version = api,
                            .service = "checkout",
                            .backends = {{.service = "checkout-v1", .weight = 90},
                                         {.service = "checkout-v2", .weight = 10}}};
    EXPECT_EQ(*t, want) << api;
    EXPECT_EQ(t->Key(), "shop/checkout-canary");
    EXPECT_EQ(t->RootKey(), "shop/checkout");
    EXPECT_EQ(t->TotalWeight(), 100);
    EXPECT_EQ(t->created, std::nullopt);
  }
}

TEST(TrafficSplitTest, V1alpha1WeightsAreQuantitiesReadInThousandths) {
  // SMI.md 5.3: "weight: 900m and weight: 100m".
  auto t = Split(R"(
metadata: {name: canary, namespace: shop}
spec:
  service: checkout
  backends:
  - {service: a, weight: 900m}
  - {service: b, weight: 100m}
  - {service: c, weight: 1}
  - {service: d, weight: '1.5'}
  - {service: e, weight: 2k}
  - {service: f, weight: 0m}
  - {service: g, weight: 0.25}
)",
                 kV1);
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<int> weights;
  for (const SplitBackend& b : t->backends) weights.push_back(b.weight);
  EXPECT_THAT(weights, ElementsAre(900, 100, 1000, 1500, 2000000, 0, 250));
  EXPECT_EQ(t->api_version, kV1);

  auto bad = [](const std::string& weight) {
    return ErrorOf(
        Split("metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: '" + weight +
                  "'}]}\n",
              kV1));
  };
  EXPECT_EQ(bad("0.5m"), "spec.backends[0].weight '0.5m' is finer than 1m");
  EXPECT_EQ(bad("1Ki"), "spec.backends[0].weight '1Ki' is not a quantity (such as 500m, 1 or 1.5)");
  EXPECT_EQ(bad("1e3"), "spec.backends[0].weight '1e3' is not a quantity (such as 500m, 1 or 1.5)");
  EXPECT_EQ(bad("m"), "spec.backends[0].weight 'm' is not a quantity (such as 500m, 1 or 1.5)");
  EXPECT_EQ(bad("-5m"), "spec.backends[0].weight -5m is negative");
  EXPECT_EQ(bad("3G"), "spec.backends[0].weight '3G' is too large (at most 2147483647m)");
  EXPECT_EQ(bad("0"), "spec.backends: all backend weights are 0");
}

TEST(TrafficSplitTest, WeightsAreWholeNonNegativeNumbers) {
  auto bad = [](const std::string& weight) {
    return ErrorOf(Split(
        "metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: 1}, {service: b" +
        weight + "}]}\n"));
  };
  EXPECT_EQ(bad(""), "spec.backends[1].weight is missing");
  EXPECT_EQ(bad(", weight: -1"), "spec.backends[1].weight -1 is negative");
  EXPECT_EQ(bad(", weight: 1.5"), "spec.backends[1].weight '1.5' is not a whole number");
  EXPECT_EQ(bad(", weight: 500m"),
            "spec.backends[1].weight '500m' is not a whole number (quantities such as 500m are "
            "split.smi-spec.io/v1alpha1)");
  EXPECT_EQ(bad(", weight: 3000000000"),
            "spec.backends[1].weight '3000000000' is too large (at most 2147483647)");
  EXPECT_EQ(bad(", weight: [1]"), "spec.backends[1].weight must be a number");
}

TEST(TrafficSplitTest, AllWeightsZeroIsRejectedSomeZeroIsNot) {
  // SMI.md 7.10.
  EXPECT_EQ(
      ErrorOf(Split("metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: 0}, "
                    "{service: b, weight: 0}]}\n")),
      "spec.backends: all backend weights are 0");
  auto t = Split(
      "metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: 0}, "
      "{service: b, weight: 3}]}\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->backends[0].weight, 0);
  EXPECT_EQ(t->TotalWeight(), 3);
}

TEST(TrafficSplitTest, BackendsMustBeListedOnce) {
  EXPECT_EQ(ErrorOf(Split("metadata: {name: s}\nspec: {service: r}\n")),
            "spec.backends must list at least one backend");
  EXPECT_EQ(ErrorOf(Split("metadata: {name: s}\nspec: {service: r, backends: []}\n")),
            "spec.backends must list at least one backend");
  EXPECT_EQ(ErrorOf(Split("metadata: {name: s}\nspec: {service: r, backends: {service: a}}\n")),
            "spec.backends must be a list");
  EXPECT_EQ(ErrorOf(Split("metadata: {name: s}\nspec: {service: r, backends: [a]}\n")),
            "spec.backends[0] must be an object with service and weight");
  EXPECT_EQ(ErrorOf(Split("metadata: {name: s}\nspec: {service: r, backends: [{weight: 1}]}\n")),
            "spec.backends[0].service is missing");
  EXPECT_EQ(
      ErrorOf(Split("metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: 1}, "
                    "{service: b, weight: 1}, {service: a, weight: 2}]}\n")),
      "spec.backends[2].service 'a' is already spec.backends[0]");
  // The FQDN of a backend is the same backend.
  EXPECT_EQ(ErrorOf(Split(
                "metadata: {name: s, namespace: shop}\nspec: {service: r, backends: [{service: a, "
                "weight: 1}, {service: a.shop.svc.cluster.local, weight: 2}]}\n")),
            "spec.backends[1].service 'a' is already spec.backends[0]");
}

TEST(TrafficSplitTest, TheRootMayAlsoBeABackend) {
  // SMI calls a self-referential split a trade-off, not an error; Linkerd's
  // tests do it. SMI.md 7.10 does not reject it.
  auto t = Split(
      "metadata: {name: s}\nspec: {service: web, backends: [{service: web, weight: 9}, "
      "{service: web-v2, weight: 1}]}\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->backends[0].service, "web");
}

TEST(TrafficSplitTest, ServicesMayBeWrittenAsFqdnsOfTheSplitsNamespace) {
  for (const char* root : {"checkout", "checkout.shop", "checkout.shop.svc",
                           "checkout.shop.svc.cluster.local", "checkout.shop.svc.corp.example"}) {
    auto t = Split(std::string("metadata: {name: s, namespace: shop}\nspec: {service: '") + root +
                   "', backends: [{service: checkout-v1.shop.svc.cluster.local, weight: 1}]}\n");
    ASSERT_TRUE(t.ok()) << root << ": " << t.status();
    EXPECT_EQ(t->service, "checkout") << root;
    EXPECT_EQ(t->backends[0].service, "checkout-v1") << root;
  }
  auto bad = [](const std::string& root) {
    return ErrorOf(Split("metadata: {name: s, namespace: shop}\nspec: {service: '" + root +
                         "', backends: [{service: a, weight: 1}]}\n"));
  };
  EXPECT_EQ(
      bad("checkout.other.svc.cluster.local"),
      "spec.service 'checkout.other.svc.cluster.local' is in namespace 'other'; a TrafficSplit's "
      "services must be in its own namespace 'shop'");
  EXPECT_EQ(bad("checkout.shop.cluster.local"),
            "spec.service 'checkout.shop.cluster.local' is neither a Service name nor "
            "name.namespace.svc[.domain]");
  EXPECT_EQ(
      bad("checkout..svc"),
      "spec.service 'checkout..svc' is neither a Service name nor name.namespace.svc[.domain]");
  EXPECT_EQ(bad("Checkout"), "spec.service 'Checkout' is not a valid Service name");
  EXPECT_EQ(bad(""), "spec.service is empty");
  EXPECT_EQ(
      ErrorOf(Split(
          "metadata: {name: s, namespace: shop}\nspec: {backends: [{service: a, weight: 1}]}\n")),
      "spec.service is missing");
  EXPECT_EQ(
      ErrorOf(Split("metadata: {name: s, namespace: shop}\nspec: {service: r, backends: [{service: "
                    "a.web, weight: 1}]}\n")),
      "spec.backends[0].service 'a.web' is in namespace 'web'; a TrafficSplit's services must be "
      "in "
      "its own namespace 'shop'");
}

TEST(TrafficSplitTest, MatchesNameHttpRouteGroupsInV1alpha3AndV1alpha4) {
  // SMI.md 5.4.
  constexpr char kAb[] = R"(
metadata: {name: checkout-ab, namespace: shop}
spec:
  service: checkout
  matches:
  - kind: HTTPRouteGroup
    name: beta-testers
  - {kind: HTTPRouteGroup, apiGroup: specs.smi-spec.io, name: staff}
  - {kind: HTTPRouteGroup, name: beta-testers}
  backends:
  - {service: checkout-v1, weight: 0}
  - {service: checkout-v2, weight: 100}
)";
  for (const char* api : {kV4, kV3}) {
    auto t = Split(kAb, api);
    ASSERT_TRUE(t.ok()) << api << ": " << t.status();
    // Named twice is merged once: the groups are merged anyway.
    EXPECT_THAT(t->matches, ElementsAre(SplitMatch{"HTTPRouteGroup", "beta-testers"},
                                        SplitMatch{"HTTPRouteGroup", "staff"}));
  }
  EXPECT_EQ(ErrorOf(Split(kAb, kV2)),
            "spec.matches is not part of split.smi-spec.io/v1alpha2 (it came in v1alpha3)");
  EXPECT_EQ(ErrorOf(Split(kAb, kV1)),
            "spec.matches is not part of split.smi-spec.io/v1alpha1 (it came in v1alpha3)");

  auto bad = [](const std::string& matches) {
    return ErrorOf(Split(
        "metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: 1}], matches: " +
        matches + "}\n"));
  };
  EXPECT_EQ(bad("[{kind: TCPRoute, name: t}]"),
            "spec.matches[0].kind 'TCPRoute' is not supported (only HTTPRouteGroup)");
  EXPECT_EQ(bad("[{name: t}]"), "spec.matches[0].kind is missing");
  EXPECT_EQ(bad("[{kind: HTTPRouteGroup}]"), "spec.matches[0].name is missing");
  EXPECT_EQ(bad("[{kind: HTTPRouteGroup, name: Bad_Name}]"),
            "spec.matches[0].name 'Bad_Name' is not a valid name");
  EXPECT_EQ(bad("[{kind: HTTPRouteGroup, apiGroup: gateway.networking.k8s.io, name: t}]"),
            "spec.matches[0].apiGroup 'gateway.networking.k8s.io' is not specs.smi-spec.io");
  EXPECT_EQ(bad("[beta]"), "spec.matches[0] must be an object with kind and name");
  EXPECT_EQ(bad("{kind: HTTPRouteGroup, name: t}"), "spec.matches must be a list");
  auto empty = Split(
      "metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: 1}], matches: "
      "[]}\n");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_THAT(empty->matches, IsEmpty());
}

TEST(TrafficSplitTest, CreationTimestampIsReadForOldestWins) {
  auto at = [](const std::string& ts) {
    return Split("metadata: {name: s, creationTimestamp: '" + ts +
                 "'}\nspec: {service: r, backends: [{service: a, weight: 1}]}\n");
  };
  for (const char* ts : {"2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00",
                         "2023-12-31T23:00:00-01:00", "2024-01-01t00:00:00.123456z"}) {
    auto t = at(ts);
    ASSERT_TRUE(t.ok()) << ts << ": " << t.status();
    EXPECT_EQ(t->created, 1704067200) << ts;
  }
  auto leap = at("2024-02-29T12:34:56Z");
  ASSERT_TRUE(leap.ok()) << leap.status();
  EXPECT_EQ(leap->created, 1709210096);
  for (const char* ts :
       {"yesterday", "2024-01-01", "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00", "2024-01-01T00:00:00Zjunk", "2024-01-01T00:00:00.Z"})
    EXPECT_EQ(ErrorOf(at(ts)),
              std::string("metadata.creationTimestamp '") + ts + "' is not an RFC 3339 time")
        << ts;
}

TEST(TrafficSplitTest, MetadataSpecAndVersionAreChecked) {
  EXPECT_EQ(ErrorOf(Split(kCanary, "split.smi-spec.io/v1beta1")),
            "apiVersion 'split.smi-spec.io/v1beta1' is not split.smi-spec.io/v1alpha4, v1alpha3, "
            "v1alpha2 or v1alpha1");
  EXPECT_EQ(ErrorOf(Split(kCanary, "specs.smi-spec.io/v1alpha4")),
            "apiVersion 'specs.smi-spec.io/v1alpha4' is not split.smi-spec.io/v1alpha4, v1alpha3, "
            "v1alpha2 or v1alpha1");
  EXPECT_EQ(ErrorOf(Split("metadata: {name: s}\n")), "spec is missing");
  EXPECT_EQ(ErrorOf(Split("spec: {}\n")), "metadata is missing");
  auto t = Split("metadata: {name: s}\nspec: {service: r, backends: [{service: a, weight: 1}]}\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->namespace_, "default");
}

}  // namespace
}  // namespace shunt::model
